-- Steps the agent scenarios share: pick a code action through vim.lsp.buf.code_action(), wait for the
-- preview, press its keys, and snapshot buffers and files.
local S = {}

--- The titles vim.lsp.buf.code_action() offers at the cursor (nothing is chosen).
function S.code_action_titles(h)
  local titles
  local select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    titles = {}
    for _, item in ipairs(items) do
      table.insert(titles, (opts.format_item(item)))
    end
    on_choice(nil)
  end
  local seen = #h.messages
  vim.lsp.buf.code_action()
  h.wait(20000, function()
    -- Neovim says so instead of opening an empty menu.
    for i = seen + 1, #h.messages do
      if h.messages[i].message == "No code actions available" then
        titles = {}
      end
    end
    return titles ~= nil
  end, "the code action menu")
  vim.ui.select = select
  return titles
end

--- Choose the first code action whose title starts with `prefix` in the standard menu; returns all titles.
function S.choose_code_action(h, prefix)
  local titles, chosen
  local select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    titles = {}
    for _, item in ipairs(items) do
      local title = (opts.format_item(item))
      table.insert(titles, title)
      if chosen == nil and vim.startswith(title, prefix) then
        chosen = item
      end
    end
    on_choice(chosen)
  end
  vim.lsp.buf.code_action()
  h.wait(20000, function()
    return titles ~= nil
  end, "the code action menu")
  vim.ui.select = select
  if chosen == nil then
    error("no code action starting with " .. prefix .. " among: " .. table.concat(titles, " | "))
  end
  return titles
end

function S.line_of(buf, text)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    if line == text then
      return i
    end
  end
  error("no line " .. text)
end

--- The first error the plugin reported (vim.notify at ERROR level), or nil.
function S.error_message(h)
  for _, m in ipairs(h.messages) do
    if m.level == vim.log.levels.ERROR then
      return m.message
    end
  end
  return nil
end

function S.state()
  return require("agentls")._state
end

--- Wait for the preview of the next proposal; returns its buffer, lines and filetype.
function S.wait_preview(h, ms)
  h.wait(ms, function()
    return h.buffer_named("agentls://proposal/") ~= nil or S.error_message(h) ~= nil
  end, "the proposal preview")
  if S.error_message(h) then
    error("no proposal: " .. S.error_message(h))
  end
  local preview = h.buffer_named("agentls://proposal/")
  return preview, h.lines(preview), vim.bo[preview].filetype
end

--- Press `keys` in the window showing `buf` (as the user would, through the buffer's mappings).
function S.press(buf, keys)
  local win = vim.fn.win_findbuf(buf)[1]
  assert(win, "the buffer is not shown in any window")
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_feedkeys(keys, "mx", false)
end

function S.proposal(id)
  return S.state().proposals[id]
end

--- The files of the workspace that tests look at, as on disk (vim.NIL when missing).
function S.disk(h, rels)
  local out = {}
  for _, rel in ipairs(rels) do
    local text = h.read(h.root .. "/" .. rel)
    out[rel] = text == nil and vim.NIL or text
  end
  return out
end

--- Text and state of the loaded buffers of `rels` (vim.NIL when not loaded).
function S.buffers(h, rels)
  local out = {}
  for _, rel in ipairs(rels) do
    local bufnr = vim.fn.bufnr(h.root .. "/" .. rel)
    if bufnr ~= -1 and vim.api.nvim_buf_is_loaded(bufnr) then
      out[rel] = {
        text = table.concat(h.lines(bufnr), "\n") .. "\n",
        modified = vim.bo[bufnr].modified,
      }
    else
      out[rel] = vim.NIL
    end
  end
  return out
end

return S

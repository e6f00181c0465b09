--- The proposal preview (a scratch buffer with the unified diff, `filetype=diff`) and the answer view.
---
--- The preview shows what a proposal would change; nothing is applied until it is accepted. Its
--- buffer-local keys (`a`, `r`, `q` by default) call back into `require("agentls")`.
local M = {}

local BUFFER_PREFIX = "agentls://proposal/"

local function split_lines(text)
  if type(text) ~= "string" or text == "" then
    return {}
  end
  local lines = vim.split(text, "\n", { plain = true })
  if lines[#lines] == "" then
    table.remove(lines)
  end
  return lines
end

local KIND_LETTER = {
  created = "A",
  create = "A",
  added = "A",
  deleted = "D",
  delete = "D",
  renamed = "R",
  rename = "R",
  modified = "M",
}

local function file_label(file)
  if type(file) ~= "table" then
    return tostring(file)
  end
  local path = file.uri and vim.fn.fnamemodify(vim.uri_to_fname(file.uri), ":~:.") or tostring(file.path)
  return (KIND_LETTER[file.kind] or "M") .. " " .. path
end

--- "in 1200, out 80 tokens, $0.0123" from whatever usage fields the server sent.
function M.usage_text(usage, cost)
  usage = type(usage) == "table" and usage or {}
  local parts = {}
  local input = usage.input_tokens or usage.inputTokens
  local output = usage.output_tokens or usage.outputTokens
  if type(input) == "number" or type(output) == "number" then
    table.insert(
      parts,
      string.format("%s in / %s out tokens", tostring(input or "?"), tostring(output or "?"))
    )
  end
  local cached = usage.cache_read_input_tokens or usage.cacheReadInputTokens
  if type(cached) == "number" and cached > 0 then
    table.insert(parts, string.format("%d cached", cached))
  end
  cost = cost or usage.cost_usd or usage.costUsd or usage.cost
  if type(cost) == "number" then
    table.insert(parts, string.format("$%.4f", cost))
  end
  if #parts == 0 then
    return nil
  end
  return table.concat(parts, ", ")
end

--- The preview's lines: a `#` header (summary, files, usage, keys), a blank line, the diff.
function M.lines(proposal, keys)
  local out = { "# agentls proposal " .. tostring(proposal.id) }
  for _, line in ipairs(split_lines(proposal.summary)) do
    table.insert(out, "# " .. line)
  end
  local files = proposal.files or {}
  if #files > 0 then
    table.insert(out, "# files: " .. table.concat(vim.tbl_map(file_label, files), ", "))
  end
  local usage = M.usage_text(proposal.usage, proposal.cost)
  if usage then
    table.insert(out, "# usage: " .. usage)
  end
  if type(proposal.verified) == "boolean" then
    local how = proposal.verified and "passed" or "FAILED"
    local detail = type(proposal.verification) == "string"
      and proposal.verification ~= ""
      and proposal.verification
    table.insert(
      out,
      "# verification: " .. how .. (detail and (" (" .. detail:gsub("\n", "; ") .. ")") or "")
    )
  end
  table.insert(
    out,
    string.format(
      "# keys: %s accept, %s reject, %s close (nothing is applied before you accept)",
      keys.accept,
      keys.reject,
      keys.close
    )
  )
  table.insert(out, "")
  local diff = split_lines(proposal.diff)
  if #diff == 0 then
    table.insert(out, "(the proposal changes no file)")
  end
  vim.list_extend(out, diff)
  return out
end

local function open_window(bufnr, layout, height, focus)
  local previous = vim.api.nvim_get_current_win()
  if layout == "tab" then
    vim.cmd("tabnew")
  elseif layout == "vsplit" then
    vim.cmd("botright vnew")
  else
    vim.cmd("botright new")
    if height then
      vim.api.nvim_win_set_height(0, height)
    end
  end
  local scratch = vim.api.nvim_get_current_buf()
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, bufnr)
  if scratch ~= bufnr and vim.api.nvim_buf_is_valid(scratch) then
    pcall(vim.api.nvim_buf_delete, scratch, { force = true })
  end
  vim.wo[win].wrap = false
  vim.wo[win].number = false
  vim.wo[win].foldenable = false
  if not focus and vim.api.nvim_win_is_valid(previous) then
    vim.api.nvim_set_current_win(previous)
  end
  return win
end

local function scratch(name, lines, filetype)
  local bufnr = vim.api.nvim_create_buf(false, true)
  if not pcall(vim.api.nvim_buf_set_name, bufnr, name) then
    -- A buffer of that name is left over (e.g. hidden by the user); a suffix keeps both usable.
    pcall(vim.api.nvim_buf_set_name, bufnr, name .. "#" .. tostring(bufnr))
  end
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.bo[bufnr].buftype = "nofile"
  vim.bo[bufnr].bufhidden = "wipe"
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].modifiable = false
  vim.bo[bufnr].filetype = filetype
  return bufnr
end

local function map(bufnr, lhs, rhs, desc)
  if lhs and lhs ~= "" then
    vim.keymap.set("n", lhs, rhs, { buffer = bufnr, nowait = true, silent = true, desc = desc })
  end
end

--- Whether focusing a new window now would take keystrokes away from the user (typing, command line).
local function user_is_typing()
  local mode = vim.api.nvim_get_mode().mode
  return mode:sub(1, 1) == "i" or mode:sub(1, 1) == "R" or mode:sub(1, 1) == "c"
end

--- Show `proposal` (with its diff) in a preview window; returns the buffer.
function M.open(state, proposal)
  local opts = state.config.preview
  local keys = opts.keys
  M.close(state, proposal.id)
  local bufnr = scratch(BUFFER_PREFIX .. tostring(proposal.id), M.lines(proposal, keys), "diff")
  state.previews[proposal.id] = bufnr
  vim.b[bufnr].agentls_proposal_id = proposal.id
  local agentls = require("agentls")
  map(bufnr, keys.accept, function()
    agentls.accept(proposal.id)
  end, "agentls: accept this proposal")
  map(bufnr, keys.reject, function()
    agentls.reject(proposal.id)
  end, "agentls: reject this proposal")
  map(bufnr, keys.close, function()
    M.close(state, proposal.id)
  end, "agentls: close the preview (the proposal stays pending)")
  open_window(bufnr, opts.layout, opts.height, not user_is_typing())
  return bufnr
end

--- The preview buffer of `proposal_id`, or nil.
function M.buffer(state, proposal_id)
  local bufnr = state.previews[proposal_id]
  if bufnr == nil or not vim.api.nvim_buf_is_valid(bufnr) then
    state.previews[proposal_id] = nil
    return nil
  end
  return bufnr
end

--- Close the preview of `proposal_id` (its windows and buffer), if open.
function M.close(state, proposal_id)
  local bufnr = M.buffer(state, proposal_id)
  if not bufnr then
    return
  end
  for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
    if #vim.api.nvim_list_wins() > 1 then
      pcall(vim.api.nvim_win_close, win, true)
    end
  end
  if vim.api.nvim_buf_is_valid(bufnr) then
    pcall(vim.api.nvim_buf_delete, bufnr, { force = true })
  end
  state.previews[proposal_id] = nil
end

--- Show an answer (`:AgentlsAsk`) in a scratch split with `filetype=markdown`; `q` closes it.
function M.answer(state, title, text)
  local lines = { "# " .. (title or "agentls"), "" }
  vim.list_extend(lines, split_lines(text))
  state.answers = (state.answers or 0) + 1
  local bufnr = scratch("agentls://answer/" .. tostring(state.answers), lines, "markdown")
  vim.b[bufnr].agentls_answer = true
  map(bufnr, state.config.preview.keys.close, "<cmd>close<cr>", "agentls: close the answer")
  open_window(bufnr, state.config.preview.layout, state.config.preview.height, not user_is_typing())
  return bufnr
end

return M

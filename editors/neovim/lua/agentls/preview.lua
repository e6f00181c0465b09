--- The proposal preview (a scratch buffer with the unified diff, `filetype=diff`) and the answer view.
---
--- The preview shows what a proposal would change; nothing is applied until it is accepted. Its
--- buffer-local keys (by default `a`/`r` mark the hunk under the cursor for accept/reject, `A`/`R` every
--- hunk, `<CR>` applies the marks, `c` accepts and commits, `q` closes) call back into
--- `require("agentls")`; `agentls.review` maps the diff's lines to the server's hunks.
local review = require("agentls.review")

local M = {}

local NS = vim.api.nvim_create_namespace("agentls_review")

local BUFFER_PREFIX = "agentls://proposal/"

local split_lines = review.split_lines

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
    local how = review.verification_label(proposal.verified, proposal.verification)
    local detail = type(proposal.verification) == "string"
      and proposal.verification ~= ""
      and proposal.verification
    table.insert(
      out,
      "# verification: " .. how .. (detail and (" (" .. detail:gsub("\n", "; ") .. ")") or "")
    )
  end
  if type(proposal.team) == "table" then
    for _, line in ipairs(M.team_lines(proposal.team)) do
      table.insert(out, "# " .. line)
    end
  end
  local diff, where, order = review.layout(proposal.files)
  if #diff == 0 then
    -- Files without their own diffs (an older server): the whole diff, reviewed as one.
    diff, where, order = split_lines(proposal.diff), {}, {}
  end
  proposal.decisions = proposal.decisions or {}
  table.insert(out, "# " .. review.summary(order, proposal.decisions))
  table.insert(
    out,
    string.format(
      "# keys: %s/%s accept/reject the hunk under the cursor, %s/%s all, %s apply, %s accept and commit, "
        .. "%s close (nothing is applied before you apply)",
      keys.accept,
      keys.reject,
      keys.accept_all,
      keys.reject_all,
      keys.apply,
      keys.commit,
      keys.close
    )
  )
  table.insert(out, "")
  proposal.review = { offset = #out, where = where, order = order }
  if #diff == 0 then
    table.insert(out, "(the proposal changes no file)")
  end
  vim.list_extend(out, diff)
  return out
end

--- The QA verdict of a team proposal (`team.review`), one line per criterion.
function M.team_lines(team)
  local out = {}
  local verdict = type(team.review) == "table" and team.review or nil
  if verdict == nil then
    return out
  end
  local passed = verdict.passed
  table.insert(out, "QA verdict: " .. (passed == true and "passed" or passed == false and "FAILED" or "?"))
  for _, item in ipairs(type(verdict.criteria) == "table" and verdict.criteria or {}) do
    if type(item) == "table" then
      table.insert(
        out,
        string.format(
          "  %s %s: %s",
          tostring(item.id or "?"),
          tostring(item.verdict or "?"),
          (tostring(item.evidence or ""):gsub("\n", " "))
        )
      )
    end
  end
  return out
end

--- Show the decisions: the summary line of the header and a mark after each hunk's first line.
function M.show_decisions(bufnr, proposal)
  local info = proposal.review
  if not info then
    return
  end
  vim.api.nvim_buf_clear_namespace(bufnr, NS, 0, -1)
  local first = {}
  for i, here in ipairs(info.where) do
    if here.hunk and first[here.hunk] == nil then
      first[here.hunk] = i
    end
  end
  for id, i in pairs(first) do
    local d = proposal.decisions[id]
    if d then
      vim.api.nvim_buf_set_extmark(bufnr, NS, info.offset + i - 1, 0, {
        virt_text = {
          { d == "accept" and "  <- accept" or "  <- reject", d == "accept" and "DiffAdd" or "DiffDelete" },
        },
      })
    end
  end
  local summary = "# " .. review.summary(info.order, proposal.decisions)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, info.offset, false)) do
    if line:match("^# %d+ hunks?:") then
      vim.bo[bufnr].modifiable = true
      vim.api.nvim_buf_set_lines(bufnr, i - 1, i, false, { summary })
      vim.bo[bufnr].modifiable = false
      break
    end
  end
end

--- Mark the hunks the cursor is on (or all of them) with `decision` ("accept" or "reject").
function M.mark(state, proposal, decision, all)
  local bufnr = M.buffer(state, proposal.id)
  local info = proposal.review
  if not bufnr or not info then
    return {}
  end
  local ids
  if all then
    ids = info.order
  else
    local row = vim.api.nvim_win_get_cursor(0)[1]
    ids = review.hunks_at(proposal.files, info.where, row - info.offset)
  end
  for _, id in ipairs(ids) do
    proposal.decisions[id] = decision
  end
  M.show_decisions(bufnr, proposal)
  return ids
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
    M.mark(state, proposal, "accept", false)
  end, "agentls: mark the hunk under the cursor for accept")
  map(bufnr, keys.reject, function()
    M.mark(state, proposal, "reject", false)
  end, "agentls: mark the hunk under the cursor for reject")
  map(bufnr, keys.accept_all, function()
    M.mark(state, proposal, "accept", true)
  end, "agentls: mark every hunk for accept")
  map(bufnr, keys.reject_all, function()
    M.mark(state, proposal, "reject", true)
  end, "agentls: mark every hunk for reject")
  map(bufnr, keys.apply, function()
    agentls.apply_review(proposal.id)
  end, "agentls: apply the marks (accepted hunks are applied, rejected ones dropped)")
  map(bufnr, keys.commit, function()
    agentls.accept_and_commit(proposal.id)
  end, "agentls: accept the marked hunks (or all) and commit them")
  map(bufnr, keys.close, function()
    M.close(state, proposal.id)
  end, "agentls: close the preview (the proposal stays pending)")
  open_window(bufnr, opts.layout, opts.height, not user_is_typing())
  M.show_decisions(bufnr, proposal)
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

--- The commit message of `proposal` in a buffer to edit: `:w` calls `on_write(message)` (lines starting
--- with `#` left out) and closes it; closing it without writing commits nothing.
function M.commit_message(proposal, message, on_write)
  local name = "agentls://commit/" .. tostring(proposal.id)
  local old = vim.fn.bufnr("^" .. name .. "$")
  if old ~= -1 then
    pcall(vim.api.nvim_buf_delete, old, { force = true })
  end
  local bufnr = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(bufnr, name)
  local lines = split_lines(message)
  vim.list_extend(lines, {
    "",
    "# agentls: write (:w) to accept proposal " .. tostring(proposal.id) .. " and commit it with this",
    "# message; close without writing (:q!) to commit nothing. Lines starting with # are left out.",
  })
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.bo[bufnr].buftype = "acwrite"
  vim.bo[bufnr].bufhidden = "wipe"
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].filetype = "gitcommit"
  vim.bo[bufnr].modified = false
  vim.b[bufnr].agentls_commit_proposal_id = proposal.id
  vim.api.nvim_create_autocmd("BufWriteCmd", {
    buffer = bufnr,
    callback = function()
      local kept = {}
      for _, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
        if not vim.startswith(line, "#") then
          table.insert(kept, line)
        end
      end
      local text = vim.trim(table.concat(kept, "\n"))
      if text == "" then
        vim.notify("agentls: the commit message is empty; nothing was committed", vim.log.levels.WARN)
        return
      end
      vim.bo[bufnr].modified = false
      for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
        if #vim.api.nvim_list_wins() > 1 then
          pcall(vim.api.nvim_win_close, win, true)
        end
      end
      on_write(text .. "\n")
    end,
  })
  open_window(bufnr, "split", nil, true)
  return bufnr
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

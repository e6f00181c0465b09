-- One agent run through the plugin, chosen by $AGENTLS_NVIM_MODE:
--   accept           implement `mean` from the code action menu, preview, press `A` then <CR> (apply)
--   reject           the same, press `R` then <CR>
--   hunks            the same, `a` on the stub's hunk, `r` on the new test file's, <CR>
--   commit           as hunks, but `c` (accept and commit), the message edited, then :w
-- and $AGENTLS_NVIM_TRIGGER: "code_action" (the standard menu, default), "command" (:AgentlsImplement) or
-- "task" (:AgentlsTask with $AGENTLS_NVIM_TASK, a free-form task, on the stub's line and the one above).
--   edit_during_run  the same, but a line is added at the top of the buffer while the run is going
--   edit_other_buffer  the same, but tests/test_stats.py is open too and a line is added at its top just
--                    before the run command is given (its didChange still waits for Neovim's debounce)
--   crash        the same, but the server is killed while the preview is open (nothing is pressed)
--   conflict     the same, but the stub's line is edited in the buffer before `A` <CR>: the server refuses
--   refused      the same, but the plugin's applyEdit refuses the edit (as for a buffer that changed)
--   type_after_emoji  the same, but first a line holding an emoji is typed below the imports, and the word
--                    after the emoji is changed and more typed after it (each keystroke a ranged change
--                    after the emoji), as `o` and `cw` in insert mode type them
-- With $AGENTLS_NVIM_CONFIRM=no every confirm() dialog is answered "No" (and recorded in `confirms`).
-- The result holds what the user saw (menu titles, preview lines) and the buffers and files at each step.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")
local S = dofile(here .. "scenario.lua")

local MODE = os.getenv("AGENTLS_NVIM_MODE") or "accept"
-- "code_action": the standard vim.lsp.buf.code_action() menu; "command": :AgentlsImplement; "task":
-- :AgentlsTask.
local TRIGGER = os.getenv("AGENTLS_NVIM_TRIGGER") or "code_action"
local FILES = { "mathx/stats.py", "tests/test_mean_more.py" }
local USER_LINE = "# a line the user typed while the agent was working"
local OTHER_LINE = "# a line the user typed in another buffer just before the run"

H.run(function(h)
  local buf = h.edit("mathx/stats.py")
  h.wait_attached(buf)
  local other
  if MODE == "edit_other_buffer" then
    other = h.edit("tests/test_stats.py")
    h.wait_attached(other)
    vim.cmd("buffer " .. buf)
  end
  if MODE == "type_after_emoji" then
    -- U+1F600 and U+1F389 as UTF-8 bytes (Lua 5.1 has no \u{} escape): two UTF-16 units each.
    local grin, party = "\240\159\152\128", "\240\159\142\137"
    -- Through replace_termcodes: the emoji's byte 0x80 would be read as the lead of a special key.
    local function type_keys(keys)
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "nx", false)
    end
    vim.api.nvim_win_set_cursor(0, { S.line_of(buf, "from __future__ import annotations"), 0 })
    type_keys('oLABEL = "' .. grin .. ' sale"<Esc>')
    type_keys("0fscwdeal" .. party .. "!<Esc>")
  end
  vim.api.nvim_win_set_cursor(0, { S.line_of(buf, "def mean(values: list[float]) -> float:"), 4 })
  if other then
    -- A buffer never flushed before: Neovim holds this change back for its debounce (150 ms).
    vim.api.nvim_buf_set_lines(other, 0, 0, false, { OTHER_LINE })
  end
  local titles = vim.NIL
  if TRIGGER == "command" then
    vim.cmd("AgentlsImplement")
  elseif TRIGGER == "task" then
    local row = S.line_of(buf, "    raise NotImplementedError")
    vim.cmd(string.format("%d,%dAgentlsTask %s", row - 1, row, os.getenv("AGENTLS_NVIM_TASK")))
  else
    titles = S.choose_code_action(h, "Implement `mean`")
  end
  h.wait(20000, function()
    return S.state():latest_running() ~= nil or S.error_message(h) ~= nil
  end, "the run to start")
  if S.error_message(h) then
    error("the run did not start: " .. S.error_message(h))
  end
  local run = S.state():latest_running()
  local status_running = require("agentls").status()

  if MODE == "edit_during_run" then
    vim.api.nvim_buf_set_lines(buf, 0, 0, false, { USER_LINE })
  end
  local buffers_during_run = S.buffers(h, FILES)

  local preview, preview_lines, preview_filetype = S.wait_preview(h, 60000)
  local proposal_id = vim.b[preview].agentls_proposal_id
  local disk_before = S.disk(h, FILES)
  local buffers_before = S.buffers(h, FILES)
  local status_pending = require("agentls").status()

  if MODE == "crash" then
    h.kill_server(h.agentls_client(buf))
    h.wait(10000, function()
      return S.state().proposals[proposal_id].status == "failed"
    end, "the plugin to see the server exit")
    vim.wait(300)
    return {
      proposal_id = proposal_id,
      proposal_status = S.proposal(proposal_id).status,
      preview_open_after = h.buffer_named("agentls://proposal/") ~= nil,
      preview_windows_after = #vim.fn.win_findbuf(preview),
    }
  end

  if MODE == "conflict" then
    local row = S.line_of(buf, "    raise NotImplementedError")
    vim.api.nvim_buf_set_lines(buf, row - 1, row, false, { "    return 0.0  # the user's own take" })
    vim.wait(1000) -- the change reaches the server
  elseif MODE == "refused" then
    require("agentls.apply").apply = function()
      return { applied = false, failureReason = "refused by the test" }, {}
    end
  end

  local confirms = {}
  if os.getenv("AGENTLS_NVIM_CONFIRM") == "no" then
    vim.fn.confirm = function(message)
      table.insert(confirms, message)
      return 2
    end
  end

  local review_summary, commit_lines = nil, vim.NIL
  if MODE == "hunks" or MODE == "commit" then
    local win = vim.fn.win_findbuf(preview)[1]
    vim.api.nvim_set_current_win(win)
    vim.api.nvim_win_set_cursor(win, { S.line_of(preview, "+    return sum(values) / len(values)"), 0 })
    S.press(preview, "a")
    vim.api.nvim_win_set_cursor(win, { S.line_of(preview, "+def test_mean_of_two_numbers():"), 0 })
    S.press(preview, "r")
    for _, line in ipairs(h.lines(preview)) do
      if line:match("^# %d+ hunks?:") then
        review_summary = line
      end
    end
  end
  if MODE == "commit" then
    S.press(preview, "c")
    h.wait(10000, function()
      return h.buffer_named("agentls://commit/") ~= nil
    end, "the commit message buffer")
    local commit = h.buffer_named("agentls://commit/")
    commit_lines = h.lines(commit)
    vim.api.nvim_buf_set_lines(commit, 0, 1, false, { "feat(stats): implement mean (edited in Neovim)" })
    vim.api.nvim_set_current_win(vim.fn.win_findbuf(commit)[1])
    vim.cmd("write")
  elseif MODE == "reject" then
    S.press(preview, "R\r")
  elseif MODE == "hunks" then
    S.press(preview, "\r")
  else
    S.press(preview, "A\r")
  end
  local seen = #h.messages
  h.wait(30000, function()
    local p = S.proposal(proposal_id)
    if MODE == "reject" then
      return p.status == "rejected"
    end
    if MODE == "conflict" or MODE == "refused" then
      -- Refused, then pending again once the answer came (the message comes before it).
      if p.status ~= "pending" then
        return false
      end
      for i = seen + 1, #h.messages do
        local m = h.messages[i].message
        if m:find("did not apply", 1, true) or m:find("not applied", 1, true) then
          return true
        end
      end
      return false
    end
    -- Accepted, or refused (it stays pending, with a message saying why).
    return p.status == "accepted"
      or (
        p.status == "pending"
        and #h.messages > 0
        and h.messages[#h.messages].message:find("not applied") ~= nil
      )
  end, "the proposal to be settled")
  -- Let didSave and any late notification arrive.
  vim.wait((MODE == "conflict" or MODE == "refused") and 1000 or 300)

  return {
    titles = titles,
    run_title = run.title,
    status_running = status_running,
    status_pending = status_pending,
    status_after = require("agentls").status(),
    preview_lines = preview_lines,
    preview_filetype = preview_filetype,
    preview_open_after = h.buffer_named("agentls://proposal/") ~= nil,
    proposal_status = S.proposal(proposal_id).status,
    disk_before = disk_before,
    buffers_during_run = buffers_during_run,
    buffers_before = buffers_before,
    disk_after = S.disk(h, FILES),
    buffers_after = S.buffers(h, FILES),
    user_line = USER_LINE,
    other_line = OTHER_LINE,
    other_after = other and table.concat(h.lines(other), "\n") .. "\n" or vim.NIL,
    review_summary = review_summary,
    commit_lines = commit_lines,
    confirms = confirms,
  }
end)

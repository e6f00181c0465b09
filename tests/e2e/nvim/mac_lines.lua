-- A file whose lines end in a lone "\r" (classic Mac OS), changed in two places by a run (`:AgentlsTask`).
-- Opened with Neovim's default 'fileformats' (no mac), it is one line holding ^M: the plugin says so once,
-- and `A` <CR> is refused (the edit's lines are not the buffer's), the file left as it was. The proposal
-- rejected and the file opened again with mac in 'fileformats', the same task is run again; its preview
-- is laid out in the file's lines: `a` on the line $AGENTLS_NVIM_ACCEPT_LINE, `r` on
-- $AGENTLS_NVIM_REJECT_LINE, <CR>.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")
local S = dofile(here .. "scenario.lua")

local FILE = "mathx/stats.py"

--- The preview's lines that carry a decision mark (virtual text), with the mark.
local function marks(preview)
  local ns = vim.api.nvim_create_namespace("agentls_review")
  local out = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(preview, ns, 0, -1, { details = true })) do
    local text = vim.api.nvim_buf_get_lines(preview, mark[2], mark[2] + 1, false)[1]
    table.insert(out, { line = text, mark = vim.trim(mark[4].virt_text[1][1]) })
  end
  return out
end

local function press_on(preview, line, key)
  vim.api.nvim_set_current_win(vim.fn.win_findbuf(preview)[1])
  vim.api.nvim_win_set_cursor(0, { S.line_of(preview, line), 0 })
  S.press(preview, key)
end

H.run(function(h)
  local buf = h.edit(FILE)
  h.wait_attached(buf)
  local opened = { fileformat = vim.bo[buf].fileformat, lines = vim.api.nvim_buf_line_count(buf) }
  vim.cmd("AgentlsTask implement mean")
  local preview = S.wait_preview(h, 60000)
  local id = vim.b[preview].agentls_proposal_id
  local seen = #h.messages
  S.press(preview, "A\r")
  h.wait(30000, function()
    for i = seen + 1, #h.messages do
      if h.messages[i].message:find("not applied", 1, true) and S.proposal(id).status == "pending" then
        return true
      end
    end
    return false
  end, "the accept to be refused")
  local refused = S.disk(h, { FILE })[FILE]

  S.press(preview, "q")
  vim.cmd("AgentlsReject " .. id)
  h.wait(10000, function()
    return S.proposal(id).status == "rejected"
  end, "the reject")
  vim.api.nvim_set_current_win(vim.fn.win_findbuf(buf)[1])
  vim.cmd("bwipeout")
  vim.o.fileformats = "unix,dos,mac"
  buf = h.edit(FILE)
  h.wait_attached(buf)
  local reopened = { fileformat = vim.bo[buf].fileformat, lines = vim.api.nvim_buf_line_count(buf) }
  vim.cmd("AgentlsTask implement mean")
  local lines
  preview, lines = S.wait_preview(h, 60000)
  id = vim.b[preview].agentls_proposal_id
  press_on(preview, os.getenv("AGENTLS_NVIM_ACCEPT_LINE"), "a")
  press_on(preview, os.getenv("AGENTLS_NVIM_REJECT_LINE"), "r")
  local shown = marks(preview)
  S.press(preview, "\r")
  h.wait(30000, function()
    return S.proposal(id).status == "accepted"
  end, "the marked hunk to be applied")
  vim.wait(300)
  return {
    opened = opened,
    refused = refused,
    reopened = reopened,
    preview_lines = lines,
    marks = shown,
    disk_after = S.disk(h, { FILE })[FILE],
  }
end)

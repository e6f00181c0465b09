-- :AgentlsFix on a diagnostic another language server reported, in UTF-16 (as most do), on a line with
-- non-ASCII text: the range sent to agentls is in agentls' own position encoding, whichever it chose.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")

-- `undefined_name` starts at byte 18, UTF-16 unit 13 (é and € are one unit each, 😀 two).
local LINE = 's = "é€😀" + undefined_name'

H.run(function(h)
  local sent = h.record_commands()
  local buf = h.edit("mathx/stats.py")
  local client = h.wait_attached(buf)
  vim.api.nvim_buf_set_lines(buf, 0, 0, false, { LINE })
  local first = LINE:find("undefined_name", 1, true) - 1
  local last = first + #"undefined_name"
  -- What vim.lsp.diagnostic makes of the other server's diagnostic: byte columns, and the LSP
  -- diagnostic as that server sent it.
  local other = {
    range = { start = { line = 0, character = 13 }, ["end"] = { line = 0, character = 27 } },
    message = "undefined name",
    source = "otherls",
    severity = 1,
    code = "F821",
  }
  vim.diagnostic.set(vim.api.nvim_create_namespace("agentls-test-otherls"), buf, {
    {
      lnum = 0,
      col = first,
      end_lnum = 0,
      end_col = last,
      message = "undefined name",
      source = "otherls",
      severity = vim.diagnostic.severity.ERROR,
      code = "F821",
      user_data = { lsp = other },
    },
  })
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  vim.cmd("AgentlsFix")
  h.wait(10000, function()
    return #sent == 1
  end, "the fix command")
  return { sent = sent[1].arguments[1], encoding = client.offset_encoding }
end)

-- Commands pressed while the server is still starting (the Python test's `cmd` sleeps before it execs
-- the server): the same :AgentlsAsk twice, then another question, the same edit twice whose instruction
-- is asked for by an input that moves the cursor, then :AgentlsTests at a place before the user goes to
-- another buffer. Each distinct request is sent once the server is ready; the repeated ones are dropped
-- with a message naming them. The result holds what was sent.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")

H.run(function(h)
  local sent, answers = h.record_commands()

  local buf = h.edit("mathx/stats.py")
  local initialized_at_first_press = false
  for _, client in ipairs(require("agentls").clients()) do
    initialized_at_first_press = initialized_at_first_press or client.initialized == true
  end
  vim.cmd("AgentlsAsk what does clamp do?")
  vim.cmd("AgentlsAsk what does clamp do?")
  vim.cmd("AgentlsAsk what does mean do?")
  -- An edit given on line 4 whose instruction is asked for: the input moves the cursor before it
  -- answers (a floating prompt is a window of its own). The edit names line 4, and edits it.
  local input = vim.ui.input
  vim.ui.input = function(_, on_confirm)
    vim.api.nvim_win_set_cursor(0, { 5, 0 })
    on_confirm("say hi")
  end
  for _ = 1, 2 do
    vim.api.nvim_win_set_cursor(0, { 4, 0 })
    require("agentls").edit(nil)
  end
  vim.ui.input = input
  -- Tests asked for at a place, then the user moves on to another buffer before the server is ready:
  -- the request carries the place where the command was given.
  vim.api.nvim_win_set_cursor(0, { 3, 4 })
  vim.cmd("AgentlsTests")
  vim.cmd("enew")
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "a", "b", "c", "d", "e", "f" })
  vim.api.nvim_win_set_cursor(0, { 6, 0 })
  h.wait_attached(buf)
  h.wait(20000, function()
    return #sent >= 4 and vim.tbl_count(answers) == #sent
  end, "the requests to be sent and answered")
  vim.wait(1500) -- a queued duplicate would go out now
  local questions, tests, edits = {}, {}, {}
  for _, params in ipairs(sent) do
    if params.command == "agentls.writeTests" then
      table.insert(tests, params.arguments[1])
    elseif params.command == "agentls.edit" then
      table.insert(edits, params.arguments[1])
    else
      table.insert(questions, params.arguments[1].question or vim.NIL)
    end
  end
  return {
    questions = questions,
    tests = tests,
    edits = edits,
    initialized_at_first_press = initialized_at_first_press,
  }
end)

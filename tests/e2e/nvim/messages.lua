-- Runs whose end the server also shows with `window/showMessage`, one after the other (the fake API's
-- script answers them in this order): an edit that changes nothing, a question, and a run whose model call
-- fails. With $AGENTLS_NVIM_MODE = "missing_key" only the failing run, which fails before it starts (no API
-- key). The result holds every message the user saw (the plugin's and the server's) and the answer window.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")
local S = dofile(here .. "scenario.lua")

local MODE = os.getenv("AGENTLS_NVIM_MODE") or "all"

--- Run `command`, wait for the run it starts to end; returns the run.
local function run_to_end(h, command)
  local st = S.state()
  local before = #st.run_order
  vim.cmd(command)
  h.wait(20000, function()
    return #st.run_order > before
  end, "the run of " .. command .. " to start")
  local run = st.runs[st.run_order[#st.run_order]]
  h.wait(60000, function()
    return run.status ~= "running"
  end, "the run of " .. command .. " to end")
  return run
end

H.run(function(h)
  local buf = h.edit("mathx/stats.py")
  h.wait_attached(buf)
  local def_line = S.line_of(buf, "def mean(values: list[float]) -> float:")
  local out = {}
  if MODE ~= "missing_key" then
    vim.api.nvim_win_set_cursor(0, { def_line, 4 })
    out.edit_status = run_to_end(h, "AgentlsEdit make it faster").status
    vim.api.nvim_set_current_win(vim.fn.win_findbuf(buf)[1])
    out.ask_status = run_to_end(h, "AgentlsAsk what does clamp do?").status
    local answer = h.buffer_named("agentls://answer/")
    out.answer_lines = answer and h.lines(answer) or vim.NIL
    vim.api.nvim_set_current_win(vim.fn.win_findbuf(buf)[1])
  end
  vim.api.nvim_win_set_cursor(0, { def_line, 4 })
  out.failed_status = run_to_end(h, "AgentlsTests").status
  vim.wait(1000) -- any late message
  out.shown = {}
  for _, m in ipairs(h.messages) do
    table.insert(out.shown, { message = m.message, server = m.server == true })
  end
  return out
end)

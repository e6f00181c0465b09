-- Without an agent run: setup{} attaches one client, the standard code action menu offers "Implement",
-- `workspace/configuration` is answered from setup's settings, `:checkhealth agentls` reports.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")
local S = dofile(here .. "scenario.lua")

H.run(function(h)
  local buf = h.edit("mathx/stats.py")
  local client = h.wait_attached(buf)
  -- A second file of the same root reuses the client.
  vim.cmd("split")
  local other = h.edit("tests/test_stats.py")
  h.wait(10000, function()
    return h.agentls_client(other) ~= nil
  end, "the second buffer to attach")
  local same_client = h.agentls_client(other).id == client.id
  vim.cmd("close")

  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_win_set_cursor(0, { S.line_of(buf, "def mean(values: list[float]) -> float:"), 4 })
  local titles = S.code_action_titles(h)

  -- What the server gets when it asks for its settings (Neovim answers with the plugin's handler).
  local configuration = client.handlers["workspace/configuration"](nil, {
    items = { { section = "agentls" }, { section = "agentls.index.embedding" }, { section = "other" } },
  }, { client_id = client.id, method = "workspace/configuration" })
  local stats =
    require("agentls.compat").request_sync(client, "agentls/serverStats", vim.empty_dict(), 10000, buf)

  vim.cmd("checkhealth agentls")
  local health = h.lines(0)
  return {
    titles = titles,
    same_client = same_client,
    clients = #require("agentls").clients(),
    encoding = client.offset_encoding,
    configuration = configuration,
    server_settings = stats and stats.result and stats.result.settings or vim.NIL,
    server_encoding = stats and stats.result and stats.result.positionEncoding or vim.NIL,
    health = health,
    status = require("agentls").status(),
    nvim_011 = vim.fn.has("nvim-0.11") == 1,
  }
end)

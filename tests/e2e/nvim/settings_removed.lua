-- A setting the user removes from setup{settings} goes away on the running server: setup{} with
-- `agent.model.model` set, then setup{} again without it (the user edited the config and sourced it).
-- The result holds the model the server reports (agentls/serverStats) before and after, and how many
-- agentls clients run at the end (the second setup{} must not start another server).
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")

local MODEL = "claude-from-neovim"

local function server_model(client, bufnr)
  local stats =
    require("agentls.compat").request_sync(client, "agentls/serverStats", vim.empty_dict(), 10000, bufnr)
  return stats and stats.result and stats.result.settings.agent.model.model or vim.NIL
end

H.run(function(h)
  local opts = vim.fn.json_decode(os.getenv("AGENTLS_NVIM_SETUP"))
  opts.settings.agent.model.model = MODEL
  require("agentls").setup(vim.deepcopy(opts))
  local buf = h.edit("mathx/stats.py")
  local client = h.wait_attached(buf)
  local before
  h.wait(20000, function()
    before = server_model(client, buf)
    return before == MODEL
  end, "the server to use the model of setup{settings}")

  opts.settings.agent.model.model = nil
  require("agentls").setup(vim.deepcopy(opts))
  local after
  h.wait(20000, function()
    after = server_model(client, buf)
    return after ~= MODEL
  end, "the server to drop the removed setting")
  vim.wait(500) -- a second server, if setup{} started one, attaches by now
  return { before = before, after = after, clients = #require("agentls").clients() }
end)

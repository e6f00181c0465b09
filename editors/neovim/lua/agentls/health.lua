--- `:checkhealth agentls`: Neovim version, the server executable, running servers, settings.
local compat = require("agentls.compat")

local M = {}

local function inline(value)
  local text = vim.inspect(value, { newline = " ", indent = "" })
  if #text > 300 then
    text = text:sub(1, 297) .. "..."
  end
  return text
end

function M.check()
  local health = compat.health()
  health.start("agentls")

  local version = compat.version_string()
  if compat.at_least(0, 7) then
    health.ok("Neovim " .. version)
    health.info("LSP API path: " .. compat.lsp_api())
  else
    health.error("Neovim " .. version .. " is too old", { "agentls needs Neovim 0.7 or later" })
  end

  local agentls = require("agentls")
  local state = agentls._state
  if state == nil then
    health.warn("setup{} has not been called", { "add require('agentls').setup{} to your init.lua" })
    return
  end
  health.ok("setup{} called; filetypes: " .. table.concat(state.config.filetypes, ", "))

  local cmd = state.config.cmd
  local path = vim.fn.exepath(cmd[1])
  if path ~= "" then
    health.ok(string.format("server command: %s (%s)", table.concat(cmd, " "), path))
  else
    health.error(string.format("`%s` is not an executable on $PATH", cmd[1]), {
      "install the server: pip install -e /path/to/agentls (or pipx install /path/to/agentls)",
      "or set cmd = { '/path/to/agentls', 'serve', '--stdio' } in setup{}",
    })
  end

  local env = state.config.cmd_env or {}
  if (env.ANTHROPIC_API_KEY or vim.env.ANTHROPIC_API_KEY or "") ~= "" then
    health.ok("ANTHROPIC_API_KEY is set (agent runs can reach the model)")
  else
    health.warn("ANTHROPIC_API_KEY is not set: search and code actions work, agent runs will fail", {
      "export ANTHROPIC_API_KEY before starting Neovim, or pass it in setup{ cmd_env = {...} }",
    })
  end
  local base_url = env.ANTHROPIC_BASE_URL or vim.env.ANTHROPIC_BASE_URL
  if base_url and base_url ~= "" then
    health.info("ANTHROPIC_BASE_URL: " .. base_url)
  end

  local clients = agentls.clients()
  if #clients == 0 then
    health.info("no agentls server is running (it starts when a buffer of a configured filetype opens)")
  end
  for _, client in ipairs(clients) do
    local buffers = vim.tbl_count(client.attached_buffers or {})
    local info = state.server_info and state.server_info[client.id]
    local name = info and string.format("%s %s", tostring(info.name), tostring(info.version)) or "agentls"
    local root = client.config and client.config.root_dir or "?"
    if client.initialized then
      health.ok(
        string.format(
          "%s running (client %d): root %s, %d buffer(s), positions in %s",
          name,
          client.id,
          root,
          buffers,
          tostring(client.offset_encoding)
        )
      )
    else
      health.warn(string.format("client %d for %s is still starting", client.id, root))
    end
  end

  local running, pending = 0, state:pending_count()
  for _, run in pairs(state.runs) do
    if run.status == "running" then
      running = running + 1
    end
  end
  health.info(string.format("agent runs running: %d; proposals waiting: %d", running, pending))
  health.info("settings (section agentls): " .. inline(state.config.settings))
end

return M

--- `:checkhealth agentls`: Neovim version, the server executable, running servers, settings (credentials
--- masked).
local compat = require("agentls.compat")

local M = {}

-- Credentials in the settings never show here (:checkhealth output gets pasted into issues): the values
-- of an MCP server's `env` and `headers`, the value of a `--token`-style argument, a field named like a
-- credential, the user info and query of a URL. The same rules as the server's agent/credential_fields.py.
local SECRET_MAPS = { env = true, headers = true }
local CREDENTIAL_WORDS = {
  "secret",
  "passw",
  "api_key",
  "api-key",
  "apikey",
  "access_key",
  "credential",
  "auth",
  "cookie",
  "bearer",
}

local function masked(value)
  if value == "" then
    return "<empty>"
  end
  return string.format("<set, %d char%s>", #value, #value == 1 and "" or "s")
end

local function names_credential(name)
  local lower = string.lower(tostring(name))
  if lower:sub(-4) == "_env" then
    return false
  end
  if lower:find("token[^s]") or lower:sub(-5) == "token" then
    return true
  end
  for _, word in ipairs(CREDENTIAL_WORDS) do
    if lower:find(word, 1, true) then
      return true
    end
  end
  return false
end

local function mask_urls(text)
  text = text:gsub("(%a[%w+.-]*://)[^/@%s]+@", "%1***@")
  return (text:gsub("(%a[%w+.-]*://[^%s?]*)%?[^%s#]*", "%1?***"))
end

local function mask_args(args)
  local out, secret_next = {}, false
  for i, arg in ipairs(args) do
    if type(arg) ~= "string" then
      out[i] = arg
    elseif secret_next then
      out[i], secret_next = masked(arg), false
    else
      local name, value = arg:match("^([^=]+)=(.*)$")
      if name and names_credential(name) then
        out[i] = name .. "=" .. masked(value)
      elseif arg:sub(1, 1) == "-" and names_credential(arg) then
        out[i], secret_next = arg, true
      else
        out[i] = mask_urls(arg)
      end
    end
  end
  return out
end

--- `settings` with every credential masked (key names kept).
function M.mask_settings(value, name)
  if type(value) == "string" then
    if value ~= "" and name ~= nil and type(name) == "string" and names_credential(name) then
      return masked(value)
    end
    return mask_urls(value)
  end
  if type(value) ~= "table" then
    return value
  end
  if name == "args" then
    return mask_args(value)
  end
  local out = {}
  for key, item in pairs(value) do
    if SECRET_MAPS[name] and type(item) == "string" then
      out[key] = masked(item)
    else
      out[key] = M.mask_settings(item, key)
    end
  end
  return setmetatable(out, getmetatable(value))
end

local function inline(value)
  local text = vim.inspect(value, { newline = " ", indent = "" })
  if #text > 300 then
    text = text:sub(1, 297) .. "..."
  end
  return text
end

--- A variable of the server's environment: `cmd_env` over Neovim's.
local function server_env(env, name)
  local value = env[name]
  if value == nil then
    value = vim.env[name]
  end
  return type(value) == "string" and value or ""
end

--- Whether agent runs have the key the model settings of setup{} ask for, as the server reads it:
--- `agent.model.api_key_env` (default ANTHROPIC_API_KEY, or ANTHROPIC_AUTH_TOKEN), or with provider
--- "openai" OPENAI_API_KEY, optional there (Ollama and LM Studio take none).
local function check_model_key(health, settings, env)
  local agent = type(settings.agent) == "table" and settings.agent or {}
  local model = type(agent.model) == "table" and agent.model or {}
  local key_env = type(model.api_key_env) == "string" and model.api_key_env or nil
  if model.provider == "openai" then
    key_env = key_env or "OPENAI_API_KEY"
    if server_env(env, key_env) ~= "" then
      health.ok(key_env .. " is set (agent.model.provider = openai)")
    else
      health.info(
        key_env .. " is not set (agent.model.provider = openai): fine for a server that takes no key (Ollama)"
      )
    end
    return
  end
  key_env = key_env or "ANTHROPIC_API_KEY"
  if server_env(env, key_env) ~= "" then
    health.ok(key_env .. " is set (agent runs can reach the model)")
  elseif server_env(env, "ANTHROPIC_AUTH_TOKEN") ~= "" then
    health.ok("ANTHROPIC_AUTH_TOKEN is set (agent runs can reach the model)")
  else
    health.warn(key_env .. " is not set: search and code actions work, agent runs will fail", {
      "export " .. key_env .. " before starting Neovim, or pass it in setup{ cmd_env = {...} }",
      "(agentls.toml may choose another model: agent.model.provider, agent.model.api_key_env)",
    })
  end
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
  check_model_key(health, state.config.settings, env)
  local base_url = env.ANTHROPIC_BASE_URL or vim.env.ANTHROPIC_BASE_URL
  if base_url and base_url ~= "" then
    health.info("ANTHROPIC_BASE_URL: " .. mask_urls(base_url))
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
  health.info("settings (section agentls): " .. inline(M.mask_settings(state.config.settings)))
end

return M

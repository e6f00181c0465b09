-- Shared helpers of the headless Neovim scenarios that tests/e2e/test_neovim*.py run.
--
-- The Python test starts `nvim --headless -u NONE -i NONE -n -c "luafile SCENARIO"` with:
--   AGENTLS_NVIM_PLUGIN   the plugin folder (editors/neovim), put on 'runtimepath'
--   AGENTLS_NVIM_OUT      where the scenario's JSON result is written
--   AGENTLS_NVIM_SETUP    JSON of the options for require("agentls").setup{}
--   AGENTLS_NVIM_ROOT     the fixture workspace
-- A scenario calls `harness.run(function(h) ... return result end)`; the result (or the error with its
-- traceback) is written as JSON together with every message the user saw, then Neovim quits: each
-- vim.notify, and each `window/showMessage` of a server that reached Neovim's handler (0.7 echoes those
-- instead of notifying), with `server = true`.
local H = {}

H.messages = {}

local function env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error("the test harness needs $" .. name)
  end
  return value
end

H.root = env("AGENTLS_NVIM_ROOT")
H.out = env("AGENTLS_NVIM_OUT")

local function write_result(result)
  local file = assert(io.open(H.out, "w"))
  file:write(vim.fn.json_encode(result))
  file:close()
end

--- Wait until `cond()` is truthy, processing events; fail the scenario with `what` after `ms`.
function H.wait(ms, cond, what)
  local ok = vim.wait(ms, function()
    local good, value = pcall(cond)
    return good and value
  end, 50)
  if not ok then
    error(string.format("timed out after %d ms waiting for %s", ms, what), 2)
  end
end

function H.read(path)
  local file = io.open(path, "r")
  if not file then
    return nil
  end
  local text = file:read("*a")
  file:close()
  return text
end

function H.lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

--- Open `rel` (relative to the workspace) in the current window; returns the buffer.
function H.edit(rel)
  vim.cmd("edit " .. vim.fn.fnameescape(H.root .. "/" .. rel))
  return vim.api.nvim_get_current_buf()
end

function H.agentls_client(bufnr)
  for _, client in ipairs(require("agentls").clients()) do
    if client.attached_buffers[bufnr] and client.initialized then
      return client
    end
  end
  return nil
end

--- The first buffer whose name starts with `prefix`, or nil.
function H.buffer_named(prefix)
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.startswith(vim.api.nvim_buf_get_name(bufnr), prefix) then
      return bufnr
    end
  end
  return nil
end

--- Wait for the buffer's agentls client, and for the server's first index of the workspace.
function H.wait_attached(bufnr, ms)
  H.wait(ms or 30000, function()
    return H.agentls_client(bufnr) ~= nil
  end, "the agentls client to attach and initialize")
  return H.agentls_client(bufnr)
end

--- Kill the server process of `client` with SIGKILL, as a crash would (0.7 has its pid on `client.rpc`;
--- later releases do not say it: the child of this Neovim running `server.cli`).
function H.kill_server(client)
  local pid = client.rpc and client.rpc.pid
  if pid == nil then
    local children = vim.fn.systemlist({ "pgrep", "-P", tostring(vim.fn.getpid()), "-f", "server.cli" })
    pid = tonumber(children[1])
  end
  assert(pid, "no server process to kill")
  vim.loop.kill(pid, 9)
  return pid
end

--- Record the plugin's `workspace/executeCommand` requests: returns `sent` (their params, in order) and
--- `answers` (by the same index: `{error, result}` once the server has answered).
function H.record_commands()
  local compat = require("agentls.compat")
  local sent, answers = {}, {}
  local request = compat.request
  compat.request = function(client, method, params, handler, bufnr)
    if method ~= "workspace/executeCommand" then
      return request(client, method, params, handler, bufnr)
    end
    table.insert(sent, params)
    local index = #sent
    local wrapped = function(err, result, ...)
      answers[index] =
        { error = err and err.message or vim.NIL, result = result == nil and vim.NIL or result }
      return handler(err, result, ...)
    end
    return request(client, method, params, wrapped, bufnr)
  end
  return sent, answers
end

function H.run(scenario)
  vim.opt.runtimepath:prepend(env("AGENTLS_NVIM_PLUGIN"))
  vim.cmd("filetype on")
  vim.cmd("runtime! plugin/agentls.lua")
  local notify = vim.notify
  local in_show_message = false
  vim.notify = function(msg, level, opts)
    if not in_show_message then
      table.insert(H.messages, { message = tostring(msg), level = level or vim.log.levels.INFO })
    end
    return notify(msg, level, opts)
  end
  -- What reaches Neovim's own showMessage handler is shown to the user (a plugin may drop some first).
  local show_message = vim.lsp.handlers["window/showMessage"]
  vim.lsp.handlers["window/showMessage"] = function(err, params, ctx, cfg)
    if type(params) == "table" then
      -- LSP's MessageType (1 Error .. 4 Log) as vim.log.levels (ERROR 4 .. DEBUG 1).
      local levels = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG }
      local level = levels[params.type] or vim.log.levels.INFO
      table.insert(H.messages, { message = tostring(params.message), level = level, server = true })
    end
    in_show_message = true
    local ok, result = pcall(show_message, err, params, ctx, cfg)
    in_show_message = false
    if not ok then
      error(result)
    end
    return result
  end
  require("agentls").setup(vim.fn.json_decode(env("AGENTLS_NVIM_SETUP")))
  local ok, result = xpcall(function()
    return scenario(H)
  end, debug.traceback)
  local out = { ok = ok, messages = H.messages }
  if ok then
    out.result = result
  else
    out.error = tostring(result)
  end
  write_result(out)
  -- Stop the servers and give them a moment to exit cleanly before Neovim quits.
  for _, client in ipairs(require("agentls").clients()) do
    pcall(require("agentls.compat").stop, client)
  end
  vim.wait(3000, function()
    return #require("agentls").clients() == 0
  end, 50)
  vim.cmd("qa!")
end

return H

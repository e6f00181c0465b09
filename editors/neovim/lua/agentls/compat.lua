--- Small shims over the Neovim APIs that changed between 0.7 (Debian's) and current releases.
---
--- 0.7 has no `vim.lsp.start`, `vim.lsp.get_clients`, `vim.fs` or `vim.health`; 0.11 deprecates the
--- `client.request(...)` call style in favour of `client:request(...)`. Everything version-dependent the
--- plugin does goes through here, so the rest reads the same on every release.
local M = {}

local has_011 = vim.fn.has("nvim-0.11") == 1

--- `major.minor.patch` of the running Neovim.
function M.version_string()
  local v = vim.version()
  return string.format("%d.%d.%d", v.major, v.minor, v.patch)
end

--- Whether the running Neovim is at least `major.minor`.
function M.at_least(major, minor)
  return vim.fn.has(string.format("nvim-%d.%d", major, minor)) == 1
end

--- Which LSP APIs the plugin uses on this Neovim, for `:checkhealth agentls`.
function M.lsp_api()
  local start = vim.lsp.start and "vim.lsp.start" or "vim.lsp.start_client + vim.lsp.buf_attach_client"
  local calls = has_011 and "client:request/notify/stop (method calls)"
    or "client.request/notify/stop (0.7-0.10 fields)"
  local clients = vim.lsp.get_clients and "vim.lsp.get_clients" or "vim.lsp.get_active_clients"
  return string.format("%s, %s, %s", start, calls, clients)
end

--- `client:request` on 0.11+, `client.request` before (the method form does not exist on 0.7).
function M.request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.request_sync(client, method, params, timeout_ms, bufnr)
  if has_011 then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

function M.notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.stop(client, force)
  if has_011 then
    return client:stop(force)
  end
  return client.stop(force)
end

function M.is_stopped(client)
  if has_011 then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- Every active LSP client, those still starting included (both APIs return a list; 0.11+ leaves
--- uninitialized clients out unless asked).
function M.clients()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ _uninitialized = true })
  end
  return vim.lsp.get_active_clients()
end

--- `vim.notify` on the next tick: from an autocommand, an ERROR notify raises on 0.11+ and would stop
--- the code that triggered it.
function M.notify_later(message, level)
  vim.schedule(function()
    vim.notify(message, level)
  end)
end

--- Whether `client` is attached to `bufnr` (0.7 has no filter argument on `get_active_clients`).
function M.attached(client, bufnr)
  return client.attached_buffers ~= nil and client.attached_buffers[bufnr] == true
end

--- A JSON object even when empty: an empty Lua table would be encoded as `[]`.
function M.object(value)
  if type(value) ~= "table" then
    return vim.empty_dict()
  end
  if next(value) == nil then
    return vim.empty_dict()
  end
  return value
end

--- Whether `value` is a list (`vim.islist` replaced `vim.tbl_islist` in 0.10).
function M.islist(value)
  if type(value) ~= "table" then
    return false
  end
  if vim.islist then
    return vim.islist(value)
  end
  return vim.tbl_islist(value)
end

--- The nearest folder at or above `path`'s folder that holds one of `markers` (0.7 has no `vim.fs`).
function M.find_root(path, markers)
  local dir = vim.fn.fnamemodify(path, ":p:h")
  while dir ~= nil and dir ~= "" do
    for _, marker in ipairs(markers) do
      if vim.loop.fs_stat(dir .. "/" .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      return nil
    end
    dir = parent
  end
  return nil
end

--- `:checkhealth` reporters: `vim.health.start/ok/...` (0.10+), `vim.health.report_*` (0.8-0.9), or the
--- `health#report_*` Vimscript functions of 0.7.
function M.health()
  local h = vim.health
  if h and h.start then
    return { start = h.start, ok = h.ok, warn = h.warn, error = h.error, info = h.info }
  end
  if h and h.report_start then
    return {
      start = h.report_start,
      ok = h.report_ok,
      warn = h.report_warn,
      error = h.report_error,
      info = h.report_info,
    }
  end
  local function vimscript(name)
    return function(msg, advice)
      if advice ~= nil then
        vim.fn["health#report_" .. name](msg, advice)
      else
        vim.fn["health#report_" .. name](msg)
      end
    end
  end
  return {
    start = vimscript("start"),
    ok = vimscript("ok"),
    warn = vimscript("warn"),
    error = vimscript("error"),
    info = vimscript("info"),
  }
end

return M

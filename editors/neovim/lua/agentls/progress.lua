--- `$/progress` from the server (indexing, agent runs): kept for the statusline, announced on begin and end
--- (an agent run's only in the statusline: the plugin says when a run starts and how it ended).
local M = {}

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "agentls" })
end

--- Tell statusline plugins and `User AgentlsStatus` autocommands that `status()` changed.
function M.changed()
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "AgentlsStatus", modeline = false })
  pcall(vim.cmd, "redrawstatus")
end

--- The server's titles often start with "agentls" already.
local function title_of(entry)
  return (tostring(entry.title or ""):gsub("^agentls:?%s*", ""))
end

local function text(entry)
  local parts = { title_of(entry) }
  if entry.message and entry.message ~= "" then
    table.insert(parts, entry.message)
  end
  if type(entry.percentage) == "number" then
    table.insert(parts, string.format("%d%%", entry.percentage))
  end
  return table.concat(parts, " ")
end

--- The `$/progress` handler: Neovim's own handler still runs (other statusline plugins read it).
function M.handler(state)
  return function(err, result, ctx, cfg)
    local default = vim.lsp.handlers["$/progress"]
    if default then
      pcall(default, err, result, ctx, cfg)
    end
    if err or type(result) ~= "table" or type(result.value) ~= "table" then
      return
    end
    local value = result.value
    local key = tostring(ctx.client_id) .. ":" .. tostring(result.token)
    if value.kind == "begin" then
      local entry =
        { title = value.title or "agentls", message = value.message, percentage = value.percentage }
      -- The server begins an agent run's progress with the message "starting" (indexing has none). Its
      -- start is said when the run command is answered, its end by agentls/proposalReady or runFailed
      -- (and the server): announced here too, each would be said twice, a failure three times.
      entry.run = value.message == "starting"
      state:set_progress(key, entry)
      if state.config.notify_progress and not entry.run then
        notify("agentls: " .. text(entry))
      end
    elseif value.kind == "report" then
      local entry = state.progress[key] or { title = "agentls" }
      if value.message ~= nil then
        entry.message = value.message
      end
      if value.percentage ~= nil then
        entry.percentage = value.percentage
      end
      state:set_progress(key, entry)
    elseif value.kind == "end" then
      local entry = state.progress[key] or { title = "agentls" }
      state:set_progress(key, nil)
      if state.config.notify_progress and not entry.run then
        notify("agentls: " .. title_of(entry) .. ": " .. (value.message or "done"))
      end
    end
    M.changed()
  end
end

--- One line for a statusline: pending proposals first (they wait for the user), then the newest progress
--- or else the running agents; "" when there is nothing to say.
function M.status(state)
  if state == nil then
    return ""
  end
  local parts = {}
  local pending = state:pending_count()
  if pending == 1 then
    table.insert(parts, "proposal ready (:AgentlsDiff)")
  elseif pending > 1 then
    table.insert(parts, string.format("%d proposals ready (:AgentlsDiff)", pending))
  end
  local entry = state:latest_progress()
  local run = state:latest_running()
  if entry then
    table.insert(parts, text(entry))
  elseif run then
    table.insert(parts, (run.title or run.kind or "agent") .. " running")
  end
  if #parts == 0 then
    return ""
  end
  return "agentls: " .. table.concat(parts, " · ")
end

return M

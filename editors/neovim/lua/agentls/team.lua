--- Team runs in Neovim: the `agentls/runEvent` notifications (the plan/todo list, role changes, each
--- role's handoff and any run's warnings) kept per run, and the run's scratch buffer (`:AgentlsRun`,
--- `:AgentlsTeam`) that shows them as Markdown and follows new events while it is open.
local M = {}

local BUFFER_PREFIX = "agentls://run/"

local TODO_MARK = { done = "[x]", in_progress = "[~]", pending = "[ ]" }

local split_lines = require("agentls.review").split_lines

local function is_set(value)
  return value ~= nil and value ~= vim.NIL
end

--- The events of `run_id` so far: `{ todo = items, roles = {role = state}, role_order, handoffs, warnings }`.
function M.events(state, run_id)
  state.run_events = state.run_events or {}
  state.run_event_order = state.run_event_order or {}
  local events = state.run_events[run_id]
  if events == nil then
    events = { todo = {}, roles = {}, role_order = {}, handoffs = {}, warnings = {} }
    state.run_events[run_id] = events
    table.insert(state.run_event_order, run_id)
  end
  return events
end

--- Record one `agentls/runEvent`.
function M.record(state, params)
  local events = M.events(state, params.runId)
  if params.kind == "todo" and type(params.items) == "table" then
    events.todo = params.items
  elseif params.kind == "role" and is_set(params.role) then
    if events.roles[params.role] == nil then
      table.insert(events.role_order, params.role)
    end
    events.roles[params.role] = is_set(params.state) and params.state or "?"
  elseif params.kind == "handoff" then
    table.insert(events.handoffs, {
      role = is_set(params.role) and params.role or "?",
      node = is_set(params.node) and params.node or nil,
      handoff = is_set(params.handoff) and params.handoff or "handoff",
      markdown = is_set(params.markdown) and params.markdown or nil,
      document = is_set(params.document) and params.document or nil,
    })
  elseif params.kind == "warning" then
    table.insert(events.warnings, {
      subject = is_set(params.subject) and params.subject or nil,
      message = is_set(params.message) and params.message or "(no message)",
    })
  elseif is_set(params.kind) then
    -- A kind this plugin does not know yet: keep its text rather than drop it.
    table.insert(events.warnings, {
      subject = tostring(params.kind),
      message = is_set(params.message) and params.message
        or is_set(params.markdown) and params.markdown
        or "",
    })
  end
  return events
end

--- The run buffer's lines: the warnings, the plan/todo list, the roles, then each handoff as it arrived.
function M.lines(state, run_id)
  local run = state.runs[run_id]
  local events = M.events(state, run_id)
  local out = { "# agentls run " .. tostring(run_id) .. (run and run.title and (": " .. run.title) or "") }
  if run and run.status then
    table.insert(out, "status: " .. tostring(run.status))
  end
  if #events.warnings > 0 then
    table.insert(out, "")
    table.insert(out, "## Warnings")
    for _, w in ipairs(events.warnings) do
      local body = split_lines(w.message)
      local subject = w.subject and (w.subject .. ": ") or ""
      table.insert(out, "- " .. subject .. (body[1] or ""))
      for i = 2, #body do
        table.insert(out, "  " .. body[i])
      end
    end
  end
  table.insert(out, "")
  table.insert(out, "## Plan")
  if #events.todo == 0 then
    table.insert(out, "(no plan yet)")
  end
  for _, item in ipairs(events.todo) do
    if type(item) == "table" then
      local mark = TODO_MARK[item.status] or "[ ]"
      table.insert(out, string.format("- %s %s", mark, tostring(item.text or item.id or "")))
    end
  end
  if #events.role_order > 0 then
    table.insert(out, "")
    table.insert(out, "## Roles")
    for _, role in ipairs(events.role_order) do
      table.insert(out, string.format("- %s: %s", role, tostring(events.roles[role])))
    end
  end
  for _, h in ipairs(events.handoffs) do
    table.insert(out, "")
    local node = h.node and (" (" .. h.node .. ")") or ""
    table.insert(out, string.format("## %s: %s%s", h.role, h.handoff, node))
    local body = split_lines(h.markdown)
    if #body == 0 and h.document then
      body = split_lines(vim.fn.json_encode(h.document))
    end
    vim.list_extend(out, body)
  end
  return out
end

local function buffer_of(run_id)
  local bufnr = vim.fn.bufnr("^" .. BUFFER_PREFIX .. tostring(run_id) .. "$")
  if bufnr == -1 or not vim.api.nvim_buf_is_valid(bufnr) then
    return nil
  end
  return bufnr
end

local function fill(state, bufnr, run_id)
  vim.bo[bufnr].modifiable = true
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, M.lines(state, run_id))
  vim.bo[bufnr].modifiable = false
end

--- Open (or refresh) the buffer of `run_id` (default: the latest run with events, else the latest run).
function M.show(state, run_id)
  if run_id == nil then
    local order = state.run_event_order or {}
    run_id = order[#order] or state.run_order[#state.run_order]
  end
  if run_id == nil then
    local msg = "agentls: no agent run yet; :AgentlsTeam starts one"
    vim.notify(msg, vim.log.levels.WARN, { title = "agentls" })
    return nil
  end
  local bufnr = buffer_of(run_id)
  if bufnr == nil then
    bufnr = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(bufnr, BUFFER_PREFIX .. tostring(run_id))
    vim.bo[bufnr].buftype = "nofile"
    vim.bo[bufnr].bufhidden = "hide"
    vim.bo[bufnr].swapfile = false
    vim.bo[bufnr].filetype = "markdown"
    vim.b[bufnr].agentls_run_id = run_id
    vim.keymap.set("n", state.config.preview.keys.close, "<cmd>close<cr>", { buffer = bufnr, silent = true })
  end
  fill(state, bufnr, run_id)
  if #vim.fn.win_findbuf(bufnr) == 0 then
    local previous = vim.api.nvim_get_current_win()
    vim.cmd("botright vsplit")
    vim.api.nvim_win_set_buf(0, bufnr)
    vim.api.nvim_set_current_win(previous)
  end
  return bufnr
end

--- The `agentls/runEvent` handler: record the event, refresh the run's buffer when it is loaded.
function M.handler(state)
  return function(_, params)
    if type(params) ~= "table" or params.runId == nil then
      return
    end
    M.record(state, params)
    local bufnr = buffer_of(params.runId)
    if bufnr then
      fill(state, bufnr, params.runId)
    end
  end
end

return M

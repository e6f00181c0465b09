--- The names the plugin shares with the agentls server: command ids, custom methods, code action kinds.
---
--- These mirror `server/features/commands.py`, `server/features/code_actions.py` and the contract in
--- the design notes; change them there first. Nothing else in the plugin spells these strings.
local M = {}

M.commands = {
  implement = "agentls.implement",
  fix = "agentls.fix",
  write_tests = "agentls.writeTests",
  edit = "agentls.edit",
  ask = "agentls.ask",
  accept = "agentls.accept",
  accept_and_commit = "agentls.acceptAndCommit",
  run = "agentls.run",
  reject = "agentls.reject",
  cancel = "agentls.cancel",
  reindex = "agentls.reindex",
}

--- Commands that start an agent run: they answer `{runId}` at once; the run ends with a notification.
M.run_commands = {
  [M.commands.implement] = "implement",
  [M.commands.fix] = "fix",
  [M.commands.write_tests] = "tests",
  [M.commands.edit] = "edit",
  [M.commands.ask] = "ask",
  [M.commands.run] = "run", -- a free-form task ("solo") or a team
}

--- LSP's RequestFailed: the server refused a valid request, with a message written for the user.
M.request_failed = -32803

M.methods = {
  proposal_ready = "agentls/proposalReady",
  run_failed = "agentls/runFailed",
  run_event = "agentls/runEvent",
  proposal = "agentls/proposal",
  search = "agentls/search",
  runs = "agentls/runs",
  execute_command = "workspace/executeCommand",
  apply_edit = "workspace/applyEdit",
  configuration = "workspace/configuration",
  did_change_configuration = "workspace/didChangeConfiguration",
  show_message = "window/showMessage",
  progress = "$/progress",
}

M.code_action_kinds = {
  implement = "refactor.rewrite.agentls.implement",
  fix = "quickfix.agentls.fix",
  tests = "refactor.agentls.tests",
}

--- The settings section the server asks for with `workspace/configuration`.
M.section = "agentls"

return M

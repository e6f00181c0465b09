-- The :Agentls* commands. They call require("agentls"), which does nothing until setup{} is called.
if vim.g.loaded_agentls then
  return
end
vim.g.loaded_agentls = true

local function agentls()
  return require("agentls")
end

local function range_of(opts)
  if opts.range and opts.range > 0 then
    return { line1 = opts.line1, line2 = opts.line2 }
  end
  return nil
end

local command = vim.api.nvim_create_user_command

command("AgentlsImplement", function()
  agentls().implement()
end, { desc = "agentls: implement the stub function at the cursor" })

command("AgentlsEdit", function(opts)
  agentls().edit(opts.args, { range = range_of(opts) })
end, { nargs = "*", range = true, desc = "agentls: edit the line or range by an instruction" })

command("AgentlsAsk", function(opts)
  agentls().ask(opts.args, { range = range_of(opts) })
end, { nargs = "*", range = true, desc = "agentls: ask a question about the code" })

command("AgentlsFix", function()
  agentls().fix()
end, { desc = "agentls: fix the diagnostics on the cursor line" })

command("AgentlsTests", function()
  agentls().tests()
end, { desc = "agentls: write tests for the function at the cursor" })

command("AgentlsAccept", function(opts)
  agentls().accept(opts.args ~= "" and opts.args or nil)
end, { nargs = "?", desc = "agentls: accept a proposal (the latest by default)" })

command("AgentlsReject", function(opts)
  agentls().reject(opts.args ~= "" and opts.args or nil)
end, { nargs = "?", desc = "agentls: reject a proposal (the latest by default)" })

command("AgentlsDiff", function(opts)
  agentls().diff(opts.args ~= "" and opts.args or nil)
end, { nargs = "?", desc = "agentls: show a proposal's diff (the latest by default)" })

command("AgentlsCancel", function(opts)
  agentls().cancel(opts.args ~= "" and opts.args or nil)
end, { nargs = "?", desc = "agentls: cancel an agent run (the latest by default)" })

command("AgentlsSearch", function(opts)
  agentls().search(opts.args, { files = opts.bang })
end, { nargs = "*", bang = true, desc = "agentls: search the code index into the quickfix list (!: files)" })

command("AgentlsReindex", function()
  agentls().reindex()
end, { desc = "agentls: re-index the workspace" })

command("AgentlsTask", function(opts)
  agentls().task(opts.args, { range = range_of(opts) })
end, { nargs = "*", range = true, desc = "agentls: run the agent on a free-form task (as `agentls run`)" })

command("AgentlsTeam", function(opts)
  agentls().team(opts.args, { range = range_of(opts) })
end, { nargs = "*", range = true, desc = "agentls: run the agent team (planner, architect, coder, QA)" })

command("AgentlsRun", function(opts)
  agentls().run_view(opts.args)
end, { nargs = "?", desc = "agentls: show a run's plan, todo list and handoffs (the latest by default)" })

--- Agent runs and their proposals: `workspace/executeCommand`, `agentls/proposalReady`, `agentls/runFailed`.
---
--- A run command answers `{runId}` at once; the run ends with `agentls/proposalReady {proposalId, runId,
--- summary, files}` (the plugin then fetches `agentls/proposal` for the diff and opens the preview) or
--- `agentls/runFailed {runId, message}`. Accepting sends `agentls.accept`, after which the server sends
--- `workspace/applyEdit` (see `agentls.apply`).
local compat = require("agentls.compat")
local protocol = require("agentls.protocol")
local progress = require("agentls.progress")
local messages = require("agentls.messages")

local M = {}

local function notify(msg, level)
  vim.notify("agentls: " .. msg, level or vim.log.levels.INFO, { title = "agentls" })
end

local function first_line(text)
  if type(text) ~= "string" then
    return ""
  end
  return (text:match("^[^\n]*") or "")
end

local function ends_with(text, suffix)
  return suffix ~= "" and text:sub(-#suffix) == suffix
end

local function error_text(err)
  if type(err) == "table" then
    return tostring(err.message or vim.inspect(err))
  end
  return tostring(err)
end

--- What to say about a command's error answer: a refusal (RequestFailed) is worded for the user by the
--- server and said as it is ("agentls did not apply proposal ..."); anything else names the command.
local function refusal_text(command, err)
  local text = error_text(err)
  if type(err) == "table" and err.code == protocol.request_failed then
    return vim.startswith(text, "agentls") and text or ("agentls: " .. text)
  end
  return "agentls: " .. command .. " failed: " .. text
end

--- Send `command` with its one object `argument`. Run commands register the run they start.
--- opts: title, bufnr (the run's buffer), question (for ask), on_result(result), on_error(err).
---
--- The request is sent without a buffer: Neovim then flushes the pending changes (held back by its
--- debounce) of every buffer of the client first, not only of one. A run takes the open buffers as
--- they are when its command arrives; a line typed in another file just before reached the server after
--- the run began (the server then took it for an edit made during the run).
function M.execute(state, client, command, argument, opts)
  opts = opts or {}
  local params = { command = command, arguments = { compat.object(argument) } }
  local kind = protocol.run_commands[command]
  local ok = compat.request(client, protocol.methods.execute_command, params, function(err, result)
    if err then
      -- The server says a refusal to the plugin only here, in the answer (`agentlsClient`).
      vim.notify(refusal_text(command, err), vim.log.levels.ERROR, { title = "agentls" })
      if opts.on_error then
        opts.on_error(err)
      end
      return
    end
    if kind and type(result) == "table" and result.runId ~= nil then
      local known = state.runs[result.runId]
      if known == nil or known.status == "running" then
        state:add_run({
          id = result.runId,
          client_id = client.id,
          kind = kind,
          title = opts.title or kind,
          question = opts.question,
          status = "running",
          bufnr = opts.bufnr,
        })
        notify((opts.title or kind) .. ": started (:AgentlsCancel stops it)")
      else
        -- The run already ended (its notification came first): keep what it left, add what we know.
        known.kind, known.title, known.question = kind, opts.title or kind, opts.question
        local announce = known.announce
        if announce then
          known.announce = nil
          announce()
        end
      end
      progress.changed()
    end
    if opts.on_result then
      opts.on_result(result)
    end
  end)
  if not ok then
    notify("the server is not running; cannot send " .. command, vim.log.levels.ERROR)
  end
end

--- Fetch the full proposal (`agentls/proposal`) and call `done(proposal)` with it merged in.
function M.fetch(proposal, done)
  local client = vim.lsp.get_client_by_id(proposal.client_id)
  if not client then
    notify("the server of proposal " .. tostring(proposal.id) .. " is gone", vim.log.levels.ERROR)
    return
  end
  compat.request(client, protocol.methods.proposal, { proposalId = proposal.id }, function(err, result)
    if err or type(result) ~= "table" then
      notify(
        "cannot fetch proposal " .. tostring(proposal.id) .. ": " .. error_text(err or "no result"),
        vim.log.levels.ERROR
      )
      return
    end
    proposal.diff = result.diff
    proposal.files = result.files or proposal.files
    proposal.summary = result.summary or proposal.summary
    proposal.usage = result.usage
    proposal.cost = type(result.cost) == "number" and result.cost or nil
    if type(result.verified) == "boolean" then
      proposal.verified = result.verified
    end
    proposal.verification = result.verificationSummary or result.verification_summary
    if type(result.commitMessage) == "string" and result.commitMessage ~= "" then
      proposal.commit_message = result.commitMessage
    end
    proposal.team = type(result.team) == "table" and result.team or nil
    proposal.fetched = true
    done(proposal)
  end)
end

local function show_answer(state, run, proposal)
  local title = run and run.question and ("Q: " .. run.question) or "agentls"
  require("agentls.preview").answer(state, title, proposal.summary or "")
end

--- The run a notification is about, added when the server started it without this client asking.
local function run_of(state, params, ctx)
  local run = state.runs[params.runId]
  if run == nil and params.runId ~= nil then
    run = state:add_run({ id = params.runId, client_id = ctx.client_id, kind = "agent", title = "agent run" })
  end
  return run
end

function M.on_proposal_ready(state)
  return function(_, params, ctx)
    if type(params) ~= "table" or params.proposalId == nil then
      return
    end
    local run = run_of(state, params, ctx)
    if run then
      run.status = "done"
      run.proposal_id = params.proposalId
    end
    local files = params.files or {}
    local proposal = state:add_proposal({
      id = params.proposalId,
      run_id = params.runId,
      client_id = ctx.client_id,
      summary = params.summary,
      files = files,
      status = #files > 0 and "pending" or "empty",
    })
    progress.changed()
    if run and run.kind == "ask" or #files == 0 then
      -- The server also shows the summary of a run that changed nothing; said here once, in a window
      -- (an answer) or with what it is about.
      local summary = type(params.summary) == "string" and params.summary or ""
      if #files == 0 then
        local server_text = summary ~= "" and summary or "agentls: the run changed nothing"
        messages.expect(state, ctx.client_id, function(text)
          return text == server_text
        end)
      end
      if run and run.kind == "ask" then
        show_answer(state, run, proposal)
      else
        local what = vim.trim(summary) ~= "" and (": " .. vim.trim(summary)) or ""
        notify(((run and run.title) or "run") .. " finished without changes" .. what)
      end
      return
    end
    notify(
      string.format(
        "proposal ready (%d file(s)): %s  -- :AgentlsDiff, :AgentlsAccept, :AgentlsReject",
        #files,
        first_line(proposal.summary)
      )
    )
    if state.config.auto_preview then
      M.fetch(proposal, function(p)
        if p.status == "pending" then
          require("agentls.preview").open(state, p)
        end
      end)
    end
  end
end

function M.on_run_failed(state)
  return function(_, params, ctx)
    if type(params) ~= "table" then
      return
    end
    local unknown = params.runId ~= nil and state.runs[params.runId] == nil
    local run = run_of(state, params, ctx)
    -- A run the user cancelled ends with runFailed too; whether the cancel's answer came first
    -- ("cancelled") or not ("cancelling"), it was said once already: not a failure in red.
    local cancelled = run ~= nil and (run.status == "cancelling" or run.status == "cancelled")
    if run then
      run.status = cancelled and "cancelled" or "failed"
      run.message = params.message
    end
    progress.changed()
    if cancelled then
      return
    end
    -- The server also shows the failure ("agentls: <its title> failed: <message>", or the message alone
    -- when the run could not start); said here once, with the title the user knows the run by.
    local message = type(params.message) == "string" and params.message or nil
    if message and message ~= "" and params.status ~= "cancelled" then
      local suffix = " failed: " .. message
      messages.expect(state, ctx.client_id, function(text)
        return text == message or (vim.startswith(text, "agentls: ") and ends_with(text, suffix))
      end)
    end
    local function announce()
      notify(
        ((run and run.title) or "run") .. " failed: " .. tostring(params.message or "no reason given"),
        vim.log.levels.ERROR
      )
    end
    if not (run and unknown) then
      announce()
      return
    end
    -- A run that cannot start (no API key) fails before the answer to the command that started it
    -- arrives: said when that answer gives the run its title (`M.execute`), else after a second.
    run.announce = announce
    vim.defer_fn(function()
      if run.announce then
        run.announce = nil
        announce()
      end
    end, 1000)
  end
end

return M

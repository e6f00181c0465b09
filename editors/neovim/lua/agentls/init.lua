--- agentls for Neovim: an AI coding agent behind a language server.
---
--- `require("agentls").setup{...}` starts the agentls server for buffers of the configured filetypes (one
--- client per workspace root) and defines the `:Agentls*` commands' behaviour. Agent runs are started
--- from code actions (`vim.lsp.buf.code_action()`) or the commands below; each ends in a proposal shown
--- as a diff, applied only when accepted. See `:help agentls`.
local config_mod = require("agentls.config")
local State = require("agentls.state")
local client_mod = require("agentls.client")
local protocol = require("agentls.protocol")
local progress = require("agentls.progress")
local runs = require("agentls.runs")
local preview = require("agentls.preview")
local compat = require("agentls.compat")
local review = require("agentls.review")
local team = require("agentls.team")
local messages = require("agentls.messages")

local M = {}

--- The state made by the last `setup{}` (nil before it).
M._state = nil

local function notify(msg, level)
  vim.notify("agentls: " .. msg, level or vim.log.levels.INFO, { title = "agentls" })
end

local function state()
  if M._state == nil then
    notify("call require('agentls').setup{} first (see :help agentls)", vim.log.levels.ERROR)
  end
  return M._state
end

local function install_keymaps(st, bufnr)
  local maps = config_mod.keymaps(st.config)
  local actions = {
    implement = { "n", M.implement },
    edit = {
      { "n", "x" },
      function()
        local mode = vim.api.nvim_get_mode().mode
        if mode == "v" or mode == "V" or mode == "\22" then
          -- Leave visual mode so the '< and '> marks hold this selection.
          vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<Esc>", true, false, true), "nx", false)
          M.edit(nil, { range = true })
        else
          M.edit(nil)
        end
      end,
    },
    ask = {
      "n",
      function()
        M.ask(nil)
      end,
    },
    fix = { "n", M.fix },
    tests = { "n", M.tests },
    diff = {
      "n",
      function()
        M.diff()
      end,
    },
    accept = {
      "n",
      function()
        M.accept()
      end,
    },
    reject = {
      "n",
      function()
        M.reject()
      end,
    },
    cancel = {
      "n",
      function()
        M.cancel()
      end,
    },
  }
  for action, lhs in pairs(maps) do
    local spec = actions[action]
    if spec then
      vim.keymap.set(spec[1], lhs, spec[2], { buffer = bufnr, silent = true, desc = "agentls: " .. action })
    end
  end
end

--- Configure the plugin and attach to matching buffers; see `:help agentls-setup` for the options.
--- Called again (the user sourced an edited config), it keeps the running servers with their runs and
--- proposals, and tells each that its settings changed (`workspace/didChangeConfiguration`): the server
--- asks for them again, so a setting removed from `settings` goes back to its default.
function M.setup(opts)
  local config = config_mod.resolve(opts)
  local user_on_attach = config.on_attach
  -- The same state: the running clients' handlers answer `workspace/configuration` from its config.
  local st = M._state or State.new(config)
  st.config = config
  config.on_attach = function(client, bufnr)
    install_keymaps(st, bufnr)
    if user_on_attach then
      user_on_attach(client, bufnr)
    end
  end
  M._state = st
  local group = vim.api.nvim_create_augroup("agentls", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.filetypes,
    callback = function(args)
      client_mod.attach(st, args.buf)
    end,
    desc = "agentls: attach the language server",
  })
  vim.api.nvim_create_autocmd("VimLeavePre", {
    group = group,
    callback = function()
      st.stopping = true
    end,
  })
  for _, client in ipairs(client_mod.all()) do
    compat.notify(client, protocol.methods.did_change_configuration, {
      settings = { [protocol.section] = compat.object(vim.deepcopy(config.settings)) },
    })
  end
  -- Buffers opened before setup{} ran.
  local wanted = {}
  for _, ft in ipairs(config.filetypes) do
    wanted[ft] = true
  end
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and wanted[vim.bo[bufnr].filetype] then
      client_mod.attach(st, bufnr)
    end
  end
  return M
end

--- A short line for the statusline: indexing or run progress, pending proposals, or "".
function M.status()
  return progress.status(M._state)
end

--- The live agentls clients.
function M.clients()
  return client_mod.all()
end

local function buffer_uri(bufnr)
  return vim.uri_from_bufnr(bufnr)
end

--- The current window's cursor (0-based row, byte column), taken when a command is given: the server
--- may become ready later, when another window or buffer is current.
local function cursor()
  local at = vim.api.nvim_win_get_cursor(0)
  return { row = at[1] - 1, col = at[2] }
end

--- The LSP position of `at` (from `cursor`) in `bufnr`, in the client's offset encoding.
local function position(client, bufnr, at)
  local character = vim.lsp.util.character_offset(bufnr, at.row, at.col, client.offset_encoding)
  return { line = at.row, character = character }
end

--- The LSP range of lines `line1..line2` (1-based, inclusive) of `bufnr`.
local function lines_range(client, bufnr, line1, line2)
  local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ""
  return {
    start = { line = line1 - 1, character = 0 },
    ["end"] = {
      line = line2 - 1,
      character = vim.lsp.util.character_offset(bufnr, line2 - 1, #last, client.offset_encoding),
    },
  }
end

--- The range of the last visual selection (charwise selections keep their columns).
local function visual_range(client, bufnr)
  local s = vim.api.nvim_buf_get_mark(bufnr, "<")
  local e = vim.api.nvim_buf_get_mark(bufnr, ">")
  if vim.fn.visualmode() ~= "v" then
    return lines_range(client, bufnr, s[1], e[1])
  end
  local last = vim.api.nvim_buf_get_lines(bufnr, e[1] - 1, e[1], false)[1] or ""
  -- '> is on the last selected character; the range ends after it (multibyte included).
  local end_byte = math.min(#last, e[2] + #(vim.fn.matchstr(last:sub(e[2] + 1), "^.")))
  return {
    start = {
      line = s[1] - 1,
      character = vim.lsp.util.character_offset(bufnr, s[1] - 1, s[2], client.offset_encoding),
    },
    ["end"] = {
      line = e[1] - 1,
      character = vim.lsp.util.character_offset(bufnr, e[1] - 1, end_byte, client.offset_encoding),
    },
  }
end

--- The range a command applies to: the visual selection, the command's line range, or the cursor line.
local function command_range(client, bufnr, range, at)
  if type(range) == "table" and range.start then
    return range
  end
  if type(range) == "table" and range.line1 then
    local s = vim.api.nvim_buf_get_mark(bufnr, "<")
    local e = vim.api.nvim_buf_get_mark(bufnr, ">")
    if s[1] == range.line1 and e[1] == range.line2 then
      return visual_range(client, bufnr)
    end
    return lines_range(client, bufnr, range.line1, range.line2)
  end
  if range == true then
    return visual_range(client, bufnr)
  end
  return lines_range(client, bufnr, at.row + 1, at.row + 1)
end

--- Adds the buffer a run starts from to its command's `argument`: its uri when it is a file, and the
--- range of `opts.range` (a :range command or a visual selection) in it. Returns `argument`.
local function with_focus(argument, client, bufnr, opts, at)
  if vim.bo[bufnr].buftype == "" and vim.api.nvim_buf_get_name(bufnr) ~= "" then
    argument.uri = buffer_uri(bufnr)
    if opts.range then
      argument.range = command_range(client, bufnr, opts.range, at)
    end
  end
  return argument
end

local function relpath(bufnr)
  return vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ":~:.")
end

--- Where a command applies, to name it while it waits for the server: "file:line" of the cursor `at`
--- (from `cursor`, taken when the command was given, as its request uses it), or "file:first-last" of a
--- range (`range` as `command_range` takes it).
local function where(bufnr, at, range)
  local first, last
  if type(range) == "table" and range.line1 then
    first, last = range.line1, range.line2
  elseif type(range) == "table" and range.start then
    first, last = range.start.line + 1, range["end"].line + 1
  elseif range == true then
    first, last = vim.api.nvim_buf_get_mark(bufnr, "<")[1], vim.api.nvim_buf_get_mark(bufnr, ">")[1]
  else
    first = at.row + 1
    last = first
  end
  local place = first == last and tostring(first) or string.format("%d-%d", first, last)
  return relpath(bufnr) .. ":" .. place
end

--- Implement the stub function at the cursor. Uses the server's implement code action there (its title
--- and the exact function), else sends `agentls.implement` at the cursor.
function M.implement()
  local st = state()
  if not st then
    return
  end
  local bufnr, at = vim.api.nvim_get_current_buf(), cursor()
  client_mod.with_client(st, bufnr, function(client)
    local pos = position(client, bufnr, at)
    local params = {
      textDocument = { uri = buffer_uri(bufnr) },
      range = { start = pos, ["end"] = pos },
      context = { diagnostics = {}, only = { protocol.code_action_kinds.implement } },
    }
    compat.request(client, "textDocument/codeAction", params, function(err, result)
      for _, action in ipairs((not err and result) or {}) do
        local command = type(action.command) == "table" and action.command or nil
        if command and command.command == protocol.commands.implement then
          runs.execute(
            st,
            client,
            command.command,
            command.arguments and command.arguments[1],
            { title = command.title, bufnr = bufnr }
          )
          return
        end
      end
      runs.execute(
        st,
        client,
        protocol.commands.implement,
        { uri = buffer_uri(bufnr), position = pos },
        { title = string.format("Implement at %s:%d", relpath(bufnr), pos.line + 1), bufnr = bufnr }
      )
    end, bufnr)
  end, string.format("implement at %s", where(bufnr, at)))
end

--- Write tests for the function at the cursor (`agentls.writeTests`).
function M.tests()
  local st = state()
  if not st then
    return
  end
  local bufnr, at = vim.api.nvim_get_current_buf(), cursor()
  client_mod.with_client(st, bufnr, function(client)
    local pos = position(client, bufnr, at)
    runs.execute(
      st,
      client,
      protocol.commands.write_tests,
      { uri = buffer_uri(bufnr), position = pos },
      { title = string.format("Tests for %s:%d", relpath(bufnr), pos.line + 1), bufnr = bufnr }
    )
  end, string.format("tests at %s", where(bufnr, at)))
end

local function prompt(label, value, fn)
  if type(value) == "string" and vim.trim(value) ~= "" then
    fn(vim.trim(value))
    return
  end
  vim.ui.input({ prompt = label }, function(input)
    if input and vim.trim(input) ~= "" then
      fn(vim.trim(input))
    end
  end)
end

--- Edit a range by an instruction (`agentls.edit`). `range`: `{line1, line2}` from a command, `true` for
--- the last visual selection, an LSP range, or nil for the cursor line. Prompts when `instruction` is
--- empty.
function M.edit(instruction, opts)
  local st = state()
  if not st then
    return
  end
  opts = opts or {}
  local bufnr, at = vim.api.nvim_get_current_buf(), cursor()
  prompt("agentls edit: ", instruction, function(text)
    client_mod.with_client(st, bufnr, function(client)
      local range = command_range(client, bufnr, opts.range, at)
      runs.execute(
        st,
        client,
        protocol.commands.edit,
        { uri = buffer_uri(bufnr), range = range, instruction = text },
        { title = "Edit: " .. text, bufnr = bufnr }
      )
    end, string.format("edit %s: %s", where(bufnr, at, opts.range), text))
  end)
end

--- Ask a question about the code (`agentls.ask`); the answer opens in a scratch window. With a range
--- (`opts.range` as for `edit`), the question is about that code.
function M.ask(question, opts)
  local st = state()
  if not st then
    return
  end
  opts = opts or {}
  local bufnr, at = vim.api.nvim_get_current_buf(), cursor()
  prompt("agentls ask: ", question, function(text)
    client_mod.with_client(st, bufnr, function(client)
      local argument = with_focus({ question = text }, client, bufnr, opts, at)
      runs.execute(st, client, protocol.commands.ask, argument, {
        title = "Ask: " .. text,
        question = text,
        bufnr = bufnr,
        on_result = function(result)
          -- A server may answer at once instead of through a run.
          if type(result) == "table" and type(result.answer) == "string" then
            preview.answer(st, "Q: " .. text, result.answer)
          end
        end,
      })
    end, "ask: " .. text)
  end)
end

--- The LSP diagnostic behind a `vim.diagnostic` item (kept by the LSP client that reported it), or one
--- rebuilt from it. The range is always made from the item's byte columns in `client`'s encoding: the
--- kept one is in the encoding of the server that reported it (most speak UTF-16; agentls may use UTF-8).
local function lsp_diagnostic(client, bufnr, d)
  -- A diagnostic may end past its line (or on the line after the last one): clamp to the text.
  local function at(row, col)
    local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1]
    if line == nil then
      return { line = row, character = 0 }
    end
    local byte = math.min(col or 0, #line)
    return { line = row, character = vim.lsp.util.character_offset(bufnr, row, byte, client.offset_encoding) }
  end
  local range = { start = at(d.lnum, d.col), ["end"] = at(d.end_lnum or d.lnum, d.end_col or d.col) }
  local kept = d.user_data and d.user_data.lsp
  if type(kept) == "table" and kept.range then
    return vim.tbl_extend("force", kept, { range = range })
  end
  return {
    range = range,
    severity = d.severity,
    message = d.message,
    source = d.source,
    code = d.code,
  }
end

--- Fix the diagnostics on the cursor line (`agentls.fix`), from any source (linters, other servers).
function M.fix()
  local st = state()
  if not st then
    return
  end
  local bufnr, at = vim.api.nvim_get_current_buf(), cursor()
  local found = vim.diagnostic.get(bufnr, { lnum = at.row })
  if #found == 0 then
    notify("no diagnostics on this line; :AgentlsEdit takes an instruction instead", vim.log.levels.WARN)
    return
  end
  client_mod.with_client(st, bufnr, function(client)
    local diagnostics = {}
    local range
    for _, d in ipairs(found) do
      local lsp = lsp_diagnostic(client, bufnr, d)
      table.insert(diagnostics, lsp)
      if range == nil then
        range = vim.deepcopy(lsp.range)
      else
        local s, e = lsp.range.start, lsp.range["end"]
        if
          s.line < range.start.line or (s.line == range.start.line and s.character < range.start.character)
        then
          range.start = s
        end
        if
          e.line > range["end"].line or (e.line == range["end"].line and e.character > range["end"].character)
        then
          range["end"] = e
        end
      end
    end
    local title = #diagnostics == 1 and ("Fix: " .. vim.split(diagnostics[1].message or "", "\n")[1])
      or string.format("Fix %d problems", #diagnostics)
    runs.execute(
      st,
      client,
      protocol.commands.fix,
      { uri = buffer_uri(bufnr), range = range, diagnostics = diagnostics },
      { title = title, bufnr = bufnr }
    )
  end, string.format("fix at %s", where(bufnr, at)))
end

--- The proposal meant by `id`: that one, else the one previewed in the current buffer, else the latest
--- pending one.
local function resolve_proposal(st, id)
  if id ~= nil and id ~= "" then
    return st.proposals[id]
  end
  local here = vim.b.agentls_proposal_id
  if here ~= nil and st.proposals[here] and st.proposals[here].status == "pending" then
    return st.proposals[here]
  end
  return st:latest_pending()
end

local function proposal_client(proposal)
  local client = vim.lsp.get_client_by_id(proposal.client_id)
  if not client or compat.is_stopped(client) then
    notify("the server that made proposal " .. tostring(proposal.id) .. " is gone", vim.log.levels.ERROR)
    return nil
  end
  return client
end

--- The state, the pending proposal `id` (default: the previewed or latest one) and its client, or
--- nothing after telling the user why there is none.
local function pending_proposal(id, to_be)
  local st = state()
  if not st then
    return nil
  end
  local proposal = resolve_proposal(st, id)
  if not proposal or proposal.status ~= "pending" then
    notify("no proposal is waiting to be " .. to_be, vim.log.levels.WARN)
    return nil
  end
  local client = proposal_client(proposal)
  if not client then
    return nil
  end
  return st, proposal, client
end

--- After a partial accept: drop the rest when every hunk was decided, else show what is left.
local function after_partial(st, proposal, client, result, drop_rest)
  if drop_rest then
    runs.execute(st, client, protocol.commands.reject, { proposalId = proposal.id }, {
      on_result = function()
        proposal.status = "accepted"
        preview.close(st, proposal.id)
        notify("proposal " .. tostring(proposal.id) .. ": the accepted hunks are applied, the rest dropped")
        progress.changed()
      end,
    })
    return
  end
  proposal.status = "pending"
  local left = #(result.pendingHunks or {})
  notify(
    string.format(
      "proposal %s: the accepted hunks are applied; %s still pending (not verified)",
      tostring(proposal.id),
      left > 0 and (tostring(left) .. " hunk(s)") or "the rest is"
    )
  )
  runs.fetch(proposal, function(p)
    preview.open(st, p)
  end)
  progress.changed()
end

--- Accept a proposal (default: the previewed or latest pending one): the server applies it through
--- `workspace/applyEdit`; the changed files are written when `write_on_accept` is set. `opts.hunks`:
--- accept only those hunk ids (the rest stays pending, or is dropped when `opts.drop_rest`).
function M.accept(id, opts)
  opts = opts or {}
  local st, proposal, client = pending_proposal(id, "accepted")
  if not client then
    return
  end
  proposal.status = "accepting"
  local argument = { proposalId = proposal.id, hunks = opts.hunks }
  runs.execute(st, client, protocol.commands.accept, argument, {
    on_result = function(result)
      if type(result) == "table" and result.applied == false then
        proposal.status = "pending"
        local reason = result.failureReason or result.message
        -- The answer says why (with what to do); the server does not also show it to the plugin.
        local why = tostring(reason or "no reason given")
        notify("proposal " .. tostring(proposal.id) .. " was not applied: " .. why, vim.log.levels.WARN)
      elseif opts.hunks and type(result) == "table" and type(result.pendingHunks) == "table" then
        after_partial(st, proposal, client, result, opts.drop_rest or #result.pendingHunks == 0)
      else
        proposal.status = "accepted"
        preview.close(st, proposal.id)
      end
      progress.changed()
    end,
    on_error = function()
      proposal.status = "pending"
      progress.changed()
    end,
  })
end

--- What the marks of the preview ask for (`agentls.review.plan`), or nil after telling the user.
local function review_plan(proposal)
  local info = proposal.review
  if not info or #info.order == 0 then
    return { action = "accept", undecided = 0 }
  end
  return review.plan(info.order, proposal.decisions or {})
end

--- Apply the preview's marks: accept the hunks marked for accept (all of them: the whole proposal), and
--- drop the rest when every hunk was decided; undecided hunks stay pending.
function M.apply_review(id)
  local _, proposal = pending_proposal(id, "applied")
  if not proposal then
    return
  end
  local plan = review_plan(proposal)
  if plan.action == "accept" then
    M.accept(proposal.id)
  elseif plan.action == "reject" then
    M.reject(proposal.id)
  elseif plan.action == "none" then
    notify(
      "no hunk is marked for accept: mark hunks with a (A for all) or r (R for all), then apply",
      vim.log.levels.WARN
    )
  else
    M.accept(proposal.id, { hunks = plan.hunks, drop_rest = plan.undecided == 0 })
  end
end

--- Accept and commit (`agentls.acceptAndCommit`): the marked hunks (none marked: all), with the
--- proposal's commit message, edited first in a buffer; `:w` there commits, closing it cancels. Nothing
--- is applied or committed before that `:w`.
function M.accept_and_commit(id)
  local st, proposal, client = pending_proposal(id, "committed")
  if not client then
    return
  end
  local plan = review_plan(proposal)
  if plan.action == "reject" or (plan.action == "none" and plan.undecided == 0) then
    notify("every hunk is marked for reject: there is nothing to commit", vim.log.levels.WARN)
    return
  end
  local hunks = plan.action == "partial" and plan.hunks or nil
  local function open(message)
    preview.commit_message(proposal, message, function(text)
      proposal.status = "accepting"
      local argument = { proposalId = proposal.id, message = text, hunks = hunks }
      runs.execute(st, client, protocol.commands.accept_and_commit, argument, {
        on_result = function(result)
          if type(result) == "table" and result.applied == false then
            proposal.status = "pending"
            notify("proposal " .. tostring(proposal.id) .. " was not committed", vim.log.levels.WARN)
          elseif hunks and plan.undecided > 0 then
            after_partial(st, proposal, client, {}, false)
          elseif hunks then
            after_partial(st, proposal, client, {}, true)
          else
            proposal.status = "accepted"
            preview.close(st, proposal.id)
          end
          if type(result) == "table" and type(result.commit) == "string" then
            proposal.commit = result.commit
            -- The server says it (with the commit's subject) before it answers.
            local short = result.commit:sub(1, 12)
            if not messages.shown(st, client.id, "committed " .. short) then
              notify(string.format("committed %s on %s", short, tostring(result.branch)))
            end
          end
          progress.changed()
        end,
        on_error = function()
          proposal.status = "pending"
          progress.changed()
        end,
      })
    end)
  end
  if proposal.commit_message then
    open(proposal.commit_message)
  else
    runs.fetch(proposal, function(p)
      open(p.commit_message or "")
    end)
  end
end

--- Reject a proposal (default: the previewed or latest pending one); nothing is changed.
function M.reject(id)
  local st, proposal, client = pending_proposal(id, "rejected")
  if not client then
    return
  end
  runs.execute(st, client, protocol.commands.reject, { proposalId = proposal.id }, {
    on_result = function()
      proposal.status = "rejected"
      preview.close(st, proposal.id)
      notify("proposal " .. tostring(proposal.id) .. " rejected; nothing was changed")
      progress.changed()
    end,
  })
end

--- Open the diff preview of a proposal (default: the latest pending one).
function M.diff(id)
  local st = state()
  if not st then
    return
  end
  local proposal = resolve_proposal(st, id)
  if not proposal then
    notify(
      "no proposal is waiting; start one with :AgentlsImplement, :AgentlsEdit, :AgentlsFix, "
        .. ":AgentlsTests or :AgentlsTask",
      vim.log.levels.WARN
    )
    return
  end
  if proposal.fetched then
    preview.open(st, proposal)
  else
    runs.fetch(proposal, function(p)
      preview.open(st, p)
    end)
  end
end

--- Cancel a run (default: the latest running one).
function M.cancel(run_id)
  local st = state()
  if not st then
    return
  end
  local run = (run_id ~= nil and run_id ~= "") and st.runs[run_id] or st:latest_running()
  if not run or run.status ~= "running" then
    notify("no agent run is running", vim.log.levels.WARN)
    return
  end
  local client = vim.lsp.get_client_by_id(run.client_id)
  if not client then
    run.status = "failed"
    return
  end
  run.status = "cancelling"
  runs.execute(st, client, protocol.commands.cancel, { runId = run.id }, {
    on_result = function()
      notify((run.title or "run") .. ": cancelled")
      if run.status == "cancelling" then
        run.status = "cancelled"
      end
      progress.changed()
    end,
    on_error = function()
      run.status = "running"
    end,
  })
end

--- Start `agentls.run {instruction, mode}` ("solo", "team") on the range (as for `edit`) or the file of
--- the current buffer, else the workspace; prompts "agentls NAME: " when `instruction` is empty. `name`
--- ("task", "team") words the prompt and the run's title; `on_result` gets the command's result.
local function free_form_run(mode, name, instruction, opts, on_result)
  local st = state()
  if not st then
    return
  end
  opts = opts or {}
  local bufnr, at = vim.api.nvim_get_current_buf(), cursor()
  prompt("agentls " .. name .. ": ", instruction, function(text)
    client_mod.with_client(st, bufnr, function(client)
      local argument = with_focus({ instruction = text, mode = mode }, client, bufnr, opts, at)
      local title = name:sub(1, 1):upper() .. name:sub(2) .. ": " .. text
      runs.execute(st, client, protocol.commands.run, argument, {
        title = title,
        bufnr = bufnr,
        on_result = on_result and function(result)
          on_result(st, result)
        end,
      })
    end, name .. ": " .. text)
  end)
end

--- Run the agent on a free-form task, as `agentls run` does (`agentls.run {instruction, mode = "solo"}`:
--- the single agent loop), on the range (as for `edit`) or the file; prompts when `instruction` is empty.
--- Its proposal opens in the preview like any run's.
function M.task(instruction, opts)
  free_form_run("solo", "task", instruction, opts)
end

--- Run the agent team (`agentls.run {instruction, mode = "team"}`) on the range (as for `edit`) or the
--- file; its plan, todo list and each role's handoff show in the run's buffer as they arrive.
function M.team(instruction, opts)
  free_form_run("team", "team", instruction, opts, function(st, result)
    if type(result) == "table" and result.runId ~= nil then
      team.show(st, result.runId)
    end
  end)
end

--- Show a run's events (plan, todo list, handoffs): the given run, else the latest one that has any.
function M.run_view(run_id)
  local st = state()
  if not st then
    return
  end
  team.show(st, run_id ~= "" and run_id or nil)
end

--- Re-index every workspace folder of the current buffer's server.
function M.reindex()
  local st = state()
  if not st then
    return
  end
  client_mod.with_client(st, vim.api.nvim_get_current_buf(), function(client)
    runs.execute(st, client, protocol.commands.reindex, {}, {})
  end, "reindex")
end

--- Search the index (`agentls/search`) and put the hits in the quickfix list; with `opts.files`, each
--- file once (at its best chunk).
function M.search(query, opts)
  local st = state()
  if not st then
    return
  end
  local files = opts ~= nil and opts.files == true
  local bufnr = vim.api.nvim_get_current_buf()
  prompt(files and "agentls search files: " or "agentls search: ", query, function(text)
    client_mod.with_client(st, bufnr, function(client)
      local params = { query = text, limit = 30, files = files }
      compat.request(client, protocol.methods.search, params, function(err, hits)
        if err then
          notify("search failed: " .. tostring(err.message or err), vim.log.levels.ERROR)
          return
        end
        local items = {}
        for _, hit in ipairs(hits or {}) do
          local filename = hit.uri and vim.uri_to_fname(hit.uri) or hit.path
          local line = hit.range and hit.range.start and hit.range.start.line + 1 or 1
          local label = hit.symbol and hit.symbol ~= vim.NIL and hit.symbol
            or vim.split(hit.text or "", "\n")[1]
          table.insert(items, { filename = filename, lnum = line, col = 1, text = tostring(label) })
        end
        vim.fn.setqflist({}, " ", { title = "agentls search: " .. text, items = items })
        if #items == 0 then
          notify("no results for " .. text, vim.log.levels.WARN)
        else
          vim.cmd("copen")
        end
      end, bufnr)
    end, (files and "search files: " or "search: ") .. text)
  end)
end

return M

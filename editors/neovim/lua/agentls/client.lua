--- Starting the agentls language server and attaching it to buffers: one client per workspace root.
---
--- `attach(state, bufnr)` finds the buffer's root (`root_dir`, else the nearest `root_markers`), reuses
--- the client already serving that root or starts one (`vim.lsp.start` on 0.8+, `vim.lsp.start_client` on
--- 0.7), and attaches it. The client carries agentls' handlers (progress, proposals, applyEdit,
--- configuration) and client-side commands for every `agentls.*` command, so a code action picked with
--- `vim.lsp.buf.code_action()` starts a run the plugin tracks.
local compat = require("agentls.compat")
local protocol = require("agentls.protocol")
local apply = require("agentls.apply")
local progress = require("agentls.progress")
local runs = require("agentls.runs")
local messages = require("agentls.messages")
local preview = require("agentls.preview")

local M = {}

M.name = "agentls"

--- Neovim's client capabilities plus what agentls relies on.
function M.capabilities(config)
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.workspace = caps.workspace or {}
  caps.workspace.configuration = true
  caps.workspace.applyEdit = true
  caps.workspace.workspaceEdit = caps.workspace.workspaceEdit or {}
  -- 0.7 applies documentChanges (versioned edits, create/rename/delete) but does not say so.
  caps.workspace.workspaceEdit.documentChanges = true
  caps.workspace.workspaceEdit.resourceOperations = { "create", "rename", "delete" }
  caps.workspace.executeCommand = { dynamicRegistration = false }
  caps.window = caps.window or {}
  caps.window.workDoneProgress = true
  local encodings = config.position_encodings
  if encodings == nil and not compat.at_least(0, 10) then
    -- Before 0.10 every other client speaks UTF-16, and mixing encodings on one buffer warns.
    encodings = { "utf-16" }
  end
  if encodings ~= nil then
    caps.general = caps.general or {}
    caps.general.positionEncodings = encodings
  end
  return caps
end

--- The value of a `workspace/configuration` section from the `agentls` settings.
function M.section(settings, section)
  if section == nil or section == vim.NIL or section == "" then
    return { [protocol.section] = compat.object(settings) }
  end
  local path = vim.split(section, ".", { plain = true })
  if path[1] ~= protocol.section then
    return vim.NIL
  end
  local node = settings
  for i = 2, #path do
    if type(node) ~= "table" or node[path[i]] == nil then
      return vim.NIL
    end
    node = node[path[i]]
  end
  if type(node) == "table" then
    return compat.object(node)
  end
  return node
end

local function configuration_handler(state)
  return function(_, params)
    local out = {}
    for _, item in ipairs((params or {}).items or {}) do
      table.insert(out, M.section(state.config.settings, item.section))
    end
    return out
  end
end

local function handlers(state)
  return {
    [protocol.methods.progress] = progress.handler(state),
    [protocol.methods.apply_edit] = apply.handler(state),
    [protocol.methods.configuration] = configuration_handler(state),
    [protocol.methods.proposal_ready] = runs.on_proposal_ready(state),
    [protocol.methods.run_failed] = runs.on_run_failed(state),
    [protocol.methods.run_event] = require("agentls.team").handler(state),
    -- The server's messages, less those of events the plugin says itself (`agentls.messages`).
    [protocol.methods.show_message] = messages.handler(state),
    -- The plugin sends executeCommand with its own callbacks; this only swallows stray answers.
    [protocol.methods.execute_command] = function() end,
  }
end

--- Client-side commands: a Command from a code action runs through the plugin (which tracks the run).
local function commands(state)
  local out = {}
  for _, command in pairs(protocol.commands) do
    out[command] = function(cmd, ctx)
      local client = vim.lsp.get_client_by_id(ctx.client_id)
      if not client then
        return
      end
      local argument = type(cmd.arguments) == "table" and cmd.arguments[1] or nil
      runs.execute(state, client, cmd.command, argument, { title = cmd.title, bufnr = ctx.bufnr })
    end
  end
  return out
end

--- The buffer's workspace root.
function M.root(config, bufnr)
  local path = vim.api.nvim_buf_get_name(bufnr)
  if path == "" then
    return vim.fn.getcwd()
  end
  path = vim.fn.fnamemodify(path, ":p")
  if config.root_dir then
    local root = config.root_dir(bufnr, path)
    if root then
      return (vim.fn.fnamemodify(root, ":p"):gsub("/$", ""))
    end
  end
  local root = compat.find_root(path, config.root_markers)
  if root then
    return root
  end
  local cwd = vim.fn.getcwd()
  if vim.startswith(path, cwd .. "/") then
    return cwd
  end
  return vim.fn.fnamemodify(path, ":h")
end

local function live(client_id)
  local client = client_id and vim.lsp.get_client_by_id(client_id)
  if client and not compat.is_stopped(client) then
    return client
  end
  return nil
end

local function client_config(state, root)
  local config = state.config
  return {
    name = M.name,
    cmd = config.cmd,
    cmd_env = config.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    -- agentlsClient: this plugin handles agentls/proposalReady, so the server asks no questions. The
    -- settings go by workspace/configuration alone: as initializationOptions too, they would stay under
    -- it for the server's life, and a setting removed later would never go.
    init_options = { agentlsClient = true },
    settings = { [protocol.section] = compat.object(vim.deepcopy(config.settings)) },
    capabilities = M.capabilities(config),
    handlers = handlers(state),
    commands = commands(state),
    on_init = function(client, result)
      -- Whatever encoding the server chose is the one every position uses (0.7 does not read it).
      local chosen = result and result.capabilities and result.capabilities.positionEncoding
      if type(chosen) == "string" then
        client.offset_encoding = chosen
      end
      if result and type(result.serverInfo) == "table" then
        state.server_info[client.id] = result.serverInfo
      end
    end,
    on_exit = vim.schedule_wrap(function(code, signal, client_id)
      local lost, lost_proposals = state:forget_client(client_id)
      -- A lost proposal can be neither accepted nor rejected: its preview (whose keys could only say
      -- "no proposal is waiting") closes with the server.
      for _, proposal_id in ipairs(lost_proposals) do
        preview.close(state, proposal_id)
      end
      progress.changed()
      -- Killed by a signal, the server exits with code 0: the signal says it did not stop on its own.
      if (code ~= 0 or (signal ~= nil and signal ~= 0)) and not state.stopping then
        local message = string.format(
          "agentls: the server exited (code %s, signal %s); see :LspLog and :checkhealth agentls",
          tostring(code),
          tostring(signal)
        )
        if #lost > 0 then
          message = message .. ". Lost with it: " .. table.concat(lost, ", ")
        end
        vim.notify(message, vim.log.levels.ERROR)
      end
    end),
    on_attach = function(client, bufnr)
      if config.on_attach then
        config.on_attach(client, bufnr)
      end
    end,
  }
end

--- Say once per buffer that its lines are not the ones the server counts (`apply.misread`).
function M.warn_misread(bufnr)
  local why = not vim.b[bufnr].agentls_misread_said and apply.misread(bufnr)
  if why then
    vim.b[bufnr].agentls_misread_said = true
    compat.notify_later("agentls: " .. why, vim.log.levels.WARN)
  end
end

--- Attach the agentls client of `bufnr`'s root to it (starting the server if needed); returns the client id.
function M.attach(state, bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local root = M.root(state.config, bufnr)
  -- A root that is the home folder or / (a loose file there, no project marker above it) is started too:
  -- the server holds such a folder back (no index, search or agent action) with one message saying how
  -- to allow it, and serves it when it has an index already or `server.index_home_or_root` is on.
  local existing = live(state.clients[root])
  if existing then
    if not compat.attached(existing, bufnr) then
      vim.lsp.buf_attach_client(bufnr, existing.id)
      M.warn_misread(bufnr)
    end
    return existing.id
  end
  if vim.fn.executable(state.config.cmd[1]) ~= 1 then
    if not state.warned_missing then
      state.warned_missing = true
      -- Scheduled: attach runs in a FileType autocommand, where an ERROR notify raises (0.11+) and would
      -- stop whatever opened the file (a picker, a session restore).
      compat.notify_later(
        string.format(
          "agentls: `%s` is not an executable on $PATH. Install the server (pip install -e /path/to/agentls) "
            .. "or set `cmd` in require('agentls').setup{}; :checkhealth agentls says more.",
          state.config.cmd[1]
        ),
        vim.log.levels.ERROR
      )
    end
    return nil
  end
  local config = client_config(state, root)
  local client_id
  if vim.lsp.start then
    client_id = vim.lsp.start(config, {
      bufnr = bufnr,
      reuse_client = function(client, conf)
        return client.name == M.name and client.config.root_dir == conf.root_dir
      end,
    })
  else
    client_id = vim.lsp.start_client(config)
    if client_id then
      vim.lsp.buf_attach_client(bufnr, client_id)
    end
  end
  if client_id then
    state.clients[root] = client_id
    M.warn_misread(bufnr)
  end
  return client_id
end

--- The live agentls client attached to `bufnr`, or of its root, or nil.
function M.for_buffer(state, bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  for _, client in ipairs(compat.clients()) do
    if client.name == M.name and compat.attached(client, bufnr) and not compat.is_stopped(client) then
      return client
    end
  end
  if vim.bo[bufnr].buftype == "" then
    return live(state.clients[M.root(state.config, bufnr)])
  end
  return nil
end

--- Every live agentls client.
function M.all()
  local out = {}
  for _, client in ipairs(compat.clients()) do
    if client.name == M.name and not compat.is_stopped(client) then
      table.insert(out, client)
    end
  end
  return out
end

--- Call `fn(client)` with the buffer's client once it has initialized (starting it if needed). `what`
--- names the request (e.g. "ask: why?"): while the server starts, the same request again is dropped with
--- a message instead of being queued a second time (pressed twice, it would start two runs).
function M.with_client(state, bufnr, fn, what)
  local client = M.for_buffer(state, bufnr)
  if not client then
    local id = M.attach(state, bufnr)
    client = id and vim.lsp.get_client_by_id(id)
  end
  if not client then
    -- No file buffer (e.g. a scratch buffer): any running agentls client will do.
    client = M.all()[1]
  end
  if not client then
    vim.notify(
      "agentls: no agentls server for this buffer; open a file of a configured filetype, or "
        .. "check :checkhealth agentls",
      vim.log.levels.WARN
    )
    return
  end
  if client.initialized then
    fn(client)
    return
  end
  local key = what and (tostring(client.id) .. ":" .. what)
  if key and state.waiting[key] then
    vim.notify("agentls: already waiting for the server: " .. what, vim.log.levels.INFO)
    return
  end
  if key then
    state.waiting[key] = true
  end
  vim.notify("agentls: waiting for the server to start...", vim.log.levels.INFO)
  local waited = 0
  local function go()
    local stopped = compat.is_stopped(client)
    if not stopped and not client.initialized and waited < 30000 then
      waited = waited + 100
      vim.defer_fn(go, 100)
      return
    end
    if key then
      state.waiting[key] = nil
    end
    if stopped then
      vim.notify("agentls: the server stopped before it was ready; see :LspLog", vim.log.levels.ERROR)
    elseif client.initialized then
      fn(client)
    else
      vim.notify("agentls: the server did not finish starting within 30 s; see :LspLog", vim.log.levels.ERROR)
    end
  end
  go()
end

return M

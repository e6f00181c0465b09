--- Applying the server's `workspace/applyEdit` (sent when a proposal is accepted), all or nothing.
---
--- Neovim's own handler checks the version of the first `TextDocumentEdit` only, and when it is stale it
--- skips that edit yet answers `applied = true`. Here every versioned edit is checked first against the
--- buffer's current version: if the user typed in any of them since the server computed the edit,
--- nothing is applied and the server is told why (it rebases or refuses; the user's text stays). Parent
--- folders of created files are made (0.7's `create_file` cannot). The edit's change annotations are
--- dropped: the server asks clients without a preview to confirm its edit, and 0.11+ would ask once per
--- file after the user accepted in the preview (a "No" left the other files applied). After applying, the
--- buffers the edit touched are written when `write_on_accept` is set, and only those.
---
--- A file whose lines end in a lone `\r` (classic Mac OS) is one line to Neovim unless 'fileformat' is
--- mac ('fileformats' has no mac by default), while the server ends a line at each `\r`, as LSP says: an
--- edit of such a buffer would land at the wrong lines, so it is refused with what to do (`misread`).
local M = {}

local util = vim.lsp.util

local function is_set(value)
  return value ~= nil and value ~= vim.NIL
end

--- The buffer number of an already loaded buffer for `uri`, or nil (never creates one).
local function loaded_buffer(uri)
  local bufnr = vim.fn.bufnr(vim.uri_to_fname(uri))
  if bufnr == -1 or not vim.api.nvim_buf_is_loaded(bufnr) then
    return nil
  end
  return bufnr
end

--- nil, or why Neovim's lines of `bufnr` are not the server's: they hold a lone `\r` (a file of classic Mac
--- OS line ends read without 'fileformat' mac), where LSP ends a line. A `\r` at the end of a line is the
--- end of a `\r\n` line (a file read as unix), which the server reads so too, unless it ends the file.
function M.misread(bufnr)
  if vim.bo[bufnr].fileformat == "mac" then
    return nil
  end
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  for i, line in ipairs(lines) do
    local at = line:find("\r", 1, true)
    if at and (at < #line or (i == #lines and not vim.bo[bufnr].eol)) then
      return string.format(
        "%s: its lines end in a lone \\r (classic Mac OS), which Neovim shows as one line, while agentls "
          .. "counts them as LSP does, so its line numbers and edits would miss; :set fileformats+=mac "
          .. "and open it again (:bwipeout, then :edit it)",
        vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ":~:.")
      )
    end
  end
  return nil
end

--- nil when every edited buffer holds the lines the server counts, else a message saying which does not.
function M.misread_documents(edit)
  for _, change in ipairs(edit.documentChanges or {}) do
    local bufnr = change.kind == nil
      and type(change.textDocument) == "table"
      and loaded_buffer(change.textDocument.uri)
    local why = bufnr and M.misread(bufnr)
    if why then
      return why
    end
  end
  for uri in pairs(edit.changes or {}) do
    local bufnr = loaded_buffer(uri)
    local why = bufnr and M.misread(bufnr)
    if why then
      return why
    end
  end
  return nil
end

--- nil when every versioned edit matches its buffer's version, else a message saying which does not.
function M.stale_documents(edit)
  local stale = {}
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.kind == nil and type(change.textDocument) == "table" then
      local version = change.textDocument.version
      local bufnr = loaded_buffer(change.textDocument.uri)
      local current = bufnr and util.buf_versions[bufnr]
      if is_set(version) and bufnr and current ~= nil and current ~= version then
        table.insert(
          stale,
          string.format(
            "%s (edited: version %s, the edit is for %s)",
            vim.uri_to_fname(change.textDocument.uri),
            tostring(current),
            tostring(version)
          )
        )
      end
    end
  end
  if #stale == 0 then
    return nil
  end
  return "the buffer changed since the proposal was made: " .. table.concat(stale, ", ")
end

--- Every file the edit touches that may have a buffer to write, as URIs (edited, created, renamed to).
function M.touched_uris(edit)
  local uris, seen = {}, {}
  local function add(uri)
    if is_set(uri) and not seen[uri] then
      seen[uri] = true
      table.insert(uris, uri)
    end
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.kind == "create" then
      add(change.uri)
    elseif change.kind == "rename" then
      add(change.newUri)
    elseif change.kind == nil and type(change.textDocument) == "table" then
      add(change.textDocument.uri)
    end
  end
  for uri in pairs(edit.changes or {}) do
    add(uri)
  end
  return uris
end

--- Every file the edit touches, as URIs, to count them: `touched_uris` and the deleted files (a renamed
--- file counts once, by its new name).
function M.changed_uris(edit)
  local uris = M.touched_uris(edit)
  local seen = {}
  for _, uri in ipairs(uris) do
    seen[uri] = true
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.kind == "delete" and is_set(change.uri) and not seen[change.uri] then
      seen[change.uri] = true
      table.insert(uris, change.uri)
    end
  end
  return uris
end

local function make_parents(edit)
  for _, change in ipairs(edit.documentChanges or {}) do
    local uri = (change.kind == "create" and change.uri) or (change.kind == "rename" and change.newUri) or nil
    if is_set(uri) then
      local parent = vim.fn.fnamemodify(vim.uri_to_fname(uri), ":h")
      if vim.fn.isdirectory(parent) == 0 then
        vim.fn.mkdir(parent, "p")
      end
    end
  end
end

--- uri -> the text the edit puts into each file it creates (the edits that fill it, in order).
local function created_texts(edit)
  local created = {}
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.kind == "create" and is_set(change.uri) then
      created[change.uri] = {}
    end
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    local uri = change.kind == nil and type(change.textDocument) == "table" and change.textDocument.uri
    if uri and created[uri] then
      for _, text_edit in ipairs(change.edits or {}) do
        table.insert(created[uri], text_edit.newText or "")
      end
    end
  end
  return created
end

--- A new file's buffer starts as one empty line, so text ending in a newline leaves an extra empty last
--- line (written as a blank line at the end of the file). Drop it: the buffer's end-of-line adds it back.
local function trim_created(created)
  for uri, parts in pairs(created) do
    local text = table.concat(parts)
    local bufnr = loaded_buffer(uri)
    if bufnr and text:sub(-1) == "\n" then
      local count = vim.api.nvim_buf_line_count(bufnr)
      local last = vim.api.nvim_buf_get_lines(bufnr, count - 1, count, false)[1]
      if count > 1 and last == "" then
        vim.api.nvim_buf_set_lines(bufnr, count - 1, count, false, {})
      end
    end
  end
end

--- `edit` without its file creations and their edits: each new file becomes a modified buffer holding its
--- text instead. Neovim's handler creates the file on disk, empty, which with `write_on_accept = false`
--- (the changes stay in buffers for the user to review and :write) left 0-byte files behind that builds
--- and test runs pick up. (Filling the buffer here also avoids the handlers' version checks, which 0.7
--- and 0.11 make differently for a new file's null version.)
local function without_disk_creates(edit, created)
  if not is_set(edit.documentChanges) then
    return edit
  end
  local kept, buffered = {}, {}
  for _, change in ipairs(edit.documentChanges) do
    local uri = change.kind == "create" and change.uri or (change.textDocument and change.textDocument.uri)
    local new_file = is_set(uri) and created[uri] and vim.fn.filereadable(vim.uri_to_fname(uri)) == 0
    if change.kind == "create" and new_file then
      local bufnr = vim.uri_to_bufnr(uri)
      vim.fn.bufload(bufnr)
      vim.bo[bufnr].buflisted = true
      local lines = vim.split(table.concat(created[uri]), "\n", { plain = true })
      vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
      buffered[uri] = true
    elseif not (change.textDocument and buffered[uri]) then
      table.insert(kept, change)
    end
  end
  return vim.tbl_extend("force", edit, { documentChanges = kept })
end

--- `edit` without change annotations (a copy; the edit's own tables are left alone): the user accepted it
--- in the preview already, so Neovim must not ask again per file ("Apply all changes?") nor say "Applied
--- changes:" for each. (Not `vim.deepcopy`: 0.7's cannot copy the `vim.NIL` a null version may be.)
function M.without_annotations(edit)
  local function plain(item)
    local copy = vim.tbl_extend("force", {}, item)
    copy.annotationId = nil
    return copy
  end
  local function plain_edits(edits)
    return is_set(edits) and vim.tbl_map(plain, edits) or edits
  end
  local out = vim.tbl_extend("force", {}, edit)
  out.changeAnnotations = nil
  if is_set(edit.documentChanges) then
    out.documentChanges = vim.tbl_map(function(change)
      local copy = plain(change)
      copy.edits = plain_edits(change.edits)
      return copy
    end, edit.documentChanges)
  end
  if is_set(edit.changes) then
    out.changes = vim.tbl_map(plain_edits, edit.changes)
  end
  return out
end

--- Write the loaded, modified buffers of `uris`; returns the files written and the errors.
function M.write(uris)
  local written, errors = {}, {}
  for _, uri in ipairs(uris) do
    local bufnr = loaded_buffer(uri)
    if bufnr and vim.bo[bufnr].modified then
      local ok, err = pcall(vim.api.nvim_buf_call, bufnr, function()
        vim.cmd("silent keepalt update")
      end)
      if ok then
        table.insert(written, vim.uri_to_fname(uri))
      else
        table.insert(errors, string.format("%s: %s", vim.uri_to_fname(uri), tostring(err)))
      end
    end
  end
  return written, errors
end

--- Apply `edit` for `client`; returns the `ApplyWorkspaceEditResult`, plus the files written.
function M.apply(edit, client, write)
  if type(edit) ~= "table" then
    return { applied = false, failureReason = "the server sent no edit" }, {}
  end
  local stale = M.stale_documents(edit) or M.misread_documents(edit)
  if stale then
    return { applied = false, failureReason = stale }, {}
  end
  edit = M.without_annotations(edit)
  make_parents(edit)
  local created = created_texts(edit)
  local ok, err = pcall(
    util.apply_workspace_edit,
    write and edit or without_disk_creates(edit, created),
    client.offset_encoding or "utf-16"
  )
  if not ok then
    return { applied = false, failureReason = "agentls could not apply the edit: " .. tostring(err) }, {}
  end
  trim_created(created)
  if not write then
    return { applied = true }, {}
  end
  local written, errors = M.write(M.touched_uris(edit))
  if #errors > 0 then
    vim.notify("agentls: applied, but could not write: " .. table.concat(errors, "; "), vim.log.levels.ERROR)
  end
  return { applied = true }, written
end

--- The `workspace/applyEdit` handler for agentls clients.
function M.handler(state)
  return function(_, params, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if not client or type(params) ~= "table" then
      return { applied = false, failureReason = "the agentls client is gone" }
    end
    local result, written = M.apply(params.edit, client, state.config.write_on_accept)
    if result.applied then
      state.last_written = written
      local label = is_set(params.label) and params.label or "agentls"
      local msg = string.format("%s: applied to %d file(s)", label, #M.changed_uris(params.edit))
      if #written > 0 then
        msg = msg
          .. ", written: "
          .. table.concat(
            vim.tbl_map(function(p)
              return vim.fn.fnamemodify(p, ":~:.")
            end, written),
            ", "
          )
      end
      vim.notify(msg, vim.log.levels.INFO, { title = "agentls" })
    end
    -- A refusal is not said here: the server rebases and sends the edit again (the user typed since it
    -- was made), or tells the user why the proposal was not applied and what to do.
    return result
  end
end

return M

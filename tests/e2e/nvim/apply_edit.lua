-- The plugin's workspace/applyEdit handling on its own (no server): all or nothing when a buffer's
-- version moved on, parent folders made for created files, no extra blank line at their end, and only
-- the buffers the edit touched are written; the handler's message counts every file the edit touched.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")

H.run(function(h)
  local apply = require("agentls.apply")
  local root = h.root
  local function uri(rel)
    return vim.uri_from_fname(root .. "/" .. rel)
  end
  local a = h.edit("a.txt")
  vim.api.nvim_buf_set_lines(a, 0, 1, false, { "ONE" }) -- unsaved text the edit builds on
  vim.cmd("split")
  local b = h.edit("b.txt")
  vim.api.nvim_buf_set_lines(b, 0, 0, false, { "unsaved, not part of the edit" })
  -- As if a client were attached: the version Neovim last sent for each buffer.
  vim.lsp.util.buf_versions[a] = 7

  local function edit(version)
    return {
      documentChanges = {
        {
          textDocument = { uri = uri("a.txt"), version = version },
          edits = {
            {
              range = { start = { line = 1, character = 0 }, ["end"] = { line = 1, character = 3 } },
              newText = "2",
            },
          },
        },
        { kind = "create", uri = uri("new/dir/c.txt") },
        {
          textDocument = { uri = uri("new/dir/c.txt"), version = vim.NIL },
          edits = {
            {
              range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } },
              newText = "hello\nworld\n",
            },
          },
        },
      },
    }
  end
  local client = { id = 0, offset_encoding = "utf-16" }
  local stale = apply.apply(edit(6), client, true)
  local after_stale = {
    a = h.lines(a),
    a_modified = vim.bo[a].modified,
    created = vim.loop.fs_stat(root .. "/new") ~= nil,
  }
  local ok, written = apply.apply(edit(7), client, true)
  local c = vim.fn.bufnr(root .. "/new/dir/c.txt")
  -- write_on_accept = false: a created file is a modified buffer, not an empty file on disk.
  local unsaved = apply.apply({
    documentChanges = {
      { kind = "create", uri = uri("d.txt") },
      {
        textDocument = { uri = uri("d.txt"), version = vim.NIL },
        edits = {
          {
            range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } },
            newText = "dee\n",
          },
        },
      },
    },
  }, client, false)
  local d = vim.fn.bufnr(root .. "/d.txt")
  -- Through the workspace/applyEdit handler: a rename and a delete are two files in its message.
  local get_client_by_id = vim.lsp.get_client_by_id
  vim.lsp.get_client_by_id = function()
    return client
  end
  local seen = #h.messages
  local moved = apply.handler({ config = { write_on_accept = true } })(nil, {
    label = "move",
    edit = {
      documentChanges = {
        { kind = "rename", oldUri = uri("e.txt"), newUri = uri("f.txt") },
        { kind = "delete", uri = uri("g.txt") },
      },
    },
  }, { client_id = 0 })
  vim.lsp.get_client_by_id = get_client_by_id
  local moved_messages = {}
  for i = seen + 1, #h.messages do
    table.insert(moved_messages, h.messages[i].message)
  end
  return {
    moved = moved,
    moved_messages = moved_messages,
    moved_disk = {
      e = h.read(root .. "/e.txt") or vim.NIL,
      f = h.read(root .. "/f.txt") or vim.NIL,
      g = h.read(root .. "/g.txt") or vim.NIL,
    },
    unsaved = unsaved,
    d = h.lines(d),
    d_modified = vim.bo[d].modified,
    d_on_disk = vim.loop.fs_stat(root .. "/d.txt") ~= nil,
    stale = stale,
    after_stale = after_stale,
    ok = ok,
    written = written,
    a = h.lines(a),
    a_modified = vim.bo[a].modified,
    b_modified = vim.bo[b].modified,
    c = h.lines(c),
    c_modified = vim.bo[c].modified,
    disk = {
      a = h.read(root .. "/a.txt"),
      b = h.read(root .. "/b.txt"),
      c = h.read(root .. "/new/dir/c.txt"),
    },
  }
end)

-- Loose files in the home folder (no project marker above them, Neovim started there): the plugin starts
-- one server for the home folder and leaves the rule to it. $AGENTLS_NVIM_MODE "held": the server holds
-- the folder back (no index, search or agent action) and says so once, for both files; "allowed" (setup's
-- settings turn `server.index_home_or_root` on): the folder is indexed and searched; "elsewhere" (Neovim's
-- current directory is another folder): the root is the file's own folder, served as any. The result holds
-- the client's root, the code actions, the search's answer and every message the user saw.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")
local S = dofile(here .. "scenario.lua")

local MODE = os.getenv("AGENTLS_NVIM_MODE") or "held"

local function search(client, buf)
  local answer = require("agentls.compat").request_sync(
    client,
    "agentls/search",
    { query = "remember_the_milk" },
    10000,
    buf
  )
  if answer == nil then
    return { error = "no answer" }
  end
  local err = answer.err or answer.error
  return { error = err and err.message or vim.NIL, hits = answer.result and #answer.result or 0 }
end

H.run(function(h)
  if MODE == "elsewhere" then
    vim.cmd("cd " .. vim.fn.fnameescape(vim.fn.fnamemodify(h.root, ":h") .. "/elsewhere"))
  end
  local buf = h.edit("notes/todo.py")
  local client = h.wait_attached(buf)
  local found
  if MODE == "elsewhere" then
    h.wait(30000, function()
      found = search(client, buf)
      return found.hits > 0
    end, "the file's folder to be indexed and searched")
    vim.wait(1500) -- any late message
    return { root_dir = client.config.root_dir, search = found }
  elseif MODE == "held" then
    h.wait(20000, function()
      for _, m in ipairs(h.messages) do
        if m.message:find("does not index", 1, true) then
          return true
        end
      end
    end, "the server's message about the home folder")
  else
    h.wait(30000, function()
      found = search(client, buf)
      return found.hits > 0
    end, "the home folder to be indexed and searched")
  end
  -- A second loose file there: the same server, and nothing said again.
  vim.cmd("split")
  local other = h.edit("scratch.py")
  h.wait(10000, function()
    return h.agentls_client(other) ~= nil
  end, "the second buffer to attach")
  local same_client = h.agentls_client(other).id == client.id
  vim.cmd("close")
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_win_set_cursor(0, { S.line_of(buf, "def remember_the_milk() -> None:"), 4 })
  local titles = S.code_action_titles(h)
  vim.wait(1500) -- any late message
  return {
    root_dir = client.config.root_dir,
    same_client = same_client,
    clients = #require("agentls").clients(),
    titles = titles,
    search = found or search(client, buf),
  }
end)

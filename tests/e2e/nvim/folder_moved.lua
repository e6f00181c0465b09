-- A folder moved, then deleted, from Neovim (`:!mv`, `:!rm -r`) while the server is not told: Neovim on
-- Linux registers no file watchers (0.7 cannot; 0.10+ does not advertise them there), and the test's
-- settings put the quiet refresh an hour away. The result holds the paths :AgentlsSearch put in the
-- quickfix list before the move, right after it, once the moved folder is found, and right after the delete.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")

local QUERY = "arithmetic mean of values"

H.run(function(h)
  local buf = h.edit("tests/test_stats.py")
  local client = h.wait_attached(buf)
  h.wait(90000, function()
    for _, m in ipairs(h.messages) do
      if m.message:find("Indexed") then
        return true
      end
    end
    return false
  end, "the first index")

  local function search()
    vim.fn.setqflist({}, "r", { title = "", items = {} })
    local seen = #h.messages
    vim.cmd("AgentlsSearch " .. QUERY)
    h.wait(10000, function()
      if vim.fn.getqflist({ title = 1 }).title ~= "" then
        return true
      end
      for i = seen + 1, #h.messages do
        if h.messages[i].message:find("no results", 1, true) then
          return true
        end
      end
      return false
    end, "the results of :AgentlsSearch")
    local paths = {}
    for _, item in ipairs(vim.fn.getqflist()) do
      local file = vim.api.nvim_buf_get_name(item.bufnr)
      table.insert(paths, file:sub(#h.root + 2))
    end
    vim.cmd("cclose")
    return paths
  end

  local before = search()
  vim.cmd("silent !mv mathx moved")
  local after_move = search()
  local moved
  for _ = 1, 40 do -- the quiet refresh that finds it runs after the update that removed the old rows
    moved = search()
    if vim.tbl_contains(moved, "moved/stats.py") then
      break
    end
    vim.wait(500)
  end
  vim.cmd("silent !rm -r moved")
  local after_delete = search()
  return {
    watchers = vim.inspect((client.config.capabilities.workspace or {}).didChangeWatchedFiles),
    before = before,
    after_move = after_move,
    moved = moved,
    after_delete = after_delete,
  }
end)

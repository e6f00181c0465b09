-- The preview's hunk for each line of a proposal's diff, without a server: `AGENTLS_NVIM_CASE` names a
-- JSON file of `agentls/proposal` files (each with its `diff` and the server's `hunks`); the result is,
-- per line of the diff as the preview lays it out, its text, the hunk `agentls.review` gives it (or
-- null), and the hunk ids a key press there is about.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")

H.run(function()
  local review = require("agentls.review")
  local files = vim.fn.json_decode(assert(H.read(os.getenv("AGENTLS_NVIM_CASE"))))
  local lines, where = review.layout(files)
  local out = {}
  for i, line in ipairs(lines) do
    table.insert(out, { text = line, hunk = where[i].hunk or vim.NIL, at = review.hunks_at(files, where, i) })
  end
  return { lines = out }
end)

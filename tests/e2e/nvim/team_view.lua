-- The team run view and the preview's labels without a server: `agentls/runEvent` notifications are
-- handed to the client's handler as Neovim would, before and after :AgentlsRun opens the run's buffer;
-- a team proposal's preview shows the QA verdict; a verification where no test ran is not "FAILED";
-- the diff lines map to the server's hunks when one `@@` section holds two of them.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")

H.run(function(h)
  local st = require("agentls")._state
  local handler = require("agentls.team").handler(st)
  local preview = require("agentls.preview")
  local review = require("agentls.review")
  st:add_run({ id = "r1", client_id = 0, kind = "team", title = "Team: add vouchers", status = "running" })
  handler(nil, {
    runId = "r1",
    kind = "todo",
    items = {
      { id = "1", text = "write the spec", status = "done" },
      { id = "2", text = "design vouchers", status = "in_progress" },
      { id = "3", text = "code and test", status = "pending" },
    },
  })
  handler(nil, { runId = "r1", kind = "role", role = "planner", node = "planner", state = "finished" })
  vim.cmd("AgentlsRun")
  local run_buf = h.buffer_named("agentls://run/r1")
  local before = h.lines(run_buf)
  handler(nil, {
    runId = "r1",
    kind = "handoff",
    role = "architect",
    node = "architect",
    handoff = "Design",
    document = { summary = "A vouchers module" },
    markdown = "**Design**: A vouchers module\n- create shop/vouchers.py",
  })
  handler(nil, { runId = "r1", kind = "role", role = "architect", node = "architect", state = "finished" })
  handler(nil, {
    runId = "r1",
    kind = "warning",
    subject = "interpreter",
    message = "The sandbox could not run .venv/bin/python; tests run with the host's python3."
      .. "\nSet agent.python.",
  })
  local after = h.lines(run_buf)

  local keys = st.config.preview.keys
  local team_preview = preview.lines({
    id = "p1",
    summary = "Added vouchers.",
    files = {},
    verified = true,
    verification = "1 test passed",
    team = {
      spec = { title = "Vouchers" },
      review = {
        passed = true,
        criteria = { { id = "AC1", verdict = "pass", evidence = "VOUCHER = 5 is defined" } },
      },
    },
  }, keys)
  local no_tests = preview.lines({
    id = "p2",
    summary = "s",
    files = {},
    verified = false,
    verification = "Not verified: no tests ran (nothing could be checked).",
  }, keys)
  local failing =
    preview.lines({ id = "p3", summary = "s", files = {}, verified = false, verification = "1 failed" }, keys)

  -- One `@@` section, two server hunks (lines 2 and 5 of a.py changed); a created file is one hunk.
  local files = {
    {
      diff = table.concat({
        "diff --git a/a.py b/a.py",
        "--- a/a.py",
        "+++ b/a.py",
        "@@ -1,5 +1,5 @@",
        " one",
        "-two",
        "+TWO",
        " three",
        " four",
        "-five",
        "+FIVE",
      }, "\n") .. "\n",
      hunks = {
        { id = "a.py#1", oldStart = 2, oldLines = 1, newStart = 2, newLines = 1 },
        { id = "a.py#2", oldStart = 5, oldLines = 1, newStart = 5, newLines = 1 },
      },
    },
    {
      diff = "diff --git a/b.py b/b.py\nnew file mode 100644\n--- /dev/null\n+++ b/b.py\n"
        .. "@@ -0,0 +1 @@\n+bee\n",
      hunks = { { id = "b.py#1", oldStart = 1, oldLines = 0, newStart = 1, newLines = 1 } },
    },
  }
  local lines, where, order = review.layout(files)
  local function at(text)
    for i, line in ipairs(lines) do
      if line == text then
        return review.hunks_at(files, where, i)
      end
    end
    error("no line " .. text)
  end
  return {
    run_before = before,
    run_after = after,
    run_buffer_filetype = vim.bo[run_buf].filetype,
    team_preview = team_preview,
    no_tests = no_tests,
    failing = failing,
    order = order,
    at_minus_two = at("-two"),
    at_plus_five = at("+FIVE"),
    at_section = at("@@ -1,5 +1,5 @@"),
    at_context = at(" three"),
    at_file_b = at("+++ b/b.py"),
    at_bee = at("+bee"),
    plan_partial = review.plan(order, { ["a.py#1"] = "accept", ["b.py#1"] = "reject" }),
    plan_all = review.plan(order, { ["a.py#1"] = "accept", ["a.py#2"] = "accept", ["b.py#1"] = "accept" }),
    plan_none = review.plan(order, { ["a.py#1"] = "reject" }),
  }
end)

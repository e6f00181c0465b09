-- The :Agentls* commands that start runs send the arguments of the server's contract: each request is
-- captured as sent, and the server's answer is kept (a run id, or "not available" while agent runs are
-- not wired in; never "invalid arguments"). :AgentlsSearch fills the quickfix list from the index.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)")
local H = dofile(here .. "harness.lua")
local S = dofile(here .. "scenario.lua")

H.run(function(h)
  local sent, answers = h.record_commands()

  local buf = h.edit("mathx/stats.py")
  local client = h.wait_attached(buf)
  local def_line = S.line_of(buf, "def mean(values: list[float]) -> float:")

  -- :AgentlsTests at the cursor.
  vim.api.nvim_win_set_cursor(0, { def_line, 4 })
  vim.cmd("AgentlsTests")
  -- :AgentlsEdit on a linewise visual selection (the docstring's first two lines).
  vim.api.nvim_win_set_cursor(0, { def_line + 1, 0 })
  vim.cmd("normal! Vj")
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<Esc>", true, false, true), "nx", false)
  vim.cmd("'<,'>AgentlsEdit say what it returns for one value")
  -- :AgentlsEdit on a charwise selection of `value` in clamp's signature, after a multibyte comment.
  vim.api.nvim_buf_set_lines(buf, 0, 0, false, { "# Größe €" })
  vim.api.nvim_win_set_cursor(0, { 1, 2 })
  vim.cmd("normal! vfe")
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<Esc>", true, false, true), "nx", false)
  vim.cmd("'<,'>AgentlsEdit translate")
  -- :AgentlsAsk with a question, no range.
  vim.cmd("AgentlsAsk what does clamp do?")
  -- :AgentlsFix with a diagnostic (from another source) on the cursor line.
  local ns = vim.api.nvim_create_namespace("agentls-test-lint")
  vim.diagnostic.set(ns, buf, {
    {
      lnum = def_line,
      col = 4,
      end_lnum = def_line,
      end_col = 8,
      message = "unused name",
      source = "lint",
      severity = vim.diagnostic.severity.WARN,
    },
  })
  vim.api.nvim_win_set_cursor(0, { def_line + 1, 0 })
  vim.cmd("AgentlsFix")

  -- :AgentlsTeam with an instruction, no range.
  vim.cmd("AgentlsTeam add a vouchers module")
  -- :AgentlsTask (a free-form solo run) on a linewise selection: `def mean` and its docstring's line.
  local task_line = S.line_of(buf, "def mean(values: list[float]) -> float:")
  vim.api.nvim_win_set_cursor(0, { task_line, 0 })
  vim.cmd("normal! Vj")
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<Esc>", true, false, true), "nx", false)
  vim.cmd("'<,'>AgentlsTask make mean accept any iterable")
  -- :AgentlsTask with no argument asks with vim.ui.input; the file, no range.
  local input, task_prompts = vim.ui.input, {}
  vim.ui.input = function(opts, on_confirm)
    table.insert(task_prompts, opts.prompt)
    on_confirm("  add a changelog  ")
  end
  vim.cmd("AgentlsTask")
  vim.ui.input = input

  h.wait(20000, function()
    return vim.tbl_count(answers) == #sent and #sent == 8
  end, "answers to the eight commands")

  -- Search, once the first index is done.
  h.wait(90000, function() -- a loaded CI machine: the first index of the workspace took over 30 s
    for _, m in ipairs(h.messages) do
      if m.message:find("Indexed") then
        return true
      end
    end
    return false
  end, "the first index")
  -- :AgentlsSearch into the quickfix list, and :AgentlsSearch! (files: each file once).
  local function search(command)
    vim.fn.setqflist({}, "r", { title = "", items = {} })
    vim.cmd(command)
    h.wait(10000, function()
      return #vim.fn.getqflist() > 0
    end, "results of " .. command .. " in the quickfix list")
    local items = {}
    for _, item in ipairs(vim.fn.getqflist()) do
      local file = vim.api.nvim_buf_get_name(item.bufnr)
      table.insert(items, { file = file, lnum = item.lnum, text = item.text })
    end
    return items
  end
  local qf = search("AgentlsSearch arithmetic mean")
  local files = {}
  for _, item in ipairs(search("AgentlsSearch! arithmetic mean")) do
    table.insert(files, item.file)
  end
  return {
    sent = sent,
    answers = answers,
    quickfix = qf,
    files = files,
    def_line = def_line,
    task_line = task_line,
    task_doc = vim.api.nvim_buf_get_lines(buf, task_line, task_line + 1, false)[1],
    task_prompts = task_prompts,
    encoding = client.offset_encoding,
  }
end)

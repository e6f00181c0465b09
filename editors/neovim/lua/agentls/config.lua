--- The plugin's options: defaults, merging with what `setup{}` is given, and validation.
local M = {}

M.defaults = {
  --- The server command (`agentls serve --stdio`); the first word must be an executable on $PATH.
  cmd = { "agentls", "serve", "--stdio" },
  --- Extra environment for the server (e.g. `{ ANTHROPIC_API_KEY = ... }`); the rest is inherited.
  cmd_env = nil,
  --- Filetypes whose buffers get the client attached.
  filetypes = {
    "python",
    "javascript",
    "javascriptreact",
    "typescript",
    "typescriptreact",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
    "ruby",
    "php",
    "lua",
    "sh",
  },
  --- Files or folders marking a workspace root; the nearest folder holding one wins. Without one, the
  --- current directory (when the file is inside it) or the file's folder.
  root_markers = { "agentls.toml", ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml" },
  --- A function(bufnr, path) -> root folder or nil, overriding `root_markers`.
  root_dir = nil,
  --- Server settings (section `agentls`): the answer to the server's `workspace/configuration`; see the
  --- server's settings reference.
  settings = {},
  --- Position encodings offered to the server (it picks one). nil: Neovim's own offer on 0.10+, UTF-16
  --- only on older releases (whose other clients all speak UTF-16).
  position_encodings = nil,
  --- Write the files an accepted proposal changed or created (only those).
  write_on_accept = true,
  --- Open the diff preview as soon as a proposal is ready (else `:AgentlsDiff` opens it).
  auto_preview = true,
  preview = {
    --- "split" (horizontal, below), "vsplit" (right) or "tab".
    layout = "split",
    --- Height of a horizontal split (lines); nil leaves Neovim's default.
    height = nil,
    --- Buffer-local keys in the preview: mark the hunk under the cursor (on a `@@` line: its section; on
    --- a file's header: the file; on the summary: every hunk) for accept or reject, mark all, apply the
    --- marks, accept and commit (the commit message opens in a buffer first), close.
    keys = {
      accept = "a",
      reject = "r",
      accept_all = "A",
      reject_all = "R",
      apply = "<CR>",
      commit = "c",
      close = "q",
    },
  },
  --- vim.notify when indexing begins and ends (an agent run's start and end are always said, once).
  notify_progress = true,
  --- Key mappings in attached buffers: false for none, true for the defaults below, or a table that
  --- overrides some of them (a value of false drops that one).
  keymaps = false,
  default_keymaps = {
    implement = "<leader>ai",
    edit = "<leader>ae",
    ask = "<leader>aq",
    fix = "<leader>af",
    tests = "<leader>at",
    diff = "<leader>ad",
    accept = "<leader>aa",
    reject = "<leader>ar",
    cancel = "<leader>ac",
  },
  --- Called as on_attach(client, bufnr) after the client attaches to a buffer.
  on_attach = nil,
}

local function check_list(name, value)
  if type(value) ~= "table" then
    error(string.format("agentls.setup: `%s` must be a list of strings, got %s", name, type(value)), 3)
  end
  for _, item in ipairs(value) do
    if type(item) ~= "string" then
      error(string.format("agentls.setup: `%s` must be a list of strings", name), 3)
    end
  end
end

--- The defaults merged with `opts`; errors name the option that is wrong.
function M.resolve(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("agentls.setup: expected a table of options", 2)
  end
  -- Lists replace the defaults rather than merge index by index.
  local config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  for _, key in ipairs({ "cmd", "filetypes", "root_markers" }) do
    if opts[key] ~= nil then
      config[key] = opts[key]
    end
  end
  if type(config.cmd) == "string" then
    config.cmd = { config.cmd }
  end
  check_list("cmd", config.cmd)
  if #config.cmd == 0 then
    error("agentls.setup: `cmd` is empty; use e.g. { 'agentls', 'serve', '--stdio' }", 2)
  end
  check_list("filetypes", config.filetypes)
  check_list("root_markers", config.root_markers)
  if config.position_encodings ~= nil then
    check_list("position_encodings", config.position_encodings)
  end
  if type(config.settings) ~= "table" then
    error("agentls.setup: `settings` must be a table (the server's `agentls` settings)", 2)
  end
  if config.root_dir ~= nil and type(config.root_dir) ~= "function" then
    error("agentls.setup: `root_dir` must be a function(bufnr, path) returning a folder", 2)
  end
  return config
end

--- The key mappings to install: `{ action = lhs }`.
function M.keymaps(config)
  if config.keymaps == false or config.keymaps == nil then
    return {}
  end
  local maps = vim.deepcopy(config.default_keymaps)
  if type(config.keymaps) == "table" then
    for action, lhs in pairs(config.keymaps) do
      maps[action] = lhs
    end
  end
  for action, lhs in pairs(maps) do
    if lhs == false then
      maps[action] = nil
    end
  end
  return maps
end

return M

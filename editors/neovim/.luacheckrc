-- luacheck (Debian: apt-get install lua-check): `luacheck editors/neovim tests/e2e/nvim`
-- from the repository root, with this file as --config.
std = "luajit"
globals = { "vim" }
max_line_length = 110

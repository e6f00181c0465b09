"""The language server's capabilities, one module each; `server.lsp` registers them and fans out to them."""

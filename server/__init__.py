"""The language server and the `agentls` command line: wiring between editors, `indexing` and `agent`."""

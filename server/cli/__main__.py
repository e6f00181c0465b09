"""``python -m server.cli``: the ``agentls`` command group, as the console script runs it."""

from server.cli.main import main

main()

"""``python -m server.cli``: the ``agentls`` command, as the console script runs it."""

from server.cli.quick import run

run()

"""The ``agentls`` command line: the same services the language server uses, driven headlessly.

`main` (the console script's entry point, ``server.cli:main``) is the Click group defined in `main.py`,
which also holds the index, search, model and serve verbs; `agent.py` adds ``run``, ``implement`` and
``runs``; `support.py` holds what they share. ``python -m server.cli`` runs the same group.
"""

from server.cli.main import main

__all__ = ["main"]

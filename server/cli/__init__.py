"""The ``agentls`` command line: the same services the language server uses, driven headlessly.

The console script's entry point is `quick.run`: it answers ``agentls search`` through the workspace's
warm search process when it can, without importing the rest; everything else goes to `main`, the Click
group defined in `main.py`, which also holds the index, search, model and serve verbs; `agent.py` holds
``run``, ``implement`` and ``runs``, imported (as the other verbs with modules of their own) only when one
of them is asked for; `support.py` holds what they share. ``python -m server.cli`` runs the
same entry point.

This package imports nothing itself, so that the quick path stays quick: ``server.cli.main`` (the name)
is the group, imported on first use, although the module of the same name is where it lives.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["main"]


class _Package(types.ModuleType):
    @property
    def main(self) -> Any:
        from server.cli.main import main

        return main

    @main.setter
    def main(self, module: Any) -> None:
        """The import system binds the submodule ``main`` here once it is loaded; the name stays the group
        (``sys.modules["server.cli.main"]`` is the module)."""


sys.modules[__name__].__class__ = _Package

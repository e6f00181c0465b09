"""The agent-context harness (`tests.benchmarks.retrieval.context_relevance`) counts what an expert would:
a call of the target function (bare or through its module), not another object's method of that name;
import lines at the top level, not a ``require`` inside a method (session 26, helper F's notes)."""

from __future__ import annotations

from pathlib import Path

from tests.benchmarks.retrieval.context_relevance import implement_scores, import_lines
from tests.benchmarks.retrieval.evaluate import open_agentls

_TERMUI = '''"""Terminal helpers."""
import os


def clear():
    """Clear the terminal screen."""
    if os.name == "nt":
        os.system("cls")
    else:
        os.system("clear")
'''

_FIXTURE = """import pytest


@pytest.fixture
def shells():
    known = {"bash": 1}
    yield known
    known.clear()


def test_known_shells(shells):
    assert "bash" in shells
"""


def test_another_objects_method_of_the_same_name_is_no_call_of_the_function(tmp_path: Path) -> None:
    """click's `clear()` and a test fixture's ``known.clear()`` (a dict's): the fixture is no covering
    test of `clear`, and no caller. On ed5792a the harness counted it as both, so a context that rightly
    leaves it out scored covering_test 0.0 (click's `clear` and `copy` in BENCHMARKS.md)."""
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "termui.py").write_text(_TERMUI)
    (root / "tests" / "test_completion.py").write_text(_FIXTURE)
    (root / "pkg" / "ui.py").write_text("from pkg import termui\n\n\ndef reset():\n    termui.clear()\n")
    index = open_agentls(root, tmp_path / "cache")
    scores = implement_scores(index, "pkg/termui.py", "clear")
    assert scores["covering_test"] == 1.0  # none exists: nothing to show
    assert scores["callers"] == 1.0  # `termui.clear()` in ui.py is one, and is shown


def test_import_lines_are_the_top_levels() -> None:
    """Not rack's ``require config`` inside a method (rack-22's imports 0.5 on ed5792a), nor a PHP trait's
    ``use``; an import in a top-level ``try`` block and Ruby's ``require_relative`` are."""
    ruby = (
        "require 'json'\nrequire_relative 'rack/utils'\n\nmodule Rack\n  class Builder\n"
        "    def load(config)\n      require config\n    end\n  end\nend\n"
    )
    assert import_lines(ruby) == [1, 2]
    python = (
        "import os\ntry:\n    import simplejson as json\nexcept ImportError:\n    import json\n\n\n"
        "def f():\n    import re\n"
    )
    assert import_lines(python) == [1, 3, 5]
    php = (
        "<?php\nnamespace Monolog;\n\nuse Psr\\Log\\LoggerInterface;\n\n"
        "class Logger\n{\n    use LoggerTrait;\n}\n"
    )
    assert import_lines(php) == [4]

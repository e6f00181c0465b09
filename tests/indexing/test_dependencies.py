"""The packages that `agentls index` and `agentls search` import are what `pip install -e .` installs.

README's first command is `pip install -e . && agentls index . && agentls search ...`. The test machines
install every extra, so a package that only an extra brings (pylance, from `ray`) went unnoticed while a
plain install found every index "unreadable" on each search (no `lance` to check it) and rebuilt it.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]

CORE = (
    "indexing/store.py",
    "indexing/service.py",
    "indexing/state.py",
    "indexing/walker.py",
    "indexing/chunker.py",
    "indexing/parsing.py",
    "indexing/secrets.py",
    "indexing/ranking.py",
    "indexing/ranking_model.py",
    "indexing/search_daemon.py",
    "server/cli/quick.py",
    "server/cli/main.py",
)
"""Modules of the index and search commands whose every import (at any depth) they may run."""


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "indexing", "agent", "server"}


def test_the_index_and_search_modules_import_only_base_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    distributions = packages_distributions()
    missing = {
        f"{module} ({path}: {', '.join(distributions.get(module, ['?']))})"
        for path in CORE
        for module in _imported(REPO / path)
        if not base & {canonicalize_name(name) for name in distributions.get(module, [module])}
    }
    assert not missing, f"imported by index/search but not a base dependency in pyproject.toml: {missing}"

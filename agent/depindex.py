"""Installed dependencies' code in `search_code`: one index per (distribution, version), reused everywhere.

``search_code {query, dependency: "requests"}`` searches the installed package instead of the
workspace. `DependencyIndexes.search`:

1. resolves the import name with the project's interpreter in the sandbox (`_RESOLVE`): the package's
   folder and the distribution that installed it, with its version (``importlib.metadata``). Only
   installed distributions' packages are indexed (not the standard library, not single-file modules);
2. indexes that folder on demand with the workspace indexer (`indexing.service.WorkspaceIndex`: tree-
   sitter chunks, symbols, full text and vectors when an embedding model is there) into its own
   LanceDB index at ``<agentls cache>/deps/<distribution>-<version>``. The index is keyed by the
   distribution and version, not by the folder, so every workspace (every virtual environment) with
   that version reuses it: a second workspace only stats its files (the content hashes match);
3. searches it; hits are shown with the package's folder name in front (``requests/sessions.py``).

A package with more than `MAX_FILES` source files is not indexed on demand (the answer suggests
``lookup_docs`` with ``query``). Indexing runs in the tool call and stops with the run's cancel.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from agent.interpreter import Interpreter, detect_interpreter
from agent.scratch import scratch_folder
from agent.tools import ToolError, one_line

if TYPE_CHECKING:
    from agent.ports import Sandbox
    from indexing.models import IndexReport, SearchHit
    from indexing.service import WorkspaceIndex

__all__ = ["MAX_FILES", "Dependency", "DependencyIndexes"]

log = logging.getLogger(__name__)

MAX_FILES = 2_000
_SOURCE_SUFFIXES = (".py", ".pyi")

_RESOLVE = r"""
import importlib.util, importlib.metadata as md, json, os, sys
name = sys.argv[1]
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]  # the run's installs
out = {"name": name}
try:
    spec = importlib.util.find_spec(name)
except Exception as error:
    spec, out["error"] = None, repr(error)
if spec is None:
    out.setdefault("error", "no module named " + name)
else:
    locations = list(spec.submodule_search_locations or [])
    out["folder"] = locations[0] if locations else None
    dists = md.packages_distributions().get(name, [])
    if dists:
        out["distribution"] = dists[0]
        out["version"] = md.version(dists[0])
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Dependency:
    """An installed package: its import name, distribution, version and folder."""

    name: str
    distribution: str
    version: str
    folder: Path

    @property
    def key(self) -> str:
        """``<canonical distribution>-<version>``: the index's folder name."""
        return f"{canonicalize_name(self.distribution)}-{self.version}"


class DependencyIndexes:
    """Resolve, index on demand and search installed packages for one workspace."""

    def __init__(
        self,
        root: Path,
        sandbox: Sandbox | None,
        cache_dir: Path | None,
        *,
        interpreter: Interpreter | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """`cache_dir`: agentls' cache (the indexes go to ``cache_dir/deps``); None disables the feature.
        `interpreter`: the run's Python (`agent.interpreter`; None: asked on the first lookup)."""
        self.root = Path(root)
        self.sandbox = sandbox
        self.cache_dir = cache_dir
        self.interpreter = interpreter
        self.cancel = cancel
        self._indexes: dict[str, WorkspaceIndex] = {}
        self.reports: dict[str, IndexReport] = {}
        """The index run of each dependency searched, by `Dependency.key`."""
        self._lock = threading.Lock()

    def resolve(self, name: str) -> Dependency:
        """The installed package importable as `name` (its top-level package)."""
        top = name.strip().split(".")[0]
        if not top.isidentifier():
            raise ToolError(f"{name!r} is not an import name (like `requests` or `yaml`)")
        if self.sandbox is None:
            raise ToolError("there is no sandbox to ask the project's Python in")
        from agent.sandbox import SandboxUnavailable

        self.interpreter = self.interpreter or detect_interpreter(self.root, sandbox=self.sandbox)
        python = self.interpreter.python
        with scratch_folder("agentls-deps-") as scratch:
            try:
                result = self.sandbox.run(
                    [python, "-I", "-c", _RESOLVE, top],
                    scratch,
                    timeout=60,
                    ro_binds=self.interpreter.sandbox_binds(self.root),
                )
            except SandboxUnavailable as error:
                raise ToolError(f"the package could not be looked up: {error}") from None
        line = next((x for x in reversed(result.stdout.splitlines()) if x.startswith("{")), None)
        if result.exit_code != 0 or line is None:
            raise ToolError(
                f"{python} could not look {top} up: {one_line(result.stderr or result.stdout, 300)}"
            )
        data = json.loads(line)
        if data.get("error"):
            raise ToolError(f"{top} is not importable with {python}: {data['error']}")
        if not data.get("folder"):
            raise ToolError(f"{top} is a single module, not a package: read it with lookup_docs")
        if not data.get("distribution"):
            raise ToolError(
                f"{top} is not from an installed distribution (the standard library or the project's own "
                "code?): search the workspace, or use lookup_docs"
            )
        return Dependency(top, str(data["distribution"]), str(data["version"]), Path(data["folder"]))

    def _index(self, dependency: Dependency) -> WorkspaceIndex:
        from indexing.config import IndexSettings
        from indexing.service import WorkspaceIndex

        assert self.cache_dir is not None
        with self._lock:
            index = self._indexes.get(dependency.key)
            if index is None:
                files = sum(1 for p in dependency.folder.rglob("*") if p.suffix in _SOURCE_SUFFIXES)
                if files > MAX_FILES:
                    raise ToolError(
                        f"{dependency.name} has {files:,} source files, too many to index during a run; use "
                        f"lookup_docs with `query` to search its docstrings"
                    )
                location = self.cache_dir / "deps" / dependency.key
                # A small package parses faster in this process than through a pool of workers.
                settings = IndexSettings(uri=str(location), workers=1 if files < 200 else 0)
                index = WorkspaceIndex(dependency.folder, settings, cache_dir=self.cache_dir)
                report = index.index(cancel=self.cancel)
                log.info("indexed %s %s: %s", dependency.distribution, dependency.version, report)
                self.reports[dependency.key] = report
                self._indexes[dependency.key] = index
            return index

    def search(self, name: str, query: str, limit: int) -> tuple[Dependency, list[SearchHit]]:
        """The dependency importable as `name` and the best `limit` hits for `query` in it."""
        if self.cache_dir is None:
            raise ToolError(
                "searching dependencies needs agentls' cache folder, which this run does not have"
            )
        dependency = self.resolve(name)
        try:
            hits = self._index(dependency).search(query, limit=limit)
        except ToolError:
            raise
        except Exception as error:
            log.warning("indexing or searching %s failed: %r", dependency.key, error)
            raise ToolError(f"{dependency.name} could not be indexed or searched ({error})") from None
        return dependency, hits

"""`search_code` and `find_symbol`: the model's way into the workspace index.

- `search_code {query, limit?, path?, files?}`: hybrid search (full text plus vectors when a model is
  loaded) via `WorkspaceIndex.search` (``files``: each file once, at its best chunk); each hit shows
  `path:start-end`, the symbol and its kind, and the code, read from the overlay when the file is there
  (so the model sees its own edits; as the editor tool shows it, with ``\\n`` line breaks) and cut to a
  few dozen lines.
  With `dependency` (an import name), the installed package is searched instead, in its own index
  (`agent.depindex`).
- `find_symbol {name, role?, prefix?, path?}`: definitions and references from the tags-query symbol
  table (`WorkspaceIndex.find_symbols`), one line each with the source line.

The index describes the files as they were on disk when the run started; files the agent edited since
are flagged in the results. Without an index (it could not be built) both tools fall back to a plain
scan of the overlay's text files, slower and lexical, and say so. Secret files never appear.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent.line_endings import for_model
from agent.overlay import Overlay, OverlayError
from agent.paths import PathRefused, is_secret_path
from agent.tools import CustomTool, ToolError, ToolResult, one_line
from indexing.languages import detect_language

if TYPE_CHECKING:
    from agent.depindex import DependencyIndexes
    from agent.ports import CodeIndex

__all__ = ["FindSymbolTool", "SearchCodeTool"]

log = logging.getLogger(__name__)

_MAX_HIT_LINES = 40
_SCAN_MAX_FILES = 5_000
_SCAN_MAX_BYTES = 1_000_000
_DEFINITION_WORDS = re.compile(
    r"\b(?:def|class|function|func|fn|struct|enum|trait|interface|type|const|let|var|impl|module)\s+$"
)


def _changed_paths(overlay: Overlay) -> set[str]:
    return {change.path for change in overlay.changes()}


def _read_overlay(overlay: Overlay, path: str) -> str | None:
    """A file's text as the editor tool shows it (no "\\r" at line ends, no byte order mark)."""
    try:
        return for_model(overlay.read(path))
    except (OverlayError, PathRefused):
        return None


def _scope(overlay: Overlay, path: object) -> str | None:
    """The workspace-relative folder or file to search under, None for everywhere."""
    if not path:
        return None
    try:
        rel = overlay.resolve(str(path))
        exists = rel == "." or overlay.exists(rel)
    except (PathRefused, OverlayError) as error:
        raise ToolError(str(error)) from None
    if not exists:
        # Not "no match under it": the model would conclude the code is not there.
        raise ToolError(
            f"There is no file or folder {rel} in the workspace. Leave `path` out to search everywhere, or "
            "view the workspace's root with the editor to see its folders."
        )
    return None if rel == "." else rel


def _scan_files(overlay: Overlay, path: str | None) -> list[str]:
    """Text source files of the overlay under `path`, for the no-index fallback."""
    try:
        files = overlay.walk_files(path or ".")
    except (OverlayError, PathRefused) as error:
        raise ToolError(str(error)) from None
    out = []
    for rel in files:
        if is_secret_path(rel) or detect_language(rel) is None:
            continue
        try:
            if (overlay.root / rel).is_file() and (overlay.root / rel).stat().st_size > _SCAN_MAX_BYTES:
                continue
        except OSError:
            continue
        out.append(rel)
        if len(out) >= _SCAN_MAX_FILES:
            break
    return out


class SearchCodeTool(CustomTool):
    """`search_code`: find code by words or meaning."""

    name = "search_code"
    description = (
        "Search the workspace's code index (full text and semantic) for functions, classes and "
        "other code matching the query. Returns the best matches with their file, lines, symbol "
        "and code. Use it to find where something is implemented before reading or editing files."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "Identifiers, phrases or a description of the code you are looking for.",
            },
            "limit": {"type": "integer", "description": "Number of results (default 8, at most 30)."},
            "path": {
                "type": "string",
                "description": "Only search under this folder or file (workspace-relative).",
            },
            "dependency": {
                "type": "string",
                "description": "Search this installed Python package (its import name, e.g. `requests`) "
                "instead of the workspace; indexed on first use.",
            },
            "files": {
                "type": "boolean",
                "description": "Find files: each file once, with its best match (which files handle X).",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }

    def __init__(
        self, overlay: Overlay, index: CodeIndex | None, dependencies: DependencyIndexes | None = None
    ) -> None:
        self.overlay = overlay
        self.index = index
        self.dependencies = dependencies

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        """`search_code: QUERY`."""
        return f"search_code: {one_line(input.get('query', ''), 80)}"

    def run(self, input: Mapping[str, Any]) -> ToolResult:
        """Search and format the hits."""
        query = str(input["query"]).strip()
        if not query:
            raise ToolError("The query is empty: say what to look for.")
        limit = max(1, min(30, int(input.get("limit") or 8)))
        if input.get("dependency"):
            return ToolResult(self._search_dependency(str(input["dependency"]), query, limit))
        scope = _scope(self.overlay, input.get("path"))
        if self.index is None:
            return ToolResult(self._scan(query, limit, scope))
        try:
            hits = self.index.search(query, limit=limit, path=scope, files=input.get("files") is True)
        except Exception as error:
            log.warning("search_code failed: %s", error)
            raise ToolError(f"The index could not be searched ({error}); use grep through bash.") from None
        hits = [hit for hit in hits if not is_secret_path(hit.path)]
        if not hits:
            shown = query if len(query) <= 200 else f"{query[:200]}..."  # not a pasted file echoed back
            return ToolResult(f"No code matches {shown!r}" + (f" under {scope}" if scope else "") + ".")
        changed = _changed_paths(self.overlay)
        parts = []
        for number, hit in enumerate(hits, 1):
            text = hit.text
            current = _read_overlay(self.overlay, hit.path)
            if current is not None:
                lines = current.split("\n")[hit.start_line - 1 : hit.end_line]
                text = "\n".join(lines) or text
            lines = text.split("\n")
            if len(lines) > _MAX_HIT_LINES:
                cut = len(lines) - _MAX_HIT_LINES
                text = "\n".join(lines[:_MAX_HIT_LINES]) + f"\n... ({cut} more lines: view the file)"
            symbol = f"  {hit.symbol} ({hit.kind})" if hit.symbol else f"  ({hit.kind})"
            edited = "  [you edited this file: lines may have moved]" if hit.path in changed else ""
            parts.append(f"{number}. {hit.path}:{hit.start_line}-{hit.end_line}{symbol}{edited}\n{text}")
        return ToolResult("\n\n".join(parts))

    def _search_dependency(self, name: str, query: str, limit: int) -> str:
        if self.dependencies is None:
            raise ToolError("searching installed packages is not available in this run; use lookup_docs")
        dependency, hits = self.dependencies.search(name, query, limit)
        title = f"{dependency.distribution} {dependency.version} ({dependency.folder})"
        if not hits:
            return f"No code in {title} matches {query!r}."
        parts = [f"In {title}:"]
        for number, hit in enumerate(hits, 1):
            lines = hit.text.split("\n")
            text = "\n".join(lines[:_MAX_HIT_LINES]) + ("\n..." if len(lines) > _MAX_HIT_LINES else "")
            symbol = f"  {hit.symbol} ({hit.kind})" if hit.symbol else f"  ({hit.kind})"
            where = f"{dependency.folder.name}/{hit.path}:{hit.start_line}-{hit.end_line}"
            parts.append(f"{number}. {where}{symbol}\n{text}")
        return "\n\n".join(parts)

    def _scan(self, query: str, limit: int, scope: str | None) -> str:
        words = [w.lower() for w in re.findall(r"\w+", query) if len(w) > 1]
        if not words:
            raise ToolError("The query has no words to search for.")
        scored: list[tuple[int, str, int, str]] = []
        for rel in _scan_files(self.overlay, scope):
            text = _read_overlay(self.overlay, rel)
            if text is None:
                continue
            for number, line in enumerate(text.split("\n"), 1):
                lowered = line.lower()
                score = sum(1 for word in words if word in lowered)
                if score:
                    scored.append((score, rel, number, line.strip()[:200]))
        scored.sort(key=lambda item: (-item[0], item[1], item[2]))
        note = "(no index is available: this is a plain text scan of the workspace)\n"
        if not scored:
            return note + f"No line matches {query!r}."
        return note + "\n".join(f"{rel}:{number}: {line}" for _, rel, number, line in scored[: limit * 3])


class FindSymbolTool(CustomTool):
    """`find_symbol`: where a name is defined and where it is used."""

    name = "find_symbol"
    description = (
        "Find the definitions and references of a symbol (function, method, class, type) in the "
        "workspace, from the index's symbol table. Each result is `path:line:column`, the role "
        "and kind, the enclosing definition and the source line."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The symbol's name, e.g. `total` or `Cart`."},
            "role": {
                "type": "string",
                "enum": ["definition", "reference", "any"],
                "description": "Definitions, references (calls, uses) or both (default).",
            },
            "prefix": {"type": "boolean", "description": "Match names starting with `name`."},
            "path": {"type": "string", "description": "Only look under this folder or file."},
        },
        "required": ["name"],
        "additionalProperties": False,
    }

    _LIMIT = 60

    def __init__(self, overlay: Overlay, index: CodeIndex | None) -> None:
        self.overlay = overlay
        self.index = index

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        """`find_symbol: NAME`."""
        return f"find_symbol: {input.get('name', '')}"

    def run(self, input: Mapping[str, Any]) -> ToolResult:
        """Look the name up and format one line per occurrence."""
        name = str(input["name"]).strip()
        if not name:
            raise ToolError("The name is empty.")
        # Qualified names (`Cart.total`, `mod::f`) are stored by their last part.
        short = re.split(r"\.|::|#", name)[-1]
        role = input.get("role") or "any"
        prefix = bool(input.get("prefix", False))
        scope = _scope(self.overlay, input.get("path"))
        if self.index is None:
            return ToolResult(self._scan(short, role, prefix, scope))
        try:
            symbols = self.index.find_symbols(
                short, prefix=prefix, role=None if role == "any" else role, path=scope, limit=self._LIMIT + 1
            )
        except Exception as error:
            log.warning("find_symbol failed: %s", error)
            raise ToolError(f"The symbol table could not be read ({error}); use search_code.") from None
        symbols = [s for s in symbols if not is_secret_path(s.path)]
        if not symbols:
            under = f" under {scope}" if scope else ""
            return ToolResult(f"No {'' if role == 'any' else role + ' of '}`{name}` in the index{under}.")
        symbols.sort(key=lambda s: (s.role != "definition", s.path, s.line))
        changed = _changed_paths(self.overlay)
        texts: dict[str, list[str] | None] = {}
        lines = []
        for symbol in symbols[: self._LIMIT]:
            if symbol.path not in texts:
                text = _read_overlay(self.overlay, symbol.path)
                texts[symbol.path] = text.split("\n") if text is not None else None
            source = texts[symbol.path]
            line = source[symbol.line - 1].strip()[:160] if source and 0 < symbol.line <= len(source) else ""
            inside = f" in {symbol.container}" if symbol.container else ""
            edited = " [edited]" if symbol.path in changed else ""
            lines.append(
                f"{symbol.path}:{symbol.line}:{symbol.column + 1}  {symbol.role} {symbol.kind} "
                f"{symbol.name}{inside}{edited}: {line}"
            )
        if len(symbols) > self._LIMIT:
            lines.append("... more results: narrow with `path` or `role`")
        return ToolResult("\n".join(lines))

    def _scan(self, name: str, role: str, prefix: bool, scope: str | None) -> str:
        tail = r"\w*" if prefix else ""
        pattern = re.compile(r"(?<![\w$])" + re.escape(name) + tail + r"(?![\w$])")
        found: list[str] = []
        for rel in _scan_files(self.overlay, scope):
            text = _read_overlay(self.overlay, rel)
            if text is None:
                continue
            for number, line in enumerate(text.split("\n"), 1):
                for match in pattern.finditer(line):
                    is_definition = bool(_DEFINITION_WORDS.search(line[: match.start()]))
                    kind = "definition" if is_definition else "reference"
                    if role in ("any", kind):
                        found.append(f"{rel}:{number}:{match.start() + 1}  {kind}: {line.strip()[:160]}")
                    break
                if len(found) > self._LIMIT:
                    break
        note = "(no index is available: this is a plain text scan of the workspace)\n"
        if not found:
            return note + f"No occurrence of `{name}`."
        return note + "\n".join(found[: self._LIMIT])

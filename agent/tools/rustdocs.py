"""Rust crates for `lookup_docs`: the crate's source as Cargo downloaded it, read on the host (nothing runs).

- The version is the one the workspace's ``Cargo.lock`` names (the highest when several are locked);
  without a lock file, the highest version present on disk. Crate names compare with ``-`` and ``_``
  as the same (``proc-macro2`` is ``proc_macro2`` in code).
- The source is ``<cargo home>/registry/src/<index>/<crate>-<version>/`` (``$CARGO_HOME``, else
  ``~/.cargo``), where ``cargo fetch`` or any build puts it. Nothing is downloaded: a crate that is not
  there is an error that says to run ``cargo fetch``.
- ``crate`` alone: the version, the description from its ``Cargo.toml``, the crate documentation
  (``//!`` of ``src/lib.rs``, else the README) and the public items of ``src/lib.rs``.
- ``crate::path::Item``: the public definitions named ``Item`` (``fn``, ``struct``, ``enum``, ``trait``,
  ``type``, ``mod``, ``const``, ``static``, ``union``, ``macro_rules!``) with their ``///`` docs and
  attributes, the signature (a function up to its body, a type or trait with its body, bounded), and
  file and line; definitions in files along the path (``src/de/mod.rs`` for ``serde::de::X``) first.
- ``query``: the public items whose name or doc comment match the most words.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from agent.tools import ToolError

__all__ = ["RUST_NAME", "CrateSource", "crate_source", "default_cargo_home", "rust_docs"]

RUST_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(?:::[A-Za-z_][A-Za-z0-9_]*)*$")
_KINDS = "fn|struct|enum|trait|type|mod|const|static|union"
_QUALIFIERS = r"(?:(?:async|unsafe|const|default|extern(?:[ \t]+\"[^\"]*\")?)[ \t]+)*"
_PUB_ITEM = re.compile(
    rf"^[ \t]*pub(?:\([^)]*\))?[ \t]+{_QUALIFIERS}({_KINDS})[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE
)
_MACRO = re.compile(r"^[ \t]*macro_rules![ \t]*([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_MAX_FILES = 3000
_MAX_BODY_LINES = 60


@dataclass(frozen=True)
class CrateSource:
    """A crate's downloaded source."""

    name: str
    version: str
    folder: Path


def default_cargo_home() -> Path:
    """``$CARGO_HOME``, else ``~/.cargo``."""
    return Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _locked_versions(root: Path, crate: str) -> list[str]:
    try:
        lock = tomllib.loads((root / "Cargo.lock").read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    return [
        str(p["version"])
        for p in lock.get("package", [])
        if isinstance(p, dict) and _norm(str(p.get("name", ""))) == _norm(crate) and "version" in p
    ]


def crate_source(root: Path, crate: str, cargo_home: Path) -> CrateSource:
    """The source folder of `crate` in the version the workspace uses; `ToolError` when it is not there."""
    sources = cargo_home / "registry" / "src"
    present: dict[str, tuple[str, Path]] = {}  # version -> (real name, folder)
    if sources.is_dir():
        for index in sources.iterdir():
            if not index.is_dir():
                continue
            for folder in index.iterdir():
                # <name>-<semver>; a name may hold '-' and digits, the version starts at "-N.N.N".
                match = re.match(r"^(.+?)-(\d+\.\d+\.\d+.*)$", folder.name)
                if match and _norm(match[1]) == _norm(crate) and folder.is_dir():
                    name, version = match[1], match[2]
                    present.setdefault(version, (name, folder))
    locked = _locked_versions(root, crate)
    if locked:
        for version in sorted(locked, key=_version_key, reverse=True):
            if version in present:
                name, folder = present[version]
                return CrateSource(name, version, folder)
        raise ToolError(
            f"{crate} {', '.join(locked)} (from Cargo.lock) is not downloaded under {sources}; run "
            "`cargo fetch` in the project, then look it up again"
        )
    if not present:
        raise ToolError(
            f"the crate {crate} is neither in Cargo.lock nor under {sources}; check the name, or run "
            "`cargo fetch` in the project"
        )
    version = max(present, key=_version_key)
    name, folder = present[version]
    return CrateSource(name, version, folder)


def _rust_files(folder: Path) -> list[Path]:
    src = folder / "src"
    files = sorted(src.rglob("*.rs")) if src.is_dir() else []
    return files[:_MAX_FILES]


def _docs_above(lines: list[str], index: int) -> list[str]:
    """The ``///`` lines and attributes right above line `index`, in order."""
    start = index
    while start > 0:
        text = lines[start - 1].strip()
        if text.startswith("///") or text.startswith("#[") or text.startswith("#!["):
            start -= 1
        else:
            break
    return [line.strip() for line in lines[start:index]]


def _definition(lines: list[str], index: int, kind: str) -> list[str]:
    """The definition starting at line `index`: a signature up to the body, or a type's whole body."""
    out: list[str] = []
    indent = len(lines[index]) - len(lines[index].lstrip())
    whole = kind in ("struct", "enum", "trait", "union", "macro")
    for i in range(index, min(len(lines), index + _MAX_BODY_LINES)):
        line = lines[i]
        out.append(line.rstrip())
        code = line.split("//", 1)[0]
        if not whole and ("{" in code or code.rstrip().endswith(";")):
            if "{" in code:
                out[-1] = out[-1].split("{", 1)[0].rstrip() + " { ... }"
            return out
        if whole and i > index and line.strip().startswith("}") and len(line) - len(line.lstrip()) == indent:
            return out
        if whole and i == index and code.rstrip().endswith(";"):
            return out
    out.append("    ... (cut)")
    return out


def _doc_text(doc: list[str]) -> str:
    return "\n".join(line[3:].strip() if line.startswith("///") else line for line in doc)


def _items(path: Path) -> list[tuple[str, str, int, list[str]]]:
    """(kind, name, line index, lines) of the public items and macros of one file."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return []
    lines = text.splitlines()
    found: list[tuple[str, str, int, list[str]]] = []
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def line_of(position: int) -> int:
        low, high = 0, len(offsets) - 1
        while low < high:
            mid = (low + high + 1) // 2
            if offsets[mid] <= position:
                low = mid
            else:
                high = mid - 1
        return low

    for match in _PUB_ITEM.finditer(text):
        found.append((match[1], match[2], line_of(match.start()), lines))
    for match in _MACRO.finditer(text):
        found.append(("macro", match[1], line_of(match.start()), lines))
    return found


def _overview(source: CrateSource) -> str:
    parts = [f"crate {source.name} {source.version} ({source.folder})"]
    try:
        manifest = tomllib.loads((source.folder / "Cargo.toml").read_text("utf-8"))
        description = manifest.get("package", {}).get("description")
        if description:
            parts.append(" ".join(str(description).split()))
    except (OSError, tomllib.TOMLDecodeError):
        pass
    lib = source.folder / "src" / "lib.rs"
    lines = lib.read_text("utf-8", "replace").splitlines() if lib.is_file() else []
    crate_doc = [line.strip()[3:].strip() for line in lines if line.strip().startswith("//!")]
    if crate_doc:
        parts += ["", "\n".join(crate_doc[:80])]
    else:
        readme = next((p for p in sorted(source.folder.glob("README*")) if p.is_file()), None)
        if readme is not None:
            parts += ["", f"{readme.name}:", readme.read_text("utf-8", "replace")[:4000]]
    public = [f"- {kind} {name}" for kind, name, _, _ in _items(lib)] if lib.is_file() else []
    uses = [line.strip() for line in lines if re.match(r"^\s*pub use\b", line)]
    if public or uses:
        parts += ["", "public items of src/lib.rs:", *public[:60], *[f"- {u}" for u in uses[:40]]]
    return "\n".join(parts)


def _item(source: CrateSource, path: list[str]) -> str:
    name, modules = path[-1], path[:-1]
    matches: list[tuple[int, str, str]] = []
    for file in _rust_files(source.folder):
        rel = file.relative_to(source.folder).as_posix()
        parts = set(Path(rel).with_suffix("").parts)
        for kind, found, index, lines in _items(file):
            if found != name:
                continue
            score = sum(1 for module in modules if module in parts)
            doc = _doc_text(_docs_above(lines, index))
            body = "\n".join(_definition(lines, index, kind))
            text = f"{kind} {name} ({rel}:{index + 1})\n" + (f"{doc}\n" if doc else "") + body
            matches.append((score, rel, text))
    if not matches:
        raise ToolError(
            f"no public item named {name} in {source.name} {source.version} (src/); look the crate up "
            f"without a path for its public items, or use `query`"
        )
    matches.sort(key=lambda m: (-m[0], len(m[1]), m[1]))
    header = f"{'::'.join(path)} in crate {source.name} {source.version} ({source.folder})"
    shown = "\n\n".join(text for _, _, text in matches[:5])
    more = f"\n\n({len(matches) - 5} more definitions with that name)" if len(matches) > 5 else ""
    return f"{header}\n\n{shown}{more}"


def _search(source: CrateSource, query: str) -> str:
    words = [w for w in re.split(r"\W+", query.lower()) if w]
    scored: list[tuple[int, str]] = []
    for file in _rust_files(source.folder):
        rel = file.relative_to(source.folder).as_posix()
        for kind, name, index, lines in _items(file):
            doc = _doc_text([d for d in _docs_above(lines, index) if d.startswith("///")])
            haystack = f"{name} {doc}".lower()
            score = sum(1 for w in words if w in haystack)
            if score:
                summary = doc.split("\n", 1)[0][:160]
                scored.append(
                    (score, f"- {kind} {name} ({rel}:{index + 1})" + (f": {summary}" if summary else ""))
                )
    scored.sort(key=lambda s: -s[0])
    lines = [line for _, line in scored[:25]] or ["(no public item matches)"]
    return f"Search for {query!r} in crate {source.name} {source.version}:\n" + "\n".join(lines)


def rust_docs(root: Path, name: str, query: str, cargo_home: Path) -> str:
    """The text `lookup_docs` answers for a Rust crate or item (see the module doc)."""
    if not RUST_NAME.match(name):
        raise ToolError(f"{name!r} is not a Rust crate or path (like `serde` or `serde::de::Deserialize`)")
    path = name.split("::")
    source = crate_source(root, path[0], cargo_home)
    if query:
        return _search(source, query)
    if len(path) == 1:
        return _overview(source)
    return _item(source, path[1:] if len(path) > 1 else path)

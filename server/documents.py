"""The editor's open documents: text and version of each buffer, kept in sync with the editor.

The server announces incremental sync: a change names a range (in the negotiated position encoding,
`server.positions`) and its new text, or has no range and is the whole text; `apply_changes` applies a
``didChange``'s changes in order, each to the text the one before it left, as LSP says. This store is
the one copy of each buffer (pygls keeps none: `server.lsp.AgentlsProtocol`).

The agent's base is the workspace on disk plus these buffers (`DocumentStore.buffers`): a run must see the
text the user is looking at, unsaved edits included, and remember the version it saw so the proposal's
edits can be refused by the editor when the buffer moved on (`DocumentStore.open_documents`).

A document larger than the size limit is still tracked (its version matters for edits), but marked
``too_large``: features that parse or analyse text skip it and say so once in the log.

URIs that are not ``file:`` (``untitled:``, ``git:``, ...) are tracked too, with no path: they are never
part of a workspace folder, so they never reach the agent or the index. So are ``file:`` URIs that name no
absolute path on this machine (a Windows drive, another host's share, a relative path: `uri_to_path`).

Only the event loop mutates the store; `buffers` and `open_documents` return snapshots that a worker
thread may keep.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from server.edits import OpenDocument
from server.positions import Encoding, LineIndex

__all__ = [
    "Document",
    "DocumentStore",
    "Nesting",
    "apply_changes",
    "locate",
    "nesting",
    "real_path",
    "uri_to_path",
]

log = logging.getLogger(__name__)


def uri_to_path(uri: str) -> Path | None:
    """The absolute file path of a ``file:`` URI; None for any other scheme, a malformed URI, or one that
    names no absolute path here.

    ``file://localhost/x`` is ``file:///x`` (RFC 8089). A Windows path (``file:///c%3A/src/x.py``, from an
    editor on Windows talking to a server elsewhere) or a relative one (``file:x.py``) is no path on this
    machine: read as written it was relative, so it was found under the server's working folder (the
    project, when Neovim started the server there), got agent actions, and a run edited ``c:/src/x.py``
    inside the project.
    """
    if not isinstance(uri, str) or not uri.startswith("file:"):
        return None
    if uri[:17].lower() == "file://localhost/":
        uri = "file:///" + uri[17:]
    try:
        path = to_fs_path(uri)
    except Exception:  # a malformed URI is the client's bug; it must not become ours
        return None
    if not path or not path.startswith("/") or path.startswith("//"):
        return None  # relative, a Windows drive, or another host's share (file://server/share)
    return Path(path)


Nesting = Mapping[Path, Sequence[tuple[Path, str]]]
"""Workspace folder -> the other folders inside it, each with its path in it (`nesting`)."""


def locate(path: Path, roots: Iterable[Path], nested: Nesting | None = None) -> tuple[Path, str] | None:
    """(workspace root, POSIX path relative to it) of `path`: the innermost root holding it, or None.

    A path under no root as written is looked for again with the links resolved on both sides: a folder
    opened through a symbolic link and a file named by its real path (or the other way round) are the
    same file. A link inside a root that leads out of it is not followed: its path as written counts.
    A root inside the one found, also when one of them was opened through a link, holds the file instead
    when the file's path in the outer root goes through it; the relative path is still the one the path
    as written gives. `nested` is the roots' `nesting`, when the caller keeps it (else it is worked out
    here, resolving each root's links).
    """
    all_roots = list(roots)
    # `..` is resolved first: Path.relative_to is lexical, and /ws/../etc/passwd would be "../etc/passwd".
    path = Path(os.path.normpath(path))
    best = _innermost(path, all_roots)
    if best is None and all_roots:
        real = real_path(path)
        real_roots = {root: real_path(root) for root in all_roots}
        found = _innermost(real, list(real_roots.values()))
        if found is not None:
            best = (next(r for r, rr in real_roots.items() if rr == found[0]), found[1])
    if best is not None and len(all_roots) > 1:
        best = _through_nested(best, all_roots, nesting(all_roots) if nested is None else nested)
    if best is not None and best[1] in ("", "."):
        return None
    return best


def _through_nested(found: tuple[Path, str], roots: list[Path], nested: Nesting) -> tuple[Path, str]:
    """`found` moved to the innermost of `roots` inside its root whose folder its path goes through."""
    best = found
    deepest = -1
    outer, rel = found
    for inner, prefix in nested.get(outer, ()):
        if inner in roots and len(prefix) > deepest and (rel == prefix or rel.startswith(prefix + "/")):
            best, deepest = (inner, rel[len(prefix) + 1 :]), len(prefix)
    return best


def nesting(roots: Iterable[Path]) -> dict[Path, list[tuple[Path, str]]]:
    """Each of `roots` -> the other roots inside it, each with where it lies in it ("packages/billing").

    Compared as written, then with the links resolved (each root's once):
    a monorepo opened through a symbolic link (``~/mono`` -> ``/src/mono``) and one of its packages by its
    real path, or the other way round, are still one inside the other. A root may lie in another at two
    places: a link inside a monorepo to one of its packages (``repo/link-a`` -> ``pkgs/a``) is inside
    ``repo`` as ``link-a`` and as ``pkgs/a``, and the walker indexes both paths there. The same folder
    named twice (once through a link) is not inside itself.
    """
    unique = list(dict.fromkeys(roots))
    resolved = {root: real_path(root) for root in unique}
    out: dict[Path, list[tuple[Path, str]]] = {}
    for outer in unique:
        for inner in unique:
            for prefix in _prefixes(inner, outer, resolved[inner], resolved[outer]):
                out.setdefault(outer, []).append((inner, prefix))
    return out


def _prefixes(inner: Path, outer: Path, real_inner: Path, real_outer: Path) -> list[str]:
    if inner == outer or real_inner == real_outer:
        return []
    found: list[str] = []
    if inner.is_relative_to(outer):
        found.append(inner.relative_to(outer).as_posix())
    if real_inner.is_relative_to(real_outer):
        rel = real_inner.relative_to(real_outer).as_posix()
        if rel not in found:
            found.append(rel)
    return found


def _innermost(path: Path, roots: list[Path]) -> tuple[Path, str] | None:
    best: tuple[Path, str] | None = None
    for root in roots:
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        if best is None or len(root.parts) > len(best[0].parts):
            best = (root, rel.as_posix())
    return best


def real_path(path: Path) -> Path:
    """`path` with its links resolved; as written when that fails."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop, a name too long: only the path as written counts
        return path


def _too_large(text: str, max_bytes: int) -> bool:
    # Code points <= UTF-8 bytes <= 4 x code points: encode only when the bounds cannot decide.
    if len(text) > max_bytes:
        return True
    if len(text) * 4 <= max_bytes:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > max_bytes


@dataclass(eq=False)
class Document:
    """One open buffer."""

    uri: str
    text: str
    version: int
    language_id: str
    path: Path | None
    too_large: bool
    _lines: LineIndex | None = field(default=None, repr=False)

    @property
    def lines(self) -> LineIndex:
        """The line index of the current text (built on first use, dropped on change)."""
        if self._lines is None or self._lines.text is not self.text:
            self._lines = LineIndex(self.text)
        return self._lines


def apply_changes(
    doc: Document, changes: Sequence[types.TextDocumentContentChangeEvent], encoding: Encoding
) -> str:
    """The text of `doc` after a ``didChange``'s `changes`, applied in order.

    A ranged change replaces its range, whose positions are in `encoding` and clamp as `server.positions`
    says (past the end of a line is its end, past the last line the end of the text; an end before its
    start is the start, so the text is inserted there); a change without a range is the whole new text.
    """
    text = doc.text
    for change in changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            lines = doc.lines if text is doc.text else LineIndex(text)
            start = lines.offset(change.range.start.line, change.range.start.character, encoding)
            end = lines.offset(change.range.end.line, change.range.end.character, encoding)
            text = text[:start] + change.text + text[max(start, end) :]
        else:
            text = change.text
    return text


class DocumentStore:
    """Open documents by URI."""

    def __init__(self, max_bytes: int) -> None:
        self._docs: dict[str, Document] = {}
        self._max_bytes = max_bytes
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def set_max_bytes(self, max_bytes: int) -> None:
        """Change the size limit (a settings change) and re-check every open document against it."""
        self._max_bytes = max_bytes
        for doc in self._docs.values():
            doc.too_large = _too_large(doc.text, max_bytes)

    def open(self, uri: str, text: str, version: int, language_id: str = "") -> Document:
        """Track a newly opened buffer (opening an already open URI replaces it, as editors mean it)."""
        doc = Document(uri, text, version, language_id, uri_to_path(uri), _too_large(text, self._max_bytes))
        self._docs[uri] = doc
        if doc.too_large:
            self.warn_too_large(doc)
        return doc

    def change(self, uri: str, text: str, version: int) -> Document | None:
        """Set a buffer's text (its changes applied: `apply_changes`); None when the URI was never opened."""
        doc = self._docs.get(uri)
        if doc is None:
            log.warning("ignoring a change to %s, which was never opened (didOpen missing)", uri)
            return None
        doc.text = text
        doc.version = version
        was_large, doc.too_large = doc.too_large, _too_large(text, self._max_bytes)
        if doc.too_large and not was_large:
            self.warn_too_large(doc)
        return doc

    def close(self, uri: str) -> bool:
        """Forget a buffer; False (and nothing else) when it was not open."""
        self._warned.discard(uri)
        return self._docs.pop(uri, None) is not None

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def warn_too_large(self, doc: Document) -> None:
        """Log once per document that it is over the limit and what that means."""
        if doc.uri in self._warned:
            return
        self._warned.add(doc.uri)
        log.info(
            "%s is larger than %d bytes: agentls code actions skip it (raise index.max_file_bytes to "
            "include it)",
            doc.uri,
            self._max_bytes,
        )

    def documents_under(self, root: Path, roots: Iterable[Path]) -> dict[str, Document]:
        """Open file documents whose innermost workspace folder is `root`, by relative path (`root` counts
        as a folder also when it is no longer one: a run of a folder the editor closed still settles
        against the buffers the editor has open there)."""
        all_roots = list(dict.fromkeys([*roots, root]))
        nested = nesting(all_roots) if len(all_roots) > 1 else {}
        out: dict[str, Document] = {}
        for doc in self._docs.values():
            if doc.path is None:
                continue
            found = locate(doc.path, all_roots, nested)
            if found is not None and found[0] == root:
                out[found[1]] = doc
        return out

    def buffers(self, root: Path, roots: Iterable[Path] | None = None) -> dict[str, tuple[str, int]]:
        """Relative path -> (text, version) of every open buffer in `root`: the agent overlay's base."""
        docs = self.documents_under(root, roots if roots is not None else [root])
        return {rel: (doc.text, doc.version) for rel, doc in docs.items()}

    def open_documents(self, root: Path, roots: Iterable[Path] | None = None) -> dict[str, OpenDocument]:
        """Relative path -> (URI, version) of every open buffer in `root`, for versioned edits."""
        docs = self.documents_under(root, roots if roots is not None else [root])
        return {rel: OpenDocument(doc.uri, doc.version) for rel, doc in docs.items()}

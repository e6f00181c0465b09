"""Turning a proposal's file changes into an LSP `WorkspaceEdit` the editor can preview and apply.

`workspace_edit` makes ``documentChanges``: one versioned `TextDocumentEdit` per modified file with
*minimal* edits (a line diff by `agent.hunks.line_opcodes`, which the proposal's diff and hunks come from
too, then each changed block trimmed of the characters it shares with its replacement at both ends), so
the editor keeps cursors, folds and marks outside the changed characters, and the preview shows what
really changed. Created files are a `CreateFile` followed by a
`TextDocumentEdit` that fills them; renames a `RenameFile` (plus edits of the renamed file when its
content changed); deletions a `DeleteFile`.

Change annotations with ``needsConfirmation`` make VS Code show its refactor preview before applying;
they are added only when the client says it supports them (`EditSupport`). A client without
``documentChanges`` support gets the plain ``changes`` map, which cannot create, rename or delete
files: `UnsupportedEdit` says so instead of silently dropping those.

Edits never split a ``\\r\\n`` pair (a position between ``\\r`` and ``\\n`` does not exist in LSP), and
positions are in the negotiated encoding (see `server.positions`). A UTF-8 byte order mark is not in the
text an editor holds (VS Code and Neovim read it as the file's encoding, and write it back on save), so
the edits of a file that keeps its mark are made, and their positions counted, without it. Adding or
removing the mark cannot be said in LSP edits: such a change is an `UnsupportedEdit` naming the file
(`agentls run --apply` writes it, mark and all). All of this is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from agent.hunks import line_opcodes
from agent.line_endings import BOM
from agent.overlay import FileChange
from server.positions import Encoding, LineIndex

__all__ = [
    "ANNOTATION_ID",
    "EditSupport",
    "NoApplyEdit",
    "OpenDocument",
    "TextChange",
    "UnsupportedEdit",
    "changed_line_ranges",
    "minimal_text_changes",
    "text_edits",
    "workspace_edit",
]

ANNOTATION_ID = "agentls"
"""The change annotation every agentls edit carries (its label too)."""

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


class UnsupportedEdit(Exception):
    """The client cannot apply this kind of change; the message says what and what to do."""


class NoApplyEdit(UnsupportedEdit):
    """The client applies no edit a server sends: its capabilities lack ``workspace.applyEdit``."""


@dataclass(frozen=True, slots=True)
class OpenDocument:
    """An editor buffer the edits must apply to: the URI the client used and its version."""

    uri: str
    version: int


@dataclass(frozen=True, slots=True)
class EditSupport:
    """What the client can apply, read from its `workspace.workspaceEdit` capabilities."""

    document_changes: bool = True
    resource_operations: frozenset[str] = frozenset({"create", "rename", "delete"})
    change_annotations: bool = False

    @classmethod
    def from_client(cls, capabilities: types.ClientCapabilities | None) -> EditSupport:
        """Read the client's capabilities.

        A client that lists resource operations can only apply them inside ``documentChanges``, so
        listing them counts as supporting ``documentChanges`` even when the flag is missing (Neovim
        leaves it out yet applies them).
        """
        ws = capabilities.workspace if capabilities is not None else None
        edit = ws.workspace_edit if ws is not None else None
        if edit is None:
            return cls(document_changes=False, resource_operations=frozenset(), change_annotations=False)
        operations = frozenset(str(getattr(op, "value", op)) for op in edit.resource_operations or ())
        document_changes = bool(edit.document_changes) or bool(operations)
        return cls(
            document_changes=document_changes,
            resource_operations=operations,
            change_annotations=document_changes and edit.change_annotation_support is not None,
        )


@dataclass(frozen=True, slots=True)
class TextChange:
    """Replace ``old[start:end]`` (string offsets) with `text`."""

    start: int
    end: int
    text: str


def _lines(text: str) -> list[str]:
    """Lines with their line breaks (``\\r\\n``, ``\\r`` or ``\\n``); joined they give `text` back."""
    return _LINE.findall(text)


def _inside_crlf(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def _trim(old: str, new: str, start: int, end: int, new_start: int, new_end: int) -> TextChange | None:
    """Shrink the change ``old[start:end] -> new[new_start:new_end]`` by its common prefix and suffix."""
    limit = min(end - start, new_end - new_start)
    prefix = 0
    while prefix < limit and old[start + prefix] == new[new_start + prefix]:
        prefix += 1
    while prefix and _inside_crlf(old, start + prefix):
        prefix -= 1
    limit -= prefix
    suffix = 0
    while suffix < limit and old[end - 1 - suffix] == new[new_end - 1 - suffix]:
        suffix += 1
    while suffix and _inside_crlf(old, end - suffix):
        suffix -= 1
    a, b = start + prefix, end - suffix
    replacement = new[new_start + prefix : new_end - suffix]
    if a == b and not replacement:
        return None
    return TextChange(a, b, replacement)


def minimal_text_changes(old: str, new: str) -> list[TextChange]:
    """Non-overlapping changes, in order, that turn `old` into `new`, each as small as the diff allows."""
    if old == new:
        return []
    old_lines, new_lines = _lines(old), _lines(new)
    old_offsets = [0]
    for line in old_lines:
        old_offsets.append(old_offsets[-1] + len(line))
    new_offsets = [0]
    for line in new_lines:
        new_offsets.append(new_offsets[-1] + len(line))
    changes: list[TextChange] = []
    for tag, i1, i2, j1, j2 in line_opcodes(old_lines, new_lines):
        if tag == "equal":
            continue
        change = _trim(old, new, old_offsets[i1], old_offsets[i2], new_offsets[j1], new_offsets[j2])
        if change is not None:
            changes.append(change)
    return changes


def text_edits(old: str, new: str, encoding: Encoding, annotation: str | None = None) -> list[types.TextEdit]:
    """Minimal `TextEdit`s (all relative to `old`, as LSP requires) turning `old` into `new`; a byte order
    mark both start with is left out, as editors leave it out of their text."""
    if old.startswith(BOM) and new.startswith(BOM):
        old, new = old[1:], new[1:]
    index = LineIndex(old)
    edits: list[types.TextEdit] = []  # AnnotatedTextEdit is a TextEdit in LSP, not in lsprotocol's types
    for change in minimal_text_changes(old, new):
        start = index.position(change.start, encoding)
        end = index.position(change.end, encoding)
        range_ = types.Range(types.Position(*start), types.Position(*end))
        if annotation is None:
            edits.append(types.TextEdit(range=range_, new_text=change.text))
        else:
            annotated = types.AnnotatedTextEdit(annotation_id=annotation, range=range_, new_text=change.text)
            edits.append(annotated)  # type: ignore[arg-type]
    return edits


def changed_line_ranges(old: str, new: str) -> list[tuple[int, int]]:
    """Zero-based, end-exclusive line ranges of `new` that differ from `old` (for code lenses on hunks).

    A pure deletion is reported as an empty range at the line where the deleted lines were.
    """
    return [(j1, j2) for tag, _i1, _i2, j1, j2 in line_opcodes(_lines(old), _lines(new)) if tag != "equal"]


def _check_mark(change: FileChange) -> None:
    """`UnsupportedEdit` when `change` adds or removes a file's byte order mark, which no LSP edit can."""
    if change.kind not in ("modified", "renamed"):
        return
    had, has = change.base_text.startswith(BOM), change.new_text.startswith(BOM)
    if had != has:
        raise UnsupportedEdit(
            f"the proposal {'removes' if had else 'adds'} the byte order mark of {change.path}, which an "
            "editor's edit cannot do (editors keep the mark out of the text); apply the proposal with "
            f"`agentls run --apply`, or save the file with{'out' if had else ''} a BOM from the editor"
        )


def _uri(root: Path, rel: str) -> str:
    return (root / rel).as_uri()


def workspace_edit(
    changes: Sequence[FileChange],
    root: Path,
    open_docs: Mapping[str, OpenDocument] | None = None,
    encoding: Encoding = "utf-16",
    *,
    support: EditSupport | None = None,
    annotate: bool = True,
    label: str = ANNOTATION_ID,
    description: str | None = None,
) -> types.WorkspaceEdit:
    """One `WorkspaceEdit` applying every change of a proposal.

    `open_docs` maps workspace-relative paths to the open buffer each change's ``base_text`` came from:
    edits of an open document carry its URI and version (so the editor refuses them if the buffer moved
    on), edits of a closed file carry ``version: null``. `annotate` asks for change annotations needing
    confirmation; they are added only when `support` says the client has them.

    Raises `UnsupportedEdit` when the client cannot apply a change (a created, renamed or deleted file
    without ``documentChanges`` or that resource operation).
    """
    support = support or EditSupport()
    docs = open_docs or {}
    annotation = ANNOTATION_ID if annotate and support.change_annotations else None

    def uri_of(rel: str) -> str:
        doc = docs.get(rel)
        return doc.uri if doc is not None else _uri(root, rel)

    for change in changes:
        _check_mark(change)
    if not support.document_changes:
        return _plain_edit(changes, root, docs, encoding)
    for change in changes:
        operation = {"created": "create", "renamed": "rename", "deleted": "delete"}.get(change.kind)
        if operation is not None and operation not in support.resource_operations:
            raise UnsupportedEdit(
                f"the editor cannot {operation} files through LSP, so {change.path} cannot be "
                f"{change.kind}; apply the proposal with `agentls run --apply` or copy the diff"
            )

    document_changes: list[Any] = []
    for change in changes:
        if change.kind == "modified":
            doc = docs.get(change.path)
            edits = text_edits(change.base_text, change.new_text, encoding, annotation)
            if edits:
                identifier = types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri_of(change.path), version=doc.version if doc is not None else None
                )
                document_changes.append(types.TextDocumentEdit(text_document=identifier, edits=edits))
        elif change.kind == "created":
            uri = _uri(root, change.path)
            document_changes.append(
                types.CreateFile(
                    uri=uri,
                    options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False),
                    annotation_id=annotation,
                )
            )
            if change.new_text:
                document_changes.append(
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                        edits=text_edits("", change.new_text, encoding, annotation),
                    )
                )
        elif change.kind == "renamed":
            old_rel = change.old_path or change.path
            new_uri = _uri(root, change.path)
            document_changes.append(
                types.RenameFile(
                    old_uri=uri_of(old_rel),
                    new_uri=new_uri,
                    options=types.RenameFileOptions(overwrite=False, ignore_if_exists=False),
                    annotation_id=annotation,
                )
            )
            edits = text_edits(change.base_text, change.new_text, encoding, annotation)
            if edits:
                # After the rename the buffer (if it was open) lives under the new URI; its version is
                # the client's business now, so the edits apply to whatever the rename produced.
                document_changes.append(
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=new_uri, version=None
                        ),
                        edits=edits,
                    )
                )
        elif change.kind == "deleted":
            document_changes.append(
                types.DeleteFile(
                    uri=uri_of(change.path),
                    options=types.DeleteFileOptions(recursive=False, ignore_if_not_exists=True),
                    annotation_id=annotation,
                )
            )
    annotations = None
    if annotation is not None:
        annotations = {
            annotation: types.ChangeAnnotation(
                label=label,
                needs_confirmation=True,
                description=description or "Changes proposed by agentls",
            )
        }
    return types.WorkspaceEdit(document_changes=document_changes, change_annotations=annotations)


def _plain_edit(
    changes: Sequence[FileChange], root: Path, docs: Mapping[str, OpenDocument], encoding: Encoding
) -> types.WorkspaceEdit:
    """The ``changes`` map for clients without ``documentChanges``: modifications only, unversioned."""
    out: dict[str, Sequence[types.TextEdit]] = {}
    for change in changes:
        if change.kind != "modified":
            raise UnsupportedEdit(
                f"the editor cannot create, rename or delete files through LSP (no `documentChanges` "
                f"support), so {change.path} cannot be {change.kind}; apply the proposal with "
                f"`agentls run --apply` or copy the diff"
            )
        doc = docs.get(change.path)
        uri = doc.uri if doc is not None else _uri(root, change.path)
        edits = text_edits(change.base_text, change.new_text, encoding)
        if edits:
            out[uri] = edits
    return types.WorkspaceEdit(changes=out)

"""WorkspaceEdits from file changes: minimal edits that, applied back, give exactly the new text."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

from agent.overlay import FileChange
from server.edits import (
    EditSupport,
    OpenDocument,
    UnsupportedEdit,
    changed_line_ranges,
    minimal_text_changes,
    text_edits,
    workspace_edit,
)

ENCODINGS = ("utf-8", "utf-16", "utf-32")
_CODEC = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}


# -- an applier written independently of server.positions -------------------------------------------


def _line_starts(text: str) -> list[tuple[int, int]]:
    """(start, end-of-content) of each line, line breaks being \\r\\n, \\r and \\n."""
    spans = []
    start = 0
    for match in re.finditer(r"\r\n|\r|\n", text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _offset(text: str, position: types.Position, encoding: str) -> int:
    spans = _line_starts(text)
    assert position.line < len(spans), f"edit position {position} past the end of the text"
    start, end = spans[position.line]
    codec, width = _CODEC[encoding]
    units = 0
    for i in range(start, end + 1):
        if units == position.character:
            return i
        assert i < end, f"character {position.character} past the end of line {position.line}"
        units += len(text[i].encode(codec)) // width
        assert units <= position.character or units > position.character
    raise AssertionError(f"{position} is inside a code point")


def apply_edits(text: str, edits: list[types.TextEdit], encoding: str) -> str:
    spans = sorted(
        (
            (_offset(text, e.range.start, encoding), _offset(text, e.range.end, encoding), e.new_text)
            for e in edits
        ),
        key=lambda s: (s[0], s[1]),
    )
    for (_a0, a1, _), (b0, _b1, _) in itertools.pairwise(spans):
        assert a1 <= b0, "edits overlap"
    for start, end, new in reversed(spans):
        assert start <= end
        text = text[:start] + new + text[end:]
    return text


# -- random texts -------------------------------------------------------------------------------------

_ATOMS = ["a", "b", "x", " ", "é", "中", "文", "😀", "👍🏽", "\r\n", "\n", "\r", "def f():", "    return 1"]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_ATOMS) for _ in range(rng.randint(0, 60)))


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 5)):
        a = rng.randint(0, len(text))
        b = min(len(text), a + rng.randint(0, 8))
        action = rng.random()
        if action < 0.3:
            text = text[:a] + text[b:]
        elif action < 0.6:
            text = text[:a] + _random_text(rng)[:10] + text[a:]
        else:
            text = text[:a] + rng.choice(_ATOMS) + text[b:]
    return text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_random_edits_apply_back_to_the_new_text(encoding: str) -> None:
    rng = random.Random(20261124)
    for _ in range(600):
        old = _random_text(rng)
        new = _mutate(rng, old) if rng.random() < 0.85 else _random_text(rng)
        edits = text_edits(old, new, encoding)  # type: ignore[arg-type]
        assert apply_edits(old, edits, encoding) == new, (old, new, edits)
        if old == new:
            assert edits == []


def test_one_changed_character_is_one_tiny_edit() -> None:
    old = "x = '😀 中文 value'\r\ny = 2\r\n"
    new = "x = '😀 中文 valUe'\r\ny = 2\r\n"
    (edit,) = text_edits(old, new, "utf-16")
    # 'x = ' 4, quote 1, emoji 2 units, space, 2 CJK, space, 'val' -> U is at utf-16 unit 14
    assert edit.range == types.Range(types.Position(0, 14), types.Position(0, 15))
    assert edit.new_text == "U"
    (edit8,) = text_edits(old, new, "utf-8")
    assert edit8.range.start == types.Position(0, 4 + 1 + 4 + 1 + 6 + 1 + 3)


def test_edits_never_split_a_crlf_pair() -> None:
    for old, new in [
        ("a\r\nb", "a\nb"),
        ("a\nb", "a\r\nb"),
        ("a\r\n", "a\r"),
        ("x\r", "x\r\n"),
        ("a\r\nb\r\n", "a\rb\r\n"),
    ]:
        for change in minimal_text_changes(old, new):
            for offset in (change.start, change.end):
                assert not (0 < offset < len(old) and old[offset - 1] == "\r" and old[offset] == "\n")
        for encoding in ENCODINGS:
            assert apply_edits(old, text_edits(old, new, encoding), encoding) == new  # type: ignore[arg-type]


def test_unchanged_lines_are_not_touched() -> None:
    old = "".join(f"line {i}\n" for i in range(200))
    new = old.replace("line 100\n", "line 100 changed\n").replace("line 7\n", "")
    edits = text_edits(old, new, "utf-16")
    assert len(edits) == 2
    assert {(e.range.start.line, e.range.end.line) for e in edits} == {(7, 8), (100, 100)}
    assert changed_line_ranges(old, new) == [(7, 7), (99, 100)]


def test_a_byte_order_mark_is_not_in_the_editors_text(tmp_path: Path) -> None:
    """Editors hold a file without its byte order mark (it is the file's encoding to them), so an edit of its
    first line counts columns without it; adding or removing the mark is refused, naming the file, rather
    than sent as an edit that would delete or add a character of the text."""
    old, new = "\ufeffx = 1\r\ny = 2\r\n", "\ufeffx = 10\r\ny = 2\r\n"
    for encoding in ENCODINGS:
        edits = text_edits(old, new, encoding)  # type: ignore[arg-type]
        assert apply_edits(old[1:], edits, encoding) == new[1:], edits
    changes = [
        _change("pkg/a.py", "modified", old, new[1:]),
        _change("pkg/b.py", "renamed", "x = 1\n", "\ufeffx = 1\n", old_path="pkg/old.py"),
    ]
    removes = r"removes the byte order mark of pkg/a\.py.*agentls run --apply"
    with pytest.raises(UnsupportedEdit, match=removes):
        workspace_edit(changes[:1], tmp_path)
    with pytest.raises(UnsupportedEdit, match=r"adds the byte order mark of pkg/b\.py"):
        workspace_edit(changes[1:], tmp_path, support=EditSupport(document_changes=False))
    created = workspace_edit([_change("pkg/c.py", "created", "", "\ufeffx = 1\n")], tmp_path)
    filled = (created.document_changes or [])[1]
    assert isinstance(filled, types.TextDocumentEdit) and filled.edits[0].new_text == "\ufeffx = 1\n"


def _change(path: str, kind: str, base: str, new: str, old_path: str | None = None) -> FileChange:
    return FileChange(path, kind, old_path, base, new, None, "")  # type: ignore[arg-type]


def test_workspace_edit_with_every_kind_of_change(tmp_path: Path) -> None:
    changes = [
        _change("pkg/a.py", "modified", "x = 1\ny = 2\n", "x = 1\ny = 3\n"),
        _change("pkg/new.py", "created", "", "def f():\n    return '中'\n"),
        _change("pkg/moved.py", "renamed", "old = True\n", "old = False\n", old_path="pkg/orig.py"),
        _change("pkg/same_name.py", "renamed", "k = 1\n", "k = 1\n", old_path="pkg/plain.py"),
        _change("pkg/gone.py", "deleted", "bye\n", ""),
    ]
    docs = {"pkg/a.py": OpenDocument("file:///editor/uri/a.py", 7)}
    support = EditSupport(document_changes=True, change_annotations=True)
    edit = workspace_edit(changes, tmp_path, docs, "utf-16", support=support, annotate=True)
    ops = list(edit.document_changes or [])
    kinds = [type(op).__name__ for op in ops]
    assert kinds == [
        "TextDocumentEdit",
        "CreateFile",
        "TextDocumentEdit",
        "RenameFile",
        "TextDocumentEdit",
        "RenameFile",
        "DeleteFile",
    ]
    first = ops[0]
    assert first.text_document.uri == "file:///editor/uri/a.py" and first.text_document.version == 7
    assert all(isinstance(e, types.AnnotatedTextEdit) and e.annotation_id == "agentls" for e in first.edits)
    assert apply_edits("x = 1\ny = 2\n", list(first.edits), "utf-16") == "x = 1\ny = 3\n"
    create, fill = ops[1], ops[2]
    assert create.uri == (tmp_path / "pkg/new.py").as_uri() and create.annotation_id == "agentls"
    assert create.options.overwrite is False
    assert fill.text_document.version is None
    assert apply_edits("", list(fill.edits), "utf-16") == "def f():\n    return '中'\n"
    rename, renamed_edit = ops[3], ops[4]
    assert rename.old_uri == (tmp_path / "pkg/orig.py").as_uri()
    assert rename.new_uri == (tmp_path / "pkg/moved.py").as_uri()
    assert renamed_edit.text_document.uri == rename.new_uri
    assert apply_edits("old = True\n", list(renamed_edit.edits), "utf-16") == "old = False\n"
    assert ops[6].uri == (tmp_path / "pkg/gone.py").as_uri()
    assert edit.change_annotations is not None
    annotation = edit.change_annotations["agentls"]
    assert annotation.needs_confirmation is True and annotation.label == "agentls"


def test_annotations_only_when_the_client_supports_them(tmp_path: Path) -> None:
    changes = [_change("a.py", "modified", "a\n", "b\n"), _change("b.py", "created", "", "x\n")]
    plain = workspace_edit(changes, tmp_path, support=EditSupport(change_annotations=False), annotate=True)
    assert plain.change_annotations is None
    ops = list(plain.document_changes or [])
    assert all(type(e) is types.TextEdit for e in ops[0].edits)
    assert ops[1].annotation_id is None
    off = workspace_edit(changes, tmp_path, support=EditSupport(change_annotations=True), annotate=False)
    assert off.change_annotations is None


def test_clients_without_document_changes_get_plain_changes_or_a_clear_refusal(tmp_path: Path) -> None:
    support = EditSupport(document_changes=False, resource_operations=frozenset(), change_annotations=False)
    modified = [_change("a.py", "modified", "a\nb\n", "a\nc\n")]
    edit = workspace_edit(modified, tmp_path, support=support)
    assert edit.document_changes is None
    assert list(edit.changes or {}) == [(tmp_path / "a.py").as_uri()]
    with pytest.raises(UnsupportedEdit, match="cannot create"):
        workspace_edit([*modified, _change("n.py", "created", "", "x")], tmp_path, support=support)
    no_delete = EditSupport(resource_operations=frozenset({"create"}))
    with pytest.raises(UnsupportedEdit, match="cannot delete files"):
        workspace_edit([_change("g.py", "deleted", "x", "")], tmp_path, support=no_delete)


def test_edit_support_from_real_client_capabilities() -> None:
    vscode = EditSupport.from_client(client_capabilities("visual-studio-code"))
    assert vscode.document_changes and vscode.change_annotations
    assert vscode.resource_operations == {"create", "rename", "delete"}
    neovim = EditSupport.from_client(client_capabilities("neovim"))
    assert neovim.document_changes  # resource operations imply documentChanges
    assert not neovim.change_annotations
    bare = EditSupport.from_client(types.ClientCapabilities())
    assert not bare.document_changes and not bare.change_annotations

"""`server.documents.apply_changes`: a ``didChange``'s changes, ranged or whole, applied in order."""

from __future__ import annotations

import pytest
from lsprotocol import types

from server.documents import Document, apply_changes


def doc(text: str) -> Document:
    return Document("file:///ws/m.py", text, 1, "python", None, False)


def change(start: tuple[int, int], end: tuple[int, int], new: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(types.Position(*start), types.Position(*end)), text=new
    )


@pytest.mark.parametrize(("encoding", "after_emoji"), [("utf-8", 5), ("utf-16", 3), ("utf-32", 2)])
def test_ranged_changes_apply_in_order_in_the_negotiated_encoding(encoding: str, after_emoji: int) -> None:
    text = "a\U0001f600bc\r\nsecond\rthird\n"
    changes = [
        change((0, after_emoji), (0, after_emoji + 1), "B"),  # "b" after the emoji
        change((1, 0), (2, 0), ""),  # the whole line "second" and its lone \r
        change((1, 5), (1, 5), "!"),  # in the text the changes before left: "third" is line 1 now
    ]
    assert apply_changes(doc(text), changes, encoding) == "a\U0001f600Bc\r\nthird!\n"  # type: ignore[arg-type]


def test_a_whole_text_change_resets_and_ranges_clamp() -> None:
    changes: list[types.TextDocumentContentChangeEvent] = [
        types.TextDocumentContentChangeWholeDocument(text="x = 1\n"),
        change((0, 99), (0, 120), " # one"),  # past the end of the line: its end, not into the break
        change((9, 0), (12, 3), "y = 2\n"),  # past the last line: the end of the text
        change((0, 4), (0, 2), "2"),  # an end before its start: inserted at the start
    ]
    assert apply_changes(doc("old\n"), changes, "utf-16") == "x = 21 # one\ny = 2\n"

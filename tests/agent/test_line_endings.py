"""`agent.line_endings`: the model's "\\n" text and back to a file's own endings and byte order mark."""

from __future__ import annotations

import pytest

from agent.line_endings import for_model, from_model, newline_of


@pytest.mark.parametrize(
    ("text", "newline"),
    [
        ("a\r\nb\r\n", "\r\n"),
        ("a\nb\n", "\n"),
        ("a\rb\r", "\r"),
        ("one line", "\n"),
        ("", "\n"),
        ("a\r\nb\nc\r\n", "\r\n"),  # the most common
        ("a\nb\r\nc\r\nd\n", "\n"),  # a tie: the first one found
        ("a\r\r\nb\r", "\r"),  # "\r" then "\r\n" then "\r": two lone "\r", one "\r\n"
    ],
)
def test_newline_of(text: str, newline: str) -> None:
    assert newline_of(text) == newline


def test_for_model_drops_the_bom_and_every_kind_of_break() -> None:
    assert for_model("\ufeffa\r\nb\rc\nd") == "a\nb\nc\nd"
    assert for_model("a\r\r\nb") == "a\n\nb"
    assert for_model("plain\n") == "plain\n"


@pytest.mark.parametrize(
    ("original", "edited", "expected"),
    [
        ("a\r\nb\r\n", "a\nx\ny\nb\n", "a\r\nx\r\ny\r\nb\r\n"),
        ("a\r\nb", "a\nb\nc", "a\r\nb\r\nc"),  # no final break stays none
        ("\ufeffa\r\n", "z\na\n", "\ufeffz\r\na\r\n"),
        ("\ufeffa\n", "a\nb\n", "\ufeffa\nb\n"),
        ("a\n", "a\r\nb\r\n", "a\nb\n"),  # breaks the model wrote as "\r\n" take the file's
        ("single", "single\nmore\n", "single\nmore\n"),
        ("a\rb\r", "a\nb\nc\n", "a\rb\rc\r"),
        # mixed: untouched lines keep their endings, added and changed ones get the dominant one
        ("1\r\n2\n3\r\n4\r\n5\n", "1\n2\nnew\n3\n4\n5 changed\n", "1\r\n2\nnew\r\n3\r\n4\r\n5 changed\r\n"),
    ],
)
def test_from_model(original: str, edited: str, expected: str) -> None:
    assert from_model(original, edited) == expected
    assert from_model(original, for_model(original)) == original  # no edit, no change

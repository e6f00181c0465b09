"""Position encodings: negotiation, and conversions on lines with emoji, CJK and every kind of line break."""

from __future__ import annotations

import random

import pytest

from server.positions import (
    LineIndex,
    column_to_units,
    negotiate_encoding,
    split_lines,
    units_to_column,
)

ENCODINGS = ("utf-8", "utf-16", "utf-32")


def test_negotiation_prefers_utf32_then_utf8_when_offered_else_utf16() -> None:
    assert negotiate_encoding(["utf-16", "utf-8"]) == "utf-8"
    assert negotiate_encoding(["utf-8", "utf-16", "utf-32"]) == "utf-32"  # Neovim 0.10+
    assert negotiate_encoding(["utf-32", "utf-8", "utf-16"]) == "utf-32"
    assert negotiate_encoding(["utf-8", "utf-32"]) == "utf-32"
    assert negotiate_encoding(["utf-32", "utf-16"]) == "utf-32"
    assert negotiate_encoding(["utf-16", "utf-32"]) == "utf-32"
    assert negotiate_encoding(["utf-32"]) == "utf-32"
    assert negotiate_encoding(["utf-8"]) == "utf-8"
    assert negotiate_encoding(["latin-1", "utf-16"]) == "utf-16"
    assert negotiate_encoding(["latin-1"]) == "utf-16"
    assert negotiate_encoding([]) == "utf-16"
    assert negotiate_encoding(None) == "utf-16"


def test_units_per_encoding_on_emoji_and_cjk() -> None:
    line = "a😀中b"  # 1 + (4 bytes / 2 units / 1) + (3 bytes / 1 / 1) + 1
    assert [column_to_units(line, c, "utf-16") for c in range(5)] == [0, 1, 3, 4, 5]
    assert [column_to_units(line, c, "utf-8") for c in range(5)] == [0, 1, 5, 8, 9]
    assert [column_to_units(line, c, "utf-32") for c in range(5)] == [0, 1, 2, 3, 4]
    assert [units_to_column(line, u, "utf-16") for u in range(6)] == [0, 1, 1, 2, 3, 4]
    assert [units_to_column(line, u, "utf-8") for u in range(10)] == [0, 1, 1, 1, 1, 2, 2, 2, 3, 4]


def test_half_a_surrogate_pair_rounds_down_and_past_the_end_clamps() -> None:
    line = "😀😀"
    assert units_to_column(line, 1, "utf-16") == 0  # inside the first emoji
    assert units_to_column(line, 3, "utf-16") == 1
    assert units_to_column(line, 99, "utf-16") == 2
    assert units_to_column(line, -3, "utf-8") == 0
    assert column_to_units(line, 99, "utf-8") == 8


def test_line_breaks_are_crlf_cr_and_lf_only() -> None:
    text = "a\r\nb\rc\nd\x0ce\u2028f"
    assert split_lines(text) == ["a", "b", "c", "d\x0ce\u2028f"]
    index = LineIndex(text)
    assert index.line_count == 4
    assert index.line(3) == "d\x0ce\u2028f"
    assert index.offset(1, 0, "utf-16") == 3
    assert index.offset(2, 0, "utf-16") == 5
    assert LineIndex("x\n").line_count == 2
    assert LineIndex("").line_count == 1


def test_out_of_range_positions_clamp() -> None:
    text = "ab\r\n中文\n"
    index = LineIndex(text)
    assert index.offset(0, 50, "utf-16") == 2  # end of line 0, never inside its \r\n
    assert index.offset(1, 50, "utf-8") == 6
    assert index.offset(9, 0, "utf-16") == len(text)
    assert index.offset(-1, 4, "utf-16") == 0
    assert index.position(999, "utf-16") == (2, 0)
    assert index.position(-5, "utf-16") == (0, 0)
    assert index.position(3, "utf-16") == (0, 2)  # between \r and \n: end of line 0
    assert index.column(7, 7, "utf-32") == (2, 0)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_offsets_and_positions_round_trip_on_random_texts(encoding: str) -> None:
    rng = random.Random(4)
    atoms = ["a", "Z", " ", "é", "中", "😀", "👍🏽", "\r\n", "\n", "\r", "\t", "ß"]
    for _ in range(300):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 40)))
        index = LineIndex(text)
        lines = split_lines(text)
        offset = 0
        for number, line in enumerate(lines):
            for column in range(len(line) + 1):
                units = len(
                    line[:column].encode(
                        {"utf-8": "utf-8", "utf-16": "utf-16-le", "utf-32": "utf-32-le"}[encoding]
                    )
                )
                units //= {"utf-8": 1, "utf-16": 2, "utf-32": 4}[encoding]
                assert index.position(offset + column, encoding) == (number, units)  # type: ignore[arg-type]
                assert index.offset(number, units, encoding) == offset + column  # type: ignore[arg-type]
            offset += len(line)
            if offset < len(text):
                offset += 2 if text.startswith("\r\n", offset) else 1

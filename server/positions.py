"""LSP positions and string offsets, in the position encoding the client and server agreed on.

An LSP `Position` is a zero-based line and a zero-based *character* offset in that line, counted in the
units of the negotiated `positionEncoding`: UTF-8 bytes, UTF-16 code units (the default, what VS Code
uses) or UTF-32 code units (code points). Python strings index by code point, so an emoji is one `str`
index but two UTF-16 units and four UTF-8 bytes; converting wrongly moves every edit after it on the line.

Lines end at ``\\r\\n``, ``\\n`` or ``\\r`` (and at nothing else: ``str.splitlines`` also splits on form
feeds and Unicode separators, which LSP does not). A position past the end of a line means the end of
that line, and one past the last line means the end of the document: the specification says such
positions fall back rather than fail, so nothing here raises on them. A character offset that lands in
the middle of a code point (half a surrogate pair, inside a UTF-8 sequence) rounds down to its start.

Everything here is pure; `LineIndex` is built once per text and answers in O(log lines + line length).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from typing import Final, Literal

__all__ = [
    "UTF8",
    "UTF16",
    "UTF32",
    "Encoding",
    "LineIndex",
    "column_to_units",
    "negotiate_encoding",
    "split_lines",
    "units_to_column",
]

Encoding = Literal["utf-8", "utf-16", "utf-32"]
UTF8: Final = "utf-8"
UTF16: Final = "utf-16"
UTF32: Final = "utf-32"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def negotiate_encoding(offered: Iterable[str] | None) -> Encoding:
    """The encoding to announce, one the client offered (LSP 3.17: the server picks among them): UTF-32
    when offered (code points: Python's own string indexing, so the server converts nothing), else UTF-8
    when offered, else UTF-16.

    UTF-32 before UTF-8: a position in UTF-8 or UTF-16 costs the server a walk of its line in Python
    (8.9 us for a 112-character line holding an emoji and accents, against 0.3 us in UTF-32), where a
    client converts in native code (Neovim 0.12, which keeps its buffers in UTF-8: 0.2 us for that line,
    `vim.str_utfindex`); Neovim 0.10+, Helix and Emacs' eglot offer it. UTF-16 is the one encoding
    every client must support, so it is the answer when the client offers nothing or only encodings we
    do not know.
    """
    chosen = set(offered) if offered is not None else set()
    return UTF32 if UTF32 in chosen else UTF8 if UTF8 in chosen else UTF16


def split_lines(text: str) -> list[str]:
    """Lines of `text` without their line breaks, split as LSP does (``\\r\\n``, ``\\n``, ``\\r``).

    Always at least one line; a text ending in a line break has an empty last line.
    """
    return _LINE_BREAK.split(text)


def _units(char: str, encoding: Encoding) -> int:
    code = ord(char)
    if encoding == UTF16:
        return 2 if code > 0xFFFF else 1
    if encoding == UTF8:
        return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return 1


def column_to_units(line: str, column: int, encoding: Encoding) -> int:
    """Code-point `column` of `line` as a character offset in `encoding` (clamped to the line)."""
    column = max(0, min(column, len(line)))
    if encoding == UTF32 or line.isascii():
        return column
    head = line[:column]
    if encoding == UTF16:
        return len(head.encode("utf-16-le")) // 2
    return len(head.encode("utf-8", "surrogatepass"))


def units_to_column(line: str, units: int, encoding: Encoding) -> int:
    """A character offset in `encoding` as a code-point column of `line`.

    Past the end of the line gives the line's length; inside a code point rounds down to its start.
    """
    if units <= 0:
        return 0
    if encoding == UTF32 or line.isascii():
        return min(units, len(line))
    seen = 0
    for column, char in enumerate(line):
        seen += _units(char, encoding)
        if seen > units:
            return column
    return len(line)


class LineIndex:
    """Where each line of one text starts, for converting between offsets and LSP positions."""

    __slots__ = ("_ends", "_starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        ends: list[int] = []
        for match in _LINE_BREAK.finditer(text):
            ends.append(match.start())
            starts.append(match.end())
        ends.append(len(text))
        self._starts: Sequence[int] = starts
        self._ends: Sequence[int] = ends

    @property
    def line_count(self) -> int:
        """Number of lines (a text ending in a line break has an empty last line)."""
        return len(self._starts)

    def line(self, line: int) -> str:
        """The text of zero-based `line` without its line break ("" past the end)."""
        if line < 0 or line >= len(self._starts):
            return ""
        return self.text[self._starts[line] : self._ends[line]]

    def line_start(self, line: int) -> int:
        """String offset where zero-based `line` starts (clamped to the document)."""
        line = max(0, min(line, len(self._starts) - 1))
        return self._starts[line]

    def offset(self, line: int, character: int, encoding: Encoding) -> int:
        """String (code-point) offset of an LSP position; out-of-range positions clamp.

        A line past the last one is the end of the text; a character past the end of its line is the end
        of that line (never inside its line break).
        """
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self.text)
        start, end = self._starts[line], self._ends[line]
        return start + units_to_column(self.text[start:end], character, encoding)

    def position(self, offset: int, encoding: Encoding) -> tuple[int, int]:
        """(line, character in `encoding`) of a string offset, clamped to the text.

        An offset inside a ``\\r\\n`` pair (between the two) is reported as the end of its line.
        """
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset) - 1
        start, end = self._starts[line], self._ends[line]
        column = min(offset, end) - start
        return line, column_to_units(self.text[start:end], column, encoding)

    def column(self, line: int, character: int, encoding: Encoding) -> tuple[int, int]:
        """(line, code-point column) of an LSP position, clamped like `offset`."""
        offset = self.offset(line, character, encoding)
        line = bisect.bisect_right(self._starts, offset) - 1
        return line, offset - self._starts[line]

    def end_position(self, encoding: Encoding) -> tuple[int, int]:
        """The position just past the last character of the text."""
        return self.position(len(self.text), encoding)

"""Secret values written encoded in text: base64, hex, percent-encoding, reversed, compressed.

`indexing.secrets.Redactor` replaces the values it knows where they appear as they are. A command can print
them transformed (``base64 settings.py``, ``xxd -p``, ``python -c "print(s[::-1])"``, ``gzip -c f |
base64``); `find_encoded` finds them there, two ways:

- Known values, encoded (`KnownForms`): for each value of `MIN_VALUE` characters or more, its hex (either
  case), its base64 (standard or URL-safe) at each of the three alignments a value can take inside a longer
  encoded text (what does not depend on the bytes around it: the encoding of ``value[k:k + 3m]``, k = 0, 1,
  2; one base64 group more on each side is withheld), its percent-encodings and its reversed text. Base64
  is looked for in the text with its line breaks removed (``base64`` wraps at 76 columns), hex in the
  text's hex digits alone (``xxd -p`` wraps at 60; ``41 4b``, ``\\x41\\x4b``, ``%41%4B``, ``od -An
  -tx1``). Up to `_DIRECT` forms of a kind are each searched for; more are indexed by pieces (`_Needles`),
  so the cost barely grows with the number of values.
- Percent-encoded text (three escapes or more: a URL's query, a form body) is decoded and `detect` runs
  on it; what it finds withholds the whole run (``?body=%7B%22password%22%3A...``).
- Values decoded: each run of `_MIN_B64` base64 characters or more (with the wholly base64 lines after
  it), including runs of hex digits, is decoded (at each alignment when it is `_LONG_RUN` characters or
  more); gzip, zlib, bzip2 and xz data is decompressed (at most `_MAX_DECOMPRESSED` bytes). When the result
  is text, `find_encoded`'s `detect` (the detectors of `indexing.secrets`) runs on it, and on decompressed
  text the known values are looked for too. What is found is withheld in the encoded text: the groups that
  encode it, or the whole run for compressed data.
- Sifted (``find_encoded(..., sift=True)``: the index's `indexing.secrets.redact_source`, on source files,
  whose runs are mostly identifiers and paths): only a run that may hold text or compressed data is decoded
  (`_sifted_runs`): one whose first four base64 groups (at one of the alignments tried) or first eight hex
  bytes encode ASCII text, tabs or line breaks, or that starts like gzip, zlib, bzip2 or xz data; or,
  20 characters or more, one that does so further on (`_text_later`: text that starts beyond ASCII, with
  a byte order mark or with a byte or two of binary) and has an upper-case letter or is hex digits alone.
  The rest is the same code. Text with no stretch of 14 ASCII characters, or whose base64 has no upper-case
  letter and does not start as text, is decoded for a run's redaction, not for the index.

Not found: encryption, compression without a text encoding around it, other or layered encodings (ROT13,
XOR, base32, base64 of base64, ``0x41, 0x4b`` arrays, ``od -c``, the dumps of ``xxd`` and ``hexdump -C``,
whose offset and character columns cut a value at each line), values split or built otherwise, values
shorter than `MIN_VALUE` in any encoded form, an unknown value reversed (or percent-encoded where the
detectors do not find it once decoded: no key format, no name or quotes around it), and a value in
hex with separators other than line breaks that the detectors would only find by decoding it.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import bz2
import functools
import lzma
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote, quote_plus, unquote_plus

__all__ = ["MIN_VALUE", "KnownForms", "Span", "encoded_forms", "find_encoded"]

MIN_VALUE = 8
"""Values shorter than this are looked for as they are only: their encodings are too short to be told from
ordinary text."""

Span = tuple[int, int, str]
"""``(start, end, value)``: `value` is encoded in ``text[start:end]``."""

Detect = Callable[[str], list[Span]]

_DIRECT = 64
"""Up to this many forms of a kind are each searched for in a text (a few milliseconds per 5 MB each)."""
_WIDTH = 8
_MAX_WIDTH = 32

_MIN_B64 = 16
_MIN_DECODED = 8
_LONG_RUN = 64
_MAX_DECOMPRESSED = 16 << 20

# A run of base64 characters (either alphabet; hex is one too), and the lines after it that are wholly base64
# (wrapped output: base64, xxd -p).
_PERCENT_RUN = re.compile(
    r"(?<![A-Za-z0-9._~+!*'()=&:/-])[A-Za-z0-9._~+!*'()=&:/-]*(?:%[0-9A-Fa-f]{2}[A-Za-z0-9._~+!*'()=&:/-]*){3,}"
)
"""Percent-encoded text: three escapes or more (a URL's query, a form body). It starts where a run of its
characters starts: tried inside a run, it would read the rest of the run again at each character (5 MB of
pytest's output, whose ``[ 42%]`` brings it in, took 4 s instead of 0.3)."""
_ANY_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}(?:\r?\n[A-Za-z0-9+/_-]+={0,2}(?=\r?\n|\Z))*")
_B64_LINE = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_NOT_HEX = bytes(c for c in range(256) if c not in _HEX_DIGITS)
_TO_LOWER = bytes.maketrans(b"ABCDEF", b"abcdef")
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_HEX_CHARS = _HEX_DIGITS.decode("ascii")
_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_CONTROLS = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x7f"
_CONTROL_BYTES = _CONTROLS.encode("ascii")


# ---------------------------------------------------------------------------------------------------
# Known values: their encoded forms, indexed


@functools.lru_cache(maxsize=8192)
def encoded_forms(value: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The forms of `value` looked for: (base64 parts, standard alphabet), (hex, lower case), (plain text:
    percent-encodings and the reversed value). Empty for a value shorter than `MIN_VALUE`."""
    if len(value) < MIN_VALUE:
        return (), (), ()
    data = value.encode("utf-8", "surrogatepass")
    b64 = []
    for k in range(3):
        whole = (len(data) - k) // 3 * 3
        if whole > 0:
            b64.append(base64.b64encode(data[k : k + whole]).decode("ascii"))
    percent = {quote(value, safe=""), quote(value), quote_plus(value), quote(value, safe="!'()*~")}
    percent |= {_PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), p) for p in percent}
    plain = sorted(p for p in percent | {value[::-1]} if p != value)
    return tuple(b64), (data.hex(),), tuple(plain)


class _Needles:
    """Strings to find in a text, each standing for a value.

    Up to `_DIRECT` of them are each searched for in the text. More are indexed by their pieces of `width`
    characters (`_WIDTH` to `_MAX_WIDTH`): a needle of ``2 * width - 1`` characters or more holds a whole
    piece at a multiple of `width` wherever it is in the text, so the text is read once, a piece every
    `width` characters, and only the needles whose piece is there are searched for (shorter needles are
    searched for each)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.needles = dict(pairs)
        self.short: dict[str, str] = {}
        self.pieces: dict[str, list[tuple[str, str]]] = {}
        self.width = _WIDTH
        if len(self.needles) <= _DIRECT:
            return
        # The widest pieces that leave at most half of `_DIRECT` needles too short to be indexed.
        lengths = sorted(len(needle) for needle in self.needles)
        self.width = max(_WIDTH, min(_MAX_WIDTH, (lengths[_DIRECT // 2] + 1) // 2))
        for needle, value in self.needles.items():
            if len(needle) < 2 * self.width - 1:
                self.short[needle] = value
                continue
            for at in range(len(needle) - self.width + 1):
                self.pieces.setdefault(needle[at : at + self.width], []).append((needle, value))

    def find(self, hay: str) -> list[Span]:
        candidates = self.needles
        if self.pieces:
            candidates = dict(self.short)
            pieces, width = self.pieces, self.width
            for at in range(0, len(hay), width):
                found = pieces.get(hay[at : at + width])
                if found is not None:
                    candidates.update(found)
        spans: list[Span] = []
        for needle, value in candidates.items():
            at = hay.find(needle)
            while at >= 0:
                spans.append((at, at + len(needle), value))
                at = hay.find(needle, at + len(needle))
        return spans


class KnownForms:
    """The encoded forms of a set of values (see the module docstring), ready to be searched for."""

    def __init__(self, values: Iterable[str]) -> None:
        values = sorted(set(values))
        forms = [(value, encoded_forms(value)) for value in values]
        self.b64 = _Needles((n, v) for v, (b64, _, _) in forms for n in b64)
        self.hex = _Needles((n, v) for v, (_, hexa, _) in forms for n in hexa)
        self.plain = _Needles((n, v) for v, (_, _, plain) in forms for n in plain)
        self.bare = _Needles((v, v) for v in values if len(v) >= MIN_VALUE)
        self.count = len(values)

    def __bool__(self) -> bool:
        return self.count > 0


# ---------------------------------------------------------------------------------------------------
# A text with separators removed


class _Soup:
    """`text` with the characters that `kept` does not match removed (and some translated), and the way
    back from an offset in it to one in `text`."""

    def __init__(self, text: str, data: bytes, kept: re.Pattern[str]) -> None:
        self.text = text
        self.chars = data.decode("ascii")
        self.kept = kept
        self._starts: list[int] = []
        self._offsets: list[int] = []

    @classmethod
    def base64(cls, text: str, ascii: bytes) -> _Soup:
        """Line breaks removed, the URL-safe alphabet made standard."""
        return cls(text, ascii.translate(_URLSAFE_TO_STANDARD, b"\r\n"), _NOT_LINE_BREAKS)

    @classmethod
    def hex(cls, text: str, ascii: bytes) -> _Soup:
        """Hex digits only, in lower case."""
        return cls(text, ascii.translate(_TO_LOWER, _NOT_HEX), _HEX_RUN)

    def position(self, at: int) -> int:
        """The offset in the text of ``chars[at]``."""
        if not self._starts:  # on the first hit only: most texts have none
            total = 0
            for match in self.kept.finditer(self.text):
                self._starts.append(total)
                self._offsets.append(match.start())
                total += match.end() - match.start()
        i = bisect.bisect_right(self._starts, at) - 1
        return self._offsets[i] + at - self._starts[i]

    def spans(self, found: Iterable[Span], widen: int = 0) -> list[Span]:
        """`found` (in `chars`) as spans of the text, each widened by up to `widen` base64 characters on
        both sides."""
        spans: list[Span] = []
        chars = self.chars
        for start, end, value in found:
            for _ in range(widen):
                if start > 0 and chars[start - 1] in _BASE64_ALPHABET:
                    start -= 1
                if end < len(chars) and chars[end] in _BASE64_ALPHABET:
                    end += 1
            spans.append((self.position(start), self.position(end - 1) + 1, value))
        return spans


_NOT_LINE_BREAKS = re.compile(r"[^\r\n]+")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]+")


# ---------------------------------------------------------------------------------------------------
# Decoding


def _invalid(data: bytes) -> int:
    """How many bytes of `data` are not UTF-8 (a sequence cut at its end counts). (Decoded runs are mostly
    not text: the error a strict decoding raised, caught, cost more than decoding it leniently.)"""
    if data.isascii():
        return 0
    return len(data) - len(data.decode("utf-8", "ignore").encode("utf-8"))


def _as_text(data: bytes) -> str | None:
    """`data` as text when it is (almost all) UTF-8 and not control characters; None otherwise."""
    if len(data) < _MIN_DECODED or _invalid(data[:4096]) > min(len(data), 4096) // 20:
        return None  # binary (or a base64 run decoded at the wrong alignment): seen in its first bytes
    if len(data) > 4096 and _invalid(data) > len(data) // 20:
        return None
    # The controls are ASCII: each is one byte of `data` and one character of its text.
    if len(data) - len(data.translate(None, _CONTROL_BYTES)) > len(data) // 20:
        return None
    return data.decode("utf-8", "surrogateescape")


def _decompressed(data: bytes) -> bytes | None:
    """`data` decompressed when it starts like gzip, zlib, bzip2 or xz data (a truncated stream gives what it
    holds), at most `_MAX_DECOMPRESSED` bytes; None otherwise."""
    try:
        if data[:2] == b"\x1f\x8b" or (
            len(data) > 1 and data[0] == 0x78 and (data[0] << 8 | data[1]) % 31 == 0
        ):
            return zlib.decompressobj(wbits=47).decompress(data, _MAX_DECOMPRESSED)
        if data[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(data, max_length=_MAX_DECOMPRESSED)
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.LZMADecompressor().decompress(data, max_length=_MAX_DECOMPRESSED)
    except (zlib.error, OSError, EOFError, lzma.LZMAError):
        return None
    return None


def _b64_decodings(joined: str) -> Iterator[tuple[int, bytes]]:
    """(offset in `joined`, bytes) of its base64 decodings: at each of the four alignments for a long run,
    as it starts for a short one (a token on its own starts where its encoding does)."""
    for offset in range(4 if len(joined) >= _LONG_RUN else 1):
        usable = (len(joined) - offset) // 4 * 4
        part = joined[offset : offset + usable]
        if "=" in part[:-2]:
            part = part[: part.index("=") // 4 * 4]
        if len(part) < _MIN_B64:
            continue
        try:
            yield offset, base64.b64decode(part)
        except (binascii.Error, ValueError):
            continue


def _hex_decodings(joined: str) -> Iterator[tuple[int, bytes]]:
    """(offset in `joined`, bytes) of its hex decodings (see `_b64_decodings`)."""
    for offset in range(2 if len(joined) >= _LONG_RUN else 1):
        usable = (len(joined) - offset) // 2 * 2
        if usable >= 2 * _MIN_DECODED:
            yield offset, bytes.fromhex(joined[offset : offset + usable])


def _decoded_spans(
    decodings: Iterable[tuple[int, bytes]], per_byte: tuple[int, int], length: int, look: Detect, bare: Detect
) -> list[Span]:
    """Spans of an encoded run (of `length` characters, its `decodings`) that encode what `look` finds in
    the decoded text, or what `look` or `bare` (the known values) find in decompressed text (the whole run,
    then). Known values in text that is not compressed were found encoded already. `per_byte`: (characters,
    bytes) of one encoding group: (4, 3) for base64, (2, 1) for hex."""
    chars, size = per_byte
    spans: list[Span] = []
    for offset, data in decodings:
        inflated = _decompressed(data)
        if inflated is not None:
            text = _as_text(inflated)
            found = look(text) + bare(text) if text is not None else []
            spans += [(0, length, value) for _, _, value in found]
            continue
        text = _as_text(data)
        if text is None:
            continue
        for start, end, value in look(text):
            first = len(text[:start].encode("utf-8", "surrogateescape"))
            last = first + len(text[start:end].encode("utf-8", "surrogateescape"))
            spans.append((offset + first // size * chars, offset + -(-last // size) * chars, value))
    return spans


def _run_spans(match: re.Match[str], forms: KnownForms, detect: Detect) -> list[Span]:
    """Spans (in the text `match` is of) of one run of `_B64_RUN` that encode what `detect` or the known
    values find once it is decoded, as base64 and, when it is hex digits alone, as hex."""
    raw = match.group(0)
    standard, urlsafe = "+" in raw or "/" in raw, "-" in raw or "_" in raw
    if standard and urlsafe:  # both alphabets: a path or an identifier, not base64
        return []
    joined = raw.replace("\r", "").replace("\n", "")
    run = _Soup(raw, joined.encode("ascii").translate(_URLSAFE_TO_STANDARD), _NOT_LINE_BREAKS)
    length = len(run.chars)
    found = _decoded_spans(_b64_decodings(run.chars), (4, 3), length, detect, forms.bare.find)
    if not standard and not urlsafe and not joined.strip(_HEX_CHARS):
        found += _decoded_spans(_hex_decodings(joined), (2, 1), length, detect, forms.bare.find)
    return [(match.start() + s, match.start() + e, v) for s, e, v in run.spans(found)]


def _run_classes() -> bytes:
    """A `bytes.translate` table: base64 characters (either alphabet, so hex digits too) -> ``a``, every
    other byte -> space."""
    table = bytearray(b" " * 256)
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-":
        table[byte] = ord("a")
    return bytes(table)


_RUN_CLASSES = _run_classes()
_RUN_START = b"a" * _MIN_B64
_TEXT_LEADS = frozenset("CDIJKLMNOPQRSTUVWXYZabcdef")
"""The first character of a base64 group whose first byte is ASCII text, a tab or a line break (0x09, 0x0a,
0x0d, 0x20 to 0x7f: its top six bits are 2, 3 or 8 to 31)."""
_HEX_TEXT_LEADS = frozenset("0234567")
"""The first hex digit of such a byte."""
_COMPRESSED_STARTS = ("H4sI", "eAE", "eF4", "eJ", "eN", "Qlpo", "/Td6WFo", "_Td6WFo", "1f8b", "78", "425a68")
"""How base64 (either alphabet) and hex of gzip, zlib, bzip2 and xz data start (``fd377a`` of xz hex is
not text-like either: see `_may_hold_text`)."""
_LEADS_LOOKED_AT = 4
_FIRSTS = _TEXT_LEADS | _HEX_TEXT_LEADS | {start[0] for start in _COMPRESSED_STARTS} | {"f"}
"""How a run shorter than `_LONG_RUN` that `_may_hold_text` passes starts: most identifiers do not."""
_TEXT_ONLY = _TEXT_LEADS - {start[0] for start in _COMPRESSED_STARTS} - {"f"}
"""How a run shorter than `_LONG_RUN` starts that `_may_hold_text` can pass only as text (its groups' first
characters decide: `_sifted_runs` tests them itself, without slicing the run or calling it)."""


def _may_hold_text(run: str) -> bool:
    """Whether a run (one line of it) may decode to what `_decoded_spans` reads: text, whose first
    `_LEADS_LOOKED_AT` base64 groups (at one of the alignments `_b64_decodings` tries) or hex bytes start
    like ASCII text, tabs or line breaks, or data that starts like compressed data."""
    if run.startswith(_COMPRESSED_STARTS) or run[:6].lower() == "fd377a":
        return True
    size = len(run)
    for offset in range(4 if size >= _LONG_RUN else 1):
        leads = run[offset : offset + 4 * _LEADS_LOOKED_AT : 4]
        if len(leads) == _LEADS_LOOKED_AT and all(c in _TEXT_LEADS for c in leads):
            return True
    if run[0] in _HEX_TEXT_LEADS or (size >= _LONG_RUN and run[1] in _HEX_TEXT_LEADS):
        for offset in range(2 if size >= _LONG_RUN else 1):
            head = run[offset : offset + 4 * _LEADS_LOOKED_AT]
            if not head.strip(_HEX_CHARS) and all(c in _HEX_TEXT_LEADS for c in head[::2]):
                return True
    return False


def _lead_classes() -> bytes:
    """A `bytes.translate` table: the `_TEXT_LEADS` -> ``L``, every other byte -> ``o``."""
    table = bytearray(b"o" * 256)
    for char in _TEXT_LEADS:
        table[ord(char)] = ord("L")
    return bytes(table)


_LEAD_CLASSES = _lead_classes()
_TEXT_GROUPS = b"L" * _LEADS_LOOKED_AT
_LATER_TEXT = 20
"""Runs this long or longer whose first groups are not text are looked at further (`_text_later`)."""
_UTF8_FIRSTS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefwxyz0123456789")
"""The first character of base64 (at its start) of UTF-8 text: of a byte below 0x80 or from 0xc2 to 0xf4,
the first of a character. A run shorter than `_LONG_RUN`, decoded from its start only, that starts
otherwise (``g`` to ``v``: a continuation byte) is no such text from its start (most identifiers)."""
_HEX_TEXT = re.compile(r"(?:[0-9a-fA-F]{2})*?(?:[0234567][0-9a-fA-F]){8}")
"""Eight hex bytes in a row that are ASCII text, tabs or line breaks, at an even offset from the start."""
_HEX_SET = frozenset(_HEX_CHARS)


def _text_later(run: str) -> bool:
    """Whether a run (one line of it) whose first groups are not text (UTF-8 beyond ASCII, a byte order
    mark, a few bytes of binary) holds text further on: `_LEADS_LOOKED_AT` base64 groups in a row, at an
    alignment `_b64_decodings` tries, or eight hex bytes in a row, that encode ASCII text, tabs or line
    breaks (a stretch of 14 ASCII characters or more: any value the detectors find in decoded text has one,
    with its name or format).

    A base64 run looked at holds an upper-case letter: base64 of such text all but always does, and most
    runs in source code are identifiers in lower case (Django: 31,000 of the 43,000 runs of 20 characters
    or more that are not text from their start)."""
    long = len(run) >= _LONG_RUN
    if not run.islower():
        leads = run.encode("ascii", "replace").translate(_LEAD_CLASSES)
        if any(_TEXT_GROUPS in leads[offset::4] for offset in range(4 if long else 1)):
            return True
    if run[0] not in _HEX_SET or run.strip(_HEX_CHARS):
        return False
    return any(_HEX_TEXT.match(run, offset) for offset in range(2 if long else 1))


_NEVER_SHORT = frozenset("ghijklmnopqrstuv+-")
"""How a run shorter than `_LONG_RUN` starts that cannot pass (Django: 46% of its runs): in neither `_FIRSTS`
nor `_UTF8_FIRSTS`."""
_LEAD_OR_COMPRESSED = frozenset("efQ")
"""Of `_FIRSTS`, the text leads that start a compressed start too (``eJ``, ``Qlpo``, ``fd377a``)."""
_COMPRESSED_ONLY = frozenset("H/_1")
"""Of `_FIRSTS`, those that a run shorter than `_LONG_RUN` passes `_may_hold_text` with only as compressed
data (``H4sI``, ``/Td6WFo``, ``_Td6WFo``, ``1f8b``): neither text leads nor hex digits of text."""


def _sifted_runs(text: str, ascii: bytes | None = None) -> Iterator[re.Match[str]]:
    """The runs of `_B64_RUN` in `text` that `_may_hold_text`, found without running the expression over the
    text: its characters are mapped to two classes (one `bytes.translate` of `ascii`, ``text.encode("ascii",
    "replace")``, which the caller may have made already) and each run of 16 base64 characters or more found
    with `bytes.find`; the expression is matched only where a run that passes starts. In source code most
    runs are identifiers and paths: Django's 17 MB hold 94,000, 2,400 of which pass (2,000 by their first
    groups), and `find_encoded` over it took 0.6 s of CPU unsifted, 0.13 s sifted in session 23. A run shorter
    than `_LONG_RUN` is decided by its first character where it can be (`_NEVER_SHORT`: 43,500 of Django's
    runs), its groups' leads tested here for text, its start for compressed data and `_text_later`'s tests
    made inline, without slicing the run or calling a function for most runs (the walk: 0.11 -> 0.09 s of
    CPU, session 25); those of a short run on its bytes (base64 is ASCII: no encoding of it)."""
    data = text.encode("ascii", "replace") if ascii is None else ascii
    classes = data.translate(_RUN_CLASSES)
    find = classes.find
    leads, never, text_only = _TEXT_LEADS, _NEVER_SHORT, _TEXT_ONLY
    at = find(_RUN_START)
    while at >= 0:
        end = find(b" ", at + _MIN_B64)  # (the run is 16 characters at least)
        if end < 0:
            end = len(classes)
        first = text[at]
        size = end - at
        if size < _LONG_RUN:
            if first in never:
                at = find(_RUN_START, end)
                continue
            # As `_may_hold_text` decides (a short run: its first four groups' leads, its start).
            if first in text_only:
                passes = text[at + 4] in leads and text[at + 8] in leads and text[at + 12] in leads
            elif first in _LEAD_OR_COMPRESSED:
                passes = (
                    (text[at + 4] in leads and text[at + 8] in leads and text[at + 12] in leads)
                    or text.startswith(_COMPRESSED_STARTS, at)
                    or (first == "f" and text[at : at + 6].lower() == "fd377a")
                )
            elif first in _COMPRESSED_ONLY:
                passes = text.startswith(_COMPRESSED_STARTS, at)
            else:
                passes = first in _FIRSTS and _may_hold_text(text[at:end])
        else:
            passes = _may_hold_text(text[at:end])
        later = False
        if not passes and size >= _LATER_TEXT and (first in _UTF8_FIRSTS or size >= _LONG_RUN):
            if size >= _LONG_RUN:
                run = text[at:end]
                passes = later = (not run.islower() or first in _HEX_SET) and _text_later(run)
            else:  # `_text_later` of a short run (one alignment), on its bytes (base64 is ASCII)
                piece = data[at:end]
                passes = later = (
                    not piece.islower() and _TEXT_GROUPS in piece[::4].translate(_LEAD_CLASSES)
                ) or (
                    first in _HEX_SET
                    and not piece.strip(_HEX_DIGITS)
                    and _HEX_TEXT.match(text, at, end) is not None
                )
        if passes:
            # A run that is text only further on is decoded alone: the lines after it may be base64 of
            # their own, which joined to it would be read at another alignment (and missed).
            match = (_B64_LINE if later else _B64_RUN).match(text, at)
            if match is not None:
                yield match
                end = max(end, match.end())
        at = find(_RUN_START, end)


def _percent_runs(text: str) -> Iterator[re.Match[str]]:
    """The matches of `_PERCENT_RUN` in `text`, looked for in the lines holding an escape only (a run holds
    no line break): over a whole source file with a few escapes, the expression cost as much as the
    sifted search of its base64 runs."""
    end = 0
    for escape in _ANY_PERCENT_ESCAPE.finditer(text):
        if escape.start() < end:
            continue
        start = text.rfind("\n", 0, escape.start()) + 1
        end = text.find("\n", escape.end())
        if end < 0:
            end = len(text)
        yield from _PERCENT_RUN.finditer(text, start, end)


# ---------------------------------------------------------------------------------------------------
# The search


def find_encoded(
    text: str, forms: KnownForms, detect: Detect, *, sift: bool = False, ascii: bytes | None = None
) -> list[Span]:
    """Where `text` holds a known value encoded, or encoded text in which `detect` or the known values are
    found once decoded; unsorted, possibly overlapping. `sift`: decode only the runs that may hold text or
    compressed data (`_sifted_runs`: for source files, whose runs are mostly identifiers). `ascii`:
    ``text.encode("ascii", "replace")`` when the caller has it (one byte a character: offsets stay those
    of `text`)."""
    spans: list[Span] = []
    if forms:
        if ascii is None:
            ascii = text.encode("ascii", "replace")
        spans += forms.plain.find(text)
        b64 = _Soup.base64(text, ascii)
        spans += b64.spans(forms.b64.find(b64.chars), widen=4)  # the groups holding the value's ends too
        hexa = _Soup.hex(text, ascii)
        spans += hexa.spans(forms.hex.find(hexa.chars))

    for match in _sifted_runs(text, ascii) if sift else _B64_RUN.finditer(text):
        spans += _run_spans(match, forms, detect)
    if "%" in text and _PERCENT_ESCAPE.search(text):  # `in` finds one character fast: the search does not
        for match in _percent_runs(text):
            decoded = unquote_plus(match.group(0))
            if decoded != match.group(0):  # the whole run is withheld, as for compressed data
                spans += [(match.start(), match.end(), value) for _, _, value in detect(decoded)]
    return spans

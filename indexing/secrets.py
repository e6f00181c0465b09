"""Secret values in text: finding them, withholding them behind stable placeholders, and putting them back.

agentls keeps a copy of the code in its index and sends parts of it to a model provider. Secret *files*
(``.env``, ``id_rsa`` ...) are never read; this module handles secret *values* written inside ordinary
files (``AWS_SECRET_ACCESS_KEY = "wJalr..."`` in ``settings.py``).

Detection (`find_secrets`), in three passes over a text:

1. Known key formats, each by its regular expression: AWS access key ids (``AKIA...``), Stripe live keys
   (``sk_live_...``), GitHub (``ghp_...``, ``github_pat_...``), Slack (``xox?-...`` and webhook URLs'
   paths), Anthropic (``sk-ant-...``), OpenAI (``sk-proj-...``, ``sk-svcacct-...``, ``sk-admin-...``
   and the older ``sk-...T3BlbkFJ...``), Google (``AIza...``), GitLab, npm and PyPI tokens, signed JSON
   web tokens (``eyJ...eyJ...``), and the base64 body of ``-----BEGIN ... PRIVATE KEY-----`` blocks
   (each body line on its own, so line structure survives).
2. Values given unquoted to a name that says it holds a credential (`_assigned_values`): ``.env`` files
   and ``env`` output (``AWS_SECRET_ACCESS_KEY=...``), INI and YAML (``password: ...``), ``export``,
   and ``Bearer ...``; only values that look random (`_looks_random`), so names, paths, ``$VARIABLES``,
   UUIDs and ``EXAMPLE`` values in code stay.
3. Every other value through the plugins of Yelp's ``detect-secrets`` (entropy of quoted strings, secret
   keywords such as ``password = "..."``, and its key-format detectors), with its default false-positive
   filters (UUIDs, sequential strings, templates, ``$VARIABLES``, id-like names, lock files) and its
   ``pragma: allowlist secret`` comments; a word-like value that is (part of) the name it is given to
   (``p1.secret = "secret"``, ``db_password = "password"``) is a stand-in, not a secret (`_names_itself`). The
   plugins cost about a millisecond per line, so they only see *candidate* lines: a line holding a quoted
   string of 9 or more token characters, a long token with digits in it, a secret keyword next to a quote, or
   ``scheme://user:password@``. Lines without any of these cannot match a default plugin (entropy plugins need
   quoted strings above their limits, the keyword plugin a keyword and a quoted value, the format plugins long
   tokens). On a candidate line a plugin runs only when it can match: a plain regular-expression plugin when
   one of its own expressions is in the line (the slowest of those are searched for only where a word or
   literal that any of their matches holds is: `_GATE_NEEDS`), the keyword plugin (on a line that is a
   candidate only for its keyword) when one of its expressions for the file's type is. The two entropy
   plugins' values are found as their ``analyze_line`` finds them, with their expression and the same
   entropy sum, without the objects it makes per value (`_entropy_values`). ``detect-secrets`` is imported
   on the first candidate line.

A value found that goes on after a backslash at the end of its line (a shell's continuation) is taken on
to its end (`_continued`).

Cost: the passes start from scans of the whole text, and a scan costs about the same whatever it looks
for, so they share them, and read the text as bytes (`_scan_bytes`: letters in lower case, a few
characters sharing a byte). The twelve formats' prefixes and the ten hint words of the second pass and of
the keyword lines of the third take five scans, one per byte that starts them (`_scans`, `_scanned`); the
formats' expressions run only where their prefixes are (`_format_matches`); quoted values and URLs' passwords
take one more (`_quoted_or_url`). On a keyword line the plugin's expressions are tried only where a line can
match them, and what they match is the plugin's values (`_keyword_values`: the plugin is not run on such a
line); a line met again in a file is not read again. A text beyond ASCII is encoded once for the scans
and the sifting walk (`_one_byte_each`). On Django `find_secrets` costs about a fifteenth of the parse
(`indexing.chunker.parse_source`), and `redact_source` about an eighth (CPU, session 27; about half of
its instructions are the scans, the two translations and the walk's search, at what CPython's ``re``,
``bytes.translate`` and ``bytes.find`` cost a byte); the index runs it on every file it reads.

Placeholders: a value becomes ``<secret:1a2b3c4d>``, the first 8 hex digits of an HMAC-SHA256 of the value
under a per-user key (`load_key`: a random 32-byte file, 0600, in agentls' cache folder). The same value
gives the same placeholder in the index, in file views and in command output, and a placeholder reveals
nothing about a short value without the key. `redact_text` keeps line breaks, so chunk line numbers in
the index stay right.

The index stores what `redact_source` leaves of a file: `redact_text`, then the values written encoded
(base64, hex, percent-encoded, compressed then encoded), found by `indexing.secret_encodings` as a run's
`Redactor` finds them, with the runs of base64 and hex digits sifted first (source code is full of long
identifiers). A value in a file's path (a key as a file name) is withheld from the text made of the path
(`redact_path`: the searched text, what embedding and re-ranking models read); the index's path columns
keep the path, by which the file is found again.

`Redactor` is what one agent run uses: it redacts everything that goes to the model or into the
transcript, remembers which placeholder stands for which value (so values seen once are also replaced
where the detector would not find them, say in command output, and where they are written encoded:
`indexing.secret_encodings`, which also decodes base64 and hex for the detectors), counts what it
withheld, and maps placeholders back in the agent's edits (`restore_edit`), refusing an edit that would
change, remove or copy a secret value unless the user allowed it. A placeholder is put back as the text it
replaced in the file (`redact_source`'s segments, remembered by `Redactor.learn`): the value, or for a value
written encoded the encoded text, never the decoded value (which would write a secret the file never held
bare, and make a ``str_replace`` keeping the line miss). Where one placeholder stands for a value written
both ways in a file, ``old_str`` is read the way the file holds it; a copy that does not say which is
refused. A value met in a text that is a plain word shorter than 16 characters (``password="secret"`` in
Django's tests, ``changeme``) is withheld where the detectors find it, not wherever the word is written,
which withheld ``secret`` in every later output of the run (`_plain_word`); a configured credential
(`Redactor.learn_values`) is withheld everywhere whatever it is.
"""

from __future__ import annotations

import base64
import bisect
import collections
import functools
import hashlib
import hmac
import itertools
import logging
import math
import os
import re
import secrets as _random
import string
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from indexing.credentials import names_credential
from indexing.paths import tag_cache_dir
from indexing.secret_encodings import KnownForms, find_encoded

__all__ = [
    "PATH_PLACEHOLDER",
    "PLACEHOLDER",
    "Found",
    "Redactor",
    "SecretEditRefused",
    "find_secrets",
    "load_key",
    "placeholder",
    "private_dir",
    "redact_path",
    "redact_source",
    "redact_text",
]

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"<secret:[0-9a-f]{8}>")
"""What a withheld value looks like in text."""

KEY_FILE = "secret-key"


# ---------------------------------------------------------------------------------------------------
# The scans
#
# A scan of a whole text by a regular expression that starts with a literal character costs about the same
# whatever it looks for (0.6 ns a character on Django; `str.find` of a word is no faster), plus a little at
# each place the character is; an expression that starts with a set of characters or an alternation tests
# every character and was 5 to 20 times slower. So the count of scans is the cost. The scans read the text
# as bytes (`_scan_bytes`: one `bytes.translate`, a third of the cost of `str.lower`) in which letters are
# in lower case and a few characters share one byte, so that one scan finds the words and prefixes that
# hold any of them: A, J, x and b (`_ANCHOR`: the prefixes of the AWS, Google, JSON web token, PyPI,
# Slack and GitHub formats, "bearer") and the three quotes and ``:`` (`_QUOTE`: quoted values, a URL's
# password). Each place a scan's byte is costs a little more per expression tried there, so only rare
# letters share one (with k, h, p or c too, the scans cost more than they saved). The key formats and the
# hint words of the passes take five scans (one per byte of `_ANCHOR_ORDER`), quoted values and URLs one:
# six where there were fifteen and a `str.lower`.

_ANCHOR = 1
_QUOTE = 2
_ANCHOR_LETTERS = "AJxbB"
_LOWER_IS_ASCII = {"\u0130": "i", "\u212a": "k"}
"""The two characters beyond ASCII whose lower case holds an ASCII letter: ``İ`` (``i`` and a combining
dot) and the Kelvin sign (``k``). `str.lower` made hint words of them; `_scan_bytes` reads them so too."""


def _scan_table() -> bytes:
    table = bytearray(range(256))
    for letter in range(ord("A"), ord("Z") + 1):
        table[letter] = letter + 32
    for char in _ANCHOR_LETTERS:
        table[ord(char)] = _ANCHOR
    for char in "\"'`:":
        table[ord(char)] = _QUOTE
    table[_ANCHOR] = table[_QUOTE] = ord("?")  # the text's own control characters are not the anchors
    return bytes(table)


_SCAN_TABLE = _scan_table()


def _scan_bytes(text: str, ascii: bytes | None = None) -> bytes:
    """`text` as the scans read it: one byte a character (offsets stay the text's), letters in lower case
    except the `_ANCHOR_LETTERS`, which are `_ANCHOR`, quotes and ``:``, which are `_QUOTE`; a character
    beyond ASCII is ``?`` unless its lower case is an ASCII letter (`_LOWER_IS_ASCII`). `ascii`:
    `_one_byte_each` of the text, when the caller has it."""
    if ascii is not None:
        return ascii.translate(_SCAN_TABLE)
    if text.isascii():
        return text.encode("ascii").translate(_SCAN_TABLE)
    for char, letter in _LOWER_IS_ASCII.items():
        text = text.replace(char, letter)
    return text.encode("ascii", "replace").translate(_SCAN_TABLE)


def _one_byte_each(text: str) -> bytes | None:
    """``text.encode("ascii", "replace")`` (a character beyond ASCII is ``?``), which both the scans
    (`_scan_bytes`) and the sifting walk (`indexing.secret_encodings.find_encoded`) read, made once; None
    for a text holding one of `_LOWER_IS_ASCII`, which the scans read otherwise. (Django's 231 files beyond
    ASCII are 5 of its 17 MB: each was encoded twice and searched for both characters twice.)"""
    if text.isascii():
        return text.encode("ascii")
    if any(char in text for char in _LOWER_IS_ASCII):
        return None
    return text.encode("ascii", "replace")


def _preimage(byte: int) -> frozenset[str]:
    """The characters of a text that `_scan_bytes` makes `byte`."""
    chars = {chr(c) for c in range(128) if _SCAN_TABLE[c] == byte}
    chars |= {char for char, letter in _LOWER_IS_ASCII.items() if _SCAN_TABLE[ord(letter)] == byte}
    return frozenset(chars)


@dataclass(frozen=True, slots=True)
class _Literal:
    """Text that a scan looks for: a hint word (any case) or a key format's prefix, as the characters each
    of its positions may hold, one of which (`anchor`) is where the scan's expression starts."""

    name: str
    chars: tuple[frozenset[str], ...]
    images: tuple[frozenset[int], ...]
    """Each position as `_scan_bytes` has it."""
    anchor: int
    unsure: tuple[tuple[int, frozenset[str]], ...]
    """The positions whose byte more characters than theirs make (``a`` in `_ANCHOR`): where the bytes
    match, these characters decide (`sure`)."""

    @classmethod
    def of(cls, name: str, pattern: str, *, any_case: bool) -> _Literal:
        """`pattern` is characters, ``\\.`` escapes and ``[...]`` sets of ASCII characters. Its anchor is the
        position whose byte comes first in `_ANCHOR_ORDER` (the rarest), the leftmost of them."""
        chars: list[frozenset[str]] = []
        for token in re.findall(r"\\.|\[[^\]]*\]|.", pattern):
            allowed = {chr(c) for c in range(128) if re.fullmatch(token, chr(c))}
            if any_case:
                allowed |= {c.swapcase() for c in allowed}
                allowed |= {char for char, letter in _LOWER_IS_ASCII.items() if letter in allowed}
            chars.append(frozenset(allowed))
        images = tuple(
            frozenset(_SCAN_TABLE[ord(_LOWER_IS_ASCII.get(c, c))] for c in allowed) for allowed in chars
        )
        anchors = [
            (_ANCHOR_ORDER.index(image), at)
            for at, (image,) in ((at, tuple(image)) for at, image in enumerate(images) if len(image) == 1)
            if image in _ANCHOR_ORDER
        ]
        if not anchors:
            raise ValueError(f"{name}: {pattern!r} holds none of the scans' bytes")
        unsure = tuple(
            (at, allowed)
            for at, (image, allowed) in enumerate(zip(images, chars, strict=True))
            if frozenset().union(*(_preimage(b) for b in image)) != allowed
        )
        return cls(name, tuple(chars), images, min(anchors)[1], unsure)

    def sure(self, text: str, start: int) -> bool:
        """Whether ``text[start:]``, whose bytes match this literal's, starts with it."""
        for at, allowed in self.unsure:  # noqa: SIM110 (`all` of a generator took twice as long)
            if text[start + at] not in allowed:
                return False
        return True

    def holds(self, text: str, start: int) -> bool:
        """Whether ``text[start:]`` starts with this literal."""
        if start < 0 or start + len(self.chars) > len(text):
            return False
        piece = text[start : start + len(self.chars)]
        return all(char in allowed for char, allowed in zip(piece, self.chars, strict=True))

    def may_share(self, other: _Literal) -> bool:
        """Whether both may be found with their anchors at one place of a scan's bytes (the expression then
        says which is first, and the other is checked too)."""
        for offset in range(-max(self.anchor, other.anchor), max(len(self.chars), len(other.chars))):
            mine, theirs = self.anchor + offset, other.anchor + offset
            both = 0 <= mine < len(self.chars) and 0 <= theirs < len(other.chars)
            if both and not self.images[mine] & other.images[theirs]:
                return False
        return True


_ANCHOR_ORDER = (_ANCHOR, ord("k"), ord("h"), ord("p"), ord("c"))
"""The bytes the scans start from, rarest first in source code (Django: A, J, x and b together 1.3% of its
characters, k 0.4%, h 1.0%, p 1.5%, c 2.0%)."""


class _Branch(NamedTuple):
    """What a scan found where one of its branches matched: the literal's name and its anchor's offset in
    it, the literal when the bytes leave its characters unsure (`_Literal.sure`), and the literals after it
    in the expression that may share its place, each checked by `_Literal.holds`."""

    name: str
    anchor: int
    unsure: _Literal | None
    others: tuple[_Literal, ...]


class _Scan(NamedTuple):
    byte: bytes
    """The anchor byte the expression starts with."""
    expression: re.Pattern[bytes]
    branches: tuple[_Branch | None, ...]
    """By the number of the group that closes after a literal (a match's ``lastindex``; 0 is no group)."""


def _byte_set(image: frozenset[int]) -> bytes:
    escaped = b"".join(re.escape(bytes([b])) for b in sorted(image))
    return escaped if len(image) == 1 else b"[" + escaped + b"]"


def _scans(literals: Iterable[_Literal]) -> tuple[_Scan, ...]:
    """One expression per anchor byte: the byte, then a look-ahead with one branch per literal, which starts
    with what follows its anchor (the engine tries a branch only when its first byte is there) and checks
    what precedes it by a look-behind. Each place the byte is matches once; a literal that is not the branch
    that matched, but may be there too (`_Literal.may_share`), is checked by `_scanned`."""
    by_anchor: dict[int, list[_Literal]] = {}
    for literal in literals:
        by_anchor.setdefault(next(iter(literal.images[literal.anchor])), []).append(literal)
    scans = []
    for byte in _ANCHOR_ORDER:
        # a branch without bytes after its anchor would be tried at each place: last
        items = sorted(by_anchor.get(byte, []), key=lambda item: item.anchor == len(item.chars) - 1)
        branches = []
        table: list[_Branch | None] = [None]
        for i, literal in enumerate(items):
            before = b"".join(_byte_set(image) for image in literal.images[: literal.anchor])
            after = b"".join(_byte_set(image) for image in literal.images[literal.anchor + 1 :])
            behind = b"(?<=" + before + re.escape(bytes([byte])) + after + b")" if before else b""
            branches.append(after + behind + f"(?P<l{i}>)".encode())
            others = tuple(other for other in items[i + 1 :] if literal.may_share(other))
            table.append(_Branch(literal.name, literal.anchor, literal if literal.unsure else None, others))
        if branches:
            expression = re.compile(re.escape(bytes([byte])) + b"(?=" + b"|".join(branches) + b")")
            if expression.groups != len(items):  # group i + 1 must close after literal i
                raise ValueError(f"the scan of byte {byte} has groups of its own")
            scans.append(_Scan(bytes([byte]), expression, tuple(table)))
    return tuple(scans)


def _scanned(text: str, data: bytes) -> dict[str, list[int]]:
    """Where each literal of `_SCANS` is in `text` (`data`: `_scan_bytes` of it), in order, by name (the
    names found only)."""
    found: dict[str, list[int]] = {}
    for byte, expression, table in _SCANS:
        if byte not in data:  # (a search for one byte: short texts, the decoded runs, often lack some)
            continue
        for match in expression.finditer(data):
            name, anchor, unsure, others = table[match.lastindex]  # type: ignore[index,misc]
            at = match.start()
            if unsure is None or unsure.sure(text, at - anchor):
                places = found.get(name)
                if places is None:
                    found[name] = [at - anchor]
                else:
                    places.append(at - anchor)
            for other in others:
                if other.holds(text, at - other.anchor):
                    found.setdefault(other.name, []).append(at - other.anchor)
    return found


# The key formats: (name, the prefixes a value starts with, the expression after them). A value is the
# whole match, or its group NAME_v. The scans find where a prefix may be; the expression decides there.
_KEY_FORMATS = (
    ("aws", ("AKIA", "ASIA", "ABIA", "ACCA", "A3T[A-Z0-9]"), r"[0-9A-Z]{16}\b"),  # AWS access key ids
    ("google", ("AIza",), r"[0-9A-Za-z_-]{35}"),  # Google API keys
    # Stripe secret and restricted live keys (sk_live_, rk_live_: the s or r is added to the value)
    ("stripe", ("k_live_",), r"[0-9A-Za-z]{10,}"),
    # Anthropic; OpenAI's project, service account and admin keys, and its older ones
    (
        "sk",
        ("sk-",),
        r"(?:ant-[0-9A-Za-z_-]{20,}|(?:proj|svcacct|admin)-[0-9A-Za-z_-]{20,}|[0-9A-Za-z]{20}T3BlbkFJ[0-9A-Za-z]{20})",
    ),
    # Slack webhooks
    (
        "slack_hook",
        (r"hooks\.slack\.com/",),
        r"(?:services|workflows|triggers)/(?P<slack_hook_v>[0-9A-Za-z/_-]{20,})",
    ),
    ("github", ("gh[pousr]_",), r"[0-9A-Za-z]{30,}"),  # GitHub tokens
    ("github_pat", ("github_pat_",), r"[0-9A-Za-z_]{40,}"),
    ("gitlab", ("glpat-",), r"[0-9A-Za-z_-]{20,}"),  # GitLab
    ("slack", ("xox[abposr]-",), r"[0-9A-Za-z-]{10,}"),  # Slack
    # JSON web tokens (signed)
    ("jwt", ("eyJ[0-9A-Za-z_-]",), r"[0-9A-Za-z_-]{7,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}"),
    ("npm", ("npm_",), r"[0-9A-Za-z]{36}\b"),  # npm
    ("pypi", ("pypi-AgE",), r"[0-9A-Za-z_-]{50,}"),  # PyPI
)
_FORMAT_EXPRESSIONS = {
    name: re.compile("(?:" + "|".join(prefixes) + ")" + rest) for name, prefixes, rest in _KEY_FORMATS
}
"""Each format's expression: a match starts with one of its prefixes."""
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(.{0,65536}?)-----END[A-Z0-9 ]{0,40}PRIVATE KEY",
    re.DOTALL,
)
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=]{16,}")

# Cheap tests first (the scans find words), regular expressions only where they point: a regular expression
# over every byte of a large tree cost more than parsing it. The hint words of both passes are found by the
# same scans as the formats (`_scanned`).
_KEYWORD_HINTS = ("pass", "pwd", "secret", "contrase", "key")
_ASSIGNED_HINTS = ("secret", "passw", "pwd", "token", "key", "credential", "auth", "bearer", "cookie")
_HINT_WORDS = ("key", "token", "cookie", "contrase", "credential", "secret", "pass", "pwd", "auth", "bearer")
"""The words of both lists (``passw`` is a ``pass`` followed by ``w``)."""
_LITERALS = (
    *(_Literal.of(word, word, any_case=True) for word in _HINT_WORDS),
    *(_Literal.of(name, prefix, any_case=False) for name, prefixes, _ in _KEY_FORMATS for prefix in prefixes),
)
_SCANS = _scans(_LITERALS)
_KEY_PREFIXES = ("api", "auth", "service", "account", "db", "database", "priv", "private", "client")
_KEY_PREFIX_ENDS = frozenset("_-\u0130") | {c for p in _KEY_PREFIXES for c in (p[-1], p[-1].upper())}
"""What can precede ``key`` after one of `_KEY_PREFIXES` (``İ``: `_lower` makes it ``i``)."""
_QUOTED = {
    quote: re.compile(quote + r"([A-Za-z0-9+/=_\-]{20,}|[0-9a-fA-F]{9,})" + quote)
    for quote in ('"', "'", "`")
}
"""A quoted value the entropy plugins may take, by its quote."""


def _image_set(chars: str) -> bytes:
    return _byte_set(frozenset(_SCAN_TABLE[ord(c)] for c in chars))


_B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-"
_QUOTE_BYTE = bytes([_QUOTE])
_QUOTED_OR_URL = re.compile(
    bytes([_QUOTE])
    + b"(?="
    + _image_set(_B64_CHARS)  # a set first: the engine passes over the branch at a byte not in it
    + _image_set(_B64_CHARS)
    + b"{8}(?:"
    + _image_set(_B64_CHARS)
    + b"{11,}+|"
    + _image_set("0123456789abcdefABCDEF")
    + b"*+)"
    + bytes([_QUOTE])
    + b"|//)"
)
"""Where a `_QUOTED` value or a `_URL_PASSWORD` may start, in `_scan_bytes` (a quote or ``:``): one scan. A
value is 20 base64 characters or more, or 9 hex digits or more: 9 characters first (most strings in code
are shorter), then either."""
_URL_PASSWORD = re.compile(r"://[^\s/:@]+:[^\s/@]+@")
_HEX = frozenset("0123456789abcdefABCDEF")

_ENTROPY, _KEYWORD, _URL = 1, 2, 4
_ALL = _ENTROPY | _KEYWORD | _URL
_PLUGIN_REASON = {
    "Base64HighEntropyString": _ENTROPY,
    "HexHighEntropyString": _ENTROPY,
    "KeywordDetector": _KEYWORD,
    "BasicAuthDetector": _URL,
}
_FORMATS = _ENTROPY | _URL
"""Which candidate reason runs which plugin. The others (key formats) need a long token, which a line
has when it is a candidate for its entropy or its URL, not when only for a keyword."""

_EXCLUDED_PLUGINS = frozenset({"IPPublicDetector"})
"""Public IP addresses are not secrets in source code, and hiding them breaks configuration edits."""


@dataclass(frozen=True, slots=True)
class Found:
    """One secret value at ``text[start:end]``."""

    start: int
    end: int
    kind: str

    @property
    def length(self) -> int:
        return self.end - self.start


# ---------------------------------------------------------------------------------------------------
# Keys and placeholders


def load_key(cache_dir: Path) -> bytes:
    """The per-user placeholder key, ``<cache_dir>/secret-key``, created (0600, folder 0700) when missing."""
    path = Path(cache_dir) / KEY_FILE
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data[:32]
    except OSError:
        pass
    key = _random.token_bytes(32)
    try:
        private_dir(path.parent)
        tag_cache_dir(path.parent)  # the cache folder: never indexed, even inside a workspace
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
    except FileExistsError:  # another process wrote it first: use theirs
        try:
            data = path.read_bytes()
            if len(data) >= 32:
                return data[:32]
        except OSError:
            pass
    except OSError as error:
        log.warning(
            "cannot store the secret placeholder key in %s (%s); placeholders will differ between runs",
            path,
            error.strerror or error,
        )
    return key


def private_dir(path: Path, *, owned_parents: int = 0) -> Path:
    """Create `path` (and missing parents) readable by the user only (0700), and make it 0700 if it exists.

    `owned_parents`: how many of its parents are agentls' own folders (the index folder's ``index`` and
    cache folders) and are made 0700 too. The index holds a copy of the code, so nobody else may read it.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for folder in [path, *list(path.parents)[:owned_parents]]:
        try:
            if folder.stat().st_mode & 0o077:
                os.chmod(folder, 0o700)
        except OSError as error:
            log.warning("cannot make %s private (%s); others on this machine may read it", folder, error)
    return path


def placeholder(value: str, key: bytes) -> str:
    """``<secret:xxxxxxxx>`` for `value` under `key`."""
    digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"<secret:{digest[:8]}>"


# ---------------------------------------------------------------------------------------------------
# Detection


class _Plugins:
    """detect-secrets' plugins and filters, loaded once per process on first use."""

    _lock = threading.Lock()
    _loaded: tuple[list[Any], list[Any], Any, Any] | None = None

    @classmethod
    def get(cls) -> tuple[list[Any], list[Any], Any, Any]:
        with cls._lock:
            if cls._loaded is None:
                from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
                from detect_secrets.filters import heuristic
                from detect_secrets.filters.allowlist import is_line_allowlisted
                from detect_secrets.util.code_snippet import get_code_snippet

                classes: list[Any] = list(get_mapping_from_secret_type_to_class().values())
                plugins = [c() for c in classes if c.__name__ not in _EXCLUDED_PLUGINS]
                filters = [
                    heuristic.is_sequential_string,
                    heuristic.is_potential_uuid,
                    heuristic.is_templated_secret,
                    heuristic.is_prefixed_with_dollar_sign,
                    heuristic.is_not_alphanumeric_string,
                ]
                cls._loaded = (plugins, filters, is_line_allowlisted, (heuristic, get_code_snippet))
            return cls._loaded


def _skip_file(filename: str) -> bool:
    from detect_secrets.filters import heuristic

    return bool(filename) and (heuristic.is_lock_file(filename) or heuristic.is_swagger_file(filename))


def _detect_line(
    line: str, filename: str, previous: str, reasons: int, keyword: list[str | None] | None = None
) -> list[str]:
    """detect-secrets' values on one line (after its default filters), from the plugins `reasons` asks for.

    A line is a candidate for one or more reasons (`_ENTROPY`, `_KEYWORD`, `_URL`); each reason runs only
    the plugins that can fire on it (about a millisecond per line for all of them). `keyword`: what the
    keyword plugin finds on the line, found already (`_keyword_values`), instead of running it. The stock
    entropy plugins' values are found as they find them, without their per-value objects
    (`_entropy_values`)."""
    _, filters, allowlisted, (heuristic, get_code_snippet) = _Plugins.get()
    plugins = [
        route
        for route in _routes()
        if route.reasons & reasons and (route.gate is None or _gate_open(route.gate, line))
    ]
    if not plugins:
        return []
    context = get_code_snippet(lines=[previous, line], line_number=2)
    # Its allowlist comments all say "pragma": without it, its dozen expressions cannot match.
    if ("pragma" in line or "pragma" in previous) and allowlisted(filename or "file", line, context):
        return []
    if _is_indirect_reference(line, heuristic):
        return []
    values: list[str] = []
    for plugin, reason, _, entropy in plugins:
        if keyword is not None and reason == _KEYWORD:
            found_values: Iterable[str | None] = dict.fromkeys(keyword)
        else:
            try:
                if entropy:
                    found_values = _entropy_values(plugin, line, entropy == "hex")
                else:
                    found = plugin.analyze_line(
                        filename=filename or "file", line=line, line_number=0, context=context
                    )
                    found_values = [secret.secret_value for secret in found]
            except Exception:  # a plugin's bug must not stop indexing
                log.debug("detect-secrets plugin %s failed", type(plugin).__name__, exc_info=True)
                continue
        for value in found_values:
            if not value or len(value) < 4:
                continue
            if any(f(value) for f in filters) or heuristic.is_likely_id_string(value, line, plugin):
                continue
            values.append(value)
    return values


class _Route(NamedTuple):
    """A detect-secrets plugin and when `_detect_line` runs it."""

    plugin: Any
    reasons: int
    """The candidate reasons that run it (`_PLUGIN_REASON`; the key formats' plugins: `_FORMATS`)."""
    gate: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] | None
    """A plain regular-expression detector's expressions, each with what a line must hold for it to match
    (`_GATE_NEEDS`): it can find nothing on a line holding none of them (skipping those saves the plugins'
    per-line overhead on lines that are candidates for their entropy: a key-format plugin rarely
    matches). None for the others."""
    entropy: str
    """``"base64"`` or ``"hex"`` for a stock entropy plugin, whose values `_entropy_values` finds."""


@functools.cache
def _routes() -> tuple[_Route, ...]:
    from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector

    routes = []
    for plugin in _Plugins.get()[0]:
        kind = type(plugin)
        plain = (
            isinstance(plugin, RegexBasedDetector)
            and kind.analyze_string is RegexBasedDetector.analyze_string
            and kind.analyze_line is BasePlugin.analyze_line
        )
        reasons = _PLUGIN_REASON.get(kind.__name__, _FORMATS)
        gate = (
            tuple((regex, _GATE_NEEDS.get((regex.pattern, regex.flags), ())) for regex in plugin.denylist)
            if plain
            else None
        )
        routes.append(_Route(plugin, reasons, gate, _stock_entropy(plugin)))
    return tuple(routes)


def _gate_open(gate: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...], line: str) -> bool:
    """Whether one of a plugin's expressions is in `line`; an expression with needles (`_GATE_NEEDS`) is
    searched for only when one of them is in the line (in lower case, for an expression that ignores
    case, on a line of ASCII: beyond it, such an expression also takes ``ı``, ``ſ`` and the Kelvin sign for
    ``i``, ``s`` and ``k``)."""
    lower = None
    for regex, needles in gate:
        if needles:
            if not regex.flags & re.IGNORECASE:
                if not any(needle in line for needle in needles):
                    continue
            elif line.isascii():
                lower = line.lower() if lower is None else lower
                if not any(needle in lower for needle in needles):
                    continue
        if regex.search(line):
            return True
    return False


_NEEDS_KEYWORD = ("key", "pwd", "pass", "token")
_GATE_NEEDS: dict[tuple[str, int], tuple[str, ...]] = {
    # detect-secrets 1.5's slowest expressions (each starts with a look-behind or a class, so the engine
    # tries it at every character): a match holds one of these (read off each expression: one of its
    # (?:key|pwd|password|pass|token), or a literal it cannot match without). Keyed by the expression's
    # text and flags: a changed expression is searched for on every line, as before.
    (
        '(?:\\s|=|:|"|^)AKC[a-zA-Z0-9]{10,}(?:\\s|"|$)',
        re.UNICODE,
    ): ("AKC",),
    (
        '(?:\\s|=|:|"|^)AP[\\dABCDEF][a-zA-Z0-9]{8,}(?:\\s|"|$)',
        re.UNICODE,
    ): ("AP",),
    (
        "[0-9a-z]{32}-us[0-9]{1,2}",
        re.UNICODE,
    ): ("-us",),
    (
        "\\d{8,10}:[0-9A-Za-z_-]{35}",
        re.UNICODE,
    ): (":",),
    (
        "(?:(?<=\\W)|(?<=^))(?:\\[|)(?:\"|\\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|pass"
        "word|pass|token)(?:\"|\\'|)(?:\\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:\"|\\'|)([0-9a-f]{64})(?"
        ":\"|\\'|)",
        re.IGNORECASE | re.UNICODE,
    ): ("key", "pw", "pass", "token"),
    (
        "(?:(?<=\\W)|(?<=^))(?:\\[|)(?:\"|\\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|pass"
        'word|pass|token)(?:"|\\\'|)(?:\\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\\\'|)([a-z]{24})(?:"|'
        "\\'|)",
        re.IGNORECASE | re.UNICODE,
    ): ("key", "pw", "pass", "token"),
    (
        "(?:https?\\:\\/\\/)[\\w\\-]+\\:([0-9a-f]{64})\\@[\\w\\-]+\\.cloudant\\.com",
        re.IGNORECASE | re.UNICODE,
    ): (".cloudant.com",),
    (
        "(?:https?\\:\\/\\/)[\\w\\-]+\\:([a-z]{24})\\@[\\w\\-]+\\.cloudant\\.com",
        re.IGNORECASE | re.UNICODE,
    ): (".cloudant.com",),
    (
        "(?:(?<=\\W)|(?<=^))(?:\\[|)(?:\"|\\'|)(?:ibm(?:_|-|)cloud(?:_|-|)iam|cloud(?:_|-|)iam|ibm(?:"
        "_|-|)cloud|ibm(?:_|-|)iam|ibm|iam|cloud|)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pas"
        "s|token)(?:\"|\\'|)(?:\\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:\"|\\'|)([a-zA-Z0-9_\\-]{44}(?![a"
        "-zA-Z0-9_\\-]))(?:\"|\\'|)",
        re.IGNORECASE | re.UNICODE,
    ): _NEEDS_KEYWORD,
    (
        "(?:(?<=\\W)|(?<=^))(?:\\[|)(?:\"|\\'|)(?:(?:ibm)?[-_]?cos[-_]?(?:hmac)?|)(?:_|-|)(?:secret[-"
        "_]?(?:access)?[-_]?key)(?:\"|\\'|)(?:\\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:\"|\\'|)([a-f0-9]"
        "{48}(?![a-f0-9]))(?:\"|\\'|)",
        re.IGNORECASE | re.UNICODE,
    ): ("secret",),
    (
        "(?:(?<=\\W)|(?<=^))(?:\\[|)(?:\"|\\'|)(?:softlayer|sl)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|pas"
        "sword|pass|token)(?:\"|\\'|)(?:\\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:\"|\\'|)([a-z0-9]{64})("
        "?:\"|\\'|)",
        re.IGNORECASE | re.UNICODE,
    ): _NEEDS_KEYWORD,
    (
        "(?:http|https)://api.softlayer.com/soap/(?:v3|v3.1)/([a-z0-9]{64})",
        re.IGNORECASE | re.UNICODE,
    ): ("softlayer",),
}
"""What a line must hold (one of) for some of the key-format plugins' expressions to match it."""


def _stock_entropy(plugin: Any) -> str:
    """``"base64"`` or ``"hex"`` when `plugin` is one of detect-secrets' two entropy plugins as they come
    (their own classes and methods, characters each once), whose values `_entropy_values` finds as their
    ``analyze_line`` does; ``""`` otherwise."""
    from detect_secrets.plugins import high_entropy_strings as entropy

    base = entropy.HighEntropyStringsPlugin
    kind = type(plugin)
    if kind not in (entropy.Base64HighEntropyString, entropy.HexHighEntropyString):
        return ""
    if any(getattr(kind, name) is not getattr(base, name) for name in ("analyze_line", "analyze_string")):
        return ""
    if len(set(plugin.charset)) != len(plugin.charset):
        return ""
    if kind is entropy.HexHighEntropyString:
        return "hex" if set(plugin.charset) <= set(string.hexdigits) else ""
    return "base64" if kind.calculate_shannon_entropy is base.calculate_shannon_entropy else ""


def _entropy_values(plugin: Any, line: str, hexa: bool) -> list[str]:
    """What a stock entropy plugin (`_stock_entropy`) finds on `line`: the quoted strings of its
    characters (its expression's second group), once each, whose Shannon entropy is above its limit. Its
    ``analyze_line`` makes an object per string (a SHA-1 of it among them, to put it in a set) and counts
    each of its 64 or 22 characters in the string to take the entropy: about half of such a line's cost.
    The entropy is its sum, term by term in the same order (the characters in the plugin's order), so the
    same float; the hex plugin's lowering for strings of digits is applied as it does it."""
    order = _charset_order(plugin.charset)
    limit = plugin.entropy_limit
    values = []
    found = plugin.regex.findall(line)
    for value in dict.fromkeys(item[1] if isinstance(item, tuple) else item for item in found):
        chars = set(value)
        if len(chars) < _FEWEST_DISTINCT.get(limit, 0):
            continue  # its entropy is at most log2 of its distinct characters
        size = len(value)
        entropy = 0.0
        for char in sorted(chars.intersection(order), key=order.__getitem__):
            p_x = float(value.count(char)) / size
            entropy += -p_x * math.log(p_x, 2)
        # (its test is ``int(value)``: of hex digits, decimal ones alone pass it)
        if hexa and size != 1 and value.isdecimal():
            entropy -= 1.2 / math.log(size, 2)
        if entropy > limit:
            values.append(value)
    return values


_FEWEST_DISTINCT = {4.5: 23, 3.0: 8}
"""For the entropy plugins' default limits, how many distinct characters a string needs to pass: Shannon
entropy is at most log2 of the count (log2(22) = 4.46, log2(8) = 3: not above 3, but a float sum may
land above it, so 8 characters are counted)."""


@functools.cache
def _charset_order(charset: str) -> dict[str, int]:
    return {char: at for at, char in enumerate(charset)}


_KeywordPattern = tuple[re.Pattern[str], int, bool, "re.Pattern[str] | None"]


def _keyword_patterns(filename: str) -> tuple[_KeywordPattern, ...]:
    """The expressions detect-secrets' keyword plugin tries on a line of `filename` (by its file type), each
    with the group of a match that is the value, whether a match starts with a keyword and what a line must
    hold for it to match (`_keyword_values`).

    A line that is a candidate only for its keyword and matches none of them yields nothing, so it skips
    the plugins' per-line work (code snippet, allowlist, filters: most of the cost)."""
    from detect_secrets.util.filetype import determine_file_type

    return _keyword_patterns_of(determine_file_type(filename or "file"))


@functools.cache
def _keyword_patterns_of(filetype: Any) -> tuple[_KeywordPattern, ...]:
    """`_keyword_patterns` by file type (kept by file name, Django's files missed a cache of 64)."""
    from detect_secrets.plugins import keyword

    table = keyword.REGEX_BY_FILETYPE.get(filetype, keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
    led = _keyword_span(keyword.DENYLIST) is not None
    guards = _keyword_guards()
    return tuple(
        (pattern, group, led and pattern.pattern.startswith(keyword.DENYLIST_REGEX), guards.get(pattern))
        for pattern, group in table.items()
    )


@functools.cache
def _keyword_guards() -> dict[re.Pattern[str], re.Pattern[str]]:
    """For some of the keyword plugin's expressions, one that finds what any match of it holds (a quick
    search, with a literal to skip to, that most lines holding a keyword fail)."""
    from detect_secrets.plugins import keyword

    quote = "['\"`]"
    return {
        keyword.FOLLOWED_BY_COLON_QUOTES_REQUIRED_REGEX: re.compile(r":\s*" + quote),
        keyword.FOLLOWED_BY_EQUAL_SIGNS_QUOTES_REQUIRED_REGEX: re.compile(r"=\s*" + quote),
        keyword.FOLLOWED_BY_ARROW_FUNCTION_SIGN_QUOTES_REQUIRED_REGEX: re.compile(r"=>?\s*" + quote),
        keyword.FOLLOWED_BY_QUOTES_AND_SEMICOLON_REGEX: re.compile(quote + ";"),
        keyword.PRECEDED_BY_EQUAL_COMPARISON_SIGNS_QUOTES_REQUIRED_REGEX: re.compile(r"[!=]{2}"),
    }


@functools.cache
def _keyword_span(denylist: tuple[str, ...]) -> int | None:
    """How far before the first hint word (`_KEYWORD_HINTS`) in it a keyword of detect-secrets' list starts,
    at most (``database_key``: 9); None when a keyword holds none or is not a word with optional ``_``."""
    span = 0
    for entry in denylist:
        if not re.fullmatch(r"[a-zñ]+(?:_\??[a-zñ]+)*", entry):
            return None
        for word in {entry.replace("_?", "_"), entry.replace("_?", "")}:
            places = [word.find(hint) for hint in _KEYWORD_HINTS if hint in word]
            if not places:
                return None
            span = max(span, min(places))
    return span


def _keyword_values(line: str, patterns: tuple[_KeywordPattern, ...], first: int) -> list[str | None]:
    """What detect-secrets' keyword plugin finds on `line` with its `patterns` (`_keyword_patterns`): the
    value group of the first match of each expression that matches (None for a group that took no part,
    on which the plugin fails), as its ``analyze_string`` yields them; `line`'s first hint word is at
    `first`.

    Each expression tried at each character of a line cost about 25 microseconds a line. An expression
    with a guard is tried only where its guard is found. A match of one that starts with its keyword starts
    at most `_keyword_span` characters before a hint word, so on an ASCII line (where the hint words are
    found in any case, as the expressions ignore case) it is looked for from there: the first match from
    there is the first of the line (a search from an offset still sees the text before it). The plugin is
    then not run again on the line (`_detect_line`), which read each expression from the line's start."""
    start = 0
    if line.isascii():
        from detect_secrets.plugins.keyword import DENYLIST

        start = max(0, first - (_keyword_span(DENYLIST) or 0))
    values: list[str | None] = []
    for pattern, group, led, guard in patterns:
        if guard is None or guard.search(line):
            match = pattern.search(line, start if led else 0)
            if match is not None:
                values.append(match.group(group))
    return values


@functools.cache
def _stock_keyword_plugin() -> bool:
    """Whether detect-secrets' keyword plugin finds what `_keyword_values` does: its own class, with no
    ``keyword_exclude``."""
    from detect_secrets.plugins.keyword import KeywordDetector

    plugins = [p for p in _Plugins.get()[0] if _PLUGIN_REASON.get(type(p).__name__) == _KEYWORD]
    return all(type(p) is KeywordDetector and p.keyword_exclude is None for p in plugins)


def _is_indirect_reference(line: str, heuristic: Any) -> bool:
    """detect-secrets' `is_indirect_reference` (``secret = get_secret()``), whose expression needs an
    assignment or comparison sign and a bracket pair: without them (most candidate lines) it cannot match,
    and it is slow to find that out (about a millisecond a line)."""
    if not (
        ("=" in line or ":" in line or "!" in line)
        and ("(" in line or "[" in line)
        and (")" in line or "]" in line)
    ):
        return False
    return bool(heuristic.is_indirect_reference(line))


def _entropy(value: str) -> float:
    counts = collections.Counter(value)
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def _lower(text: str) -> str:
    """`text` lower-cased, each character at the offset it has in `text`. ``İ`` is the one character whose
    lower case is two (``i`` and a combining dot): it becomes ``i``, else every offset after it would point
    one character too far."""
    lower = text.lower()
    if len(lower) != len(text):
        lower = text.replace("\u0130", "i").lower()
    return lower


def _keyword_lines(text: str, quoted: bool, offsets: Mapping[str, list[int]]) -> list[int]:
    """Offsets of secret keywords (detect-secrets' list) followed on their line by ``=``, ``:`` or ``(``,
    and by a quote when `quoted` (in source code the keyword plugin only takes quoted values)."""
    hits: list[int] = []
    for word in _KEYWORD_HINTS:
        for at in offsets.get(word, ()):
            if word == "key" and text[at - 1 : at] not in _KEY_PREFIX_ENDS:  # a quick look first
                continue
            if word != "key" or _lower(text[max(0, at - 9) : at]).rstrip("_-").endswith(_KEY_PREFIXES):
                window = text[at : at + 64].split("\n", 1)[0]
                if ("=" in window or ":" in window or "(" in window) and (
                    not quoted or "'" in window or '"' in window or "`" in window
                ):
                    hits.append(at)
    return hits


_QUOTED_VALUE_SUFFIXES = (".py", ".js", ".jsx", ".ts", ".tsx", ".java", ".cs", ".swift", ".cls", ".php")
"""Source files whose secret keyword values detect-secrets only takes in quotes (its per-language rules)."""


def _quoted_or_url(text: str, data: bytes) -> Iterator[tuple[int, str | None]]:
    """``(start, value)`` of each match of a `_QUOTED` expression in `text` (what ``finditer`` of it alone
    finds), and ``(start, None)`` of each `_URL_PASSWORD`, in order (`data`: `_scan_bytes` of `text`). One
    scan finds where either may start; each quote's expression then says what it finds there, after the
    end of its previous match."""
    ends = {'"': 0, "'": 0, "`": 0}
    for place in _QUOTED_OR_URL.finditer(data):
        at = place.start()
        char = text[at]
        if char == ":":
            if _URL_PASSWORD.match(text, at):  # its matches hold no "://" but their first
                yield at, None
            continue
        match = _QUOTED[char].match(text, at) if at >= ends[char] else None
        if match is not None:
            ends[char] = match.end()
            yield at, match.group(1)


def _candidate_lines(
    text: str, data: bytes, offsets: Mapping[str, list[int]], filename: str = ""
) -> dict[int, int]:
    """Start offsets of the lines the detect-secrets plugins must see, with the reasons for each (`data`:
    `_scan_bytes` of `text`)."""
    lines: dict[int, int] = {}

    def add(at: int, reason: int) -> None:
        start = text.rfind("\n", 0, at) + 1
        lines[start] = lines.get(start, 0) | reason

    for at, value in _quoted_or_url(text, data):
        if value is None:
            add(at, _URL)
            continue
        hex_only = _HEX.issuperset(value)
        # Entropy is at most log2(distinct characters): 9 are needed to pass 3.0, 23 to pass 4.5.
        if len(set(value)) < (9 if hex_only else 23):
            continue
        if _entropy(value) > (3.0 if hex_only else 4.5):
            add(at, _ENTROPY)
    if offsets:
        for at in _keyword_lines(text, filename.lower().endswith(_QUOTED_VALUE_SUFFIXES), offsets):
            add(at, _KEYWORD)
    return lines


_WORD_VALUE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_GIVEN_NAME = re.compile(r"""([A-Za-z_][A-Za-z0-9_-]*)["']?\s*(?::=|=>|=(?!=)|:)""")
"""A name a value is given to: an assignment (``=``, ``:=``), a mapping's key (``:``), PHP's ``=>``."""


def _format_matches(text: str, offsets: Mapping[str, list[int]]) -> Iterator[tuple[str, re.Match[str]]]:
    """The matches of each key format's expression in `text`, from where the scans found its prefixes
    (`offsets`): what ``finditer`` of the expression alone finds, in order."""
    for name, starts in offsets.items():
        expression = _FORMAT_EXPRESSIONS.get(name)
        if expression is None:  # a hint word
            continue
        end = 0
        for start in starts:
            match = expression.match(text, start) if start >= end else None
            if match is not None:
                end = match.end()
                yield name, match


def find_secrets(text: str, filename: str = "") -> list[Found]:
    """Every secret value in `text`, sorted, without overlaps (see the module docstring)."""
    return _find_secrets(text, filename, None)


def _find_secrets(text: str, filename: str, ascii: bytes | None) -> list[Found]:
    """`find_secrets`; `ascii`: `_one_byte_each` of the text when the caller has it (`redact_source`
    passes it on to `find_encoded`: one encoding less per file)."""
    found: list[Found] = []
    data = _scan_bytes(text, ascii)
    offsets = _scanned(text, data)
    if offsets:
        for name, match in _format_matches(text, offsets):
            start, end = match.span()
            if f"{name}_v" in match.re.groupindex:
                start, end = match.span(f"{name}_v")
            elif name == "stripe" and start > 0 and text[start - 1] in "sr":
                start -= 1
            found.append(Found(start, end, "key format"))
        found += _assigned_values(text, offsets)
        # "PRIVATE KEY" in text, from the "key"s found already (a scan less)
        keys = offsets.get("key")
        if keys and any(text.startswith("PRIVATE KEY", at - 8) for at in keys if at >= 8):
            for block in _PRIVATE_KEY_BLOCK.finditer(text):
                for body in _KEY_BODY.finditer(text, block.start(1), block.end(1)):
                    found.append(Found(body.start(), body.end(), "private key"))
    lines = _candidate_lines(text, data, offsets, filename) if offsets or _QUOTE_BYTE in data else {}
    if lines and not _skip_file(filename):
        keyword_patterns: tuple[_KeywordPattern, ...] = ()
        hints: list[int] = []  # the keyword hint words' offsets, sorted: where each line's first is
        # A line written again in a file (tests repeat ``password="secret"``) gives the same values: the
        # plugins see only it and, for an allowlist comment, the line before.
        seen: dict[tuple[str, int], list[str]] = {}
        for line_start, reasons in sorted(lines.items()):
            line_end = text.find("\n", line_start)
            if line_end < 0:
                line_end = len(text)
            if line_end - line_start > 4000:  # minified text: known formats still apply
                continue
            line = text[line_start:line_end]
            previous_start = text.rfind("\n", 0, max(0, line_start - 1)) + 1
            previous = text[previous_start : max(previous_start, line_start - 1)]
            # (an allowlist comment on the line before makes the line's values its own)
            seen_key = (line, reasons) if "pragma" not in previous else None
            values = seen.get(seen_key) if seen_key is not None else None
            if values is None:
                values = []
                keyword: list[str | None] | None = None
                if reasons == _KEYWORD:
                    if not hints:
                        hints = sorted(
                            itertools.chain.from_iterable(offsets.get(word, ()) for word in _KEYWORD_HINTS)
                        )
                    first = hints[bisect.bisect_left(hints, line_start)] - line_start
                    keyword_patterns = keyword_patterns or _keyword_patterns(filename)
                    keyword = _keyword_values(line, keyword_patterns, first)
                    if not keyword:
                        reasons = 0  # the keyword plugin's own expressions for this file type cannot match
                    elif None in keyword or not _stock_keyword_plugin():
                        keyword = None  # the plugin says (or fails on a group that took no part)
                if reasons:
                    values = [
                        v
                        for v in _detect_line(line, filename, previous, reasons, keyword)
                        if not _names_itself(line, v)
                    ]
                if seen_key is not None:
                    seen[seen_key] = values
            for value in values:
                at = line.find(value)
                while at >= 0:
                    found.append(Found(line_start + at, line_start + at + len(value), "detect-secrets"))
                    at = line.find(value, at + len(value))
    return _continued(text, _merge(found)) if found else found


def _names_itself(line: str, value: str) -> bool:
    """The value is (part of) the name it is given to (``p1.secret = "secret"``, ``{"api_key": "api_key"}``,
    ``db_password = "password"``): a stand-in, not a secret. Taking it would withhold the name too, on that
    line (the code no longer parses in the index) and, once a run knows the value, wherever the word is
    written (``SECRET_KEY``, ``secrets``)."""
    if not _WORD_VALUE.fullmatch(value):
        return False
    lower = value.lower()
    return any(lower in name.lower() for name in _GIVEN_NAME.findall(line))


def _continued(text: str, found: list[Found]) -> list[Found]:
    """`found` with each value that goes on after a backslash at the end of its line (a shell's or a
    C string's continuation, ``KEY=abc\\`` then ``def``) taken on to its end."""
    if not found or ("\\\n" not in text and "\\\r\n" not in text):
        return found
    out: list[Found] = []
    for item in found:
        end = item.end
        while True:
            match = _CONTINUATION.match(text, end)
            if match is None:
                break
            end = match.end()
        if out and out[-1].end > item.start:  # taken into the value before it
            out[-1] = Found(out[-1].start, max(out[-1].end, end), out[-1].kind)
            continue
        out.append(item if end == item.end else Found(item.start, end, item.kind))
    return out


_CONTINUATION = re.compile(r"\\\r?\n[0-9A-Za-z+/=_-]+")


def _assigned_values(text: str, offsets: Mapping[str, list[int]]) -> list[Found]:
    """Token-shaped values given unquoted to a name that says it holds a credential: ``.env`` files and the
    output of ``env`` (``AWS_SECRET_ACCESS_KEY=wJalr...``), ``export TOKEN=...``, INI and YAML settings
    (``aws_secret_access_key = ...``, ``password: ...``) and an ``Authorization: Bearer ...`` header.
    detect-secrets takes such values only in quotes or in a few file types, and command output has none.

    Only values that look random are taken (`_looks_random`): ``TOKENIZER=bert-base-uncased``, a path, a
    URL, a ``$VARIABLE`` or a name in code (``api_key = settings.API_KEY``) stay."""
    found: list[Found] = []
    for word in _ASSIGNED_HINTS:
        if word == "passw":
            hits = [at for at in offsets.get("pass", ()) if text.startswith(("w", "W"), at + 4)]
        else:
            hits = offsets.get(word, [])
        size = len(word)
        header = word in ("bearer", "token")
        name_rest = _NAME_REST.match
        following = 0  # occurrences before it are inside a name already looked at
        for at in hits:
            if at < following:
                continue
            # Where the name holding the word ends: then an assignment sign and a value must follow.
            after = at + size
            if text[after : after + 1] in _NAME_CHARS:  # (a look first: ``pass`` ends a line, ``key]``)
                after = name_rest(text, after).end()  # type: ignore[union-attr]
            # (a look at the next character first: after most names comes a dot or a bracket)
            value = _AFTER_NAME.match(text, after) if text[after : after + 1] in "\"' \t:=" else None
            if value is None and header and text[at + size : at + size + 1] in " \t":
                value = _AFTER_BEARER.match(text, at + size)
                if value is not None and _looks_random(value.group("v")):
                    found.append(Found(value.start("v"), value.end("v"), "assigned"))
                value = None
            if value is not None and _looks_random(value.group("v")):
                begin = at
                while (
                    begin > 0 and begin > at - 80 and (text[begin - 1].isalnum() or text[begin - 1] in "_.-")
                ):
                    begin -= 1
                name = text[begin:after]
                if (
                    names_credential(name)
                    and not name.lower().startswith("author")
                    and not _NOT_A_CREDENTIAL.search(name)
                ):
                    found.append(Found(value.start("v"), value.end("v"), "assigned"))
            following = after  # (the name holds the word: it ends after it)
    return found


_NAME_REST = re.compile(r"[A-Za-z0-9_.-]*")
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_AFTER_NAME = re.compile(
    r"""["']?[ \t]*(?::=|=|:)[ \t]*(?P<q>["']?)(?P<v>[A-Za-z0-9+/_.~-]{16,512}={0,2})(?P=q)(?=[\s;,#)}]|\Z)"""
)
_AFTER_BEARER = re.compile(r"[ \t]+(?P<v>[A-Za-z0-9+/_.~-]{16,512}={0,2})(?=[\s;,\"']|\Z)")
_NOT_A_CREDENTIAL = re.compile(
    r"(?:^|[-_.])(?:file|path|dir|name|env|type|len|length|size|count|url|uri|endpoint|header|field|var|prefix"
    r"|id|ids|hash|format|kind|mode|style|class|provider|store|scope|scopes|limit|expiry|expires|ttl)$",
    re.I,
)


def _looks_random(value: str) -> bool:
    """A value made of random characters, not of words: 16 or more, letters and digits mixed, entropy above
    3 bits a character, and letters in short pieces between digits and changes of case (``Tq8vR2mXw9Lp``;
    not ``bert-base-uncased-v2``, ``Zamba2HybridDynamicCache``, ``self.api_token``, whose pieces average 3
    letters or more). A hex number (``0x...``), a UUID and documentation's ``EXAMPLE`` or ``...`` values
    are not taken."""
    if len(value) < 16 or value.startswith(("/", "~", ".", "-", "_", "0x")):
        return False
    lower = value.lower()
    if "example" in lower or "..." in value or "xxxx" in lower or _UUID_LIKE.fullmatch(lower):
        return False
    if not any(c.isdigit() for c in value) or not any(c.isalpha() for c in value):
        return False
    pieces = _LETTER_PIECE.findall(value)
    if pieces and sum(map(len, pieces)) >= 3 * len(pieces):
        return False
    return _entropy(value) > 3.0 and not _encoded_text(value)


def _encoded_text(value: str) -> bool:
    """Whether `value` is text in base64 (``key: aGVsbG8...``): the decoders of `Redactor.redact` read it
    and withhold what they find in it, under the placeholder of what they find."""
    if len(value) % 4 == 1 or not _BASE64ISH.fullmatch(value):
        return False
    try:
        data = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4))
    except ValueError:
        return False
    return bool(data) and sum(32 <= b < 127 or b in (9, 10, 13) for b in data) >= 0.95 * len(data)


_BASE64ISH = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


_LETTER_PIECE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_UUID_LIKE = re.compile(r"[0-9a-z]{4,12}(?:-[0-9a-z]{4,12}){3,}")


def _merge(found: list[Found]) -> list[Found]:
    """Sorted, overlapping spans joined (the longer kind wins)."""
    if len(found) < 2:
        return found
    found.sort(key=lambda f: (f.start, -f.end))
    merged = [found[0]]
    for item in found[1:]:
        last = merged[-1]
        if item.start < last.end:
            if item.end > last.end:
                merged[-1] = Found(last.start, item.end, last.kind)
            continue
        merged.append(item)
    return merged


def redact_text(
    text: str,
    key: bytes,
    filename: str = "",
    found: Iterable[Found] | None = None,
    segments: list[tuple[str, str]] | None = None,
) -> tuple[str, dict[str, str]]:
    """`text` with each secret value replaced by its placeholder, and the placeholders it used.

    A value that spans lines (none of the detectors finds one today) keeps its line breaks after the
    placeholder, so line numbers stay right. `segments`, when given, gets ``(placeholder, value)`` for each
    value replaced (`Redactor.restore_edit` puts back what a placeholder replaced).
    """
    spans = list(found) if found is not None else find_secrets(text, filename)
    if not spans:
        return text, {}
    used: dict[str, str] = {}
    parts: list[str] = []
    at = 0
    for span in spans:
        value = text[span.start : span.end]
        marker = placeholder(value, key)
        used[marker] = value
        if segments is not None:
            segments.append((marker, value))
        parts.append(text[at : span.start])
        parts.append(marker + "\n" * value.count("\n"))
        at = span.end
    parts.append(text[at:])
    return "".join(parts), used


_NO_FORMS = KnownForms(())


def redact_source(
    text: str, key: bytes, filename: str = "", segments: list[tuple[str, str]] | None = None
) -> tuple[str, dict[str, str]]:
    """What the index keeps of a file's text (`indexing.parsing`), and the placeholders it used:
    `redact_text`, then the values written encoded, which a run's `Redactor.redact` withholds too
    (`indexing.secret_encodings.find_encoded`: base64 or hex that decodes to text in which the detectors
    find a value, percent-encoded text, and the file's own values in those forms or reversed). Runs of
    base64 and hex digits are sifted first (``sift``: only those that may decode to text or compressed data
    are decoded), so source files full of long identifiers cost little more. Line breaks are kept.

    Unlike a run's `Redactor`, the index does not replace the other bare occurrences of a value found:
    in source code a detector often takes an ordinary word from a test (``password="letmein"``), and
    replacing it wherever it is written rewrote code (``"testclient"`` as a user name and an e-mail).

    `segments`, when given, gets ``(what stands in the redacted text, the text of `text` it replaced)``
    for each value withheld: a placeholder of a value written encoded stands for the encoded text, not for
    the value (`Redactor.restore_edit`)."""
    ascii = _one_byte_each(text)
    found = _find_secrets(text, filename, ascii)
    redacted, used = redact_text(text, key, filename, found, segments)
    forms = KnownForms(used.values()) if used else _NO_FORMS
    spans = find_encoded(redacted, forms, _detected, sift=True, ascii=ascii if redacted is text else None)
    if not spans:
        return redacted, used
    redacted, withheld = _withhold(redacted, spans, key, used, segments)
    return redacted, used | withheld


PATH_PLACEHOLDER = "<secret>"
"""What stands for a secret value written in a file's path in the text made from the path."""


@functools.lru_cache(maxsize=1 << 14)
def redact_path(path: str) -> str:
    """`path` with the secret values written in it (a key as a file name) replaced by `PATH_PLACEHOLDER`:
    the path as the index's searched text holds it (`indexing.rows.search_text`) and as the embedding and
    re-ranking models read it, which may be remote services. It is unkeyed: nothing maps it back, and
    nothing needs to (the index's path columns keep the path as it is, since it is how the file is found
    again). `find_secrets` on a path costs about 8 microseconds."""
    found = find_secrets(path)
    for item in reversed(found):
        path = path[: item.start] + PATH_PLACEHOLDER + path[item.end :]
    return path


def _withhold(
    text: str,
    spans: list[tuple[int, int, str]],
    key: bytes,
    known: Mapping[str, str],
    segments: list[tuple[str, str]] | None = None,
) -> tuple[str, dict[str, str]]:
    """`text` with each span (values written encoded, `indexing.secret_encodings`) replaced by the
    placeholders of its values under `key`, spans that overlap joined; line breaks are kept. A placeholder
    of `known` (placeholder -> value) that a span reaches into is kept whole. Also the placeholders written
    (placeholder -> value). `segments`, when given, gets ``(placeholders written, text replaced)`` for each
    span, with the placeholders of `known` inside the text replaced by their values: what stands for the
    encoded text, and that text as the source holds it (when `known` maps to the source's own text)."""
    spans = spans + [
        (match.start(), match.end(), known[match.group(0)])
        for match in PLACEHOLDER.finditer(text)
        if match.group(0) in known
    ]
    written: dict[str, str] = {}
    parts: list[str] = []
    at = 0
    spans.sort()
    i = 0
    while i < len(spans):
        start, end, value = spans[i]
        values = [value]
        i += 1
        while i < len(spans) and spans[i][0] < end:
            end = max(end, spans[i][1])
            values.append(spans[i][2])
            i += 1
        markers = {value: placeholder(value, key) for value in values}
        written.update((marker, value) for value, marker in markers.items())
        written_markers = "".join(dict.fromkeys(markers.values()))
        if segments is not None:
            original = PLACEHOLDER.sub(lambda m: known.get(m.group(0), m.group(0)), text[start:end])
            segments.append((written_markers, original))
        parts.append(text[at:start])
        parts.append(written_markers + "\n" * text.count("\n", start, end))
        at = end
    parts.append(text[at:])
    return "".join(parts), written


# ---------------------------------------------------------------------------------------------------
# One run's redaction and the way back


class SecretEditRefused(Exception):
    """An edit would change, remove or copy a secret value; the message is for the model."""


_EDITOR_TOOL = "str_replace_based_edit_tool"

LEARN_WAIT = 60
"""Seconds `Redactor.redact` waits for `Redactor.learn_in_background` (the kernel's 10,000 files holding a
placeholder take a few seconds)."""


class Redactor:
    """Redacts what one agent run sends out and maps placeholders back in its edits. Thread-safe."""

    def __init__(self, key: bytes | None = None, *, allow_values: bool = False) -> None:
        """`allow_values`: send values as they are and allow edits that change them (logged once)."""
        self.key = key if key is not None else _random.token_bytes(32)
        self.allow_values = allow_values
        self._values: dict[str, str] = {}
        self._sources: dict[str, set[str]] = {}  # what stands in a file's redaction -> the texts it replaced
        self._configured: set[str] = set()  # placeholders of `learn_values`' credentials
        self._everywhere_cache: tuple[tuple[int, int], dict[str, str]] | None = None
        self._withheld: set[str] = set()
        self._lock = threading.Lock()
        self._forms: tuple[int, KnownForms] | None = None
        self._learnt = threading.Event()  # cleared while `learn_in_background` runs
        self._learnt.set()
        if allow_values:
            log.warning(
                "agent.allow_secret_values is true: secret values in the code are sent to the model as they "
                "are, and the agent may change them"
            )

    @property
    def withheld(self) -> int:
        """How many distinct secret values were kept from the model so far."""
        return len(self._withheld)

    @property
    def known(self) -> int:
        """How many distinct secret values this run knows (met or learnt), plus those configured. It only
        grows, and `redact`'s result depends on nothing but the text and these values (and which of them
        are configured, `_plain_word`): a redaction made while it was n is what
        `redact` returns while it is still n (`agent.redaction.RedactionCache` relies on it)."""
        with self._lock:
            return len(self._values) + len(self._configured)  # a learnt word configured later counts anew

    def learn(self, text: str, filename: str = "") -> None:
        """Remember the values in `text` (a file the agent is about to edit, or one the index withheld
        values of), without counting them: those the index withholds (`redact_source`). What each
        placeholder replaced in the file (the value, or the value's encoded text) is remembered for
        `restore_edit`."""
        self._learn_file(text, filename)

    def _learn_file(self, text: str, filename: str) -> dict[str, set[str]]:
        """`learn`; returns what each placeholder (or joined placeholders) replaced in `text`."""
        segments: list[tuple[str, str]] = []
        _, used = redact_source(text, self.key, filename, segments)
        if not used:  # most files: no lock taken, no table built
            return {}
        here: dict[str, set[str]] = {}
        for markers, original in segments:
            here.setdefault(markers, set()).add(original)
        with self._lock:
            self._values.update(used)
            for markers, originals in here.items():
                self._sources.setdefault(markers, set()).update(originals)
        return here

    def learn_values(self, values: Iterable[str]) -> None:
        """Remember `values` as secret values, whatever their context: credentials the run was configured
        with (an MCP server's token, the model provider's key), which no detector needs to recognise in a
        tool's output. Values shorter than 6 characters are left out (`redact` replaces none shorter)."""
        with self._lock:
            for value in values:
                if len(value) >= 6:
                    marker = placeholder(value, self.key)
                    self._values[marker] = value
                    self._configured.add(marker)
                    self._forms = None  # a plain word configured joins the forms searched for

    def learn_in_background(self, files: Callable[[], Iterable[tuple[str, str]]]) -> threading.Thread:
        """Learn the values of the ``(text, filename)`` pairs that `files` yields, in a thread. Until it
        is done (at most `LEARN_WAIT` seconds), `redact` waits: a value that a command prints bare (``print
        (settings.KEY)``) has no detectable context and is withheld only once it is known."""

        def work() -> None:
            try:
                for text, filename in files():
                    self.learn(text, filename)
            except Exception:  # an index that cannot be read: the detectors still apply
                log.warning("could not learn the workspace's secret values in advance", exc_info=True)
            finally:
                self._learnt.set()

        self._learnt.clear()
        thread = threading.Thread(target=work, name="agentls-secret-values", daemon=True)
        thread.start()
        return thread

    def redact(self, text: str, filename: str = "") -> str:
        """`text` with every secret value it holds (found now, or seen before in this run) replaced. A
        plain word seen before (`_plain_word`: ``password="secret"`` in a test) is replaced only where the
        detectors find it, unless it is a configured credential."""
        if self.allow_values or not text:
            return text
        if not self._learnt.wait(LEARN_WAIT):
            log.warning(
                "the workspace's secret values are still being read after %d s; redacting without them",
                LEARN_WAIT,
            )
            self._learnt.set()
        redacted, used = redact_text(text, self.key, filename)
        with self._lock:
            self._values.update(used)
            self._withheld.update(used)
            known = sorted(self._everywhere().items(), key=lambda item: len(item[1]), reverse=True)
        for marker, value in known:
            if len(value) >= 6 and value in redacted:
                redacted = _replaced_outside_placeholders(redacted, value, marker)
                with self._lock:
                    self._withheld.add(marker)
        spans = find_encoded(redacted, self._known_forms(), _detected)
        return self._withhold(redacted, spans) if spans else redacted

    def _everywhere(self) -> dict[str, str]:
        """The values known (placeholder -> value) that are withheld wherever they are written: all but
        the plain words met in a text (`_plain_word`), which are withheld where the detectors find them.
        Called with the lock held; kept until a value is added or configured."""
        size = (len(self._values), len(self._configured))
        if self._everywhere_cache is None or self._everywhere_cache[0] != size:
            values = {
                marker: value
                for marker, value in self._values.items()
                if marker in self._configured or not _plain_word(value)
            }
            self._everywhere_cache = (size, values)
        return self._everywhere_cache[1]

    def _known_forms(self) -> KnownForms:
        """The encoded forms of the values withheld wherever they are written (rebuilt when a value was
        added)."""
        with self._lock:
            if self._forms is None or self._forms[0] != len(self._values):
                self._forms = (len(self._values), KnownForms(self._everywhere().values()))
            return self._forms[1]

    def _withhold(self, text: str, spans: list[tuple[int, int, str]]) -> str:
        """`text` with each span (values written encoded) replaced by the placeholders of its values
        (`_withhold`, as the index does), which are remembered and counted."""
        with self._lock:
            known = dict(self._values)
        redacted, written = _withhold(text, spans, self.key, known)
        with self._lock:
            self._values.update(written)
            self._withheld.update(written)
        return redacted

    def redact_value(self, value: Any) -> Any:
        """`redact` applied to every string inside lists, tuples and dicts (keys left alone)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_value(v) for v in value]
        return value

    def restore(self, text: str) -> str:
        """Placeholders this run knows replaced by their values."""
        with self._lock:
            values = dict(self._values)
        return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)

    def restore_edit(
        self, tool: str, input: Mapping[str, Any], read: Callable[[str], str | None]
    ) -> Mapping[str, Any]:
        """The editor tool's `input` with placeholders mapped back to the values, so the edit keeps them.

        `read(path)` gives the file's current text (None when it does not exist). Raises
        `SecretEditRefused` when the edit would change or remove a secret value, or copy one to a new
        place (a placeholder added), unless values are allowed. Other tools are returned unchanged: a
        command sees placeholders as plain text, so it cannot print or send a value.

        A placeholder is put back as the text it replaced in the file (`_source_tokens`): for a value
        written encoded (base64, hex, percent-encoded) that is the encoded text, not the value, so an edit
        that copies or keeps the line writes back the file's own bytes.
        """
        if tool != _EDITOR_TOOL or not isinstance(input, Mapping):
            return input
        command = input.get("command")
        path = input.get("path")
        fields = [name for name in ("old_str", "new_str", "file_text", "insert_text") if name in input]
        if command not in {"str_replace", "create", "insert"} or not isinstance(path, str):
            return input
        mentions = any(isinstance(input[f], str) and "<secret:" in input[f] for f in fields)
        if not mentions and command != "create":
            return input
        current = read(path)
        here = self._learn_file(current, path) if current is not None else {}
        before: collections.Counter[str]
        after: collections.Counter[str]
        if command == "str_replace":
            before = _placeholders(input.get("old_str"))
            after = _placeholders(input.get("new_str"))
        elif command == "insert":
            before = collections.Counter()
            after = _placeholders(input.get("new_str")) + _placeholders(input.get("insert_text"))
        else:
            before = _placeholders(redact_source(current, self.key, path)[0] if current else None)
            after = _placeholders(input.get("file_text"))
        with self._lock:
            unknown = [p for p in (before + after) if p not in self._values]
        if unknown:
            raise SecretEditRefused(
                f"{unknown[0]} stands for a secret value that is not in {path}; write the edit without it "
                "(placeholders can only stay where they are)."
            )
        if before != after and not self.allow_values:
            removed = sorted((before - after).elements())
            added = sorted((after - before).elements())
            what = (
                f"change or remove the secret value {removed[0]}"
                if removed
                else f"copy the secret value {added[0]} to a new place"
            )
            raise SecretEditRefused(
                f"Refused: this edit would {what} in {path}. Secret values are withheld from you and "
                "must stay as they are: keep each placeholder exactly once, where it was. If the user "
                "wants the value changed, say so in your summary (they can set "
                "agent.allow_secret_values = true)."
            )
        tokens = {
            k: self._source_tokens(v, here) for k, v in input.items() if k in fields and isinstance(v, str)
        }
        # placeholder -> the texts old_str's occurrences stand for, in order (a value written two ways)
        chosen: dict[str, list[str]] = {}
        if command == "str_replace" and current is not None and "old_str" in tokens:
            chosen = _choose_in(tokens["old_str"], current)
        restored = {k: _assemble(t, {m: list(o) for m, o in chosen.items()}, path) for k, t in tokens.items()}
        return {k: restored.get(k, v) for k, v in input.items()}

    def _source_tokens(self, text: str, here: Mapping[str, set[str]]) -> list[_Token]:
        """`text` (a field of an edit) cut into its text and its placeholders, each placeholder with the
        texts it may stand for: what it replaced in the edited file (`here`) when it holds it, else in the
        files this run learnt (`learn`); a value met in no file (a configured credential, command output)
        is the value. A run of placeholders that stood for one encoded span is one token."""
        if "<secret:" not in text:
            return [text]
        with self._lock:
            values = dict(self._values)
            learnt = {
                markers: sorted(self._sources[markers])
                for markers in _runs_in(text)
                if markers in self._sources
            }

        def originals(markers: str) -> list[str] | None:
            found = here.get(markers)
            return sorted(found) if found else learnt.get(markers)

        tokens: list[_Token] = []
        at = 0
        for match in _PLACEHOLDER_RUN.finditer(text):
            tokens.append(text[at : match.start()])
            at = match.end()
            run = match.group(0)
            whole = originals(run)
            if whole is not None:
                tokens.append(_Placeholder(run, whole, True))
                continue
            pieces = PLACEHOLDER.findall(run)
            for i, markers in enumerate(pieces):
                known = originals(markers) or [values.get(markers, markers)]
                tokens.append(_Placeholder(markers, known, i == len(pieces) - 1))
        tokens.append(text[at:])
        return tokens


_PLAIN_WORD_CHARS = 16
"""Plain words this long or longer (a pass phrase) are withheld wherever written, as random values are."""


def _plain_word(value: str) -> bool:
    """A value met in a text that is made of letters only, words joined by ``_``, ``-``, a space or a dot,
    shorter than `_PLAIN_WORD_CHARS` (``secret``, ``password``, ``changeme``, ``testclient``,
    ``FORBIDDEN_VALUE``): a test's or an example's stand-in far more often than a credential, and a word
    written all over other code. Such a value is withheld where the detectors find it (in its context:
    ``password="secret"``), not wherever the word is written. A value with a digit or a symbol in it
    (``hunter2``, ``p@ssword``) or a configured credential (`Redactor.learn_values`) is withheld
    everywhere."""
    return len(value) < _PLAIN_WORD_CHARS and all(piece.isalpha() for piece in _WORD_SEPARATORS.split(value))


_WORD_SEPARATORS = re.compile(r"[_\- .]")


class _Placeholder(NamedTuple):
    """A placeholder (or a run of them standing for one encoded span) in an edit."""

    markers: str
    originals: list[str]
    """The texts it may stand for."""
    last: bool
    """Whether text follows it (not another placeholder of the same run)."""


_Token = str | _Placeholder

_MAX_CHOICES = 64
"""Ways of reading an old_str whose placeholders stand for more than one text that are tried."""


def _runs_in(text: str) -> set[str]:
    """The runs of placeholders in `text`, and each of their placeholders."""
    found = set(PLACEHOLDER.findall(text))
    found.update(match.group(0) for match in _PLACEHOLDER_RUN.finditer(text))
    return found


def _choose_in(tokens: list[_Token], current: str) -> dict[str, list[str]]:
    """For an old_str whose placeholders stand for more than one text in the file (the value bare on one
    line, encoded on another): the reading of it that the file holds, as the texts each placeholder's
    occurrences stand for, in order. Empty when there is nothing to choose or no single reading is in
    the file (the edit is then refused by `_assemble`)."""
    ambiguous = [t for t in tokens if isinstance(t, _Placeholder) and len(t.originals) > 1]
    if not ambiguous:
        return {}
    readings: dict[str, dict[str, list[str]]] = {}
    for n, combination in enumerate(itertools.product(*(t.originals for t in ambiguous))):
        if n == _MAX_CHOICES:
            return {}
        picks = iter(combination)
        choice: dict[str, list[str]] = {}
        for token in tokens:
            if isinstance(token, _Placeholder):
                choice.setdefault(token.markers, []).append(
                    next(picks) if len(token.originals) > 1 else token.originals[0]
                )
        text = _assemble(tokens, {m: list(o) for m, o in choice.items()}, "")
        if text in current:
            readings.setdefault(text, choice)
    return next(iter(readings.values())) if len(readings) == 1 else {}


def _assemble(tokens: list[_Token], chosen: dict[str, list[str]], path: str) -> str:
    """The edit's text with each placeholder put back as the text it stands for (the next of `chosen`'s
    for it, when its texts are more than one); the line breaks kept after a placeholder in the redacted text
    (`redact_text`, `_withhold`) are taken back with it. Raises `SecretEditRefused` when a placeholder
    stands for more than one text and which one is meant is not known."""
    parts: list[str] = []
    skip = ""
    for token in tokens:
        if isinstance(token, str):
            parts.append(token[len(skip) :] if skip and token.startswith(skip) else token)
            skip = ""
            continue
        markers, originals, last = token
        if len(originals) == 1:
            original = originals[0]
        elif chosen.get(markers):
            original = chosen[markers].pop(0)
        else:
            raise SecretEditRefused(
                f"{markers} stands for a secret value written in more than one way in {path} (as it is "
                "and encoded, or encoded two ways) and this edit does not say which; make the edit "
                "without it, leaving the lines that hold it as they are."
            )
        parts.append(original)
        skip = "\n" * original.count("\n") if last else ""
    return "".join(parts)


_PLACEHOLDER_SPLIT = re.compile(f"({PLACEHOLDER.pattern})")
_PLACEHOLDER_RUN = re.compile(f"(?:{PLACEHOLDER.pattern})+")


def _replaced_outside_placeholders(text: str, value: str, marker: str) -> str:
    """`text` with `value` replaced by `marker` wherever it is written, except inside a placeholder: a value
    that is a word of one (Django's tests log in with ``password="secret"``, which the keyword plugin takes)
    made ``<<secret:ead256cc>:b975d26a>`` of the placeholders already in the text."""
    if "<secret:" not in text:
        return text.replace(value, marker)
    parts = _PLACEHOLDER_SPLIT.split(text)  # text, placeholder, text, ..., text
    return "".join(part if i % 2 else part.replace(value, marker) for i, part in enumerate(parts))


def _detected(text: str) -> list[tuple[int, int, str]]:
    """`find_secrets` as ``(start, end, value)`` (for decoded text)."""
    return [(f.start, f.end, text[f.start : f.end]) for f in find_secrets(text)]


def _placeholders(text: object) -> collections.Counter[str]:
    if not isinstance(text, str):
        return collections.Counter()
    return collections.Counter(PLACEHOLDER.findall(text))

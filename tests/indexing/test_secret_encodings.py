"""Secret values a command prints encoded are withheld too (`indexing.secret_encodings` through
`indexing.secrets.Redactor.redact`): base64 at every alignment, wrapped or not, either alphabet; hex in
either case, wrapped or with byte separators; percent-encoding; reversed text; compressed then encoded. An
unknown value in a known format is found by decoding. Ordinary output (pytest, git, hashes, UUIDs,
base64 of text without a secret) is left as it is.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import random
import re
import time
import zlib
from collections.abc import Callable
from urllib.parse import quote

import pytest

from indexing import secret_encodings
from indexing.secrets import Redactor, placeholder, redact_source

KEY = b"k" * 32
AKIA = "AKIAIOSFODNN7Q2WXYZA"
WJALR = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8rT3vLmNK"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dcQ9xZ"
KNOWN = (AKIA, WJALR, STRIPE)
GITHUB = "ghp_" + "Zq3Xv8Lm2Nb7Kc1Jd6Hf5Gs4Ta9Wr0Ey2Ui8"
"""In no file: only its format (found by decoding) can give it away."""

SETTINGS = f'''"""Deployment settings."""
AWS_ACCESS_KEY_ID = "{AKIA}"
AWS_SECRET_ACCESS_KEY = "{WJALR}"
STRIPE_KEY = "{STRIPE}"


def region() -> str:
    return "eu-west-1"
'''


def encodings(value: str) -> set[str]:
    """Every form of `value` the leak checks look for: the value, reversed, percent-encoded, its hex and
    its base64 at each alignment (the characters that do not depend on the bytes around it)."""
    data = value.encode()
    forms = {value, value[::-1], quote(value, safe=""), data.hex()}
    for k in range(3):
        whole = (len(data) - k) // 3 * 3
        forms.add(base64.b64encode(data[k : k + whole]).decode())
    return forms


def leaks(text: str, values: tuple[str, ...] = KNOWN) -> list[str]:
    """The values of which some form is in `text`, once line breaks, the URL-safe alphabet and (for hex)
    every separator are taken out, or in what its base64 and hex runs decompress to."""
    flat = text.replace("\r", "").replace("\n", "")
    b64 = flat.replace("-", "+").replace("_", "/")
    hexa = re.sub(r"\\x|[^0-9a-fA-F]", "", text).lower()
    seen = [flat, b64, hexa, *_decompressed(b64), *_decompressed(hexa)]
    return [v for v in values if any(f in s for f in encodings(v) for s in seen)]


def _decompressed(text: str) -> list[str]:
    """What the base64 runs (at each alignment) or hex runs of `text` decompress to (gzip, zlib, bzip2,
    xz): an independent decoder, so the check does not trust the code it checks."""
    found = []
    for run in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", text):
        parts = [
            base64.b64decode,
            *[lambda r, k=k: base64.b64decode(r[k:][: (len(r) - k) // 4 * 4]) for k in (1, 2, 3)],
        ]
        for decode in [*parts, lambda r: bytes.fromhex(r[: len(r) // 2 * 2])]:
            try:
                data = decode(run)
            except ValueError:
                continue
            for inflate in (
                zlib.decompressobj(wbits=47).decompress,
                bz2.BZ2Decompressor().decompress,
                lzma.LZMADecompressor().decompress,
            ):
                try:
                    found.append(inflate(data).decode("utf-8", "replace"))
                except (zlib.error, OSError, ValueError, EOFError, lzma.LZMAError):
                    continue
    return found


def _learnt() -> Redactor:
    redactor = Redactor(KEY)
    redactor.learn(SETTINGS, "settings.py")
    return redactor


def _wrap(text: str, width: int) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width)) + "\n"


DATA = SETTINGS.encode()
ENCODERS: dict[str, Callable[[bytes], str]] = {
    "base64 (wrapped at 76)": lambda d: base64.encodebytes(d).decode(),
    "base64 -w0, 1 byte in": lambda d: base64.b64encode(b"#" + d).decode(),
    "base64 -w0, 2 bytes in": lambda d: base64.b64encode(b"##" + d).decode(),
    "base64 of the tail (tail -c +8 | base64)": lambda d: base64.b64encode(d[7:]).decode(),
    "url-safe base64": lambda d: base64.urlsafe_b64encode(b"#" + d).decode(),
    "hex": lambda d: d.hex(),
    "HEX": lambda d: d.hex().upper(),
    "xxd -p": lambda d: _wrap(d.hex(), 60),
    "od -An -tx1": lambda d: _wrap(d.hex(" "), 48),
    "\\x escapes": lambda d: "".join(f"\\x{b:02x}" for b in d),
    "percent-encoded (urllib.parse.quote(s, safe=''))": lambda d: quote(d.decode(), safe=""),
    "reversed": lambda d: d.decode()[::-1],
    "gzip | base64": lambda d: base64.encodebytes(gzip.compress(d)).decode(),
    "zlib | hex": lambda d: zlib.compress(d).hex(),
    "bzip2 | base64": lambda d: base64.b64encode(bz2.compress(d)).decode(),
    "xz | base64": lambda d: base64.encodebytes(lzma.compress(d)).decode(),
}


@pytest.mark.parametrize("name", ENCODERS)
def test_a_known_value_printed_encoded_is_withheld(name: str) -> None:
    output = "$ command:\n" + ENCODERS[name](DATA) + "\n[exit 0]\n"
    assert leaks(output)  # the check sees the values in the encoded output
    redactor = _learnt()
    redacted = redactor.redact(output)
    assert not leaks(redacted), redacted
    assert "<secret:" in redacted  # the value's, or (reversed, quoted) one the detectors saw there
    assert redacted.startswith("$ command:\n") and redacted.endswith("\n[exit 0]\n")


def test_only_the_groups_holding_the_value_are_withheld() -> None:
    """What surrounds the value in the encoded file stays readable."""
    encoded = base64.b64encode(DATA).decode()
    redacted = _learnt().redact(encoded)
    assert redacted.startswith(encoded[:32]) and redacted.endswith(encoded[-32:])
    assert redacted.count("<secret:") == 3


def test_a_value_next_to_a_placeholder_or_another_token_takes_nothing_of_theirs() -> None:
    redactor = _learnt()
    hello = base64.b64encode(b"hello world, nothing here").decode()
    stripe = base64.b64encode(STRIPE.encode()).decode()
    redacted = redactor.redact(f"{AKIA}{stripe} {hello}\nkey: {stripe}\n")
    akia, live = placeholder(AKIA, KEY), placeholder(STRIPE, KEY)
    assert redacted == f"{akia}{live} {hello}\nkey: {live}\n"


@pytest.mark.parametrize(
    "encode",
    [
        lambda d: base64.b64encode(d).decode(),
        lambda d: base64.urlsafe_b64encode(d).decode(),
        lambda d: d.hex(),
        lambda d: base64.encodebytes(gzip.compress(d)).decode(),
    ],
    ids=["base64", "url-safe base64", "hex", "gzip | base64"],
)
def test_an_unknown_value_in_a_known_format_is_found_by_decoding(encode: Callable[[bytes], str]) -> None:
    redactor = Redactor(KEY)  # knows nothing yet
    output = "deploy log:\n" + encode(f"export GH_TOKEN={GITHUB}\nmake deploy\n".encode()) + "\n"
    assert leaks(output, (GITHUB,))
    redacted = redactor.redact(output)
    assert not leaks(redacted, (GITHUB,)), redacted
    assert placeholder(GITHUB, KEY) in redacted and redactor.withheld == 1
    # Learnt: printed bare later in the run, it is withheld as well.
    assert redactor.redact(f"token: {GITHUB}\n") == f"token: {placeholder(GITHUB, KEY)}\n"


PYTEST_OUTPUT = """\
============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-8.3.3, pluggy-1.5.0
rootdir: /home/me/project
plugins: xdist-3.6.1, timeout-2.3.1
collected 4 items

tests/test_api_client.py::test_fetch_user_by_identifier PASSED           [ 25%]
tests/test_api_client.py::test_retries_on_server_errors PASSED           [ 50%]
tests/test_encoding.py::test_roundtrip[aGVsbG8gd29ybGQ=] PASSED           [ 75%]
tests/test_encoding.py::test_hash FAILED                                 [100%]

=================================== FAILURES ===================================
E       AssertionError: assert digest == expected
E        +  where digest = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
========================= 1 failed, 3 passed in 0.12s ==========================
"""

GIT_OUTPUT = """\
commit 41f0aca5b2d9e8f7c6a5b4c3d2e1f0a9b8c7d6e5
Author: Dev Eloper <dev@example.com>
Date:   Sun Dec 6 08:23:25 2026 +0000

    Review: the budget check ahead of each call goes over the agent's limits

diff --git a/agent/loop.py b/agent/loop.py
index 153fbdf..1862dcc 100644
--- a/agent/loop.py
+++ b/agent/loop.py
@@ -553,8 +553,10 @@ class Agent:
-        request_id = "req_011CSHcSuNqvAj4RvMQwQGZJ"
+        request_id = uuid.UUID("123e4567-e89b-12d3-a456-426614174000").hex
 3323556 Review: batch's task ids share one canonical-JSON sha256 helper
integrity sha512-Q2f6Lrg9yVqYX1zBpN8J0tXc7ZyV5rFqW3m2s1Hk9aD4uE6oP0lK8jH7gT5fR3eD2cB1aZ0yX9wV8uT7sR6qPw==
Authorization: Basic dXNlcjpwYXNzd29yZA==
payload eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ
"""


@pytest.mark.parametrize("ordinary", [PYTEST_OUTPUT, GIT_OUTPUT], ids=["pytest", "git"])
def test_ordinary_output_is_left_alone_and_an_encoded_value_in_it_is_not(ordinary: str) -> None:
    redactor = _learnt()
    assert redactor.redact(ordinary) == ordinary
    secret_line = base64.b64encode(f"STRIPE_KEY = '{STRIPE}'\n".encode()).decode()
    redacted = redactor.redact(ordinary + secret_line + "\n" + ordinary)
    assert not leaks(redacted)
    assert redacted.startswith(ordinary) and redacted.endswith(ordinary)


def test_five_megabytes_of_output_take_seconds_at_most() -> None:
    """A generous bound (the figure is about half a second here): what would fail is a search that grows
    with the output times the number of values, or a decoding per character."""
    redactor = _learnt()
    redactor.learn(
        "\n".join(f'TOKEN_{n} = "tok{n:04d}x9Qe7Lp2Vz4Rk8Ws1Yb6Nc3Md5"' for n in range(200)), "t.py"
    )
    lines = (f"tests/unit/test_mod{n % 50}.py::test_case_{n} PASSED [{n % 100:3d}%]" for n in range(200_000))
    outputs = {
        "pytest": "\n".join(lines)[: 5 << 20],
        "base64": base64.encodebytes((DATA + b"x = 1\n" * 700_000)[:3_900_000]).decode(),
    }
    for name, output in outputs.items():
        start = time.perf_counter()
        redacted = redactor.redact(output)
        elapsed = time.perf_counter() - start
        assert elapsed < 20, (name, elapsed)
        assert not leaks(redacted[:4000])


# ---------------------------------------------------------------------------------------------------
# The index's sifting (`find_encoded(..., sift=True)`, through `redact_source`)


def _reference_sift(text: str) -> list[int]:
    """Where the runs start that the sifting decodes, by its rules written plainly: each run (its first
    line) whose first groups may be text or compressed data (`_may_hold_text`), or, 20 characters or more
    long, that holds text further on (`_text_later`); a run that passes by its first groups takes the
    wholly base64 lines after it."""
    starts: list[int] = []
    end = 0
    for match in re.finditer(r"[A-Za-z0-9+/_-]{16,}", text):
        run = match.group(0)
        if match.start() < end:  # in the lines of a run decoded already
            continue
        long = len(run) >= secret_encodings._LONG_RUN
        first = (run[0] in secret_encodings._FIRSTS or long) and secret_encodings._may_hold_text(run)
        later = (
            len(run) >= 20
            and (run[0] in secret_encodings._UTF8_FIRSTS or long)
            and secret_encodings._text_later(run)
        )
        if first:
            starts.append(match.start())
            end = secret_encodings._B64_RUN.match(text, match.start()).end()  # type: ignore[union-attr]
        elif later:  # decoded alone: the lines after it are runs of their own
            starts.append(match.start())
    return starts


def test_the_sifting_walk_decodes_the_runs_its_rules_pass() -> None:
    rng = random.Random(3)
    pieces = (
        *("CDIJ", "Qlpo", "eJ", "H4sI", "abcd", "0234", "7fd377a", "1f8b", "wxyz", "ghij", "_-+/", "AB"),
        *("ZXhwb3J0", "w6ll", "77u/", "48656c6c6f", "deadbeef", "snake_case_name", "CamelCaseName"),
        *(" ", "\n", ".", "=", "x" * 30),
        # each first character the walk decides a short run by (`_NEVER_SHORT`, `_LEAD_OR_COMPRESSED`,
        # `_COMPRESSED_ONLY`), at the start of text, compressed data and hex
        *("eAE", "eF4", "eN", "fd377a", "fD377A", "FD377A", "/Td6WFo", "_Td6WFo", "425a68", "78", "Q", "H"),
        *("g", "v", "+", "-", "e", "f", "1", "/", "_", "Zm9v", "4865", "é", "\u0130", "\u212a"),
        *("c3a92068656c6c6f20776f726c64", "C3A92068656C6C6F20776F726C64"),  # hex: text after "é"
    )
    passed = 0
    for _ in range(6000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(2, 30)))
        sifted = [match.start() for match in secret_encodings._sifted_runs(text)]
        assert sifted == _reference_sift(text), text
        if text.isascii():  # the text's bytes given, as `redact_source` gives them
            given = secret_encodings._sifted_runs(text, text.encode("ascii"))
            assert [match.start() for match in given] == sifted, text
        passed += len(sifted)
    assert passed > 2000


@pytest.mark.parametrize(
    "start",
    ["\ufeff", "é ", "日本語のメモ ", "Überweisung an Jörg: ", "\x00\x01"],
    ids=["byte order mark", "accent", "Japanese", "German", "binary"],
)
@pytest.mark.parametrize(
    "encode",
    [lambda d: base64.b64encode(d).decode(), lambda d: base64.urlsafe_b64encode(d).decode(), bytes.hex],
    ids=["base64", "url-safe base64", "hex"],
)
@pytest.mark.parametrize("value", [GITHUB, AKIA], ids=["long", "short"])
def test_the_index_withholds_a_value_encoded_after_text_that_is_not_ascii(
    start: str, encode: Callable[[bytes], str], value: str
) -> None:
    # The index decodes a run when its first groups are text; text that starts beyond ASCII (or with a
    # few bytes of binary) was kept encoded as it was, value and all.
    body = f"{start}aws_access_key_id = {value}" if value is AKIA else f"{start}export GH_TOKEN={value}\n"
    encoded = encode(body.encode())
    source = f"# fixture\nDATA = {encoded}\n"
    redacted, used = redact_source(source, KEY, "notes.txt")
    assert encoded not in redacted, redacted
    assert value in used.values()


def test_base64_on_the_lines_after_text_that_is_not_ascii_is_decoded_on_its_own() -> None:
    # A run that is text only further on is decoded alone: joined to it, the next line (base64 of its
    # own, after the first line's padding) was cut at the "=" and its value missed.
    first = base64.b64encode("é and some more words".encode()).decode()
    second = base64.b64encode(b"password = 'hunter2!x'\n").decode()
    assert first.endswith("=")
    source = f"# fixture\n{first}\n{second}\n"
    redacted, used = redact_source(source, KEY, "notes.txt")
    assert "hunter2!x" in used.values() and second not in redacted, redacted

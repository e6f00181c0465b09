"""What the index keeps of a source file holding secret values written encoded, or of a file whose name is a
key (`indexing.secrets.redact_source` and `redact_path`, through `indexing.parsing.prepare_text`, which
makes the rows a parser process makes).

A value written only in base64, hex, percent-encoded or compressed then encoded is withheld in the index
as a run's `Redactor` withholds it (the same decoders, `indexing.secret_encodings.find_encoded`, with the
runs of base64 and hex digits sifted first); code whose long identifiers, hashes and base64 hold no value
is stored as it is. A key in a file's path is withheld from the searched text and from what the
embedding and re-ranking models read; the path columns keep the path.
"""

from __future__ import annotations

import base64
import bz2
import dataclasses
import gzip
import json
import zlib
from collections.abc import Callable
from urllib.parse import quote

import pyarrow as pa
import pytest

from indexing.models import SearchHit
from indexing.parsing import Prepared, prepare_text
from indexing.rerank import document_text
from indexing.secret_encodings import KnownForms, find_encoded
from indexing.secrets import Redactor, _detected, placeholder, redact_path, redact_source, redact_text
from indexing.service import embedding_text
from tests.benchmarks.test_index_speed import LEXICAL
from tests.indexing.test_secret_encodings import GITHUB, STRIPE, leaks

KEY = b"k" * 32
LIMITS = dataclasses.replace(LEXICAL.parse_limits(), secret_key=KEY)
AKIA = "AKIA" + "N4M3XQ7M2LPR5TWK"
PASSWORD = "p4/Ss+w0rd/Zq8vR2mXw9LpZ"
SETTINGS = f"export GH_TOKEN={GITHUB}\nmake deploy\n".encode()
"""What the encoded forms below encode: a token in a known format, which only decoding reveals."""


SOURCES: dict[str, tuple[str, Callable[[], str]]] = {
    # Unquoted, where the detectors' entropy plugin (quoted strings only) does not look.
    "base64 in a comment": (
        "deploy.py",
        lambda: f"# fixture: {base64.b64encode(SETTINGS).decode()}\ndef deploy() -> None:\n    pass\n",
    ),
    "base64 wrapped at 76, in a document": (
        "NOTES.md",
        lambda: "# Deploying\n\nThe settings:\n\n" + base64.encodebytes(SETTINGS * 3).decode() + "\nDone.\n",
    ),
    "url-safe base64 in YAML": (
        "ci.yaml",
        lambda: f"deploy:\n  blob: {base64.urlsafe_b64encode(b'#' + SETTINGS).decode()}\n  stage: prod\n",
    ),
    "hex": ("deploy.txt", lambda: f"settings (hex): {SETTINGS.hex()}\n"),
    "HEX": ("deploy.txt", lambda: f"settings (hex): {SETTINGS.hex().upper()}\n"),
    "gzip then base64": (
        "deploy.txt",
        lambda: "gzipped:\n" + base64.encodebytes(gzip.compress(SETTINGS)).decode() + "end\n",
    ),
    "zlib then hex": ("deploy.txt", lambda: f"zlib: {zlib.compress(SETTINGS).hex()}\n"),
    "bzip2 then base64": (
        "deploy.txt",
        lambda: f"bz2: {base64.b64encode(bz2.compress(SETTINGS)).decode()}\n",
    ),
    "percent-encoded query in a link": (
        "NOTES.md",
        lambda: (
            "Log in [here](https://api.example.org/v1/login?body="
            + quote(json.dumps({"password": PASSWORD}), safe="")
            + ").\n"
        ),
    ),
    "a value of the file, also in base64, hex and reversed": (
        "billing.py",
        lambda: (
            f'STRIPE_KEY = "{STRIPE}"\n'
            + f"# base64: {base64.b64encode(STRIPE.encode()).decode()}\n"
            + f"# hex: {STRIPE.encode().hex()}\n"
            + f"# reversed: {STRIPE[::-1]}\n"
        ),
    ),
}
VALUES = (GITHUB, PASSWORD, STRIPE)


def _rows(path: str, text: str) -> Prepared:
    prepared = prepare_text(path, text, LIMITS)
    assert isinstance(prepared, Prepared), prepared
    return prepared


def _stored(table: pa.Table) -> str:
    """Every string the chunk rows hold."""
    return "\n".join(
        str(value)
        for name in table.column_names
        if pa.types.is_string(table.schema.field(name).type)
        for value in table.column(name).to_pylist()
    )


@pytest.mark.parametrize("name", SOURCES)
def test_a_value_written_only_encoded_is_not_kept_by_the_index(name: str) -> None:
    """Before, the index ran the detectors alone: each of these files was stored with its value."""
    path, source = SOURCES[name]
    text = source()
    assert leaks(text, VALUES)  # the check sees the value in the file
    prepared = _rows(path, text)
    stored = _stored(prepared.chunks) + _stored(prepared.symbols)
    assert not leaks(stored, VALUES), stored
    assert "<secret:" in stored
    redacted, used = redact_source(text, KEY, path)
    assert redacted.count("\n") == text.count("\n")  # chunk line numbers stay right
    assert set(used.values()) & set(VALUES), used
    # One implementation: what a run's Redactor withholds in the same text, the same way.
    assert redacted == Redactor(KEY).redact(text, path)


def test_the_sifted_search_finds_what_the_whole_search_finds_in_these_files() -> None:
    """The index decodes only the runs that may hold text or compressed data; in these files that is
    every run a run's redaction decodes to something."""
    for name, (_, source) in SOURCES.items():
        text = source()
        whole = find_encoded(text, KnownForms(()), _detected)
        assert sorted(find_encoded(text, KnownForms(()), _detected, sift=True)) == sorted(whole), name


PLAIN_CODE = f'''"""Nothing secret here, though it has long runs of base64 and hex digits."""
import hashlib
import uuid

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
REQUEST_ID = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
GREETING = "{base64.b64encode(b"hello world, and nothing else to see here").decode()}"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
DOC_LINK = "https://docs.example.org/search?q=%E2%9C%93%20done%20and%20dusted"


class HttpResponseRedirectWithQueryParameters:
    def test_reverse_lookup_of_namespaced_url_patterns_with_converters(self) -> None:
        assert hashlib.sha256(b"").hexdigest() == EMPTY_SHA256
'''


def test_decoding_withholds_nothing_more_in_code_whose_runs_hold_no_value() -> None:
    """Long identifiers, a hash, a UUID, base64 of plain text, a PNG's base64 and a percent-encoded
    query: what the detectors leave of them (their entropy plugin takes some quoted strings), decoding
    leaves too. Django's and the mixed benchmark corpus's 5,500 files are redacted the same both ways."""
    expected = redact_text(PLAIN_CODE, KEY, "plain.py")
    assert redact_source(PLAIN_CODE, KEY, "plain.py") == expected
    unquoted = PLAIN_CODE.replace('"', "")
    assert redact_source(unquoted, KEY, "plain.txt") == (unquoted, {})


def test_a_key_in_a_file_name_is_withheld_from_the_searched_text_and_the_models_input() -> None:
    """The path columns keep the path (how the file is found again, in the files table and the walk's
    snapshot too); the text the full-text index searches, what the embedding model reads (a remote
    endpoint, possibly) and what the re-ranker reads hold ``<secret>`` where the key was."""
    path = f"keys/{AKIA}.txt"
    prepared = _rows(path, "the deploy user's key\n")
    assert set(prepared.chunks.column("path").to_pylist()) == {path}
    searched = "\n".join(prepared.chunks.column("search_text").to_pylist())
    assert AKIA not in searched and "keys/<secret>.txt" in searched
    assert (
        embedding_text(path, "", "the deploy user's key", 512) == "keys/<secret>.txt \nthe deploy user's key"
    )
    hit = SearchHit(path, 1, 1, "", "window", "", 1.0, "the deploy user's key")
    assert AKIA not in document_text(hit) and "keys/<secret>.txt" in document_text(hit)
    # A path holding no value is the same text as before.
    plain = "django/contrib/auth/tests/test_management_commands.py"
    assert redact_path(plain) == plain
    assert embedding_text("src/app.py", "main", "pass", 512) == "src/app.py main\npass"
    # A withheld value's placeholder is keyed per index; the model sees it without the key's digits, so two
    # indexes of the same code (two keys) give its chunk the same vector.
    keyed = [f"token = {placeholder(AKIA, key)}" for key in (KEY, b"j" * 32)]
    assert keyed[0] != keyed[1]
    assert {embedding_text("a.py", "token", text, 512) for text in keyed} == {"a.py token\ntoken = <secret>"}
    assert placeholder(AKIA, KEY) not in searched  # unkeyed: nothing maps it back

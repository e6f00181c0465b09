"""Row builders shared by the store and the parser processes: light (pyarrow only, no LanceDB), so a
worker process that parses files does not pay for importing the database."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa

from indexing.models import Chunk, Symbol

SYMBOLS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("name_lower", pa.string()),
        ("kind", pa.string()),
        ("role", pa.string()),
        ("path", pa.string()),
        ("line", pa.int32()),
        ("column", pa.int32()),
        ("end_line", pa.int32()),
        ("end_column", pa.int32()),
        ("container", pa.string()),
    ]
)

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# Identifiers with an upper-case letter after their first character: camelCase, PascalCase, HTTPServer.
_HUMPED = re.compile(r"\b[A-Za-z][a-z0-9]*[A-Z][A-Za-z0-9]*")


def split_identifier(word: str) -> list[str]:
    """``getUserName`` -> ``["get", "user", "name"]``; ``HTTPServer`` -> ``["http", "server"]``."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(m.lower() for m in _CAMEL.findall(piece))
    return parts


def expand_identifiers(text: str) -> str:
    """The sub-words of camelCase identifiers in ``text``, for the full-text index.

    The tokenizer already splits on ``_`` and punctuation; camelCase humps are what it cannot see.
    One regex pass finds the humped words; each distinct word is split once.
    """
    words = set(_HUMPED.findall(text))
    if not words:
        return ""
    return " ".join(part for word in words for part in split_identifier(word) if part)


def search_text(chunk: Chunk) -> str:
    """What the full-text index sees for a chunk: path, qualified name, text and split identifiers."""
    return f"{chunk.path}\n{chunk.symbol}\n{chunk.text}\n{expand_identifiers(chunk.text)}"


def symbols_table(symbols: Sequence[Symbol]) -> pa.Table:
    """Symbols as rows of the symbols table. NamedTuples: transposing them is the fast way to columns."""
    if not symbols:
        return SYMBOLS_SCHEMA.empty_table()
    name, kind, role, path, line, column, end_line, end_column, container = zip(*symbols, strict=True)
    return pa.table(
        {
            "name": name,
            "name_lower": [n.lower() for n in name],
            "kind": kind,
            "role": role,
            "path": path,
            "line": pa.array(line, pa.int32()),
            "column": pa.array(column, pa.int32()),
            "end_line": pa.array(end_line, pa.int32()),
            "end_column": pa.array(end_column, pa.int32()),
            "container": container,
        },
        schema=SYMBOLS_SCHEMA,
    )

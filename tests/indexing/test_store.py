"""The LanceDB store: whole-file replacement, full-text and vector search, symbols, locking, corruption."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from indexing.models import Chunk, FileRecord, Symbol
from indexing.rows import chunks_table, expand_identifiers, search_text, split_identifier, symbols_table
from indexing.store import FileBatchItem, IndexCorrupt, IndexLocked, IndexStore, path_filter


def chunk(path: str, name: str, text: str, start: int = 1) -> Chunk:
    return Chunk(path, "python", "function", name, (), start, start + text.count("\n"), text, f"def {name}()")


def item(
    path: str,
    chunks: list[Chunk],
    symbols: list[Symbol] | None = None,
    vectors: np.ndarray | None = None,
    h: str = "h1",
) -> FileBatchItem:
    record = FileRecord(path, h, 1, 10, "python")
    return FileBatchItem(record, chunks_table(chunks), symbols_table(symbols or []), vectors)


def sym(name: str, path: str, line: int, role: str = "definition") -> Symbol:
    return Symbol(name, "function", role, path, line, 4, line, 4 + len(name))  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    return IndexStore.open(tmp_path / "idx", root="/ws")


def test_identifier_splitting() -> None:
    assert split_identifier("getUserName") == ["get", "user", "name"]
    assert split_identifier("HTTPServerError") == ["http", "server", "error"]
    assert split_identifier("parse_json_v2") == ["parse", "json", "v", "2"]
    assert set(expand_identifiers("x = sendInvoiceEmail(a) + plain_name").split()) == {
        "send",
        "invoice",
        "email",
    }


def test_chunk_rows_hold_each_chunks_own_id_qualified_name_and_search_text() -> None:
    """`chunks_table` computes ids, qualified names and the searched text in one pass of its own; they are
    the ones `Chunk.id`, `Chunk.symbol` and `search_text` give, also for text beyond ASCII, a chunk
    without a name and camelCase identifiers met again in a later chunk."""
    chunks = [
        Chunk(
            "pkg/a.py",
            "python",
            "method",
            "getUser",
            ("Outer", "Inner"),
            3,
            5,
            "def getUser(self):\n    return café\n",
        ),
        Chunk("pkg/a.py", "python", "module", "", (), 1, 2, "import os\nx = été + parseJSONValue(y)", "", ""),
        Chunk(
            "pkg/a.py",
            "python",
            "class",
            "",
            ("Outer",),
            7,
            9,
            "class HTTPServer:\n    getUser = 1",
            "sig",
            "doc",
        ),
        Chunk("b/ü.py", "python", "function", "parseJSONValue", (), 1, 1, "def parseJSONValue(): pass"),
    ]
    table = chunks_table(chunks).to_pydict()
    assert table["id"] == [c.id for c in chunks]
    assert table["symbol"] == [c.symbol for c in chunks]
    assert table["search_text"] == [search_text(c) for c in chunks]
    assert table["text_chars"] == [len(c.text) for c in chunks]
    assert "user" in table["search_text"][2].split()
    assert table["search_text"][3].endswith("\nparseJSONValue\nparse json value")


def test_rewriting_a_file_replaces_its_rows_without_duplicates(store: IndexStore) -> None:
    store.write_batch(
        [item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")], [sym("alpha", "a.py", 1)])]
    )
    store.write_batch(
        [item("a.py", [chunk("a.py", "alpha", "def alpha(): return 2")], [sym("alpha", "a.py", 1)], h="h2")]
    )
    stats = store.stats()
    assert (stats.files, stats.chunks, stats.symbols) == (1, 1, 1)
    assert store.file_records()["a.py"].hash == "h2"


def test_a_large_batch_written_at_once_writes_each_table_in_a_thread(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of more than `_CONCURRENT_WRITE_FILES` files writes its tables one after the other in the
    caller's thread, unless `at_once` (the last batch of a run): then each in a thread of its own."""
    threads: list[str] = []
    real_replace = IndexStore._replace_rows

    def recorded(self: IndexStore, name: str, paths: Any, rows: Any) -> None:
        threads.append(threading.current_thread().name)
        real_replace(self, name, paths, rows)

    monkeypatch.setattr(IndexStore, "_replace_rows", recorded)
    files = [f"m{i}.py" for i in range(20)]
    batch = [
        item(p, [chunk(p, f"fn_{i}", f"def fn_{i}(): pass")], [sym(f"fn_{i}", p, 1)])
        for i, p in enumerate(files)
    ]
    store.write_batch(batch)
    assert threads[1:] == ["MainThread", "MainThread"]  # files (deleted), then chunks and symbols
    threads.clear()
    again = [
        item(p, [chunk(p, f"fn_{i}", f"def fn_{i}(): return 1")], [sym(f"fn_{i}", p, 1)], h="h2")
        for i, p in enumerate(files)
    ]
    store.write_batch(again, at_once=True)
    assert threads[0] == "MainThread" and len(threads) == 3
    assert all(name.startswith("agentls-index-write") for name in threads[1:])
    stats = store.stats()
    assert (stats.files, stats.chunks, stats.symbols) == (20, 20, 20)
    assert store.file_records()["m7.py"].hash == "h2"


def test_full_text_finds_camel_case_parts_and_respects_path_filter(store: IndexStore) -> None:
    store.write_batch(
        [
            item(
                "mail/send.py", [chunk("mail/send.py", "sendInvoiceEmail", "def sendInvoiceEmail(addr): ...")]
            ),
            item("other/x.py", [chunk("other/x.py", "invoice_total", "def invoice_total(): ...")]),
        ]
    )
    store.ensure_indexes(vector_index_min_rows=10_000)
    hits = store.search_lexical("invoice email", 10)
    assert hits[0]["path"] == "mail/send.py"
    assert {h["path"] for h in store.search_lexical("invoice", 10, path_filter("other"))} == {"other/x.py"}
    # A file path prefix must not match a sibling that merely starts with the same letters.
    assert store.search_lexical("invoice", 10, path_filter("mai")) == []


def test_rows_added_after_the_fts_index_are_searchable(store: IndexStore) -> None:
    store.write_batch([item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")])])
    store.ensure_indexes(vector_index_min_rows=10_000)
    store.write_batch([item("b.py", [chunk("b.py", "zebra_unicorn", "def zebra_unicorn(): pass")])])
    assert [h["path"] for h in store.search_lexical("unicorn", 5)] == ["b.py"]
    store.delete_files(["b.py"])
    assert store.search_lexical("unicorn", 5) == []
    assert "b.py" not in store.file_records()


def test_symbols_exact_prefix_role_and_file(store: IndexStore) -> None:
    store.write_batch(
        [
            item(
                "a.py",
                [],
                [
                    sym("parse_price", "a.py", 3),
                    sym("Parser", "a.py", 9),
                    sym("parse_price", "a.py", 20, "reference"),
                ],
            ),
            item("b.py", [], [sym("parse_price", "b.py", 5, "reference")]),
        ]
    )
    exact = store.find_symbols("parse_price")
    assert [(s.path, s.line, s.role) for s in exact] == [
        ("a.py", 3, "definition"),
        ("a.py", 20, "reference"),
        ("b.py", 5, "reference"),
    ]
    assert {s.name for s in store.find_symbols("pars", prefix=True)} == {"parse_price", "Parser"}
    assert [s.line for s in store.find_symbols("parse_price", role="reference", path="b.py")] == [5]
    assert [s.line for s in store.symbols_in_file("a.py", role="definition")] == [3, 9]


def test_vectors_search_and_model_change_drops_them(store: IndexStore) -> None:
    store.set_embedder("m:a:4", 4)
    vecs = np.eye(4, dtype=np.float32)[:2]
    store.write_batch(
        [item("a.py", [chunk("a.py", "a", "def a(): 1"), chunk("a.py", "b", "def b(): 2", 5)], vectors=vecs)]
    )
    near = store.search_vector(np.array([0, 1, 0, 0], np.float32), 2)
    assert near[0]["_distance"] < near[1]["_distance"]
    assert store.chunk_ids_without_vectors() == []
    assert store.set_embedder("m:b:4", 4) is True
    assert len(store.chunk_ids_without_vectors()) == 2


def test_corrupt_index_is_detected_and_rebuilt(tmp_path: Path) -> None:
    store = IndexStore.open(tmp_path / "idx", root="/ws")
    store.write_batch([item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")])])
    (tmp_path / "idx" / "meta.json").write_text("{not json")
    reopened = IndexStore.open(tmp_path / "idx", root="/ws")
    assert reopened.stats().files == 0  # rebuilt empty; the caller re-indexes
    # Damaged table data is detected the same way.
    reopened.write_batch([item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")])])
    for manifest in (tmp_path / "idx" / "lance" / "chunks.lance" / "_versions").iterdir():
        manifest.write_bytes(b"garbage")
    assert IndexStore.open(tmp_path / "idx", root="/ws").stats().chunks == 0


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_missing_or_truncated_table_data_is_detected_and_rebuilt(tmp_path: Path, damage: str) -> None:
    """The manifests read fine but a data file is gone or cut short (a disk cleaner, a full disk): found
    when the index opens, not as a failed search later."""
    store = IndexStore.open(tmp_path / "idx", root="/ws")
    store.write_batch(
        [item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")], [sym("alpha", "a.py", 1)])]
    )
    data = sorted((tmp_path / "idx" / "lance" / "chunks.lance" / "data").iterdir())
    for path in data:
        if damage == "deleted":
            path.unlink()
        else:
            path.write_bytes(path.read_bytes()[:100])
    reopened = IndexStore.open(tmp_path / "idx", root="/ws")
    assert reopened.stats().files == reopened.stats().chunks == 0  # rebuilt empty; the caller re-indexes
    reopened.write_batch([item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")])])
    for path in (tmp_path / "idx" / "lance" / "chunks.lance" / "data").iterdir():
        path.unlink()
    with pytest.raises(IndexCorrupt, match=r"table chunks: data file \S+ is missing"):
        IndexStore.open(tmp_path / "idx", root="/ws", rebuild_if_corrupt=False)


def _hold_lock(
    location: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event
) -> None:  # type: ignore[name-defined]
    store = IndexStore.open(Path(location), root="/ws")
    with store.writer():
        ready.set()
        release.wait(10)


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path / "idx"), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        store = IndexStore.open(tmp_path / "idx", root="/ws")
        with pytest.raises(IndexLocked, match=r"another agentls indexer \(pid \d+\)"), store.writer():
            pass
    finally:
        release.set()
        proc.join(10)
    with IndexStore.open(tmp_path / "idx", root="/ws").writer():
        pass  # free again once the first writer is gone


def test_optimize_rebuilds_a_vector_index_split_into_many_deltas(store: IndexStore) -> None:
    """Each optimize folds new vectors into the index as one more delta, and Lance cannot compact
    fragments held by different deltas; past a limit the index is rebuilt and the table compacts."""
    from indexing.store import _MAX_VECTOR_INDEX_DELTAS, _index_deltas

    rng = np.random.default_rng(3)
    store.set_embedder("test-model", 8)
    chunks = [chunk("base.py", f"f{i}", f"def f{i}(): {i}", i * 2 + 1) for i in range(300)]
    store.write_batch([item("base.py", chunks, vectors=rng.random((300, 8), dtype=np.float32))])
    assert "vector" in store.ensure_indexes(vector_index_min_rows=256)
    vectors = store._tables["vectors"]
    deltas = []
    for n in range(_MAX_VECTOR_INDEX_DELTAS + 3):
        edit = [chunk(f"e{n}.py", f"g{n}", f"def g{n}(): {n}")]
        store.write_batch([item(f"e{n}.py", edit, vectors=rng.random((1, 8), dtype=np.float32))])
        store.optimize()
        deltas.append(_index_deltas(vectors, "vector_idx"))
    assert deltas[_MAX_VECTOR_INDEX_DELTAS - 2] == _MAX_VECTOR_INDEX_DELTAS  # one more per optimize...
    assert max(deltas) <= _MAX_VECTOR_INDEX_DELTAS + 1  # ...until the rebuild
    assert deltas[-1] < _MAX_VECTOR_INDEX_DELTAS
    assert int(vectors.stats()["fragment_stats"]["num_fragments"]) < _MAX_VECTOR_INDEX_DELTAS
    assert vectors.count_rows() == 300 + _MAX_VECTOR_INDEX_DELTAS + 3
    hit = store.search_vector(rng.random(8, dtype=np.float32), 5)
    assert len(hit) == 5


def test_a_save_does_not_wait_for_the_vector_index_rebuild(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vector index's rebuild (past `_MAX_VECTOR_INDEX_DELTAS`) runs beside the writes: a save that
    comes while it builds is written at once, and the rebuilt index serves both."""
    import indexing.store as store_module

    rng = np.random.default_rng(5)
    store.set_embedder("test-model", 8)
    chunks = [chunk("base.py", f"f{i}", f"def f{i}(): {i}", i * 2 + 1) for i in range(300)]
    store.write_batch([item("base.py", chunks, vectors=rng.random((300, 8), dtype=np.float32))])
    store.ensure_indexes(vector_index_min_rows=256)
    monkeypatch.setattr(store_module, "_MAX_VECTOR_INDEX_DELTAS", 0)  # rebuild at the next optimize
    vectors = store._tables["vectors"]
    real_to_lance = vectors.to_lance
    building, saved = threading.Event(), threading.Event()

    class Dataset:  # the table's Lance dataset, whose index build waits until the save is written
        def __init__(self) -> None:
            self.dataset = real_to_lance()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.dataset, name)

        def create_index(self, *args: Any, **kwargs: Any) -> Any:
            building.set()
            saved.wait(30)
            return self.dataset.create_index(*args, **kwargs)

    monkeypatch.setattr(vectors, "to_lance", Dataset)
    maintenance = threading.Thread(target=store.optimize)
    maintenance.start()
    try:
        assert building.wait(30), "the vector index was not rebuilt"
        started = time.perf_counter()
        edit = [chunk("new.py", "fresh", "def fresh(): 1")]
        store.write_batch([item("new.py", edit, vectors=rng.random((1, 8), dtype=np.float32))])
        waited = time.perf_counter() - started
    finally:
        saved.set()
        maintenance.join(60)
    assert not maintenance.is_alive() and waited < 10
    assert vectors.count_rows() == 301
    assert len(store.search_vector(rng.random(8, dtype=np.float32), 5)) == 5


def test_chunk_text_is_stored_once_and_read_back_whole(store: IndexStore) -> None:
    text = 'def grüße(name):\n    """Say hello; ½ € and 😀."""\n    return f"hi {name}"\n'
    store.write_batch([item("a.py", [chunk("a.py", "grüße", text)])])
    assert "text" not in store._tables["chunks"].schema.names  # only inside search_text
    [hit] = store.search_lexical("hello", 5)
    assert hit["text"] == text and "search_text" not in hit and "text_chars" not in hit
    [row] = store.chunks_by_id([hit["id"]], ["id", "text"])
    assert row == {"id": hit["id"], "text": text}
    [row] = store.chunks_by_id([hit["id"]], ["id", "search_text"])
    assert row["search_text"].startswith(text) and "a.py" in row["search_text"][len(text) :]


def test_chunk_text_is_stored_in_mini_blocks(store: IndexStore) -> None:
    # Compressed value by value ("full-zip", Lance's default for values this large), every full-text build
    # decompressed the column one value at a time: a third more CPU for the build on Django.
    field = store._tables["chunks"].to_lance().schema.field("search_text")
    assert (field.metadata or {}).get(b"lance-encoding:structural-encoding") == b"miniblock"


def test_a_chunks_table_in_the_earlier_layout_stays_usable(tmp_path: Path) -> None:
    # An index created before search_text was stored in mini-blocks: its table keeps its layout, takes
    # new rows, builds its full-text index and finds them.
    from indexing.lancedb_import import lancedb
    from indexing.rows import CHUNKS_SCHEMA, COMPRESSED

    fields = [pa.field(f.name, f.type, metadata=COMPRESSED if f.metadata else None) for f in CHUNKS_SCHEMA]
    lancedb.connect(str(tmp_path / "idx" / "lance")).create_table("chunks", schema=pa.schema(fields))
    store = IndexStore.open(tmp_path / "idx", root="/ws")
    layout = store._tables["chunks"].to_lance().schema.field("search_text").metadata
    assert b"lance-encoding:structural-encoding" not in layout
    store.write_batch([item("a.py", [chunk("a.py", "sendInvoice", "def sendInvoice(): ...")])])
    store.ensure_indexes(vector_index_min_rows=10_000)
    store.write_batch([item("b.py", [chunk("b.py", "invoice_total", "def invoice_total(): ...")])])
    assert {h["path"] for h in store.search_lexical("invoice", 10)} == {"a.py", "b.py"}
    [hit] = store.search_lexical("total", 10)
    assert hit["text"] == "def invoice_total(): ..."


def test_an_index_in_an_older_format_is_rebuilt_with_a_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    old = IndexStore.open(tmp_path / "idx", root="/ws")
    old.write_batch([item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")])])
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    (tmp_path / "idx" / "meta.json").write_text(json.dumps({**meta, "schema_version": 1}))
    reopened = IndexStore.open(tmp_path / "idx", root="/ws")
    assert reopened.stats().chunks == 0
    assert "written in format 1 by another agentls version" in caplog.text


def test_orphans_are_looked_for_only_after_an_unfinished_write(store: IndexStore, tmp_path: Path) -> None:
    store.write_batch(
        [item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")], [sym("alpha", "a.py", 1)])]
    )
    # Rows without their file row, as a run killed between the chunks and the files table leaves them.
    store._tables["chunks"].add(chunks_table([chunk("b.py", "beta", "def beta(): pass")]))
    assert store.delete_orphans() == 0  # the last write finished: no scan of every table
    store._set_pending(True)  # a write began and never finished
    reopened = IndexStore.open(tmp_path / "idx", root="/ws")
    assert reopened.delete_orphans() == 1
    assert reopened.stats().chunks == 1
    assert reopened.delete_orphans() == 0


def test_file_records_of_some_paths(store: IndexStore) -> None:
    store.write_batch([item(p, [chunk(p, "f", "def f(): pass")]) for p in ("a.py", "b.py", "c/d.py")])
    assert set(store.file_records(["b.py", "c/d.py", "missing.py"])) == {"b.py", "c/d.py"}
    assert store.file_records([]) == {}
    assert set(store.file_records()) == {"a.py", "b.py", "c/d.py"}


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_chunk_text_is_stored_compressed(store: IndexStore, tmp_path: Path) -> None:
    """Uncompressed, the chunks table was as large as the source tree (the kernel's index was 1.55x it)."""
    body = "".join(f"    total_{n % 97} = compute_value(item_{n % 13}, limit={n % 7})\n" for n in range(60))
    chunks = [
        chunk(f"m{f}.py", f"fn{n}", f"def fn{n}():\n{body}", 1 + 70 * n) for f in range(4) for n in range(50)
    ]
    text_bytes = sum(len(c.text) for c in chunks)
    store.write_batch([item(f"m{f}.py", [c for c in chunks if c.path == f"m{f}.py"]) for f in range(4)])
    assert store.stats().chunks == 200
    assert _folder_bytes(tmp_path / "idx" / "lance" / "chunks.lance" / "data") < text_bytes / 3
    hit = store.chunks_by_id([chunks[7].id], ["id", "text"])[0]
    assert hit["text"] == chunks[7].text
    # In Lance format 2.0 a compressed page is read whole for one row: Django's search took 3x as long.
    import lance

    chunk_table = lance.dataset(str(tmp_path / "idx" / "lance" / "chunks.lance"))
    assert chunk_table.data_storage_version not in ("2.0", "legacy")


def test_indexes_of_large_tables_are_built_one_after_the_other(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built side by side, the kernel's full-text and symbol indexes made a first index peak at 2.3 GB
    (0.5 GB while indexing); on drivers/net one after the other took 20% less memory in the same time."""
    import threading

    import indexing.store as store_module

    store.write_batch(
        [item("a.py", [chunk("a.py", "alpha", "def alpha(): pass")], [sym("alpha", "a.py", 1)])]
    )
    threads: list[str] = []
    real_chunk_indexes, real_symbol_indexes = store._chunk_indexes, store._symbol_indexes

    def chunk_indexes(step: object) -> list[str]:
        threads.append(threading.current_thread().name)
        return real_chunk_indexes(None)

    def symbol_indexes(step: object) -> list[str]:
        threads.append(threading.current_thread().name)
        return real_symbol_indexes(None)

    monkeypatch.setattr(store, "_chunk_indexes", chunk_indexes)
    monkeypatch.setattr(store, "_symbol_indexes", symbol_indexes)
    monkeypatch.setattr(store_module, "_PARALLEL_BUILD_ROWS", 0)  # every table counts as large
    assert "fts" in store.ensure_indexes(vector_index_min_rows=1_000_000)
    assert threads == [threading.current_thread().name] * 2


def test_a_write_during_compaction_does_not_wait_for_it(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction rewrites fragments without the write lock (`IndexStore.optimize`): a save that comes
    meanwhile is written at once. Its file's old rows were in a fragment being merged, so that task is
    left out of the commit and planned again without the fragment; no row is lost or doubled."""
    import lance.optimize

    real = lance.optimize.Compaction
    executing, saved = threading.Event(), threading.Event()

    class Task:  # a task whose rewrite waits until the save is done, as a long one on the kernel would
        def __init__(self, task: Any) -> None:
            self.task, self.fragments = task, task.fragments

        def execute(self, dataset: Any) -> Any:
            executing.set()
            saved.wait(30)
            return self.task.execute(dataset)

    class Plan:
        def __init__(self, plan: Any) -> None:
            self.tasks = [Task(task) for task in plan.tasks]

    class Compaction:
        commit = staticmethod(real.commit)

        @staticmethod
        def plan(dataset: Any, options: Any) -> Plan:
            return Plan(real.plan(dataset, options))

    monkeypatch.setattr(lance.optimize, "Compaction", Compaction)
    for n in range(12):
        store.write_batch(
            [item(f"m{n}.py", [chunk(f"m{n}.py", f"merge{n}", f"def merge{n}():\n    return {n}\n")])]
        )
    maintenance = threading.Thread(target=store.optimize, kwargs={"keep_versions": timedelta(0)})
    maintenance.start()
    try:
        assert executing.wait(30), "compaction never started its rewrite"
        started = time.perf_counter()
        store.write_batch([item("m5.py", [chunk("m5.py", "merged5", "def merged5():\n    return 55\n")])])
        waited = time.perf_counter() - started
    finally:
        saved.set()
        maintenance.join(60)
    assert not maintenance.is_alive() and waited < 10
    assert store.max_fragments() <= 2
    chunks = store._tables["chunks"]
    assert chunks.count_rows() == 12 and len(store.file_records()) == 12
    [hit] = store.search_lexical("merged5", 5)
    assert hit["path"] == "m5.py" and hit["text"] == "def merged5():\n    return 55\n"
    assert store.search_lexical("merge5", 5) == []
    [other] = store.search_lexical("merge7", 5)
    assert other["path"] == "m7.py"


def test_a_compaction_that_lost_to_a_write_is_planned_again(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A save that lands between compaction's look at the fragments and its commit: Lance refuses the
    commit, and the table is planned and compacted again with the save's rows."""
    import lance.optimize

    real = lance.optimize.Compaction
    commits: list[int] = []

    class Compaction:
        plan = staticmethod(real.plan)

        @staticmethod
        def commit(dataset: Any, rewrites: Any, options: Any) -> Any:
            commits.append(dataset.uri.rsplit("/", 1)[-1])
            if len(commits) == 1:  # the save comes now: its delete touches a fragment being replaced
                store.write_batch(
                    [item("m5.py", [chunk("m5.py", "merged5", "def merged5():\n    return 55\n")])]
                )
            return real.commit(dataset, rewrites, options)

    monkeypatch.setattr(lance.optimize, "Compaction", Compaction)
    for n in range(12):
        store.write_batch(
            [item(f"m{n}.py", [chunk(f"m{n}.py", f"merge{n}", f"def merge{n}():\n    return {n}\n")])]
        )
    with caplog.at_level("INFO", logger="indexing.store"):
        store.optimize(keep_versions=timedelta(0))
    assert "the commit lost to a write" in caplog.text
    assert commits == ["files.lance", "files.lance", "chunks.lance"]  # the first one lost; no symbols here
    assert store.max_fragments() <= 2
    assert store._tables["chunks"].count_rows() == 12 and len(store.file_records()) == 12
    [hit] = store.search_lexical("merged5", 5)
    assert hit["path"] == "m5.py" and hit["text"] == "def merged5():\n    return 55\n"
    assert store.search_lexical("merge5", 5) == []


def test_compaction_merges_small_fragments_and_keeps_every_row(store: IndexStore) -> None:
    """Fragments are merged by copying their pages (`_compact_by_copy`); those with deleted rows are
    re-encoded. Either way the rows, their text and the search read back as they were written."""
    for n in range(12):
        store.write_batch(
            [item(f"m{n}.py", [chunk(f"m{n}.py", f"merge{n}", f"def merge{n}():\n    return {n}\n")])]
        )
    store.delete_files(["m3.py", "m7.py"])
    before = store.max_fragments()
    store.optimize(keep_versions=timedelta(0))
    chunks = store._tables["chunks"]
    assert before >= 10 and int(chunks.stats()["fragment_stats"]["num_fragments"]) == 1
    assert chunks.count_rows() == 10 and "m3.py" not in store.file_records()
    [hit] = store.search_lexical("merge5", 5)
    assert hit["path"] == "m5.py" and hit["text"] == "def merge5():\n    return 5\n"

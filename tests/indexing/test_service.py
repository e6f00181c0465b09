"""WorkspaceIndex end to end on real files: incremental updates, resumability, bad input, hybrid search."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import IndexCancelled, WorkspaceIndex
from indexing.walker import WorkspaceError

LEXICAL = IndexSettings(embedding=EmbeddingSettings(provider="none"))


def make_index(root: Path, cache_dir: Path, settings: IndexSettings = LEXICAL) -> WorkspaceIndex:
    return WorkspaceIndex(root, settings, cache_dir=cache_dir, env={})


def test_full_index_counts_and_skips(workspace: Path, cache_dir: Path) -> None:
    report = make_index(workspace, cache_dir).index()
    # shop/{__init__,pricing,cart,invoice}.py, tests/test_cart.py, README.md, .gitignore; .env; logo.png
    assert report.files_seen == 9
    assert report.files_indexed == 7
    assert report.skipped == {"secret": 1, "binary": 1}  # build/ and *.log are gitignored: silent
    assert report.chunks >= 12 and report.symbols >= 20
    assert report.lexical_only


def test_secrets_and_ignored_files_are_not_searchable(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    hits = index.search("SECRET_TOKEN sk-live-do-not-index", limit=50)
    assert all(h.path != ".env" and "sk-live" not in h.text for h in hits)
    assert index.search("generated_output") == []
    assert index.find_symbols("generated_output") == []


def test_search_finds_definitions_by_name_docstring_and_camel_case(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    top = index.search("apply_discount")[0]
    assert (top.path, top.symbol, top.kind) == ("shop/pricing.py", "apply_discount", "function")
    assert index.search("reduce a price by a percentage")[0].symbol == "apply_discount"
    assert index.search("invoice email")[0].symbol == "sendInvoiceEmail"
    scoped = index.search("price", path="shop/cart.py")
    assert scoped and {h.path for h in scoped} == {"shop/cart.py"}


def test_symbols_definitions_and_references(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    defs = index.find_symbols("apply_discount", role="definition")
    assert [(s.path, s.line) for s in defs] == [("shop/pricing.py", 27)]
    refs = index.find_symbols("apply_discount", role="reference")
    assert ("shop/cart.py", "Cart.total_with_discount") in {(s.path, s.container) for s in refs}
    assert {s.name for s in index.find_symbols("add_", prefix=True)} >= {"add_vat", "add_item"}
    names = {s.name for s in index.symbols_in_file("shop/cart.py", role="definition")}
    assert {"Cart", "add_item", "subtotal"} <= names


def test_incremental_update_edit_delete_rename(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    again = index.index()
    assert (again.files_indexed, again.files_unchanged, again.files_removed) == (0, 7, 0)

    pricing = workspace / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text().replace("def add_vat", "def add_sales_tax"))
    (workspace / "shop" / "invoice.py").unlink()
    shutil.move(workspace / "shop" / "cart.py", workspace / "shop" / "basket.py")
    report = index.index()
    assert (report.files_indexed, report.files_removed) == (2, 2)
    assert index.find_symbols("add_vat", role="definition") == []
    assert index.find_symbols("add_sales_tax", role="definition")[0].path == "shop/pricing.py"
    assert all(h.path != "shop/invoice.py" for h in index.search("render_invoice"))
    paths = {h.path for h in index.search("subtotal")}
    assert "shop/basket.py" in paths and "shop/cart.py" not in paths
    stats = index.store.stats()
    assert stats.files == 6


def test_touching_a_file_without_changing_it_reparses_nothing(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    (workspace / "shop" / "cart.py").touch()
    report = index.index()
    assert (report.files_indexed, report.files_unchanged) == (0, 7)


def test_update_paths_for_saved_created_and_deleted_files(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    (workspace / "shop" / "tax.py").write_text("def zebra_tax_rule():\n    return 0\n")
    (workspace / "shop" / "invoice.py").unlink()
    report = index.update_paths([workspace / "shop" / "tax.py", "shop/invoice.py", "/elsewhere/x.py"])
    assert (report.files_indexed, report.files_removed) == (1, 1)
    assert index.search("zebra_tax_rule")[0].path == "shop/tax.py"
    assert index.find_symbols("render_invoice") == []


def _rows(index: WorkspaceIndex) -> dict[str, tuple[str, int]]:
    """Each indexed file's content hash and chunk count."""
    chunks = index.store.table("chunks").to_arrow().column("path").to_pylist()
    return {path: (record.hash, chunks.count(path)) for path, record in index.store.file_records().items()}


def test_update_paths_of_folders_moved_and_deleted(workspace: Path, cache_dir: Path, tmp_path: Path) -> None:
    """Editors report a folder renamed, moved or deleted as the folder alone (VS Code by design): its
    files' rows go, a folder moved in is indexed whole, and the index ends as a fresh one of the tree."""
    index = make_index(workspace, cache_dir)
    index.index()
    (workspace / "shop").rename(workspace / "store")
    (workspace / "store" / "build").mkdir()  # ignored by the workspace's .gitignore inside the new folder
    (workspace / "store" / "build" / "gen.py").write_text("def ignored_here():\n    pass\n")
    report = index.update_paths(["shop", workspace / "store"])
    assert (report.files_indexed, report.files_removed) == (4, 4)
    assert index.search("subtotal")[0].path == "store/cart.py"
    assert not [h for h in index.search("render invoice subtotal", limit=50) if h.path.startswith("shop/")]
    fresh = make_index(workspace, tmp_path / "fresh-cache")
    fresh.index()
    assert _rows(index) == _rows(fresh)

    shutil.rmtree(workspace / "store")
    report = index.update_paths(["store"])
    assert report.files_removed == 4
    assert not any(path.startswith("store/") for path in _rows(index))
    assert index.find_symbols("apply_discount") == []


def test_update_paths_of_a_folder_reads_only_its_changed_files(workspace: Path, cache_dir: Path) -> None:
    """A folder reported as changed when one file in it is saved: only files whose size or mtime changed
    are read (`files_unchanged` counts the files read and found the same), as in a full run."""
    index = make_index(workspace, cache_dir)
    index.index()
    cart = workspace / "shop" / "cart.py"
    cart.write_text(cart.read_text() + "\n\ndef wombat_total():\n    return 0\n")
    report = index.update_paths(["shop"])
    assert (report.files_indexed, report.files_unchanged, report.files_removed) == (1, 0, 0)
    assert index.search("wombat_total")[0].path == "shop/cart.py"
    report = index.update_paths(["shop/pricing.py"])  # a file named is read, as a save asks
    assert (report.files_indexed, report.files_unchanged) == (0, 1)


def test_an_index_deleted_while_open_is_built_whole_by_the_next_update(
    workspace: Path, cache_dir: Path
) -> None:
    """The cache cleared while the language server's indexing process holds the index open: its next
    update builds the whole index again, not an index of the saved file alone, and a reader that held the
    old one open reads the new one."""
    index = make_index(workspace, cache_dir)
    index.index()
    reader = make_index(workspace, cache_dir)
    assert reader.search("subtotal")[0].path == "shop/cart.py"
    shutil.rmtree(index.location)
    (workspace / "shop" / "tax.py").write_text("def zebra_tax_rule():\n    return 0\n")
    report = index.update_paths(["shop/tax.py"])
    assert report.files_indexed == 8  # the 7 files indexed before, and the new one
    assert index.store.stats().files == 8
    assert reader.reopen_if_replaced()
    assert reader.search("subtotal")[0].path == "shop/cart.py"
    assert reader.search("zebra_tax_rule")[0].path == "shop/tax.py"


def _add_modules(workspace: Path, count: int) -> None:
    """``count`` one-function modules shop/gen_N.py (``unique_function_N``)."""
    for i in range(count):
        (workspace / "shop" / f"gen_{i}.py").write_text(f"def unique_function_{i}(x):\n    return x + {i}\n")


def _cancel_when(phase: str, done: int) -> tuple[threading.Event, Callable[[str, int, int], None]]:
    """An event and a progress callback that sets it once ``phase`` reports ``done`` or more."""
    cancel = threading.Event()

    def progress(seen: str, count: int, total: int) -> None:
        if seen == phase and count >= done:
            cancel.set()

    return cancel, progress


def test_cancelled_run_resumes_without_duplicates(workspace: Path, cache_dir: Path) -> None:
    _add_modules(workspace, 40)
    settings = LEXICAL.model_copy(update={"batch_files": 8})
    index = make_index(workspace, cache_dir, settings)
    cancel, progress = _cancel_when("indexing", 10)

    with pytest.raises(IndexCancelled, match="progress is saved"):
        index.index(progress=progress, cancel=cancel)
    partial = index.store.stats().files
    assert 0 < partial < 47
    report = index.index()
    assert report.files_indexed == 47 - partial
    stats = index.store.stats()
    assert stats.files == 47
    ids = index.store.chunk_ids_without_vectors()  # lexical: every chunk id, once each
    assert len(ids) == len(set(ids)) == stats.chunks
    assert len(index.find_symbols("unique_function_7")) == 1


def test_vector_pass_over_a_lexical_index_resumes_where_it_was_cancelled(
    workspace: Path, model_cache_dir: Path
) -> None:
    _add_modules(workspace, 40)
    make_index(workspace, model_cache_dir).index()  # lexical first, as on a machine without a model
    with_model = IndexSettings(embedding=EmbeddingSettings(batch_size=4))  # written every 32 rows
    index = make_index(workspace, model_cache_dir, with_model)
    cancel, progress = _cancel_when("embedding", 32)

    with pytest.raises(IndexCancelled, match="progress is saved"):
        index.index(progress=progress, cancel=cancel)
    chunks = index.store.stats().chunks
    embedded = index.store.stats().vectors
    assert 0 < embedded < chunks
    report = index.index()
    assert report.vectors == chunks - embedded  # nothing embedded twice
    assert index.store.chunk_ids_without_vectors() == []
    assert index.search("unique function 7", limit=1)[0].symbol == "unique_function_7"


def test_deleted_index_folder_is_rebuilt(workspace: Path, cache_dir: Path) -> None:
    index = make_index(workspace, cache_dir)
    index.index()
    shutil.rmtree(index.location)
    fresh = make_index(workspace, cache_dir)
    assert fresh.index().files_indexed == 7
    assert fresh.search("apply_discount")


def test_bad_roots_and_empty_workspace(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        make_index(tmp_path / "missing", cache_dir).index()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="not a folder"):
        make_index(tmp_path / "file.txt", cache_dir).index()
    empty = tmp_path / "empty"
    empty.mkdir()
    index = make_index(empty, cache_dir)
    report = index.index()
    assert (report.files_seen, report.chunks) == (0, 0)
    assert index.search("anything") == []


def test_invalid_utf8_syntax_errors_and_unknown_languages(workspace: Path, cache_dir: Path) -> None:
    (workspace / "shop" / "latin1.py").write_bytes(b"# caf\xe9\n\ndef after_bad_bytes():\n    return 1\n")
    (workspace / "shop" / "broken.py").write_text(
        "def broken_but_indexed(:\n    return (\n\ndef fine_after():\n    pass\n"
    )
    (workspace / "notes.weird").write_text(
        "\n".join(f"line {i} quasar" if i == 70 else f"line {i}" for i in range(100))
    )
    index = make_index(workspace, cache_dir)
    index.index()
    assert index.find_symbols("after_bad_bytes", role="definition")[0].line == 3
    assert index.find_symbols("fine_after", role="definition")
    hit = index.search("quasar")[0]
    assert hit.path == "notes.weird" and hit.start_line <= 71 <= hit.end_line


def test_files_vanishing_mid_run_are_reported_not_fatal(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import indexing.parsing as parsing

    real = parsing.load_source

    def flaky(entry, settings):  # type: ignore[no-untyped-def]
        if entry.path == "shop/cart.py":
            (workspace / "shop" / "cart.py").unlink(missing_ok=True)
        return real(entry, settings)

    monkeypatch.setattr(parsing, "load_source", flaky)
    report = make_index(workspace, cache_dir).index()
    assert report.skipped.get("vanished") == 1
    assert report.files_indexed == 6


def test_vectors_are_added_once_a_model_becomes_available(
    workspace: Path, cache_dir: Path, distilled_model: Path
) -> None:
    settings = IndexSettings()  # default provider: model2vec, default model absent from the empty cache
    offline = make_index(workspace, cache_dir, settings)
    report = offline.index()
    assert report.lexical_only and "agentls model distill" in report.notice
    assert offline.store.stats().vectors == 0

    from indexing.embeddings import DISTILLED_MODEL_NAME

    (cache_dir / "models").mkdir(exist_ok=True)
    (cache_dir / "models" / DISTILLED_MODEL_NAME).symlink_to(distilled_model, target_is_directory=True)
    online = make_index(workspace, cache_dir, settings)
    report = online.index()
    assert not report.lexical_only
    stats = online.store.stats()
    assert report.vectors == stats.chunks == stats.vectors
    hits = online.search("money amount in cents with currency")
    assert hits[0].symbol == "Money"
    assert "vector" in hits[0].sources


def test_second_writer_gets_a_clear_error(workspace: Path, cache_dir: Path) -> None:
    from indexing.store import IndexLocked

    index = make_index(workspace, cache_dir)
    other = make_index(workspace, cache_dir)
    with index.store.writer(), pytest.raises(IndexLocked, match="another agentls indexer"):
        other.index()


def test_crash_between_rows_and_commit_point_leaves_no_duplicates(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexing.store import IndexStore

    index = make_index(workspace, cache_dir)
    real_files_table = __import__("indexing.store", fromlist=["_files_table"])._files_table
    calls = {"n": 0}

    def crash_before_commit(records):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise KeyboardInterrupt("simulated crash after chunks and symbols were written")

    monkeypatch.setattr("indexing.store._files_table", crash_before_commit)
    with pytest.raises(KeyboardInterrupt):
        index.index()
    assert calls["n"] == 1
    store = IndexStore.open(index.location, root=str(workspace))
    assert store.stats().files == 0 and store.stats().chunks > 0  # rows without their commit point

    monkeypatch.setattr("indexing.store._files_table", real_files_table)
    fresh = make_index(workspace, cache_dir)
    fresh.index()
    stats = fresh.store.stats()
    ids = fresh.store.chunk_ids_without_vectors()
    assert stats.files == 7 and len(ids) == len(set(ids)) == stats.chunks
    assert len(fresh.find_symbols("apply_discount", role="definition")) == 1


def test_many_single_file_updates_are_compacted_in_the_background(workspace: Path, cache_dir: Path) -> None:
    settings = LEXICAL.model_copy(update={"compact_after_fragments": 6})
    index = make_index(workspace, cache_dir, settings)
    index.index()
    target = workspace / "shop" / "tax.py"
    for i in range(12):
        target.write_text(f"def levy_version_{i}():\n    return {i}\n")
        index.update_paths([target])
        assert index.search(f"levy_version_{i}")[0].symbol == f"levy_version_{i}"
    index.wait_for_maintenance(60)
    assert index.store.max_fragments() < 6
    assert [h.symbol for h in index.search("levy_version_11")][:1] == ["levy_version_11"]
    assert index.find_symbols("levy_version_3") == []


def test_parser_processes_index_a_larger_workspace(workspace: Path, cache_dir: Path) -> None:
    for i in range(70):
        (workspace / "shop" / f"mod_{i}.py").write_text(f"def worker_made_{i}(x):\n    return x * {i}\n")
    settings = LEXICAL.model_copy(update={"workers": 2, "batch_files": 25})
    index = make_index(workspace, cache_dir, settings)
    report = index.index()
    assert report.files_indexed == 77 and not report.errors
    assert index.find_symbols("worker_made_69", role="definition")[0].path == "shop/mod_69.py"
    assert index.search("worker_made_12")[0].symbol == "worker_made_12"
    # Groups parsed by this process while the pool started (from the back of the queue) and groups
    # parsed by the workers: every file once, none twice.
    defined = index.find_symbols("worker_made_", prefix=True, role="definition", limit=1000)
    assert sorted(s.path for s in defined) == sorted(f"shop/mod_{i}.py" for i in range(70))


def test_a_warm_pool_leaves_every_group_to_the_parser_processes(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With the fork server started before the run (as `agentls index` starts it), this process parses
    nothing itself: its first group would pay for importing detect-secrets while the pool runs anyway."""
    import indexing.parsing as parsing

    for i in range(70):
        (workspace / "shop" / f"mod_{i}.py").write_text(f"def warm_made_{i}(x):\n    return x * {i}\n")
    parsing.warm_up_parsers()
    monkeypatch.setattr(parsing, "_PRELOAD_SECONDS", 0.0)  # the run waits for the server if need be
    settings = LEXICAL.model_copy(update={"workers": 2, "batch_files": 25})
    with caplog.at_level("DEBUG", logger="indexing.service"):
        report = make_index(workspace, cache_dir, settings).index()
    assert report.files_indexed == 77 and not report.errors
    assert "parsed 0 groups in-process while the parser processes started" in caplog.text


def test_a_failed_write_fails_the_run_and_keeps_the_batches_before_it(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write's error (a full disk) is the run's, and the batches written before it stay: the next run
    starts from them."""
    from indexing.store import IndexStore

    for i in range(90):
        (workspace / "shop" / f"mod_{i}.py").write_text(f"def batch_made_{i}(x):\n    return x * {i}\n")
    settings = LEXICAL.model_copy(update={"workers": 2, "batch_files": 25})
    real_write = IndexStore.write_batch
    writes: list[int] = []

    def failing_third_write(self: IndexStore, items: object, known: object = None, **kw: bool) -> None:
        writes.append(len(items))  # type: ignore[arg-type]
        if len(writes) == 3:
            raise OSError(28, "No space left on device")
        real_write(self, items, known=known, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(IndexStore, "write_batch", failing_third_write)
    index = make_index(workspace, cache_dir, settings)
    with pytest.raises(OSError, match="No space left"):
        index.index()
    assert len(writes) == 3  # nothing was written after the failed write
    monkeypatch.setattr(IndexStore, "write_batch", real_write)
    report = index.index()
    assert report.files_unchanged == 50 and report.files_indexed == 47 and not report.errors


def test_only_the_last_batch_of_a_run_writes_its_tables_at_once(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batches written while the parser processes run write their tables one after the other (the
    processes have the cores); the last one, written when they are done, each table in a thread."""
    from indexing.store import IndexStore

    for i in range(70):
        (workspace / "shop" / f"mod_{i}.py").write_text(f"def last_made_{i}(x):\n    return x * {i}\n")
    settings = LEXICAL.model_copy(update={"workers": 2, "batch_files": 25})
    real_write = IndexStore.write_batch
    writes: list[tuple[int, bool]] = []

    def recorded(self: IndexStore, items: object, known: object = None, *, at_once: bool = False) -> None:
        writes.append((len(items), at_once))  # type: ignore[arg-type]
        real_write(self, items, known=known, at_once=at_once)  # type: ignore[arg-type]

    monkeypatch.setattr(IndexStore, "write_batch", recorded)
    index = make_index(workspace, cache_dir, settings)
    report = index.index()
    assert report.files_indexed == 77 and not report.errors
    assert writes == [(25, False), (25, False), (25, False), (2, True)]
    assert index.search("last_made_12")[0].symbol == "last_made_12"


def test_a_huge_query_is_cut_to_its_start(tmp_path: Path) -> None:
    """18 MB of query words made Lance's full-text search abort the process; the start of a pasted file
    still finds what it is about."""
    from indexing.config import EmbeddingSettings
    from indexing.service import MAX_QUERY_CHARS, WorkspaceIndex

    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def clamp_value(x):\n    return max(0, min(1, x))\n")
    index = WorkspaceIndex(
        root, IndexSettings(embedding=EmbeddingSettings(provider="none")), cache_dir=tmp_path / "c", env={}
    )
    index.index()
    started = time.monotonic()
    hits = index.search("clamp_value " + "noise " * 3_000_000, limit=3)
    assert hits and hits[0].path == "a.py"
    assert time.monotonic() - started < 10
    assert MAX_QUERY_CHARS >= 2000  # a stack trace fits

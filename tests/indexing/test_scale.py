"""Costs that grow with the workspace: every write deletes its files' rows through a path index,
looking for an embedding model that is not on the machine costs no import, and the rows of parsed files
are written in batches bounded in bytes (memory stays flat however large the files are)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from indexing import service
from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex, file_groups
from indexing.store import FileBatchItem, IndexStore
from indexing.walker import FileEntry

REPO = Path(__file__).resolve().parents[2]


def test_chunk_and_file_rows_are_found_by_path_through_an_index(workspace: Path, cache_dir: Path) -> None:
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    index.index()
    tables = index.store._tables
    # A save deletes the file's rows from every table first: on the kernel's 1.2 M chunk rows, a scan of
    # the path column took 0.25-0.5 s of the 0.34 s a save took to become searchable.
    assert "path_idx" in {i.name for i in tables["chunks"].list_indices()}
    assert "path_idx" in {i.name for i in tables["files"].list_indices()}
    # Chunks are read by id only for vector hits: a lexical index does without that index (60 MB on the
    # kernel).
    assert "id_idx" not in {i.name for i in tables["chunks"].list_indices()}
    target = workspace / "shop" / "pricing.py"
    target.write_text(target.read_text() + "\ndef zebra_levy_total():\n    return 0\n")
    index.update_paths([target])
    assert index.search("zebra levy total", limit=1)[0].symbol == "zebra_levy_total"
    hits = index.search("apply_discount", limit=50)
    assert len([h for h in hits if h.path == "shop/pricing.py" and h.symbol == "apply_discount"]) == 1


def test_a_model_missing_from_the_hub_cache_is_found_missing_without_importing_huggingface_hub(
    tmp_path: Path,
) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from indexing.config import EmbeddingSettings\n"
        "from indexing.embeddings import load_embedder\n"
        f"load = load_embedder(EmbeddingSettings(), cache_dir=Path({str(tmp_path)!r}), "
        f"env={{'HF_HUB_CACHE': {str(tmp_path / 'hub')!r}}})\n"
        "assert load.embedder is None and load.notice\n"
        "print('huggingface_hub' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


def test_parsed_rows_are_written_once_they_reach_the_batch_byte_limit(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted in files only (1,000 a batch), a batch of the kernel's large headers held a gigabyte of
    rows until it was written: the run peaked at 2.5 GB. A batch is now written at `_BATCH_BYTES`."""
    batches: list[int] = []
    real_write = IndexStore.write_batch

    def write_batch(
        store: IndexStore, items: list[FileBatchItem], known: object = None, *, at_once: bool = False
    ) -> None:
        batches.append(len(items))
        real_write(store, items, known, at_once=at_once)  # type: ignore[arg-type]

    monkeypatch.setattr(IndexStore, "write_batch", write_batch)
    monkeypatch.setattr(service, "_BATCH_BYTES", 1)  # every file's rows are more than that
    report = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir).index()
    assert report.files_indexed > 3
    assert batches == [1] * report.files_indexed


def test_files_go_to_the_parsers_in_groups_bounded_in_count_and_bytes() -> None:
    entries = [FileEntry(f"f{n}", f"/w/f{n}", size, 0) for n, size in enumerate([1, 1, 5, 1, 1, 1, 2, 2])]
    groups = [[e.path for e in group] for group in file_groups(entries, files=2, max_bytes=3)]
    assert groups == [["f0", "f1"], ["f2"], ["f3", "f4"], ["f5", "f6"], ["f7"]]

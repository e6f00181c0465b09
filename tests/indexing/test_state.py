"""The index's file state (`indexing.state`): an unchanged workspace is confirmed without opening the
index, with the report a real run gives, and any change, writer or interruption sends the run to the
index again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import pytest

from indexing import service
from indexing import state as files_state
from indexing.config import IndexSettings, RerankSettings
from indexing.service import IndexCancelled, WorkspaceIndex
from indexing.state import STATE_NAME, unchanged_report
from indexing.store import IndexStore

REPO = Path(__file__).resolve().parents[2]


def _quick(index: WorkspaceIndex) -> dict[str, object] | None:
    report = unchanged_report(index.root, index.settings, index.location, index._lexical_notice)
    if report is None:
        return None
    found = asdict(report)
    found.pop("seconds")
    return found


def test_an_unchanged_workspace_gets_the_report_of_a_real_run(workspace: Path, cache_dir: Path) -> None:
    (workspace / "blob.py").write_bytes(b"\x00\x01binary\x00" * 50)  # skipped when read, not by the walk
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    first = index.index()
    assert first.skipped.get("binary") and (index.location / STATE_NAME).exists()
    quick = _quick(index)
    assert quick is not None
    index.close()
    (index.location / STATE_NAME).unlink()  # the same run through the index, for comparison
    real = asdict(WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir).index())
    real.pop("seconds")
    assert quick == real
    assert real["files_unchanged"] == first.files_indexed and real["lexical_only"]


@pytest.mark.parametrize("change", ["edit", "add", "remove", "save", "settings"])
def test_any_change_or_writer_sends_the_run_to_the_index(
    workspace: Path, cache_dir: Path, change: str
) -> None:
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    index.index()
    assert _quick(index) is not None
    target = workspace / "shop" / "pricing.py"
    if change == "edit":
        os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 1_000_000))
    elif change == "add":
        (workspace / "shop" / "new.py").write_text("x = 1\n")
    elif change == "remove":
        target.unlink()
    elif change == "save":  # the language server's update on save writes the index
        index.update_paths([target])
    else:
        index = WorkspaceIndex(workspace, IndexSettings(window_lines=30), cache_dir=cache_dir)
    assert _quick(index) is None
    if change != "save":
        report = index.index()
        assert report.files_indexed + report.files_removed + report.files_unchanged > 0
        assert _quick(index) is not None  # the full run wrote it again


def test_an_interrupted_run_leaves_no_state(workspace: Path, cache_dir: Path) -> None:
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    index.index()
    for n in range(60):
        (workspace / f"mod{n}.py").write_text(f"def f{n}():\n    return {n}\n")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(IndexCancelled):
        index.index(cancel=cancel)
    assert not (index.location / STATE_NAME).exists()
    assert _quick(index) is None


def test_cli_index_of_an_unchanged_workspace_does_not_load_lancedb(workspace: Path, cache_dir: Path) -> None:
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-X", "importtime", "-m", "server.cli", "index", "--json", "-q", "."]
    first = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert " lancedb._lancedb\n" not in again.stderr and " pyarrow\n" not in again.stderr
    report = json.loads(again.stdout)
    assert report["files_unchanged"] == json.loads(first.stdout)["files_indexed"] > 0
    assert report["files_indexed"] == 0 and "Skipped: 1 binary, 1 secret" in again.stderr


def test_a_run_after_a_few_changes_walks_once_and_reads_only_their_file_rows(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One edited kernel file cost three walks of the tree (the CLI's check, the run's check, the run)
    and a read of all 83,000 file rows; the run now uses the check's walk and reads the changed rows."""
    (workspace / "blob.py").write_bytes(b"\x00\x01binary\x00" * 50)  # skipped when read, kept so
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    index.index()
    pricing = workspace / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\ndef zebra_levy_total():\n    return 0\n")
    (workspace / "shop" / "tax.py").write_text("def quagga_fee_amount():\n    return 1\n")
    (workspace / "shop" / "invoice.py").unlink()
    walks: list[str] = []
    reads: list[list[str] | None] = []
    real_walk, real_records = files_state.walk, IndexStore.file_records

    def counted_walk(*args: object, **kwargs: object) -> object:
        walks.append("walk")
        return real_walk(*args, **kwargs)  # type: ignore[arg-type]

    def recorded(store: IndexStore, paths: object = None) -> object:
        reads.append(None if paths is None else sorted(paths))  # type: ignore[call-overload]
        return real_records(store, paths)  # type: ignore[arg-type]

    monkeypatch.setattr(files_state, "walk", counted_walk)
    monkeypatch.setattr(service, "walk", counted_walk)
    monkeypatch.setattr(IndexStore, "file_records", recorded)
    report = index.index()
    assert walks == ["walk"]
    assert reads == [["shop/invoice.py", "shop/pricing.py", "shop/tax.py"]]
    assert (report.files_indexed, report.files_removed, report.skipped.get("binary")) == (2, 1, 2)
    assert index.search("zebra levy total", limit=1)[0].symbol == "zebra_levy_total"
    assert index.search("quagga fee amount", limit=1)[0].path == "shop/tax.py"
    assert not index.find_symbols("Invoice") or all(
        s.path != "shop/invoice.py" for s in index.find_symbols("Invoice")
    )
    # The state is written again, the binary file still in it: the next run is the quick one, and its
    # report is a full run's.
    quick = _quick(index)
    assert quick is not None and quick["skipped"] == report.skipped
    index.close()
    (index.location / STATE_NAME).unlink()
    real = asdict(WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir).index())
    real.pop("seconds")
    assert quick == real


def test_settings_that_do_not_shape_rows_keep_the_quick_path(workspace: Path, cache_dir: Path) -> None:
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    index.index()
    state_file = index.location / STATE_NAME
    # A state written before agentls had some of today's settings (the kernel's, before `shared` and
    # `rerank` came): a new setting at its default changes nothing that is stored.
    data = json.loads(state_file.read_text())
    older = json.loads(data["settings"])
    del older["rerank"], older["shared"]
    data["settings"] = json.dumps(older)
    state_file.write_text(json.dumps(data))
    assert _quick(index) is not None
    tuned = IndexSettings(
        search_process_idle=5, workers=2, rerank=RerankSettings(provider="api", url="http://x")
    )
    assert _quick(WorkspaceIndex(workspace, tuned, cache_dir=cache_dir)) is not None
    # A new setting not at its default, or one that shapes rows, sends the run to the index.
    assert _quick(WorkspaceIndex(workspace, IndexSettings(shared="s3://b/p"), cache_dir=cache_dir)) is None
    assert _quick(WorkspaceIndex(workspace, IndexSettings(max_line_chars=500), cache_dir=cache_dir)) is None


def test_a_scan_handed_to_another_process_runs_the_same_index_run(workspace: Path, cache_dir: Path) -> None:
    """The command line scans, the warm search process indexes: the scan crosses as JSON (`Scan.to_json`)
    and the run is the one the scan would give in the scanning process."""
    (workspace / "blob.py").write_bytes(b"\x00\x01binary\x00" * 50)
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    index.index()
    pricing = workspace / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\ndef zebra_levy_total():\n    return 0\n")
    (workspace / "shop" / "invoice.py").unlink()
    (workspace / ".env").write_text("TOKEN=x\n")  # a secret file: skipped by the walk, and carried over
    found = files_state.scan(index.root, index.settings, index.location, index._lexical_notice)
    assert found is not None and not found.unchanged
    crossed = files_state.Scan.from_json(json.loads(json.dumps(found.to_json())))
    for name in ("entries", "skipped", "changed", "removed", "kept_skipped", "stamp"):
        assert getattr(crossed, name) == getattr(found, name), name
    assert crossed.report == found.report and crossed.still_valid(index.location)
    # Another writer since the scan: the run does not trust it, and walks again (same outcome here).
    WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir).update_paths(
        [workspace / "shop" / "cart.py"]
    )
    assert not crossed.still_valid(index.location)
    report = index.index(scan=crossed)
    assert (report.files_indexed, report.files_removed, report.skipped.get("binary")) == (1, 1, 2)
    assert index.search("zebra levy total", limit=1)[0].symbol == "zebra_levy_total"
    # The files state it leaves (made from the entries' columns) is the one a full run writes.
    settings_json = index.settings.model_dump_json()
    left = files_state.FilesState.load(index.location, settings_json)
    index.close()
    (index.location / STATE_NAME).unlink()
    WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir).index()
    full = files_state.FilesState.load(index.location, settings_json)
    assert left is not None and full is not None
    assert (left.files, left.skipped) == (full.files, full.skipped) and "blob.py" in left.skipped
    with pytest.raises(ValueError):
        files_state.Scan.from_json({"format": 1, "paths": []})


def test_a_scan_with_changes_leaves_the_model_to_the_index_run(workspace: Path, cache_dir: Path) -> None:
    """Whether an embedding model loads now matters only when nothing changed (the scan's report is then
    the run's); with changes the run loads the model itself, so the command line that hands the scan to
    the warm search process need not import the embedding code (0.13 s)."""
    index = WorkspaceIndex(workspace, IndexSettings(), cache_dir=cache_dir)
    index.index()
    asked: list[str] = []

    def notice() -> str | None:
        asked.append("notice")
        return "no model"

    assert files_state.scan(index.root, index.settings, index.location, notice) is not None
    assert asked == ["notice"]  # unchanged: asked
    (workspace / "shop" / "tax.py").write_text("def quagga_fee_amount():\n    return 1\n")
    found = files_state.scan(index.root, index.settings, index.location, notice)
    assert asked == ["notice"] and found is not None and [e.path for e in found.changed] == ["shop/tax.py"]

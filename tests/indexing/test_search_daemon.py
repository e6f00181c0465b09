"""The warm search process (`indexing.search_daemon`): answers like an in-process search, sees new index
versions, retires itself for other settings, and lets ``agentls search`` skip importing LanceDB."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from indexing.config import IndexSettings
from indexing.models import IndexReport, SearchHit
from indexing.search_daemon import (
    fingerprint,
    index_run,
    query,
    running,
    serve,
    socket_path,
    spawn,
    wait_listening,
)
from indexing.service import WorkspaceIndex

REPO = Path(__file__).resolve().parents[2]


def _serving(index: WorkspaceIndex, print_: str, warm_up_after: float = 0.0) -> threading.Thread:
    options = {"idle": 20.0, "warm_up_after": warm_up_after}
    thread = threading.Thread(target=serve, args=(index, print_), kwargs=options, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not socket_path(index.location).exists():
        assert time.monotonic() < deadline, "the search process never listened"
        assert thread.is_alive(), "the search process ended before listening"
        time.sleep(0.02)
    return thread


def test_answers_as_the_index_does_sees_new_versions_and_retires_for_other_settings(
    workspace: Path, cache_dir: Path
) -> None:
    settings = IndexSettings()
    index = WorkspaceIndex(workspace, settings, cache_dir=cache_dir)
    index.index()
    print_ = fingerprint(settings.model_dump_json(), cache_dir)
    thread = _serving(WorkspaceIndex(workspace, settings, cache_dir=cache_dir), print_)

    details: dict[str, object] = {}
    hits = query(
        index.location, print_, "reduce a price by a percentage", limit=3, path=None, details=details
    )
    assert hits == index.search("reduce a price by a percentage", limit=3)
    assert details == {"model_present": False}  # no model in this cache (the CLI's note needs to know)
    assert hits and hits[0].symbol == "apply_discount"
    scoped = query(index.location, print_, "price", limit=10, path="tests")
    assert scoped and {h.path for h in scoped} == {"tests/test_cart.py"}
    # the files view (`agentls search --files`): each file once
    files = query(index.location, print_, "price", limit=10, path=None, files=True)
    assert files == index.search("price", limit=10, files=True)
    chunks = index.search("price", limit=10)
    assert files and len({h.path for h in files}) == len(files) > len({h.path for h in chunks})

    # A file indexed by another process (the CLI, the language server) is found by the next query.
    (workspace / "shop" / "tax.py").write_text("def compute_zebra_levy(amount):\n    return amount\n")
    index.update_paths([workspace / "shop" / "tax.py"])
    hits = query(index.location, print_, "zebra levy", limit=3, path=None)
    assert hits and hits[0].symbol == "compute_zebra_levy"

    # Settings or code it was not started with: no answer, and it exits (the next search starts anew).
    assert query(index.location, "other", "zebra", limit=3, path=None) is None
    thread.join(5)
    assert not thread.is_alive()
    assert not socket_path(index.location).exists()
    assert query(index.location, print_, "zebra", limit=3, path=None) is None


def test_an_index_run_in_the_warm_process_reports_progress_and_is_searched_next(
    workspace: Path, cache_dir: Path
) -> None:
    settings = IndexSettings()
    WorkspaceIndex(workspace, settings, cache_dir=cache_dir).index()
    print_ = fingerprint(settings.model_dump_json(), cache_dir)
    index = WorkspaceIndex(workspace, settings, cache_dir=cache_dir)
    thread = _serving(index, print_)
    (workspace / "shop" / "tax.py").write_text("def compute_zebra_levy(amount):\n    return amount\n")
    phases: list[str] = []
    report = index_run(index.location, print_, lambda phase, done, total: phases.append(phase))
    assert report is not None and (report.files_indexed, report.files_unchanged) == (1, 7)
    assert "scanning" in phases and "indexing" in phases
    hits = query(index.location, print_, "zebra levy", limit=3, path=None)
    assert hits and hits[0].symbol == "compute_zebra_levy"
    assert index_run(index.location, "other", lambda *_: None) is None  # other settings: not here
    thread.join(5)


def test_fingerprint_follows_settings_and_code(tmp_path: Path, cache_dir: Path) -> None:
    base = fingerprint(IndexSettings().model_dump_json(), cache_dir)
    assert base == fingerprint(IndexSettings().model_dump_json(), cache_dir)
    assert base != fingerprint(IndexSettings(window_lines=30).model_dump_json(), cache_dir)
    assert base != fingerprint(IndexSettings().model_dump_json(), tmp_path)
    # A model installed since (`agentls model pull`/`distill` write into <cache>/models): the process
    # that loaded no embedder must not go on answering lexically.
    (cache_dir / "models" / "distilled-minilm").mkdir(parents=True)
    with_model = fingerprint(IndexSettings().model_dump_json(), cache_dir)
    assert with_model != base
    (cache_dir / "models" / "tuned-code").mkdir()
    assert fingerprint(IndexSettings().model_dump_json(), cache_dir) != with_model


def test_a_long_index_path_gets_a_private_socket_elsewhere(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    path = socket_path(deep)
    assert len(os.fsencode(path)) <= 100 and path.name.endswith(".sock")
    assert socket_path(tmp_path / "short") == tmp_path / "short" / "search.sock"


def test_cli_search_uses_the_warm_process_without_importing_lancedb(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTLS_SEARCH_PROCESS", "1")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO)}
    (workspace / "agentls.toml").write_text("[index]\nsearch_process_idle = 30\n")
    command = [sys.executable, "-X", "importtime", "-m", "server.cli", "search", "apply a discount", "--json"]
    first = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert " lancedb._lancedb\n" in first.stderr  # indexed and searched here, then started the warm process
    location = IndexSettings().location(workspace, cache_dir)
    lock = location / "search.lock"
    deadline = time.monotonic() + 60
    while not socket_path(location).exists():
        assert time.monotonic() < deadline, (location / "search.log").read_text()
        time.sleep(0.1)
    pid = int(lock.read_text())
    try:
        second = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert second.stdout == first.stdout
        assert " lancedb._lancedb\n" not in second.stderr and " pyarrow\n" not in second.stderr
        # Nor numpy and httpx (half a second): the warm process says whether a model is on the machine,
        # and the note on lexical search is the same as the first search's.
        assert " numpy\n" not in second.stderr and " httpx\n" not in second.stderr
        note = "note: search is lexical: no embedding model here"
        assert note in first.stderr and note in second.stderr
        # Nor the settings (pydantic, the settings files' reading): the search card the first search left
        # says where the index is and what the warm process expects (server.cli.quick). The first search
        # read them without the agent's settings (tests/test_import_graph.py).
        for heavy in ("pydantic", "server.settings_files", "server.cli.main"):
            assert f" {heavy}\n" not in second.stderr, heavy
            assert f" {heavy}\n" in first.stderr, heavy
        # Another agentls.toml: the card no longer matches, the full path runs (and says what it ignores),
        # and leaves a card that repeats the warning on the quick path.
        (workspace / "agentls.toml").write_text("[index]\nsearch_process_idle = 30\nno_such_setting = 1\n")
        third = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
        fourth = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
        assert third.returncode == fourth.returncode == 0, third.stderr + fourth.stderr
        assert " pydantic\n" in third.stderr and " pydantic\n" not in fourth.stderr
        assert third.stdout == fourth.stdout == first.stdout
        warnings = [
            [ln for ln in run.stderr.splitlines() if not ln.startswith("import time:")]
            for run in (third, fourth)
        ]
        assert warnings[0] == warnings[1] and any("no_such_setting" in ln for ln in warnings[0]), warnings
    finally:
        os.kill(pid, signal.SIGTERM)


def test_cli_index_starts_the_warm_process_and_the_next_run_goes_to_it_without_the_settings_tree(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTLS_SEARCH_PROCESS", "1")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO), "CI": "1"}
    (workspace / "agentls.toml").write_text("[index]\nsearch_process_idle = 30\n")
    command = [sys.executable, "-X", "importtime", "-m", "server.cli", "index", "--json"]
    first = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert " pydantic\n" in first.stderr
    location = IndexSettings().location(workspace, cache_dir)
    deadline = time.monotonic() + 60
    while not socket_path(location).exists():  # the run started the warm process
        assert time.monotonic() < deadline, (location / "search.log").read_text()
        time.sleep(0.1)
    pid = int((location / "search.lock").read_text())
    try:
        (workspace / "shop" / "pricing.py").write_text("def price_with_tax(net):\n    return net * 1.2\n")
        second = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        report = json.loads(second.stdout)
        assert report["files_indexed"] == 1 and report["files_unchanged"] > 0
        for heavy in ("pydantic", "server.settings", "lancedb._lancedb", "indexing.model_store"):
            assert f" {heavy}\n" not in second.stderr, heavy
        assert "Indexed " in second.stderr and "Skipped: " in second.stderr
    finally:
        os.kill(pid, signal.SIGTERM)


def _listening(location: Path) -> bool:
    deadline = time.monotonic() + 60
    while not socket_path(location).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _stop(location: Path) -> None:
    """Stop the search process of the index at ``location`` and wait until it is gone."""
    os.kill(int((location / "search.lock").read_text()), signal.SIGTERM)
    deadline = time.monotonic() + 20
    while running(location):
        assert time.monotonic() < deadline, "the search process did not stop"
        time.sleep(0.05)


def test_cli_index_with_no_warm_process_starts_one_and_hands_it_its_scan(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a cold start (no search process), `agentls index` after an edit starts the search process at
    once, scans the workspace meanwhile without the settings tree or LanceDB, and the process indexes only
    what the scan found changed (issue 16: one edited kernel file took 3.1-3.5 s this way, 2.6 s of it
    the command line's own CPU)."""
    monkeypatch.setenv("AGENTLS_SEARCH_PROCESS", "1")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO), "CI": "1"}
    (workspace / "agentls.toml").write_text("[index]\nsearch_process_idle = 30\n")
    command = [sys.executable, "-X", "importtime", "-m", "server.cli", "index", "--json"]
    first = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    location = IndexSettings().location(workspace, cache_dir)
    assert _listening(location), (location / "search.log").read_text()
    _stop(location)
    try:
        (workspace / "shop" / "pricing.py").write_text("def price_with_tax(net):\n    return net * 1.2\n")
        second = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        report = json.loads(second.stdout)
        assert (report["files_indexed"], report["files_unchanged"]) == (
            1,
            json.loads(first.stdout)["files_indexed"] - 1,
        )
        for heavy in ("server.settings", "server.cli.main", "lancedb._lancedb", "indexing.embeddings"):
            assert f" {heavy}\n" not in second.stderr, heavy
        assert "index run: 1 changed files" in (location / "search.log").read_text()  # not walked again
        print_ = fingerprint(IndexSettings(search_process_idle=30).model_dump_json(), cache_dir)
        hits = query(location, print_, "price with tax", limit=1, path=None)
        assert hits and hits[0].symbol == "price_with_tax"
        # Nothing changed: the scan's report, and the process started for the next run.
        _stop(location)
        third = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
        assert third.returncode == 0, third.stderr
        assert json.loads(third.stdout)["files_indexed"] == 0
        assert " server.cli.main\n" not in third.stderr and " lancedb._lancedb\n" not in third.stderr
        assert _listening(location), (location / "search.log").read_text()
    finally:
        if running(location):
            _stop(location)


def test_cli_index_while_the_warm_process_starts_scans_meanwhile_and_hands_it_the_scan(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A search process that holds its lock but does not listen yet (the run just before started it, and
    it imports LanceDB): `agentls index` scans the workspace itself meanwhile and hands the process its
    scan, rather than waiting for it to start and then walk the tree."""
    from server.cli import quick

    monkeypatch.setenv("AGENTLS_SEARCH_PROCESS", "1")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO), "CI": "1"}
    (workspace / "agentls.toml").write_text("[index]\nsearch_process_idle = 30\n")
    command = [sys.executable, "-m", "server.cli", "index", "--json"]
    first = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    location = IndexSettings().location(workspace, cache_dir)
    assert _listening(location), (location / "search.log").read_text()
    _stop(location)
    (workspace / "shop" / "pricing.py").write_text("def price_with_tax(net):\n    return net * 1.2\n")
    handed: list[object] = []

    def index_run(location: Path, fingerprint: str, progress: object, **kwargs: object) -> IndexReport:
        handed.append(kwargs.get("scan"))
        return IndexReport(root=str(workspace), files_indexed=1)

    monkeypatch.setattr("indexing.search_daemon.index_run", index_run)
    with open(location / "search.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a process that started and does not listen yet
        threading.Timer(0.5, socket_path(location).touch).start()
        try:
            assert quick.quick_index(["index", "--json", str(workspace)], env) == 0
        finally:
            socket_path(location).unlink(missing_ok=True)
    [scan] = handed
    assert scan is not None and not getattr(scan, "unchanged", True)
    assert json.loads(capsys.readouterr().out)["files_indexed"] == 1


class _Recording(WorkspaceIndex):
    """A real index that notes its searches (the warm-up is one)."""

    searches: list[str]

    def search(self, query: str, *args: object, **kwargs: object) -> list[SearchHit]:
        self.searches.append(query)
        return super().search(query, *args, **kwargs)  # type: ignore[arg-type]


def test_started_for_an_index_run_it_listens_first_and_warms_up_after_it(
    workspace: Path, cache_dir: Path
) -> None:
    settings = IndexSettings()
    WorkspaceIndex(workspace, settings, cache_dir=cache_dir).index()
    print_ = fingerprint(settings.model_dump_json(), cache_dir)
    index = _Recording(workspace, settings, cache_dir=cache_dir)
    index.searches = []
    thread = _serving(index, print_, warm_up_after=60.0)
    assert index.searches == []  # the run it was started for does not wait for a warm-up
    report = index_run(index.location, print_, lambda *_: None)
    assert report is not None and report.files_unchanged > 0
    deadline = time.monotonic() + 10
    while index.searches != ["warm up"]:
        assert time.monotonic() < deadline, index.searches
        time.sleep(0.05)
    assert query(index.location, "other", "x", limit=1, path=None) is None  # ends it
    thread.join(5)


def test_waiting_for_a_process_that_ends_without_listening_stops_at_once(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    started = time.monotonic()
    assert not wait_listening(tmp_path, process, 30)
    assert time.monotonic() - started < 10
    assert not wait_listening(tmp_path, None, 30)  # no process holds the search lock


def test_waiting_goes_on_while_another_process_holds_the_search_lock(tmp_path: Path) -> None:
    """Two commands started a process each: the second exits at once (the first holds the lock), and the
    waiting goes on until the first listens."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    with open(tmp_path / "search.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as the first process holds it
        threading.Timer(0.5, socket_path(tmp_path).touch).start()
        started = time.monotonic()
        assert wait_listening(tmp_path, process, 30)
        assert time.monotonic() - started >= 0.4


def test_the_search_process_runs_agentls_code_not_a_package_of_the_same_name_in_the_workspace(
    workspace: Path, cache_dir: Path
) -> None:
    """A workspace with its own top-level ``indexing`` package (agentls' own repository, or one made to look
    like it) must not be what the search process imports: it is started in the workspace's folder, and
    ``python -m`` puts the current folder first on sys.path. It imported the workspace's copy, whose
    fingerprint never matched, so every client found it stale (and it ran the workspace's code)."""
    marker = workspace / "imported-the-workspace-copy"
    shadow = workspace / "indexing"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    (shadow / "search_daemon.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    settings = IndexSettings(search_process_idle=30)
    index = WorkspaceIndex(workspace, settings, cache_dir=cache_dir)
    index.index()
    print_ = fingerprint(settings.model_dump_json(), cache_dir)
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir)}
    cwd = os.getcwd()
    os.chdir(workspace)  # where `agentls index` runs
    try:
        process = spawn(workspace, settings.model_dump_json(), cache_dir, index.location, env, idle=30)
    finally:
        os.chdir(cwd)
    assert process is not None
    try:
        assert _listening(index.location), (index.location / "search.log").read_text()
        assert not marker.exists()
        report = index_run(index.location, print_, lambda *_: None)
        assert report is not None and report.files_unchanged > 0  # its fingerprint is agentls' own
    finally:
        if running(index.location):
            _stop(index.location)

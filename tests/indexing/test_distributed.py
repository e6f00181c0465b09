"""`agentls index --engine ray` on a local Ray cluster (tests/ray_cluster.py): the index it builds is the
local engine's, row for row; a run killed or cancelled before its commit leaves the previous index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from indexing.config import IndexSettings
from indexing.service import IndexCancelled, WorkspaceIndex
from indexing.state import unchanged_report
from tests.ray_cluster import RayCluster, ray_cluster
from tests.trusted_settings import trust_workspace_settings

__all__ = ["ray_cluster"]  # the fixture, imported for pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install 'agentls[ray]' runs these tests")
pytest.importorskip("lance", reason="pylance is not installed: pip install 'agentls[ray]' runs these tests")

WORKSPACES = Path(__file__).parent.parent / "workspaces"
QUERIES = ["price discount", "Inventory reserve stock", "ledger balance", "parse_price", "send email"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(WORKSPACES / "stubs", root)
    return root


def _env(tmp_path: Path, name: str) -> dict[str, str]:
    """A cache of its own per index, and no embedding model (HF_HOME empty): both runs are lexical."""
    return {"AGENTLS_CACHE_DIR": str(tmp_path / name), "HF_HOME": str(tmp_path / "hf")}


def _cli_index(root: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    from click.testing import CliRunner

    from server.cli import main

    result = CliRunner().invoke(main, ["index", str(root), "--json", "-q", *args], env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    report: dict[str, Any] = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    return report


def _open(root: Path, env: dict[str, str]) -> WorkspaceIndex:
    return WorkspaceIndex(root, IndexSettings(), cache_dir=Path(env["AGENTLS_CACHE_DIR"]), env=env)


def _rows(index: WorkspaceIndex, table: str, key: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        index.store._tables[table].to_arrow().sort_by([(k, "ascending") for k in key]).to_pylist()
    )
    return rows


def _versions(index: WorkspaceIndex) -> dict[str, int]:
    return {name: table.version for name, table in index.store._tables.items()}


def test_ray_index_equals_the_local_index(workspace: Path, tmp_path: Path, ray_cluster: RayCluster) -> None:
    """...and as a local run does, a Ray run gives a PHP ``{@inheritDoc}`` method its interface's doc from
    another file (before session 28 it skipped that pass: the rows differed)."""
    from tests.indexing.test_inherited_docs import INTERFACE, LARGE

    (workspace / "php" / "Contracts").mkdir(parents=True)
    (workspace / "php" / "Contracts" / "ArchiveInterface.php").write_text(INTERFACE)
    (workspace / "php" / "BigArchive.php").write_text(LARGE)
    local_env, ray_env = _env(tmp_path, "local"), _env(tmp_path, "ray")
    local_report = _cli_index(workspace, local_env)
    ray_report = _cli_index(workspace, ray_env, "--engine", "ray", "--address", ray_cluster.address)
    for key in ("files_seen", "files_indexed", "chunks", "symbols", "skipped", "lexical_only", "errors"):
        assert ray_report[key] == local_report[key], key
    assert ray_report["files_indexed"] > 10

    local, ray = _open(workspace, local_env), _open(workspace, ray_env)
    assert _rows(ray, "files", ["path"]) == _rows(local, "files", ["path"])
    assert _rows(ray, "chunks", ["id"]) == _rows(local, "chunks", ["id"])
    borrowed = [r for r in _rows(ray, "chunks", ["id"]) if r["path"] == "php/BigArchive.php"]
    assert any("parchment scrolls" in r["search_text"] for r in borrowed), borrowed
    symbol_key = ["path", "line", "column", "name", "role", "kind"]
    assert _rows(ray, "symbols", symbol_key) == _rows(local, "symbols", symbol_key)
    # The same indexes (full-text above all), so search answers alike.
    for table in ("chunks", "symbols", "files"):
        names = {i.name for i in ray.store._tables[table].list_indices()}
        assert names == {i.name for i in local.store._tables[table].list_indices()}, table
    for query in QUERIES:
        assert ray.search(query) == local.search(query), query

    # The file state says it is up to date: the next local run opens nothing and parses nothing.
    settings = IndexSettings()
    quick = unchanged_report(workspace, settings, ray.location, lambda: "no model")
    assert quick is not None and quick.files_unchanged == local_report["files_indexed"]
    (workspace / "shop" / "zebra.py").write_text("def zebra_crossing_total():\n    return 7\n")
    again = _open(workspace, ray_env).index()
    assert (again.files_indexed, again.files_unchanged) == (1, local_report["files_indexed"])


def test_a_second_ray_run_parses_only_the_changes(
    workspace: Path, tmp_path: Path, ray_cluster: RayCluster
) -> None:
    ray_env, local_env = _env(tmp_path, "ray"), _env(tmp_path, "local")
    first = _cli_index(workspace, ray_env, "--engine", "ray", "--address", ray_cluster.address)
    pricing = workspace / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\n\ndef zebra_surcharge(total):\n    return total * 2\n")
    (workspace / "shop" / "okapi.py").write_text("def okapi_discount_rate():\n    return 0.5\n")
    gone = next(
        p for p in sorted((workspace / "shop").glob("*.py")) if p.name not in ("pricing.py", "okapi.py")
    )
    gone.unlink()

    again = _cli_index(workspace, ray_env, "--engine", "ray", "--address", ray_cluster.address)
    assert (again["files_indexed"], again["files_removed"]) == (2, 1)
    assert again["files_unchanged"] == first["files_indexed"] - 2

    # The result is the index a local engine builds of the same tree from scratch.
    _cli_index(workspace, local_env)
    local, ray = _open(workspace, local_env), _open(workspace, ray_env)
    assert _rows(ray, "files", ["path"]) == _rows(local, "files", ["path"])
    assert _rows(ray, "chunks", ["id"]) == _rows(local, "chunks", ["id"])
    symbol_key = ["path", "line", "column", "name", "role", "kind"]
    assert _rows(ray, "symbols", symbol_key) == _rows(local, "symbols", symbol_key)
    assert ray.search("zebra surcharge")[0].symbol == "zebra_surcharge"
    assert ray.search("okapi discount rate")[0].path == "shop/okapi.py"


_KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from indexing.config import IndexSettings
from indexing.distributed import RayIndexer
from indexing.service import WorkspaceIndex

root, cache, address = sys.argv[1], sys.argv[2], sys.argv[3]
env = {"AGENTLS_CACHE_DIR": cache, "HF_HOME": cache + "-hf"}
index = WorkspaceIndex(Path(root), IndexSettings(), cache_dir=Path(cache), env=env)

def progress(phase, done, total):
    if phase == "indexing" and done > 0:  # a task wrote its fragments: the driver dies before the commit
        os.kill(os.getpid(), signal.SIGKILL)

RayIndexer(index, address).index(progress=progress)
"""


def _data_files(index: WorkspaceIndex) -> int:
    return sum(1 for _ in (index.location / "lance" / "chunks.lance" / "data").iterdir())


def test_a_killed_ray_run_leaves_the_previous_index(
    workspace: Path, tmp_path: Path, ray_cluster: RayCluster
) -> None:
    env = _env(tmp_path, "cache")
    index = _open(workspace, env)
    before = index.index()
    versions, files_before = _versions(index), _data_files(index)
    hits_before = index.search("price discount")
    (workspace / "shop" / "zebra.py").write_text("def zebra_crossing_total():\n    return 7\n")

    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, str(workspace), env["AGENTLS_CACHE_DIR"], ray_cluster.address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]

    after = _open(workspace, env)
    assert _data_files(after) > files_before  # the workers did write fragments...
    assert _versions(after) == versions  # ...that no table refers to
    assert after.store.stats().files == before.files_indexed
    assert after.search("price discount") == hits_before
    assert all(hit.path != "shop/zebra.py" for hit in after.search("zebra_crossing_total"))
    resumed = after.index()  # and the next run is a plain incremental one
    assert (resumed.files_indexed, resumed.files_unchanged) == (1, before.files_indexed)
    assert after.search("zebra_crossing_total")[0].path == "shop/zebra.py"


def test_a_cancelled_ray_run_commits_nothing(
    workspace: Path, tmp_path: Path, ray_cluster: RayCluster
) -> None:
    from indexing.distributed import RayIndexer

    env = _env(tmp_path, "cache")
    index = _open(workspace, env)
    index.index()
    versions = _versions(index)
    for path in (workspace / "shop").glob("*.py"):  # work for the run: it parses only changed files
        path.write_text(path.read_text() + "\n# edited\n")
    cancel = threading.Event()

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "indexing" and done > 0:
            cancel.set()

    with pytest.raises(IndexCancelled, match="previous index is unchanged"):
        RayIndexer(index, ray_cluster.address).index(progress=progress, cancel=cancel)
    index.store.refresh()
    assert _versions(index) == versions
    assert index.search("price discount")


def test_ray_workers_embed_like_the_local_engine(
    workspace: Path, tmp_path: Path, distilled_model: Path, ray_cluster: RayCluster
) -> None:
    from indexing.distributed import RayIndexer
    from indexing.embeddings import DISTILLED_MODEL_NAME

    indexes = {}
    for name in ("local", "ray"):
        env = _env(tmp_path, name)
        models = Path(env["AGENTLS_CACHE_DIR"]) / "models"
        models.mkdir(parents=True)
        (models / DISTILLED_MODEL_NAME).symlink_to(distilled_model, target_is_directory=True)
        indexes[name] = _open(workspace, env)
    local_report = indexes["local"].index()
    ray_report = RayIndexer(indexes["ray"], ray_cluster.address).index()
    assert not ray_report.lexical_only and ray_report.vectors == local_report.vectors > 0
    local, ray = (_rows(indexes[n], "vectors", ["id"]) for n in ("local", "ray"))
    assert [r["id"] for r in ray] == [r["id"] for r in local]
    assert all(
        max(abs(a - b) for a, b in zip(mine["vector"], theirs["vector"], strict=True)) < 1e-5
        for mine, theirs in zip(ray, local, strict=True)
    )
    for query in QUERIES:
        assert indexes["ray"].search(query) == indexes["local"].search(query), query


_PASSWORD = "ray-embed-pw-51c0e2"


def _agentls_ray(
    root: Path, env: dict[str, str], address: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """``agentls [OPTIONS] index ROOT --json --engine ray``, installed (stdout, stderr and exit status as a
    user sees them), on this Ray cluster."""
    full = {**os.environ, **env, "HF_HUB_OFFLINE": "1", "CI": "1", "AGENTLS_SEARCH_PROCESS": "0"}
    command = ["agentls", *options, "index", str(root), "--json", "--engine", "ray", "--address", address]
    return subprocess.run(command, env=full, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("model", "fails", "answer"),
    [("fake-embed", "down", "could not reach"), ("text-embedding-3-small", "500", "answered HTTP 500")],
)
def test_a_failing_embedding_endpoint_leaves_a_lexical_index_and_the_next_ray_run_adds_the_vectors(
    workspace: Path, tmp_path: Path, ray_cluster: RayCluster, model: str, fails: str, answer: str
) -> None:
    """As the local engine (tests/server/test_cli_embedding_endpoint.py): an OpenAI-style endpoint with a
    password in its URL that is down (its model's size must be asked first) or answers 500 to the chunks'
    batches: exit status 3, one warning line naming the endpoint masked, chunks written without vectors and
    found by a search; then, the endpoint up, the next Ray run adds every vector."""
    from tests.fakes.embeddings_server import FakeEmbeddingsServer

    env = _env(tmp_path, "cache")
    with FakeEmbeddingsServer(dim=1536) as server:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        if fails == "down":
            server.stop()
        else:
            server.fail_always(int(fails))
        (workspace / "agentls.toml").write_text(
            f'[index.embedding]\nprovider = "openai"\nmodel = "{model}"\n'
            f'base_url = "http://indexer:{_PASSWORD}@127.0.0.1:{port}/v1"\n'
        )
        trust_workspace_settings(workspace, Path(env["AGENTLS_CACHE_DIR"]))
        shown = f"http://***@127.0.0.1:{port}/v1/embeddings"
        first = _agentls_ray(workspace, env, ray_cluster.address, "-vv")
        for stream in (first.stdout, first.stderr):
            assert _PASSWORD not in stream and "Traceback" not in stream, stream[-3000:]
        assert first.returncode == 3, first.stderr[-3000:]
        report = json.loads(first.stdout)
        assert report["embedding_failed"] and report["files_indexed"] > 10 and report["chunks"], report
        assert report["vectors"] == 0
        warnings = [
            line for line in first.stderr.splitlines() if line.startswith("warning: embedding failed")
        ]
        assert len(warnings) == 1, first.stderr[-3000:]
        assert shown in warnings[0] and answer in warnings[0], warnings[0]
        assert "the next index run adds the missing vectors" in warnings[0]
        index = _open(workspace, env)
        assert index.store.stats().files == report["files_indexed"]
        assert index.search("apply a discount")[0].symbol == "apply_discount"

        if fails == "down":
            up = FakeEmbeddingsServer(dim=1536, port=port).start()
        else:
            server.reset()
        try:
            second = _agentls_ray(workspace, env, ray_cluster.address)
        finally:
            if fails == "down":
                up.stop()
    assert second.returncode == 0, second.stderr[-3000:]
    filled = json.loads(second.stdout)
    assert not filled["embedding_failed"] and filled["vectors"] == report["chunks"], filled
    assert "warning" not in second.stderr, second.stderr[-3000:]

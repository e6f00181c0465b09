"""`agentls index` and `agentls search` when a remote embedding endpoint (`index.embedding.base_url`, with a
password in it) is down or answers errors, through the installed console script and a local endpoint
(`tests.fakes.embeddings_server`): one warning line naming the endpoint without its password, no
traceback, the index written and searchable lexically (exit status 3, README), and the vectors added by
the next run once the endpoint answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from indexing.config import IndexSettings
from indexing.search_daemon import running, socket_path
from indexing.store import IndexStore
from tests.fakes.embeddings_server import FakeEmbeddingsServer
from tests.trusted_settings import trust_workspace_settings

PASSWORD = "embed-pw-7f3b9d21e4"
WITHOUT_VECTORS = 3  # README: the index is written, some chunks wait for their vectors


def _free_port() -> int:
    with socket.socket() as probe:  # nothing listens on it once closed
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port(server: FakeEmbeddingsServer) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


def _configure(workspace: Path, cache: Path, port: int, model: str, idle: int = 0) -> str:
    """Settings for an OpenAI-style endpoint at ``port`` with a password, trusted in ``cache`` as the user
    does; the URL as it must be shown."""
    (workspace / "agentls.toml").write_text(
        f"[index]\nsearch_process_idle = {idle}\n"
        f'[index.embedding]\nprovider = "openai"\nmodel = "{model}"\n'
        f'base_url = "http://indexer:{PASSWORD}@127.0.0.1:{port}/v1"\n'
    )
    trust_workspace_settings(workspace, cache)
    return f"http://***@127.0.0.1:{port}/v1/embeddings"


def agentls(
    *args: str, cwd: Path, cache: Path, search_process: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AGENTLS_CACHE_DIR": str(cache),
        "HF_HUB_OFFLINE": "1",
        "CI": "1",
        "AGENTLS_SEARCH_PROCESS": "1" if search_process else "0",
    }
    return subprocess.run(["agentls", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def _clean(run: subprocess.CompletedProcess[str]) -> None:
    """No traceback and no password, on either stream."""
    for stream in (run.stdout, run.stderr):
        assert "Traceback" not in stream, stream
        assert PASSWORD not in stream, stream


def _vector_counts(workspace: Path, cache: Path) -> tuple[int, int]:
    """(chunks, chunks with a vector) of the workspace's index."""
    store = IndexStore.open(IndexSettings().location(workspace, cache), root=str(workspace.resolve()))
    missing, _ = store.chunks_without_vectors(["id"])
    chunks = int(store.table("chunks").count_rows())
    return chunks, chunks - missing


def _index_fails_then_fills(
    workspace: Path, cache: Path, shown: str, answer: str, server: FakeEmbeddingsServer | None, **run: Any
) -> None:
    """`agentls -v index --json` with the endpoint failing: exit status 3, one warning line naming the
    endpoint masked and saying ``answer``, the chunks written without vectors; a search finds them
    lexically. Then (``server`` healthy, or started) a second run adds every vector."""
    first = agentls("-vv", "index", "--json", cwd=workspace, cache=cache, **run)
    _clean(first)
    assert first.returncode == WITHOUT_VECTORS, first.stderr
    report = json.loads(first.stdout)
    assert report["embedding_failed"] and report["files_indexed"] and report["chunks"], report
    assert report["vectors"] == 0
    warnings = [line for line in first.stderr.splitlines() if line.startswith("warning: embedding failed")]
    assert len(warnings) == 1, first.stderr
    assert shown in warnings[0] and answer in warnings[0], warnings[0]
    assert "the next index run adds the missing vectors" in warnings[0]
    chunks, embedded = _vector_counts(workspace, cache)
    assert chunks == report["chunks"] and embedded == 0

    found = agentls("-vv", "search", "apply a discount", "--json", cwd=workspace, cache=cache, **run)
    _clean(found)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits and hits[0]["symbol"] == "apply_discount", hits

    if server is not None:
        server.reset()
        second = agentls("index", "--json", cwd=workspace, cache=cache, **run)
    else:
        with FakeEmbeddingsServer(port=int(shown.rsplit(":", 1)[1].split("/")[0])):
            second = agentls("index", "--json", cwd=workspace, cache=cache, **run)
    _clean(second)
    assert second.returncode == 0, second.stderr
    filled = json.loads(second.stdout)
    assert not filled["embedding_failed"] and filled["files_indexed"] == 0
    assert filled["vectors"] == chunks, filled
    assert _vector_counts(workspace, cache) == (chunks, chunks)
    assert "warning" not in second.stderr, second.stderr


def test_an_endpoint_that_is_down_leaves_a_lexical_index_and_the_next_run_adds_the_vectors(
    workspace: Path, cache_dir: Path
) -> None:
    """A closed port, with a model whose size the endpoint must tell (the first request is that probe):
    the old code ended in a traceback naming the URL with its password, and wrote no index."""
    port = _free_port()
    shown = _configure(workspace, cache_dir, port, "fake-embed")
    _index_fails_then_fills(workspace, cache_dir, shown, "could not reach", None)


@pytest.mark.parametrize(
    ("status", "answer"),
    [(500, "answered HTTP 500: boom"), (401, "answered HTTP 401: Provided API key is invalid")],
)
def test_an_endpoint_answering_errors_leaves_a_lexical_index_and_the_next_run_adds_the_vectors(
    workspace: Path, cache_dir: Path, status: int, answer: str
) -> None:
    """The endpoint answers 500 (retried, then given up) or 401 (at once), for a model of known size (the
    chunks' batches are what fail): the old code printed the password in its error lines, and exited 0."""
    with FakeEmbeddingsServer(dim=1536) as server:
        shown = _configure(workspace, cache_dir, _port(server), "text-embedding-3-small")
        body = '{"detail": "Provided API key is invalid."}' if status == 401 else None
        server.fail_always(status, body)
        _index_fails_then_fills(workspace, cache_dir, shown, answer, server)


def test_a_search_whose_query_cannot_be_embedded_is_answered_lexically_with_a_warning(
    workspace: Path, cache_dir: Path
) -> None:
    """An index with vectors, then the endpoint fails: the search answers from the full-text and symbol
    retrievers with one warning line (the old code: a traceback with the password)."""
    with FakeEmbeddingsServer(dim=1536) as server:
        shown = _configure(workspace, cache_dir, _port(server), "text-embedding-3-small")
        made = agentls("index", "--json", cwd=workspace, cache=cache_dir)
        assert made.returncode == 0 and json.loads(made.stdout)["vectors"], made.stderr
        server.fail_always(503)
        started = time.monotonic()
        found = agentls("-vv", "search", "apply a discount", "--json", cwd=workspace, cache=cache_dir)
        elapsed = time.monotonic() - started
    _clean(found)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["symbol"] == "apply_discount" and all("vector" not in h["sources"] for h in hits), hits
    warnings = [
        line for line in found.stderr.splitlines() if line.startswith("warning: vector search skipped")
    ]
    assert len(warnings) == 1 and shown in warnings[0] and "HTTP 503" in warnings[0], found.stderr
    assert elapsed < 30, elapsed  # one retry for a query, not an index run's backoff


def test_the_search_process_says_so_and_its_log_keeps_no_password(workspace: Path, cache_dir: Path) -> None:
    """With the warm search process: an index run in it with the endpoint failing (exit status 3 and the
    warning line), a search through it (the warning line), then the endpoint up and a run in it that adds
    the vectors; search.log names the endpoint only masked."""
    with FakeEmbeddingsServer(dim=1536) as server:
        port = _port(server)
        shown = _configure(workspace, cache_dir, port, "text-embedding-3-small", idle=60)
        location = IndexSettings().location(workspace, cache_dir)
        server.fail_always(500)
        try:
            _index_fails_then_fills(
                workspace, cache_dir, shown, "answered HTTP 500", server, search_process=True
            )
            assert running(location) and socket_path(location).exists()
            server.fail_always(500)
            found = agentls("search", "apply a discount", cwd=workspace, cache=cache_dir, search_process=True)
            _clean(found)
            assert found.returncode == 0 and "apply_discount" in found.stdout, found.stderr
            assert "warning: vector search skipped" in found.stderr and shown in found.stderr, found.stderr
        finally:
            if running(location):
                os.kill(int((location / "search.lock").read_text()), 15)
                deadline = time.monotonic() + 20
                while running(location) and time.monotonic() < deadline:
                    time.sleep(0.05)
    log = (location / "search.log").read_text()
    assert PASSWORD not in log and "Traceback" not in log, log
    assert shown in log, log  # the failures are in it, masked

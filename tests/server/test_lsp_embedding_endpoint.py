"""The language server when its remote embedding endpoint (a password in ``index.embedding.base_url``)
answers errors: the editor's index run is written without vectors and says so in one
``window/showMessage`` warning naming the endpoint masked; the server keeps running and ``agentls/search``
answers from the full-text index; once the endpoint answers, ``agentls.reindex`` adds the vectors."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from indexing.config import IndexSettings
from indexing.store import IndexStore
from tests.fakes.embeddings_server import FakeEmbeddingsServer
from tests.server.test_lsp_bad_input import RawServer

WORKSPACES = Path(__file__).resolve().parents[1] / "workspaces"
PASSWORD = "lsp-embed-pw-5a8c3e91"


def _shown(server: RawServer) -> list[str]:
    return [m["params"]["message"] for m in server.seen if m.get("method") == "window/showMessage"]


def _vectors(root: Path, cache: Path) -> tuple[int, int]:
    """(chunks, chunks with a vector) of the index of ``root``; (0, 0) before it has tables."""
    location = IndexSettings().location(root, cache)
    if not (location / "meta.json").exists():
        return 0, 0
    store = IndexStore.open(location, root=str(root.resolve()))
    if store.table("chunks") is None:
        return 0, 0
    missing, _ = store.chunks_without_vectors(["id"])
    chunks = int(store.table("chunks").count_rows())
    return chunks, chunks - missing


def test_the_editor_is_warned_once_search_works_and_a_reindex_adds_the_vectors(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(WORKSPACES / "python_app", root)
    cache = tmp_path / "cache"
    stderr = tmp_path / "stderr.log"
    with FakeEmbeddingsServer(dim=1536) as endpoint:
        endpoint.fail_always(500)
        base_url = endpoint.url.replace("http://", f"http://indexer:{PASSWORD}@")
        masked = endpoint.url.replace("http://", "http://***@") + "/embeddings"
        embedding = {"provider": "openai", "model": "text-embedding-3-small", "base_url": base_url}
        with stderr.open("wb") as log:
            server = RawServer(cache, args=("-v", "serve"), stderr=log, answer=lambda request: None)
        try:
            params: dict[str, Any] = {
                "processId": None,
                "rootUri": root.as_uri(),
                "capabilities": {},
                "initializationOptions": {"index": {"embedding": embedding}},
            }
            server.request("initialize", params, timeout=60)
            server.notify("initialized", {})
            deadline = time.monotonic() + 120
            while not any("embedding failed" in m for m in _shown(server)):
                assert time.monotonic() < deadline, _shown(server)
                server.no_response_for(0.2)
            (warning,) = [
                m
                for m in server.seen
                if m.get("method") == "window/showMessage" and "embedding failed" in m["params"]["message"]
            ]
            message = warning["params"]["message"]
            assert warning["params"]["type"] == 2, warning  # a warning, not an error
            assert masked in message and "HTTP 500" in message and PASSWORD not in message, message
            assert "the next index run adds the missing vectors" in message
            chunks, embedded = _vectors(root, cache)
            assert chunks and embedded == 0

            hits = server.request("agentls/search", {"query": "apply discount percent"}, timeout=60)["result"]
            assert hits and hits[0]["symbol"] == "apply_discount", hits

            endpoint.reset()
            command = {"command": "agentls.reindex", "arguments": []}
            server.request("workspace/executeCommand", command, timeout=60)
            deadline = time.monotonic() + 120
            while _vectors(root, cache) != (chunks, chunks):
                assert time.monotonic() < deadline, _vectors(root, cache)
                server.no_response_for(0.5)
            assert "result" in server.request("agentls/search", {"query": "discount"}, timeout=60)
            assert server.proc.poll() is None
        finally:
            server.close()
    assert not any(PASSWORD in m.get("params", {}).get("message", "") for m in server.seen if "method" in m)
    logged = stderr.read_text(errors="replace")
    assert masked in logged and PASSWORD not in logged, logged

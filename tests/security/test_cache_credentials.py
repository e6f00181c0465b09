"""No credential of the index settings in agentls' cache folder. The settings may hold one (a password in
``index.embedding.base_url``, an ``api_key`` in ``index.rerank.url``), and the files agentls keeps about an
index (the file state, the search card, the search process's log) only compare or name them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexing.config import EmbeddingSettings, IndexSettings, RerankSettings
from indexing.service import WorkspaceIndex
from indexing.state import STATE_NAME, FilesState, unchanged_report
from tests.fakes.embeddings_server import FakeEmbeddingsServer
from tests.fakes.rerank_server import rerank_endpoint
from tests.indexing.test_search_daemon import _listening, _stop
from tests.trusted_settings import trust_workspace_settings

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "embed-pw-9c41e07ab3"
API_KEY = "rerank-key-2d7f5e18c6b0"


def _files_holding(folder: Path, *values: str) -> list[str]:
    """The files under ``folder`` whose bytes hold one of ``values``."""
    return [
        str(path.relative_to(folder))
        for path in sorted(folder.rglob("*"))
        if path.is_file() and any(value.encode() in path.read_bytes() for value in values)
    ]


def test_index_and_search_leave_no_credential_of_the_settings_in_the_cache(
    workspace: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``agentls index`` twice, ``agentls search``, then ``agentls index`` with no search process, on
    settings with a password in the embedding endpoint and a key in the rerank endpoint: the search card
    kept the settings as written, and the search process's log the URLs httpx and the re-ranker named.
    The runs after the first re-index and re-embed nothing."""
    monkeypatch.setenv("AGENTLS_SEARCH_PROCESS", "1")
    env = {**os.environ, "AGENTLS_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO), "CI": "1"}
    env["AGENTLS_TEST_EMBED_KEY"] = "sk-test-embed-key"
    with FakeEmbeddingsServer() as server, rerank_endpoint() as reranker:
        endpoint = server.url.split("://", 1)[1]
        (workspace / "agentls.toml").write_text(
            "[index]\nsearch_process_idle = 30\n"
            f'[index.embedding]\nprovider = "openai"\nmodel = "fake-embed"\n'
            f'base_url = "http://indexer:{PASSWORD}@{endpoint}"\napi_key_env = "AGENTLS_TEST_EMBED_KEY"\n'
            f'[index.rerank]\nprovider = "api"\nurl = "{reranker.url()}?api_key={API_KEY}"\n'
        )
        trust_workspace_settings(workspace, cache_dir)
        index_command = [sys.executable, "-m", "server.cli", "index", "--json"]

        def agentls_index() -> dict[str, object]:
            run = subprocess.run(
                index_command, cwd=workspace, env=env, capture_output=True, text=True, timeout=120
            )
            assert run.returncode == 0, run.stderr
            report: dict[str, object] = json.loads(run.stdout)
            return report

        first = agentls_index()
        assert first["files_indexed"] and first["vectors"] and server.requests
        location = IndexSettings().location(workspace, cache_dir)
        assert _listening(location), (location / "search.log").read_text()  # the run started it
        try:
            second = agentls_index()  # in the search process
            assert (second["files_indexed"], second["vectors"]) == (0, 0)
            assert second["files_unchanged"] == first["files_indexed"]
            search = [sys.executable, "-m", "server.cli", "search", "apply a discount", "--json"]
            found = subprocess.run(search, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
            assert found.returncode == 0, found.stderr
            assert json.loads(found.stdout) and reranker.bodies
        finally:
            _stop(location)
        third = agentls_index()  # no search process: the card cannot start one
        assert (third["files_indexed"], third["vectors"]) == (0, 0)
        assert _listening(location), (location / "search.log").read_text()
        _stop(location)
    assert _files_holding(cache_dir, PASSWORD, API_KEY) == []
    log = (location / "search.log").read_text()
    assert "POST http://***@127.0.0.1" in log and "rerank?api_key=***" in log, log  # named, masked


def test_the_file_state_keeps_the_settings_masked_and_compares_them_so(
    workspace: Path, cache_dir: Path
) -> None:
    """A lexical index (no model here) keeps its file state, with the settings it was made with: masked.
    The same settings trust it; a new password for the same endpoint too (the rows do not depend on it);
    another endpoint does not. A state written before, settings as written, loads without an error, and
    the next run writes it masked."""

    def settings(password: str = PASSWORD, host: str = "embed.example") -> IndexSettings:
        return IndexSettings(
            embedding=EmbeddingSettings(base_url=f"https://indexer:{password}@{host}/v1"),
            rerank=RerankSettings(url=f"https://rerank.example/v2/rerank?api_key={API_KEY}"),
        )

    index = WorkspaceIndex(workspace, settings(), cache_dir=cache_dir)
    report = index.index()
    assert report.lexical_only and (index.location / STATE_NAME).exists()
    assert _files_holding(cache_dir, PASSWORD, API_KEY) == []

    def state_of(settings: IndexSettings) -> FilesState | None:
        return FilesState.load(index.location, settings.model_dump_json())

    assert state_of(settings()) is not None
    assert unchanged_report(index.root, settings(), index.location, index._lexical_notice) is not None
    assert WorkspaceIndex(workspace, settings(), cache_dir=cache_dir).index().files_indexed == 0
    assert state_of(settings(password="a-new-password-4411")) is not None
    assert state_of(settings(host="other.example")) is None

    # A state as the code before wrote it: the settings as they are, credentials and all.
    state = json.loads((index.location / STATE_NAME).read_text())
    (index.location / STATE_NAME).write_text(json.dumps({**state, "settings": settings().model_dump_json()}))
    assert state_of(settings()) is None  # not trusted, once: the run goes to the index
    assert unchanged_report(index.root, settings(), index.location, index._lexical_notice) is None
    again = WorkspaceIndex(workspace, settings(), cache_dir=cache_dir).index()
    assert again.files_indexed == 0 and state_of(settings()) is not None
    assert _files_holding(cache_dir, PASSWORD, API_KEY) == []
    # Without credentials in the settings, such a state is trusted as it is.
    plain = IndexSettings()
    WorkspaceIndex(workspace, plain, cache_dir=cache_dir).index()
    (index.location / STATE_NAME).write_text(json.dumps({**state, "settings": plain.model_dump_json()}))
    assert state_of(plain) is not None

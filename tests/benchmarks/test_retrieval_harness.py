"""The retrieval benchmark's index builder (`tests.benchmarks.retrieval.evaluate.open_agentls`): a hybrid
system whose model does not load stops the run, instead of scoring a lexical index as hybrid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.retrieval.evaluate import ModelNotLoaded, agentls_search, open_agentls


def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "rates.py").write_text("def throttle(calls, per_second):\n    return calls[:per_second]\n")
    return root


def test_a_model_folder_that_does_not_load_stops_the_hybrid_system(tmp_path: Path) -> None:
    # what a fresh machine has at the path the commands named before: nothing
    missing = tmp_path / "home" / ".cache" / "agentls-test" / "models" / "distilled-minilm"
    with pytest.raises(ModelNotLoaded, match="agentls model distill"):
        open_agentls(_workspace(tmp_path), tmp_path / "cache", model_dir=missing)


def test_a_model_that_loads_gives_a_hybrid_index(tmp_path: Path, distilled_model: Path) -> None:
    index = open_agentls(_workspace(tmp_path), tmp_path / "cache", model_dir=distilled_model)
    assert index.store.has_vectors
    assert agentls_search(index, vector_only=True)("limit calls per second")

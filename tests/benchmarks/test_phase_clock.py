"""The index benchmarks' phase clock: a phase runs until the next phase began, and each step of the
finishing phase (index builds, several at once in threads) has its own time, not the time until the
next step was announced."""

from __future__ import annotations

import time
from pathlib import Path

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex
from tests.benchmarks.harness import PhaseClock, Timers, instrument_pipeline


def test_overlapping_steps_keep_their_own_time_and_the_phase_its_whole_time() -> None:
    clock = PhaseClock()
    # As a Django run announces them: two builder threads, the symbol path BTree announced while the
    # full-text index (0.62 s) still runs.
    clock.first_seen = {
        "scanning": 0.0,
        "indexing": 0.1,
        "finishing": 2.6,
        "finishing/full-text index": 2.6,
        "finishing/symbol name index": 2.6,
        "finishing/symbol path index": 2.75,
        "finishing/chunk path index": 3.22,
    }
    clock.steps = {
        "finishing/full-text index": 0.62,
        "finishing/symbol name index": 0.05,
        "finishing/symbol path index": 0.04,
        "finishing/chunk path index": 0.01,
    }
    phases = clock.durations(3.26)
    assert phases["finishing"] == 3.26 - 2.6
    assert phases["finishing/symbol path index"] == 0.04
    assert phases["finishing/full-text index"] == 0.62
    assert phases["indexing"] == 2.6 - 0.1
    assert list(phases)[:3] == ["scanning", "indexing", "finishing"]


def test_a_real_run_times_each_index_build_inside_the_finishing_phase(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "shop.py").write_text(
        "def price(item):\n    return item.cost\n\n\nclass Cart:\n    def total(self):\n        return 1\n"
    )
    (root / "util.py").write_text(
        "from shop import price\n\n\ndef cheapest(items):\n    return min(items, key=price)\n"
    )
    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"), workers=1)
    index = WorkspaceIndex(root, settings, cache_dir=tmp_path / "cache", env={"HF_HUB_OFFLINE": "1"})
    timers, clock = Timers(), PhaseClock()
    with instrument_pipeline(timers, clock) as missing:
        clock.started = time.perf_counter()
        report = index.index(clock)
        wall = time.perf_counter() - clock.started
    assert report.files_indexed == 2 and not missing
    phases = clock.durations(wall)
    steps = {k: v for k, v in phases.items() if k.startswith("finishing/")}
    assert {"finishing/full-text index", "finishing/symbol path index"} <= set(steps)
    assert all(0 < v <= phases["finishing"] for v in steps.values()), phases

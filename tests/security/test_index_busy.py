"""Concurrency (issue 17, item 5): a second `agentls index` on a workspace whose index is being written
waits, saying "index busy", and finishes after the first, instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from indexing.service import default_index_location
from indexing.store import IndexStore


def test_a_second_indexer_waits_for_the_first(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("def f():\n    return 1\n")
    cache = tmp_path / "cache"
    store = IndexStore.open(default_index_location(ws, cache), root=str(ws.resolve()))
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:  # the first writer: holds the index's write lock for a while
        with store.writer():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    env = dict(os.environ, AGENTLS_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "index", str(ws), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # blocks until the second indexer reaches the lock
    assert first.startswith("index busy:") and "waiting" in first, first
    time.sleep(2)
    assert proc.poll() is None  # still waiting, not failed
    release.set()
    holder.join()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "index busy" not in err  # said once
    assert "Indexed" in err

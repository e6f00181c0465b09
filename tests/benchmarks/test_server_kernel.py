"""The language server on the Linux kernel tree while its first index runs: initialize, code actions on
large C files, and progress.

One `agentls serve` (stdio, VS Code's capabilities, lexical indexing: no embedding model in its cache)
opens the kernel tree of `test_kernel_scale` (Debian's ``linux-source-6.1``, or ``AGENTLS_KERNEL_TREE``)
with an empty cache, so the first full index (walk, parse, write) runs during the whole measurement.
Meanwhile the test:

- times ``initialize`` (once the process reads input, and from the spawn);
- times the first ``$/progress`` after ``initialized`` and the longest gap between two progress
  notifications over `WATCH_S` seconds (the editor must see progress the whole time), and lists the
  distinct messages (one per phase);
- lists code actions at random lines of three large C files (an edit every 25 requests) and times them;
- reads the server's event-loop heartbeat: its longest stall, and the stacks sampled while it stalled.

It does not wait for the index to finish (``test_kernel_scale`` measures that); the server is stopped
after `WATCH_S` seconds. Targets (issue 16): initialize < 1 s, codeAction p95 < 20 ms, progress the
whole time (no gap over 5 s), no loop stall over 50 ms. Machine load makes latencies noisy, so the same
requests are timed again on a workspace of just the three files once its index is done (the baseline);
code actions pass at p95 < 20 ms or within 1.5x the baseline's p95, the loop at a longest stall under
50 ms or no longer than the baseline's.
Run: ``AGENTLS_KERNEL_TREE=... python -m pytest tests/benchmarks/test_server_kernel.py -m benchmark -s``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.benchmarks.harness import (
    CodeActionLoad,
    TreeSampler,
    code_action_load,
    percentile,
    process_memory,
    vscode_capabilities,
    wait_until_reading,
)
from tests.benchmarks.test_kernel_scale import kernel_tree
from tests.e2e.helpers import index_progress_ended, request, start_server, stop

__all__ = ["kernel_tree"]  # the fixture used below

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(1800)]

CODE_ACTIONS = 300
EDIT_EVERY = 25
WATCH_S = 150.0
OPEN_FILES = ("kernel/sched/core.c", "mm/page_alloc.c", "fs/namei.c")
P95_MS, INIT_MS, GAP_S, STALL_MS = 20.0, 1000.0, 5.0, 50.0
AFTER_INDEX_MIB, SETTLE_S = 1024.0, 5.0


def _reports(client: LanguageClient) -> list[object]:
    return [report for reports in client.progress_reports.values() for report in reports]


async def _watch_progress(client: LanguageClient, seen: list[tuple[float, str]], stop_at: float) -> None:
    """Record (time, message) of each new ``$/progress`` notification, polling every 20 ms."""
    count = 0
    while time.perf_counter() < stop_at:
        reports = _reports(client)
        now = time.perf_counter()
        for report in reports[count:]:
            seen.append((now, str(getattr(report, "message", "") or getattr(report, "title", "") or "")))
        count = len(reports)
        if index_progress_ended(client):
            return
        await asyncio.sleep(0.02)


async def test_server_on_the_kernel_while_its_first_index_runs(kernel_tree: Path, tmp_path: Path) -> None:
    root = kernel_tree
    spawned = time.perf_counter()
    client = await start_server(tmp_path / "cache")
    try:
        up = await wait_until_reading(client)
        params = types.InitializeParams(
            capabilities=vscode_capabilities(),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options={"server": {"loop_monitor": True}},
        )
        started = time.perf_counter()
        await client.initialize_session(params)
        initialized = time.perf_counter()
        init_ms = (initialized - started) * 1000
        cold_ms = (initialized - spawned) * 1000

        seen: list[tuple[float, str]] = []
        watcher = asyncio.create_task(_watch_progress(client, seen, initialized + WATCH_S))
        uris, texts = _open(client, root)
        load = await _code_actions(client, uris, texts)
        cold, latencies, after_edit = load.cold, load.latencies, load.after_edit
        await watcher
        stats = await request(client, "agentls/serverStats", None)
    finally:
        await stop(client)
    base, base_loop = await _baseline(root, tmp_path)
    base_stall = float(base_loop["max_stall_ms"])

    assert seen, "no $/progress at all"
    times = [initialized] + [t for t, _ in seen]
    messages = ["initialized"] + [m for _, m in seen]
    first_progress = seen[0][0] - initialized
    max_gap = max(b - a for a, b in itertools.pairwise(times))
    gaps = [
        f"{b - a:.1f} s at +{a - initialized:.0f} s after {messages[i]!r}"
        for i, (a, b) in enumerate(itertools.pairwise(times))
        if b - a > 2.0
    ]
    phases = list(dict.fromkeys(re.sub(r"[\d,.%/]+", "N", message) for _, message in seen))
    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    base_p50, base_p95 = percentile(base, 50), percentile(base, 95)
    stall = float(stats["loop"]["max_stall_ms"])
    print(
        f"\nkernel tree {root}: up after {up * 1000:.0f} ms; initialize {init_ms:.1f} ms (from spawn "
        f"{cold_ms:.0f} ms); first progress {first_progress:.2f} s after initialize; {len(seen)} progress "
        f"notifications in {WATCH_S:.0f} s, longest gap {max_gap:.2f} s; gaps over 2 s: {gaps}; phases: "
        f"{phases[:12]}; codeAction p50 {p50:.1f} p95 {p95:.1f} p99 {p99:.1f} max {max(latencies):.1f} ms "
        f"({load.during_indexing}/{len(latencies)} during indexing; first per file "
        f"{', '.join(f'{c:.0f}' for c in cold)} ms; after edits median {percentile(after_edit, 50):.1f} max "
        f"{max(after_edit):.1f} ms); loop max stall {stall} ms, {stats['loop']['stalls_over_threshold']} "
        f"beats over 50 ms; baseline (the 3 files alone, index done, same load): p50 {base_p50:.1f} p95 "
        f"{base_p95:.1f} ms, loop max stall {base_stall} ms; kernel/baseline p95 {p95 / base_p95:.2f}x"
    )
    for where, samples in stats["loop"].get("stall_stacks", []):
        print(f"  stalled ({samples} samples of 10 ms): {where}")
    for where, samples in base_loop.get("stall_stacks", []):
        print(f"  baseline stalled ({samples} samples of 10 ms): {where}")
    assert init_ms < INIT_MS, init_ms
    assert max_gap < GAP_S, gaps
    assert p95 < P95_MS or p95 < 1.5 * base_p95, (p95, base_p95)
    assert stall < STALL_MS or stall <= base_stall, (stall, base_stall)  # the machine's load, not the index


@pytest.mark.timeout(3 * 3600)
async def test_server_memory_after_its_first_index(kernel_tree: Path, tmp_path: Path) -> None:
    """The server's process tree (server, indexing and analysis processes) once its first index of the
    tree (``AGENTLS_SERVER_SUBTREE`` of it, e.g. ``drivers/net``, when set) has ended: RSS summed over the
    processes (shared pages counted once per process, so it over-states) and PSS; the peak while indexing
    too. Target (issue 16): under 1 GiB after a full index."""
    subtree = os.environ.get("AGENTLS_SERVER_SUBTREE", "")
    root = kernel_tree / subtree if subtree else kernel_tree
    assert root.is_dir(), f"AGENTLS_SERVER_SUBTREE={subtree!r} is not a folder of {kernel_tree}"
    client = await start_server(tmp_path / "cache")
    server = client._server  # pytest-lsp's asyncio subprocess
    assert server is not None
    pid = server.pid
    started = time.perf_counter()
    try:
        with TreeSampler(pid, interval=1.0) as during:
            await client.initialize_session(
                types.InitializeParams(
                    capabilities=vscode_capabilities(),
                    root_uri=root.as_uri(),
                    workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                )
            )
            while not index_progress_ended(client):
                await asyncio.sleep(1.0)
        index_s = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        after = TreeSampler(pid)
        after.sample()
        processes = after.peak.most_processes
        each = process_memory(pid)
        stats = await request(client, "agentls/serverStats", None)
    finally:
        await stop(client)
    print(
        f"\nserver on {root}: first index ended after {index_s:.0f} s ({stats['indexing']}); "
        f"{SETTLE_S:.0f} s later its "
        f"process tree ({processes} processes) holds RSS {after.peak.tree_rss_mib:.0f} MiB (largest process "
        f"{after.peak.largest_process_rss_mib:.0f} MiB), PSS {after.peak.tree_pss_mib:.0f} MiB; peak while "
        f"indexing: RSS {during.peak.tree_rss_mib:.0f} MiB, PSS {during.peak.tree_pss_mib:.0f} MiB, largest "
        f"process {during.peak.largest_process_rss_mib:.0f} MiB; after, by process: {each}"
    )
    assert after.peak.tree_rss_mib < AFTER_INDEX_MIB, after.peak


async def _code_actions(client: LanguageClient, uris: list[str], texts: list[str]) -> CodeActionLoad:
    return await code_action_load(
        client,
        uris,
        texts,
        rng=random.Random(16),
        count=CODE_ACTIONS,
        edit_every=EDIT_EVERY,
        edit_comment="/* edit {n} */",
    )


def _open(client: LanguageClient, root: Path) -> tuple[list[str], list[str]]:
    uris, texts = [], []
    for rel in OPEN_FILES:
        path = root / rel
        text = path.read_text(errors="replace")
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=path.as_uri(), language_id="c", version=1, text=text)
            )
        )
        uris.append(path.as_uri())
        texts.append(text)
    return uris, texts


async def _baseline(root: Path, tmp_path: Path) -> tuple[list[float], dict[str, Any]]:
    """The same requests on a workspace of just the three files once its index is done: what the machine
    gives at the same load without a kernel index running. (latencies, the loop monitor's stats)."""
    small = tmp_path / "small"
    for rel in OPEN_FILES:
        (small / rel).parent.mkdir(parents=True, exist_ok=True)
        (small / rel).write_bytes((root / rel).read_bytes())
    client = await start_server(tmp_path / "cache-small")
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=vscode_capabilities(),
                root_uri=small.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=small.as_uri(), name="small")],
                initialization_options={"server": {"loop_monitor": True}},
            )
        )
        while not index_progress_ended(client):
            await asyncio.sleep(0.1)
        uris, texts = _open(client, small)
        latencies = (await _code_actions(client, uris, texts)).latencies
        stats = await request(client, "agentls/serverStats", None)
    finally:
        await stop(client)
    return latencies, stats["loop"]

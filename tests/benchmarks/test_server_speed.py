"""Language-server responsiveness on a Django-sized workspace while its first background index runs.

One `agentls serve` process (stdio, driven by pytest-lsp with VS Code's capabilities) opens the Django
source tree (about 2,800 Python files) with an empty cache, so the first full index (parsing and static
embeddings, in the indexing process) runs during the whole measurement. Meanwhile the test:

- times ``initialize`` (after the process is up: a request sent before it is answered with -32002, which
  tells that the server reads its input; and from the spawn, which adds Python's start-up);
- lists code actions at random positions of three large open files, with an edit every 25 requests (each
  edit is a new version: the outline is parsed again in the analysis process), and times each request;
- reads the server's event-loop heartbeat (``server.loop_monitor``): the longest stall of the loop.

Targets (issue 4): codeAction p95 < 20 ms and p99 < 50 ms, initialize < 300 ms, no stall over 50 ms.
Run: ``python -m pytest tests/benchmarks/test_server_speed.py -m benchmark -s``.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from lsprotocol import types

from tests.benchmarks import corpora
from tests.benchmarks.conftest import model_cache
from tests.benchmarks.harness import (
    Entry,
    code_action_load,
    percentile,
    record,
    rerun_command,
    vscode_capabilities,
    wait_until_reading,
)
from tests.e2e.helpers import index_progress_ended, request, start_server, stop

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(1800)]

CODE_ACTIONS = 300
EDIT_EVERY = 25
OPEN_FILES = ("django/db/models/query.py", "django/db/models/base.py", "tests/admin_views/tests.py")
P95_MS, P99_MS, INIT_MS, STALL_MS = 20.0, 50.0, 300.0, 50.0


async def test_server_speed_while_indexing_django(
    django_corpus: corpora.Corpus, distilled_model: Path, tmp_path: Path
) -> None:
    root = django_corpus.root
    cache = model_cache(tmp_path / "cache", distilled_model)
    spawned = time.perf_counter()
    client = await start_server(cache)
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
        init_ms = (time.perf_counter() - started) * 1000
        cold_ms = (time.perf_counter() - spawned) * 1000

        while not any(r for r in client.progress_reports.values()):
            await asyncio.sleep(0.05)
        uris, texts = [], []
        for rel in OPEN_FILES:
            path = root / rel
            text = path.read_text()
            client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=text)
                )
            )
            uris.append(path.as_uri())
            texts.append(text)

        load = await code_action_load(
            client,
            uris,
            texts,
            rng=random.Random(4),
            count=CODE_ACTIONS,
            edit_every=EDIT_EVERY,
            edit_comment="# edit {n}",
        )
        cold, latencies, after_edit = load.cold, load.latencies, load.after_edit
        during_indexing = load.during_indexing

        index_started = time.perf_counter()
        while not index_progress_ended(client):
            await asyncio.sleep(0.5)
        index_wait = time.perf_counter() - index_started
        stats = await request(client, "agentls/serverStats", None)
        loop = stats["loop"]
        hits = await request(client, "agentls/search", {"query": "queryset bulk create", "limit": 5})
    finally:
        await stop(client)

    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    stall = float(loop["max_stall_ms"])
    print(
        f"\nup after {up * 1000:.0f} ms; initialize {init_ms:.1f} ms (from spawn {cold_ms:.0f} ms); "
        f"codeAction p50 {p50:.1f} p95 {p95:.1f} p99 {p99:.1f} max {max(latencies):.1f} ms "
        f"({during_indexing}/{len(latencies)} during indexing; first per file {_ms(cold)}; after edits "
        f"median {percentile(after_edit, 50):.1f} max {max(after_edit):.1f} ms); loop max stall {stall} ms "
        f"over {loop['beats']} beats, {loop['stalls_over_threshold']} over 50 ms; indexing went on "
        f"{index_wait:.0f} s after the last request; search top hit {hits[0]['symbol'] if hits else None}"
    )
    rerun = rerun_command("tests/benchmarks/test_server_speed.py")
    conditions = (
        f"Django {corpora.DJANGO_VERSION} ({django_corpus.files:,} files), first index with static "
        f"embeddings running; {during_indexing} of {len(latencies)} requests answered while it ran"
    )
    record(
        Entry(
            key="server.codeaction.django",
            title="textDocument/codeAction latency while the first index runs",
            target=f"p95 < {P95_MS:g} ms, p99 < {P99_MS:g} ms",
            measured=f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms",
            passed=p95 < P95_MS and p99 < P99_MS,
            figures={"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "p99_ms": round(p99, 2)},
            details=[
                conditions,
                f"{CODE_ACTIONS} requests at random lines of {', '.join(OPEN_FILES)}, "
                f"an edit every {EDIT_EVERY}",
                f"not counted above: the first request on each file, right after opening it, waits for the "
                f"file's first parse in the analysis process: {_ms(cold)}",
                f"requests right after an edit: median {percentile(after_edit, 50):.1f} ms, "
                f"max {max(after_edit):.1f} ms",
            ],
            rerun=rerun,
        )
    )
    record(
        Entry(
            key="server.initialize",
            title="initialize answered",
            target=f"< {INIT_MS:g} ms",
            measured=f"{init_ms:.1f} ms once the process reads input ({cold_ms:.0f} ms from spawn)",
            passed=init_ms < INIT_MS,
            figures={"initialize_ms": round(init_ms, 2), "from_spawn_ms": round(cold_ms, 1)},
            details=[f"the process read its first message {up * 1000:.0f} ms after spawn (Python start-up)"],
            rerun=rerun,
        )
    )
    record(
        Entry(
            key="server.loop_stall.django",
            title="Event-loop stall while the first index runs",
            target=f"no stall over {STALL_MS:g} ms",
            measured=f"max {stall} ms; {loop['stalls_over_threshold']} beats over {STALL_MS:g} ms",
            passed=stall <= STALL_MS,
            figures={
                "max_stall_ms": stall,
                "stalls_over": loop["stalls_over_threshold"],
                "beats": loop["beats"],
            },
            details=[conditions, "heartbeat every 10 ms on the server's event loop (server.loop_monitor)"],
            rerun=rerun,
        )
    )


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values) + " ms"

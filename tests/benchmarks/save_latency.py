"""A saved file searchable again: from the save to a search that finds the new text (issue 16).

Two ways, both against an index that exists already (`test_kernel_scale` builds one; by hand, point
``--cache`` at any cache folder holding the workspace's index):

- `in_process`: the index service as the indexing process runs it. Each round saves the file twice,
  each time with a new token appended: *cold* (the file written, then ``update_paths`` + ``search``: what
  every save cost before documents were prepared) and *prepared* (the editor flow: ``prepare`` with the
  new text, as the indexing process does once typing pauses, a short idle, the file written, then
  ``update_paths`` + ``search``). The time of ``prepare`` itself is reported apart: it runs in the
  background while the user is idle. After a prepared save, a common query is timed before and after
  ``fold`` (which the server runs after each save's update), and ``fold`` itself.
- `over_lsp`: the whole server over stdio (``agentls serve``, VS Code's capabilities, lexical): the
  document opened, changed to the new text, `IDLE` seconds of pause, the file written and ``didSave``
  sent; the clock runs from ``didSave`` until the answer to an ``agentls/search`` for the token, sent as
  soon as the server has logged the save's update (``window/logMessage``, looked for every `POLL`
  seconds), finds the file. The cold figure is the same with the save right after the change (nothing
  prepared yet: the save re-parses, as before).

The file is restored (and re-indexed) at the end. By hand::

    python -m tests.benchmarks.save_latency ROOT REL --cache CACHE [--saves 6] [--lsp]

`during_maintenance` times saves while background maintenance (compaction) runs::

    python -m tests.benchmarks.save_latency ROOT FOLDER --cache CACHE --maintenance ROUNDS
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

IDLE = 1.0
"""Seconds between the last change and the save in the editor flow: the server prepares after
`server.features.indexing.PREPARE_DELAY` (0.3 s) without changes, then parses (about 0.15 s for
kernel/sched/core.c in the niced indexing process)."""
LATER_QUERY = "struct task_struct"
"""A common query, timed after a save (every full-text query reads the rows outside the index)."""
log = logging.getLogger(__name__)
POLL = 0.002
"""Seconds between two looks at the server's log messages while waiting for the save's update."""


@dataclass
class SaveTimes:
    """Seconds from the save to a search that finds the new text, per save, and what preparing cost."""

    cold: list[float] = field(default_factory=list)
    prepared: list[float] = field(default_factory=list)
    prepare: list[float] = field(default_factory=list)
    """Time of `WorkspaceIndex.prepare` (in the background, before the save)."""
    update: list[float] = field(default_factory=list)
    """Of `prepared`, in-process: the `update_paths` part (the rest is the search)."""
    search: list[float] = field(default_factory=list)
    """Of `prepared`, over LSP: the search's part (the rest is the update and its notice)."""
    later: list[float] = field(default_factory=list)
    """In-process, after a prepared save: a search for `LATER_QUERY` with the saved rows outside the
    full-text index, then the time of `WorkspaceIndex.fold`, then the same search again."""
    fold: list[float] = field(default_factory=list)
    later_folded: list[float] = field(default_factory=list)

    def summary(self) -> str:
        def ms(values: list[float]) -> str:
            rest = values[1:] or values  # the first save of each kind warms caches
            return f"{statistics.median(rest) * 1000:.0f} ms" if rest else "-"

        text = f"cold median {ms(self.cold)}, prepared median {ms(self.prepared)}"
        if self.update:
            text += f" (update {ms(self.update)}); prepare (background) {ms(self.prepare)}"
        if self.search:
            text += f" (of which the search {ms(self.search)})"
        if self.later:
            text += (
                f"; {LATER_QUERY!r} after the save {ms(self.later)}, the fold {ms(self.fold)}, "
                f"then {ms(self.later_folded)}"
            )
        return text + f"; first of each dropped, {len(self.cold)}+{len(self.prepared)} saves"


def _texts(original: str, n: int, kind: str) -> tuple[str, str]:
    token = f"agentlssave{kind}{n}x{int(time.time()) % 100000}"
    return token, original + f"\nint {token}(void) {{ return 0; }}\n"


def in_process(root: Path, rel: str, cache_dir: Path, saves: int = 6, idle: float = 0.3) -> SaveTimes:
    """Cold and prepared saves of ``rel`` alternately, through `WorkspaceIndex` (lexical)."""
    from indexing.config import EmbeddingSettings, IndexSettings
    from indexing.service import WorkspaceIndex

    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"))
    index = WorkspaceIndex(root, settings, cache_dir=cache_dir, env={})
    index.search("warm up", limit=3)
    path = root / rel
    original = path.read_text()
    times = SaveTimes()
    try:
        for n in range(saves):
            for kind in ("cold", "prepared"):
                token, text = _texts(original, n, kind)
                if kind == "prepared":
                    started = time.perf_counter()
                    assert index.prepare(rel, text), f"nothing prepared for {rel}"
                    times.prepare.append(time.perf_counter() - started)
                    time.sleep(idle)
                path.write_text(text)
                started = time.perf_counter()
                report = index.update_paths([rel])
                updated = time.perf_counter()
                hits = index.search(token, limit=5)
                elapsed = time.perf_counter() - started
                assert any(hit.path == rel for hit in hits), f"{token} not found after the save"
                assert report.files_prepared == (kind == "prepared"), report
                if kind == "cold":
                    times.cold.append(elapsed)
                    index.fold()
                    continue
                times.prepared.append(elapsed)
                times.update.append(updated - started)
                for series in (times.later, times.fold, times.later_folded):
                    started = time.perf_counter()
                    if series is times.fold:
                        index.fold()
                    else:
                        index.search(LATER_QUERY, limit=10)
                    series.append(time.perf_counter() - started)
    finally:
        path.write_text(original)
        index.update_paths([rel])
        index.wait_for_maintenance()
        index.close()
    return times


async def _over_lsp(root: Path, rel: str, cache_dir: Path, saves: int, idle: float) -> SaveTimes:
    from lsprotocol import types

    from tests.e2e.helpers import (
        FAST_SETTINGS,
        index_progress_ended,
        initialize,
        open_document,
        request,
        start_server,
        stop,
    )

    path = root / rel
    original = path.read_text()
    uri = path.as_uri()
    client = await start_server(cache_dir)
    times = SaveTimes()
    version = 1

    def change(text: str) -> None:
        nonlocal version
        version += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def save(text: str) -> float:
        path.write_text(text)
        started = time.perf_counter()
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        return started

    def updates() -> int:
        return sum("re-indexed 1 changed file(s)" in m.message for m in client.log_messages)

    async def found(token: str, before: int, timeout: float = 60.0) -> float:
        """Wait for the save's update to be reported, then search once; the search's time."""
        deadline = time.monotonic() + timeout
        while updates() == before:
            assert time.monotonic() < deadline, f"no update reported within {timeout} s of the save"
            await asyncio.sleep(POLL)
        started = time.perf_counter()
        hits = await request(client, "agentls/search", {"query": token, "limit": 5})
        assert any(hit["path"] == rel for hit in hits), f"{token} not found after the save's update"
        return time.perf_counter() - started

    try:
        # No periodic refresh (this client registers no file watchers): one would delay a save's update.
        options = {**FAST_SETTINGS, "server": {"refresh_seconds": 0}}
        await initialize(client, root, editor="visual-studio-code", options=options)
        deadline = time.monotonic() + 1800
        while not index_progress_ended(client):
            assert time.monotonic() < deadline, "the server's first index did not end"
            await asyncio.sleep(0.2)
        await request(client, "agentls/search", {"query": "warm up", "limit": 3})
        open_document(client, path, text=original)
        for n in range(saves):
            for kind in ("cold", "prepared"):
                token, text = _texts(original, n, kind)
                change(text)
                await asyncio.sleep(idle if kind == "prepared" else 0.0)
                before = updates()
                started = save(text)
                search = await found(token, before)
                elapsed = time.perf_counter() - started
                if kind == "cold":
                    times.cold.append(elapsed)
                else:
                    times.prepared.append(elapsed)
                    times.search.append(search)
                await asyncio.sleep(0.5)  # the search process settles before the next change
    finally:
        change(original)
        save(original)
        await asyncio.sleep(2)
        await stop(client)
    return times


def over_lsp(root: Path, rel: str, cache_dir: Path, saves: int = 6, idle: float = IDLE) -> SaveTimes:
    """Cold and prepared saves of ``rel`` alternately, through `agentls serve` over stdio."""
    return asyncio.run(_over_lsp(root, rel, cache_dir, saves, idle))


@dataclass
class MaintenanceTimes:
    """Seconds of each save's update, by whether background maintenance was running when it began."""

    during: list[float] = field(default_factory=list)
    outside: list[float] = field(default_factory=list)
    maintenance: list[float] = field(default_factory=list)
    """How long each background maintenance ran (from the update that started it to its end)."""

    def summary(self) -> str:
        def ms(values: list[float]) -> str:
            if not values:
                return "none"
            return f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

        return (
            f"{len(self.during)} updates during maintenance: {ms(self.during)}; "
            f"{len(self.outside)} others: {ms(self.outside)}; "
            f"maintenance ran {', '.join(f'{m:.1f} s' for m in self.maintenance) or 'never'}"
        )


def during_maintenance(
    root: Path, folder: str, cache_dir: Path, rounds: int = 1, pause: float = 1.0
) -> MaintenanceTimes:
    """One-file saves of the C files under ``folder`` (each an appended function, then the file put
    back), through `WorkspaceIndex` (lexical), ``pause`` seconds apart,
    until background maintenance has run ``rounds`` times: every save adds fragments until
    `compact_after_fragments` starts it, and the saves go on while it runs. Every update is timed."""
    from indexing.config import EmbeddingSettings, IndexSettings
    from indexing.service import WorkspaceIndex

    settings = IndexSettings(embedding=EmbeddingSettings(provider="none"))
    index = WorkspaceIndex(root, settings, cache_dir=cache_dir, env={})
    index.search("warm up", limit=3)
    files = sorted(str(p.relative_to(root)) for p in (root / folder).glob("*.c"))
    times = MaintenanceTimes()
    seen: dict[object, float] = {}  # maintenance thread -> when the update that started it began
    try:
        for n in range(10_000):
            rel = files[n % len(files)]
            path = root / rel
            original = path.read_text()
            _token, text = _texts(original, n, "maintenance")
            for content in (text, original):
                path.write_text(content)
                thread = index._maintenance
                running = thread is not None and thread.is_alive()
                started = time.perf_counter()
                index.update_paths([rel])
                elapsed = time.perf_counter() - started
                (times.during if running else times.outside).append(elapsed)
                if index._maintenance is not None and index._maintenance not in seen:
                    seen[index._maintenance] = started
                for maintenance, began in list(seen.items()):
                    if began and not maintenance.is_alive():  # type: ignore[attr-defined]
                        times.maintenance.append(time.perf_counter() - began)
                        seen[maintenance] = 0.0
                time.sleep(pause)
            if len(times.maintenance) >= rounds:
                break
            log.info("save %d: %s", n, times.summary())
    finally:
        index.wait_for_maintenance()
        index.close()
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("rel")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--saves", type=int, default=6)
    parser.add_argument("--lsp", action="store_true", help="through the language server too")
    parser.add_argument(
        "--maintenance",
        type=int,
        metavar="ROUNDS",
        help="instead: save the C files of folder REL one by one until maintenance ran ROUNDS times",
    )
    args = parser.parse_args(argv)
    if args.maintenance:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("indexing.store").setLevel(logging.DEBUG)
        times = during_maintenance(args.root, args.rel, args.cache, args.maintenance)
        print("saves and maintenance:", times.summary(), flush=True)
        return 0
    print("in-process:", in_process(args.root, args.rel, args.cache, args.saves).summary(), flush=True)
    if args.lsp:
        print("over LSP:", over_lsp(args.root, args.rel, args.cache, args.saves).summary(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What code actions need to know about a document: its functions and its stubs, per document version.

Finding them is one tree-sitter parse (`indexing.definitions.outline`, shared with the agent's task
builders), cheap for ordinary files but 100-300 ms for the largest ones, and tree-sitter holds the GIL
while it parses. So the parse runs in a separate process (`OutlineCache`), started when the editor
connects, and its result is cached per (URI, version): listing code actions again at another cursor
position costs a dictionary lookup, and a parse never stalls the server's event loop. Right after an
edit, requests about lines the edit did not touch are answered from the previous outline (see
`carry_over`) instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from indexing.definitions import FunctionSpan, Outline, StubInfo, outline
from indexing.lifeline import die_with_parent, end_pool, forkserver_context

__all__ = ["FunctionSpan", "Outline", "OutlineCache", "StubInfo", "carry_over", "outline"]

log = logging.getLogger(__name__)

EMPTY = Outline(None)


@dataclass(frozen=True, slots=True)
class _Change:
    """Where two versions of a text differ, by lines (1-based): old [start, old_end], new [start, new_end]."""

    start: int
    old_end: int
    new_end: int

    @property
    def delta(self) -> int:
        return self.new_end - self.old_end


def _line_change(old: str, new: str) -> _Change:
    a, b = old.split("\n"), new.split("\n")
    limit = min(len(a), len(b))
    prefix = 0
    while prefix < limit and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    return _Change(prefix + 1, len(a) - suffix, len(b) - suffix)


def carry_over(previous: Outline, change: _Change, first: int, last: int) -> Outline | None:
    """The previous version's outline, valid for request lines [first, last] of the new text, or None.

    Functions wholly before the changed lines keep their lines, those wholly after move by the number of
    lines added; a function that touches the change may have changed, so if one of those (or the change
    itself) meets the requested lines, the answer must wait for a fresh parse. One staleness remains, for
    the few milliseconds the parse takes: a function made by typing a header and a closing brace around
    existing lines is not seen until then (the lines it wraps did not change).
    """
    lo, hi = change.start - 1, change.new_end + 1  # the changed lines, with one line of margin
    if first <= hi and lo <= last:
        return None
    old_first = first if last < change.start else first - change.delta
    old_last = last if last < change.start else last - change.delta

    def moved(start: int, end: int) -> tuple[int, int] | None:
        if end < change.start:
            return start, end
        if start > change.old_end:
            return start + change.delta, end + change.delta
        if start <= old_last and old_first <= end:
            raise LookupError  # a changed function meets the request
        return None

    try:
        functions = []
        for fn in previous.functions:
            span = moved(fn.start_line, fn.end_line)
            if span is not None:
                functions.append(replace(fn, start_line=span[0], end_line=span[1]))
        stubs = []
        for stub in previous.stubs:
            span = moved(stub.start_line, stub.end_line)
            if span is not None:
                stubs.append(replace(stub, start_line=span[0], end_line=span[1]))
    except LookupError:
        return None
    return Outline(previous.language, tuple(functions), tuple(stubs))


def _warm() -> bool:
    outline("warm.py", 'def f():\n    """Doc."""\n    pass\n')
    return True


class OutlineCache:
    """Outlines of open documents, computed in a worker process and cached per (URI, version).

    While the outline of a just-edited version is being parsed, a request about lines the edit did not
    touch is answered from the previous version's outline, moved by the lines the edit added or removed
    (`carry_over`); other requests wait for the parse.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._stopping: list[threading.Thread] = []  # waiting for pools shut down without waiting
        self._done: dict[str, tuple[int, str, Outline]] = {}
        self._done_order: dict[str, int] = {}  # when the cached parse started: the latest start wins
        self._pending: dict[tuple[str, int], asyncio.Future[Outline]] = {}
        self._started = 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=forkserver_context(),
                initializer=die_with_parent,  # no orphan when the server is killed
                initargs=(os.getpid(),),
            )
        return self._pool

    def warm(self) -> None:
        """Start the worker process and load the grammars before the first request needs them."""
        self._executor().submit(_warm)

    def cached(self, uri: str, version: int) -> Outline | None:
        """The outline of this exact version, if computed."""
        done = self._done.get(uri)
        return done[2] if done is not None and done[0] == version else None

    def start(self, uri: str, version: int, path: str, text: str) -> asyncio.Future[Outline]:
        """Begin parsing this version (once), returning the future of its outline."""
        key = (uri, version)
        pending = self._pending.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            self._started += 1
            pending = asyncio.ensure_future(self._compute(loop, uri, version, path, text, self._started))
            self._pending[key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(key, None))
        return pending

    async def get(
        self, uri: str, version: int, path: str, text: str, lines: tuple[int, int] | None = None
    ) -> Outline:
        """The outline of `text` (version `version` of `uri`), good for 1-based request `lines`."""
        cached = self.cached(uri, version)
        if cached is not None:
            return cached
        pending = self.start(uri, version, path, text)
        previous = self._done.get(uri)
        if lines is not None and previous is not None and previous[0] != version:
            carried = carry_over(previous[2], _line_change(previous[1], text), *lines)
            if carried is not None:
                return carried
        return await asyncio.shield(pending)

    async def _compute(
        self, loop: asyncio.AbstractEventLoop, uri: str, version: int, path: str, text: str, order: int
    ) -> Outline:
        pool = self._executor()
        try:
            result = await loop.run_in_executor(pool, outline, path, text)
        except BrokenProcessPool:
            if self._pool is not pool:  # ended on purpose (`shutdown`: the server is stopping), no error
                log.debug("the parse of %s was dropped: the analysis process was ended", uri)
                return EMPTY
            log.error("the analysis process died while parsing %s; it restarts on the next request", uri)
            self._pool = None
            return EMPTY
        except Exception:
            log.exception("could not parse %s for code actions", uri)
            return EMPTY
        # Keep the parse that started last (not the highest version: a client may reuse or lower versions,
        # e.g. after reopening a document, and each request would then parse again).
        if order >= self._done_order.get(uri, 0):
            self._done[uri] = (version, text, result)
            self._done_order[uri] = order
        return result

    def forget(self, uri: str) -> None:
        """Drop a closed document's outline."""
        self._done.pop(uri, None)
        self._done_order.pop(uri, None)

    def shutdown(self, *, wait: bool = True) -> None:
        """End the analysis process: with `wait` (the end of the server), return once it has ended;
        without (the LSP ``shutdown`` request, on the event loop), a thread waits for it, which a later
        `shutdown()` joins. A parse in progress is dropped: its request gets an empty outline and only a
        debug log line (a process that dies by itself is an error). A pool must not be left for Python's
        exit to wait for: on 3.11 that exit hook races the pool's own thread, which closes the pipe the
        hook writes to, and prints "Exception ignored ... OSError: [Errno 9] Bad file descriptor" (1 to 8
        of 16 exits in a test, by timing)."""
        pool, self._pool = self._pool, None
        if pool is not None and wait:
            end_pool(pool)  # a parse or the warm-up in progress is dropped, not waited for
        elif pool is not None:
            stopper = threading.Thread(
                target=end_pool,
                args=(pool,),
                name="agentls-analysis-stop",
                daemon=True,
            )
            stopper.start()
            self._stopping.append(stopper)
        if wait:
            for stopper in self._stopping:
                stopper.join()
            self._stopping.clear()

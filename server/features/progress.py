"""Server-initiated work-done progress (``$/progress``), cancellable by the client.

`WorkDone.start` creates a token with ``window/workDoneProgress/create`` (when the client supports it),
sends ``begin``, and calls `on_cancel` if the user cancels it (``window/workDoneProgress/cancel``, which
pygls turns into a cancelled future for the token). Reports are throttled so a fast loop does not flood
the client; the last state is always sent by `end`. With a client that has no progress support every
call is a no-op, so callers never branch on it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

__all__ = ["WorkDone"]

log = logging.getLogger(__name__)


class WorkDone:
    """One progress token's life: begin, report..., end."""

    def __init__(self, server: LanguageServer | None, token: str, min_interval: float = 0.2) -> None:
        self._server = server
        self.token = token
        self._min_interval = min_interval
        self._last = 0.0
        self._last_percentage = 0
        self._ended = False

    @classmethod
    async def start(
        cls,
        server: LanguageServer,
        title: str,
        *,
        message: str = "",
        cancellable: bool = True,
        on_cancel: Callable[[], None] | None = None,
    ) -> WorkDone:
        """Create and begin a progress; a no-op handle when the client cannot show it."""
        token = f"agentls-{uuid.uuid4().hex[:12]}"
        caps = server.client_capabilities
        if caps is None or caps.window is None or not caps.window.work_done_progress:
            return cls(None, token)
        try:
            await server.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused the token: go on without progress
            log.info("the editor refused a progress token (%s); no progress shown for %s", exc, title)
            return cls(None, token)
        handle = cls(server, token)
        server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=title, message=message or None, cancellable=cancellable, percentage=0
            ),
        )
        future = server.work_done_progress.tokens.get(token)
        if future is not None and on_cancel is not None:

            def cancelled(fut: object) -> None:
                if not handle._ended and getattr(fut, "cancelled", lambda: False)():
                    on_cancel()

            future.add_done_callback(cancelled)
        return handle

    def report(self, message: str, percentage: int | None = None, *, force: bool = False) -> None:
        """Send a report unless one went out less than the minimum interval ago (`force` sends anyway)."""
        if self._server is None or self._ended:
            return
        now = time.monotonic()
        if not force and now - self._last < self._min_interval:
            return
        self._last = now
        if percentage is not None:
            # Percentages must not go backwards (LSP); clamp into 0..100.
            percentage = max(self._last_percentage, min(100, max(0, percentage)))
            self._last_percentage = percentage
        self._server.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    def end(self, message: str) -> None:
        """Finish the progress (idempotent)."""
        if self._ended:
            return
        self._ended = True
        if self._server is None:
            return
        self._server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
        self._server.work_done_progress.tokens.pop(self.token, None)

"""One model call made dependable, for every HTTP provider: retries within a deadline, and cancellation.

- `call_with_retries(attempt, classify, ...)` runs `attempt()` until it returns, retrying what
  `classify` turns into a `Retryable` (it raises anything else) after `retry_after` or a jittered
  exponential backoff (`indexing.http_retry.backoff_delay`, the policy), while the attempts stay within
  `max_retries` and the wait within `retry_deadline_seconds`; then it raises the provider's
  `exhausted(...)` error. A set `cancel` event ends it at once with `Cancelled`, also during a wait.
  Each wait is one WARNING record with the details; the record's ``retry_wait`` (a `RetryWait`) also
  says it in a line for people (`RetryWait.summary`), which the command line shows instead without -v.
- `relay(stream, ...)` runs one streamed request on a worker thread and waits for it on the calling
  thread, so `cancel` is honoured within `POLL_SECONDS` even while the HTTP client is blocked: the
  worker puts ("text", delta)... then ("done", value) or ("error", exception) on a queue; on the way
  out (done, failed, cancelled) the worker is told to stop and what it registered is closed.

`agent.models.anthropic` and `agent.models.openai_compat` supply the attempt, the classification and
the messages; this module is the loop they share.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agent.config import ModelSettings
from agent.models.errors import Cancelled, ModelError
from indexing.http_retry import backoff_delay

__all__ = ["POLL_SECONDS", "RetryWait", "Retryable", "call_with_retries", "relay"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
"""How often the calling thread looks at `cancel` while a stream runs."""

T = TypeVar("T")
F = TypeVar("F", bound="Retryable")

StreamEvents = queue.Queue[tuple[str, Any]]


class Retryable(Protocol):
    """A failed attempt that may be retried."""

    @property
    def description(self) -> str:
        """What went wrong, for logs and the final message ("HTTP 529 overloaded_error")."""
        ...

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait, if it did."""
        ...

    @property
    def status_code(self) -> int | None:
        """The HTTP status it stands for (an error inside a stream too); None for a dropped connection."""
        ...


_STATES = {
    529: "busy (529 overloaded)",
    429: "rate-limited (429 too many requests)",
    408: "slow (408 timeout)",
}


@dataclass(frozen=True)
class RetryWait:
    """A wait before the next attempt of a model call, as logged (the record's ``retry_wait``)."""

    attempt: int
    """The attempt that failed (1 for the first)."""
    attempts: int
    """How many attempts the call may make in all (``max_retries + 1``)."""
    status_code: int | None
    delay: float

    @property
    def summary(self) -> str:
        """One line for people: "model busy (529 overloaded); retrying in 2.0 s, attempt 2 of 6"."""
        status = self.status_code
        if status is None:
            state = "connection failed"  # refused, timed out or dropped: the -v line says which
        elif status in _STATES:
            state = _STATES[status]
        else:
            state = f"server error ({status})" if status >= 500 else f"API error ({status})"
        delay = f"{self.delay:.1f}" if self.delay >= 0.1 else f"{self.delay:.2f}"
        return f"model {state}; retrying in {delay} s, attempt {self.attempt + 1} of {self.attempts}"


def _cancelled() -> Cancelled:
    return Cancelled("The model call was cancelled.")


def call_with_retries(
    attempt: Callable[[], T],
    classify: Callable[[Exception], F],
    exhausted: Callable[[F, int, float, float, float], ModelError],
    *,
    settings: ModelSettings,
    rng: random.Random,
    cancel: threading.Event | None,
    label: str,
    jitter: float = 0.5,
) -> tuple[T, int]:
    """`attempt()`'s value and the number of attempts it took (see the module docstring).

    `exhausted(failure, attempts, elapsed, delay, remaining)` is the error raised when no retry is left.
    """
    started = time.monotonic()
    deadline = started + settings.retry_deadline_seconds
    attempts = 0
    while True:
        if cancel is not None and cancel.is_set():
            raise _cancelled()
        attempts += 1
        try:
            return attempt(), attempts
        except Exception as error:
            failure = classify(error)
        delay = failure.retry_after
        if delay is None:
            delay = backoff_delay(
                attempts, base=settings.retry_base_delay, cap=settings.retry_max_delay, rng=rng, jitter=jitter
            )
        remaining = deadline - time.monotonic()
        if attempts > settings.max_retries or delay > remaining:
            cause = failure if isinstance(failure, BaseException) else None
            raise exhausted(failure, attempts, time.monotonic() - started, delay, remaining) from cause
        wait = RetryWait(attempts, settings.max_retries + 1, failure.status_code, delay)
        logger.warning(
            "%s attempt %d failed (%s); retrying in %.2f s",
            label,
            attempts,
            failure.description,
            delay,
            extra={"retry_wait": wait},
        )
        if cancel is not None:
            if cancel.wait(delay):
                raise _cancelled()
        else:
            time.sleep(delay)


def relay(
    stream: Callable[[StreamEvents, list[Any], threading.Event], None],
    *,
    on_text: Callable[[str], None] | None,
    cancel: threading.Event | None,
    name: str,
) -> Any:
    """Run `stream(events, opened, abandon)` on a worker thread; the value of its ("done", value).

    The worker appends what it opens (streams, responses) to `opened`, and stops reading once `abandon`
    is set; they are closed here when the call ends. Raises the worker's error, or `Cancelled`.
    """
    events: StreamEvents = queue.Queue()
    opened: list[Any] = []
    abandon = threading.Event()
    worker = threading.Thread(target=stream, args=(events, opened, abandon), name=name, daemon=True)
    worker.start()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise _cancelled()
            try:
                kind, value = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if kind == "text":
                if on_text is not None:
                    on_text(value)
            elif kind == "done":
                return value
            else:
                raise value
    finally:
        # Cancelled, or on_text raised: stop the worker and free the connection. A worker still waiting
        # for response headers ends on its own when they arrive (or on the read timeout).
        abandon.set()
        for item in opened:
            try:
                item.close()
            except Exception:  # closing from another thread may race the reader; nothing to do
                logger.debug("closing an abandoned stream failed", exc_info=True)

"""When to retry an HTTP call, how long to wait, and what a server's `retry-after` asks for.

One definition for every client agentls makes to a remote API: the embedding providers
(`indexing.embeddings`) and the agent's model providers (`agent.models.anthropic`,
`agent.models.openai_compat`). It lives in `indexing` because `indexing` must not import `agent`, while
`agent` may import `indexing`; it depends on nothing but the standard library and `httpx`.

- `RETRYABLE_STATUSES` / `is_retryable_status`: 408 (request timeout), 409 (conflict: Anthropic's
  lock contention), 429 (rate limit), every 5xx including Anthropic's 529 (overloaded). Other 4xx mean
  the request itself is wrong and fail at once.
- `transport_errors()`: the exceptions of a connection that failed or dropped mid-body (httpx's, and
  httpx2's when installed, which the `anthropic` SDK 2.x streams over); those are retried too.
- `parse_retry_after(headers)`: `retry-after-ms`, else `retry-after` as seconds or as an HTTP date.
- `backoff_delay(attempt, ...)`: jittered exponential backoff for when the server named no wait.
"""

from __future__ import annotations

import email.utils
import functools
import importlib
import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = [
    "RETRYABLE_STATUSES",
    "backoff_delay",
    "is_retryable_status",
    "parse_retry_after",
    "transport_errors",
]

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
"""The statuses named explicitly; `is_retryable_status` also accepts any other 5xx."""


def is_retryable_status(status: int) -> bool:
    """True for 408, 409, 429 and every 5xx (529 included): worth another attempt after a wait."""
    return status in RETRYABLE_STATUSES or 500 <= status < 600


@functools.cache
def transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning the connection failed, timed out or dropped mid-body (retryable)."""
    errors: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, else `retry-after` (seconds or HTTP date).

    None when neither header is there or neither can be read; never negative.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            value = float(millis) / 1000
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return max(0.0, value)
    text = lowered.get("retry-after")
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random, jitter: float = 0.5) -> float:
    """The wait before retry number `attempt` (1 for the first retry): `base * 2**(attempt-1)`, capped at
    `cap`, minus up to `jitter` of it at random so that clients failing together do not retry in step."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling * (1 - jitter * rng.random())

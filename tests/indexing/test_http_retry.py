"""The one retry policy of agentls' HTTP clients: statuses, retry-after, backoff, transport errors."""

from __future__ import annotations

import random

import httpx

from indexing.http_retry import backoff_delay, is_retryable_status, parse_retry_after, transport_errors


def test_retryable_statuses() -> None:
    assert [s for s in (400, 401, 403, 404, 408, 409, 413, 422, 425, 429) if is_retryable_status(s)] == [
        408,
        409,
        429,
    ]
    assert all(is_retryable_status(s) for s in (500, 502, 503, 504, 529, 599))


def test_parse_retry_after_variants() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after-ms": "nan", "retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after": "inf"}) is None
    assert parse_retry_after(httpx.Headers({"Retry-After": "-4"})) == 0.0
    assert parse_retry_after({}) is None


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, base=1.0, cap=8.0, rng=rng) for n in range(1, 7)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert backoff_delay(3, base=1.0, cap=8.0, rng=rng, jitter=0.0) == 4.0


def test_dropped_connections_count_as_transport_errors() -> None:
    assert issubclass(httpx.RemoteProtocolError, transport_errors())
    assert issubclass(httpx.ConnectError, transport_errors())

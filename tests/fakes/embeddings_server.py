"""A tiny local embeddings endpoint speaking the OpenAI and Voyage wire format, for provider tests.

`FakeEmbeddingsServer` is a threaded `http.server` on 127.0.0.1 (a free port) answering
`POST <anything>/embeddings` with deterministic unit vectors (`vector_for`), recording every request,
and failing on demand: `fail_next(429, retry_after="1")` fails the next request(s) once each, and
`fail_always(500)` fails every request until `reset()`. Use it as a context manager, or through
`running_embeddings_server()`. ``port`` binds a given port (an endpoint that was down comes up at its URL).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def vector_for(text: str, dim: int) -> list[float]:
    """The deterministic vector the fake server returns for `text` (unit length, not normalised by us)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=64).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dim)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm * 3.0 for x in raw]  # length 3: the client must normalise


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class FakeEmbeddingsServer:
    """See the module docstring. `url` is the base URL to configure (ends with `/v1`)."""

    def __init__(self, dim: int = 8, *, reverse_order: bool = False, port: int = 0) -> None:
        self.dim = dim
        self.reverse_order = reverse_order  # answer rows out of order, to check clients sort by index
        self.requests: list[RecordedRequest] = []
        self._queued: list[_Failure] = []
        self._always: _Failure | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-embeddings", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeEmbeddingsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeEmbeddingsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, status: int = 429, *, retry_after: str | None = None, times: int = 1) -> None:
        """Fail the next `times` requests with `status` (and a `retry-after` header when given)."""
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        body = json.dumps({"error": {"message": f"fake failure {status}"}})
        with self._lock:
            self._queued.extend(_Failure(status, headers, body) for _ in range(times))

    def fail_always(self, status: int = 500, body: str | None = None) -> None:
        """Fail every request with `status` until `reset()`."""
        with self._lock:
            self._always = _Failure(status, {}, body if body is not None else json.dumps({"detail": "boom"}))

    def reset(self) -> None:
        with self._lock:
            self._queued.clear()
            self._always = None
            self.requests.clear()

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            if self._queued:
                return self._queued.pop(0)
            return self._always

    def _answer(self, body: Any) -> dict[str, Any]:
        texts = body.get("input", [])
        if isinstance(texts, str):
            texts = [texts]
        rows = [
            {"object": "embedding", "index": index, "embedding": vector_for(text, self.dim)}
            for index, text in enumerate(texts)
        ]
        if self.reverse_order:
            rows.reverse()
        return {
            "object": "list",
            "data": rows,
            "model": body.get("model", ""),
            "usage": {
                "prompt_tokens": sum(len(t) for t in texts),
                "total_tokens": sum(len(t) for t in texts),
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: str, headers: dict[str, str] | None = None) -> None:
                data = payload.encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with server._lock:
                    server.requests.append(
                        RecordedRequest(
                            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                failure = server._next_failure()
                if failure is not None:
                    self._send(failure.status, failure.body, failure.headers)
                    return
                if not self.path.endswith("/embeddings") or not isinstance(body, dict):
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
                    return
                self._send(200, json.dumps(server._answer(body)))

        return Handler


@contextmanager
def running_embeddings_server(dim: int = 8, *, reverse_order: bool = False) -> Iterator[FakeEmbeddingsServer]:
    """A started `FakeEmbeddingsServer`, stopped on exit (wrap it in a pytest fixture)."""
    with FakeEmbeddingsServer(dim, reverse_order=reverse_order) as server:
        yield server

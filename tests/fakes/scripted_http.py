"""What the fake model APIs share: a threaded HTTP server on 127.0.0.1, a handler with JSON and chunked
(server-sent events) replies, and a fake that serves in a background thread, consumes a script one item
a request and records what arrived.

`tests.fakes.anthropic_server.FakeAnthropic` and `tests.fakes.openai_server.FakeOpenAI` are
`ScriptedFake`s with their own handler (`FakeHandler` subclasses) that speak their API's wire format.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

__all__ = ["FakeHandler", "FakeServer", "ScriptedFake"]


class _Indexed(Protocol):
    @property
    def index(self) -> int: ...


ItemT = TypeVar("ItemT")
RecordT = TypeVar("RecordT", bound=_Indexed)


class FakeServer(ThreadingHTTPServer):
    """The listening server; `fake` is the `ScriptedFake` its handlers answer for."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64
    fake: Any


class FakeHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with the replies both fakes send."""

    protocol_version = "HTTP/1.1"
    server: FakeServer

    def read_request(self) -> tuple[str, dict[str, str], bytes]:
        """The request's path (without the query), its headers (names lower-cased) and its body."""
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        return self.path.split("?", 1)[0], headers, raw

    def send_json(
        self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        """One JSON body with its content-length."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_event_stream(self, headers: Mapping[str, str]) -> None:
        """A 200 with chunked transfer encoding; `send_chunk` each event, `send_chunk(b"")` to end."""
        self.send_response(200)
        for name, value in {"transfer-encoding": "chunked", **headers}.items():
            self.send_header(name, value)
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        """One chunk of a chunked body (an empty one ends the body)."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class ScriptedFake(Generic[ItemT, RecordT]):
    """A scripted API on 127.0.0.1 (a free port): a context manager, or `start()` / `stop()`.

    Subclasses set `handler` (their `FakeHandler`) and `thread_name`."""

    handler: type[FakeHandler]
    thread_name = "fake-api"

    def __init__(self, script: Iterable[ItemT]) -> None:
        self._script: deque[ItemT] = deque(script)
        self._requests: list[RecordT] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> Self:
        """Listen on a free port and serve in a background thread."""
        if self._server is not None:
            return self
        server = FakeServer(("127.0.0.1", 0), self.handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError(
                f"{type(self).__name__} is not running: use it as a context manager or start()"
            )
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- script

    def enqueue(self, *items: ItemT) -> Self:
        """Append script items; each request of the API consumes the next one."""
        with self._lock:
            self._script.extend(items)
        return self

    @property
    def pending(self) -> int:
        """Script items not consumed yet."""
        with self._lock:
            return len(self._script)

    def _pop(self) -> ItemT | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # -- records

    def _next_index(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter - 1

    def _record(self, request: RecordT) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordT]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return sorted(self._requests, key=lambda request: request.index)

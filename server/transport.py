"""Reading JSON-RPC messages off a byte stream, and surviving whatever arrives.

pygls' own reader trusts its input: a header it cannot parse makes it glue the following body to the next
header, so every later message is lost; invalid JSON and parameters that do not fit the method's type are
logged and dropped without an answer, so the client waits forever. This module replaces that reader:

- `FrameParser` splits a byte stream into message bodies. It resynchronises on the next
  ``Content-Length`` header after garbage, a bad or missing length, or a body cut short (a later header
  inside an unfinished body means the body was truncated: a header line never occurs in valid JSON,
  whose strings cannot hold raw line breaks).
- `dispatch` decodes one body and hands it to the pygls protocol, answering what the protocol cannot:
  ``-32700`` for invalid JSON, ``-32600`` for something that is not a request, ``-32602`` for parameters
  of the wrong shape, ``-32002`` for requests before ``initialize``. Notifications are never answered,
  as JSON-RPC says; their problems are logged.
- `serve_stream` runs the loop on a chunk reader (stdin through a thread, or an asyncio stream for TCP).
- `serve_stdio` and `serve_tcp` run a server (`Served`: the language server) over stdio or one TCP
  client until ``exit``, the end of the stream or a `Hangup`, and set its exit code. Each way out ends
  the same: the server's ``shutdown()`` (runs cancelled, the indexing process stopped, worker processes
  ended) after the loop.
- `Hangup` ends serving from inside, as the end of the input does, with one log line saying why and exit
  code 1: the editor's process is gone (`server.parent`), or the editor stopped reading the server's
  output. The stdio writer (`OutputWriter`) notices a dead output at the first write that fails
  (a closed pipe, a reset socket, a closed file), hangs up, and drops what is sent after it, so that pygls
  does not log a ``BrokenPipeError`` traceback for every message still going out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
)
from pygls.protocol import JsonRPCProtocol

from agent.credential_fields import mask_settings

__all__ = [
    "MAX_BODY_BYTES",
    "Frame",
    "FrameError",
    "FrameParser",
    "Hangup",
    "OutputWriter",
    "Served",
    "dispatch",
    "serve_stdio",
    "serve_stream",
    "serve_tcp",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024 * 1024
"""A larger Content-Length is treated as a corrupt header."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_EMBEDDED_HEADER = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)
_MAX_HEADER_BYTES = 64 * 1024
_MAX_PROBLEM_CHARS = 300


@dataclass(frozen=True, slots=True)
class Frame:
    """One message body, as bytes."""

    body: bytes


@dataclass(frozen=True, slots=True)
class FrameError:
    """Bytes that were dropped, and why."""

    message: str


class FrameParser:
    """Incremental ``Content-Length`` framing that recovers from malformed input."""

    def __init__(self, max_body: int = MAX_BODY_BYTES) -> None:
        self._buf = bytearray()
        self._length: int | None = None  # body length once a header was read
        self._scanned = 0  # how much of an unfinished body was searched for a later header
        self._max_body = max_body

    @property
    def pending(self) -> int:
        """Bytes buffered and not yet returned."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Add bytes; return every complete frame (and every error) they finish, in order."""
        self._buf += data
        out: list[Frame | FrameError] = []
        while True:
            item = self._body() if self._length is not None else self._header()
            if item is None:
                return out
            if isinstance(item, (Frame, FrameError)):
                out.append(item)

    def _header(self) -> Frame | FrameError | bool | None:
        """Parse one header block; True when it was consumed without producing anything."""
        buf = self._buf
        end = _HEADER_END.search(buf)
        if end is None:
            if len(buf) > _MAX_HEADER_BYTES:
                keep = buf.rfind(b"\n")
                dropped = len(buf) if keep < 0 else keep + 1
                del buf[:dropped]
                return FrameError(f"dropped {dropped} bytes that were not a message header")
            return None
        block = bytes(buf[: end.start()])
        matches = list(_LENGTH.finditer(block))
        del buf[: end.end()]
        if not block.strip():
            return True  # stray blank lines between messages
        if not matches:
            return FrameError(f"dropped a message header without Content-Length ({block[:80]!r})")
        match = matches[-1]  # the header nearest the body; anything before it is garbage
        value = match.group(1).strip()
        if not value.isdigit():
            return FrameError(f"dropped a message with an invalid Content-Length {value[:40]!r}")
        length = int(value)
        if length > self._max_body:
            return FrameError(f"dropped a message whose Content-Length {length} is over the limit")
        self._length = length
        self._scanned = 0
        garbage = block[: match.start()].strip()
        if garbage and not _only_headers(garbage):
            return FrameError(f"dropped {len(garbage)} bytes before a message header")
        return True

    def _body(self) -> Frame | FrameError | None:
        assert self._length is not None
        buf = self._buf
        available = min(len(buf), self._length)
        found = _EMBEDDED_HEADER.search(buf, max(0, self._scanned - 64), available)
        if found is not None:
            # A header line inside this body: the body was cut short (valid JSON never holds one: its
            # strings cannot contain raw line breaks). Drop what came before the header.
            del buf[: found.start()]
            self._length = None
            return FrameError("dropped a truncated message (a new message began inside its body)")
        if available < self._length:
            self._scanned = available
            return None
        body = bytes(buf[: self._length])
        del buf[: self._length]
        self._length = None
        return Frame(body)


def _only_headers(block: bytes) -> bool:
    return all(re.fullmatch(rb"[A-Za-z0-9-]+[ \t]*:.*", line) for line in block.splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------------
# Dispatch


def _send_error(protocol: JsonRPCProtocol, msg_id: Any, code: int, message: str) -> None:
    protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})


def _valid_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _params_problem(exc: BaseException) -> str:
    """One short line about what did not fit: the first few problems, never one per element."""
    cause = exc.__cause__ if isinstance(exc, JsonRpcException) and exc.__cause__ is not None else exc
    try:
        from cattrs import transform_error

        problems = (
            transform_error(cause) if hasattr(cause, "exceptions") else [f"{type(cause).__name__}: {cause}"]
        )
    except Exception:
        problems = [str(cause)]
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return _clip("; ".join(problems[:3]) + more, _MAX_PROBLEM_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _ExpectedErrorsInOneLine(logging.Filter):
    """Bad input is logged as one line; tracebacks are for real bugs (a traceback per bad message buried
    them). Drops pygls' "Unable to deserialize message" traceback (`dispatch` reports the same input in one
    line and answers -32602) and shortens pygls' report of a handler that refused its params
    (`JsonRpcInvalidParams` and the like) to the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Unable to deserialize message"):
            return False
        error = record.exc_info[1] if record.exc_info else None
        expected = isinstance(error, _EXPECTED) or type(error) is JsonRpcException
        if expected and error is not None:
            record.msg = (
                f"{record.getMessage()}: {type(error).__name__}: {_clip(str(error), _MAX_PROBLEM_CHARS)}"
            )
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_EXPECTED = (JsonRpcInvalidParams, JsonRpcInvalidRequest, JsonRpcMethodNotFound)
"""Errors a handler raises on purpose for bad input; plain `JsonRpcException`s too (handlers raise them
with a message for the user), but never `JsonRpcInternalError` (a bug)."""
_PYGLS_FILTER = _ExpectedErrorsInOneLine()


class _NoCredentialsInResults(logging.Filter):
    """pygls logs each answer of the editor at debug level, the settings it answers
    ``workspace/configuration`` with among them: their credentials (an MCP server's ``env`` and
    ``headers``, passwords in URLs) are masked there as in every dump of settings
    (`agent.credential_fields.mask_settings`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Received result") and isinstance(record.args, tuple):
            record.args = tuple(mask_settings(arg) for arg in record.args)
        return True


_PYGLS_RESULTS_FILTER = _NoCredentialsInResults()


def quiet_expected_errors() -> None:
    """Install `_ExpectedErrorsInOneLine` and `_NoCredentialsInResults` on pygls' JSON-RPC logger
    (idempotent)."""
    logger = logging.getLogger("pygls.protocol.json_rpc")
    logger.addFilter(_PYGLS_FILTER)
    logger.addFilter(_PYGLS_RESULTS_FILTER)


def dispatch(protocol: JsonRPCProtocol, body: bytes, *, initialized: Callable[[], bool]) -> None:
    """Decode one message body and hand it to `protocol`, answering errors the protocol would drop."""
    try:
        raw = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        _send_error(protocol, None, PARSE_ERROR, "Parse error: the message is not UTF-8")
        return
    except ValueError as exc:
        _send_error(protocol, None, PARSE_ERROR, _clip(f"Parse error: {exc}", _MAX_PROBLEM_CHARS))
        return
    except RecursionError:
        _send_error(protocol, None, PARSE_ERROR, "Parse error: the JSON is nested too deeply")
        return
    if not isinstance(raw, dict):
        kind = "a batch" if isinstance(raw, list) else f"a JSON {type(raw).__name__}"
        _send_error(protocol, None, INVALID_REQUEST, f"Invalid request: got {kind}, expected one JSON object")
        return
    has_id = "id" in raw
    msg_id = raw.get("id")
    method = raw.get("method")
    is_response = "method" not in raw and ("result" in raw or "error" in raw)
    problem = None
    if raw.get("jsonrpc") != "2.0":
        problem = 'the message lacks "jsonrpc": "2.0"'
    elif has_id and not _valid_id(msg_id) and (msg_id is not None or not is_response):
        # null only in a response (to a message whose id could not be read); a request's id is a string
        # or an integer (LSP), else its answer could not be told from such a response
        problem = "the id must be a string or an integer"
    elif not is_response and not isinstance(method, str):
        problem = "the method must be a string"
    if problem is not None:
        if has_id or not is_response:
            _send_error(
                protocol,
                msg_id if _valid_id(msg_id) else None,
                INVALID_REQUEST,
                f"Invalid request: {problem}",
            )
        return
    is_request = has_id and not is_response
    if is_request and method != types.INITIALIZE and not initialized():
        _send_error(
            protocol,
            msg_id,
            SERVER_NOT_INITIALIZED,
            f"the server is not initialized yet; {method} must wait for initialize",
        )
        return
    if is_request and method == types.INITIALIZE and initialized():
        # LSP: initialize is sent once; a second one must not replace the folders and settings in use.
        _send_error(
            protocol, msg_id, INVALID_REQUEST, "the server is already initialized; initialize is sent once"
        )
        return
    if is_request and getattr(protocol, "_shutdown", False) and method != types.EXIT:
        _send_error(protocol, msg_id, INVALID_REQUEST, "the server is shutting down; only exit is accepted")
        return
    if is_request and method == types.EXIT:
        # exit is a notification (LSP). Sent as a request, it is answered before the process ends, so the
        # client is not left waiting on a server that is gone.
        protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "result": None})
        del raw["id"]
        is_request = False
    if not is_request and not is_response and "params" in raw and raw["params"] is None:
        del raw["params"]  # `params: null` on a notification means no params
    params = raw.get("params")
    if (
        is_request
        and method == types.WORKSPACE_EXECUTE_COMMAND
        and isinstance(params, dict)
        and "arguments" in params
        and not isinstance(params["arguments"], list | type(None))
    ):
        # The converter would turn an object into the list of its keys, and the command would then
        # report a confusing "got str: uri".
        kind = type(params["arguments"]).__name__
        _send_error(
            protocol, msg_id, INVALID_PARAMS, f"Invalid params: `arguments` must be an array (got a {kind})"
        )
        return
    if method == types.CANCEL_REQUEST and not (isinstance(params, dict) and _valid_id(params.get("id"))):
        log.warning("ignoring $/cancelRequest without a string or integer id")
        return
    try:
        message = protocol.structure_message(raw)
    except (JsonRpcException, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # The converter stops at the first problem (no per-element errors: a 100 KB string where a list
        # belongs used to cost 30 s and 15 MB of log); that is bad input, so one line, no traceback.
        detail = _params_problem(exc)
        if is_request:
            _send_error(protocol, msg_id, INVALID_PARAMS, f"Invalid params for {method}: {detail}")
        else:
            log.warning("ignoring %s with invalid params: %s", _clip(str(method or "a response"), 80), detail)
        return
    protocol.handle_message(message)


async def serve_stream(
    read: Callable[[], Awaitable[bytes]],
    protocol: JsonRPCProtocol,
    *,
    initialized: Callable[[], bool],
    stopped: Callable[[], bool],
) -> None:
    """Read chunks until end of stream (or `stopped()`), dispatching every message.

    An exception while handling one message is logged and the loop goes on; `SystemExit` (the ``exit``
    notification) ends it.
    """
    parser = FrameParser()
    quiet_expected_errors()
    while not stopped():
        data = await read()
        if not data:
            log.info("the client closed the connection")
            return
        for item in parser.feed(data):
            if isinstance(item, FrameError):
                log.warning("%s", item.message)
                continue
            try:
                dispatch(protocol, item.body, initialized=initialized)
            except JsonRpcInvalidParams as exc:
                log.warning("invalid message: %s", exc)
            except Exception:
                log.exception("failed to handle a message")


class Hangup:
    """Ends serving from inside the server, for a reason (thread-safe; the first reason is kept).

    Calling it before serving starts takes effect once it does."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: serving is over anyway
                loop.call_soon_threadsafe(event.set)

    async def wait(self) -> str:
        """Return the reason once `Hangup` is called."""
        event = asyncio.Event()
        with self._lock:
            self._loop, self._event = asyncio.get_running_loop(), event
            if self.reason is not None:
                event.set()
        await event.wait()
        assert self.reason is not None
        return self.reason


class OutputWriter:
    """pygls' writer over a binary stream (the server's stdout) that tells `on_lost` once when the client
    stopped reading, and then drops what is written."""

    def __init__(self, stream: BinaryIO, on_lost: Callable[[str], None]) -> None:
        self._stream = stream
        self._on_lost = on_lost
        self._lost = False

    def write(self, data: bytes) -> None:
        if self._lost:
            return
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError) as exc:  # EPIPE, ECONNRESET, EBADF, EIO; ValueError: a closed file
            self._lost = True
            self._discard_pending()
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._on_lost(f"the editor stopped reading the server's output ({detail})")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.close()

    def _discard_pending(self) -> None:
        # The buffer still holds what could not be written: point the descriptor at /dev/null, so that
        # closing the stream at exit does not fail again ("Exception ignored ... BrokenPipeError").
        with contextlib.suppress(OSError, ValueError):
            fd = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)


class Served(Protocol):
    """The server `serve_stdio` and `serve_tcp` run: pygls' `LanguageServer` with agentls' state."""

    protocol: Any
    loop: asyncio.AbstractEventLoop | None
    exit_code: int
    hangup: Hangup
    _stop_event: threading.Event | None  # pygls' own flag, set by its shutdown

    @property
    def is_initialized(self) -> bool:
        """Whether ``initialize`` was received."""

    def shutdown(self) -> None:
        """Stop everything that is left (idempotent)."""


def serve_stdio(server: Served, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """Serve over stdio until the client exits or closes the stream."""
    source = stdin or sys.stdin.buffer
    server.protocol.set_writer(OutputWriter(stdout or sys.stdout.buffer, server.hangup))
    server._stop_event = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        fd = source.fileno()

        def pump() -> None:  # a daemon thread: a blocked read must not keep the process alive
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                loop.call_soon_threadsafe(queue.put_nowait, data)
                if not data:
                    return

        threading.Thread(target=pump, name="agentls-stdin", daemon=True).start()
        await _serve(server, queue.get)

    _run(server, main)


def serve_tcp(server: Served, host: str, port: int) -> None:
    """Serve one client over TCP; the server ends when that client disconnects."""
    server._stop_event = threading.Event()

    async def main() -> None:
        connection: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        connection = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connection.done():  # one client per server, as with stdio
                writer.close()
                return
            connection.set_result((reader, writer))

        tcp = await asyncio.start_server(on_connect, host, port)
        addresses = ", ".join(str(s.getsockname()) for s in tcp.sockets)
        log.warning("agentls listening on %s", addresses)
        async with tcp:
            reader, writer = await connection
            # Served here, in the main task, so that `exit` (a SystemExit) ends the server cleanly.
            server.protocol.set_writer(writer)
            await _serve(server, lambda: reader.read(65536))

    _run(server, main)


def _run(server: Served, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(main())
    except SystemExit as exc:  # the exit notification
        server.exit_code = exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:
        log.error("the connection to the client is lost; shutting down")
        server.exit_code = 1
    except KeyboardInterrupt:
        server.exit_code = 1
    finally:
        server.shutdown()


async def _serve(server: Served, read: Callable[[], Awaitable[bytes]]) -> None:
    server.loop = asyncio.get_running_loop()
    stop = server._stop_event
    reading = asyncio.ensure_future(
        serve_stream(
            read,
            server.protocol,
            initialized=lambda: server.is_initialized,
            stopped=lambda: stop is not None and stop.is_set(),
        )
    )
    # `exit` raises SystemExit inside `reading`, which leaves the loop at once: take the exception off
    # the task, or asyncio logs "Task exception was never retrieved" with a traceback at exit.
    reading.add_done_callback(lambda task: task.cancelled() or task.exception())
    hangup = asyncio.ensure_future(server.hangup.wait())
    try:
        await asyncio.wait({reading, hangup}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hangup.cancel()
    if reading.done():
        reading.result()  # the end of the stream; `exit` (SystemExit) left the loop before this
        if not server.protocol._shutdown:
            server.exit_code = 1  # the stream ended without shutdown and exit
        return
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    log.warning("%s; shutting down", server.hangup.reason)
    server.exit_code = 1

"""The ACP endpoint's input, screened before the SDK sees it: hostile lines are answered or dropped here.

The `agent-client-protocol` SDK reads newline-delimited JSON-RPC and assumes each line is a JSON object:
a line holding an array, a number or a response whose id is a list kills its receive loop (and with it
`agentls acp`), and every line that is not JSON is logged with a full traceback. `guarded_stdio`
returns the SDK's stdio streams with a reader in between that passes on only JSON objects fit for the
SDK and answers the rest as JSON-RPC says: invalid JSON (also invalid UTF-8 and nesting too deep for the
decoder) gets ``-32700``, valid JSON that is not a request ``-32600``, both with ``id: null``; a
response to an id agentls never sent is dropped. Each is logged as one line. Lines longer than
`MAX_LINE` are discarded without being held in memory.

`OneLineExpectedErrors` turns the SDK's log of a notification it refused (an unknown method, params
that do not validate: a client's mistake, not agentls') from a traceback into one line; a traceback in
the log means a real bug.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

__all__ = ["MAX_LINE", "OneLineExpectedErrors", "guarded_stdio", "screen"]

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024 * 1024
"""The longest line passed on (bytes); the SDK's own stdio limit is 50 MB a read, lines may be longer."""

_ID_TYPES = (str, int)


def _error(code: int, message: str) -> bytes:
    payload = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return json.dumps(payload).encode() + b"\n"


def screen(line: bytes) -> tuple[bytes | None, bytes | None]:
    """(the line to pass on, or None; the answer to write back, or None) for one input line."""
    if not line.strip():
        return None, None
    try:
        message: Any = json.loads(line)
    except RecursionError:
        log.info("acp: ignoring a message nested too deeply (%d bytes)", len(line))
        return None, _error(-32700, "Parse error: the message is nested too deeply")
    except ValueError as error:  # also invalid UTF-8 (UnicodeDecodeError)
        log.info("acp: ignoring a line that is not JSON (%d bytes): %s", len(line), str(error)[:120])
        return None, _error(-32700, "Parse error: the line is not JSON")
    if not isinstance(message, dict):
        log.info("acp: ignoring a JSON %s where a JSON-RPC object belongs", type(message).__name__)
        return None, _error(-32600, "Invalid Request: a message must be a JSON object")
    method = message.get("method")
    if method is None:
        if "id" in message and not isinstance(message["id"], _ID_TYPES):
            log.info("acp: ignoring a response with an id agentls never sends")
            return None, None
        return line, None
    if not isinstance(method, str):
        log.info("acp: ignoring a message whose method is not a string")
        return None, _error(-32600, "Invalid Request: the method must be a string")
    if message.get("jsonrpc") != "2.0":
        log.info('acp: ignoring %s without "jsonrpc": "2.0"', method[:80])
        return None, _error(-32600, 'Invalid Request: the message lacks "jsonrpc": "2.0"')
    if "id" in message and (
        isinstance(message["id"], bool) or not isinstance(message["id"], (str, int, type(None)))
    ):  # JSON's true is no number, though Python's bool is an int
        log.info("acp: ignoring %s with an id that is not a string, a number or null", method[:80])
        return None, _error(-32600, "Invalid Request: the id must be a string, an integer or null")
    return line, None


async def _pump(
    source: asyncio.StreamReader, sink: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Screen each line of `source` into `sink`; answers go to `writer`."""
    try:
        while True:
            try:
                line = await source.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                line = end.partial
                if line:
                    passed, answer = screen(line)
                    if passed is not None:
                        sink.feed_data(passed)
                return
            except asyncio.LimitOverrunError as over:
                await _discard_long_line(source, over.consumed)
                writer.write(_error(-32700, f"Parse error: a line longer than {MAX_LINE} bytes was dropped"))
                continue
            passed, answer = screen(line)
            if answer is not None:
                writer.write(answer)
            if passed is not None:
                sink.feed_data(passed)
    finally:
        sink.feed_eof()


async def _discard_long_line(source: asyncio.StreamReader, consumed: int) -> None:
    """Read on to the end of a line over the reader's limit, keeping none of it."""
    log.info("acp: dropping a line longer than %d bytes", MAX_LINE)
    await source.readexactly(consumed)
    while True:
        try:
            await source.readuntil(b"\n")
            return
        except asyncio.LimitOverrunError as over:
            await source.readexactly(over.consumed)
        except asyncio.IncompleteReadError:
            return


async def guarded_stdio() -> tuple[asyncio.StreamWriter, asyncio.StreamReader, asyncio.Task[None]]:
    """The SDK's stdio streams (writer to the client, screened reader from it) and the screening task."""
    from acp.stdio import stdio_streams

    reader, writer = await stdio_streams(limit=MAX_LINE)
    screened = asyncio.StreamReader(limit=MAX_LINE + 1)
    task = asyncio.create_task(_pump(reader, screened, writer), name="acp-input-screen")
    return writer, screened, task


class OneLineExpectedErrors(logging.Filter):
    """Logs the SDK's refusals of bad client input (`RequestError`, pydantic's `ValidationError`) as one
    line, without the traceback. Install on the root logger, where the SDK logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from acp import RequestError
        from pydantic import ValidationError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, RequestError | ValidationError):
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            record.msg = f"{record.getMessage()}: {first[:200]}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True

"""An example MCP stdio server written with the `mcp` SDK, started as a process by the MCP tests.

Tools: `lookup_ticket(ticket_id)` (a ticket's text, or an error result for an unknown one),
`big_output(size)` (a long text, for the size cap) and `whoami()` (the environment variable
TICKETS_USER the server was started with).

For tests of starting several servers: TICKETS_MARK names a file the server creates as it starts;
TICKETS_WAIT_FOR names a file the server waits for (at most 20 s) before it answers anything.
TICKETS_CRASHABLE adds `crash()`, which exits the process during the call. TICKETS_MEDIA adds
`attachments(ticket_id)`, whose result holds an image (a real 4x3 PNG, `SCREENSHOT`), a resource link and
a binary resource besides text, and `screenshot(width, height, pad_kib, count, comment)`: `count` real
PNGs of that size, each made `pad_kib` KiB bigger by a text chunk (for the API's limits) which also
holds `comment` (or the text of the ticket it names), as a browser's screenshot tool answers.
TICKETS_ECHO_TOKEN adds `session()`, which answers with the token TICKETS_TOKEN it was given, as a
debugging tool might.
TICKETS_FILE names a JSON file of more tickets (id -> text), for results that hold what a test needs.
TICKETS_FAIL_START makes it a server that cannot start: it says on stderr that it cannot log in as
TICKETS_USER with the token TICKETS_TOKEN, and exits with status 1 before answering. TICKETS_CANCELLED
adds `wait(seconds)`, a call that takes that long; one the client cancels (MCP's
`notifications/cancelled`) stops and appends a line to the file TICKETS_CANCELLED names.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if __name__ == "__main__" and os.environ.get("TICKETS_FAIL_START"):  # before the SDK's slow import
    _user, _token = os.environ.get("TICKETS_USER", "?"), os.environ.get("TICKETS_TOKEN", "")
    sys.stderr.write(f"starting tickets\nError: cannot log in as {_user} with the token {_token} (401)\n")
    sys.exit(1)

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer as Server
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef,attr-defined]
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[no-redef]

TICKETS = {"T-1": "T-1: mean() must raise ValueError on an empty list (reported by Ada)."}
if os.environ.get("TICKETS_FILE"):  # more tickets, as a JSON object of id -> text
    import json

    with open(os.environ["TICKETS_FILE"], encoding="utf-8") as _file:
        TICKETS.update(json.load(_file))

server = Server("tickets")


@server.tool()
def lookup_ticket(ticket_id: str) -> str:
    """The text of the issue-tracker ticket `ticket_id`."""
    if ticket_id not in TICKETS:
        raise ToolError(f"no ticket {ticket_id}")
    return TICKETS[ticket_id]


@server.tool()
def big_output(size: int) -> str:
    """`size` characters of text."""
    return "x" * size


@server.tool()
def whoami() -> str:
    """The user the server was started for."""
    return os.environ.get("TICKETS_USER", "?")


if os.environ.get("TICKETS_CRASHABLE"):

    @server.tool()
    def crash() -> str:
        """Exit the server process in the middle of the call (a server that crashes)."""
        os._exit(3)


if os.environ.get("TICKETS_ECHO_TOKEN"):

    @server.tool()
    def session() -> str:
        """How the server is logged in to the tracker."""
        return (
            f"logged in as {os.environ.get('TICKETS_USER', '?')} with {os.environ.get('TICKETS_TOKEN', '')}"
        )


if os.environ.get("TICKETS_CANCELLED"):

    @server.tool()
    async def wait(seconds: float) -> str:
        """Take `seconds` to answer (a slow query)."""
        import anyio

        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            with open(os.environ["TICKETS_CANCELLED"], "a", encoding="utf-8") as cancelled:
                cancelled.write(f"wait({seconds:g}) cancelled\n")
            raise
        return f"waited {seconds:g} s"


def png(
    width: int, height: int, pad_kib: int = 0, comment: str = "", rgb: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    """A real PNG file of one colour, with `comment` and `pad_kib` KiB more in a tEXt chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + bytes(rgb) * width) * height, 9)
    text = comment.encode("latin-1") + b"x" * (pad_kib * 1024)
    extra = chunk(b"tEXt", b"Comment\x00" + text) if text else b""
    body = chunk(b"IHDR", header) + extra + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


SCREENSHOT = png(4, 3)
"""The image `attachments` returns."""


if os.environ.get("TICKETS_MEDIA"):

    @server.tool()
    def screenshot(width: int, height: int, pad_kib: int = 0, count: int = 1, comment: str = "") -> list[Any]:
        """`count` screenshots of `width` x `height` pixels (`comment` in their metadata)."""
        import base64

        from mcp import types

        data = base64.b64encode(png(width, height, pad_kib, TICKETS.get(comment, comment))).decode()
        image = {"type": "image", "data": data, "mimeType": "image/png"}
        return [
            types.TextContent(type="text", text=f"{count} screenshot(s) of {width}x{height}"),
            *(types.ImageContent.model_validate(image) for _ in range(count)),
        ]

    @server.tool()
    def attachments(ticket_id: str) -> list[Any]:
        """A ticket's attachments: a note, a screenshot, a link to its log and a binary dump."""
        import base64

        from mcp import types

        # As on the wire (camelCase), which both SDK versions read.
        blob = {"uri": "tickets://T-1/core", "blob": "AAAAAAAA", "mimeType": "application/octet-stream"}
        data = base64.b64encode(SCREENSHOT).decode()
        return [
            types.TextContent(type="text", text=f"{ticket_id} has 3 attachments"),
            types.ImageContent.model_validate({"type": "image", "data": data, "mimeType": "image/png"}),
            types.ResourceLink.model_validate(
                {
                    "type": "resource_link",
                    "name": "build.log",
                    "uri": "tickets://T-1/build.log",
                    "mimeType": "text/plain",
                    "description": "The failing build's log.",
                }
            ),
            types.EmbeddedResource.model_validate({"type": "resource", "resource": blob}),
        ]


if __name__ == "__main__":
    import time
    from pathlib import Path

    if os.environ.get("TICKETS_MARK"):
        Path(os.environ["TICKETS_MARK"]).touch()
    if os.environ.get("TICKETS_WAIT_FOR"):
        deadline = time.monotonic() + 20
        while not Path(os.environ["TICKETS_WAIT_FOR"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    server.run()

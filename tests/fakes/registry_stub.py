"""A package registry stand-in on 127.0.0.1: answers every GET with a short text and records the paths.

`RegistryStub()` starts serving at once on an ephemeral port (`port`); `hits` lists the paths asked for;
`close()` stops it. The network tests run two: one allowed by the sandbox's policy, one not.
"""

from __future__ import annotations

import http.server
import threading


class RegistryStub:
    """An HTTP server on 127.0.0.1 answering ``simple index at PATH`` to every GET."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = f"simple index at {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

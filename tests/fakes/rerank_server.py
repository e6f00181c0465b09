"""A local stand-in for a Cohere/Voyage-style ``POST /rerank`` endpoint (for `indexing.rerank.ApiReranker`).

It scores each document 1.0 when it holds ``favourite`` and a small decreasing value otherwise, answers in
Cohere's shape (``results``) or Voyage's (``data``), and records the bodies and Authorization headers.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RerankEndpoint(http.server.ThreadingHTTPServer):
    favourite: str = ""  # documents holding this text score highest
    style: str = "results"  # Cohere's answer key; Voyage's is "data"
    status: int = 200
    bodies: list[dict[str, Any]]
    auth: list[str]

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/rerank"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RerankEndpoint

    def log_message(self, *_: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        self.server.auth.append(self.headers.get("Authorization", ""))
        if self.server.status != 200:
            self.send_error(self.server.status)
            return
        scores = [
            (1.0 if self.server.favourite in doc else 0.1 / (i + 1))
            for i, doc in enumerate(body["documents"])
        ]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[: body["top_n"]]
        data = json.dumps({self.server.style: [{"index": i, "relevance_score": scores[i]} for i in ranked]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())


@contextmanager
def rerank_endpoint() -> Iterator[RerankEndpoint]:
    server = RerankEndpoint(("127.0.0.1", 0), _Handler)
    server.bodies, server.auth = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

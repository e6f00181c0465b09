"""Object-storage servers on 127.0.0.1 for the shared-index tests: moto's S3 server and Microsoft's
Azurite (npm; `.ci/run` installs it and sets ``AGENTLS_AZURITE``). Each fixture points the provider's
usual environment, which LanceDB reads (and which servers started by the test inherit), at its server
and yields a bucket URI."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator

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


@pytest.fixture(params=["s3", "azure"])
def bucket(request: pytest.FixtureRequest) -> str:
    """The same test on each provider: an ``s3://`` bucket (moto) and an ``az://`` container (Azurite)."""
    return str(request.getfixturevalue(request.param))

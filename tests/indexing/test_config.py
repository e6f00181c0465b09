"""Index settings: where the index may live."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from indexing.config import IndexSettings
from server.settings import validate_settings


@pytest.mark.parametrize("uri", ["s3://bucket/index", "gs://b/i", "az://c/i", "db://my-lancedb-cloud"])
def test_object_storage_uris_are_refused_with_the_reason(uri: str) -> None:
    with pytest.raises(ValidationError, match="must be a local folder"):
        IndexSettings(uri=uri)


def test_local_paths_file_uris_and_home_are_accepted(tmp_path: Path) -> None:
    assert IndexSettings(uri=str(tmp_path / "idx")).uri == str(tmp_path / "idx")
    assert IndexSettings(uri=f"file://{tmp_path}/idx").uri == str(tmp_path / "idx")
    assert IndexSettings(uri="~/agentls-index").uri == str(Path.home() / "agentls-index")
    assert IndexSettings(uri="  ").uri is None


def test_a_refused_uri_falls_back_to_the_default_location_with_a_message() -> None:
    settings, messages = validate_settings({"index": {"uri": "s3://bucket/index", "max_file_bytes": 5000}})
    assert settings.index.uri is None
    assert settings.index.max_file_bytes == 5000  # the rest of the section is kept
    assert any("index.uri" in m and "local folder" in m for m in messages), messages

"""Stores are private (issue 17, item 7): the index, the placeholder key and transcripts are 0700/0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.transcript import Transcript
from indexing.config import IndexSettings
from indexing.service import WorkspaceIndex


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_index_folder_and_key_are_private(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("def f():\n    return 1\n")
    old = os.umask(0o022)
    try:
        index = WorkspaceIndex(
            ws,
            IndexSettings.model_validate({"embedding": {"provider": "none"}}),
            cache_dir=tmp_path / "cache",
        )
        index.index()
    finally:
        os.umask(old)
    assert _mode(index.location) == 0o700
    assert _mode(tmp_path / "cache" / "secret-key") == 0o600
    assert _mode(tmp_path / "cache") == 0o700
    # An index made world-readable by an older version is closed again when opened.
    os.chmod(index.location, 0o755)
    WorkspaceIndex(ws, index.settings, cache_dir=tmp_path / "cache").search("f")
    assert _mode(index.location) == 0o700


def test_transcripts_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Transcript(tmp_path / "runs") as transcript:
            transcript.write("run_start", run_id=transcript.run_id)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "runs") == 0o700
    assert _mode(transcript.path) == 0o600

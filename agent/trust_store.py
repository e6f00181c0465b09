"""What the user trusted per workspace, kept as SHA-256 fingerprints in one JSON file of the agentls cache.

Shared by the trust in a workspace's MCP servers (`agent.mcp.trust`, ``mcp-trust.json``) and in its
sensitive settings (`server.settings_trust`, ``settings-trust.json``). An entry is the workspace's resolved
path, the fingerprint and when; the file is written atomically with mode 0600, on the disk (fsync'd, its
folder too) when `TrustStore.add` returns, and never holds the trusted values themselves (an environment's
values, a URL's credentials), only their digest. `add` blocks on the disk: a caller with an event loop
calls it on a worker thread (``agentls acp``: `agent.apply.OrderedWrites`, in order with the records of
the answers; the language server: ``asyncio.to_thread``). It never raises for the disk: what it returns
(`Kept`) says whether the trust is on the disk and, if not, why, in words for the user (`Kept.why`), so a
caller tells the user and goes on (the servers keep running) rather than reading the file back; every
caller tells it in the same sentence (`Kept.message`, with its context: what was trusted, what follows).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Kept", "TrustStore"]

log = logging.getLogger(__name__)

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Kept:
    """What came of `TrustStore.add`: the trust is on the disk (`kept`), or `path` could not be written
    (`error`). A store without a file (path None) keeps nothing and fails at nothing."""

    path: Path | None
    error: OSError | None = None

    @property
    def kept(self) -> bool:
        return self.error is None

    @property
    def why(self) -> str:
        """Why it was not kept, for the user: "PATH could not be written (ERROR)"; "" when it was."""
        return "" if self.error is None else f"{self.path} could not be written ({self.error})"

    def message(self, what: str, then: str, fix: str = "to keep the answer") -> str:
        """What every caller tells the user when the answer was not kept, in one sentence so all say it
        alike: `what` was answered and how it stands, leading into the rest ("The MCP server `x` is
        trusted for this run, but"; "x: not trusted, as"), why (`why`), what follows (`then`: "The
        question comes again next run") and what to do about it (`fix`: "and run this again")."""
        return (
            f"{what} the answer could not be remembered: {self.why}. {then}; make that file writable {fix}."
        )


class TrustStore:
    """Fingerprints the user trusted, by workspace, in one JSON file (None: nothing is kept)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.reads = 0
        """How many times the file was read: a caller that checks many fingerprints reads it once
        (`trusted`), and its tests count that."""

    def _load(self) -> list[dict[str, Any]]:
        if self.path is None:
            return []
        self.reads += 1
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return []
        entries = data.get("trusted") if isinstance(data, dict) else None
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def has(self, root: Path, digest: str) -> bool:
        """Whether `digest` was trusted for the workspace `root` (one read of the file)."""
        return digest in self.trusted(root)

    def trusted(self, root: Path) -> frozenset[str]:
        """Every fingerprint trusted for the workspace `root`, in one read of the file: for a caller that
        checks several (each MCP server of a workspace)."""
        workspace = str(Path(root).resolve())
        return frozenset(
            str(e["sha256"]) for e in self._load() if e.get("workspace") == workspace and "sha256" in e
        )

    def add(self, root: Path, digest: str, **fields: str) -> Kept:
        """Trust `digest` for `root` from now on, on the disk when this returns; `fields` are kept beside
        it (``server = NAME``). Whether it was kept: a file or folder that cannot be written (a read-only
        cache, a full disk, a file where the cache's folder should be) is logged and returned, not raised."""
        if self.path is None:
            return Kept(None)
        from agent.apply import write_atomic

        entry = {
            "workspace": str(Path(root).resolve()),
            **fields,
            "sha256": digest,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        with _LOCK:
            entries = [
                e
                for e in self._load()
                if (e.get("workspace"), e.get("sha256")) != (entry["workspace"], entry["sha256"])
            ]
            try:  # write_atomic makes the missing folders
                text = json.dumps({"trusted": [*entries, entry]}, indent=1)
                write_atomic(self.path, text, 0o600, durable=True)
            except OSError as error:
                log.warning("cannot remember the trust in %s: %s", self.path, error)
                return Kept(self.path, error)
        return Kept(self.path)

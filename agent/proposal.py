"""Proposals: what a run hands back (never written by the agent), and applying one to disk on request.

A `Proposal` is the overlay's difference from the base the run started from: per-file changes
(`agent.overlay.FileChange`, each with its base text and its own diff), the whole unified diff, the
model's summary, whether verification passed, and what the run cost.

`apply_proposal` is for headless use (`agentls run --apply`); the language server applies proposals as
`WorkspaceEdit`s instead. It first checks every file against disk and refuses the whole proposal, writing
nothing, when any file changed since the run read it (its disk text differs from the base text), when a
file to create already exists, or when a path is refused (outside the workspace, secret). Only then does
it write, through `agent.apply.apply_changes`: journaled, each file atomically (a temporary file renamed
over the target), keeping file modes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.apply import apply_changes
from agent.costs import RoleCost
from agent.overlay import FileChange
from agent.paths import PathRefused, resolve_in_workspace
from agent.usage import Usage

__all__ = [
    "ApplyConflict",
    "ApplyRefused",
    "Proposal",
    "apply_proposal",
    "check_proposal",
    "new_proposal_id",
]


def new_proposal_id() -> str:
    """A fresh proposal id."""
    return f"prop-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Proposal:
    """A multi-file change the user may accept or reject."""

    proposal_id: str
    run_id: str
    summary: str
    """The model's closing summary, prefixed with a plain warning when verification failed or the run
    stopped early."""
    files: tuple[FileChange, ...]
    diff: str
    """All files' changes as one git-style unified diff."""
    usage: Usage
    cost: float
    """USD at list price, for the whole run."""
    verified: bool
    """True when the last verification of this exact change passed."""
    verification_summary: str
    """One line per check run, or why nothing was verified."""
    complete: bool = True
    """False when the run stopped on a budget or step limit and this is the work so far."""
    roles: tuple[RoleCost, ...] = ()
    """Usage and cost per role and node (`agent.costs`), for the payload's ``roles``; they add up to
    `usage` and `cost`."""
    team: Mapping[str, Any] | None = None
    """Team runs (`agent.team`): the handoffs behind the change, ``{spec, design, review}`` (each a JSON
    object or None); None for solo runs."""

    @property
    def paths(self) -> list[str]:
        """The workspace-relative paths the proposal touches (both ends of a rename)."""
        out: list[str] = []
        for change in self.files:
            if change.old_path is not None:
                out.append(change.old_path)
            out.append(change.path)
        return out


@dataclass(frozen=True)
class ApplyConflict:
    """Why one file of a proposal cannot be written."""

    path: str
    reason: str


class ApplyRefused(Exception):
    """The proposal was not applied (nothing was written); the message lists each file and why."""

    def __init__(self, conflicts: Sequence[ApplyConflict]) -> None:
        self.conflicts = tuple(conflicts)
        lines = "\n".join(f"  {c.path}: {c.reason}" for c in self.conflicts)
        super().__init__(
            "The proposal was not applied and no file was written, because:\n"
            f"{lines}\n"
            "Run the task again on the current files, or apply the diff by hand."
        )


def _disk_text(path: Path) -> str | None:
    """The file's text, None when it does not exist; a directory or binary file is a conflict."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ValueError("it is a directory") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text on disk") from None


def _check_one(root: Path, change: FileChange) -> list[ApplyConflict]:
    conflicts: list[ApplyConflict] = []
    targets = [change.path] if change.old_path is None else [change.old_path, change.path]
    for target in targets:
        try:
            rel = resolve_in_workspace(root, target)
        except PathRefused as error:
            conflicts.append(ApplyConflict(target, str(error)))
            continue
        if rel != target:
            conflicts.append(ApplyConflict(target, "the path is not a normalized workspace path"))
    if conflicts:
        return conflicts
    try:
        new = _disk_text(root / change.path)
        old = _disk_text(root / change.old_path) if change.old_path is not None else None
    except ValueError as error:
        return [ApplyConflict(change.path, str(error))]
    changed = "it changed on disk since the run started"
    if change.kind in ("modified", "deleted"):
        if new is None:
            conflicts.append(ApplyConflict(change.path, "it was deleted on disk since the run started"))
        elif new != change.base_text:
            conflicts.append(ApplyConflict(change.path, changed))
    elif change.kind == "created":
        if new is not None and new != change.new_text:
            conflicts.append(ApplyConflict(change.path, "a file was created there since the run started"))
    elif change.kind == "renamed":
        assert change.old_path is not None
        if old is None:
            conflicts.append(ApplyConflict(change.old_path, "it was deleted on disk since the run started"))
        elif old != change.base_text:
            conflicts.append(ApplyConflict(change.old_path, changed))
        if new is not None:
            conflicts.append(ApplyConflict(change.path, "a file was created there since the run started"))
    return conflicts


def check_proposal(proposal: Proposal, root: Path) -> list[ApplyConflict]:
    """What stops `proposal` from applying cleanly to the files under `root` now (empty: it applies)."""
    root = Path(os.path.abspath(root))
    conflicts: list[ApplyConflict] = []
    for change in proposal.files:
        conflicts.extend(_check_one(root, change))
    return conflicts


def apply_proposal(
    proposal: Proposal,
    root: Path,
    *,
    journal: Path | None = None,
    on_written: Callable[[str], None] | None = None,
) -> list[str]:
    """Write `proposal` to disk under `root`; returns the paths written or removed.

    Raises `ApplyRefused` (writing nothing) when any file changed on disk since the run read it. The
    writes are journaled in `journal` (`agent.apply.journal_dir`), so a process killed half-way is
    finished on the next start (`agent.apply.recover_applies`).
    """
    root = Path(os.path.abspath(root))
    conflicts = check_proposal(proposal, root)
    if conflicts:
        raise ApplyRefused(conflicts)
    return apply_changes(
        proposal.files,
        root,
        journal=journal,
        label=f"proposal {proposal.proposal_id}",
        on_written=on_written,
        run_id=proposal.run_id,
        proposal_id=proposal.proposal_id,
    )

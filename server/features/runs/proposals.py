"""The proposals of one server and what became of them, plus the pure parts of accepting one.

`ProposalStore` is a small state machine per proposal::

    pending --begin_accept--> applying --finish_accept(applied=True)--> accepted
       ^                          |
       +---finish_accept(False)---+          pending --reject--> rejected
    empty (a run that changed nothing: can be read, never accepted or rejected)

Every other transition (accepting twice, rejecting after an accept, accepting while the editor applies,
an unknown id) raises `ProposalError` with a message that says what happened and what to do; the
state is left as it was. The store knows nothing of LSP: the run manager turns `ProposalError` into an
error answer.

`prepare_changes` computes what to apply now from each file's current text (rebasing a proposal onto a
file the user edited since the run began, or refusing with `AcceptRefused`); `proposal_hunks` gives the
lines of an open buffer where a proposal's hunks start (for code lenses).

Per-hunk review: `file_hunks` lists a file's hunks (one per changed block of lines of a modified file,
the blocks of `agent.hunks.line_opcodes` that its diff shows too, so each `-` and `+` line of the diff is
in one hunk and each hunk in one ``@@`` section; one for the whole file of a created, deleted or renamed
one). Their lines are counted as the editor counts them (`agent.hunks.editor_lines`), so in a file whose
lines end in a lone ``\\r`` (one line to git and to the diff) each changed block of the editor's lines is
a hunk of its own, at the lines the editor shows, and `editor_diff` is the file's diff in those lines
(for a preview to show each hunk on its own lines; git's diff shows the file as one line). Hunk ids are
``"<path>#<8 hex>"`` made from the path and the hunk's old and new lines, so a hunk keeps its id while
other hunks of the file are accepted.
`split_hunks` splits a proposal's changes into the chosen hunks (to apply now) and the rest (which stays
pending: its base is the file with the chosen hunks applied); `ProposalStore.finish_partial` keeps the
rest as the pending proposal, marked unverified.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.hunks import Opcode, editor_lines, has_lone_cr, line_opcodes, unified_hunks
from agent.merge import rebase
from agent.overlay import FileChange, unified_diff
from agent.proposal import Proposal

__all__ = [
    "AcceptRefused",
    "Hunk",
    "Pending",
    "ProposalError",
    "ProposalStatus",
    "ProposalStore",
    "editor_diff",
    "file_hunks",
    "prepare_changes",
    "proposal_hunks",
    "split_hunks",
]

ProposalStatus = Literal["pending", "applying", "accepted", "rejected", "empty"]


class AcceptRefused(Exception):
    """The proposal cannot be applied on top of the current text; the message names files and lines."""


class ProposalError(Exception):
    """A proposal is unknown, or not in a state that allows what was asked; nothing was changed."""


@dataclass
class Pending:
    """A proposal and what became of it."""

    proposal: Proposal
    root: Path
    kind: str
    status: ProposalStatus = "pending"


class ProposalStore:
    """The proposals of one server, by id, with their status (see the module docstring)."""

    def __init__(self) -> None:
        self._items: dict[str, Pending] = {}

    def add(self, proposal: Proposal, root: Path, kind: str) -> Pending:
        """Keep a new proposal: ``pending`` when it changes files, else ``empty``."""
        status: ProposalStatus = "pending" if proposal.files else "empty"
        item = Pending(proposal, root, kind, status)
        self._items[proposal.proposal_id] = item
        return item

    def get(self, proposal_id: str) -> Pending:
        """The proposal in any state; `ProposalError` when this server has none by that id."""
        item = self._items.get(proposal_id)
        if item is None:
            raise ProposalError(f"there is no proposal {proposal_id} in this server")
        return item

    def status(self, proposal_id: str) -> ProposalStatus:
        """The proposal's status (`ProposalError` when unknown)."""
        return self.get(proposal_id).status

    def pending(self) -> Iterator[Pending]:
        """The proposals still waiting for accept or reject."""
        return (item for item in self._items.values() if item.status == "pending")

    def _settleable(self, proposal_id: str, verb: str) -> Pending:
        item = self._items.get(proposal_id)
        if item is None:
            raise ProposalError(
                f"there is no proposal {proposal_id} in this server (it may be from before a restart); "
                f"nothing was {verb}ed"
            )
        if item.status == "accepted":
            raise ProposalError(f"proposal {proposal_id} was already accepted; nothing was {verb}ed again")
        if item.status == "rejected":
            raise ProposalError(f"proposal {proposal_id} was rejected; run the task again for a new proposal")
        if item.status == "applying":
            raise ProposalError(f"proposal {proposal_id} is being applied; wait for the editor to finish")
        if item.status == "empty":
            raise ProposalError(f"proposal {proposal_id} has no changes to {verb}; its run changed no file")
        return item

    def begin_accept(self, proposal_id: str) -> Pending:
        """``pending`` -> ``applying``: the edit is on its way to the editor."""
        item = self._settleable(proposal_id, "accept")
        item.status = "applying"
        return item

    def finish_accept(self, proposal_id: str, applied: bool) -> Pending:
        """``applying`` -> ``accepted`` when the editor applied the edit, else back to ``pending``."""
        item = self.get(proposal_id)
        if item.status != "applying":
            raise ProposalError(f"proposal {proposal_id} is {item.status}, not being applied")
        item.status = "accepted" if applied else "pending"
        return item

    def finish_partial(self, proposal_id: str, rest: Sequence[FileChange]) -> Pending:
        """``applying`` -> ``pending`` with only `rest` left (the editor applied the chosen hunks); the
        rest is unverified on its own. With nothing left, ``accepted``."""
        item = self.get(proposal_id)
        if item.status != "applying":
            raise ProposalError(f"proposal {proposal_id} is {item.status}, not being applied")
        if not rest:
            item.status = "accepted"
            return item
        item.proposal = dataclasses.replace(
            item.proposal,
            files=tuple(rest),
            diff="".join(change.diff for change in rest),
            verified=False,
            verification_summary=(
                "part of this proposal was accepted; what is left was not verified on its own"
            ),
        )
        item.status = "pending"
        return item

    def reject(self, proposal_id: str) -> Pending:
        """``pending`` -> ``rejected``: nothing is written."""
        item = self._settleable(proposal_id, "reject")
        item.status = "rejected"
        return item


def prepare_changes(changes: Sequence[FileChange], current: Callable[[str], str | None]) -> list[FileChange]:
    """The changes to apply now: each file's edit from its current text (`current(rel)`, None: absent).

    A file whose text still equals the proposal's base keeps its change; a file the user edited since the
    run began gets the proposal rebased onto the edit. Raises `AcceptRefused` (naming every file that
    cannot be settled, and its lines) when any change does not apply; then nothing must be applied.
    """
    out: list[FileChange] = []
    problems: list[str] = []
    for change in changes:
        if change.kind == "created":
            now = current(change.path)
            if now is None:
                out.append(change)
            elif now != change.new_text:
                problems.append(f"{change.path} was created since the run began; the proposal creates it too")
            continue
        source = change.old_path if change.kind == "renamed" and change.old_path else change.path
        now = current(source)
        if now is None:
            if change.kind != "deleted":
                problems.append(f"{source} no longer exists; the proposal changes it")
            continue
        if change.kind == "renamed" and change.path != source and current(change.path) is not None:
            problems.append(f"{change.path} exists now; the proposal renames {source} to it")
            continue
        if now == change.base_text:
            out.append(change)
            continue
        if change.kind == "deleted":
            problems.append(f"you changed {source} since the run began, and the proposal deletes it")
            continue
        merged = rebase(change.base_text, now, change.new_text)
        if not merged.ok or merged.text is None:
            problems.append(f"{source}: {merged.message}")
            continue
        out.append(dataclasses.replace(change, base_text=now, new_text=merged.text))
    if problems:
        raise AcceptRefused("; ".join(problems))
    return out


def proposal_hunks(current: str, change: FileChange) -> list[int]:
    """Zero-based lines of `current` (the open buffer) where the proposal's hunks of this file start."""
    base, new = change.base_text, change.new_text
    if current != base:
        merged = rebase(base, current, new)
        if merged.ok and merged.text is not None:
            base, new = current, merged.text
    opcodes = line_opcodes(editor_lines(base), editor_lines(new))
    last = max(0, len(editor_lines(current)) - 1)
    starts = [min(i1, last) for tag, i1, _i2, _j1, _j2 in opcodes if tag != "equal"]
    return sorted(set(starts))


@dataclass(frozen=True)
class Hunk:
    """One hunk of a file's change: 1-based first lines and line counts on each side."""

    id: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int


def _hunk_id(path: str, old: Sequence[str], new: Sequence[str], seen: dict[str, int]) -> str:
    digest = hashlib.sha256("\0".join([path, "".join(old), "\0", "".join(new)]).encode("utf-8")).hexdigest()[
        :8
    ]
    count = seen[digest] = seen.get(digest, 0) + 1
    return f"{path}#{digest}" if count == 1 else f"{path}#{digest}-{count}"


def _opcodes(change: FileChange) -> tuple[list[str], list[str], list[Opcode]]:
    old, new = editor_lines(change.base_text), editor_lines(change.new_text)
    return old, new, line_opcodes(old, new)


def file_hunks(change: FileChange) -> list[Hunk]:
    """The hunks of one file's change, in order (see the module docstring for the ids)."""
    old, new, opcodes = _opcodes(change)
    seen: dict[str, int] = {}
    if change.kind != "modified":
        return [Hunk(_hunk_id(change.path, old, new, seen), 1, len(old), 1, len(new))]
    return [
        Hunk(_hunk_id(change.path, old[i1:i2], new[j1:j2], seen), i1 + 1, i2 - i1, j1 + 1, j2 - j1)
        for tag, i1, i2, j1, j2 in opcodes
        if tag != "equal"
    ]


def editor_diff(change: FileChange) -> str | None:
    """The file's unified diff in the lines the editor shows, when they are not git's (a lone ``\\r`` in
    either text), else None: the same hunks as `file_hunks`, so each is its own ``-``/``+`` lines, and each
    line's end written as ``\\n``. For display only (git cannot apply it to the file)."""
    if not has_lone_cr(change.base_text, change.new_text):
        return None
    head = change.diff.split("\n@@ ", 1)[0].rstrip("\n") + "\n"
    out = [head]
    for line in unified_hunks(editor_lines(change.base_text), editor_lines(change.new_text)):
        if line.startswith("@@"):
            out.append(line)
        elif line.endswith(("\r", "\n")):
            out.append(line.rstrip("\r\n") + "\n")
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def split_hunks(
    changes: Sequence[FileChange], hunk_ids: Sequence[str]
) -> tuple[list[FileChange], list[FileChange]]:
    """(the changes with only the chosen hunks, the rest still to review). `ProposalError` names an id
    that is not a hunk of these changes."""
    wanted = set(hunk_ids)
    known: set[str] = set()
    chosen: list[FileChange] = []
    rest: list[FileChange] = []
    for change in changes:
        hunks = file_hunks(change)
        ids = [hunk.id for hunk in hunks]
        known.update(ids)
        picked = [hunk_id in wanted for hunk_id in ids]
        if all(picked):
            chosen.append(change)
            continue
        if not any(picked) or change.kind != "modified":
            rest.append(change)
            continue
        old, new, opcodes = _opcodes(change)
        lines: list[str] = []
        index = 0
        for tag, i1, i2, j1, j2 in opcodes:
            if tag == "equal":
                lines += old[i1:i2]
                continue
            lines += new[j1:j2] if picked[index] else old[i1:i2]
            index += 1
        middle = "".join(lines)
        chosen.append(
            dataclasses.replace(
                change, new_text=middle, diff=unified_diff(change.path, change.path, change.base_text, middle)
            )
        )
        rest.append(
            dataclasses.replace(
                change,
                base_text=middle,
                base_version=None,
                diff=unified_diff(change.path, change.path, middle, change.new_text),
            )
        )
    unknown = sorted(wanted - known)
    if unknown:
        raise ProposalError(
            f"{', '.join(unknown)} {'is not a hunk' if len(unknown) == 1 else 'are not hunks'} of this "
            "proposal (it may have changed since; agentls/proposal lists its hunks); nothing was accepted"
        )
    return chosen, rest

"""Three-way merge of a proposal onto a document the user edited while the agent ran.

A run starts from a *base* text (the buffer or file when the run began). By the time the user accepts, the
document may hold *current* text (the user kept typing), while the agent produced *proposed* text from the
base. `rebase` applies both sets of changes together, diff3-style: each side's changes are the hunks of a
line diff against the base (`agent.hunks.line_opcodes`); hunks that touch different lines combine,
identical hunks count once, and hunks that change the same lines (or insert at the same place, where the
order would be a guess) are a conflict.

On a conflict nothing is merged: `RebaseResult.ok` is False, `text` is None, and `conflicts` lists the
lines of the *current* text that both sides changed, so the caller can refuse with a clear message. The
user's text is never lost or half-merged.

Lines keep their own line breaks (``\\r\\n``, ``\\r``, ``\\n``), so a merge reproduces the exact text of
unchanged lines. Pure; no LSP here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.hunks import line_opcodes

__all__ = ["RebaseResult", "rebase"]

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclass(frozen=True, slots=True)
class RebaseResult:
    """The outcome of `rebase`. Conflict lines are 1-based and inclusive, in the current text."""

    ok: bool
    text: str | None
    conflicts: tuple[tuple[int, int], ...] = ()

    @property
    def message(self) -> str:
        """A sentence for the user: what happened and what to do."""
        if self.ok:
            return "the proposal applies on top of your edits"
        where = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.conflicts)
        return (
            f"you changed line(s) {where} since the run began, and the proposal changes them too; "
            f"your text was left as it is: undo your edits there or run the task again"
        )


@dataclass(frozen=True, slots=True)
class _Hunk:
    """Replace base lines [start, end) with `lines`; `side` is 0 for the user, 1 for the agent."""

    start: int
    end: int
    lines: tuple[str, ...]
    side: int


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _hunks(base: list[str], other: list[str], side: int) -> list[_Hunk]:
    return [
        _Hunk(i1, i2, tuple(other[j1:j2]), side)
        for tag, i1, i2, j1, j2 in line_opcodes(base, other)
        if tag != "equal"
    ]


def _clash(a: _Hunk, b: _Hunk) -> bool:
    """Whether two hunks of different sides cannot both apply without guessing."""
    if a.start < b.end and b.start < a.end:  # they change a common line
        return True
    # An insertion (empty range) at the edge of, or at the same place as, another change: the order of
    # the two texts would be a guess.
    if a.start == a.end and b.start <= a.start <= b.end:
        return True
    return b.start == b.end and a.start <= b.start <= a.end


def _to_current(position: int, user: list[_Hunk]) -> int:
    """A base line position as a line position in the user's text (outside the user's hunks)."""
    shift = 0
    for hunk in user:
        if hunk.end <= position and not (hunk.start == hunk.end == position):
            shift += len(hunk.lines) - (hunk.end - hunk.start)
    return position + shift


def rebase(base: str, current: str, proposed: str) -> RebaseResult:
    """Apply the agent's change (base -> proposed) on top of the user's (base -> current)."""
    if current in (base, proposed):
        return RebaseResult(True, proposed)
    if proposed == base:
        return RebaseResult(True, current)
    base_lines = _lines(base)
    user = _hunks(base_lines, _lines(current), 0)
    agent = _hunks(base_lines, _lines(proposed), 1)

    # Group hunks that clash, transitively, into regions; a region with hunks of both sides conflicts
    # unless both sides made the very same change.
    ordered = sorted(user + agent, key=lambda h: (h.start, h.end, h.side))
    regions: list[list[_Hunk]] = []
    for hunk in ordered:
        if regions and any(_clash(hunk, other) for other in regions[-1] if other.side != hunk.side):
            regions[-1].append(hunk)
        else:
            regions.append([hunk])

    merged: list[_Hunk] = []
    conflicts: list[tuple[int, int]] = []
    for region in regions:
        sides = {h.side for h in region}
        if len(sides) == 1:
            merged.extend(region)
            continue
        mine = [h for h in region if h.side == 0]
        theirs = [h for h in region if h.side == 1]
        if [(h.start, h.end, h.lines) for h in mine] == [(h.start, h.end, h.lines) for h in theirs]:
            merged.extend(mine)
            continue
        start = min(h.start for h in region)
        end = max(h.end for h in region)
        cur_start = _to_current(start, user)
        cur_end = cur_start + (end - start) + sum(len(h.lines) - (h.end - h.start) for h in mine)
        first = cur_start + 1
        conflicts.append((first, max(first, cur_end)))
    if conflicts:
        return RebaseResult(False, None, tuple(conflicts))

    out: list[str] = []
    position = 0
    for hunk in sorted(merged, key=lambda h: (h.start, h.end)):
        out.extend(base_lines[position : hunk.start])
        out.extend(hunk.lines)
        position = max(position, hunk.end)
    out.extend(base_lines[position:])
    return RebaseResult(True, "".join(out))

"""The one line diff of agentls: which lines of a file a change replaces, as difflib-style opcodes.

Everything that splits a change into blocks of lines reads them here, so a hunk is the same block
everywhere: the proposal's git-style unified diff (`agent.overlay.unified_diff`, which the VS Code
extension parses and the Neovim preview shows), the server's hunks for per-hunk review, accept and code
lenses (`server.features.runs.proposals`), the LSP edits (`server.edits`), the three-way rebase on accept
(`agent.merge`) and the changed lines verification looks at (`agent.verify`). A `-` or `+` line of the
diff is then always inside exactly one of the server's hunks, and each hunk inside one ``@@`` section
(for a file with lone ``\\r`` line ends, see below).

`split_lines` counts lines as git, `patch` and the editors' diff parsers do: a line ends after each
``\\n`` (so ``\\r\\n`` stays whole, and a form feed or U+2028 inside a line does not end it, as it would
with `str.splitlines`, whose lines make a diff that no tool applies). The unified diff is made of those.
`editor_lines` counts lines as editors and LSP do: a lone ``\\r`` (classic Mac OS) ends a line too. The
server's hunks, their code lenses and per-hunk accept count lines that way, so a hunk's line numbers are
the ones the editor shows. Both agree on every file without a lone ``\\r``; in one with them the diff
(like git's) shows each run of ``\\r`` lines as one line, and the server's hunks are the finer blocks
inside its ``@@`` sections.

`editor_hunk_count` counts the hunks of a file's unified diff (as a run's transcript keeps it) the way the
server's per-hunk review makes them from the two texts: in editor lines, so ``agentls runs`` says "2 of 6
hunks" of the hunks the user chose from, whether the file's lines end with ``\\n``, ``\\r\\n`` or a lone
``\\r``.

`line_opcodes` is difflib's `SequenceMatcher` *without* its autojunk heuristic. With it, in a sequence of
200 lines or more no match is anchored on a line that occurs in more than 1% of them (blank lines, ``}``,
``return``), so, for example, a one-line change near the end of a long file can show as a whole function
replaced. The lines both sides share at the start and at the end are set aside first: they belong to a
longest common subsequence anyway, and most changes are local, so the matcher sees only the middle.
The middle is then cut at anchors, as git's patience diff does: the lines found exactly once on each
side, in the longest run that keeps their order on both; difflib matches only the lines between two
anchors (a few edits of a 5,000-line file: milliseconds, against 0.3 s for difflib over the whole
middle). Without autojunk the matcher's work grows with the pairs of equal lines it compares (a file of
thousands of lines changed in many places: tens of seconds); past `WORK_BUDGET`, counted over all the
pieces, it stops, and the middle is matched again with autojunk on, difflib's default, which is fast.
The choice depends only on the two texts, so every caller gets the same hunks for the same change.
Last, a block that only inserts or only deletes lines slides within the equal lines around it to where
it reads as one piece (its first line least indented, a blank line before it): a function inserted after
another shows as itself, not as ``+    return nil``, ``+}``, ``+``, ``+func helper...``. Pure.
"""

from __future__ import annotations

import bisect
import difflib
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import accumulate

__all__ = [
    "WORK_BUDGET",
    "Opcode",
    "editor_hunk_count",
    "editor_lines",
    "has_lone_cr",
    "line_opcodes",
    "split_lines",
    "unified_hunks",
]

log = logging.getLogger(__name__)

Opcode = tuple[str, int, int, int, int]
"""``(tag, i1, i2, j1, j2)`` as `difflib.SequenceMatcher.get_opcodes` gives it: ``old[i1:i2]`` becomes
``new[j1:j2]``; the tag is ``equal``, ``replace``, ``delete`` or ``insert``."""

WORK_BUDGET = 5_000_000
"""How many line comparisons the matcher without autojunk may make (about half a second of Python) before
the lines are matched with autojunk instead. A change of a few places in a 5,000-line file stays under it."""


def split_lines(text: str) -> list[str]:
    """The lines of `text` with their ends, each ending after a ``\\n`` (a last line without one is kept).

    Joined, they give `text` back."""
    parts = text.split("\n")
    last = parts.pop()
    lines = [part + "\n" for part in parts]
    if last:
        lines.append(last)
    return lines


_EDITOR_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def editor_lines(text: str) -> list[str]:
    """The lines of `text` with their ends, as editors and LSP count them: each ending after ``\\r\\n``,
    ``\\n`` or a lone ``\\r`` (a last line without one is kept). Joined, they give `text` back."""
    return _EDITOR_LINE.findall(text) if "\r" in text else split_lines(text)


class _OverBudget(Exception):
    """The matcher without autojunk used up its budget."""


class _Budget:
    """The line comparisons the matcher may still make, shared by the segments of one diff."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


class _BudgetedMatcher(difflib.SequenceMatcher[str]):
    """A `SequenceMatcher` without autojunk that gives up with `_OverBudget` once its work passes `budget`.

    `get_matching_blocks` calls `find_longest_match` once per block it splits off; a call over
    ``a[alo:ahi]`` looks at most at every place in `b` of each of those lines (its inner loop), which the
    prefix sums of those counts give in one subtraction."""

    def __init__(self, a: Sequence[str], b: Sequence[str], budget: _Budget) -> None:
        super().__init__(None, a, b, autojunk=False)
        counts = Counter(b)
        self._size = len(a)
        self._work = list(accumulate((counts[line] for line in a), initial=0))
        self._budget = budget

    def find_longest_match(
        self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None
    ) -> difflib.Match:
        top = self._size if ahi is None else ahi
        self._budget.left -= self._work[top] - self._work[alo]
        if self._budget.left < 0:
            raise _OverBudget
        return super().find_longest_match(alo, top, blo, bhi)


Block = tuple[int, int, int]
"""``(i, j, n)``: ``old[i:i + n] == new[j:j + n]``, as `difflib.SequenceMatcher.get_matching_blocks`."""


def _anchors(old: Sequence[str], new: Sequence[str], alo: int, ahi: int, blo: int, bhi: int) -> list[Block]:
    """The lines found exactly once in ``old[alo:ahi]`` and once in ``new[blo:bhi]`` that keep their order
    on both sides (the longest such run, by patience sorting), as one-line blocks."""
    in_old = Counter(old[alo:ahi])
    in_new = Counter(new[blo:bhi])
    where: dict[str, int] = {}
    for j in range(blo, bhi):
        line = new[j]
        if in_new[line] == 1 and in_old[line] == 1:
            where[line] = j
    pairs = [(i, where[old[i]]) for i in range(alo, ahi) if old[i] in where]
    if not pairs:
        return []
    # Longest increasing run of the new positions, in the old order: piles of patience sorting.
    tops: list[int] = []  # new position on top of each pile
    top_pair: list[int] = []  # index in `pairs` on top of each pile
    previous = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        pile = bisect.bisect_left(tops, j)
        if pile:
            previous[k] = top_pair[pile - 1]
        if pile == len(tops):
            tops.append(j)
            top_pair.append(k)
        else:
            tops[pile], top_pair[pile] = j, k
    chain: list[Block] = []
    k = top_pair[-1]
    while k >= 0:
        chain.append((pairs[k][0], pairs[k][1], 1))
        k = previous[k]
    chain.reverse()
    return chain


def _matching_blocks(old: Sequence[str], new: Sequence[str], budget: _Budget) -> list[Block]:
    """The lines `old` and `new` share, as blocks in order: anchored on lines found once on each side (git's
    patience diff), and between those anchors matched by difflib without autojunk, within `budget`."""
    blocks: list[Block] = []
    todo = [(0, len(old), 0, len(new))]
    while todo:
        alo, ahi, blo, bhi = todo.pop()
        while alo < ahi and blo < bhi and old[alo] == new[blo]:
            blocks.append((alo, blo, 1))
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and old[ahi - 1] == new[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            blocks.append((ahi, bhi, 1))
        if alo == ahi or blo == bhi:
            continue
        anchors = _anchors(old, new, alo, ahi, blo, bhi)
        if not anchors:
            matcher = _BudgetedMatcher(old[alo:ahi], new[blo:bhi], budget)
            blocks += [(alo + i, blo + j, n) for i, j, n in matcher.get_matching_blocks() if n]
            continue
        for i, j, _ in anchors:
            todo.append((alo, i, blo, j))
            blocks.append((i, j, 1))
            alo, blo = i + 1, j + 1
        todo.append((alo, ahi, blo, bhi))
    return blocks


def _opcodes(blocks: list[Block], old_size: int, new_size: int) -> list[Opcode]:
    """Opcodes from matching blocks, as `difflib.SequenceMatcher.get_opcodes` makes them (adjacent blocks
    joined first)."""
    opcodes: list[Opcode] = []
    i = j = 0
    for bi, bj, size in [*_joined(blocks), (old_size, new_size, 0)]:
        tag = "replace" if i < bi and j < bj else "delete" if i < bi else "insert" if j < bj else ""
        if tag:
            opcodes.append((tag, i, bi, j, bj))
        if size:
            opcodes.append(("equal", bi, bi + size, bj, bj + size))
        i, j = bi + size, bj + size
    return opcodes


def _joined(blocks: list[Block]) -> list[Block]:
    out: list[Block] = []
    for i, j, n in sorted(blocks):
        if out and out[-1][0] + out[-1][2] == i and out[-1][1] + out[-1][2] == j:
            last = out[-1]
            out[-1] = (last[0], last[1], last[2] + n)
        else:
            out.append((i, j, n))
    return out


def _middle_blocks(old: Sequence[str], new: Sequence[str], budget: int) -> list[Block]:
    try:
        return _matching_blocks(old, new, _Budget(budget))
    except _OverBudget:
        log.debug(
            "line diff of %d and %d lines is over the work budget; matching with difflib's autojunk",
            len(old),
            len(new),
        )
        return [(i, j, n) for i, j, n in difflib.SequenceMatcher(None, old, new).get_matching_blocks() if n]


def line_opcodes(old: Sequence[str], new: Sequence[str], *, budget: int = WORK_BUDGET) -> list[Opcode]:
    """The opcodes turning the lines `old` into the lines `new` (see the module docstring), in order,
    covering both; two equal sequences give one ``equal`` opcode (none when both are empty)."""
    if not old and not new:
        return []
    return _slid(_opcodes(_joined(_head_and_tail(old, new, budget)), len(old), len(new)), old, new)


def _slid(opcodes: list[Opcode], old: Sequence[str], new: Sequence[str]) -> list[Opcode]:
    """`opcodes` with each block that only inserts or only deletes lines moved, within the equal lines
    around it, to where it reads as one piece (`_placement`). Such a block can often sit at several
    places: a function inserted after another ends with the lines that end the one before it (``}`` and a
    blank line), so matching can show it as ``+    return nil``, ``+}``, ``+``, ``+func helper...``."""
    tags = [op[0] for op in opcodes]
    spans = [[i1, i2, j1, j2] for _, i1, i2, j1, j2 in opcodes]  # moved in place
    # An empty equal block at each end, for a change there to move into (dropped again at the end).
    if tags and tags[0] != "equal":
        tags.insert(0, "equal")
        spans.insert(0, [0, 0, 0, 0])
    if tags and tags[-1] != "equal":
        tags.append("equal")
        spans.append([len(old), len(old), len(new), len(new)])
    last = len(tags) - 1
    for k, tag in enumerate(tags):
        before = spans[k - 1] if k > 0 and tags[k - 1] == "equal" else None
        after = spans[k + 1] if k < last and tags[k + 1] == "equal" else None
        if tag not in ("insert", "delete") or before is None or after is None:
            continue
        span = spans[k]
        lines, lo, hi = (new, span[2], span[3]) if tag == "insert" else (old, span[0], span[1])
        # At least one equal line stays between two changes (difflib never puts two side by side).
        room_up = before[1] - before[0] - (1 if k > 1 else 0)
        room_down = after[1] - after[0] - (1 if k + 1 < last else 0)
        up = 0
        while up < room_up and lines[lo - 1 - up] == lines[hi - 1 - up]:
            up += 1
        down = 0
        while down < room_down and lines[lo + down] == lines[hi + down]:
            down += 1
        if not up and not down:
            continue
        shift = min(range(-up, down + 1), key=lambda s: (_placement(lines, lo + s, hi + s), -s))
        span[:] = [n + shift for n in span]
        before[1] += shift
        before[3] += shift
        after[0] += shift
        after[2] += shift
    kept = zip(tags, spans, strict=True)
    return [(tag, i1, i2, j1, j2) for tag, (i1, i2, j1, j2) in kept if i1 < i2 or j1 < j2]


def _placement(lines: Sequence[str], lo: int, hi: int) -> tuple[int, int, int]:
    """How well ``lines[lo:hi]`` reads as one inserted or deleted piece, smaller being better: its first
    line least indented (a blank one last), then a blank line (or the file's start) just before it, then
    one just after it."""
    first = lines[lo]
    indent = len(first) - len(first.lstrip(" \t")) if first.strip() else 1 << 20
    blank_before = lo == 0 or not lines[lo - 1].strip()
    blank_after = hi == len(lines) or not lines[hi].strip()
    return indent, int(not blank_before), int(not blank_after)


def _head_and_tail(old: Sequence[str], new: Sequence[str], budget: int) -> list[Block]:
    """The matching blocks of `line_opcodes`: the lines shared at both ends, then the middle's."""
    shorter = min(len(old), len(new))
    head = 0
    while head < shorter and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < shorter - head and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]:
        tail += 1
    old_end, new_end = len(old) - tail, len(new) - tail
    blocks: list[Block] = [(0, 0, head), (old_end, new_end, tail)]
    if head < old_end and head < new_end:
        middle = _middle_blocks(old[head:old_end], new[head:new_end], budget)
        blocks += [(i + head, j + head, n) for i, j, n in middle]
    return [block for block in blocks if block[2]]


def _groups(opcodes: list[Opcode], context: int) -> Iterator[list[Opcode]]:
    """The opcodes in hunks with up to `context` equal lines around each change, as difflib groups them
    (`SequenceMatcher.get_grouped_opcodes`)."""
    codes = list(opcodes) or [("equal", 0, 1, 0, 1)]
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _range(start: int, stop: int) -> str:
    """A hunk header's range, as `diff -u` writes it: ``first,count``, ``first`` for one line, and for
    none the line before."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"


def unified_hunks(old: Sequence[str], new: Sequence[str], *, context: int = 3) -> list[str]:
    """The hunks of a unified diff of the lines `old` and `new` (with their ends): for each one its
    ``@@ -a,b +c,d @@`` line, then its lines marked `` ``, ``-`` or ``+``. The lines are what
    `difflib.unified_diff` writes after its two file-name lines, for the blocks of `line_opcodes`."""
    out: list[str] = []
    for group in _groups(line_opcodes(old, new), context):
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in old[i1:i2]]
                continue
            if tag in ("replace", "delete"):
                out += ["-" + line for line in old[i1:i2]]
            if tag in ("replace", "insert"):
                out += ["+" + line for line in new[j1:j2]]
    return out


_LONE_CR = re.compile(r"\r(?!\n)")


def has_lone_cr(*texts: str) -> bool:
    """Whether any of `texts` ends a line with a lone ``\\r``: where git's lines and the editor's differ."""
    return any(_LONE_CR.search(text) for text in texts)


def editor_hunk_count(diff: str) -> int:
    """How many hunks a file's unified diff (`unified_hunks`' lines after its header) holds, counted as the
    server's per-hunk review counts them (`server.features.runs.proposals.file_hunks`: the changed blocks
    of `line_opcodes` over `editor_lines`). A ``@@`` section without a lone ``\\r`` has one per run of
    ``-`` and ``+`` lines (git's lines are the editor's there); a section with one (git shows each run of
    lone-``\\r`` lines as one line) has its two sides split again as editors split them, and its changed
    blocks counted."""
    count = 0
    for old, new, runs in _sections(diff):
        if has_lone_cr(old, new):
            opcodes = line_opcodes(editor_lines(old), editor_lines(new))
            count += sum(tag != "equal" for tag, *_ in opcodes)
        else:
            count += runs
    return count


def _sections(diff: str) -> Iterator[tuple[str, str, int]]:
    """Each ``@@`` section of one file's unified diff: its old lines, its new lines (as text, each line's
    end as in the file), and its runs of ``-`` and ``+`` lines."""
    old: list[str] = []
    new: list[str] = []
    runs, body, inside, last = 0, False, False, ""
    for line in diff.split("\n"):
        if line.startswith(("@@", "diff --git ")):
            if body:
                yield "".join(old), "".join(new), runs
            old, new, runs, inside, last = [], [], 0, False, ""
            body = line.startswith("@@")
            continue
        if not body:
            continue
        tag, text = line[:1], line[1:] + "\n"
        if tag == "\\":  # "\\ No newline at end of file": the line before it has no end
            sides = {" ": (old, new), "-": (old,), "+": (new,)}.get(last, ())
            for side in sides:
                side[-1] = side[-1][:-1]
            continue
        changed = tag in ("-", "+")
        runs += changed and not inside
        inside, last = changed, tag
        if tag in (" ", "-"):
            old.append(text)
        if tag in (" ", "+"):
            new.append(text)
    if body:
        yield "".join(old), "".join(new), runs

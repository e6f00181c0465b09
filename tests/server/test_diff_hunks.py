"""The proposal's unified diff and the server's hunks are the same blocks of lines, in long files too.

Editors show a file's diff (`agent.overlay.unified_diff`) and accept by the server's hunk ids
(`server.features.runs.proposals.file_hunks`): the Neovim preview gives each `-`/`+` line of the diff to
the hunk whose lines hold it (`editors/neovim/lua/agentls/review.lua`), and VS Code moves each hunk with
the ``@@`` section it is in (`editors/vscode/src/pure/review.ts`). So every changed line of the diff must
be in exactly one hunk, and each hunk in one section. In a file of 200 lines or more the diff used to be
made with difflib's autojunk and the hunks without, and they disagreed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from agent.hunks import split_lines
from agent.overlay import FileChange, unified_diff
from server.edits import minimal_text_changes
from server.features.runs.proposals import Hunk, file_hunks, split_hunks


def handler(i: int) -> str:
    return (
        f"func handle{i}(w http.ResponseWriter, r *http.Request) error {{\n"
        f"\tv, err := load{i}(r)\n\tif err != nil {{\n\t\treturn err\n\t}}\n"
        "\tfmt.Fprintln(w, v)\n\treturn nil\n}\n\n"
    )


GO_BASE = "".join(handler(i) for i in range(30))
"""270 lines of Go; "}", "" and "\\treturn nil" are in every handler, more than 1% of the lines."""


def go_edited() -> str:
    """A nil check added to handler 12, a helper before handler 20, two lines of the last one changed."""
    text = GO_BASE.replace(
        "\tfmt.Fprintln(w, v)\n", "\tif v == nil {\n\t\treturn nil\n\t}\n\tfmt.Fprintln(w, v)\n", 13
    ).replace("\tif v == nil {\n\t\treturn nil\n\t}\n", "", 12)
    text = text.replace("func handle20(", "func helper20() error {\n\treturn nil\n}\n\nfunc handle20(")
    last = text.rindex("func handle29(")
    return text[:last] + text[last:].replace("load29(r)", "fetch29(r)").replace(
        "Fprintln(w, v)", "Fprintln(w, v, err)"
    )


@dataclass
class Section:
    """One ``@@`` section of a diff: the 1-based old lines it marks `-`, the new lines it marks `+`."""

    minus: list[int] = field(default_factory=list)
    plus: list[int] = field(default_factory=list)


def sections(diff: str) -> list[Section]:
    found: list[Section] = []
    old = new = 0
    for line in diff.split("\n"):
        header = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)
        if header:
            found.append(Section())
            old, new = int(header[1]), int(header[2])
        elif found and line.startswith("-"):
            found[-1].minus.append(old)
            old += 1
        elif found and line.startswith("+"):
            found[-1].plus.append(new)
            new += 1
        elif found and line.startswith(" "):
            old, new = old + 1, new + 1
    return found


def old_lines(hunk: Hunk) -> set[int]:
    return set(range(hunk.old_start, hunk.old_start + hunk.old_lines))


def new_lines(hunk: Hunk) -> set[int]:
    return set(range(hunk.new_start, hunk.new_start + hunk.new_lines))


def go_change() -> FileChange:
    new = go_edited()
    diff = unified_diff("h.go", "h.go", GO_BASE, new)
    return FileChange("h.go", "modified", None, GO_BASE, new, None, diff)


def test_the_edit_is_a_long_file_where_autojunk_matters() -> None:
    assert len(split_lines(GO_BASE)) == 270 and len(split_lines(go_edited())) == 277


def test_every_changed_line_of_the_diff_is_in_one_hunk_and_each_hunk_in_one_section() -> None:
    change = go_change()
    hunks = file_hunks(change)
    shown = sections(change.diff)
    assert len(hunks) == 4 and len(shown) == 3
    for hunk in hunks:
        holding = [s for s in shown if old_lines(hunk) <= set(s.minus) and new_lines(hunk) <= set(s.plus)]
        assert len(holding) == 1, hunk
    for section in shown:
        for number in section.minus:
            assert len([h for h in hunks if number in old_lines(h)]) == 1, f"- line {number}"
        for number in section.plus:
            assert len([h for h in hunks if number in new_lines(h)]) == 1, f"+ line {number}"
    assert sorted(n for s in shown for n in s.minus) == sorted(n for h in hunks for n in old_lines(h))
    assert sorted(n for s in shown for n in s.plus) == sorted(n for h in hunks for n in new_lines(h))


def test_the_last_handler_shows_its_two_changed_lines_as_two_hunks() -> None:
    change = go_change()
    last = change.diff[change.diff.rindex("@@ -") :]
    assert [line for line in last.splitlines() if line[:1] in ("-", "+")] == [
        "-\tv, err := load29(r)",
        "+\tv, err := fetch29(r)",
        "-\tfmt.Fprintln(w, v)",
        "+\tfmt.Fprintln(w, v, err)",
    ]
    assert [(h.old_start, h.old_lines, h.new_start, h.new_lines) for h in file_hunks(change)[-2:]] == [
        (263, 1, 270, 1),
        (267, 1, 274, 1),
    ]


def test_accepting_the_hunk_of_a_changed_line_of_the_diff_applies_that_block_only() -> None:
    # What the Neovim preview does with `a` on a `-` or `+` line: the hunk holding it, and only it.
    change = go_change()
    hunks = file_hunks(change)
    old, new = split_lines(change.base_text), split_lines(change.new_text)
    for section in sections(change.diff):
        picks = [(n, [h for h in hunks if n in old_lines(h)]) for n in section.minus]
        picks += [(n, [h for h in hunks if n in new_lines(h)]) for n in section.plus]
        for number, holding in picks:
            assert len(holding) == 1, f"line {number} of the diff is in {len(holding)} hunks"
            hunk = holding[0]
            (chosen,), _rest = split_hunks([change], [hunk.id])
            first, end = hunk.old_start - 1, hunk.old_start - 1 + hunk.old_lines
            added = new[hunk.new_start - 1 : hunk.new_start - 1 + hunk.new_lines]
            assert split_lines(chosen.new_text) == old[:first] + added + old[end:]


def test_the_lsp_edits_change_only_the_lines_of_the_hunks() -> None:
    change = go_change()
    edits = minimal_text_changes(GO_BASE, change.new_text)
    starts = [GO_BASE.count("\n", 0, edit.start) + 1 for edit in edits]
    hunk_lines = set().union(*(old_lines(h) | {h.old_start} for h in file_hunks(change)))
    assert starts and set(starts) <= hunk_lines


def test_the_hunks_and_edits_of_a_5000_line_file_changed_everywhere_take_seconds() -> None:
    # Every handler's `err` renamed: difflib without autojunk compares each of the thousands of "}", ""
    # and "\treturn nil" lines with all the others, again for each block; 30 to 60 s per call here before
    # `agent.hunks` bounded that work, and the server computes the hunks for each `agentls/proposal`.
    base = "".join(handler(i) for i in range(556))
    new = base.replace("err", "e")
    change = FileChange("h.go", "modified", None, base, new, None, "")
    for compute in (lambda: file_hunks(change), lambda: minimal_text_changes(base, new)):
        started = time.perf_counter()
        assert compute()
        assert time.perf_counter() - started < 10

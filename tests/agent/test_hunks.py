"""`agent.hunks`, the one line diff: lines as git counts them, difflib's matching without autojunk (and
with it past the work budget), and the unified diff's hunks in the format `difflib.unified_diff` writes."""

from __future__ import annotations

import difflib
import itertools
import random
import time

import pytest

from agent.hunks import (
    WORK_BUDGET,
    _Budget,
    _matching_blocks,
    editor_hunk_count,
    editor_lines,
    line_opcodes,
    split_lines,
    unified_hunks,
)


def handlers(count: int) -> list[str]:
    """Go handlers of nine lines each; five of the nine are the same in every one ("}", "", ...)."""
    lines: list[str] = []
    for i in range(count):
        lines += [
            f"func handle{i}(w http.ResponseWriter, r *http.Request) error {{\n",
            f"\tv, err := load{i}(r)\n",
            "\tif err != nil {\n",
            "\t\treturn err\n",
            "\t}\n",
            "\tfmt.Fprintln(w, v)\n",
            "\treturn nil\n",
            "}\n",
            "\n",
        ]
    return lines


def rebuilt(old: list[str], new: list[str]) -> list[str]:
    """`new` made from `old` by the opcodes, checking that each `equal` block really is equal."""
    out: list[str] = []
    for tag, i1, i2, j1, j2 in line_opcodes(old, new):
        if tag == "equal":
            assert old[i1:i2] == new[j1:j2]
            out += old[i1:i2]
        else:
            assert tag in ("replace", "delete", "insert") and (i1 < i2 or j1 < j2)
            out += new[j1:j2]
    return out


def test_lines_end_after_each_newline_only() -> None:
    assert split_lines("") == []
    assert split_lines("a") == ["a"]
    assert split_lines("a\n") == ["a\n"]
    assert split_lines("a\r\nb\n\nc") == ["a\r\n", "b\n", "\n", "c"]
    assert split_lines("page\x0cbreak\u2028x\rlone\n") == ["page\x0cbreak\u2028x\rlone\n"]


def test_opcodes_rebuild_the_new_lines_for_random_edits() -> None:
    rng = random.Random(11)
    for _ in range(400):
        alphabet = [f"l{i}\n" for i in range(rng.randint(1, 6))] + ["\n", "}\n"]
        old = [rng.choice(alphabet) for _ in range(rng.randint(0, 40))]
        new = [rng.choice(alphabet) for _ in range(rng.randint(0, 40))]
        assert rebuilt(old, new) == new
    assert line_opcodes([], []) == []
    assert line_opcodes(["a\n"], ["a\n"]) == [("equal", 0, 1, 0, 1)]


def test_a_long_file_is_matched_without_autojunk() -> None:
    # The last handler of 270 lines: its lines but one occur 30 times, more than 1% of the file, so
    # difflib's default cannot anchor on them and replaces all nine lines.
    old = handlers(30)
    new = list(old)
    new[262] = "\tv, err := fetch29(r)\n"
    assert [op for op in difflib.SequenceMatcher(None, old, new).get_opcodes() if op[0] != "equal"] == [
        ("replace", 262, 270, 262, 270)
    ]
    assert [op for op in line_opcodes(old, new) if op[0] != "equal"] == [("replace", 262, 263, 262, 263)]


def test_past_the_work_budget_the_lines_are_matched_with_autojunk() -> None:
    # Lines of four kinds only: no line is found once on a side to anchor on, so difflib matches all of it.
    rng = random.Random(5)
    kinds = ["}\n", "\n", "\treturn nil\n", "\tif err != nil {\n"]
    old = [rng.choice(kinds) for _ in range(600)]
    new = list(old)
    for at in (50, 300, 550):
        new[at] = "\t// changed\n"
    new[0], new[-1] = "// start\n", "// end\n"  # no line shared at the ends
    unbounded = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    assert line_opcodes(old, new) == unbounded
    with_autojunk = difflib.SequenceMatcher(None, old, new).get_opcodes()
    assert with_autojunk != unbounded
    assert line_opcodes(old, new, budget=1000) == with_autojunk


def test_an_inserted_or_deleted_function_is_shown_whole() -> None:
    # The helper ends with the lines that end the handler before it ("\treturn nil", "}", ""): the
    # match could show it as "+\treturn nil", "+}", "+", "+func helper() error {", "+\tsetup()".
    old = handlers(3)
    helper = ["func helper() error {\n", "\tsetup()\n", "\treturn nil\n", "}\n", "\n"]
    new = old[:9] + helper + old[9:]
    new[1] = "\tv, err := fetch0(r)\n"  # changes at both ends: the middle is matched, not set aside
    new[-3] = '\treturn fmt.Errorf("done")\n'
    changes = [op for op in line_opcodes(old, new) if op[0] != "equal"]
    assert changes == [("replace", 1, 2, 1, 2), ("insert", 9, 9, 9, 14), ("replace", 24, 25, 29, 30)]
    added = [line[1:] for line in unified_hunks(old, new) if line.startswith("+")]
    assert added == [new[1], *helper, new[-3]]
    assert [op for op in line_opcodes(new, old) if op[0] != "equal"] == [
        ("replace", 1, 2, 1, 2),
        ("delete", 9, 14, 9, 9),
        ("replace", 29, 30, 24, 25),
    ]


def test_moved_blocks_keep_the_opcodes_whole_and_apart() -> None:
    rng = random.Random(17)
    for _ in range(600):
        alphabet = ["}\n", "\n", "\treturn nil\n", "x\n", "y\n"]
        old = [rng.choice(alphabet) for _ in range(rng.randint(0, 30))]
        new = list(old)
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(new))
            if rng.random() < 0.5:
                new[at:at] = [rng.choice(alphabet) for _ in range(rng.randint(1, 4))]
            else:
                del new[at : at + rng.randint(1, 4)]
        opcodes = line_opcodes(old, new)
        assert rebuilt(old, new) == new
        assert all(a[0] == "equal" or b[0] == "equal" for a, b in itertools.pairwise(opcodes))
        assert all(i1 < i2 or j1 < j2 for _, i1, i2, j1, j2 in opcodes)


def test_few_edits_of_a_5000_line_file_are_matched_on_anchors_without_difflibs_comparisons() -> None:
    # Without anchors difflib compared 2.2 million pairs of lines here (0.3 s, BENCHMARKS.md, "Line diffs"):
    # the editors ask for the hunks each time the user pauses typing in a file with an open proposal.
    old = handlers(556)[:5000]
    new = list(old)
    for at in (100, 2494, 4897):
        new[at] = new[at].replace("load", "fetch")
    budget = _Budget(WORK_BUDGET)
    blocks = _matching_blocks(old, new, budget)
    assert WORK_BUDGET - budget.left < 1000
    assert sum(n for _, _, n in blocks) == 4997


def test_the_work_on_a_5000_line_file_changed_everywhere_is_bounded() -> None:
    # Without autojunk and without a budget this takes 30 to 60 s here (BENCHMARKS.md, "Line diffs").
    old = handlers(556)[:5000]
    new = [line.replace("err", "e") for line in old]
    started = time.perf_counter()
    assert rebuilt(old, new) == new
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("context", [0, 1, 3, 5])
def test_hunks_are_what_difflib_unified_diff_writes_for_the_same_blocks(context: int) -> None:
    # Unique lines leave no choice of blocks, so both must write the same bytes; the editors' diff
    # parsers were written for difflib's output.
    rng = random.Random(context)
    for case in range(500):
        old = [f"line {i}\n" for i in range(rng.randint(0, 60))]
        new = list(old)
        for _ in range(rng.randint(0, 5)):
            at = rng.randint(0, len(new))
            what = rng.choice("idr")
            if what == "i":
                new[at:at] = [f"new {case} {at} {k}\n" for k in range(rng.randint(1, 3))]
            elif what == "d":
                del new[at : at + rng.randint(1, 4)]
            else:
                new[at : at + 1] = [f"changed {case} {at}\n"]
        if new and rng.random() < 0.3:
            new[-1] = new[-1].rstrip("\n")
        assert unified_hunks(old, new, context=context) == list(difflib.unified_diff(old, new, n=context))[2:]


def test_the_default_budget_keeps_a_few_edits_of_a_5000_line_file_exact() -> None:
    old = handlers(556)[:5000]
    new = list(old)
    for at in (100, 2494, 4897):
        new[at] = new[at].replace("load", "fetch")
    started = time.perf_counter()
    assert [op for op in line_opcodes(old, new) if op[0] != "equal"] == [
        ("replace", at, at + 1, at, at + 1) for at in (100, 2494, 4897)
    ]
    assert time.perf_counter() - started < 10
    assert WORK_BUDGET >= 1_000_000


@pytest.mark.parametrize("ends", [["\n"], ["\r\n"], ["\r"], ["\n", "\r\n", "\r"]])
def test_a_diffs_hunks_are_counted_as_the_per_hunk_review_makes_them(ends: list[str]) -> None:
    """`editor_hunk_count` of a file's unified diff is the number of changed blocks of the two texts in
    editor lines (what `server.features.runs.proposals.file_hunks` offers), for random edits of files whose
    lines end with ``\\n``, ``\\r\\n``, a lone ``\\r`` or a mix, with and without an end on the last."""
    from agent.overlay import unified_diff

    rng = random.Random(25)
    words = ["a", "b", "x = 1", "", "}"]
    for _ in range(400):
        old = [rng.choice(words) + rng.choice(ends) for _ in range(rng.randint(1, 60))]
        new = list(old)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(new) + 1)
            if rng.random() < 0.4 and at < len(new):
                new[at] = f"changed {at}" + rng.choice(ends)
            elif rng.random() < 0.5:
                new.insert(at, "added" + rng.choice(ends))
            elif at < len(new):
                del new[at]
        if rng.random() < 0.3:
            new[-1:] = [new[-1].rstrip("\r\n")] if new else []
        before, after = "".join(old), "".join(new)
        blocks = line_opcodes(editor_lines(before), editor_lines(after))
        expected = sum(tag != "equal" for tag, *_ in blocks)
        diff = unified_diff("f.py", "f.py", before, after)
        assert editor_hunk_count(diff) == expected, (before, after, diff)

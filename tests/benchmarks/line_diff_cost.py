"""What the one line diff (`agent.hunks.line_opcodes`) costs on a 5,000-line file, against difflib with
and without its autojunk heuristic.

Run: ``python -m tests.benchmarks.line_diff_cost`` (about three minutes: difflib without autojunk and
without a budget takes up to a minute on the worst cases; ``--quick`` leaves it out).

The file is 5,000 lines of Go handlers, nine lines each, five of which ("}", "", "\\treturn nil", ...) are
in every handler. Each case changes it one way; each computation is timed once, in one process, and the
number of changed blocks it finds is printed beside the time.
"""

from __future__ import annotations

import difflib
import random
import sys
import time
from collections.abc import Callable

from agent.hunks import line_opcodes
from tests.agent.test_hunks import handlers


def cases(old: list[str]) -> dict[str, list[str]]:
    one = list(old)
    one[2494] = one[2494].replace("load", "fetch")
    three = list(old)
    for at in (100, 2494, 4897):
        three[at] = three[at].replace("load", "fetch")
    scattered = list(old)
    for at in range(0, len(old), 50):
        scattered[at] = f"// changed {at}\n"
    shuffled = list(old)
    random.Random(0).shuffle(shuffled)
    return {
        "1 line changed": one,
        "3 lines changed, far apart": three,
        "100 lines changed, 50 apart": scattered,
        "`err` renamed everywhere": [line.replace("err", "e") for line in old],
        "every blank line removed": [line for line in old if line != "\n"],
        "re-indented (every tab to 4 spaces)": [line.replace("\t", "    ") for line in old],
        "lines shuffled": shuffled,
    }


def timed(compute: Callable[[], list[tuple[str, int, int, int, int]]]) -> str:
    started = time.perf_counter()
    opcodes = compute()
    seconds = time.perf_counter() - started
    return f"{seconds:7.2f} s {sum(1 for op in opcodes if op[0] != 'equal'):4d}"


def main(quick: bool) -> None:
    old = handlers(556)[:5000]
    print(f"{'case':38} {'autojunk':>14} {'no autojunk':>14} {'line_opcodes':>14}")
    for name, new in cases(old).items():
        with_junk = timed(lambda new=new: difflib.SequenceMatcher(None, old, new).get_opcodes())
        unbounded = lambda new=new: difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()  # noqa: E731
        without = "skipped" if quick else timed(unbounded)
        ours = timed(lambda new=new: line_opcodes(old, new))
        print(f"{name:38} {with_junk:>14} {without:>14} {ours:>14}", flush=True)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])

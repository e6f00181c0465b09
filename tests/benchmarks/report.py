"""Rewrite BENCHMARKS.md from the latest benchmark results (``tests/benchmarks/results/results.json``).

Usage: ``python -m tests.benchmarks.report [--results FILE] [--out FILE]``.

The benchmarks merge their figures into the results file as they run; this turns it into the page:
a summary table (target, figure, met or not, the command that measured it), the machine and the
conditions of each measurement, and each benchmark's details. The block between ``<!-- notes -->`` and
``<!-- /notes -->`` in the existing page, and every section after it, are written by hand (analysis,
each session's measurements) and kept as they are.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.benchmarks import corpora
from tests.benchmarks.harness import REPO, RESULTS_FILE

ORDER = (
    "index.lexical.django",
    "index.lexical.mixed",
    "index.embedded.django",
    "refresh.django",
    "edit.django",
    "search.hybrid.django",
    "search.after_updates.django",
    "memory.index.django",
    "retrieval.django",
)
NOTES = re.compile(r"<!-- notes -->\n(.*?)<!-- /notes -->", re.S)
SUITE = "python -m pytest tests/benchmarks -m benchmark -s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _conditions_key(entry: dict[str, Any]) -> str:
    c = entry["conditions"]
    packages = ", ".join(f"{k} {v}" for k, v in sorted(c["packages"].items()))
    return (
        f"{c['cpu']}, {c['cores']} cores, {c['memory_gib']} GiB; {c['os']}; Python {c['python']}; "
        f"{packages}; commit {c['commit'] or 'unknown'}"
    )


def render(data: dict[str, Any], notes: str, after: str = "") -> str:
    """The page: generated parts from `data`, then the hand-written `notes` block and what came `after` it."""
    entries: dict[str, dict[str, Any]] = data.get("entries", {})
    keys = [k for k in ORDER if k in entries] + sorted(k for k in entries if k not in ORDER)
    out: list[str] = [
        "# Benchmarks",
        "",
        "Speed, memory and retrieval quality of agentls, measured by the benchmarks in `tests/benchmarks/`",
        'against the targets of the project\'s issues (indexing: "Foundation and the indexing engine").',
        "This page is generated: run the benchmarks, then `python -m tests.benchmarks.report` (the notes",
        "block and the sections after it are written by hand and kept).",
        "",
        "## How to run",
        "",
        "```sh",
        f"{SUITE}                # all of them",
        "python -m tests.benchmarks.report                                # rewrite this page",
        "```",
        "",
        "The benchmarks are deselected by default (`-m 'not benchmark'` in pyproject). Each prints its",
        "figures, saves them to `tests/benchmarks/results/results.json` and asserts its target; ratios",
        "are taken against a baseline measured in the same run, because the machine is shared and noisy.",
        "The corpora are fetched once from package registries into `~/.cache/agentls-bench`",
        "(`AGENTLS_BENCH_CACHE` overrides it).",
        "",
        "## Summary",
        "",
        "| Target | Measured | Met | Command |",
        "| --- | --- | --- | --- |",
    ]
    for key in keys:
        e = entries[key]
        met = "yes" if e["passed"] else "**no**"
        out.append(
            f"| {_cell(e['title'])}: {_cell(e['target'])} | {_cell(e['measured'])} | {met} | `{e['rerun']}` |"
        )
    out += ["", "## Machine and conditions", ""]
    machines = sorted({_conditions_key(e) for e in entries.values()})
    for machine in machines:
        out.append(f"- {machine}")
    out += [
        "",
        "Each benchmark's time and the load average when it ran (other sessions share the machine):",
        "",
    ]
    for key in keys:
        c = entries[key]["conditions"]
        out.append(
            f"- `{key}`: {entries[key]['measured_at']}, load average {c['load_average_1m']} (1 min), "
            f"{c['load_average_5m']} (5 min); command `{entries[key]['command']}`"
        )
    out += ["", "## Corpora", ""]
    out += [
        f"- **django**: Django {corpora.DJANGO_VERSION}'s source distribution from PyPI (the package and "
        "its test suite), `.py` files only.",
        "- **mixed**: TypeScript sources (`*.ts`, declarations left out) of the npm packages "
        + ", ".join(f"`{n}@{v}`" for n, v in corpora.NPM_PACKAGES)
        + "; Go sources of Debian's "
        + ", ".join(f"`{n}`" for n, _ in corpora.DEBIAN_GO_PACKAGES)
        + "; Rust sources of Debian's "
        + ", ".join(f"`{n}`" for n, _ in corpora.DEBIAN_RUST_PACKAGES)
        + " (versions pinned in `tests/benchmarks/corpora.py`).",
        "",
        "## Details",
    ]
    for key in keys:
        e = entries[key]
        out += [
            "",
            f"### {e['title']}",
            "",
            f"- Target: {e['target']}",
            f"- Measured: {e['measured']} ({'met' if e['passed'] else 'NOT met'})",
            f"- Command: `{e['rerun']}`",
        ]
        out += [f"- {line}" for line in e["details"]]
    out += [
        "",
        "## Notes",
        "",
        "<!-- notes -->",
        notes.rstrip("\n") + "\n" if notes.strip() else "",
        "<!-- /notes -->",
    ]
    page = "\n".join(out).replace("\n\n<!-- /notes -->", "\n<!-- /notes -->") + "\n"
    return page + "\n" + after.lstrip("\n") if after.strip() else page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.report", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS_FILE)
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not args.results.exists():
        parser.error(f"{args.results} does not exist: run `{SUITE}` first")
    data = json.loads(args.results.read_text())
    notes = after = ""
    if args.out.exists():
        text = args.out.read_text()
        found = NOTES.search(text)
        if found:
            notes, after = found.group(1), text[found.end() :]
    args.out.write_text(render(data, notes, after))
    print(f"wrote {args.out} ({len(data.get('entries', {}))} benchmarks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

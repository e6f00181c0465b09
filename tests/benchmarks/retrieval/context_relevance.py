"""Score the agent's context gathering (`agent.context.gather_context`) on the retrieval harness's queries.

Each annotated query becomes the free-form task an agent run starts from (``agentls run QUERY``:
`agent.task_builders.run_task`), and its context is gathered as the run's first turn gathers it, with the
workspace index (lexical, as on a fresh install) and the default token budget. The query's targets are
what an expert would open, so per query:

- ``recall``: the share of grade-3 targets (the defining chunks) whose defining line is inside a section
  of the context;
- ``imports``: of the targets' files that the context shows, the share whose import lines are shown too
  (code without its file's imports is read blind: which `parse` is this?);
- ``noise``: the share of sections that hold nothing an expert opens for the query: a stub (a body of
  ``pass``/``...``/``raise NotImplementedError``), an empty file, or a test file when no target is a test;
- ``tokens``: the context's estimated tokens.

Implement and fix runs (`implement_scores`, `fix_scores`, ``--edits``): for a documented top-level Python
function, its body is replaced by ``raise NotImplementedError`` in the text the run reads (the index is
the workspace's as it is), and the context of ``agentls.implement`` there is scored by ``callees`` (the
share of workspace functions its removed body called whose definition is shown), ``callers`` (a section
outside the function calls it, when the workspace has a caller), ``imports`` (its file's imports shown),
``style_test`` (a test file with real tests shown) and ``empty_tests`` (an empty test file such as
``tests/__init__.py`` shown). A fix run gets a diagnostic on the function's last line: ``target`` (that
line shown) and ``imports``.

``python -m tests.benchmarks.retrieval.context_relevance --split tuning`` prints the means per split (the
held-out split only when asked, like the ranking harness).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.context import Context, ContextSection, gather_context
from agent.task import Diagnostic
from agent.task_builders import fix_task, implement_task, run_task
from agent.testfinder import is_test_path
from indexing.service import WorkspaceIndex

_IMPORT = re.compile(
    r"^\s*(?:import\s|from\s+\S+\s+import\s|use\s|require[\s(]|require_once\s|#include\s|package\s)"
    r"|^\s*(?:const|let|var)\s+\S.*=\s*require\(|^\s*import\s*[({\"']"
)
_STUB_BODY = re.compile(r"^\s*(?:pass|\.\.\.|raise NotImplementedError(?:\(.*\))?|\{\s*\}|)\s*$")


def import_lines(text: str) -> list[int]:
    """1-based lines of the file's top-level import statements (within its first 80 lines)."""
    return [n for n, line in enumerate(text.split("\n")[:80], 1) if _IMPORT.match(line)]


def is_stub(section: ContextSection) -> bool:
    """A definition whose body does nothing, or a section with no code at all."""
    lines = [line for line in section.text.split("\n") if line.strip() and not line.strip().startswith("#")]
    if not lines:
        return True
    body = [line for line in lines[1:] if not line.strip().startswith(('"""', "'''"))]
    return len(lines) <= 4 and all(_STUB_BODY.match(line) for line in body)


def _shows(context: Context, path: str, line: int) -> bool:
    return any(s.path == path and s.start_line <= line <= s.end_line for s in context.sections)


def score_context(
    context: Context, query: dict[str, Any], read: Callable[[str], str | None]
) -> dict[str, float]:
    targets = [t for t in query["targets"] if t["grade"] == 3]
    recall = (
        sum(1 for t in targets if _shows(context, t["path"], t["line"])) / len(targets) if targets else 0.0
    )
    shown_files = {t["path"] for t in query["targets"]} & set(context.paths())
    with_imports = 0
    for path in shown_files:
        lines = import_lines(read(path) or "")
        with_imports += not lines or any(_shows(context, path, n) for n in lines)
    tests_wanted = any(is_test_path(t["path"]) for t in query["targets"])
    noisy = sum(
        1 for s in context.sections if s.path and (is_stub(s) or (is_test_path(s.path) and not tests_wanted))
    )
    return {
        "recall": recall,
        "imports": with_imports / len(shown_files) if shown_files else 1.0,
        "noise": noisy / len(context.sections) if context.sections else 0.0,
        "tokens": float(context.tokens),
    }


def reader(root: Path) -> Callable[[str], str | None]:
    """``read_file`` for `gather_context`: a workspace-relative path's text, None when it is no file."""

    def read(path: str) -> str | None:
        file = root / path
        return file.read_text(errors="replace") if file.is_file() else None

    return read


def run_context(index: WorkspaceIndex, query: str, token_budget: int = 12_000) -> Context:
    """The context the first turn of ``agentls run QUERY`` gets in this workspace."""
    return gather_context(
        run_task(query), root=index.root, read_file=reader(index.root), index=index, token_budget=token_budget
    )


def evaluate_contexts(
    queries: Sequence[dict[str, Any]], indexes: dict[str, WorkspaceIndex]
) -> dict[str, dict[str, float]]:
    """Per query id, the metrics of its run context."""
    out = {}
    for q in queries:
        index = indexes[q["repo"]]
        out[q["id"]] = score_context(run_context(index, q["query"]), q, reader(index.root))
    return out


_DEF = re.compile(r"^def (\w+)\(", re.MULTILINE)
_CALL = re.compile(r"(?<![\w.])(\w+)\(")


def python_functions(text: str) -> list[tuple[str, int, int, int]]:
    """Top-level functions with a docstring and a body: (name, def line, first body line after the
    docstring, last line), 1-based."""
    lines = text.split("\n")
    out = []
    for match in _DEF.finditer(text):
        start = text.count("\n", 0, match.start()) + 1
        end = start
        for n in range(start, len(lines)):
            if lines[n].strip() and not lines[n].startswith((" ", "\t", ")")):
                break
            if lines[n].strip():
                end = n + 1
        opening = [n for n in range(start, end) if lines[n].strip().startswith(('"""', "'''"))]
        if not opening:
            continue
        first = lines[opening[0]].strip()
        quote = first[:3]
        doc_end = opening[0]  # 0-based index of the docstring's last line
        if not (len(first) > 3 and first.count(quote) >= 2):
            doc_end += 1
            while doc_end < end and quote not in lines[doc_end]:
                doc_end += 1
        if doc_end + 1 < end:
            out.append((match.group(1), start, doc_end + 2, end))
    return out


def _stubbed(text: str, body_start: int, end: int) -> str:
    lines = text.split("\n")
    indent = lines[body_start - 1][: len(lines[body_start - 1]) - len(lines[body_start - 1].lstrip())]
    return "\n".join([*lines[: body_start - 1], f"{indent}raise NotImplementedError", *lines[end:]])


def _defined(root: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        for name in _DEF.findall(file.read_text(errors="replace")):
            names.setdefault(name, rel)
    return names


def _function(read: Callable[[str], str | None], path: str, name: str) -> tuple[str, int, int, int]:
    found = [f for f in python_functions(read(path) or "") if f[0] == name]
    if not found:
        raise ValueError(f"no top-level function {name} with a docstring and a body in {path}")
    return found[0]


def implement_scores(
    index: WorkspaceIndex, path: str, name: str, token_budget: int = 12_000
) -> dict[str, float]:
    """The first-turn context of implementing `name` in `path` with its body removed, scored."""
    root = index.root
    read = reader(root)
    text = read(path) or ""
    _, start, body_start, end = _function(read, path, name)
    stub = _stubbed(text, body_start, end)
    body = "\n".join(text.split("\n")[body_start - 1 : end])
    defined = _defined(root)
    callees = sorted({c for c in _CALL.findall(body) if c in defined and c != name})

    def read_stub(p: str) -> str | None:
        return stub if p == path else read(p)

    task = implement_task(root, stub, path, start)
    context = gather_context(task, root=root, read_file=read_stub, index=index, token_budget=token_budget)
    shown = sum(
        1
        for c in callees
        if any(re.search(rf"^\s*def {c}\(", s.text, re.MULTILINE) for s in context.sections)
    )
    call = re.compile(rf"(?<![\w]){re.escape(name)}\(")
    calls = [
        (rel, n)
        for rel, file_text in ((f.relative_to(root).as_posix(), f) for f in sorted(root.rglob("*.py")))
        for n, line in enumerate(
            (stub if rel == path else file_text.read_text(errors="replace")).split("\n"), 1
        )
        if call.search(line) and not line.lstrip().startswith("def ") and not (rel == path and n == start)
    ]
    imports = import_lines(stub)
    tests = [s for s in context.sections if s.path and is_test_path(s.path)]
    return {
        "callees": shown / len(callees) if callees else 1.0,
        "callers": float(any(_shows(context, p, n) for p, n in calls)) if calls else 1.0,
        "imports": 1.0 if not imports or any(_shows(context, path, n) for n in imports) else 0.0,
        "style_test": float(any(not is_stub(s) and "def test" in s.text for s in tests)),
        "empty_tests": float(any(is_stub(s) for s in tests)),
        "tokens": float(context.tokens),
    }


def fix_scores(index: WorkspaceIndex, path: str, name: str, token_budget: int = 12_000) -> dict[str, float]:
    """The first-turn context of fixing a diagnostic on the last line of `name` in `path`, scored."""
    root = index.root
    read = reader(root)
    text = read(path) or ""
    end = _function(read, path, name)[3]
    diagnostic = Diagnostic(message='Argument of type "None" cannot be assigned', line=end, end_line=end)
    task = fix_task(path, [diagnostic], text=text, root=root)
    context = gather_context(task, root=root, read_file=read, index=index, token_budget=token_budget)
    imports = import_lines(text)
    return {
        "target": float(_shows(context, path, end)),
        "imports": 1.0 if not imports or any(_shows(context, path, n) for n in imports) else 0.0,
        "tokens": float(context.tokens),
    }


def edit_cases(root: Path, limit: int = 40) -> list[tuple[str, str]]:
    """(path, function) pairs to implement or fix: documented top-level functions of non-test files."""
    out: list[tuple[str, str]] = []
    for file in sorted(root.rglob("*.py")):
        rel = file.relative_to(root).as_posix()
        if not is_test_path(rel):
            out.extend((rel, f[0]) for f in python_functions(file.read_text(errors="replace")))
    return out[:: max(1, len(out) // limit)][:limit]


def means(results: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = next(iter(results.values()), {"recall": 0, "imports": 0, "noise": 0, "tokens": 0}).keys()
    n = max(1, len(results))
    return {k: round(sum(r[k] for r in results.values()) / n, 3) for k in keys}


def main(argv: Sequence[str] | None = None) -> int:
    from tests.benchmarks.retrieval.evaluate import load_queries, open_agentls
    from tests.benchmarks.retrieval.repos import BY_NAME, fetch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning", choices=["tuning", "held_out", "all"])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "agentls-bench")
    parser.add_argument("--repos", help="comma-separated subset of the repositories")
    parser.add_argument("--worst", type=int, default=0, help="print the N queries with the lowest recall")
    parser.add_argument("--edits", action="store_true", help="also score implement and fix runs")
    args = parser.parse_args(argv)
    queries = load_queries(args.split)
    if args.repos:
        queries = [q for q in queries if q["repo"] in args.repos.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        indexes = {
            repo: open_agentls(fetch(BY_NAME[repo], args.cache).root, Path(tmp) / repo)
            for repo in sorted({q["repo"] for q in queries})
        }
        results = evaluate_contexts(queries, indexes)
        for split in ("held_out", "tuning") if args.split == "all" else (args.split,):
            part = {q["id"]: results[q["id"]] for q in queries if q["split"] == split}
            print(f"{split} ({len(part)} queries): {json.dumps(means(part))}")
        for repo, index in indexes.items() if args.edits else ():
            cases = edit_cases(index.root)
            if cases:
                implement = {f"{p}:{n}": implement_scores(index, p, n) for p, n in cases}
                fix = {f"{p}:{n}": fix_scores(index, p, n) for p, n in cases}
                print(f"{repo} implement ({len(cases)} functions): {json.dumps(means(implement))}")
                print(f"{repo} fix ({len(cases)} functions): {json.dumps(means(fix))}")
        by_id = {q["id"]: q for q in queries}
        for qid, m in sorted(results.items(), key=lambda kv: (kv[1]["recall"], -kv[1]["noise"]))[
            : args.worst
        ]:
            q = by_id[qid]
            context = run_context(indexes[q["repo"]], q["query"])
            print(f"{m} {qid} {q['query']!r}")
            print(
                "   targets: "
                + ", ".join(f"{t['path']}:{t['line']}" for t in q["targets"] if t["grade"] == 3)
            )
            print("   context: " + "; ".join(s.header() for s in context.sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())

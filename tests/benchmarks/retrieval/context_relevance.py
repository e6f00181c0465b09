"""Score the agent's context gathering (`agent.context.gather_context`) on the retrieval harness's queries.

Each annotated query becomes the free-form task an agent run starts from (``agentls run QUERY``:
`agent.task_builders.run_task`), and its context is gathered as the run's first turn gathers it, with the
workspace index (lexical, as on a fresh install) and the default token budget. The query's targets are
what an expert would open, so per query:

- ``recall``: the share of grade-3 targets (the defining chunks) whose defining line is inside a section
  of the context;
- ``imports``: of the targets' files that the context shows, the share whose import lines are shown too
  (code without its file's imports is read blind: which `parse` is this?); an import line is one at the
  top level (`import_lines`), not a ``require`` inside a method;
- ``noise``: the share of sections that hold nothing an expert opens for the query: a stub (a body of
  ``pass``/``...``/``raise NotImplementedError``; one line only when it is an empty definition such as
  ``write() {}``), comments or nothing at all, or a test file when no target is a test;
- ``tokens``: the context's estimated tokens.

Implement and fix runs (`implement_scores`, `fix_scores`, ``--edits``): for a documented function
(top-level in Python; functions and methods with a doc comment in Go, Rust, JavaScript, TypeScript, PHP
and Ruby, `source_functions`), its body is replaced by the language's stub (``raise NotImplementedError``,
``panic("not implemented")``, ``todo!()`` ...) in the text the run reads (the index is the workspace's
as it is), and the context of ``agentls.implement`` there is scored by ``callees`` (the share of
workspace functions its removed body called whose definition is shown), ``callers`` (a call site outside
the function is shown, when the workspace has one), ``imports`` (its file's imports shown),
``covering_test`` (a section of a test file that calls it is shown, when one exists), ``signature_types``
(the share of workspace types its signature names whose definition is shown), ``style_test`` (a test
file with real tests shown, when the workspace has one in the language) and ``empty_tests`` (an empty
test file such as ``tests/__init__.py`` shown). A call of a function (no class) is one bare or through its
module or package (``clear(``, ``termui.clear(``), not some object's method of that name
(``shells.clear()``); a method's is one through any object (`_call_pattern`); a definition line (a
JavaScript class's ``encode() {`` too) is none. For a method whose name three or more places define
(``new``, ``__construct``), a call counts only in a file that names its class. A fix run gets a
diagnostic on the function's last line: ``target`` (that line shown), ``function`` (all of the function
shown), ``callees`` (of that line), ``covering_test`` and ``imports``. The edit cases are split like the
queries: every other one of up to 40 per repository is tuning, the rest held-out (`edit_split`).

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
from agent.task import Diagnostic, TaskError
from agent.task_builders import fix_task, implement_task, run_task
from agent.testfinder import is_test_path
from indexing.definitions import FUNCTION_KINDS, chunk_is_stub, definition_chunks, parse_definitions
from indexing.languages import detect_language
from indexing.service import WorkspaceIndex

_IMPORT = re.compile(
    r"^\s*(?:import\s|from\s+\S+\s+import\s|use\s|require(?:_relative)?[\s(]|require_once\s|#include\s"
    r"|package\s)|^\s*(?:const|let|var)\s+\S.*=\s*require\(|^\s*import\s*[({\"']"
)
_GUARD = re.compile(r"(?:try|except\b.*|else|elif\b.*|if\b.*|begin)\s*:?\s*$")
"""A top-level line whose block may hold the file's imports (``try:`` / ``import simplejson``, Ruby's
``begin`` / ``require 'x'`` / ``rescue LoadError``)."""
_COMMENT = re.compile(r"^\s*(?:#(?!\[|!|include)|//|/\*|\*)")
_EMPTY_ONE_LINER = re.compile(r"\)\s*(?:->\s*\S+\s*)?\{\s*\}[,;]?\s*$|:\s*(?:pass|\.\.\.)\s*$")
_STUB_BODY = re.compile(r"^\s*(?:pass|\.\.\.|raise NotImplementedError(?:\(.*\))?|\{\s*\}|)\s*$")


def import_lines(text: str) -> list[int]:
    """1-based lines of the file's top-level import statements (within its first 80 lines): at the first
    column, or in a block of a top-level ``try``/``if``/``else``/``begin``; not a ``require`` inside a
    method (rack's builder.rb loads a config file so) nor a trait's ``use`` inside a PHP class."""
    out = []
    guarded = False  # the last line at the first column opens a block imports may be in
    for n, line in enumerate(text.split("\n")[:80], 1):
        top = bool(line.strip()) and not line[0].isspace()
        if top:
            guarded = bool(_GUARD.match(line))
        if _IMPORT.match(line) and (top or guarded):
            out.append(n)
    return out


def is_stub(section: ContextSection) -> bool:
    """A definition whose body does nothing, or a section with no code at all."""
    lines = [line for line in section.text.split("\n") if line.strip() and not _COMMENT.match(line)]
    if not lines:
        return True
    if len(lines) == 1:  # one line is a stub only as an empty definition (an import line is none)
        return bool(_EMPTY_ONE_LINER.search(lines[0]))
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
_CALL = re.compile(r"(?<![\w.$])(\w+)\(")
_STUB_STATEMENT = {
    "python": "raise NotImplementedError",
    "ruby": "raise NotImplementedError",
    "go": 'panic("not implemented")',
    "rust": "todo!()",
    "javascript": 'throw new Error("not implemented");',
    "typescript": 'throw new Error("not implemented");',
    "php": 'throw new \\RuntimeException("not implemented");',
}
Function = tuple[str, int, int, int]
"""(name, definition line, first body line after a docstring, last body line), 1-based."""


def python_functions(text: str) -> list[Function]:
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


def source_functions(path: str, text: str) -> list[Function]:
    """The functions of a file an implement run could start from: in Python, `python_functions`; in the
    other languages of `_STUB_STATEMENT`, functions and methods with a doc comment and a body of 2 to 60
    lines between a line that ends in ``{`` (the ``def`` line in Ruby) and the closing line. The line
    given is the definition's first line, after its doc comment."""
    language = detect_language(path)
    if language == "python":
        return python_functions(text)
    if language not in _STUB_STATEMENT:
        return []
    lines = text.split("\n")
    out = []
    for chunk in definition_chunks(path, text, language):
        if chunk.kind not in FUNCTION_KINDS or not chunk.doc.strip() or not chunk.name:
            continue
        end = chunk.end_line
        start = next(  # the chunk begins with its doc comment: the definition's own first line
            (
                n
                for n in range(chunk.start_line, end)
                if chunk.name in lines[n - 1] and not lines[n - 1].lstrip().startswith(("*", "/", "#"))
            ),
            chunk.start_line,
        )
        if language == "ruby":
            body_start = start + 1
            closed = lines[end - 1].strip() == "end"
        else:
            opening = [n for n in range(start, min(end, start + 8)) if lines[n - 1].rstrip().endswith("{")]
            body_start = opening[0] + 1 if opening else end
            closed = lines[end - 1].strip() in ("}", "};", "},")
        if closed and 2 <= end - body_start <= 60 and not chunk_is_stub(chunk):
            out.append((chunk.name, start, body_start, end - 1))
    return out


def _stubbed(text: str, body_start: int, end: int, language: str | None = "python") -> str:
    lines = text.split("\n")
    indent = lines[body_start - 1][: len(lines[body_start - 1]) - len(lines[body_start - 1].lstrip())]
    stub = _STUB_STATEMENT[language or "python"]
    return "\n".join([*lines[: body_start - 1], f"{indent}{stub}", *lines[end:]])


def _family(language: str | None) -> str | None:
    return "javascript" if language in ("typescript", "tsx") else language


def _source_files(root: Path, language: str | None) -> list[tuple[str, Path]]:
    """The workspace's files in `language`'s family (JavaScript with TypeScript): (relative path, file)."""
    out = []
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root).as_posix()
        if file.is_file() and _family(detect_language(rel)) == _family(language):
            out.append((rel, file))
    return out


_DEFINED: dict[tuple[Path, str | None], dict[str, list[tuple[str, int]]]] = {}


def _defined(root: Path, language: str | None = "python") -> dict[str, list[tuple[str, int]]]:
    """Where each function of the workspace is defined: in Python its top-level ``def``s, in the other
    languages every function and method (the parser's chunks)."""
    key = (root, language)
    if key not in _DEFINED:
        names: dict[str, list[tuple[str, int]]] = {}
        for rel, file in _source_files(root, language):
            text = file.read_text(errors="replace")
            if language == "python":
                for match in _DEF.finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    names.setdefault(match.group(1), []).append((rel, line))
                continue
            for chunk in definition_chunks(rel, text, detect_language(rel)):
                if chunk.kind in FUNCTION_KINDS and chunk.name:
                    names.setdefault(chunk.name, []).append((rel, chunk.start_line))
        _DEFINED[key] = names
    return _DEFINED[key]


def _shows_definition(
    context: Context, name: str, where: list[tuple[str, int]], language: str | None
) -> bool:
    if language == "python":  # a ``def`` of that name in any section
        return any(re.search(rf"^\s*def {name}\(", s.text, re.MULTILINE) for s in context.sections)
    return any(_shows(context, p, n) for p, n in where)


def _function(read: Callable[[str], str | None], path: str, name: str) -> Function:
    found = [f for f in source_functions(path, read(path) or "") if f[0] == name]
    if not found:
        raise ValueError(f"no function {name} with a doc comment and a body in {path}")
    return found[0]


_DEFINITION_LINE = re.compile(
    r"^\s*(?:(?:pub(?:\([\w ]+\))?|export|async|static|public|private|protected|final)\s+)*"
    r"(?:def|fn|func|function)\s"
    # a class's method in JavaScript and TypeScript: ``async *encode() {``, ``get size(): number {``
    r"|^\s*(?:(?:async|static|get|set|public|private|protected|override)\s+)*\*?\s*\w+\s*\([^()]*\)"
    r"\s*(?::\s*[^{;=]+)?\{\s*$"
)


def _call_pattern(name: str, symbol: str | None, path: str) -> re.Pattern[str]:
    """A call of the target `name` defined in `path`, as an expert counts one. A method (`symbol` is
    ``Class.method``, or unknown) is called through any object (``obj.name(``, ``$this->name(``,
    ``Self::name(``). A function (no class) is called bare (``clear(``) or through its module or package
    (``termui.clear(``, ``click.clear(``, ``cobra::name(``: a folder or the file's stem of `path`), not as
    some other object's method: ``_available_shells.clear()`` calls a dict's ``clear``, not click's."""
    if symbol is None or "." in symbol:
        return re.compile(rf"(?<![\w$]){re.escape(name)}\(")
    parts = [Path(part).stem for part in Path(path).parts]
    through = "".join(
        rf"|(?<=\b{re.escape(part)}{sep})" for part in dict.fromkeys(parts) if part for sep in (r"\.", "::")
    )
    return re.compile(rf"(?:(?<![\w$.:>]){through}){re.escape(name)}\(")


def _owner(symbol: str | None, definitions: list[tuple[str, int]]) -> str:
    """For a method whose name three or more places define (``new``, ``__construct``, ``write``), its
    class's name, lower-cased: a call of that name is a call of this method only in a file that names
    the class (if only in a test's name). "" otherwise: every call of the name counts."""
    parts = (symbol or "").split(".")
    return parts[-2].lower() if len(parts) > 1 and len(set(definitions)) >= 3 else ""


def implement_scores(
    index: WorkspaceIndex, path: str, name: str, token_budget: int = 12_000
) -> dict[str, float]:
    """The first-turn context of implementing `name` in `path` with its body removed, scored."""
    root = index.root
    read = reader(root)
    language = detect_language(path)
    text = read(path) or ""
    _, start, body_start, end = _function(read, path, name)
    stub = _stubbed(text, body_start, end, language)
    body = "\n".join(text.split("\n")[body_start - 1 : end])
    defined = _defined(root, language)
    callees = sorted({c for c in _CALL.findall(body) if c in defined and c != name})

    def read_stub(p: str) -> str | None:
        return stub if p == path else read(p)

    task = implement_task(root, stub, path, start)
    context = gather_context(task, root=root, read_file=read_stub, index=index, token_budget=token_budget)
    shown = sum(1 for c in callees if _shows_definition(context, c, defined[c], language))
    call = _call_pattern(name, task.symbol, path)
    owner = _owner(task.symbol, defined.get(name, []))
    calls = [
        (rel, n)
        for rel, file in _source_files(root, language)
        if rel == path or not owner or owner in file.read_text(errors="replace").lower()
        for n, line in enumerate((stub if rel == path else file.read_text(errors="replace")).split("\n"), 1)
        if call.search(line) and not _DEFINITION_LINE.match(line) and not (rel == path and n == start)
    ]
    imports = import_lines(stub)
    tests = [s for s in context.sections if s.path and is_test_path(s.path)]
    covering = {rel for rel, _ in calls if is_test_path(rel)}
    types = _defined_types(root)
    named = [t for t in _signature_types(text, start, body_start, types) if t != name]
    return {
        "callees": shown / len(callees) if callees else 1.0,
        "callers": float(any(_shows(context, p, n) for p, n in calls)) if calls else 1.0,
        "imports": 1.0 if not imports or any(_shows(context, path, n) for n in imports) else 0.0,
        "covering_test": (
            float(any(s.path in covering and call.search(s.text) for s in tests)) if covering else 1.0
        ),
        "signature_types": (
            sum(1 for t in named if any(_shows(context, p, n) for p, n in types[t])) / len(named)
            if named
            else 1.0
        ),
        "style_test": (
            float(any(not is_stub(s) and _TEST_CODE.search(s.text) for s in tests))
            if _has_tests(root, language)
            else 1.0
        ),
        "empty_tests": float(any(is_stub(s) for s in tests)),
        "tokens": float(context.tokens),
    }


_TEST_CODE = re.compile(
    r"def test|func Test|#\[test\]|\bit\s*[(\"']|\btest\(|function test|\bdescribe\b|assert"
)
_HAS_TESTS: dict[tuple[Path, str | None], bool] = {}


def _has_tests(root: Path, language: str | None) -> bool:
    """Whether the workspace has a test file with real tests in `language`'s family (a style to show)."""
    key = (root, language)
    if key not in _HAS_TESTS:
        _HAS_TESTS[key] = any(
            is_test_path(rel) and _TEST_CODE.search(file.read_text(errors="replace"))
            for rel, file in _source_files(root, language)
        )
    return _HAS_TESTS[key]


_CAPWORD = re.compile(r"(?<![\w.$])([A-Z]\w*[a-z]\w*)\b")
_TYPE_KINDS = frozenset({"class", "interface", "struct", "type", "enum", "trait"})
_TYPES: dict[Path, dict[str, list[tuple[str, int]]]] = {}


def _defined_types(root: Path) -> dict[str, list[tuple[str, int]]]:
    """Where the workspace's classes, structs, interfaces, traits and types are defined, outside tests."""
    if root not in _TYPES:
        found: dict[str, list[tuple[str, int]]] = {}
        for file in sorted(root.rglob("*")):
            rel = file.relative_to(root).as_posix()
            language = detect_language(rel)
            if not file.is_file() or is_test_path(rel) or language is None:
                continue
            for symbol in parse_definitions(rel, file.read_text(errors="replace"), language).symbols:
                if symbol.role == "definition" and symbol.kind in _TYPE_KINDS:
                    found.setdefault(symbol.name, []).append((rel, symbol.line))
        _TYPES[root] = found
    return _TYPES[root]


def _signature_types(
    text: str, start: int, body_start: int, types: dict[str, list[tuple[str, int]]]
) -> list[str]:
    """The workspace types a function's signature names (its parameters' and result's annotations)."""
    signature = []
    for line in text.split("\n")[start - 1 : body_start - 1]:
        if line.strip().startswith(('"""', "'''")):
            break
        signature.append(line)
    return sorted({n for n in _CAPWORD.findall("\n".join(signature)) if n in types})


def fix_scores(index: WorkspaceIndex, path: str, name: str, token_budget: int = 12_000) -> dict[str, float]:
    """The first-turn context of fixing a diagnostic on the last line of `name` in `path`, scored."""
    root = index.root
    read = reader(root)
    language = detect_language(path)
    text = read(path) or ""
    _, start, _, end = _function(read, path, name)
    diagnostic = Diagnostic(message='Argument of type "None" cannot be assigned', line=end, end_line=end)
    task = fix_task(path, [diagnostic], text=text, root=root)
    context = gather_context(task, root=root, read_file=read, index=index, token_budget=token_budget)
    imports = import_lines(text)
    defined = _defined(root, language)
    callees = sorted({c for c in _CALL.findall(text.split("\n")[end - 1]) if c in defined and c != name})
    shown = sum(1 for c in callees if _shows_definition(context, c, defined[c], language))
    call = _call_pattern(name, task.symbol, path)
    owner = _owner(task.symbol, defined.get(name, []))
    covering = {
        rel
        for rel, file in _source_files(root, language)
        if is_test_path(rel)
        and call.search(file.read_text(errors="replace"))
        and owner in file.read_text(errors="replace").lower()
    }
    tests = [s for s in context.sections if s.path in covering and call.search(s.text)]
    return {
        "target": float(_shows(context, path, end)),
        "covering_test": float(bool(tests)) if covering else 1.0,
        "function": float(all(_shows(context, path, n) for n in range(start, end + 1))),
        "callees": shown / len(callees) if callees else 1.0,
        "imports": 1.0 if not imports or any(_shows(context, path, n) for n in imports) else 0.0,
        "tokens": float(context.tokens),
    }


def edit_cases(root: Path, limit: int = 40) -> list[tuple[str, str]]:
    """(path, function) pairs to implement or fix: documented functions of non-test files (top-level
    ones in Python, methods too in the other languages), at most `limit`, spread over the workspace."""
    out: list[tuple[str, str]] = []
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root).as_posix()
        if file.is_file() and not is_test_path(rel) and detect_language(rel) in _STUB_STATEMENT:
            names = [f[0] for f in source_functions(rel, file.read_text(errors="replace"))]
            out.extend((rel, n) for n in dict.fromkeys(names))  # a name defined twice: its first one
    return out[:: max(1, len(out) // limit)][:limit]


def means(results: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = next(iter(results.values()), {"recall": 0, "imports": 0, "noise": 0, "tokens": 0}).keys()
    n = max(1, len(results))
    return {k: round(sum(r[k] for r in results.values()) / n, 3) for k in keys}


def edit_split(cases: Sequence[tuple[str, str]], split: str) -> list[tuple[str, str]]:
    """The edit cases of one split: the tuning split takes every other case from the first, the held-out
    split the rest ("all": every case)."""
    if split == "all":
        return list(cases)
    return list(cases[0 if split == "tuning" else 1 :: 2])


def evaluate_edits(indexes: dict[str, WorkspaceIndex], split: str) -> dict[str, dict[str, dict[str, float]]]:
    """Per run kind ("implement", "fix"), per case (``repo/path:function``), the scores of `split`'s cases.
    A case whose stubbed function the task builder does not take as a stub is left out (logged)."""
    out: dict[str, dict[str, dict[str, float]]] = {"implement": {}, "fix": {}}
    for repo, index in indexes.items():
        for path, name in edit_split(edit_cases(index.root), split):
            key = f"{repo}/{path}:{name}"
            try:
                out["implement"][key] = implement_scores(index, path, name)
            except TaskError as error:
                print(f"left out {key}: {error}", file=sys.stderr)
                continue
            out["fix"][key] = fix_scores(index, path, name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from tests.benchmarks.retrieval.evaluate import load_queries, open_agentls
    from tests.benchmarks.retrieval.repos import BY_NAME, fetch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning", choices=["tuning", "held_out", "all"])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "agentls-bench")
    parser.add_argument("--repos", help="comma-separated subset of the repositories")
    parser.add_argument("--worst", type=int, default=0, help="print the N queries with the lowest recall")
    parser.add_argument("--edits", action="store_true", help="also score implement and fix runs")
    parser.add_argument("--json", type=Path, help="write every query's and case's scores to this file")
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
        dump: dict[str, Any] = {"run": results}
        for split in ("held_out", "tuning") if args.split == "all" else (args.split,):
            part = {q["id"]: results[q["id"]] for q in queries if q["split"] == split}
            print(f"{split} ({len(part)} queries): {json.dumps(means(part))}")
            if not args.edits:
                continue
            edits = evaluate_edits(indexes, split)
            dump[split] = edits
            for kind, scores in edits.items():
                for repo in indexes:
                    mine = {k: v for k, v in scores.items() if k.startswith(f"{repo}/")}
                    if mine:
                        print(f"  {split} {repo} {kind} ({len(mine)}): {json.dumps(means(mine))}")
                print(f"{split} {kind} ({len(scores)} functions): {json.dumps(means(scores))}")
        if args.json:
            args.json.write_text(json.dumps(dump, indent=1))
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

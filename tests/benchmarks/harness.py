"""Measurement tools the benchmarks share: timers, percentiles, a process-tree memory sampler, the
child process that indexes a tree on its own (for peak memory), query sets, and the results file.

Results of every benchmark go to ``tests/benchmarks/results/results.json`` (one entry per benchmark,
merged, so running one benchmark updates only its own entry); ``python -m tests.benchmarks.report``
turns that file into ``BENCHMARKS.md``.

The child indexer is run as ``python -m tests.benchmarks.harness index --root R --cache C --out O.json``
(``--lexical`` for provider ``none``); it writes the index report, the phase timings and the pipeline's
breakdown as JSON.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import importlib.metadata
import inspect
import json
import math
import os
import platform
import random
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent.parent
RESULTS_FILE = BENCH_DIR / "results" / "results.json"

# ---------------------------------------------------------------------------------------------- timing


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(slots=True)
class Timers:
    """Seconds spent in named sections (summed over calls) and call counts."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)


def _wrap(timers: Timers, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            timers.add(name, time.perf_counter() - start)

    return timed


def _wrap_iter(timers: Timers, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Time spent producing the items of a generator function (not the consumer's time)."""

    def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
        start = time.perf_counter()
        it = iter(func(*args, **kwargs))
        timers.add(name, time.perf_counter() - start)
        while True:
            start = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                timers.add(name, time.perf_counter() - start)
                return
            timers.add(name, time.perf_counter() - start)
            yield item

    return timed


PIPELINE_SECTIONS: tuple[tuple[str, str, str, bool], ...] = (
    # (module, attribute path, label, is a generator)
    ("indexing.service", "walk", "walk (list files, ignores)", True),
    ("indexing.store", "IndexStore.file_records", "read file records", False),
    ("indexing.service", "WorkspaceIndex._embed_texts", "embed chunks", False),
    ("indexing.store", "IndexStore.write_batch", "store: write batches", False),
    ("indexing.store", "IndexStore.touch_files", "store: touch unchanged files", False),
    ("indexing.store", "IndexStore.delete_files", "store: delete files", False),
    ("indexing.store", "IndexStore.ensure_indexes", "store: build indexes (FTS, BTree, vector)", False),
    ("indexing.store", "IndexStore.optimize", "store: compact (optimize)", False),
)
"""Where the pipeline's own time goes; sections missing from the code are reported as such."""


@contextlib.contextmanager
def instrument_pipeline(timers: Timers, clock: PhaseClock | None = None) -> Iterator[list[str]]:
    """Time the pipeline's sections by wrapping them for the duration of the block, and each step of the
    finishing phase by itself into ``clock`` (`PhaseClock.steps`) when given.

    Parsing runs in worker processes, so it shows up as the "indexing" phase minus the sections timed
    here in the main process. Yields the labels of sections that could not be found (renamed code).
    """
    import importlib

    patched: list[tuple[Any, str, Any]] = []
    missing: list[str] = []
    if clock is not None:
        store_module: Any = importlib.import_module("indexing.store")
        original_step = getattr(store_module, "_step", None)
        if original_step is None:
            missing.append("finishing steps (indexing.store._step)")
        else:
            store_module._step = _timed_step(original_step, clock.steps)
            patched.append((store_module, "_step", original_step))
    for module_name, attr_path, label, is_gen in PIPELINE_SECTIONS:
        owner: Any = importlib.import_module(module_name)
        *parents, attr = attr_path.split(".")
        try:
            for part in parents:
                owner = getattr(owner, part)
            original = inspect.getattr_static(owner, attr)
        except AttributeError:
            missing.append(label)
            continue
        wrapped = (_wrap_iter if is_gen else _wrap)(timers, label, getattr(owner, attr))
        setattr(owner, attr, wrapped)
        patched.append((owner, attr, original))
    try:
        yield missing
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


def _timed_step(original: Callable[..., Any], steps: dict[str, float]) -> Callable[..., Any]:
    """The store's ``_step(step, label)`` block, also adding its seconds to ``steps["finishing/<label>"]``."""
    from indexing.progress import FINISHING

    @contextlib.contextmanager
    def timed(step: Any, label: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with original(step, label):
                yield
        finally:
            key = f"{FINISHING}/{label}"
            steps[key] = steps.get(key, 0.0) + time.perf_counter() - start

    return timed


@dataclass(slots=True)
class PhaseClock:
    """A progress callback that records when each phase of an index run started, and (filled by
    `instrument_pipeline`) how long each step of the finishing phase took by itself.

    A step ("finishing/full-text index") is announced as it starts, but the store builds each table's
    indexes in a thread of its own, so steps overlap: the time from one announcement to the next is not a
    step's time. Read that way, Django's symbol path BTree seemed to take 0.45 s while the full-text index
    was running beside it (it takes 0.03-0.07 s of CPU), and the finishing phase itself seemed to take no
    time. So a phase runs until the next phase, not the next step, began, and a step has its own time.
    """

    started: float = field(default_factory=time.perf_counter)
    first_seen: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.first_seen.setdefault(phase, time.perf_counter() - self.started)

    def durations(self, end: float) -> dict[str, float]:
        """Seconds per phase, each running until the next phase (or ``end``) began, each followed by its
        steps' own seconds as ``phase/step`` (steps overlap: they may add up to more than their phase). A
        step announced but not timed is left out."""
        ordered = sorted(self.first_seen.items(), key=lambda kv: kv[1])
        phases = [(phase, at) for phase, at in ordered if "/" not in phase]
        out: dict[str, float] = {}
        for n, (phase, at) in enumerate(phases):
            until = phases[n + 1][1] if n + 1 < len(phases) else end
            out[phase] = until - at
            for step, _ in ordered:
                if step.startswith(f"{phase}/") and step in self.steps:
                    out[step] = self.steps[step]
        return out


# ---------------------------------------------------------------------------------------------- memory


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root_pid: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_memory(root_pid: int) -> list[str]:
    """Each process of the tree under ``root_pid``: "pid (parent pid) command: RSS/PSS MiB", the command
    line's start after the interpreter (a process forked from a multiprocessing fork server shows the
    fork server's: tell them apart by their parent and the pids the server logs)."""
    rows = []
    for pid in process_tree(root_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        role = " ".join(cmdline.split()[1:])[:50] or "?"
        parent = _status_kb(pid, "PPid:")
        rss, pss = _status_kb(pid, "VmRSS:") / 1024, _pss_kb(pid) / 1024
        rows.append(f"{pid} ({parent}) {role}: {rss:.0f}/{pss:.0f} MiB")
    return rows


@dataclass(slots=True)
class MemoryPeak:
    """Peaks over a process tree, in MiB: the sum over all processes (RSS and PSS), and the largest one."""

    tree_rss_mib: float = 0.0
    tree_pss_mib: float = 0.0
    largest_process_rss_mib: float = 0.0
    most_processes: int = 0
    samples: int = 0


class TreeSampler:
    """Samples the memory of a process and all its descendants in a thread until stopped.

    RSS summed over processes counts shared pages (the interpreter, grammars, the model) once per
    process, so it over-states; PSS shares them out and is the fair total. Both are kept.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = MemoryPeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        pids = process_tree(self.pid)
        rss = [_status_kb(pid, "VmRSS:") for pid in pids]
        pss = sum(_pss_kb(pid) for pid in pids)
        peak = self.peak
        peak.samples += 1
        peak.most_processes = max(peak.most_processes, sum(1 for r in rss if r))
        peak.tree_rss_mib = max(peak.tree_rss_mib, sum(rss) / 1024)
        peak.tree_pss_mib = max(peak.tree_pss_mib, pss / 1024)
        peak.largest_process_rss_mib = max(peak.largest_process_rss_mib, max(rss, default=0) / 1024)


# ------------------------------------------------------------------------------------- child indexer


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What an index run in a separate process measured."""

    report: dict[str, Any]
    wall_seconds: float  # around WorkspaceIndex.index(), inside the child
    phases: dict[str, float]
    sections: dict[str, float]
    missing_sections: list[str]
    embedder_id: str
    memory: MemoryPeak
    max_rss_mib_wait4: float  # ru_maxrss of the child and the descendants it reaped
    process_seconds: float  # child start to exit, interpreter start-up included


def index_in_child(
    root: Path,
    cache_dir: Path,
    *,
    lexical: bool,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    sample_memory: bool = True,
) -> ChildRun:
    """Index ``root`` in a fresh Python process, sampling the memory of its whole process tree (unless
    ``sample_memory`` is false: the sampler reads /proc ten times a second, which a timing should not
    pay for)."""
    out = workdir / f"child-{os.getpid()}-{time.monotonic_ns()}.json"
    cmd = [
        sys.executable,
        "-m",
        "tests.benchmarks.harness",
        "index",
        "--root",
        str(root),
        "--cache",
        str(cache_dir),
        "--out",
        str(out),
    ]
    if lexical:
        cmd.append("--lexical")
    child_env = {**os.environ, **(env or {}), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), child_env.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    with sampler if sample_memory else contextlib.nullcontext():
        _, status, usage = os.wait4(proc.pid, 0)
    process_seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"child indexer failed (exit {proc.returncode}):\n{stderr[-4000:]}")
    data = json.loads(out.read_text())
    out.unlink()
    return ChildRun(
        report=data["report"],
        wall_seconds=data["wall_seconds"],
        phases=data["phases"],
        sections=data["sections"],
        missing_sections=data["missing_sections"],
        embedder_id=data["embedder_id"],
        memory=sampler.peak,
        max_rss_mib_wait4=usage.ru_maxrss / 1024,
        process_seconds=process_seconds,
    )


def _child_main(args: argparse.Namespace) -> int:
    from indexing.parsing import warm_up_parsers

    # As `agentls index` does before a run that parses in a pool: the parser processes' fork server
    # imports its modules while this process loads LanceDB (`server.cli.main._start_parsers`).
    warm_up_parsers()
    from indexing.config import EmbeddingSettings, IndexSettings
    from indexing.service import WorkspaceIndex

    settings = (
        IndexSettings(embedding=EmbeddingSettings(provider="none")) if args.lexical else IndexSettings()
    )
    cache = Path(args.cache)
    env = {"HF_HUB_CACHE": str(cache / "no-hub"), "HF_HUB_OFFLINE": "1"}
    index = WorkspaceIndex(Path(args.root), settings, cache_dir=cache, env=env)
    timers = Timers()
    clock = PhaseClock()
    with instrument_pipeline(timers, clock) as missing:
        clock.started = time.perf_counter()
        report = index.index(clock)
        wall = time.perf_counter() - clock.started
    embedder = index.embedder
    data = {
        "report": asdict(report),
        "wall_seconds": wall,
        "phases": clock.durations(wall),
        "sections": timers.seconds,
        "missing_sections": missing,
        "embedder_id": embedder.id if embedder is not None else "",
    }
    Path(args.out).write_text(json.dumps(data))
    return 0


# ------------------------------------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class PyFunction:
    """A function or method of a Python file, with its docstring's position."""

    path: str  # corpus-relative POSIX path
    name: str
    qualname: str
    line: int  # the `def` line, 1-based
    end_line: int
    doc: str  # cleaned docstring ("" when none)
    doc_first_line: int  # 1-based lines of the docstring statement (0 when none)
    doc_last_line: int
    doc_alone: bool  # the docstring's lines hold nothing else (it can be blanked out)


def python_functions(root: Path, rel_path: str, source: str) -> list[PyFunction]:
    """Every function and method of one file (nested ones too), in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    out: list[PyFunction] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                qual = f"{prefix}{child.name}"
                doc = ast.get_docstring(child) or ""
                first = last = 0
                alone = False
                if doc and child.body and isinstance(child.body[0], ast.Expr):
                    stmt = child.body[0]
                    first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
                    before = lines[first - 1][: stmt.col_offset]
                    after = lines[last - 1][stmt.end_col_offset or 0 :]
                    alone = first > child.lineno and not before.strip() and not after.strip()
                out.append(
                    PyFunction(
                        rel_path,
                        child.name,
                        qual,
                        child.lineno,
                        child.end_lineno or child.lineno,
                        doc,
                        first,
                        last,
                        alone,
                    )
                )
                visit(child, f"{qual}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


_SENTENCE_END = re.compile(r"(?<=[A-Za-z0-9)`'\"])\.(\s|$)")
_ABBREVIATIONS = ("e.g", "i.e", "etc", "vs", "cf", "approx", "incl")


def doc_summary(doc: str) -> str:
    """The docstring's first sentence, on one line (the CodeSearchNet query).

    >>> doc_summary("Return the model (e.g. a User). More text.")
    'Return the model (e.g. a User).'
    """
    paragraph = doc.strip().split("\n\n", 1)[0]
    text = " ".join(paragraph.split())
    for match in _SENTENCE_END.finditer(text):
        word = text[: match.start()].rsplit(" ", 1)[-1].lstrip("(").lower()
        if word in _ABBREVIATIONS or len(word) == 1:
            continue
        return text[: match.start() + 1]
    return text


def corpus_functions(root: Path) -> list[PyFunction]:
    out: list[PyFunction] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        out.extend(python_functions(root, rel, path.read_text("utf-8", errors="replace")))
    return out


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    kind: str  # "identifier" | "phrase"


def search_queries(functions: Sequence[PyFunction], count: int, seed: int = 7) -> list[Query]:
    """Realistic searches over a Python corpus: half identifiers, half docstring phrases (<= 10 words)."""
    rng = random.Random(seed)
    names = sorted({f.name for f in functions if not f.name.startswith("test") and len(f.name) > 3})
    classes = sorted({f.qualname.split(".")[0] for f in functions if "." in f.qualname})
    identifiers = rng.sample(names, count // 3) + rng.sample(classes, count // 2 - count // 3)
    phrases_pool = sorted(
        {" ".join(doc_summary(f.doc).rstrip(".").split()[:10]) for f in functions if f.doc} - {""}
    )
    phrases = [p for p in rng.sample(phrases_pool, min(len(phrases_pool), count)) if len(p.split()) >= 3]
    queries = [Query(q, "identifier") for q in identifiers] + [
        Query(q, "phrase") for q in phrases[: count - len(identifiers)]
    ]
    rng.shuffle(queries)
    return queries


# ------------------------------------------------------------------------------------------- results


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """The machine and the conditions of this moment (load, other processes)."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError):
        mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if commit and dirty:
            commit += " (with uncommitted changes)"
    load1, load5, _ = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "memory_gib": round(mem_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {
            name: _package_version(name)
            for name in (
                "tree-sitter",
                "tree-sitter-language-pack",
                "lancedb",
                "pylance",
                "model2vec",
                "numpy",
            )
        },
        "commit": commit,
        "load_average_1m": round(load1, 2),
        "load_average_5m": round(load5, 2),
    }


def invocation() -> str:
    """The command line that is running now, as a user would type it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("pytest", "pytest/__main__.py", "py.test")):
        argv = ["python", "-m", "pytest", *argv[1:]]
    elif argv and argv[0].endswith(".py"):
        argv = ["python", *argv]
    return shlex.join(argv)


@dataclass(frozen=True, slots=True)
class Entry:
    """One benchmark's outcome, as stored in results.json and shown in BENCHMARKS.md."""

    key: str  # stable id, e.g. "index.lexical.django"
    title: str
    target: str  # the target, as the issue words it
    measured: str  # the headline figure(s), one line
    passed: bool
    figures: dict[str, Any]
    details: list[str]  # lines for the report (breakdowns, notes)
    rerun: str  # the command that measures just this benchmark
    command: str = field(default_factory=invocation)
    measured_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    )
    conditions: dict[str, Any] = field(default_factory=machine_info)


def record(entry: Entry, results_file: Path = RESULTS_FILE) -> None:
    """Merge one entry into the results file (read, update, write atomically)."""
    results_file.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"entries": {}}
    if results_file.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(results_file.read_text())
    data.setdefault("entries", {})[entry.key] = asdict(entry)
    tmp = results_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, results_file)
    print(f"\n[{entry.key}] {'PASS' if entry.passed else 'FAIL'}  {entry.title}")
    print(f"  target:   {entry.target}")
    print(f"  measured: {entry.measured}")
    for line in entry.details:
        print(f"  {line}")


def rerun_command(nodeid: str) -> str:
    return f"python -m pytest {shlex.quote(nodeid)} -m benchmark -s"


# ----------------------------------------------------------------------------- language-server load


@dataclass(slots=True)
class CodeActionLoad:
    """Latencies in ms of a run of ``textDocument/codeAction`` requests (`code_action_load`)."""

    cold: list[float]  # the first request per file: it waits for the file's first parse
    latencies: list[float]
    after_edit: list[float]  # the requests sent right after an edit
    during_indexing: int  # how many requests were answered before the first index ended


async def code_action_ms(client: Any, uri: str, line: int) -> float:
    """Milliseconds for one ``textDocument/codeAction`` at the start of ``line``."""
    from lsprotocol import types

    position = types.Position(line=line, character=0)
    started = time.perf_counter()
    await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return (time.perf_counter() - started) * 1000


async def code_action_load(
    client: Any,
    uris: list[str],
    texts: list[str],
    *,
    rng: random.Random,
    count: int,
    edit_every: int,
    edit_comment: str,
) -> CodeActionLoad:
    """A user at work in open files: one code action at a random line of each file first, then ``count``
    at random lines of a random file, a whole-document edit (``edit_comment`` with ``{n}`` appended as a
    new line, a new version) every ``edit_every`` requests, 5-30 ms between requests. ``texts`` is
    updated with the edits."""
    import asyncio

    from lsprotocol import types

    from tests.e2e.helpers import index_progress_ended

    cold = [
        await code_action_ms(client, uri, rng.randrange(text.count("\n")))
        for uri, text in zip(uris, texts, strict=True)
    ]
    load = CodeActionLoad(cold=cold, latencies=[], after_edit=[], during_indexing=0)
    versions = [1] * len(uris)
    for n in range(count):
        i = rng.randrange(len(uris))
        edited = n > 0 and n % edit_every == 0
        if edited:
            versions[i] += 1
            texts[i] += "\n" + edit_comment.format(n=n) + "\n"
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uris[i], version=versions[i]),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=texts[i])],
                )
            )
        ms = await code_action_ms(client, uris[i], rng.randrange(texts[i].count("\n")))
        load.latencies.append(ms)
        if edited:
            load.after_edit.append(ms)
        if not index_progress_ended(client):
            load.during_indexing += 1
        await asyncio.sleep(rng.uniform(0.005, 0.03))  # a user moving the cursor
    return load


async def wait_until_reading(client: Any) -> float:
    """Seconds until the server answers a request sent before initialize (with -32002)."""
    import asyncio

    from pygls.protocol.json_rpc import JsonRPCProtocol

    started = time.perf_counter()
    # pytest-lsp's client refuses to send before initialize; the base protocol does not.
    future = JsonRPCProtocol.send_request(client.protocol, "agentls/serverStats", None)
    try:
        await asyncio.wrap_future(future)
    except Exception as exc:
        assert "not initialized" in str(exc), exc
    return time.perf_counter() - started


def vscode_capabilities() -> Any:
    """The client capabilities VS Code sends (pytest-lsp's copy)."""
    from pytest_lsp import client_capabilities

    return client_capabilities("visual-studio-code")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.harness")
    sub = parser.add_subparsers(dest="command", required=True)
    child = sub.add_parser("index", help="index a tree in this process and write figures as JSON")
    child.add_argument("--root", required=True)
    child.add_argument("--cache", required=True)
    child.add_argument("--out", required=True)
    child.add_argument("--lexical", action="store_true")
    args = parser.parse_args(argv)
    return _child_main(args)


if __name__ == "__main__":
    raise SystemExit(main())

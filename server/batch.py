"""Batch runs: many agent tasks from a JSON-lines file, each in its own checkout, sandbox and budget.

`load_tasks` reads ``TASKS.jsonl`` (one task a line: ``kind`` implement|fix|run, ``repo`` and ``commit``,
the target or instruction, an optional budget) into `BatchTask`s, with messages that name the line.
`run_task` is the one function that runs a task, wherever it runs: it clones the repository at the
commit into ``<out>/work/<id>/<attempt>`` (``git clone --shared`` for a local repository, so the
repository itself is never written; an http(s) URL's credentials go to git in its environment, not on
its command line: `_clone_credentials`; git runs through `indexing.git_safety`, the clone allowed the
one transport its URL names; a fresh folder each attempt, so a worker a killed driver left running for a
moment cannot touch its successor's files), reads that checkout's settings (its sensitive ones are
ignored, as a fresh folder is never trusted: `server.settings_trust`; set them in your own file; one no
run can use fails the task at once, with its file and line: `server.settings.run_refusal`), indexes it
lexically into ``<out>/work/<id>/<attempt>.cache`` (unless ``BatchOptions.index`` is off), builds the
`agent.task.Task`, and runs it headless through `agent.runner.start_run` with transcripts under
``<out>/runs``. It returns a `TaskOutcome`: the record (status, tests run and passed, steps, tokens,
cost, transcript path) and the patch text. It never raises: a task that cannot start is a record with
status "failed" and an error saying what to do.

`run_batch` drives a batch on an engine: ``local`` (a process pool; each worker dies with the driver)
or ``ray`` (the same function as Ray tasks, ``ray.init(address=...)``). The driver writes each task's
patch (``<out>/patches/<id>.patch``) and record (``<out>/records/<id>.json``) atomically as the task
ends, then rewrites ``<out>/results.jsonl`` (every record so far, in task order). A record on disk is a
finished task: a second run over the same output folder skips it (``retry_failed`` runs failed ones
again), so a batch killed half-way resumes without redoing finished work. A record keeps the digest of
its task's line (`task_digest`): a task whose line was changed since (its instruction, target, commit,
budget ...) under the same id runs again. A lock on ``<out>/batch.lock``
keeps two drivers off one output folder, so what a driver finds under ``<out>/work/<id>`` for a task it
is about to run is a dead driver's and is removed, before the task and again once it has ended (unless
checkouts are kept).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from agent.credential_fields import mask_url
from agent.scratch import remove_tree

if TYPE_CHECKING:
    from agent.loop import RunResult
    from agent.task import Task
    from agent.verify import VerificationResult
    from indexing.config import IndexSettings

__all__ = [
    "BatchBusy",
    "BatchOptions",
    "BatchSummary",
    "BatchTask",
    "EngineUnavailable",
    "TaskFileError",
    "TaskOutcome",
    "batch_exit_code",
    "load_tasks",
    "run_batch",
    "run_task",
    "save_outcome",
]

log = logging.getLogger(__name__)

TaskKind = Literal["implement", "fix", "run"]
Engine = Literal["local", "ray"]
KINDS: tuple[TaskKind, ...] = ("implement", "fix", "run")

RECORDS = "records"
PATCHES = "patches"
WORK = "work"
RUNS = "runs"
RESULTS = "results.jsonl"

# What travels with each task to the worker (`agent.models.Credentials.from_env` reads it): the keys and
# endpoints the model needs, and agentls' own variables. Not the rest of the driver's environment.
_ENV_PREFIXES = ("ANTHROPIC_", "OPENAI_", "AGENTLS_")
_ENV_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN", "_BASE_URL")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class TaskFileError(ValueError):
    """The tasks file cannot be read; the message names the file, the line and what to change."""


class EngineUnavailable(RuntimeError):
    """The engine cannot run here (Ray not installed, no cluster at the address); the message says why."""


class BatchBusy(RuntimeError):
    """Another `agentls batch` is writing to the same output folder."""


@dataclass(frozen=True)
class BatchTask:
    """One line of the tasks file. Paths in `target` are relative to the repository's root."""

    id: str
    kind: TaskKind
    repo: str
    """A local path (absolute, resolved against the tasks file's folder) or a URL git can clone."""
    commit: str = "HEAD"
    instruction: str = ""
    target: str | None = None
    """implement: ``FILE:LINE`` (required); fix: ``FILE`` or ``FILE:LINE``; run: a file or folder to focus."""
    diagnostics: tuple[Mapping[str, Any], ...] = ()
    """fix: the problems, each ``{message, line, end_line?, severity?, source?, code?}``."""
    max_cost_usd: float | None = None
    max_steps: int | None = None
    max_minutes: float | None = None
    mode: str = "solo"


@dataclass(frozen=True)
class BatchOptions:
    """How every task of a batch runs."""

    max_cost_usd: float | None = None
    """Budget of a task that names none (None: the repository's `agent.max_cost_usd`)."""
    max_steps: int | None = None
    max_minutes: float | None = None
    """Wall-clock minutes of a task that names none (None: the repository's `agent.max_minutes`)."""
    keep_checkouts: bool = False
    """Keep the checkout ``<out>/work/<id>/<attempt>`` after the task (by default it is removed once the
    patch is saved)."""
    index: bool = True
    """Index each checkout before its run (lexical; with the repository's ``index.shared``, only the
    files that differ from the team's base), so the agent's searches read an index; False: its tools
    scan files."""


@dataclass(frozen=True)
class TaskOutcome:
    """What a worker hands back: the task's record (JSON-ready) and its patch (None: no change)."""

    record: Mapping[str, Any]
    patch: str | None
    transcript: str | None = None
    """The transcript's text when the task ran on a Ray node, whose disk the driver may not see: the
    driver writes it under ``<out>/runs``."""


@dataclass
class BatchSummary:
    """How a batch went: the records of every finished task (this run's and earlier ones')."""

    total: int
    skipped: list[str] = field(default_factory=list)
    """Tasks whose record was already there (finished by an earlier run)."""
    changed: list[str] = field(default_factory=list)
    """Tasks with a record made for an earlier version of their line: run again."""
    ran: list[str] = field(default_factory=list)
    records: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.records.values() if r.get("status") == status)


# -- the tasks file ----------------------------------------------------------------------------------


def _digest(value: Any) -> str:
    """sha256 of `value` as canonical JSON (keys sorted), in hex."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _task_id(line: Mapping[str, Any]) -> str:
    """A stable id for a line without one: a hash of its content (reordering lines keeps ids)."""
    return f"task-{_digest(line)[:10]}"


def _parse_line(number: int, raw: Mapping[str, Any], base: Path, where: str) -> BatchTask:
    def fail(message: str) -> TaskFileError:
        return TaskFileError(f"{where} line {number}: {message}")

    kind = raw.get("kind")
    if kind not in KINDS:
        raise fail(f'"kind" must be one of {", ".join(KINDS)} (got {kind!r})')
    repo = raw.get("repo")
    if not isinstance(repo, str) or not repo.strip():
        raise fail('"repo" is missing: the path or URL of the git repository the task runs in')
    if "://" not in repo and not repo.startswith("git@"):
        repo = str((base / repo).expanduser().resolve())
    task_id = raw.get("id", _task_id(raw))
    if not isinstance(task_id, str) or not _ID.match(task_id):
        raise fail(
            f'"id" {task_id!r} must be 1-100 letters, digits, ".", "_" or "-", first a letter or digit'
        )
    budget = raw.get("budget") or {}
    if not isinstance(budget, Mapping):
        raise fail(
            '"budget" must be an object such as {"max_cost_usd": 0.5, "max_steps": 20, "max_minutes": 15}'
        )
    max_cost = budget.get("max_cost_usd", raw.get("max_cost_usd"))
    max_steps = budget.get("max_steps", raw.get("max_steps"))
    max_minutes = budget.get("max_minutes", raw.get("max_minutes"))
    if max_cost is not None and (not isinstance(max_cost, int | float) or max_cost < 0):
        raise fail('"max_cost_usd" must be a number of US dollars, 0 or more')
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise fail('"max_steps" must be a whole number, 1 or more')
    if max_minutes is not None and (
        isinstance(max_minutes, bool) or not isinstance(max_minutes, int | float) or max_minutes < 0
    ):
        raise fail('"max_minutes" must be a number of minutes, 0 or more')
    target = raw.get("target", raw.get("path"))
    if target is not None and not isinstance(target, str):
        raise fail('"target" must be a string: FILE:LINE, FILE or a folder')
    if "line" in raw and target is not None and ":" not in target:
        target = f"{target}:{raw['line']}"
    instruction = raw.get("instruction", "")
    if not isinstance(instruction, str):
        raise fail('"instruction" must be a string')
    diagnostics = raw.get("diagnostics", ())
    if kind == "fix" and not diagnostics and raw.get("message"):
        diagnostics = [{"message": raw["message"]}]
    if not isinstance(diagnostics, list | tuple) or not all(isinstance(d, Mapping) for d in diagnostics):
        raise fail('"diagnostics" must be a list of objects such as {"message": "...", "line": 12}')
    if kind == "implement" and (target is None or not _file_line(target)[1]):
        raise fail('an implement task needs "target": "FILE:LINE", the line of the stub function')
    if kind == "fix" and (target is None or not diagnostics):
        raise fail('a fix task needs "target" (FILE or FILE:LINE) and "diagnostics" (or "message")')
    if kind == "run" and not instruction.strip():
        raise fail('a run task needs "instruction", what the agent should do')
    commit = raw.get("commit", "HEAD")
    if not isinstance(commit, str) or not commit.strip() or commit.startswith("-"):
        raise fail('"commit" must be a commit, tag or branch of the repository')
    return BatchTask(
        id=task_id,
        kind=kind,
        repo=repo,
        commit=commit.strip(),
        instruction=instruction,
        target=target,
        diagnostics=tuple(dict(d) for d in diagnostics),
        max_cost_usd=float(max_cost) if max_cost is not None else None,
        max_steps=max_steps,
        max_minutes=float(max_minutes) if max_minutes is not None else None,
        mode=str(raw.get("mode", "solo")),
    )


def load_tasks(path: Path) -> list[BatchTask]:
    """The tasks of a JSON-lines file (blank lines and lines starting with ``#`` skipped). A file with bad
    lines runs nothing: `TaskFileError` names every bad line at once, so one pass fixes them all."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TaskFileError(f"cannot read the tasks file {path}: {error}") from error
    tasks: list[BatchTask] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            errors.append(f"{path} line {number}: not JSON ({error.msg} at column {error.colno})")
            continue
        if not isinstance(raw, Mapping):
            errors.append(f"{path} line {number}: a task is a JSON object, one per line")
            continue
        try:
            task = _parse_line(number, raw, path.parent, str(path))
        except TaskFileError as error:
            errors.append(str(error))
            continue
        if task.id in seen:
            errors.append(
                f"{path} line {number}: the id {task.id!r} is already used on line {seen[task.id]}; "
                "ids name the records and patches, so each must be unique"
            )
            continue
        seen[task.id] = number
        tasks.append(task)
    if len(errors) > 1:
        raise TaskFileError(
            f"{len(errors)} lines of {path} are not valid tasks; no task ran:\n" + "\n".join(errors)
        )
    if errors:
        raise TaskFileError(errors[0])
    if not tasks:
        raise TaskFileError(f"{path} has no tasks: write one JSON object per line")
    return tasks


def _file_line(target: str) -> tuple[str, int | None]:
    file, sep, line = target.rpartition(":")
    if sep and file and line.strip().isdigit():
        return file, int(line)
    return target, None


def worker_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of the driver's environment each task gets (credentials, endpoints, agentls' variables)."""
    return {k: v for k, v in env.items() if k.startswith(_ENV_PREFIXES) or k.endswith(_ENV_SUFFIXES)}


# -- one task ----------------------------------------------------------------------------------------


def _git(
    *args: str, cwd: Path | None = None, timeout: float = 600, extra_env: Mapping[str, str] | None = None
) -> str:
    """``git ARGS`` through `indexing.git_safety` (no hook, filter, fsmonitor or pager runs; git's variables
    of this process dropped), in the checkout `cwd` when given; `extra_env` on top (the clone's header)."""
    from indexing.git_safety import SAFE_CONFIG, git_env, safe_git_command

    if cwd is not None:
        argv, env = safe_git_command(cwd, args, extra_env)
    else:
        argv, env = ["git", *SAFE_CONFIG, *args], git_env(None, extra_env)
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        command = " ".join(a for a in args if not a.startswith("-") and "=" not in a)[:80]
        raise RuntimeError(f"git {command} failed: {detail[-1] if detail else done.returncode}")
    return done.stdout.strip()


def _transport(repo: str, local: bool) -> str:
    """The one git transport the clone of `repo` may use (git_safety allows none): ``file`` for a local
    repository, the URL's scheme for http(s), ssh, git and file URLs, ``ssh`` for ``user@host:path``;
    anything else (``ext::``) stays refused."""
    if local:
        return "file"
    scheme = repo.split("://", 1)[0].lower() if "://" in repo else ""
    if scheme in ("http", "https", "ssh", "git", "file"):
        return scheme
    return "ssh" if not scheme and "@" in repo.split(":", 1)[0] else "none"


def _checkout(task: BatchTask, dest: Path) -> str:
    """Clone `task.repo` at `task.commit` into `dest` (replacing what a crashed attempt left); its sha."""
    if not remove_tree(dest, "checkout a crashed attempt left"):
        raise RuntimeError(f"cannot remove {dest}, which an earlier attempt left (see the log)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = Path(task.repo).is_dir()
    if local and not (Path(task.repo) / ".git").exists() and not (Path(task.repo) / "HEAD").is_file():
        raise RuntimeError(f"{task.repo} is not a git repository; a batch task runs on a commit of one")
    shown = mask_url(task.repo)  # what errors, which the records keep, say
    # --shared borrows the local repository's objects (nothing copied, nothing written there).
    url, header = _clone_credentials(task.repo, {})
    allow = ("-c", f"protocol.{_transport(task.repo, local)}.allow=always")
    shared = ["--shared"] if local else []
    _git(*allow, "clone", "--quiet", "--no-checkout", *shared, url, str(dest), extra_env=header)
    try:
        sha = _git("rev-parse", "--verify", "--end-of-options", f"{task.commit}^{{commit}}", cwd=dest)
    except RuntimeError as error:
        raise RuntimeError(
            f'{task.commit!r} is not a commit of {shown} ({error}); fix "commit" in the tasks file'
        ) from error
    _git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha, cwd=dest)
    return sha


def _clone_credentials(repo: str, environ: Mapping[str, str]) -> tuple[str, dict[str, str] | None]:
    """The URL to clone `repo` from and git's environment: an http(s) URL's user and password
    (``https://user:TOKEN@host/...``) go out of the URL, which would be on the command lines of git and
    its remote helper (every user of the machine reads them: ``ps``) and in the checkout's ``.git/config``,
    into an ``Authorization`` header for that host only, set in git's environment (``GIT_CONFIG_*``).
    Other repositories: as they are, and None (this process's environment)."""
    try:
        parts = urlsplit(repo)
    except ValueError:
        return repo, None
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return repo, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    basic = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    env = dict(environ)
    count = int(env.get("GIT_CONFIG_COUNT") or 0)
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    env[f"GIT_CONFIG_KEY_{count}"] = f"http.{parts.scheme}://{host}/.extraHeader"
    env[f"GIT_CONFIG_VALUE_{count}"] = f"Authorization: Basic {basic}"
    return urlunsplit(parts._replace(netloc=host)), env


def _build_task(task: BatchTask, root: Path) -> Task:
    from agent.task import Diagnostic
    from agent.task_builders import fix_task, implement_task, run_task

    if task.kind == "run":
        return run_task(task.instruction, path=task.target, root=root)
    assert task.target is not None  # load_tasks checked
    file, line = _file_line(task.target)
    path = root / file
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RuntimeError(f"cannot read {file} at {task.commit}: {error}") from error
    if task.kind == "implement":
        assert line is not None
        return implement_task(root, text, file, line)
    diagnostics = tuple(
        Diagnostic(
            message=str(d.get("message", "")),
            line=int(d.get("line") or line or 1),
            end_line=int(d.get("end_line") or d.get("line") or line or 1),
            severity=d.get("severity", "error"),
            source=str(d.get("source", "")),
            code=str(d.get("code", "")),
        )
        for d in task.diagnostics
    )
    return fix_task(
        file, diagnostics, (line, line) if line else None, text=text, root=root, instruction=task.instruction
    )


_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")


def test_counts(verification: VerificationResult | None) -> tuple[int, int]:
    """(tests run, tests passed) in a verification: pytest's summary counts when it printed them, else
    one per test or doctest command that ran something."""
    if verification is None:
        return 0, 0
    run = passed = 0
    for check in verification.checks:
        if check.kind not in ("tests", "doctest") or check.ran_nothing:
            continue
        counts: dict[str, int] = {}
        for number, word in _PYTEST_COUNT.findall(check.output[-2000:]):
            key = "error" if word.startswith("error") else word
            counts[key] = int(number)
        if counts:
            run += sum(counts.values())
            passed += counts.get("passed", 0)
        else:
            run += 1
            passed += 1 if check.passed else 0
    return run, passed


test_counts.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported by one


def _status(result: RunResult) -> str:
    """The record's status: verified, unverified, unfinished, no_change, failed or cancelled."""
    if result.status in ("failed", "cancelled"):
        return result.status
    if result.status == "budget_exhausted":
        return "unfinished"
    if result.proposal is None:
        return "no_change"
    return "verified" if result.proposal.verified else "unverified"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def task_digest(task: BatchTask) -> str:
    """What a task asks for, as a short digest: a record made for another version of the line is stale."""
    fields = dataclasses.asdict(task)
    if fields["max_minutes"] is None:  # not part of the digest of tasks written before it existed
        del fields["max_minutes"]
    return _digest({k: v for k, v in fields.items() if k != "id"})[:16]


def _base_record(task: BatchTask, engine: str) -> dict[str, Any]:
    return {
        "id": task.id,
        "task_digest": task_digest(task),
        "kind": task.kind,
        "repo": mask_url(task.repo),  # a token in the URL stays out of the records
        "commit": task.commit,
        "target": task.target,
        "engine": engine,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def run_task(
    task: BatchTask, out_dir: str, env: Mapping[str, str], options: BatchOptions, engine: str = "local"
) -> TaskOutcome:
    """Run one task in its own checkout under `out_dir`; never raises (a failure is a "failed" record)."""
    started = time.monotonic()
    out = Path(out_dir)
    checkout = out / WORK / task.id / secrets.token_hex(4)
    record = _base_record(task, engine)
    try:
        record["commit"] = _checkout(task, checkout)
        result = _run_agent(task, checkout, out / RUNS, env, options, record)
    except Exception as error:
        log.warning("batch task %s failed before or around its run: %s", task.id, error)
        record.update(
            status="failed",
            run_status="failed",
            error=f"{error}",
            seconds=round(time.monotonic() - started, 3),
            finished_at=_now(),
        )
        return TaskOutcome(record, None)
    finally:
        if options.keep_checkouts:
            record["checkout"] = str(checkout)
        else:
            remove_tree(checkout, "batch task's checkout")
            remove_tree(_index_cache(checkout), "batch task's index cache")
            with contextlib.suppress(OSError):  # the task's folder, once no other attempt is in it
                checkout.parent.rmdir()
    verification = result.verifications[-1] if result.verifications else None
    tests_run, tests_passed = test_counts(verification)
    proposal = result.proposal
    usage = result.usage
    record.update(
        status=_status(result),
        run_status=result.status,
        run_id=result.run_id,
        title=result.task.title,
        files=list(proposal.paths) if proposal is not None else [],
        verified=bool(proposal is not None and proposal.verified),
        verification=proposal.verification_summary if proposal is not None else "",
        tests_run=tests_run,
        tests_passed=tests_passed,
        steps=result.steps,
        tokens={
            "input": usage.input_tokens,
            "cache_write": usage.cache_creation_input_tokens,
            "cache_read": usage.cache_read_input_tokens,
            "output": usage.output_tokens,
            "total": usage.total_tokens,
        },
        cost=round(result.cost, 6),
        seconds=round(time.monotonic() - started, 3),
        transcript=str(result.transcript_path) if result.transcript_path is not None else None,
        error=result.error,
        summary=result.summary,
        finished_at=_now(),
    )
    patch = proposal.diff if proposal is not None and proposal.diff else None
    transcript = None
    if engine == "ray" and result.transcript_path is not None:
        try:
            transcript = result.transcript_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            log.warning("batch task %s: cannot read its transcript (%s)", task.id, error)
    return TaskOutcome(record, patch, transcript)


def _index_cache(checkout: Path) -> Path:
    """The cache folder of a task's index (and its secret-placeholder key), beside its checkout."""
    return checkout.with_name(checkout.name + ".cache")


def _index_checkout(task: BatchTask, root: Path, settings: IndexSettings, record: dict[str, Any]) -> Any:
    """The checkout's index for the agent's searches, built now (lexical: a batch does not wait for a
    model), or None when it cannot be built (the run then scans files). Its figures go in the record."""
    from indexing.config import EmbeddingSettings
    from indexing.service import WorkspaceIndex

    lexical = settings.model_copy(update={"embedding": EmbeddingSettings(provider="none"), "uri": None})
    started = time.monotonic()
    try:
        index = WorkspaceIndex(root, lexical, cache_dir=_index_cache(root), env={})
        report = index.index()
    except Exception as error:  # retrieval is an aid: the run goes on with file scans
        log.warning(
            "batch task %s: the checkout could not be indexed (%s); its tools scan files", task.id, error
        )
        record["index"] = {"error": str(error)}
        return None
    stats = index.store.stats()  # a resumed task's checkout may have been indexed before it was killed
    record["index"] = {
        "files": stats.files,
        "chunks": stats.chunks,
        "shared": settings.shared,
        "seconds": round(time.monotonic() - started, 3),
        "errors": report.errors,
    }
    return index


def _run_agent(
    task: BatchTask,
    root: Path,
    runs_dir: Path,
    env: Mapping[str, str],
    options: BatchOptions,
    record: dict[str, Any],
) -> RunResult:
    from agent.runner import Credentials, start_run
    from server.settings import load_settings, run_refusal

    loaded = load_settings(root)
    if loaded.unreadable:  # its budget, approval and network settings would be dropped: the task fails
        raise ValueError("; ".join(loaded.unreadable))
    for message in (*loaded.untrusted, *loaded.messages):
        log.warning("batch task %s: %s", task.id, message)
    refusal = run_refusal(root, loaded.settings)  # before the index, which is the task's longest wait
    if refusal is not None:
        raise ValueError(refusal)
    agent = loaded.settings.agent
    update: dict[str, Any] = {}
    max_cost = task.max_cost_usd if task.max_cost_usd is not None else options.max_cost_usd
    max_steps = task.max_steps if task.max_steps is not None else options.max_steps
    max_minutes = task.max_minutes if task.max_minutes is not None else options.max_minutes
    if max_cost is not None:
        update["max_cost_usd"] = max_cost
    if max_steps is not None:
        update["max_steps"] = max_steps
    if max_minutes is not None:
        update["max_minutes"] = max_minutes
    if update:
        agent = agent.model_copy(update=update)
    agent.team.graph(task.mode)  # an unknown mode fails here, naming the graphs there are
    credentials = Credentials.from_env(env, agent.model)
    index = _index_checkout(task, root, loaded.settings.index, record) if options.index else None
    try:
        handle = start_run(
            _build_task(task, root),
            root=root,
            settings=agent,
            credentials=credentials,
            runs_dir=runs_dir,
            mode=task.mode,
            index=index,
            index_settings=loaded.settings.index,
        )
        result = handle.wait()
    finally:
        if index is not None:
            index.close()
    assert result is not None  # wait() with no timeout returns once the run ended
    return result


# -- output folder -----------------------------------------------------------------------------------


def _record_path(out: Path, task_id: str) -> Path:
    return out / RECORDS / f"{task_id}.json"


def finished_records(out: Path, tasks: Sequence[BatchTask]) -> tuple[dict[str, Mapping[str, Any]], list[str]]:
    """The records already on disk for `tasks` (a record is written whole, so one that parses is done),
    and the ids of the tasks whose record is for an earlier version of their line (to run again)."""
    changed: list[str] = []
    found: dict[str, Mapping[str, Any]] = {}
    for task in tasks:
        path = _record_path(out, task.id)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            log.warning("the record %s cannot be read; task %s runs again", path, task.id)
            continue
        if not isinstance(record, Mapping) or record.get("id") != task.id:
            continue
        digest = record.get("task_digest")
        if digest is not None and digest != task_digest(task):  # records before digests: still finished
            changed.append(task.id)
            continue
        found[task.id] = record
    return found, changed


def save_outcome(out: Path, outcome: TaskOutcome) -> Mapping[str, Any]:
    """Write a task's patch, then its record (the record last: it marks the task finished)."""
    from agent.apply import write_atomic

    record = dict(outcome.record)
    task_id = str(record["id"])
    patch_path = out / PATCHES / f"{task_id}.patch"
    if outcome.patch:
        write_atomic(patch_path, outcome.patch, 0o644)
        record["patch"] = str(patch_path.relative_to(out))
    else:
        patch_path.unlink(missing_ok=True)
        record["patch"] = None
    if outcome.transcript is not None and record.get("transcript"):
        copy = out / RUNS / Path(str(record["transcript"])).name  # the node's file, here on the driver
        write_atomic(copy, outcome.transcript, 0o600)
        record["transcript"] = str(copy)
    write_atomic(_record_path(out, task_id), json.dumps(record, indent=1) + "\n", 0o644)
    return record


def _write_results(out: Path, tasks: Sequence[BatchTask], records: Mapping[str, Mapping[str, Any]]) -> None:
    from agent.apply import write_atomic

    lines = [json.dumps(records[t.id], separators=(",", ":")) for t in tasks if t.id in records]
    write_atomic(out / RESULTS, "".join(line + "\n" for line in lines), 0o644)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with (out / "batch.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as busy:
            raise BatchBusy(
                f"another `agentls batch` is writing to {out}; wait for it, or pass another --out"
            ) from busy
        yield


# -- engines -----------------------------------------------------------------------------------------


_PRELOAD = (
    "server.batch",
    "server.settings",
    "agent.runner",
    "agent.loop",
    "agent.task_builders",
    "agent.models.anthropic",
    "agent.sandbox",
    "agent.verify",
    "anthropic",
)
"""What the local engine's fork server imports before it forks workers."""


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def _watch_driver(driver: int) -> None:
    """Pool worker initializer: end the worker within half a second of the driver's death. A worker's
    parent is the fork server, which waits for its workers, and they wait on queues they hold both ends
    of: without this a killed batch would leave them behind, idle or running a task that a resumed
    batch starts again beside them. Sandboxed commands die with the worker (bubblewrap's
    ``--die-with-parent``)."""
    import threading

    def watch() -> None:
        while _alive(driver):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="agentls-batch-driver-watch", daemon=True).start()
    logging.getLogger().setLevel(logging.WARNING)


def _local_engine(
    tasks: Sequence[BatchTask], out: Path, env: Mapping[str, str], options: BatchOptions, jobs: int
) -> Iterator[TaskOutcome]:
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    from indexing.lifeline import forkserver_context

    # Workers fork from a fork server that imported the run's modules once (the anthropic SDK alone takes
    # about a second), instead of each importing them again; the fork server starts single-threaded.
    context = forkserver_context()
    context.set_forkserver_preload(list(_PRELOAD))
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(tasks))),
        mp_context=context,
        initializer=_watch_driver,
        initargs=(os.getpid(),),
    )
    futures: dict[Future[TaskOutcome], BatchTask] = {}
    try:
        futures = {pool.submit(run_task, t, str(out), env, options, "local"): t for t in tasks}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield _outcome_of(futures[future], future.result, "local")
    except BaseException:
        # Interrupted (Ctrl-C, or the caller stopped early): stop the running tasks now; a normal
        # shutdown would let each finish first. Their sandboxed commands die with them.
        workers: dict[int, Any] = dict(getattr(pool, "_processes", None) or {})  # no public way to them
        for worker in workers.values():
            with contextlib.suppress(Exception):
                worker.terminate()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _outcome_of(task: BatchTask, get: Callable[[], TaskOutcome], engine: str) -> TaskOutcome:
    """The worker's outcome, or a "failed" record when the worker itself died (killed, out of memory)."""
    try:
        return get()
    except Exception as error:
        record = _base_record(task, engine)
        record.update(
            status="failed",
            run_status="failed",
            error=f"the worker running the task died: {error!r}; run the batch again to retry it",
            finished_at=_now(),
        )
        return TaskOutcome(record, None)


def _ray_get(ray: Any, ref: Any) -> TaskOutcome:
    outcome: TaskOutcome = ray.get(ref)
    return outcome


def _ray_engine(
    tasks: Sequence[BatchTask], out: Path, env: Mapping[str, str], options: BatchOptions, address: str | None
) -> Iterator[TaskOutcome]:
    from indexing.ray_connect import RayUnavailable, connect

    try:
        ray = connect(address)
    except RayUnavailable as error:
        raise EngineUnavailable(str(error)) from error
    try:
        remote: Any = ray.remote(num_cpus=1, max_retries=1)(run_task)
        refs = {remote.remote(t, str(out), dict(env), options, "ray"): t for t in tasks}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in done:
                    yield _outcome_of(refs[ref], functools.partial(_ray_get, ray, ref), "ray")
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
    finally:
        ray.shutdown()


def _remove_stale_checkouts(out: Path, tasks: Sequence[BatchTask]) -> None:
    """Remove every attempt folder of `tasks` under ``<out>/work``: the caller holds the output folder's
    lock, so they are what killed drivers (and their workers, which may outlive them for a moment) left."""
    for task in tasks:
        folder = out / WORK / task.id
        if folder.exists():
            log.info("batch task %s: removing checkouts an earlier, interrupted batch left", task.id)
            remove_tree(folder, "checkouts an interrupted batch left")


def run_batch(
    tasks: Sequence[BatchTask],
    out: Path,
    env: Mapping[str, str],
    *,
    engine: Engine = "local",
    address: str | None = None,
    jobs: int = 2,
    options: BatchOptions = BatchOptions(),
    retry_failed: bool = False,
    on_record: Callable[[Mapping[str, Any], int, int], object] | None = None,
) -> BatchSummary:
    """Run the tasks that have no record in `out` yet on `engine`; `on_record(record, done, total)` is
    called in the driver as each task ends. Ctrl-C stops the batch (finished tasks keep their records)."""
    started = time.monotonic()
    with _locked(out):
        records, changed = finished_records(out, tasks)
        if retry_failed:
            records = {k: r for k, r in records.items() if r.get("status") != "failed"}
        summary = BatchSummary(total=len(tasks), skipped=list(records), records=records, changed=changed)
        todo = [t for t in tasks if t.id not in records]
        _remove_stale_checkouts(out, todo)
        if todo:
            passed_env = worker_env(env)
            outcomes = (
                _ray_engine(todo, out, passed_env, options, address)
                if engine == "ray"
                else _local_engine(todo, out, passed_env, options, jobs)
            )
            try:
                for outcome in outcomes:
                    record = save_outcome(out, outcome)
                    records[str(record["id"])] = record
                    summary.ran.append(str(record["id"]))
                    _write_results(out, tasks, records)
                    if on_record is not None:
                        on_record(record, len(records), len(tasks))
            except KeyboardInterrupt:
                summary.interrupted = True
            if not options.keep_checkouts:
                _remove_stale_checkouts(out, [t for t in todo if t.id in records])
        _write_results(out, tasks, records)
    summary.seconds = time.monotonic() - started
    return summary


def batch_exit_code(summary: BatchSummary) -> int:
    """130 interrupted; 1 a task failed; 3 a task's change is not verified or unfinished (or a task was
    cancelled); 0 every task verified or with nothing to change."""
    if summary.interrupted:
        return 130
    statuses = {str(r.get("status")) for r in summary.records.values()}
    if "failed" in statuses:
        return 1
    if statuses - {"verified", "no_change"}:
        return 3
    return 0

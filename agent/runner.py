"""Starting an agent run for a workspace on a worker thread: what the CLI and the language server share.

`start_run` builds everything one run needs (the model client of the configured provider, from
`agent.models.load_model` and the `Credentials` the entry point read; an overlay over disk
plus the editor's unsaved buffers, the sandbox, the transcript, the secret-value `Redactor`, which learns
the credentials of the settings and of the provider first: `run_credentials`) and runs `agent.loop.Agent`
on a daemon thread, returning a `RunHandle` at once. The run id is chosen before the thread starts, so a
caller can hand it out immediately (the server answers ``{runId}`` to the command), and the heavy imports
(the `anthropic` SDK takes about a second) happen on the worker thread, never on the caller's.

The agent itself is synchronous; `RunHandle.cancel` sets the event every part of the run watches, so a
cancelled run ends within about a second. `on_event` and `on_done` are called on the worker thread: a
caller with an event loop marshals them back itself (the server uses ``loop.call_soon_threadsafe``).
`on_done` is called exactly once, with the `RunResult`, even when building the run failed (that result
has status "failed" and an actionable `error`: a setting of the user's that stopped it, an
`agent.settings_error.SettingsError`, is named with how to fix it; only an unexpected exception is
called a bug). Such a run has no transcript, unless questions were asked
for it before it started (`asked`, ``agentls acp``'s trust questions): `record_unstarted` then writes the
transcript of the attempt (``run_start``, the ``approval`` records, ``run_end`` "failed" with the error),
so every answer is on record; ``agentls acp`` writes one too for a prompt refused after its questions.

`start_run(..., mode=NAME)` runs a graph instead of the single loop: "solo" (the default) is the loop
above; "team" and the workspace's own graphs (`agent.team.config.TeamSettings.graph`) run
`agent.team.engine.TeamRun`, which drives one agent per role on the same overlay. An unknown mode ends
the run at once as "failed", naming the graphs there are.

`start_run(..., resume=state)` continues a stopped run instead (`agent.resume.RunState`, loaded with
`load_resumable`): the saved files go onto a fresh overlay and the conversation carries on under a new
run id (`agentls runs resume ID`, the server's `agentls.resume`).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.config import AgentSettings
from agent.credential_fields import credential_values
from agent.models import Credentials, MissingCredentials
from agent.settings_error import setting_to_fix
from agent.team.graph import Graph, GraphNotFound
from agent.tools.ask import AskCallback
from agent.transcript import new_run_id
from agent.usage import Usage
from indexing.config import IndexSettings

if TYPE_CHECKING:
    from agent.approval import Asked
    from agent.loop import AgentEvent, RunResult
    from agent.mcp.trust import RunAnswers
    from agent.ports import CodeIndex
    from agent.resume import RunState
    from agent.task import Task
    from indexing.config import IndexSettings
    from indexing.secrets import Redactor

__all__ = [
    "Credentials",
    "MissingCredentials",
    "NotResumable",
    "RunHandle",
    "load_resumable",
    "record_unstarted",
    "run_credentials",
    "start_run",
]

log = logging.getLogger(__name__)


class RunHandle:
    """One run in progress: its id, a way to cancel it, and its result once it ends."""

    def __init__(self, run_id: str, task: Task) -> None:
        self.run_id = run_id
        self.task = task
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self.result: RunResult | None = None
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Ask the run to stop; it ends with status "cancelled" within about a second."""
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """The result, waiting up to `timeout` seconds (None: until the run ends); None if still running."""
        self.done.wait(timeout)
        return self.result


def _as_listener(on_event: Callable[[AgentEvent], object] | None) -> Callable[[AgentEvent], None] | None:
    if on_event is None:
        return None
    listener = on_event

    def call(event: AgentEvent) -> None:
        listener(event)

    return call


def _failed_result(run_id: str, task: Task, error: str, seconds: float) -> RunResult:
    from agent.loop import RunResult

    return RunResult(
        run_id=run_id,
        task=task,
        status="failed",
        summary=f"The run failed: {error}",
        proposal=None,
        usage=Usage(),
        cost=0.0,
        steps=0,
        verifications=(),
        transcript_path=None,
        error=error,
        seconds=seconds,
    )


class NotResumable(Exception):
    """The run cannot be resumed; the message says why and what to do."""


def load_resumable(runs_dir: Path, run_id: str) -> RunState:
    """The saved state of a stopped run (`run_id` or a unique prefix), or `NotResumable` saying why."""
    from agent.resume import StateNotFound, load_state

    try:
        state = load_state(runs_dir, run_id)
    except StateNotFound as missing:
        raise NotResumable(str(missing)) from missing
    if not state.resumable:
        raise NotResumable(
            f"run {state.run_id} finished ({state.status}); there is nothing to resume. Start a new run."
        )
    if state.still_running:
        raise NotResumable(
            f"run {state.run_id} is still going (process {state.pid}); resuming it now would run it twice. "
            "Wait for it to stop, or cancel it first."
        )
    return state


def start_run(
    task: Task,
    *,
    root: Path,
    settings: AgentSettings,
    credentials: Credentials,
    runs_dir: Path,
    buffers: Mapping[str, tuple[str, int]] | None = None,
    index: CodeIndex | None = None,
    open_index: Callable[[], CodeIndex | None] | None = None,
    ask: AskCallback | None = None,
    on_event: Callable[[AgentEvent], object] | None = None,
    on_start: Callable[[str], object] | None = None,
    on_done: Callable[[RunResult], object] | None = None,
    run_id: str | None = None,
    resume: RunState | None = None,
    mode: str = "solo",
    asked: Sequence[Asked] = (),
    mcp_answers: RunAnswers | None = None,
    settings_files: Sequence[str] = (),
    index_settings: IndexSettings | None = None,
) -> RunHandle:
    """Start `task` on a worker thread and return its handle at once.

    `buffers` are the editor's unsaved documents (relative path -> (text, version)): the overlay's base.
    `index` is the workspace index as an `agent.ports.CodeIndex` (or None: the tools scan files);
    `open_index`, when given, is called on the worker thread to get one (building an index can be slow).
    `on_start` receives the title line once the model client exists. `resume`: continue that stopped
    run (its `task` should be `resume.task`); a team run resumes at the node where it stopped, whatever
    `mode` says. `mode`: "solo", "team" or a graph of the workspace's settings. `settings_files`: the files
    the settings were read from, which the message of a run that a setting stops names (`_not_started`).
    `index_settings`: the workspace's index settings (the excludes of the user's, the workspace's and the
    editor's settings merged): the verification leaves out what the index does when it tells which of the
    files its copy lacks matter (None: the index's settings, else the defaults).
    """
    handle = RunHandle(run_id or new_run_id(), task)

    def work() -> None:
        started = time.monotonic()
        result: RunResult | None = None
        model: Any = None
        models: Any = None
        sandbox: Any = None
        secrets: Any = None
        transcript: Any = None
        try:
            from agent.loop import Agent
            from agent.models import load_model
            from agent.models.roles import RoleModels
            from agent.overlay import Overlay
            from agent.redaction import RedactingModel, secret_redactor
            from agent.sandbox import Sandbox
            from agent.transcript import Transcript

            # The sandbox starts commands with fork+exec; the child runs nothing but setrlimit before exec,
            # so LanceDB's warning about forking a process that uses it does not apply.
            warnings.filterwarnings(
                "ignore", message="lancedb fork support is experimental", category=RuntimeWarning
            )
            workspace_index = index if index is not None or open_index is None else open_index()
            model = load_model(settings.model, credentials)
            secrets = secret_redactor(
                runs_dir.parent, allow_values=settings.allow_secret_values, root=root, index=workspace_index
            )
            # The credentials of the settings (an MCP server's token...) and the provider's: a tool output
            # that prints one shows its placeholder to the model and on disk.
            secrets.learn_values(run_credentials(settings, credentials))
            # [agent.roles.NAME.model]: a role's own model (say a cheaper one for explore), same credentials.
            models = RoleModels(
                settings,
                lambda wanted: RedactingModel(load_model(wanted, credentials), secrets),
                RedactingModel(model, secrets),
            )
            graph, team_state = _graph(settings, mode, runs_dir, resume)
            preface = [question.record() for question in asked]
            transcript = Transcript(
                runs_dir, handle.run_id, redact=credentials.secrets, secrets=secrets, preface=preface
            )
            parts: dict[str, Any] = {
                "root": root,
                "overlay": Overlay(root, buffers),
                "sandbox": (sandbox := Sandbox(settings.sandbox)),
                "index": workspace_index,
                "index_settings": index_settings,
                "ask": ask,
                "on_event": _as_listener(on_event),
                "cancel": handle.cancel_event,
                "transcript": transcript,
            }
            if on_start is not None:
                graph_note = "" if graph.solo else f", graph {graph.name}"
                on_start(f"{task.title} (run {handle.run_id}, model {model.model_name}{graph_note})")
            if graph.solo:
                agent = Agent(models("solo"), settings, models=models, mcp_answers=mcp_answers, **parts)
                result = agent.resume(resume) if resume is not None else agent.run(task)
            else:
                from agent.team.engine import TeamRun

                team = TeamRun(models.default, settings, graph, models=models, **parts)
                if mcp_answers is not None:
                    team.mcp_answers = mcp_answers
                saved = (resume, team_state) if resume is not None and team_state is not None else None
                result = team.run(task, resume=saved)
        except BaseException as error:  # Agent.run does not raise; building it may
            said = _not_started(handle.run_id, error, settings_files)
            seconds = time.monotonic() - started
            if transcript is not None and transcript.records_written:  # its run_start is written
                result = _failed_result(handle.run_id, task, said, seconds)
            else:
                result = record_unstarted(
                    runs_dir,
                    handle.run_id,
                    task,
                    root=root,
                    settings=settings,
                    asked=asked,
                    error=said,
                    seconds=seconds,
                    redact=credentials.secrets,
                    secrets=secrets,
                    role="solo" if mode == "solo" else f"team:{mode}",
                )
        finally:
            if models is not None:
                models.close()
            if model is not None:
                model.close()
            if sandbox is not None:
                sandbox.close()  # its network gateway, under network = "registries"
            handle.result = result
            handle.done.set()
        if on_done is not None and result is not None:
            try:
                on_done(result)
            except Exception:
                log.exception("the end of run %s could not be reported", handle.run_id)

    handle.thread = threading.Thread(target=work, name=f"agentls-run-{handle.run_id}", daemon=True)
    handle.thread.start()
    return handle


def _not_started(run_id: str, error: BaseException, settings_files: Sequence[str]) -> str:
    """Why run `run_id` could not be built, in the user's terms: an unknown graph, or a setting of theirs
    (`agent.settings_error.setting_to_fix`: the setting, what is wrong, how and where to fix it); only an
    unexpected exception is called a bug (and logged with its traceback). Called in the ``except``."""
    if isinstance(error, GraphNotFound):
        return str(error)
    setting = setting_to_fix(error, settings_files)
    if setting is not None:
        log.info("agent run %s could not start: %s", run_id, setting)
        return f"the run could not start: {setting}"
    log.exception("agent run %s could not start", run_id)
    return f"the run could not start: {error!r}. This is a bug in agentls; the log has the details."


def record_unstarted(
    runs_dir: Path,
    run_id: str,
    task: Task,
    *,
    root: Path,
    settings: AgentSettings | None,
    asked: Sequence[Asked],
    error: str,
    seconds: float = 0.0,
    redact: Iterable[str] = (),
    secrets: Redactor | None = None,
    role: str = "solo",
    status: Literal["failed", "cancelled"] = "failed",
) -> RunResult:
    """The result of run `run_id`, which failed with `error` before its transcript began, and the questions
    `asked` for it kept on record: the transcript of the attempt, its ``run_start`` (`settings` None: not
    known yet), the ``approval`` records, and a ``run_end`` "failed" with `error` (`agentls runs` lists it
    as failed). Its `transcript_path` is None when nothing was asked (the error reaches the user; there is
    nothing else to keep) or the transcript could not be written (logged: the error is what matters).
    `secrets` None: a `Redactor` of its own withholds the secret values its detectors find (a key pasted
    into the prompt), as a run's transcript does. `status` "cancelled": the attempt was cancelled before
    its run (`error` says how); its ``run_end`` is "cancelled", with `error` in its summary."""
    from agent.recorder import Recorder
    from agent.redaction import secret_redactor
    from agent.transcript import Transcript

    result = _failed_result(run_id, task, error, seconds)
    if status == "cancelled":
        result = replace(result, status=status, summary=f"The run was cancelled: {error}", error=None)
    if not asked:
        return result
    preface = [question.record() for question in asked]
    try:
        if secrets is None:
            allow = settings is not None and settings.allow_secret_values
            secrets = secret_redactor(runs_dir.parent, allow_values=allow, root=root)
        recorder = Recorder(Transcript(runs_dir, run_id, redact=redact, secrets=secrets, preface=preface))
        model = settings.model.model if settings is not None else ""
        recorder.run_start(run_id=run_id, root=root, model=model, task=task, settings=settings, role=role)
        recorder.run_end(
            status=result.status,
            summary=result.summary,
            error=result.error,
            usage=result.usage,
            cost=result.cost,
            steps=result.steps,
            reflections=result.reflections,
            proposal_id=None,
            seconds=result.seconds,
            step_seconds=result.step_seconds,
        )
    except Exception:
        log.exception("the questions asked for run %s could not be recorded", run_id)
        return result
    return replace(result, transcript_path=recorder.path)


def run_credentials(settings: AgentSettings, credentials: Credentials) -> list[str]:
    """The credential values a run is configured with, for its Redactor to learn: those of the settings
    (`agent.credential_fields.credential_values`), the model provider's key or token, and those of its base
    URL (which may come from ANTHROPIC_BASE_URL / OPENAI_BASE_URL rather than the settings)."""
    dump = {**settings.model_dump(mode="json"), "provider_base_url": credentials.base_url}
    return [*credentials.secrets, *credential_values(dump)]


def _graph(settings: AgentSettings, mode: str, runs_dir: Path, resume: RunState | None) -> tuple[Graph, Any]:
    """The graph to run and, when resuming a team run, its checkpoint (`agent.team.checkpoint`)."""
    from agent.team.checkpoint import load_checkpoint

    if resume is not None:
        state = load_checkpoint(runs_dir, resume.run_id)
        if state is not None:
            return state.graph, state
        return settings.team.graph("solo"), None
    return settings.team.graph(mode), None


def index_opener(
    root: Path, index_settings: IndexSettings, *, cache_dir: Path, env: Mapping[str, str]
) -> Callable[[], CodeIndex | None]:
    """A function that opens the workspace's index for searching (not re-indexing: whoever drives the run
    keeps it fresh), for `start_run(open_index=...)`. LanceDB is imported only when it is called, on the
    run's worker thread, so a caller like the language server never loads it on its own thread."""

    def open_index() -> CodeIndex | None:
        from indexing.service import WorkspaceIndex

        try:
            index = WorkspaceIndex(root, index_settings, cache_dir=cache_dir, env=env)
            if index.store.stats().files == 0:
                return None  # not indexed yet (first indexing still running): file scans find more
            return index
        except Exception:  # retrieval is an aid: a run goes on with file scans when the index is unusable
            log.exception("could not open the index of %s; searching files instead", root)
            return None

    return open_index

"""Agent runs in the language server: start, progress, cancel, clarifying questions, accept and reject.

`RunManager` depends on two narrow ports, not on the server class: `Editor` (what it asks of the editor:
notifications, messages, applying an edit, asking a question, opening a document, progress, refreshing
code lenses) and `Workspace` (the folders, open documents, settings, environment and cache it reads).
`server.lsp` implements both over pygls; a test can implement them with plain objects.

- ``agentls.implement/fix/writeTests/edit/ask`` build an `agent.task.Task` (`commands.build_task`) from
  the editor's view (the open buffer's text when the file is open, else disk), start it with
  `agent.runner.start_run` on a worker thread, and answer ``{runId}`` at once. A task that cannot be
  built (no stub there, an empty instruction) is an error answer to the command, with the task's own
  message. A missing API key still answers ``{runId}``, then sends ``agentls/runFailed`` and a
  ``window/showMessage`` error saying how to set one; so does a setting no run can use (a role's model of
  another provider, a base URL that is no URL: `server.settings.run_refusal`), naming its file and line,
  before the index is opened.
- Progress: a cancellable ``$/progress`` per run (plan, steps, tool calls, verification, cost so far).
  Agent events arrive on the worker thread and are marshalled to the event loop with
  ``loop.call_soon_threadsafe``. Cancelling the progress cancels the run, as ``agentls.cancel`` does.
- ``agentls.run {instruction, mode?, uri?, range?}`` starts any run; `mode` "solo" (default), "team" or
  a graph of the workspace's settings (`agent.team`). Team runs' "handoff", "todo" and "role" events go
  to the editor as ``agentls/runEvent {runId, kind, role?, node?, handoff?, document?, markdown?, items?,
  state?}``; any run's "warning" (no project interpreter found: which Python runs the tests, and why; an
  MCP server that could not start: why, and what to do) as
  ``agentls/runEvent {runId, kind: "warning", message, subject}``, a ``window/showMessage`` warning (the
  first time the server sees that warning) and
  the progress line; the planner's questions and the spec confirmation arrive as any clarifying question does,
  and ``agentls/proposal`` of a team run carries ``team: {spec, design, review}``.
- ``agentls.resume {runId}`` continues a stopped run from its saved state (`agent.resume`; also after a
  restart of the server) as a new run, answering its ``{runId}``; a finished run is refused.
- The end of a run:
  - a proposal (status "proposed", or "budget_exhausted" / "failed" with partial work, flagged
    UNFINISHED): ``agentls/proposalReady
    {proposalId, runId, summary, files:[{uri, path, kind}], status}``;
  - no change (status "no_changes", which includes every ``agentls.ask``): ``agentls/proposalReady`` with
    ``files: []`` and the answer as ``summary`` (kept as an empty proposal, so ``agentls/proposal`` works
    for it), plus a ``window/showMessage`` (Info) with the summary;
  - cancelled: ``agentls/runFailed {runId, message, status: "cancelled"}``;
  - failed with no change (API errors, a missing key, no sandbox): ``agentls/runFailed {runId,
    message, status: "failed"}`` and a ``window/showMessage`` error.
- Clarifying questions (``ask_user``) go to the editor with ``window/showMessageRequest``; the options are
  its actions (with no options, one action "Go ahead with your best judgement"). No answer within
  `ask_timeout`, a dismissed question or a cancelled run tells the model to go on without one. A question
  still open when its run ends (the run's time bound, `agent.max_minutes`, withdrew it) is withdrawn from
  the editor too: the request is cancelled with ``$/cancelRequest``.
- ``agentls.accept`` recomputes each file's current text (open buffer, else disk) and settles it with
  `proposals.prepare_changes`: unchanged files get the proposal's edits, edited files the proposal
  rebased onto them, and the whole accept is refused with a message naming the file and lines when a
  rebase does not apply (the proposal stays pending; nothing of the user's is touched). One
  ``workspace/applyEdit`` carries every file, with the open documents' current versions (an editor
  without ``workspace.applyEdit`` is sent none: the server writes the files, or refuses while one of
  them is open in the editor; see `RunManager._apply`). The answer is
  ``{proposalId, applied, failureReason?}``; a proposal the editor did not apply stays pending, and the
  answer's ``failureReason`` says why (with what to do); editors without the agentls plugin are also
  shown it (``proposal X was not applied: ...``, a warning), the plugins say the answer's reason.
- Every accept and reject of a pending proposal is added to its run's transcript, after its ``run_end``
  (`agent.apply.ProposalDecisions`: fsync'd, secret values and the run's credentials withheld; written
  on a worker thread in the order they come, `agent.apply.OrderedWrites`, and on disk before the
  command's answer, so the loop serves other requests meanwhile), as
  ``agentls acp`` adds its answers: an ``approval`` of subject ``proposal`` when the command comes
  (``outcome`` "allowed" with ``files`` and, per hunk, ``hunks`` accepted; "rejected" with the files
  dropped; ``answer``: the command, or the action of the ``showMessageRequest``), then, for an accept,
  a ``proposal_applied`` decision once it is settled: the paths ``written``, or the ``error`` (the
  editor's ``failureReason``, a refused rebase, no answer in time). ``agentls runs`` lists it
  ("proposed, applied", "proposed, rejected", "proposed, allowed, not written").
- Accepting or rejecting twice, or an unknown id, is an error answer (LSP's RequestFailed, -32803) that
  says what happened (`proposals.ProposalStore`).
- A refused accept or commit (a rebase that does not apply, a commit's checks) is the command's error
  answer; editors without the agentls plugin are also shown it (``window/showMessage``), since they may
  ignore a command's answer, while the plugins show the answer once themselves (`RunManager._refuse`).
- Code lenses on each changed hunk of open documents of pending proposals (`lenses.proposal_lenses`);
  ``agentls.showDiff {proposalId, uri?}`` writes the diff to the cache and opens it in the editor, or
  shows it as a message when the editor cannot open documents.
- ``agentls/runs`` lists this server's runs (newest first); past runs' transcripts are ``agentls runs``.
- Editors without the agentls plugin (no ``initializationOptions.agentlsClient: true``,
  `Editor.handles_proposals`): each proposal is also announced with ``window/showMessageRequest``
  (Accept / Reject / Show diff; Show diff opens the diff and asks again; dismissing leaves it pending);
  every open file of a pending proposal offers Accept / Reject / Show diff as code actions (kind
  ``source.agentls.proposal``, for every editor); progress falls back to ``window/showMessage`` and
  ``window/logMessage`` when the editor has no ``window.workDoneProgress`` (`server.lsp.MessageProgress`).
- An accept the editor refuses (its buffer is a version ahead: it sends ``didChange`` after a pause in
  typing) waits up to `SETTLE_TIMEOUT` for that change, rebases onto it and retries (three attempts); if
  none arrives the answer and a warning say to wait a second or save, and accept again. An editor that
  cannot create, rename or delete files through LSP gets the modifications as the edit; once it applied
  them the server writes the created and renamed files and removes deleted ones itself (the user
  accepted; journaled, `agent.apply.apply_changes`, on a worker thread), and says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from agent.apply import OrderedWrites, ProposalDecisions, apply_changes, journal_dir
from agent.overlay import FileChange
from agent.paths import PathRefused, quote_path, resolve_in_workspace
from agent.proposal import Proposal, new_proposal_id
from agent.runner import (
    Credentials,
    MissingCredentials,
    RunHandle,
    index_opener,
    run_credentials,
    start_run,
)
from agent.tools.ask import NoAnswer
from agent.transcript import new_run_id
from agent.usage import Usage
from server.documents import DocumentStore, locate, uri_to_path
from server.edits import NoApplyEdit, UnsupportedEdit
from server.features.progress import WorkDone
from server.features.runs.commands import CommandError, build_task
from server.features.runs.lenses import proposal_lenses
from server.features.runs.proposals import (
    AcceptRefused,
    Pending,
    ProposalError,
    ProposalStore,
    editor_diff,
    file_hunks,
    prepare_changes,
    split_hunks,
)
from server.messages import (
    AcceptResult,
    CancelResult,
    CommitResultMessage,
    DiffShown,
    HunkInfo,
    ProposalDetails,
    ProposalFile,
    ProposalFileDetails,
    ProposalReady,
    RejectResult,
    RunEvent,
    RunFailed,
    RunInfo,
    RunStarted,
)

if TYPE_CHECKING:
    from agent.loop import AgentEvent, RunResult
    from agent.ports import CodeIndex
    from agent.resume import RunState
    from agent.task import Task
    from indexing.config import IndexSettings
    from server.settings import Settings

__all__ = [
    "PROPOSAL",
    "PROPOSAL_READY",
    "RUNS",
    "RUN_FAILED",
    "Editor",
    "Refusal",
    "Run",
    "RunManager",
    "Workspace",
    "request_failed",
]

log = logging.getLogger(__name__)

PROPOSAL_READY = "agentls/proposalReady"
RUN_FAILED = "agentls/runFailed"
PROPOSAL = "agentls/proposal"
RUNS = "agentls/runs"
RUN_EVENT = "agentls/runEvent"
_RUN_EVENT_KINDS = frozenset({"handoff", "todo", "role", "warning"})
ASK_TIMEOUT = 300.0
SETTLE_TIMEOUT = 1.5
"""How long an accept the editor refused waits for the editor's pending ``didChange`` before retrying."""
APPLY_TIMEOUT = 600.0
"""How long an accept waits for the editor's answer to ``workspace/applyEdit`` (a preview the user reads
counts): past it the proposal is pending again, so it can be accepted or rejected."""
_BEST_JUDGEMENT = "Go ahead with your best judgement"
ACCEPT_ACTION = "Accept"
REJECT_ACTION = "Reject"
SHOW_DIFF_ACTION = "Show diff"
PROPOSAL_ACTION_KIND = "source.agentls.proposal"
"""The kind of the Accept / Reject / Show diff code actions on files of a pending proposal."""


def request_failed(message: str) -> JsonRpcException:
    """An error answer for a valid request that could not be done (LSP's RequestFailed)."""
    return JsonRpcException(message, code=types.LSPErrorCodes.RequestFailed.value)


class Refusal(JsonRpcException):
    """A refused accept or commit (`RunManager._refuse`): the command's error answer (RequestFailed).
    `shown`: the user was also shown it with ``window/showMessage`` (an editor without the agentls plugin),
    so whoever catches it must not show it again."""

    def __init__(self, message: str, *, shown: bool) -> None:
        super().__init__(message, code=types.LSPErrorCodes.RequestFailed.value)
        self.shown = shown


class Editor(Protocol):
    """What runs ask of the editor."""

    @property
    def handles_proposals(self) -> bool:
        """True when the editor's agentls plugin handles ``agentls/proposalReady`` and shows a command's
        refusal, or an accept the editor did not apply, from its answer (it sends
        ``initializationOptions.agentlsClient: true``); other editors get each proposal announced with
        ``window/showMessageRequest`` and each refusal or unapplied accept also shown."""

    def notify(self, method: str, params: Any) -> None:
        """Send a notification (params: a reply type of `server.messages`, or JSON)."""

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """Show the user a message."""

    async def apply_edit(
        self, changes: Sequence[FileChange], root: Path, *, label: str, description: str | None
    ) -> types.ApplyWorkspaceEditResult | None:
        """Send one ``workspace/applyEdit`` for these changes; `UnsupportedEdit` when the editor cannot."""

    async def ask(self, question: str, options: Sequence[str]) -> str | None:
        """Ask the user to pick one of `options`; the title picked, None when dismissed."""

    async def show_document(self, uri: str) -> bool:
        """Open a document in the editor; False when the editor cannot open documents."""

    async def start_progress(self, title: str, message: str, on_cancel: Callable[[], None]) -> WorkDone:
        """Begin a cancellable progress (a no-op handle when the editor cannot show one)."""

    def refresh_lenses(self) -> None:
        """Ask the editor to fetch code lenses again, when it can."""


class Workspace(Protocol):
    """What runs read of the server's state."""

    @property
    def roots(self) -> Sequence[Path]:
        """The workspace folders, in the editor's order."""

    @property
    def documents(self) -> DocumentStore:
        """The open buffers."""

    @property
    def env(self) -> Mapping[str, str]:
        """The server's environment (credentials come from it)."""

    @property
    def cache_dir(self) -> Path:
        """Where transcripts and diffs are written."""

    def settings_for(self, root: Path) -> Settings:
        """The settings of a workspace folder."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:
        """Run `coro` in the background; its exception is logged."""


@dataclass
class Run:
    """One run this server started."""

    run_id: str
    title: str
    kind: str
    root: Path | None
    status: str = "running"
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    step: int = 0
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    handle: RunHandle | None = None
    progress: WorkDone | None = None
    proposal_id: str | None = None
    cancel_requested: float | None = None
    flush_scheduled: bool = False


def _on_loop(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any) -> None:
    """Call `callback` on the event loop from a run's thread; nothing once the loop is closed (the
    server has stopped serving: there is no editor left to tell)."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        if not loop.is_closed():
            raise


def _read(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


class RunManager:
    """The runs and proposals of one server; every method but `ask_user` runs on the event loop."""

    def __init__(
        self,
        editor: Editor,
        workspace: Workspace,
        *,
        ask_timeout: float = ASK_TIMEOUT,
        settle_timeout: float = SETTLE_TIMEOUT,
        apply_timeout: float = APPLY_TIMEOUT,
    ) -> None:
        self.editor = editor
        self.workspace = workspace
        self.ask_timeout = ask_timeout
        self.settle_timeout = settle_timeout
        self.apply_timeout = apply_timeout
        self.runs: dict[str, Run] = {}
        self.proposals = ProposalStore()
        self._warned: set[str] = set()  # warnings shown in a pop-up already: once a session each
        # the proposals' records (two fsyncs each), written off the loop in the order they come
        self._records = OrderedWrites()

    # -- helpers -----------------------------------------------------------------------------------

    def _current_text(self, root: Path) -> Callable[[str], str | None]:
        """A file's current text by path relative to `root`: the open buffer, else disk (None: absent)."""
        docs = self.workspace.documents.documents_under(root, self.workspace.roots)

        def current(rel: str) -> str | None:
            doc = docs.get(rel)
            return doc.text if doc is not None else _read(root / rel)

        return current

    def _refuse(self, message: str) -> Refusal:
        """The error answer of a command refused with `message`. An agentls plugin shows the answer
        itself; other editors may ignore a command's answer, so they are also shown it (as an error), and
        the `Refusal` says so."""
        shown = not self.editor.handles_proposals
        if shown:
            self.editor.show(message, types.MessageType.Error)
        return Refusal(message, shown=shown)

    def _text_of(self, path: Path) -> str | None:
        found = locate(path, self.workspace.roots)
        return self._current_text(found[0])(found[1]) if found is not None else _read(path)

    # -- starting runs -------------------------------------------------------------------------------

    def _build_task(self, command: str, args: Any) -> tuple[Task, Path]:
        try:
            return build_task(command, args, list(self.workspace.roots), self._text_of)
        except CommandError as error:
            raise request_failed(str(error)) from None

    async def start(self, command: str, args: Any) -> RunStarted:
        """Start the run a command asks for; ``{runId}`` at once."""
        from agent.team.graph import GraphNotFound

        loop = asyncio.get_running_loop()
        task, root = await loop.run_in_executor(None, self._build_task, command, args)
        mode = getattr(args, "mode", None) or "solo"
        try:
            self.workspace.settings_for(root).agent.team.graph(mode)
        except GraphNotFound as unknown:  # an answer to the command, not a run that fails after its runId
            raise request_failed(str(unknown)) from None
        return self._launch(task, root, mode=mode)

    async def resume(self, run_id: str) -> RunStarted:
        """``agentls.resume``: continue a stopped run from its saved state (`agent.resume`), also one from
        before a restart of the server; ``{runId}`` of the new run at once."""
        from agent.runner import NotResumable, load_resumable

        try:
            state = await asyncio.to_thread(load_resumable, self.workspace.cache_dir / "runs", run_id)
        except NotResumable as error:
            raise request_failed(str(error)) from None
        root = Path(state.root)
        if root not in [Path(folder) for folder in self.workspace.roots]:
            raise request_failed(
                f"run {state.run_id} worked in {root}, which is not a workspace folder of this editor; "
                "open that folder to resume it"
            )
        return self._launch(state.task, root, state)

    def _index_opener(
        self, root: Path, index_settings: IndexSettings, loop: asyncio.AbstractEventLoop
    ) -> Callable[[], CodeIndex | None]:
        """A run reads the index through the server's search process (`SearchProcessIndex`: LanceDB is
        never loaded on the run's thread, so its first model call does not wait for it); a workspace
        without a background indexer opens the index on the run's thread."""
        indexer = getattr(self.workspace, "indexer", None)
        if indexer is None:
            return index_opener(
                root, index_settings, cache_dir=self.workspace.cache_dir, env=self.workspace.env
            )
        index: CodeIndex | None = indexer.code_index(root, loop)
        return lambda: index

    def _launch(
        self, task: Task, root: Path, resume: RunState | None = None, *, mode: str = "solo"
    ) -> RunStarted:
        from server.settings import run_refusal

        loop = asyncio.get_running_loop()
        run = Run(run_id=new_run_id(), title=task.title, kind=task.kind, root=root)
        self.runs[run.run_id] = run
        # A setting no run can use is said with its file and line before the index is opened (or built).
        refusal = run_refusal(root, self.workspace.settings_for(root), env=self.workspace.env)
        if refusal is not None:
            refusal = f"the run could not start: {refusal}"
        try:
            model_settings = self.workspace.settings_for(root).agent.model
            credentials = Credentials.from_env(self.workspace.env, model_settings)
        except MissingCredentials as missing:
            refusal = refusal or str(missing)
        if refusal is not None:
            # Answer {runId} first; the failure follows as a notification like any other failed run.
            loop.call_soon(self._fail_early, run, refusal)
            return RunStarted(run.run_id)
        self.workspace.spawn(self._start_progress(run), "run-progress")
        settings = self.workspace.settings_for(root)
        buffers = self.workspace.documents.buffers(root, self.workspace.roots)
        cache_dir = self.workspace.cache_dir
        run.handle = start_run(
            task,
            root=root,
            settings=settings.agent,
            credentials=credentials,
            runs_dir=cache_dir / "runs",
            buffers=buffers,
            open_index=self._index_opener(root, settings.index, loop),
            index_settings=settings.index,
            ask=self._asker(run, loop),
            on_event=lambda event: _on_loop(loop, self._on_event, run, event),
            on_done=lambda result: _on_loop(loop, self._on_done, run, result),
            run_id=run.run_id,
            resume=resume,
            mode=mode,
        )
        log.info("run %s started: %s", run.run_id, run.title)
        return RunStarted(run.run_id)

    def _fail_early(self, run: Run, message: str) -> None:
        run.status = "failed"
        run.message = message
        self.editor.notify(RUN_FAILED, RunFailed(run.run_id, message, "failed"))
        self.editor.show(message, types.MessageType.Error)

    async def _start_progress(self, run: Run) -> None:
        progress = await self.editor.start_progress(
            f"agentls: {run.title}", "starting", lambda: self._cancel_quietly(run.run_id)
        )
        if run.status != "running":
            progress.end(run.message or run.status)
            return
        run.progress = progress
        if run.message:
            progress.report(self._progress_line(run), force=True)

    def _progress_line(self, run: Run) -> str:
        return f"{run.message} (${run.cost:.4f} so far)" if run.message else f"${run.cost:.4f} so far"

    def _on_event(self, run: Run, event: AgentEvent) -> None:
        run.usage, run.cost, run.step = event.usage, event.cost, max(run.step, event.step)
        kind = event.kind
        if kind in _RUN_EVENT_KINDS:
            self.editor.notify(RUN_EVENT, _run_event(run.run_id, event))
            # also where every editor shows it (once a session: the same Python for every run of a
            # project is no news the second time), and in the progress and the run's events every time
            if kind == "warning":
                if event.message not in self._warned:
                    self._warned.add(event.message)
                    self.editor.show(f"agentls: {event.message}", types.MessageType.Warning)
            elif kind != "role":
                return
        if kind == "plan":
            first = next((ln.strip() for ln in event.message.splitlines() if ln.strip()), "")
            run.message = f"plan: {first[:120]}"
        elif kind == "step":
            run.message = f"step {event.step}"
        elif kind in ("tool_call", "verification", "reflection"):
            run.message = f"step {run.step}: {event.message[:160]}"
        elif kind in ("stage", "role"):
            run.message = event.message[:160]
        elif kind == "warning":
            run.message = f"warning: {event.message[:160]}"
        elif kind != "cost":
            return
        if run.progress is not None:
            force = kind in ("plan", "verification", "reflection", "warning")
            run.progress.report(self._progress_line(run), force=force)
            if not force and not run.flush_scheduled:
                # Reports are throttled; the latest state must still reach the editor (a step that
                # waits long on the model would otherwise show the stage before it).
                run.flush_scheduled = True
                asyncio.get_running_loop().call_later(0.3, self._flush, run)

    def _flush(self, run: Run) -> None:
        run.flush_scheduled = False
        if run.progress is not None and run.status == "running":
            run.progress.report(self._progress_line(run), force=True)

    def _on_done(self, run: Run, result: RunResult) -> None:
        run.status = result.status
        run.usage, run.cost = result.usage, result.cost
        if run.cancel_requested is not None:
            log.info("run %s ended %.2f s after cancel", run.run_id, time.monotonic() - run.cancel_requested)
        proposal = result.proposal
        if proposal is None and result.status == "no_changes":
            proposal = Proposal(
                proposal_id=new_proposal_id(),
                run_id=result.run_id,
                summary=result.summary,
                files=(),
                diff="",
                usage=result.usage,
                cost=result.cost,
                verified=False,
                verification_summary="nothing to verify: the run changed no file",
            )
        if proposal is not None and run.root is not None:
            run.proposal_id = proposal.proposal_id
            self.proposals.add(proposal, run.root, run.kind)
            run.message = f"proposal ready: {len(proposal.files)} file(s)" if proposal.files else "answered"
            if run.progress is not None:
                run.progress.end(f"{run.message} (${run.cost:.4f})")
            files = [ProposalFile((run.root / f.path).as_uri(), f.path, f.kind) for f in proposal.files]
            self.editor.notify(
                PROPOSAL_READY,
                ProposalReady(proposal.proposal_id, run.run_id, proposal.summary, files, result.status),
            )
            if not proposal.files:
                answer = proposal.summary or "agentls: the run changed nothing"
                self.editor.show(answer, types.MessageType.Info)
            else:
                self.editor.refresh_lenses()
                if not getattr(self.editor, "handles_proposals", True):
                    self.workspace.spawn(self._announce(proposal), "proposal-announce")
            return
        message = result.error or result.summary or f"the run ended with status {result.status}"
        run.message = message
        if run.progress is not None:
            run.progress.end(message[:200])
        self.editor.notify(RUN_FAILED, RunFailed(run.run_id, message, result.status))
        if result.status != "cancelled":
            self.editor.show(f"agentls: {run.title} failed: {message}", types.MessageType.Error)

    # -- cancel ----------------------------------------------------------------------------------------

    def cancel_run(self, run_id: str) -> CancelResult:
        """Ask a run to stop; it ends within about a second with ``agentls/runFailed`` (status cancelled)."""
        run = self.runs.get(run_id)
        if run is None:
            raise request_failed(f"there is no run {run_id} in this server; `agentls/runs` lists the runs")
        if run.status == "running" and run.handle is not None:
            run.cancel_requested = time.monotonic()
            run.handle.cancel()
            return CancelResult(run_id, "cancelling")
        return CancelResult(run_id, run.status)

    def _cancel_quietly(self, run_id: str) -> None:
        run = self.runs.get(run_id)
        if run is not None and run.handle is not None and run.status == "running":
            run.cancel_requested = time.monotonic()
            run.handle.cancel()

    def shutdown(self) -> None:
        """Cancel every run still going (the server is shutting down)."""
        for run in self.runs.values():
            if run.status == "running" and run.handle is not None:
                run.handle.cancel()

    def wait_stopped(self, timeout: float) -> None:
        """Wait up to `timeout` seconds in all for cancelled runs to end. Their threads are daemons: at the
        process's exit a run still going is cut off mid-step (its state as of its last saved step is
        still resumable), while one that ended saved its transcript and its state as cancelled."""
        deadline = time.monotonic() + timeout
        for run in list(self.runs.values()):
            if run.handle is not None:
                run.handle.done.wait(max(0.0, deadline - time.monotonic()))

    # -- clarifying questions -----------------------------------------------------------------------

    def _asker(self, run: Run, loop: asyncio.AbstractEventLoop) -> Callable[[str, Sequence[str]], str]:
        def ask(question: str, options: Sequence[str]) -> str:
            # On the worker thread (or the time bound's helper thread, `agent.timebound.bounded_ask`): the
            # question goes out on the event loop; the run waits, watching cancel and the run's end.
            future = asyncio.run_coroutine_threadsafe(self._ask(run, question, list(options)), loop)
            deadline = time.monotonic() + self.ask_timeout
            handle = run.handle
            while True:
                try:
                    return future.result(timeout=0.1)
                except TimeoutError:
                    pass
                if handle is not None and handle.cancel_event.is_set():
                    future.cancel()
                    raise NoAnswer("the run was cancelled")
                if handle is not None and handle.done.is_set():
                    # The run stopped without the answer (its time bound withdrew the question): so is
                    # the editor's question (the editor is sent $/cancelRequest).
                    future.cancel()
                    raise NoAnswer("the run ended before the user answered")
                if time.monotonic() > deadline:
                    future.cancel()
                    raise NoAnswer(f"the user did not answer within {self.ask_timeout:.0f} s")

        return ask

    async def _ask(self, run: Run, question: str, options: list[str]) -> str:
        if run.progress is not None:
            run.progress.report(f"waiting for your answer: {question[:120]}", force=True)
        try:
            answer = await self.editor.ask(f"agentls asks: {question}", options or [_BEST_JUDGEMENT])
        except Exception as error:
            raise NoAnswer(f"the editor could not ask ({error})") from error
        if answer is None:
            raise NoAnswer("the user dismissed the question")
        return answer

    # -- proposals -------------------------------------------------------------------------------------

    def proposal(self, proposal_id: str) -> ProposalDetails:
        """``agentls/proposal``: the summary, the unified diff and per-file diffs."""
        try:
            pending = self.proposals.get(proposal_id)
        except ProposalError as error:
            raise request_failed(str(error)) from None
        p, root = pending.proposal, pending.root
        files = [
            ProposalFileDetails(
                uri=(root / f.path).as_uri(),
                path=f.path,
                kind=f.kind,
                diff=f.diff,
                old_uri=(root / f.old_path).as_uri() if f.old_path is not None else None,
                hunks=[
                    HunkInfo(h.id, h.old_start, h.old_lines, h.new_start, h.new_lines) for h in file_hunks(f)
                ],
                editor_diff=editor_diff(f),
            )
            for f in p.files
        ]
        return ProposalDetails(
            proposal_id=p.proposal_id,
            run_id=p.run_id,
            summary=p.summary,
            diff=p.diff,
            files=files,
            usage=p.usage.as_dict(),
            cost=p.cost,
            verified=p.verified,
            verification_summary=p.verification_summary,
            complete=p.complete,
            status=pending.status,
            team=dict(p.team) if p.team is not None else None,
            commit_message=_commit_message(p),
            roles=[role.payload() for role in p.roles] or None,
        )

    async def accept(
        self, proposal_id: str, hunks: Sequence[str] | None = None, *, how: str = "agentls.accept"
    ) -> AcceptResult:
        """Rebase when needed, send one ``workspace/applyEdit``, report what the editor did.

        `hunks` (ids from ``agentls/proposal``): apply only those; the rest of the proposal stays
        pending (unverified), with its hunks in the answer's ``pendingHunks``. An edit the editor did not
        apply is the answer's ``failureReason``; an editor without the agentls plugin, which may ignore a
        command's answer, is also shown it with a warning (a plugin says the answer's reason itself, and a
        commit's refusal carries it).

        An edit the editor refuses (typically: its buffer is a version ahead because it sends
        ``didChange`` only after a pause in typing) is retried, rebased onto the newer text, once the
        server has received it (waiting up to `settle_timeout` each time). An editor that cannot create,
        rename or delete files through LSP gets the modifications as the edit and, once it applied them,
        the created, renamed and deleted files are written to disk by the server (the user accepted), and
        a message says so."""
        try:
            pending = self.proposals.begin_accept(proposal_id)
        except ProposalError as error:
            raise request_failed(str(error)) from None
        root, proposal = pending.root, pending.proposal
        files: list[FileChange] = list(proposal.files)
        rest: list[FileChange] = []
        if hunks is not None:
            try:
                files, rest = split_hunks(proposal.files, hunks)
            except ProposalError as error:
                self.proposals.finish_accept(proposal_id, applied=False)
                raise request_failed(str(error)) from None
        record = self._decisions(proposal, root)
        accepted = [change.path for change in files]
        more: dict[str, Any] = {"hunks": list(hunks)} if hunks is not None else {}
        try:
            await self._records.submit(
                partial(record.answered, "allowed", how, accepted, question=_question(proposal), **more)
            )
            answer, written, failure = await self._accept(proposal_id, pending, files, rest, hunks)
        except JsonRpcException as refused:
            await self._records.submit(partial(record.applied, [], refused.message))
            raise
        except asyncio.CancelledError:  # the accept request was cancelled: the proposal stays pending
            if self.proposals.status(proposal_id) == "applying":
                self.proposals.finish_accept(proposal_id, applied=False)
            why = "the accept was cancelled before the editor answered: nothing was written"
            self._records.submit(partial(record.applied, [], why))  # written all the same, after the answer
            raise
        await self._records.submit(partial(record.applied, written, failure))
        return answer

    async def _accept(
        self,
        proposal_id: str,
        pending: Pending,
        files: list[FileChange],
        rest: list[FileChange],
        hunks: Sequence[str] | None,
    ) -> tuple[AcceptResult, list[str], str | None]:
        """`accept` once the proposal is "applying": the answer, the paths written, and why not (the
        editor's ``failureReason``, or the server's write of files the editor could not create)."""
        root, proposal = pending.root, pending.proposal
        reason: str | None = None
        on_disk: list[FileChange] = []
        why_disk = ""
        for attempt in range(3):
            versions = self._versions(root)
            try:
                _check_paths(proposal.files, root)  # as `agentls run --apply` does: .git, secrets, odd names
                changes = prepare_changes(files, self._current_text(root))
            except AcceptRefused as refused:
                self.proposals.finish_accept(proposal_id, applied=False)
                raise self._refuse(f"agentls did not apply proposal {proposal_id}: {refused}") from None
            try:
                result, on_disk, why_disk = await asyncio.wait_for(
                    self._apply(changes, root, proposal.summary), self.apply_timeout
                )
            except UnsupportedEdit as unsupported:
                self.proposals.finish_accept(proposal_id, applied=False)
                raise self._refuse(f"agentls did not apply proposal {proposal_id}: {unsupported}") from None
            except TimeoutError:
                # An editor that never answers workspace/applyEdit must not hold the proposal "applying"
                # for good: it could then be neither accepted nor rejected.
                self.proposals.finish_accept(proposal_id, applied=False)
                raise request_failed(
                    f"the editor did not answer workspace/applyEdit for proposal {proposal_id} within "
                    f"{self.apply_timeout:.0f} s; it is pending again (accept or reject it)"
                ) from None
            except Exception as error:
                self.proposals.finish_accept(proposal_id, applied=False)
                raise request_failed(f"the editor did not apply proposal {proposal_id}: {error}") from None
            if result is not None and result.applied:
                break
            reason = (result.failure_reason if result is not None else None) or "the editor declined the edit"
            if attempt == 2 or not await self._newer_versions(root, versions):
                break
            log.info("proposal %s: the editor's text moved on (%s); rebasing, retrying", proposal_id, reason)
        applied = result is not None and result.applied
        failed: list[str] = []
        if applied and on_disk:
            try:
                written = await self._write_files(on_disk, root, proposal)
            except OSError as error:
                failed = [c.path for c in on_disk]
                reason = f"the edit was applied, but writing {', '.join(failed)} failed: {error}"
                self.editor.show(f"agentls: {reason}", types.MessageType.Error)
            else:
                self.editor.show(
                    f"agentls wrote {', '.join(written)} to disk: {why_disk}.", types.MessageType.Info
                )
        written = [change.path for change in files if change.path not in failed] if applied else []
        if applied and hunks is not None:
            self.proposals.finish_partial(proposal_id, rest)
            self.editor.refresh_lenses()
            left = [h.id for change in rest for h in file_hunks(change)]
            return AcceptResult(proposal_id, True, pending_hunks=left), written, reason
        self.proposals.finish_accept(proposal_id, applied=applied)
        if applied:
            self.editor.refresh_lenses()
            return AcceptResult(proposal_id, True), written, reason
        reason = reason or "the editor declined the edit"
        if "version" in reason.lower():
            reason += (
                ". Your editor holds changes it has not sent to agentls yet (it sends them after a pause in "
                "typing); wait a second, or save the file, and accept again. The proposal is still pending."
            )
        if not self.editor.handles_proposals:
            note = f"proposal {proposal_id} was not applied: {reason}"
            self.editor.show(note if note.endswith(".") else f"{note}.", types.MessageType.Warning)
        return AcceptResult(proposal_id, False, reason), [], reason

    async def _write_files(self, changes: Sequence[FileChange], root: Path, proposal: Proposal) -> list[str]:
        """`apply_changes` (journaled, fsync'd) on a worker thread, so the loop serves other requests
        meanwhile. The editor applied its part already and the user accepted: an accept cancelled now
        waits for the writes and answers what they did, as when the loop wrote them itself."""
        writing = asyncio.ensure_future(
            asyncio.to_thread(
                apply_changes,
                changes,
                root,
                journal=journal_dir(self.workspace.cache_dir / "runs"),
                label=f"proposal {proposal.proposal_id}",
                run_id=proposal.run_id,
                proposal_id=proposal.proposal_id,
            )
        )
        while True:
            try:
                return await asyncio.shield(writing)
            except asyncio.CancelledError:
                if writing.cancelled():
                    raise
                log.info(
                    "proposal %s: the accept was cancelled while its files are written", proposal.proposal_id
                )

    async def _apply(
        self, changes: Sequence[FileChange], root: Path, summary: str
    ) -> tuple[types.ApplyWorkspaceEditResult | None, list[FileChange], str]:
        """Send the edit; when the editor cannot create, rename or delete files, send only the
        modifications and return the rest, for the server to write once the editor applied them, with
        why (for the message). When only files to write remain, the editor's part counts as applied.

        An editor that applies no edit at all (no ``workspace.applyEdit``) has every file written by the
        server, unless one of them is open in it: its buffer would then differ from the file, so the
        accept is refused with what to do."""
        label = f"agentls: {_first_line(summary)}"
        description = _first_line(summary) or None
        try:
            edited = await self.editor.apply_edit(changes, root, label=label, description=description)
            return edited, [], ""
        except NoApplyEdit as cannot:
            docs = self.workspace.documents.documents_under(root, self.workspace.roots)
            held = sorted({p for c in changes for p in (c.path, c.old_path) if p is not None and p in docs})
            if held:
                raise UnsupportedEdit(
                    f"{cannot}, and agentls does not write files you have open in it ({', '.join(held)}): "
                    "close them and accept again, and agentls writes the changes to disk itself"
                ) from None
            return types.ApplyWorkspaceEditResult(applied=True), list(changes), str(cannot)
        except UnsupportedEdit:
            modified = [c for c in changes if c.kind == "modified"]
            rest = [c for c in changes if c.kind != "modified"]
            if not rest:
                raise
        why = (
            "your editor cannot create, rename or delete files through LSP. Reload them from disk if they "
            "are open"
        )
        if not modified:
            return types.ApplyWorkspaceEditResult(applied=True), rest, why
        edited = await self.editor.apply_edit(modified, root, label=label, description=description)
        return edited, rest, why

    def _versions(self, root: Path) -> dict[str, int]:
        docs = self.workspace.documents.documents_under(root, self.workspace.roots)
        return {rel: doc.version for rel, doc in docs.items()}

    async def _newer_versions(self, root: Path, before: Mapping[str, int]) -> bool:
        """Wait up to `settle_timeout` for a ``didChange`` of an open document; True when one came."""
        if not before:
            return False  # no open document: nothing the editor could still be sending
        deadline = time.monotonic() + self.settle_timeout
        while True:
            now = self._versions(root)
            if any(now.get(rel, version) != version for rel, version in before.items()):
                await asyncio.sleep(0.05)  # a burst of changes: take the last one
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)

    async def _announce(self, proposal: Proposal) -> None:
        """For editors without the agentls plugin: Accept / Reject / Show diff as ``showMessageRequest``."""
        proposal_id = proposal.proposal_id
        paths = proposal.paths
        files = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
        message = f"agentls proposes changes to {files}: {_first_line(proposal.summary)}"
        while True:
            try:
                answer = await self.editor.ask(message, [ACCEPT_ACTION, REJECT_ACTION, SHOW_DIFF_ACTION])
            except Exception as error:
                log.info("the editor could not show the proposal's question: %s", error)
                return
            try:
                if self.proposals.status(proposal_id) != "pending":
                    return  # settled meanwhile (a code action, a command)
                if answer == ACCEPT_ACTION:
                    await self.accept(proposal_id, how=f"{ACCEPT_ACTION} (window/showMessageRequest)")
                elif answer == REJECT_ACTION:
                    await self.reject(proposal_id, how=f"{REJECT_ACTION} (window/showMessageRequest)")
                    self.editor.show(f"agentls: proposal {proposal_id} rejected; nothing was written")
                elif answer == SHOW_DIFF_ACTION:
                    await self.show_diff(proposal_id, None)
                    continue
                else:
                    self.editor.show(
                        f"agentls: proposal {proposal_id} is still pending: accept or reject it with the "
                        "code actions on its files (or the agentls.accept / agentls.reject commands)"
                    )
            except JsonRpcException as error:
                log.info("proposal %s: %s", proposal_id, error)
                if not (isinstance(error, Refusal) and error.shown):
                    self.editor.show(f"agentls: {error.message}", types.MessageType.Error)
            return

    def proposal_actions(self, uri: str) -> list[types.CodeAction]:
        """Accept, Reject and Show diff of each pending proposal that changes this document."""
        doc = self.workspace.documents.get(uri)
        path = doc.path if doc is not None else uri_to_path(uri)
        if path is None:
            return []
        found = locate(path, self.workspace.roots)
        if found is None:
            return []
        root, rel = found
        out: list[types.CodeAction] = []
        for pending in self.proposals.pending():
            if pending.root != root or rel not in pending.proposal.paths:
                continue
            pid = pending.proposal.proposal_id
            what = _first_line(pending.proposal.summary)[:60] or pid
            for title, command in (
                (f"Accept agentls proposal: {what}", "agentls.accept"),
                (f"Reject agentls proposal: {what}", "agentls.reject"),
                (f"Show the diff of agentls proposal: {what}", "agentls.showDiff"),
            ):
                out.append(
                    types.CodeAction(
                        title=title,
                        kind=PROPOSAL_ACTION_KIND,
                        command=types.Command(title=title, command=command, arguments=[{"proposalId": pid}]),
                    )
                )
        return out

    async def accept_and_commit(
        self, proposal_id: str, message: str | None = None, hunks: Sequence[str] | None = None
    ) -> CommitResultMessage:
        """``agentls.acceptAndCommit``: `agent.commit.commit_proposal` on the current branch, whose
        checks run first (a touched file with uncommitted changes refuses it, nothing applied), then the
        editor applies the edit as for ``agentls.accept``, then the branch moves. `message` is the
        user's edit of the proposal's commit message (None: the proposal's own); `hunks` commits only
        those hunks (as ``agentls.accept {hunks}`` applies them; the rest stays pending)."""
        from agent.commit import CommitRefused, commit_proposal
        from agent.vcs import GitError

        try:
            pending = self.proposals.get(proposal_id)
        except ProposalError as error:
            raise request_failed(str(error)) from None
        root, proposal = pending.root, pending.proposal
        text = (message or "").strip() or _commit_message(proposal)
        files: Sequence[FileChange] = proposal.files
        if hunks is not None:
            try:
                files = split_hunks(proposal.files, hunks)[0]
            except ProposalError as error:
                raise request_failed(str(error)) from None
        loop = asyncio.get_running_loop()

        # An agentls plugin is not shown the accept's "not applied" (`accept`): the commit's refusal, which
        # it shows, says why the edit was not applied.
        def apply() -> list[str]:
            accepting = self.accept(proposal_id, hunks, how="agentls.acceptAndCommit")
            accepted = asyncio.run_coroutine_threadsafe(accepting, loop).result()
            if not accepted.applied:
                raise CommitRefused(f"the editor did not apply the change ({accepted.failure_reason})")
            return [change.path for change in files]

        try:
            done = await asyncio.to_thread(commit_proposal, files, root, message=text, apply=apply)
        except (CommitRefused, GitError) as error:
            raise self._refuse(f"agentls did not commit proposal {proposal_id}: {error}") from None
        self.editor.show(
            f"agentls committed {done.commit[:12]} on {done.branch}: {text.splitlines()[0]} "
            "(save the changed files so the working tree matches the commit)",
            types.MessageType.Info,
        )
        return CommitResultMessage(proposal_id, True, done.commit, done.branch, text)

    async def reverify(self, proposal_id: str) -> ProposalDetails:
        """``agentls.reverify``: verify what is left of a pending proposal (after a partial accept) on the
        files as they are now (open buffers, else disk) in the sandbox, as the run's verification does;
        the proposal's ``verified`` and ``verificationSummary`` are updated and its details returned."""
        try:
            pending = self.proposals.get(proposal_id)
        except ProposalError as error:
            raise request_failed(str(error)) from None
        if pending.status != "pending":
            raise request_failed(
                f"proposal {proposal_id} is {pending.status}; only a pending one is verified"
            )
        root = pending.root
        try:
            changes = prepare_changes(pending.proposal.files, self._current_text(root))
        except AcceptRefused as refused:
            raise request_failed(f"agentls cannot verify proposal {proposal_id}: {refused}") from None
        settings = self.workspace.settings_for(root)
        buffers = self.workspace.documents.buffers(root, self.workspace.roots)
        result = await asyncio.to_thread(_verify, root, buffers, changes, settings)
        if self.proposals.status(proposal_id) == "pending":
            pending.proposal = dataclasses.replace(
                pending.proposal, verified=result.passed, verification_summary=result.summary()
            )
        return self.proposal(proposal_id)

    async def reject(self, proposal_id: str, *, how: str = "agentls.reject") -> RejectResult:
        """Drop a pending proposal and its code lenses; nothing is written. The answer goes into the
        run's transcript (`how`: the command or the action chosen) before the command is answered."""
        try:
            pending = self.proposals.get(proposal_id)
            self.proposals.reject(proposal_id)
        except ProposalError as error:
            raise request_failed(str(error)) from None
        proposal = pending.proposal
        self.editor.refresh_lenses()
        record = self._decisions(proposal, pending.root)
        await self._records.submit(
            partial(record.answered, "rejected", how, proposal.paths, question=_question(proposal))
        )
        return RejectResult(proposal_id)

    def _decisions(self, proposal: Proposal, root: Path) -> ProposalDecisions:
        """Where the user's answer to `proposal` and what came of it are recorded: its run's transcript
        (`agent.apply.ProposalDecisions`), the run's credentials withheld."""
        settings = self.workspace.settings_for(root).agent
        try:
            secrets = run_credentials(settings, Credentials.from_env(self.workspace.env, settings.model))
        except MissingCredentials:
            secrets = []
        runs = self.workspace.cache_dir / "runs"
        return ProposalDecisions(runs, proposal.run_id, proposal.proposal_id, root=root, redact=secrets)

    def list_runs(self) -> list[RunInfo]:
        """``agentls/runs``: this server's runs, newest first."""
        return [
            RunInfo(
                run_id=r.run_id,
                task=r.title,
                kind=r.kind,
                status=r.status,
                usage=r.usage.as_dict(),
                cost=r.cost,
                proposal_id=r.proposal_id,
                message=r.message,
            )
            for r in sorted(self.runs.values(), key=lambda r: r.started, reverse=True)
        ]

    # -- code lenses and the diff ------------------------------------------------------------------

    def code_lenses(self, uri: str) -> list[types.CodeLens]:
        """Accept, Reject and Show diff at each hunk of a pending proposal in this open document."""
        doc = self.workspace.documents.get(uri)
        if doc is None or doc.path is None:
            return []
        found = locate(doc.path, self.workspace.roots)
        if found is None:
            return []
        root, rel = found
        return proposal_lenses(uri, doc.text, root, rel, self.proposals.pending())

    async def show_diff(self, proposal_id: str, uri: str | None) -> DiffShown:
        """Write the proposal's diff (or one file's) to the cache and open it in the editor."""
        try:
            pending = self.proposals.get(proposal_id)
        except ProposalError as error:
            raise request_failed(str(error)) from None
        proposal = pending.proposal
        diff = proposal.diff
        if uri is not None:
            path = uri_to_path(uri)
            for f in proposal.files:
                paths = (pending.root / f.path, pending.root / (f.old_path or f.path))
                if path is not None and path in paths:
                    diff = f.diff
        target = self.workspace.cache_dir / "proposals" / f"{proposal_id}.diff"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(diff, encoding="utf-8")
        try:
            opened = await self.editor.show_document(target.as_uri())
        except Exception as error:
            log.info("the editor could not open the diff: %s", error)
            opened = True  # it can open documents; this one failed, and the log says why
        if not opened:
            self.editor.show(diff[:4000] or "(empty diff)", types.MessageType.Info)
        return DiffShown(target.as_uri(), diff)


def _commit_message(proposal: Proposal) -> str:
    """The proposal's commit message (`agent.commit.commit_message`)."""
    from agent.commit import commit_message

    return commit_message(proposal.summary, proposal.verification_summary, proposal.paths)


def _question(proposal: Proposal) -> str:
    """What accepting or rejecting `proposal` answers, for its transcript's ``approval`` record."""
    return f"Accept or reject agentls proposal {proposal.proposal_id}: {_first_line(proposal.summary)}"


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:120]


def _verify(root: Path, buffers: Any, changes: Sequence[FileChange], settings: Any) -> Any:
    """Verify `changes` on an overlay of the workspace (`agent.verify.Verifier`, in the sandbox), with the
    folder's `settings` (its agent's, and its index's, which say which files the copy lacks matter)."""
    from agent.overlay import Overlay
    from agent.sandbox import Sandbox
    from agent.verify import Verifier

    overlay = Overlay(root, buffers)
    for change in changes:
        if change.kind == "deleted":
            overlay.delete(change.path)
        elif change.kind == "renamed" and change.old_path is not None:
            overlay.rename(change.old_path, change.path)
            overlay.write(change.path, change.new_text)
        elif change.kind == "created":
            overlay.create(change.path, change.new_text)
        else:
            overlay.write(change.path, change.new_text)
    agent = settings.agent
    sandbox = Sandbox(agent.sandbox)
    try:
        verifier = Verifier(overlay, sandbox, agent, index_settings=settings.index)
        return verifier.verify(overlay.changes(), trigger="reverify")
    finally:
        sandbox.close()


def _run_event(run_id: str, event: AgentEvent) -> RunEvent:
    """The ``agentls/runEvent`` params of a team event or a warning (the fields its kind has)."""
    data = event.data

    def text(name: str) -> str | None:
        value = data.get(name)
        return None if value is None else str(value)

    document = data.get("document")
    items = data.get("items")
    return RunEvent(
        run_id=run_id,
        kind=event.kind,
        role=text("role"),
        node=text("node"),
        handoff=text("handoff"),
        document=dict(document) if isinstance(document, Mapping) else None,
        markdown=text("markdown"),
        items=[dict(item) if isinstance(item, Mapping) else item for item in items] if items else None,
        state=text("state"),
        message=event.message if event.kind == "warning" else None,
        subject=text("subject"),
    )


def _check_paths(files: Sequence[FileChange], root: Path) -> None:
    """`AcceptRefused` when a proposal names a path the agent may not write (`agent.paths`)."""
    for change in files:
        for target in (change.path, change.old_path):
            if target is None:
                continue
            try:
                rel = resolve_in_workspace(root, target)
            except PathRefused as error:
                raise AcceptRefused(f"{quote_path(target)} is refused: {error}") from None
            if rel != target:
                raise AcceptRefused(f"{quote_path(target)} is not a normalized workspace path")

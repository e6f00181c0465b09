"""Agent runs in the language server: start, progress, cancel, clarifying questions, proposals, accept/reject.

The contract (design.md, server/) and the choices made where it is silent:

- ``agentls.implement/fix/writeTests/edit/ask`` build an `agent.task.Task` from the editor's view (the open
  buffer's text when the file is open, else disk), start it with `agent.runner.start_run` on a worker
  thread, and answer ``{runId}`` at once. A task that cannot be built (`TaskError`: no stub there, an empty
  instruction) is an error answer to the command, with the task's own message. A missing API key still
  answers ``{runId}``, then sends ``agentls/runFailed`` and a ``window/showMessage`` error saying how to
  set one.
- Progress: a cancellable ``$/progress`` per run (plan, steps, tool calls, verification, cost so far).
  Agent events arrive on the worker thread and are marshalled to the event loop with
  ``loop.call_soon_threadsafe``. Cancelling the progress cancels the run, as ``agentls.cancel`` does.
- The end of a run:
  - a proposal (status "proposed", or "budget_exhausted" with partial work): ``agentls/proposalReady
    {proposalId, runId, summary, files:[{uri, path, kind}]}``;
  - no change (status "no_changes", which includes every ``agentls.ask``): ``agentls/proposalReady`` with
    ``files: []`` and the answer as ``summary`` (kept as an empty proposal, so ``agentls/proposal`` works
    for it), plus a ``window/showMessage`` (Info) with the summary;
  - cancelled: ``agentls/runFailed {runId, message, status: "cancelled"}``;
  - failed (API errors, a missing key, no sandbox): ``agentls/runFailed {runId, message, status:
    "failed"}`` and a ``window/showMessage`` error.
- Clarifying questions (``ask_user``) go to the editor with ``window/showMessageRequest``; the options are
  its actions (with no options, one action "Go ahead with your best judgement"). No answer within
  `ask_timeout`, a dismissed question or a cancelled run tells the model to go on without one.
- ``agentls.accept`` recomputes each file's current text (open buffer, else disk) and compares it with the
  proposal's base: equal, the edits go from the base to the proposal; different, the proposal is rebased
  (`agent.merge.rebase`) onto the current text when it applies cleanly, and the whole accept is refused
  with a message naming the file and lines when it does not (the proposal stays pending; nothing of the
  user's is touched). One ``workspace/applyEdit`` carries every file, with the open documents' current
  versions. The answer is ``{proposalId, applied, failureReason?}``; a proposal the editor did not apply
  stays pending.
- Accepting or rejecting twice, or an unknown id, is an error answer (-32803) that says what happened.
- Code lenses on each changed hunk of open documents of pending proposals: "Accept", "Reject" and "Show
  diff" (``agentls.showDiff {proposalId, uri?}``, which writes the diff to the cache and opens it with
  ``window/showDocument``, or shows it as a message when the editor cannot open documents).
- ``agentls/runs`` lists this server's runs (newest first); past runs' transcripts are ``agentls runs``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from agent.merge import rebase
from agent.overlay import FileChange
from agent.proposal import Proposal, new_proposal_id
from agent.runner import Credentials, MissingCredentials, RunHandle, index_opener, start_run
from agent.tools.ask import NoAnswer
from agent.transcript import new_run_id
from agent.usage import Usage
from server.documents import locate, uri_to_path
from server.edits import EditSupport, UnsupportedEdit, workspace_edit
from server.features import commands
from server.features.progress import WorkDone

if TYPE_CHECKING:
    from agent.config import AgentSettings
    from agent.loop import AgentEvent, RunResult
    from agent.task import Task
    from server.lsp import AgentlsServer
    from server.settings import Settings

__all__ = [
    "PROPOSAL",
    "PROPOSAL_READY",
    "REQUEST_FAILED",
    "RUNS",
    "RUN_FAILED",
    "AcceptRefused",
    "RunManager",
    "prepare_changes",
    "proposal_hunks",
]

log = logging.getLogger(__name__)

PROPOSAL_READY = "agentls/proposalReady"
RUN_FAILED = "agentls/runFailed"
PROPOSAL = "agentls/proposal"
RUNS = "agentls/runs"
REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid, but it could not be done
ASK_TIMEOUT = 300.0
_BEST_JUDGEMENT = "Go ahead with your best judgement"
_SEVERITIES = {1: "error", 2: "warning", 3: "information", 4: "hint"}

ProposalStatus = Literal["pending", "applying", "accepted", "rejected", "empty"]


class AcceptRefused(Exception):
    """The proposal cannot be applied on top of the current text; the message names files and lines."""


def _failed(message: str) -> JsonRpcException:
    return JsonRpcException(message, code=REQUEST_FAILED)


# --------------------------------------------------------------------------------------------------
# Pure parts: rebasing a proposal onto the current text, hunks for code lenses


def prepare_changes(changes: Sequence[FileChange], current: Callable[[str], str | None]) -> list[FileChange]:
    """The changes to apply now: each file's edit from its current text (`current(rel)`, None: absent).

    A file whose text still equals the proposal's base keeps its change; a file the user edited since the
    run began gets the proposal rebased onto the edit. Raises `AcceptRefused` (naming every file that
    cannot be settled, and its lines) when any change does not apply; then nothing must be applied.
    """
    out: list[FileChange] = []
    problems: list[str] = []
    for change in changes:
        if change.kind == "created":
            now = current(change.path)
            if now is None:
                out.append(change)
            elif now != change.new_text:
                problems.append(f"{change.path} was created since the run began; the proposal creates it too")
            continue
        source = change.old_path if change.kind == "renamed" and change.old_path else change.path
        now = current(source)
        if now is None:
            if change.kind != "deleted":
                problems.append(f"{source} no longer exists; the proposal changes it")
            continue
        if change.kind == "renamed" and change.path != source and current(change.path) is not None:
            problems.append(f"{change.path} exists now; the proposal renames {source} to it")
            continue
        if now == change.base_text:
            out.append(change)
            continue
        if change.kind == "deleted":
            problems.append(f"you changed {source} since the run began, and the proposal deletes it")
            continue
        merged = rebase(change.base_text, now, change.new_text)
        if not merged.ok or merged.text is None:
            problems.append(f"{source}: {merged.message}")
            continue
        out.append(dataclasses.replace(change, base_text=now, new_text=merged.text))
    if problems:
        raise AcceptRefused("; ".join(problems))
    return out


def proposal_hunks(current: str, change: FileChange) -> list[int]:
    """Zero-based lines of `current` (the open buffer) where the proposal's hunks of this file start."""
    base, new = change.base_text, change.new_text
    if current != base:
        merged = rebase(base, current, new)
        if merged.ok and merged.text is not None:
            base, new = current, merged.text
    old_lines = base.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, old_lines, new.splitlines(keepends=True), autojunk=False)
    last = max(0, len(current.splitlines()) - 1)
    starts = [min(i1, last) for tag, i1, _i2, _j1, _j2 in matcher.get_opcodes() if tag != "equal"]
    return sorted(set(starts))


# --------------------------------------------------------------------------------------------------
# State


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


@dataclass
class Pending:
    """A proposal and what became of it."""

    proposal: Proposal
    root: Path
    kind: str
    status: ProposalStatus = "pending"


def _usage_json(usage: Usage) -> dict[str, int]:
    return usage.as_dict()


# --------------------------------------------------------------------------------------------------
# The manager


class RunManager:
    """The runs and proposals of one server; every method but `ask_user` runs on the event loop."""

    def __init__(self, server: AgentlsServer, *, ask_timeout: float = ASK_TIMEOUT) -> None:
        self.server = server
        self.ask_timeout = ask_timeout
        self.runs: dict[str, Run] = {}
        self.proposals: dict[str, Pending] = {}

    # -- helpers -----------------------------------------------------------------------------------

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self.server.loop
        if loop is None:
            loop = asyncio.get_running_loop()
        return loop

    def _notify(self, method: str, params: Mapping[str, Any]) -> None:
        self.server.protocol.notify(method, dict(params))

    def _root_settings(self, root: Path) -> Settings:
        return self.server.settings.get(root) or self.server.global_settings

    def _agent_settings(self, root: Path) -> AgentSettings:
        return self._root_settings(root).agent

    def _text_of(self, path: Path) -> str | None:
        doc = self.server.documents.get(path.as_uri())
        if doc is not None:
            return doc.text
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _current_text(self, root: Path) -> Callable[[str], str | None]:
        docs = self.server.documents.documents_under(root, self.server.roots)

        def current(rel: str) -> str | None:
            doc = docs.get(rel)
            if doc is not None:
                return doc.text
            path = root / rel
            if not path.is_file():
                return None
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return None

        return current

    def _refresh_lenses(self) -> None:
        caps = self.server.client_capabilities
        ws = caps.workspace if caps is not None else None
        lens = ws.code_lens if ws is not None else None
        if lens is not None and lens.refresh_support:
            self.server.spawn(self._refresh_async(), "codelens-refresh")

    async def _refresh_async(self) -> None:
        try:
            await asyncio.wait_for(self.server.workspace_code_lens_refresh_async(None), 10)
        except Exception as exc:
            log.info("the editor did not refresh code lenses: %s", exc)

    # -- starting runs -------------------------------------------------------------------------------

    def _locate(self, uri: str) -> tuple[Path, str, Path]:
        path = uri_to_path(uri)
        if path is None:
            raise _failed(f"{uri} is not a file: agentls works on files inside a workspace folder")
        found = locate(path, self.server.roots)
        if found is None:
            raise _failed(
                f"{path} is not inside a workspace folder of this editor; open its folder (or project) first"
            )
        return found[0], found[1], path

    def _build_task(self, command: str, args: Any) -> tuple[Task, Path]:
        """The task a command asks for (runs in a thread: it parses the file with tree-sitter)."""
        from agent.task import Diagnostic, TaskError
        from agent.task_builders import ask_task, edit_task, fix_task, implement_task, tests_task

        try:
            if isinstance(args, commands.AskArgs):
                if args.uri is None:
                    if not self.server.roots:
                        raise _failed("agentls.ask needs a workspace folder; open a folder first")
                    root = self.server.roots[0]
                    return ask_task(args.question, root=root), root
                root, rel, path = self._locate(args.uri)
                lines = _lines(args.range) if args.range is not None else None
                return ask_task(args.question, rel, lines, text=self._text_of(path), root=root), root
            root, rel, path = self._locate(args.uri)
            text = self._text_of(path)
            if text is None:
                raise _failed(f"cannot read {path}: it does not exist or is not UTF-8 text")
            if isinstance(args, commands.WriteTestsArgs):
                return tests_task(text, rel, args.position.line + 1, root=root), root
            if isinstance(args, commands.ImplementArgs):
                return implement_task(root, text, rel, args.position.line + 1), root
            if isinstance(args, commands.FixArgs):
                diagnostics = [_diagnostic(d, Diagnostic) for d in args.diagnostics]
                return fix_task(rel, diagnostics, _lines(args.range), text=text, root=root), root
            if isinstance(args, commands.EditArgs):
                return edit_task(rel, _lines(args.range), args.instruction, text=text, root=root), root
        except TaskError as error:
            raise _failed(str(error)) from None
        raise _failed(f"{command} does not start a run")

    async def start(self, command: str, args: Any) -> dict[str, Any]:
        """Start the run a command asks for; ``{runId}`` at once."""
        loop = asyncio.get_running_loop()
        task, root = await loop.run_in_executor(None, self._build_task, command, args)
        run = Run(run_id=new_run_id(), title=task.title, kind=task.kind, root=root)
        self.runs[run.run_id] = run
        try:
            credentials = Credentials.from_env(self.server.env)
        except MissingCredentials as missing:
            # Answer {runId} first; the failure follows as a notification like any other failed run.
            loop.call_soon(self._fail_early, run, str(missing))
            return {"runId": run.run_id}
        self.server.spawn(self._start_progress(run), "run-progress")
        buffers = self.server.documents.buffers(root, self.server.roots)
        run.handle = start_run(
            task,
            root=root,
            settings=self._agent_settings(root),
            credentials=credentials,
            runs_dir=self.server.cache_dir / "runs",
            buffers=buffers,
            open_index=index_opener(
                root, self._root_settings(root).index, cache_dir=self.server.cache_dir, env=self.server.env
            ),
            ask=self._asker(run),
            on_event=lambda event: loop.call_soon_threadsafe(self._on_event, run, event),
            on_done=lambda result: loop.call_soon_threadsafe(self._on_done, run, result),
            run_id=run.run_id,
        )
        log.info("run %s started: %s", run.run_id, run.title)
        return {"runId": run.run_id}

    def _fail_early(self, run: Run, message: str) -> None:
        run.status = "failed"
        run.message = message
        self._notify(RUN_FAILED, {"runId": run.run_id, "message": message, "status": "failed"})
        self.server.show(message, types.MessageType.Error)

    async def _start_progress(self, run: Run) -> None:
        progress = await WorkDone.start(
            self.server,
            f"agentls: {run.title}",
            message="starting",
            on_cancel=lambda: self._cancel_quietly(run.run_id),
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
        if kind == "plan":
            first = next((ln.strip() for ln in event.message.splitlines() if ln.strip()), "")
            run.message = f"plan: {first[:120]}"
        elif kind == "step":
            run.message = f"step {event.step}"
        elif kind in ("tool_call", "verification", "reflection"):
            run.message = f"step {run.step}: {event.message[:160]}"
        elif kind == "stage":
            run.message = event.message[:160]
        elif kind != "cost":
            return
        if run.progress is not None:
            force = kind in ("plan", "verification", "reflection")
            run.progress.report(self._progress_line(run), force=force)
            if not force and not run.flush_scheduled:
                # Reports are throttled; the latest state must still reach the editor (a step that
                # waits long on the model would otherwise show the stage before it).
                run.flush_scheduled = True
                self._loop().call_later(0.3, self._flush, run)

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
            status: ProposalStatus = "pending" if proposal.files else "empty"
            self.proposals[proposal.proposal_id] = Pending(proposal, run.root, run.kind, status)
            run.message = f"proposal ready: {len(proposal.files)} file(s)" if proposal.files else "answered"
            if run.progress is not None:
                run.progress.end(f"{run.message} (${run.cost:.4f})")
            files = [
                {"uri": (run.root / f.path).as_uri(), "path": f.path, "kind": f.kind} for f in proposal.files
            ]
            self._notify(
                PROPOSAL_READY,
                {
                    "proposalId": proposal.proposal_id,
                    "runId": run.run_id,
                    "summary": proposal.summary,
                    "files": files,
                    "status": result.status,
                },
            )
            if not proposal.files:
                answer = proposal.summary or "agentls: the run changed nothing"
                self.server.show(answer, types.MessageType.Info)
            else:
                self._refresh_lenses()
            return
        message = result.error or result.summary or f"the run ended with status {result.status}"
        run.message = message
        if run.progress is not None:
            run.progress.end(message[:200])
        self._notify(RUN_FAILED, {"runId": run.run_id, "message": message, "status": result.status})
        if result.status != "cancelled":
            self.server.show(f"agentls: {run.title} failed: {message}", types.MessageType.Error)

    # -- cancel ----------------------------------------------------------------------------------------

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        """Ask a run to stop; it ends within about a second with ``agentls/runFailed`` (status cancelled)."""
        run = self.runs.get(run_id)
        if run is None:
            raise _failed(f"there is no run {run_id} in this server; `agentls/runs` lists the runs")
        if run.status == "running" and run.handle is not None:
            run.cancel_requested = time.monotonic()
            run.handle.cancel()
            return {"runId": run_id, "status": "cancelling"}
        return {"runId": run_id, "status": run.status}

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

    # -- clarifying questions -----------------------------------------------------------------------

    def _asker(self, run: Run) -> Callable[[str, Sequence[str]], str]:
        loop = self._loop()

        def ask(question: str, options: Sequence[str]) -> str:
            # On the worker thread: the question goes out on the event loop; the run waits, watching cancel.
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
                if time.monotonic() > deadline:
                    future.cancel()
                    raise NoAnswer(f"the user did not answer within {self.ask_timeout:.0f} s")

        return ask

    async def _ask(self, run: Run, question: str, options: list[str]) -> str:
        actions = [types.MessageActionItem(title=o) for o in options] or [
            types.MessageActionItem(title=_BEST_JUDGEMENT)
        ]
        if run.progress is not None:
            run.progress.report(f"waiting for your answer: {question[:120]}", force=True)
        try:
            answer = await self.server.window_show_message_request_async(
                types.ShowMessageRequestParams(
                    type=types.MessageType.Info, message=f"agentls asks: {question}", actions=actions
                )
            )
        except Exception as error:
            raise NoAnswer(f"the editor could not ask ({error})") from error
        if answer is None:
            raise NoAnswer("the user dismissed the question")
        title = getattr(answer, "title", None)
        if title is None and isinstance(answer, Mapping):
            title = answer.get("title")
        if not isinstance(title, str):
            raise NoAnswer("the editor's answer had no title")
        return title

    # -- proposals -------------------------------------------------------------------------------------

    def _pending(self, proposal_id: str, verb: str) -> Pending:
        pending = self.proposals.get(proposal_id)
        if pending is None:
            raise _failed(
                f"there is no proposal {proposal_id} in this server (it may be from before a restart); "
                f"nothing was {verb}ed"
            )
        if pending.status == "accepted":
            raise _failed(f"proposal {proposal_id} was already accepted; nothing was {verb}ed again")
        if pending.status == "rejected":
            raise _failed(f"proposal {proposal_id} was rejected; run the task again for a new proposal")
        if pending.status == "applying":
            raise _failed(f"proposal {proposal_id} is being applied; wait for the editor to finish")
        if pending.status == "empty":
            raise _failed(f"proposal {proposal_id} has no changes to {verb}; its run changed no file")
        return pending

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        """``agentls/proposal``: the summary, the unified diff and per-file diffs."""
        pending = self.proposals.get(proposal_id)
        if pending is None:
            raise _failed(f"there is no proposal {proposal_id} in this server")
        p, root = pending.proposal, pending.root
        files = []
        for f in p.files:
            item: dict[str, Any] = {"uri": (root / f.path).as_uri(), "path": f.path, "kind": f.kind}
            item["diff"] = f.diff
            if f.old_path is not None:
                item["oldUri"] = (root / f.old_path).as_uri()
            files.append(item)
        return {
            "proposalId": p.proposal_id,
            "runId": p.run_id,
            "summary": p.summary,
            "diff": p.diff,
            "files": files,
            "usage": _usage_json(p.usage),
            "cost": p.cost,
            "verified": p.verified,
            "verificationSummary": p.verification_summary,
            "complete": p.complete,
            "status": pending.status,
        }

    async def accept(self, proposal_id: str) -> dict[str, Any]:
        """Rebase when needed, send one ``workspace/applyEdit``, report what the editor did."""
        pending = self._pending(proposal_id, "accept")
        root, proposal = pending.root, pending.proposal
        try:
            changes = prepare_changes(proposal.files, self._current_text(root))
        except AcceptRefused as refused:
            message = f"agentls did not apply proposal {proposal_id}: {refused}"
            self.server.show(message, types.MessageType.Error)
            raise _failed(message) from None
        try:
            edit = workspace_edit(
                changes,
                root,
                self.server.documents.open_documents(root, self.server.roots),
                self.server.encoding,
                support=EditSupport.from_client(self.server.client_capabilities),
                annotate=True,
                description=_first_line(proposal.summary) or None,
            )
        except UnsupportedEdit as unsupported:
            raise _failed(str(unsupported)) from None
        pending.status = "applying"
        try:
            result = await self.server.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label=f"agentls: {_first_line(proposal.summary)}")
            )
        except Exception as error:
            pending.status = "pending"
            raise _failed(f"the editor did not apply proposal {proposal_id}: {error}") from None
        if result is not None and result.applied:
            pending.status = "accepted"
            self._refresh_lenses()
            return {"proposalId": proposal_id, "applied": True}
        pending.status = "pending"
        reason = (result.failure_reason if result is not None else None) or "the editor declined the edit"
        self.server.show(f"proposal {proposal_id} was not applied: {reason}", types.MessageType.Warning)
        return {"proposalId": proposal_id, "applied": False, "failureReason": reason}

    def reject(self, proposal_id: str) -> dict[str, Any]:
        """Drop a pending proposal and its code lenses; nothing is written."""
        pending = self._pending(proposal_id, "reject")
        pending.status = "rejected"
        self._refresh_lenses()
        return {"proposalId": proposal_id, "rejected": True}

    def list_runs(self) -> list[dict[str, Any]]:
        """``agentls/runs``: this server's runs, newest first."""
        return [
            {
                "runId": r.run_id,
                "task": r.title,
                "kind": r.kind,
                "status": r.status,
                "usage": _usage_json(r.usage),
                "cost": r.cost,
                "proposalId": r.proposal_id,
                "message": r.message,
            }
            for r in sorted(self.runs.values(), key=lambda r: r.started, reverse=True)
        ]

    # -- code lenses and the diff ------------------------------------------------------------------

    def code_lenses(self, uri: str) -> list[types.CodeLens]:
        """Accept, Reject and Show diff at each hunk of a pending proposal in this open document."""
        doc = self.server.documents.get(uri)
        if doc is None or doc.path is None:
            return []
        found = locate(doc.path, self.server.roots)
        if found is None:
            return []
        root, rel = found
        lenses: list[types.CodeLens] = []
        for pending in self.proposals.values():
            if pending.status != "pending" or pending.root != root:
                continue
            pid = pending.proposal.proposal_id
            for change in pending.proposal.files:
                if change.kind == "deleted" and change.path == rel:
                    lines = [0]
                elif change.kind in ("modified", "renamed") and (change.old_path or change.path) == rel:
                    lines = proposal_hunks(doc.text, change)
                else:
                    continue
                for line in lines:
                    where = types.Range(types.Position(line, 0), types.Position(line, 0))
                    arg = [{"proposalId": pid}]
                    for title, command, args in (
                        ("Accept", commands.ACCEPT, arg),
                        ("Reject", commands.REJECT, arg),
                        ("Show diff", commands.SHOW_DIFF, [{"proposalId": pid, "uri": uri}]),
                    ):
                        lenses.append(
                            types.CodeLens(
                                range=where,
                                command=types.Command(title=title, command=command, arguments=args),
                            )
                        )
        return lenses

    async def show_diff(self, proposal_id: str, uri: str | None) -> dict[str, Any]:
        """Write the proposal's diff (or one file's) to the cache and open it in the editor."""
        pending = self.proposals.get(proposal_id)
        if pending is None:
            raise _failed(f"there is no proposal {proposal_id} in this server")
        proposal = pending.proposal
        diff = proposal.diff
        if uri is not None:
            path = uri_to_path(uri)
            for f in proposal.files:
                paths = (pending.root / f.path, pending.root / (f.old_path or f.path))
                if path is not None and path in paths:
                    diff = f.diff
        target = self.server.cache_dir / "proposals" / f"{proposal_id}.diff"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(diff, encoding="utf-8")
        caps = self.server.client_capabilities
        window = caps.window if caps is not None else None
        if window is not None and window.show_document is not None and window.show_document.support:
            try:
                await self.server.window_show_document_async(
                    types.ShowDocumentParams(uri=target.as_uri(), take_focus=True)
                )
            except Exception as error:
                log.info("the editor could not open the diff: %s", error)
        else:
            self.server.show(diff[:4000] or "(empty diff)", types.MessageType.Info)
        return {"uri": target.as_uri(), "diff": diff}


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:120]


def _lines(range_: commands.RangeArg) -> tuple[int, int]:
    """1-based inclusive lines of an LSP range (an end at column 0 of a later line excludes that line)."""
    start = range_.start.line + 1
    end = range_.end.line + 1
    if range_.end.character == 0 and range_.end.line > range_.start.line:
        end -= 1
    return start, max(start, end)


def _diagnostic(raw: Mapping[str, Any], cls: Any) -> Any:
    """An LSP diagnostic (plain JSON) as an `agent.task.Diagnostic`."""
    rng = raw.get("range") if isinstance(raw.get("range"), Mapping) else {}
    start = (rng.get("start") or {}).get("line", 0) if isinstance(rng, Mapping) else 0
    end = (rng.get("end") or {}).get("line", start) if isinstance(rng, Mapping) else start
    severity = _SEVERITIES.get(raw.get("severity") or 1, "error")
    code = raw.get("code")
    return cls(
        message=str(raw.get("message", "")),
        line=int(start) + 1,
        end_line=max(int(start), int(end)) + 1,
        severity=severity,
        source=str(raw.get("source") or ""),
        code="" if code is None else str(code),
    )

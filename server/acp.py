"""``agentls acp``: the agent served over the Agent Client Protocol on stdio (Zed, JetBrains IDEs, ...).

Built on the ``agent-client-protocol`` SDK (`acp.run_agent`). Same run as the language server and the
CLI: `agent.runner.start_run` (the index, the overlay, the sandbox, the transcript), and the proposal is
settled with `server.features.runs.proposals.prepare_changes` (rebased onto what the editor holds now).

The exchange, per session (``session/new`` with ``cwd``: the workspace is the folder at or above it that
has an index, ``.git`` or ``agentls.toml``; a cwd that is relative or no folder here is refused, and so is
a workspace that is the home folder, ``/`` or the temporary folder, as the language server holds it back
(`server.workspace.hold_reason`: unless it has an index or ``server.index_home_or_root`` is on); a cwd
that is a folder inside the workspace is each run's scope, as ``agentls run --path`` gives it):

- Before a prompt's run: when the workspace's own settings file sets sensitive values the user has not
  trusted (`server.settings_trust`), a ``tool_call`` (kind ``other``) shows them and
  ``session/request_permission`` asks "Trust these settings" (remembered as ``agentls settings --trust``
  does; the run uses them) or "Ignore them" (not asked again while the process runs). ACP has no request
  of its own outside a prompt's turn (the session does not exist for the client before ``session/new``
  answers), so the question is the first thing of the session's first prompt. Ignored or unanswered,
  the values stay out of the runs, and a warning message of the session (subject ``settings``) names
  them with the command that trusts them; cancelled, the prompt ends ``cancelled`` without a run.
- Then what the session was not told yet of the settings its run uses (`AgentlsAcpAgent._tell_messages`):
  a value ignored as invalid, an unknown key, the user's MCP credentials withheld from a command or URL
  the workspace's file chose, a settings file that could not be read. Each is a warning message of its
  own (subject ``settings``; ``_meta.agentls`` names its ``setting``, ``file`` and ``problem`` too), said
  once per session for each (setting, file, kind) while it lasts, even when an edit moved its line; one
  that a prompt's settings no longer have is forgotten, and said again if it comes back, as the language
  server shows it again. A setting no run can use is not among them: the prompt is refused with it
  (below).
- Then, for each enabled MCP server of the settings the user has not trusted for the workspace
  (`agent.mcp.trust`), the same: a ``tool_call`` (kind ``other``) showing what it runs, with which
  arguments (credentials masked), and ``session/request_permission`` with "Trust and start" (remembered in
  the MCP trust file, as ``agentls mcp --trust`` does; the run starts it) or "Don't start" (not asked again
  while the process runs; a later session is told once). Unanswered, the server stays out of the run with
  a warning message (subject ``mcp_server``, how to trust it), and the next prompt asks again; cancelled,
  the prompt ends ``cancelled`` without a run.
- Each of these questions and its answer ("trusted", "ignored"/"not started", none: closed without a
  choice, or the editor could not ask) is kept on the session (`agent.approval.Asked`) and handed to the
  session's next run, whose transcript writes them right after its ``run_start`` as ``approval`` records
  (subject ``settings`` or ``mcp_server``), as a run records its own questions; a prompt cancelled while
  asked has no run, so the next prompt's run writes them; when none follows before the process ends (the
  client closed its input, or SIGTERM: `AgentlsAcpAgent.close`) or the session is closed
  (``session/close``), a transcript of the cancelled attempt does (``run_end`` "cancelled", listed so by
  ``agentls runs``). A prompt that ends otherwise before its run begins (refused: no API key; an error; a
  run that cannot build its model) writes them in a transcript of the attempt
  (`agent.runner.record_unstarted`: ``run_start``, the ``approval`` records, ``run_end`` "failed" with
  the error), which ``agentls runs`` lists as failed. Until one of these transcripts holds them, each
  answer is on disk before the prompt goes on (`_PendingAnswers`: a record of the prompt's attempt in
  the runs folder, its ``run_start`` with the settings known then, said to be not settled, and the
  ``approval`` records, each fsync'd, secret values withheld), removed once they are kept: a process
  killed with kill -9 leaves it, and ``agentls runs`` lists the attempt as "incomplete", with the
  answers. Before the transcript that takes them begins, the record names its run (an ``answers_taken``
  decision), so that a kill after that transcript holds them lists one entry, the run's
  (`agent.transcript.list_runs`). A prompt whose settings no run can use
  (a role's model of another provider, a base URL that is no URL: `server.settings.run_refusal`) is refused
  before the index is opened, naming the setting with its file and line and how to fix it; a run that
  such a setting stops later (a base URL from the environment) says which, how to fix it and in which of
  the files the settings were read from (`agent.settings_error`); neither is called "a bug in agentls".
  When the trust file cannot be written after "Trust these settings" or "Trust and start" (a read-only
  cache, a full disk), the answer holds while this process runs (the settings apply, the run takes the
  server as trusted: its `RunAnswers`), and a warning message of the session (subject ``settings`` or
  ``mcp_server``) says why it was not remembered; the record's ``reason`` says so too.
- ``session/prompt``: the prompt's text is the instruction, followed by the session's earlier prompts and
  what came of each (the answer; the proposal, its diff and whether it was written, rejected or could not
  be written; a cancel), the newest that fit in `HISTORY_CHARS`: a session is one conversation in the
  editor, so "try again differently" must mean something. A session answers one prompt at a time: one
  sent while another goes on is refused, saying so; one sent right after ``session/cancel`` (Zed sends
  it at once) waits for the cancelled prompt to end. Resource links and embedded resources inside
  the workspace become the overlay's buffers (read through the client's ``fs/read_text_file`` when it
  advertises it, so unsaved edits are what the agent sees). While the run goes, ``session/update``
  carries the plan (``plan`` entries), the model's text (``agent_message_chunk``) and each tool call
  (``tool_call`` with its kind and locations, then ``tool_call_update`` completed or failed, its
  ``rawOutput`` the tool's whole output as the model got it, cut at `RAW_OUTPUT_CHARS` with a note).
  The plan is the model's first text; it is sent when the run goes on to act (its first tool call): a
  run that answers at once has no plan, its answer comes as the message only. The run's warnings (an MCP
  server that did not start, the fallback Python that runs the tests) come as ``agent_message_chunk``s of
  their own, their text ``warning: ...`` in a paragraph of its own and ``_meta.agentls`` ``{kind:
  "warning", subject}``: ACP has no update kind for a notice to the user. Each wait of a model call before
  a retry (429, 529, 5xx) is such a warning too (subject ``model_retry``, `RetryNotices`). The run's
  verification (its checks can take minutes) is a ``tool_call`` of kind ``execute``, "Verifying the
  change", completed or failed with the verification's summary as its ``rawOutput``; a failed one that
  the model is asked to fix says so in a message.
- When the run proposes changes: a ``tool_call`` of kind ``edit`` with one ACP ``diff`` per file, then
  ``session/request_permission`` naming the files. Nothing is written before the user allows it; on
  allow the changes are rebased onto the client's current text and written through the client's
  ``fs/write_text_file`` when it advertises it (else to disk); deletions and the old side of renames go
  to disk (ACP has no delete). Each path is checked again first (`agent.paths`: a folder that became a
  link out of the workspace since the run refuses the whole write). Reject writes nothing. The prompt
  ends ``end_turn``. The answer (allowed, rejected, cancelled, or none: the question closed without a
  choice, or the client could not ask) is appended to the run's transcript as soon as it comes, after its
  ``run_end`` (`agent.apply.ProposalDecisions`, as the language server and the CLI write it: an
  ``approval`` of subject ``proposal`` with the files it covers and when; fsync'd, secret values and the
  run's credentials withheld), and, when allowed, what came of the writes (a ``proposal_applied``
  decision: the paths written, or the error); ``agentls runs`` shows it.
- The records of the answers (the trust answers', the attempts' transcripts, the proposal's) and the
  trust files a "Trust these settings" or "Trust and start" writes (fsync'd: `agent.trust_store`) are
  written on one worker thread (`agent.apply.OrderedWrites`, `AgentlsAcpAgent.records`), one at a time in
  the order they come (a trust file before the record of its answer), so the event loop serves the other
  sessions while they are fsync'd; the prompt waits for each before it goes on (the next question, the
  writes, the client's answer). A ``session/cancel`` or ``session/close`` meanwhile is served at once;
  the record in flight is written all the same, and what the close writes (the attempt's transcript)
  comes after it and is on disk before its reply. The settings files and the trust files are read off
  the loop too (``asyncio.to_thread``: `AgentlsAcpAgent._load_settings`; the MCP trust file, once per
  prompt for all its servers, `AgentlsAcpAgent._mcp_servers`).
- ``session/cancel`` cancels the run (it stops within about a second), or the pending permission request
  (the client answers it "cancelled": nothing is written); the prompt ends ``cancelled``.
- ``session/close`` (advertised: ``sessionCapabilities.close``) cancels the session's prompt the same way
  (a run's transcript ends "cancelled"), writes the trust answers no run took in a transcript of the
  cancelled attempt at once, and forgets the session; a later request naming it is refused, saying it was
  closed. The SDK (0.12) routes the method only with its "unstable" methods on, so `serve` turns them on;
  fork and resume, not implemented, stay "method not found".
- A request refused (no API key, an empty prompt, no such session, a closed one) is a JSON-RPC error whose
  message is the reason itself (also in ``data.message``): that is what an editor shows.
- Disk writes go through `agent.apply.apply_changes` (journaled, the journal naming the proposal and its
  run); ``initialize`` (as any agentls start) finishes an apply a killed agentls left half-done
  (`agent.apply.recover_applies`), adds the ``proposal_applied`` decision the killed process did not write
  to that run's transcript (``recovered: true``), and the first prompt's updates say so.

stdout carries the protocol only; logs go to stderr. Input lines are screened before the SDK reads them
(`server.acp_input`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import itertools
import logging
import os
import shlex
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import unquote, urlparse

from acp import (
    PROTOCOL_VERSION,
    InitializeResponse,
    NewSessionResponse,
    PromptResponse,
    RequestError,
    plan_entry,
    run_agent,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    update_agent_message_text,
    update_plan,
    update_tool_call,
)
from acp.schema import (
    AgentCapabilities,
    AgentMessageChunk,
    AllowedOutcome,
    ClientCapabilities,
    CloseSessionResponse,
    Implementation,
    PermissionOption,
    PromptCapabilities,
    SessionCapabilities,
    SessionCloseCapabilities,
    ToolCallLocation,
    ToolCallUpdate,
)

if TYPE_CHECKING:
    from acp.interfaces import Agent as AcpAgent
    from acp.interfaces import Client

    from agent.apply import OrderedWrites, ProposalDecisions
    from agent.approval import Asked
    from agent.config import AgentSettings
    from agent.loop import AgentEvent, RunResult
    from agent.mcp.config import McpServerSettings
    from agent.mcp.trust import McpTrust
    from agent.proposal import Proposal
    from agent.recorder import Recorder
    from agent.runner import RunHandle
    from agent.task import Task
    from agent.transcript import Transcript
    from agent.trust_store import Kept
    from server.features.configuration import SettingsMessages
    from server.settings import LoadedSettings, Settings

__all__ = ["AgentlsAcpAgent", "serve"]

log = logging.getLogger(__name__)

ALLOW = "allow"
REJECT = "reject"
TRUST_SETTINGS = "trust-settings"
IGNORE_SETTINGS = "ignore-settings"
TRUST_MCP = "trust-mcp-server"
DONT_START_MCP = "dont-start-mcp-server"

RAW_OUTPUT_CHARS = 20_000
"""The most of a tool's output a ``tool_call_update``'s ``rawOutput`` carries (the model's copy is cut at
``agent.max_tool_result_chars``, 30,000 by default); the rest is in the run's transcript."""

CANCELLED_TURN_SECONDS = 30.0
"""How long a prompt sent after ``session/cancel`` waits for the cancelled prompt to end."""

HISTORY_CHARS = 16_000
"""The most of a session's earlier prompts and their outcomes a run's instruction carries (newest first)."""
HISTORY_REQUEST_CHARS = 2_000
HISTORY_OUTCOME_CHARS = 8_000
HISTORY_DIFF_CHARS = 6_000

_PROPOSALS = "server.features.runs.proposals"
"""Where `prepare_changes` is (rebasing an allowed proposal onto the client's text)."""

_EDIT_TOOLS = {"str_replace_based_edit_tool", "write_file", "edit_file", "apply_patch"}
_READ_TOOLS = {"view", "read_file", "list_files"}
_SEARCH_TOOLS = {"search_code", "find_symbol", "grep", "lookup_docs", "glob"}


def _tool_kind(name: str, input: Mapping[str, Any]) -> str:
    if name == "str_replace_based_edit_tool":
        return "read" if input.get("command") == "view" else "edit"
    if name in _EDIT_TOOLS:
        return "edit"
    if name in _READ_TOOLS:
        return "read"
    if name in _SEARCH_TOOLS:
        return "search"
    if name in {"bash", "run_tests", "run_command"}:
        return "execute"
    return "other"


_CANCELLED_BEFORE_RUN = "The user cancelled it before the run started."
"""The outcome of a prompt cancelled while a trust question was open (`_Exchange.outcome`)."""


@dataclass(frozen=True)
class _Exchange:
    """One earlier prompt of a session, told to the model at the session's later prompts."""

    request: str
    """The prompt's text as the run got it (attachments as ``(see PATH)``)."""
    outcome: str
    """What came of it: the run's answer, or the proposal and what the user did with it."""


def _settings_messages() -> SettingsMessages:
    from server.features.configuration import SettingsMessages  # server.settings takes 0.2 s to import

    return SettingsMessages()


@dataclass
class _Session:
    session_id: str
    root: Path
    scope: str | None = None
    """The session's cwd relative to the workspace when it is a folder inside it: each run's focus, as
    ``agentls run --path`` gives it."""
    handle: RunHandle | None = None
    turn: asyncio.Future[None] | None = None
    """Set while a prompt is answered (its run, the permission request, the writes): one at a time."""
    cancels: int = 0
    """How many ``session/cancel`` arrived: a prompt waiting for its turn that sees one more is cancelled."""
    cancelled: bool = False
    tool_ids: dict[str, str] = field(default_factory=dict)
    """The open tool calls: the model's tool-call id -> the ACP ``toolCallId`` (a delegated sub-agent's
    calls interleave with the run's own, and a call cut off at max_tokens has a result only)."""
    # Set by session/cancel: stops the first indexing of a prompt too (the run's own flag only reaches
    # the agent loop, after the index is open).
    stop: threading.Event = field(default_factory=threading.Event)
    notify: Any = None
    """While a run goes: passes one of its `AgentEvent`s on to the client (callable from any thread)."""
    plan: list[Any] | None = None
    """The run's plan entries, held until the run acts (a reply without tool calls is no plan)."""
    history: list[_Exchange] = field(default_factory=list)
    """The session's earlier prompts and what came of them, oldest first."""
    verify_id: str | None = None
    """The ``toolCallId`` of the run's verification while its checks run (shown as a command)."""
    told: set[tuple[Path, str]] = field(default_factory=set)
    """The untrusted settings (workspace, fingerprint) this session was told are ignored, and the MCP
    servers (workspace, ``mcp:`` and their fingerprint) it was told are not started."""
    asked: list[Asked] = field(default_factory=list)
    """The trust questions asked in this session and how each ended, not yet in a run's transcript: the
    session's next run writes them first (a prompt cancelled while asked has no run: the next one does)."""
    settings_files: tuple[str, ...] = ()
    """The files the settings of the session's last prompt were read from, which the message of a run
    that a setting stops names."""
    request: str = ""
    """The text of the prompt being answered (the task of the record of `pending`)."""
    pending: _PendingAnswers | None = None
    """`asked` on disk as they come (a kill -9 loses nothing), until the transcript that keeps them is
    written."""
    closed: bool = False
    """Set by ``session/close``: the session is no longer in `AgentlsAcpAgent.sessions`; its prompt, if
    one was going, ends cancelled and records what was asked."""
    known: tuple[AgentSettings, str] | None = None
    """The agent settings known while the prompt's trust questions are asked, and what they are (not
    settled: `pending`'s ``run_start`` says so)."""
    credentials: list[str] = field(default_factory=list)
    """The credential values of the session's last run (`agent.runner.run_credentials`), withheld from
    what is added to its transcript after it ended (the answer to its proposal)."""
    said: SettingsMessages = field(default_factory=_settings_messages)
    """The settings messages this session was told (`AgentlsAcpAgent._tell_messages`), each once while it
    lasts."""


@dataclass(frozen=True)
class _TrustQuestion:
    """A question of trust asked before a prompt's run (`AgentlsAcpAgent._ask_and_keep`), and how a "yes"
    to it is kept."""

    kind: str
    """The tool call's id prefix."""
    subject: str
    """The ``approval`` record's subject, and the warning's when the answer cannot be remembered."""
    detail: str
    """What it is about: the settings file, the MCP server's name."""
    title: str
    text: str
    """What the tool call shows and the record keeps as the question."""
    yes: tuple[str, str]
    """(option id, name) of the option that trusts it."""
    no: tuple[str, str]
    declined: str
    """The tool call's output when `no` is chosen."""
    what: str
    """It, in the words of the warning and the log: "The MCP server `x` is"."""
    keep: Callable[[], Kept]
    """Remember the trust in its trust file; whether it was kept, and if not why (`agent.trust_store`).
    A disk write (fsync'd): run on the agent's records thread (`AgentlsAcpAgent.records`)."""
    hold: Callable[[], None]
    """Trust it while this process runs (`keep` failed)."""


class _PendingAnswers:
    """The trust answers of a session that no transcript holds yet, on disk as each comes: a transcript of
    the prompt's attempt (``run_start`` with the settings `known` while asking, its ``settled`` saying they
    are not settled, then one ``approval`` record per answer), each record fsync'd
    (`agent.transcript.Transcript`'s ``durable``) and its strings through a `Redactor`, as a run's are.
    Removed (`drop`) once the transcript that keeps the answers for good is written (the run's, or the
    attempt's of `agent.runner.record_unstarted`, named first: `taken_by`); a process killed before that
    (kill -9) leaves it behind: ``agentls runs`` lists the attempt as "incomplete" (no ``run_end``, its
    process gone), with its answers, unless the transcript it names holds them.

    Made on the event loop (the session holds it from the first answer on); every method is a disk write
    or read, done on the agent's worker thread (`AgentlsAcpAgent.records`) in the order handed over, the
    record begun at the first `add`."""

    def __init__(
        self, runs_dir: Path, root: Path, task: Task, known: tuple[AgentSettings, str] | None
    ) -> None:
        self.runs_dir, self.root, self.task, self.known = runs_dir, root, task, known
        self.transcript: Transcript | None = None
        self.recorder: Recorder | None = None
        self.answers = 0

    def _begun(self) -> Recorder:
        if self.recorder is not None:
            return self.recorder
        from agent.recorder import Recorder
        from agent.redaction import secret_redactor
        from agent.transcript import Transcript

        runs = self.runs_dir
        transcript = Transcript(runs, secrets=secret_redactor(runs.parent, root=self.root), durable=True)
        recorder = Recorder(transcript)
        settings, settled = self.known if self.known is not None else (None, None)
        recorder.run_start(
            run_id=transcript.run_id,
            root=self.root,
            model=settings.model.model if settings is not None else "",
            task=self.task,
            settings=settings,
            role="solo",
            settled=settled,
        )
        self.transcript, self.recorder = transcript, recorder
        return recorder

    def add(self, asked: Asked) -> None:
        """Append one answer (on disk when this returns, unless the disk refused: logged, the answer is
        still kept in memory for the run)."""
        try:
            self._begun().answered(asked)
        except OSError as error:  # no cache folder
            log.warning("cannot keep the answer to %r on disk: %s", asked.question[:80], error)
            return
        except Exception:
            log.exception("cannot keep the answer to %r on disk", asked.question[:80])
            return
        self.answers += 1

    def taken_by(self, run_id: str) -> None:
        """The transcript `run_id` is about to take these answers: said in this record
        (`agent.transcript.ANSWERS_TAKEN`), so that ``agentls runs`` lists one entry, that run's, if the
        process is killed before this record is removed."""
        from agent.transcript import ANSWERS_TAKEN

        if self.recorder is not None:  # else nothing is on disk to name it
            self.recorder.decision(ANSWERS_TAKEN, run_id=run_id)

    def held_in(self, path: Path | None) -> bool:
        """Whether the transcript `path` holds these answers: as many ``approval`` records right after its
        first ``run_start`` (where a run's transcript, or the attempt's, writes them)."""
        if path is None:
            return False
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                head = list(itertools.islice(lines, 1, 1 + self.answers))
        except OSError:
            return False
        return sum(line.startswith('{"type": "approval"') for line in head) == self.answers

    def drop_if_held(self, path: Path | None) -> bool:
        """`drop` this record if the transcript `path` holds its answers; whether it did."""
        if not self.held_in(path):
            return False
        self.drop()
        return True

    def settle(self, path: Path | None) -> None:
        """Remove this record if the transcript `path` holds its answers; else it stays, their one record."""
        if self.transcript is None:  # nothing of it reached the disk
            return
        if not self.drop_if_held(path):
            log.warning("the answers in %s are not in %s: it stays", self.transcript.path, path)
            self.transcript.close()

    def drop(self) -> None:
        """The answers are kept elsewhere now: remove this record."""
        if self.transcript is None:
            return
        self.transcript.close()
        try:
            self.transcript.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("cannot remove the record of answers kept since %s: %s", self.transcript.path, error)


@dataclass
class _Decisions:
    """`agent.apply.ProposalDecisions` of one ACP permission: its question and the files it covers (ACP's
    permission is for the whole proposal), written on the agent's worker thread (`writes`)."""

    decisions: ProposalDecisions
    question: str
    files: list[str]
    writes: OrderedWrites

    async def answer(self, answer: str | None, outcome: str, reason: str | None = None) -> None:
        """The user's answer (the option's name; None: none came, `reason` says why), on disk when this
        returns, before anything is written (and done even if the prompt is cancelled meanwhile)."""
        decisions = self.decisions
        write = functools.partial(
            decisions.answered, outcome, answer, self.files, question=self.question, reason=reason
        )
        await self.writes.submit(write)

    async def applied(self, written: list[str], error: str | None) -> None:
        """What came of an allowed proposal: the paths `written`, or the `error` that stopped the writes."""
        await self.writes.submit(functools.partial(self.decisions.applied, written, error))


def _refused(message: str, code: int = -32602) -> RequestError:
    """An error (invalid params unless `code` says otherwise) whose message is the reason itself, for
    clients that show only that (and in ``data.message``, as agentls' other errors)."""
    return RequestError(code, message, {"message": message})


def _warning(message: str, subject: Any, about: Mapping[str, Any] | None = None) -> AgentMessageChunk:
    """A run's "warning" event for the user. ACP's session updates (agent-client-protocol 0.12) have no
    kind for a notice or warning, so it is an agent message: a paragraph of its own, ``warning: ...``, the
    way `agentls run` prints it, with ``_meta.agentls`` naming it for a client that shows warnings apart
    (and `about`'s entries: what a settings message is about)."""
    meta = {"agentls": {"kind": "warning", "subject": str(subject) if subject else None, **(about or {})}}
    return AgentMessageChunk(
        session_update="agent_message_chunk",
        content=text_block(f"\n\nwarning: {message}\n\n"),
        field_meta=meta,
    )


def _untrusted_notice(root: Path, loaded: LoadedSettings) -> str:
    """What a session is told of the sensitive settings of its workspace's file left out of its runs."""
    from server.settings_trust import shown, trust_command

    listed = ", ".join(f"{item.key} = {shown(item.value)}" for item in loaded.pending)
    return (
        f"The sensitive settings of {loaded.sources[-1]} are not trusted, so the runs go on without them: "
        f"{listed}. To trust them, run `{trust_command(root)}` in a terminal."
    )


def _cut(text: str, limit: int) -> str:
    """`text` whole up to `limit` characters, else its start and a note."""
    text = text.strip()
    return text if len(text) <= limit else f"{text[:limit]}\n[... {len(text) - limit:,} more characters cut]"


def _diff(diff: str) -> str:
    """A proposal's diff for the model's view of the conversation."""
    return f"The change:\n```diff\n{_cut(diff, HISTORY_DIFF_CHARS)}\n```"


def _with_history(request: str, history: list[_Exchange]) -> str:
    """The run's instruction: `request`, then the session's earlier prompts and what came of each (the
    newest that fit in `HISTORY_CHARS`), so "try again differently" or "now the tests" mean something."""
    told: list[str] = []
    size = 0
    for number in range(len(history), 0, -1):
        exchange = history[number - 1]
        text = (
            f"### Request {number}\n\n{_cut(exchange.request, HISTORY_REQUEST_CHARS)}\n\n"
            f"### What came of request {number}\n\n{_cut(exchange.outcome, HISTORY_OUTCOME_CHARS)}"
        )
        if told and size + len(text) > HISTORY_CHARS:
            break
        told.insert(0, text)
        size += len(text)
    if not told:
        return request
    left_out = len(history) - len(told)
    older = f" ({left_out} earlier one{'s' if left_out != 1 else ''} left out)" if left_out else ""
    return (
        f"{request}\n\n## Earlier in this conversation\n\nThe request above is the new one; these came "
        f"before it in the same conversation, oldest first{older}. It may refer to them.\n\n"
        + "\n\n".join(told)
    )


def _raw_output(output: str, limit: int = RAW_OUTPUT_CHARS) -> str:
    """`output` for a ``rawOutput``: whole up to `limit` characters, else its start and a note."""
    if len(output) <= limit:
        return output
    cut = len(output) - limit
    return f"{output[:limit]}\n[... {cut:,} more characters cut; the run's transcript has them all]"


class AgentlsAcpAgent:
    """The ACP side of agentls: one `_Session` per ``session/new``, one run per prompt."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.conn: Client | None = None
        self.capabilities = ClientCapabilities()
        self.sessions: dict[str, _Session] = {}
        self.recovered: list[str] = []
        """Messages about interrupted applies finished at ``initialize``, not yet shown to the user."""
        self.ignored: set[tuple[Path, str]] = set()
        """(workspace, `server.settings_trust.fingerprint`) of sensitive settings the user chose to ignore:
        not asked about again while this process runs."""
        self.declined: set[tuple[Path, str]] = set()
        """(workspace, `agent.mcp.trust.fingerprint`) of MCP servers the user chose not to start: not asked
        about again while this process runs."""
        self.trusted_here: set[tuple[Path, str]] = set()
        """(workspace, `server.settings_trust.fingerprint`) of sensitive settings the user trusted when the
        trust file could not be written: trusted while this process runs."""
        self.mcp_trusted_here: dict[tuple[Path, str], McpServerSettings] = {}
        """(workspace, `agent.mcp.trust.fingerprint`) -> configuration of MCP servers the user trusted when
        the MCP trust file could not be written: trusted while this process runs."""
        self.closed: set[str] = set()
        """The ids of the sessions ``session/close`` closed, for the message of a request naming one."""
        self._mcp_trust: McpTrust | None = None
        from agent.apply import OrderedWrites

        self.records = OrderedWrites("agentls-acp-records")
        """Where the records of the users' answers are written (the trust answers' `_PendingAnswers`, the
        attempts' transcripts, `_Decisions`) and the trust files (`_TrustQuestion.keep`), off the event
        loop, one at a time in the order they come: the loop serves the other sessions meanwhile, and the
        answer to the client waits for its record."""
        self._ids = itertools.count(1)

    # -- connection and sessions ----------------------------------------------------------------------

    def on_connect(self, conn: Client) -> None:
        self.conn = conn

    async def initialize(
        self,
        protocol_version: int,
        client_capabilities: ClientCapabilities | None = None,
        client_info: Implementation | None = None,
        **kwargs: Any,
    ) -> InitializeResponse:
        self.capabilities = client_capabilities or ClientCapabilities()
        from importlib.metadata import PackageNotFoundError, version

        from agent.apply import journal_dir, recover_applies
        from server.cli.agent import runs_dir

        # an accepted proposal a killed agentls was writing: finished now, told at the first prompt
        self.recovered += await asyncio.to_thread(recover_applies, journal_dir(runs_dir(self.env)))

        try:
            ours = version("agentls")
        except PackageNotFoundError:
            ours = "0"
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=False,
                prompt_capabilities=PromptCapabilities(image=False, audio=False, embedded_context=True),
                session_capabilities=SessionCapabilities(close=SessionCloseCapabilities()),
            ),
            agent_info=Implementation(name="agentls", title="agentls", version=ours),
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> None:
        return None

    async def new_session(self, cwd: str, mcp_servers: Any = None, **kwargs: Any) -> NewSessionResponse:
        from server.cli.support import find_root
        from server.settings import cache_dir
        from server.workspace import held_message, hold_reason

        folder = Path(cwd)
        if not folder.is_absolute():
            raise _refused(f"cwd {cwd!r} is a relative path; pass the absolute path of the project's folder")
        if not folder.is_dir():
            raise _refused(f"cwd {cwd!r} is not a folder on this machine; pass the project's folder")
        cache = cache_dir(self.env)
        root = find_root(folder.resolve(), cache)
        # Every prompt indexes its workspace first: / or a whole home folder would be read entirely. The
        # language server holds such a folder back by the same rule.
        if what := hold_reason(root, (await self._load_settings(root)).settings, self.env, cache):
            above = "" if root == folder.resolve() else f"cwd {cwd!r} belongs to the workspace {root}. "
            instead = "Start the session in a project's folder instead"
            held = held_message(root, what, instead=instead, settings_in=str(root / "agentls.toml"))
            raise _refused(above + held)
        inside = folder.resolve().relative_to(root).as_posix()
        session = _Session(session_id=uuid.uuid4().hex, root=root, scope=None if inside == "." else inside)
        self.sessions[session.session_id] = session
        log.info("acp session %s on %s", session.session_id, root)
        return NewSessionResponse(session_id=session.session_id)

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            self._stop(session)

    def _stop(self, session: _Session) -> None:
        """Cancel what the session is doing: its run, its first indexing, a prompt waiting for its turn."""
        session.cancels += 1
        session.cancelled = True
        session.stop.set()
        if session.handle is not None:
            session.handle.cancel()

    async def close_session(self, session_id: str, **kwargs: Any) -> CloseSessionResponse:
        """``session/close``: cancel the session's prompt as ``session/cancel`` does (its run ends
        "cancelled", its transcript kept; the prompt answers ``cancelled``), write the trust answers no run
        took in a transcript of the cancelled attempt now, and forget the session: a later request naming it
        is refused, saying so. Answers that come after (a question the prompt had open, closed by the
        client) are written when that prompt ends."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            raise self._no_session(session_id)
        self.closed.add(session_id)
        session.closed = True
        self._stop(session)
        await self._record_left(session, "the session was closed before its run started")
        log.info("acp session %s closed", session_id)
        return CloseSessionResponse()

    def _no_session(self, session_id: str) -> RequestError:
        if session_id in self.closed:
            return _refused(f"the session {session_id} was closed; start another with session/new")
        return _refused(f"there is no session {session_id}; start one with session/new first")

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    # -- a prompt: one run ----------------------------------------------------------------------------

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        session = self.sessions.get(session_id)
        if session is None:
            raise self._no_session(session_id)
        arrived = session.cancels
        await self._take_turn(session)
        try:
            if session.cancels != arrived:  # cancelled while it waited for the cancelled prompt to end
                return PromptResponse(stop_reason="cancelled")
            return await self._answer(session, prompt)
        finally:
            turn, session.turn = session.turn, None
            if turn is not None:
                turn.set_result(None)
            if session.closed:  # an answer that came after session/close
                await self._record_left(session, "the session was closed before its run started")

    async def _take_turn(self, session: _Session) -> None:
        """Make the calling prompt the session's one running prompt. A prompt sent while another goes on is
        refused (ACP runs a session's prompts one at a time); one sent after ``session/cancel`` (Zed sends
        the next prompt at once) waits for the cancelled prompt to end, which takes about a second."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCELLED_TURN_SECONDS
        while session.turn is not None:
            if not session.cancelled:
                raise _refused(
                    "a prompt is already running in this session: wait for its answer, or cancel it first",
                    -32600,
                )
            try:
                await asyncio.wait_for(asyncio.shield(session.turn), deadline - loop.time())
            except TimeoutError:
                raise _refused(
                    "the cancelled prompt of this session has not ended after "
                    f"{CANCELLED_TURN_SECONDS:.0f} s (is its permission request still open?); answer it, "
                    "or start a new session",
                    -32600,
                ) from None
        session.turn = loop.create_future()
        session.cancelled = False
        session.stop.clear()
        session.plan = None

    async def _answer(self, session: _Session, prompt: list[Any]) -> PromptResponse:
        """Run the prompt (the session's earlier prompts and their outcomes told to the model), settle what
        it proposes, and remember what came of it for the session's next prompts."""
        while self.recovered:
            await self._say(session, self.recovered.pop(0))
        request, buffers = await self._read_prompt(session, prompt)
        if session.cancelled:  # while the client read an attached file
            session.history.append(_Exchange(request, _CANCELLED_BEFORE_RUN))
            return PromptResponse(stop_reason="cancelled")
        session.request = request
        settings: Settings | None = None
        try:
            settings = await self._settings(session)
            if settings is not None:
                settings = await self._mcp_servers(session, settings)
            if settings is None:  # cancelled while a question about the settings or a server was open
                session.history.append(_Exchange(request, _CANCELLED_BEFORE_RUN))
                return PromptResponse(stop_reason="cancelled")
            result = await self._run(session, _with_history(request, session.history), buffers, settings)
        except Exception as error:  # refused (no API key), or a bug: the questions asked stay on record
            await self.records.submit(self._unrun(session, request, settings, str(error) or repr(error)))
            raise
        if session.cancelled or result.status == "cancelled":
            session.history.append(_Exchange(request, "The user cancelled it before the run ended."))
            return PromptResponse(stop_reason="cancelled")
        proposal = result.proposal
        if proposal is not None and proposal.files:
            outcome = await self._settle(session, result)
        else:
            answer = result.summary or result.error or f"The run ended: {result.status}."
            await self._say(session, answer)
            outcome = f"Your answer: {answer}"
        session.history.append(_Exchange(request, outcome))
        if session.cancelled:
            return PromptResponse(stop_reason="cancelled")
        return PromptResponse(stop_reason="end_turn")

    def close(self) -> None:
        """The process ends (the client closed the connection, or SIGTERM): the trust questions still
        waiting in a session for its next run (its last prompt was cancelled while they were asked, and no
        run followed) go into a transcript of that cancelled attempt, so every answer is on record. Written
        behind the records handed over before (the event loop is gone: this thread waits for them)."""
        why = "the prompt was cancelled before its run started, and no run followed in the session"
        for session in self.sessions.values():
            if (write := self._left(session, why)) is not None:
                self.records.wait(write)

    async def _record_left(self, session: _Session, why: str) -> None:
        """`_left`'s transcript written (on the records' thread) before this returns."""
        if (write := self._left(session, why)) is not None:
            await self.records.submit(write)

    def _left(self, session: _Session, why: str) -> Callable[[], None] | None:
        """The trust answers of `session` that no run took (its last prompt was cancelled while they were
        asked), taken off it now, and the write of a transcript of that cancelled attempt that keeps them
        (``run_end`` "cancelled", `why` in its summary); None when there are none."""
        if not session.asked:
            return None
        request = session.request or "(a prompt cancelled before its run)"
        write = self._unrun(session, request, None, why, status="cancelled")
        session_id = session.session_id

        def record() -> None:
            try:
                write()
            except Exception:
                log.exception("the questions asked in session %s could not be recorded", session_id)

        return record

    def _unrun(
        self,
        session: _Session,
        request: str,
        settings: Settings | None,
        error: str,
        status: Literal["failed", "cancelled"] = "failed",
    ) -> Callable[[], None]:
        """The trust questions asked for a prompt that ended in `error` before its run started, taken off
        the session now (the session's later answers are the next prompt's), and the write of their
        transcript (`agent.runner.record_unstarted`: the attempt, "failed" or "cancelled"), to hand to
        `records`: the record of the answers on disk (`_PendingAnswers`) names it first and is removed
        once it holds them."""
        from agent.runner import record_unstarted
        from agent.task import Task
        from agent.transcript import new_run_id
        from server.cli.agent import runs_dir

        asked, session.asked = session.asked, []
        pending, session.pending = session.pending, None
        run_id = new_run_id()
        task = Task(kind="run", instruction=request, path=session.scope)
        runs, root = runs_dir(self.env), session.root
        agent_settings = settings.agent if settings is not None else None

        def write() -> None:
            if pending is not None:
                pending.taken_by(run_id)
            result = record_unstarted(
                runs,
                run_id,
                task,
                root=root,
                settings=agent_settings,
                asked=asked,
                error=error,
                status=status,
            )
            if pending is not None:
                pending.settle(result.transcript_path)

        return write

    async def _read_prompt(
        self, session: _Session, blocks: list[Any]
    ) -> tuple[str, dict[str, tuple[str, int]]]:
        texts: list[str] = []
        buffers: dict[str, tuple[str, int]] = {}
        for block in blocks:
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text)
            elif kind == "resource_link":
                rel = self._relative(session, block.uri)
                if rel is not None:
                    texts.append(f"(see {rel})")
                    text = await self._client_text(session, rel)
                    if text is not None:
                        buffers[rel] = (text, 0)
            elif kind == "resource":
                resource = block.resource
                rel = self._relative(session, getattr(resource, "uri", ""))
                text = getattr(resource, "text", None)
                if rel is not None and isinstance(text, str):
                    texts.append(f"(see {rel})")
                    buffers[rel] = (text, 0)
        instruction = "\n".join(t for t in texts if t.strip())
        if not instruction.strip():
            raise _refused("the prompt has no text; say what the agent should do")
        return instruction, buffers

    def _relative(self, session: _Session, uri: str) -> str | None:
        parsed = urlparse(uri)
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)
        if not path.is_absolute():
            return None
        try:
            return path.resolve().relative_to(session.root).as_posix()
        except ValueError:
            return None

    async def _client_text(self, session: _Session, rel: str) -> str | None:
        """The file's text as the client holds it (unsaved edits included), else from disk; None: absent."""
        fs = self.capabilities.fs
        if fs is not None and fs.read_text_file and self.conn is not None:
            try:
                reply = await self.conn.read_text_file(
                    path=str(session.root / rel), session_id=session.session_id
                )
                return reply.content
            except Exception as error:  # a file the client cannot read (absent, say): disk decides
                log.info("fs/read_text_file %s failed (%s); reading disk", rel, error)
        try:
            return (session.root / rel).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    async def _settings(self, session: _Session) -> Settings | None:
        """The settings of the session's workspace for a run (`_trusted_or_not`), then the messages about
        them the session was not told yet (`_tell_messages`). None: the prompt was cancelled while a
        question about them was open."""
        loaded = await self._load_settings(session.root)
        session.settings_files = loaded.sources
        used = await self._trusted_or_not(session, loaded)
        if used is None:
            return None
        await self._tell_messages(session, used)
        return used.settings

    async def _tell_messages(self, session: _Session, loaded: LoadedSettings) -> None:
        """Tell the session each message of the settings its run uses (a value ignored as invalid, an
        unknown key, the user's MCP credentials withheld from a workspace's destination, a file that could
        not be read) once: a warning message of its own (subject ``settings``, and ``_meta.agentls``'s
        ``setting``, ``file`` and ``problem``: what it is about), before the run's output. A problem is
        known by its (setting, file, kind) (`server.features.configuration.SettingsMessages`): the same
        one is not said again in the session while these settings still have it, even when an edit moved
        its line; one they no longer have is forgotten, so it is said again at a later prompt if it comes
        back (as the language server shows it again). Not among them: a setting no run can use (the
        prompt is refused with it: `server.settings.run_refusal`), and the sensitive values not trusted
        (the question, and `_untrusted_notice`)."""
        said = [message for message in loaded.messages if getattr(message, "kind", "") != "unusable"]
        for message in session.said.new(said, read=(*loaded.messages, *loaded.untrusted)):
            log.warning("%s", message)
            about = {
                "setting": getattr(message, "setting", None),
                "file": getattr(message, "file", None) or None,
                "problem": getattr(message, "kind", None) or None,
            }
            await self._update(session, _warning(message, "settings", about))

    async def _trusted_or_not(self, session: _Session, loaded: LoadedSettings) -> LoadedSettings | None:
        """The settings `loaded` for a run. Sensitive values the workspace's own file sets that the user has
        not trusted (`server.settings_trust`) are a question first, as in the language server: a
        ``tool_call`` showing them and ``session/request_permission`` with "Trust these settings" (remembered,
        as ``agentls settings --trust`` does, and the settings read again) or "Ignore them" (not asked again
        while this process runs). While ignored, or with no answer, they stay out of the run, and the
        session's first update says which and the command that trusts them. None: the prompt was cancelled
        while the question was open."""
        from server.settings_trust import fingerprint

        if not loaded.pending:
            return loaded
        key = (session.root, fingerprint(list(loaded.pending)))
        if key in self.trusted_here:
            return await self._trusted_here(session.root)
        for message in loaded.untrusted:
            log.warning("%s", message)
        if key not in self.ignored:
            session.known = (
                loaded.settings.agent,
                f"not settled: the settings without the sensitive values of {loaded.sources[-1]}, which the "
                "answer below decides on; the run's transcript has its settings",
            )
            answer = await self._ask_trust(session, loaded)
            if session.cancelled:
                return None
            if answer == TRUST_SETTINGS and key in self.trusted_here:  # not remembered: this process only
                return await self._trusted_here(session.root)
            if answer == TRUST_SETTINGS:
                return await self._load_settings(session.root)
            if answer == IGNORE_SETTINGS:
                self.ignored.add(key)
        if key not in session.told:
            session.told.add(key)
            await self._update(session, _warning(_untrusted_notice(session.root, loaded), "settings"))
        return loaded

    async def _trusted_here(self, root: Path) -> LoadedSettings:
        """The workspace's settings with the sensitive values the user trusted for this process only (the
        trust file could not keep them) applied as trusted ones of its file (`load_settings`' `trusted`):
        as when trusted for good, a problem of one of them is said at its line of that file."""
        return await self._load_settings(root, trusted=self._trusted_for(root))

    async def _load_settings(self, root: Path, *, trusted: Collection[str] = ()) -> LoadedSettings:
        """`server.settings.load_settings` of `root` on a worker thread: it reads the settings files and the
        settings trust file, and the loop serves the other sessions meanwhile. A trust written before it
        is read (each write is awaited before the prompt goes on)."""
        from server.settings import load_settings

        return await asyncio.to_thread(functools.partial(load_settings, root, env=self.env, trusted=trusted))

    def _trusted_for(self, root: Path) -> set[str]:
        """The fingerprints of the sensitive settings of `root`'s file trusted for this process only."""
        return {digest for (trusted_root, digest) in self.trusted_here if trusted_root == root}

    async def _not_remembered(self, session: _Session, what: str, subject: str, kept: Kept) -> str:
        """Tell the session that the user's trust in `what` holds for this process only: its trust file
        could not be written (`kept`). The reason, for the transcript."""
        log.warning("cannot remember the trust of %s: %s", what, kept.why)
        said = kept.message(
            f"{what} trusted while this agentls runs, but", "The question comes again after agentls restarts"
        )
        await self._update(session, _warning(said, subject))
        return f"trusted while this agentls runs only: {kept.why}"

    async def _ask(self, session: _Session, question: _TrustQuestion) -> tuple[str, str | None, str]:
        """Show `question` as a pending ``tool_call`` and ask it with ``session/request_permission``, its
        `yes` option ``allow_always`` and its `no` ``reject_once``. Returns the tool call's id, the option
        chosen (None: closed without a choice, or the client could not ask) and, when the client could not
        ask, why; the caller ends the tool call."""
        assert self.conn is not None
        tool_id = f"{question.kind}-{next(self._ids)}"
        title = question.title
        content: list[Any] = [tool_content(text_block(question.text))]
        await self._update(
            session, start_tool_call(tool_id, title, kind="other", status="pending", content=content)
        )
        try:
            permission = await self.conn.request_permission(
                session_id=session.session_id,
                tool_call=ToolCallUpdate(
                    tool_call_id=tool_id, title=title, kind="other", status="pending", content=content
                ),
                options=[
                    PermissionOption(option_id=question.yes[0], name=question.yes[1], kind="allow_always"),
                    PermissionOption(option_id=question.no[0], name=question.no[1], kind="reject_once"),
                ],
            )
        except Exception as error:  # a client that cannot ask: the caller leaves the thing out and says so
            log.warning("could not ask %r of %s (%s)", title, session.root, error)
            await self._update(session, update_tool_call(tool_id, status="failed", raw_output=str(error)))
            return tool_id, None, str(error)
        outcome = permission.outcome
        return tool_id, (outcome.option_id if isinstance(outcome, AllowedOutcome) else None), ""

    async def _ask_and_keep(self, session: _Session, question: _TrustQuestion) -> tuple[str | None, str]:
        """Ask `question` (`_ask`); on its `yes`, remember the trust (`keep`), or, when that fails, trust for
        this process (`hold`) and say why it was not remembered; end the tool call with the outcome, and
        keep the question and its answer on the session (`Asked`) for the next run's transcript. Returns
        the option chosen (None: no answer) and, for no answer, why."""
        from agent.approval import Asked

        tool_id, answer, error = await self._ask(session, question)
        reason: str | None = None
        if error:
            reason = f"the editor could not ask it: {error}"
        elif answer == question.yes[0]:
            # on the records' thread, in order with the answers' records, on disk before "trusted"
            kept = await self.records.submit(question.keep)
            if not kept.kept:
                question.hold()
                reason = await self._not_remembered(session, question.what, question.subject, kept)
            log.info("%s trusted for %s", question.what, session.root)
            await self._update(session, update_tool_call(tool_id, status="completed", raw_output="trusted"))
        else:
            said = question.declined if answer == question.no[0] else "not answered"
            await self._update(session, update_tool_call(tool_id, status="failed", raw_output=said))
            if answer != question.no[0]:
                answer, reason = None, "the editor's question was closed without a choice"
        chosen = dict([question.yes, question.no]).get(answer or "")
        approved = answer == question.yes[0]
        asked = Asked(question.subject, question.detail, question.text, approved, chosen, reason)
        session.asked.append(asked)
        await self._keep_on_disk(session, asked)
        return answer, (reason or "") if answer is None else ""

    async def _keep_on_disk(self, session: _Session, asked: Asked) -> None:
        """`asked` appended to the session's record of the answers no transcript holds yet
        (`_PendingAnswers`, begun at the first), so that a kill -9 loses none: on disk when this returns.
        The session holds the record before the write (a session/close meanwhile takes it with the
        session's answers; its own writes come after this one)."""
        from agent.task import Task
        from server.cli.agent import runs_dir

        if session.pending is None:
            task = Task(kind="run", instruction=session.request or "(a prompt)", path=session.scope)
            session.pending = _PendingAnswers(runs_dir(self.env), session.root, task, session.known)
        await self.records.submit(functools.partial(session.pending.add, asked))

    async def _ask_trust(self, session: _Session, loaded: LoadedSettings) -> str | None:
        """Ask the user whether to trust the sensitive values of the workspace's file; the option chosen
        (`TRUST_SETTINGS`, remembered, or `IGNORE_SETTINGS`), None when the question got no answer."""
        from server.settings_trust import IGNORE, TRUST, fingerprint, question, remember

        source = loaded.sources[-1]
        digest = fingerprint(list(loaded.pending))

        answer, _why = await self._ask_and_keep(
            session,
            _TrustQuestion(
                kind="settings-trust",
                subject="settings",
                detail=source,
                title=f"Trust the sensitive agentls settings of {Path(source).name}?",
                text=question(session.root, loaded.pending, source),
                yes=(TRUST_SETTINGS, TRUST),
                no=(IGNORE_SETTINGS, IGNORE),
                declined="ignored",
                what=f"The sensitive settings of {source} are",
                keep=functools.partial(remember, session.root, loaded.pending, source, self.env),
                hold=lambda: self.trusted_here.add((session.root, digest)),
            ),
        )
        return answer

    async def _mcp_servers(self, session: _Session, settings: Settings) -> Settings | None:
        """`settings` with each enabled MCP server the user has not trusted for the workspace asked about
        first (`agent.mcp.trust`; ACP can ask only inside a prompt's turn, so here, before the run): a
        ``tool_call`` showing `agent.mcp.trust.question` (what it runs, with which arguments, credentials
        masked) and ``session/request_permission`` with "Trust and start" (remembered in the MCP trust file:
        the run starts it) or "Don't start" (not asked again while this process runs). A server not trusted
        is disabled for the run, so the run does not ask again: no answer is a warning of the session
        (subject ``mcp_server``, `agent.mcp.trust.Untrusted`'s message) and the question comes again next
        prompt; "Don't start" is said once to a session that did not answer it itself. None: the prompt
        was cancelled while a question was open."""
        from agent.mcp.trust import DONT, Untrusted, fingerprint

        configured = settings.agent.mcp.servers
        trust = self.mcp_trust()
        trusted: frozenset[str] | None = None
        servers = dict(configured)
        for name, config in configured.items():
            key = (session.root, fingerprint(config))
            if not config.enabled or key in self.mcp_trusted_here:
                continue
            if trusted is None:  # the file, read once per prompt (off the loop) for all the servers
                trusted = await asyncio.to_thread(trust.trusted, session.root)
            if key[1] in trusted:
                continue
            told = (session.root, f"mcp:{key[1]}")
            answer: str | None = DONT_START_MCP  # chosen earlier in this process: not asked again
            why = ""
            if key not in self.declined:
                session.known = (
                    settings.agent,
                    "not settled: the MCP servers the answers below leave out are still in them; the run's "
                    "transcript has its settings",
                )
                answer, why = await self._ask_mcp_trust(session, name, config, trust)
                if session.cancelled:
                    return None
                if answer == TRUST_MCP:
                    continue
                if answer == DONT_START_MCP:
                    self.declined.add(key)
                    session.told.add(told)  # the user chose it in this session: nothing to tell
            servers[name] = config.model_copy(update={"enabled": False})
            if answer != DONT_START_MCP:
                await self._update(
                    session, _warning(Untrusted(name, session.root, why).message, "mcp_server")
                )
            elif told not in session.told:
                session.told.add(told)
                command = shlex.join(["agentls", "mcp", "--trust", "--path", str(session.root)])
                said = (
                    f'The MCP server `{name}` is not started: "{DONT}" was chosen for it earlier while '
                    f"this agentls runs. Its tools are left out of the runs. To trust it, run `{command}` in "
                    "a terminal."
                )
                await self._update(session, _warning(said, "mcp_server"))
            log.info("MCP server %s is left out of the run on %s (%s)", name, session.root, answer or why)
        if servers == dict(configured):
            return settings
        mcp = settings.agent.mcp.model_copy(update={"servers": servers})
        return settings.model_copy(update={"agent": settings.agent.model_copy(update={"mcp": mcp})})

    def mcp_trust(self) -> McpTrust:
        """The MCP trust file's store (``mcp-trust.json`` of the agentls cache), one for the process."""
        if self._mcp_trust is None:
            from agent.mcp.trust import TRUST_FILE, McpTrust
            from server.settings import cache_dir

            self._mcp_trust = McpTrust(cache_dir(self.env) / TRUST_FILE)
        return self._mcp_trust

    async def _ask_mcp_trust(
        self, session: _Session, name: str, config: McpServerSettings, trust: McpTrust
    ) -> tuple[str | None, str]:
        """Ask the user whether to trust the MCP server `name`: the option chosen (`TRUST_MCP`, remembered in
        `trust`, or `DONT_START_MCP`) and "", or None and why no answer came."""
        from agent.mcp.trust import DONT, TRUST, fingerprint, question

        def hold() -> None:
            self.mcp_trusted_here[(session.root, fingerprint(config))] = config

        return await self._ask_and_keep(
            session,
            _TrustQuestion(
                kind="mcp-trust",
                subject="mcp_server",
                detail=name,
                title=f"Start the MCP server `{name}` of this workspace?",
                text=f'{question(name, config)} ("{DONT}" is not asked again while this agentls runs.)',
                yes=(TRUST_MCP, TRUST),
                no=(DONT_START_MCP, DONT),
                declined="not started",
                what=f"The MCP server `{name}` is",
                keep=functools.partial(trust.remember, session.root, name, config),
                hold=hold,
            ),
        )

    async def _run(
        self, session: _Session, instruction: str, buffers: dict[str, tuple[str, int]], settings: Settings
    ) -> RunResult:
        from agent.mcp.trust import RunAnswers
        from agent.runner import Credentials, MissingCredentials, run_credentials, start_run
        from agent.task import TaskError
        from agent.task_builders import run_task
        from agent.transcript import new_run_id
        from server.cli.agent import runs_dir
        from server.settings import run_refusal

        # A setting no run can use, with its file and line, before the index is opened (or built).
        trusted = self._trusted_for(session.root)
        if (refusal := run_refusal(session.root, settings, env=self.env, trusted=trusted)) is not None:
            raise _refused(f"the run could not start: {refusal}", -32603)
        try:
            credentials = Credentials.from_env(self.env, settings.agent.model)
        except MissingCredentials as missing:  # the message is what the editor shows: the reason
            raise _refused(str(missing), -32603) from missing
        try:
            task = run_task(instruction, path=session.scope, root=session.root)
        except TaskError as error:
            raise _refused(str(error)) from error
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[AgentEvent | None] = asyncio.Queue()

        def on_event(event: AgentEvent) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def on_done(_result: RunResult) -> None:
            loop.call_soon_threadsafe(events.put_nowait, None)

        session.notify = on_event
        answers = RunAnswers()  # the servers trusted for this process only: the run takes them as trusted
        for (root, _digest), config in self.mcp_trusted_here.items():
            if root == session.root:
                answers.trusted(root, config)
        session.credentials = run_credentials(settings.agent, credentials)
        # the run's transcript writes them first (or the failed attempt's, if it fails): taken now, so that
        # a session/close while the record below is written finds none to write itself
        asked, session.asked = session.asked, []
        pending, session.pending = session.pending, None
        run_id = new_run_id()
        try:
            if pending is not None:  # a kill -9 before it is removed: `agentls runs` joins the two
                await self.records.submit(functools.partial(pending.taken_by, run_id))
            handle = start_run(
                task,
                root=session.root,
                settings=settings.agent,
                credentials=credentials,
                runs_dir=runs_dir(self.env),
                buffers=buffers,
                open_index=self._index_opener(session.root, settings, session.stop),
                index_settings=settings.index,
                on_event=on_event,
                on_done=on_done,
                run_id=run_id,
                asked=asked,
                mcp_answers=answers,
                settings_files=session.settings_files,
            )
        except BaseException:  # no run: the prompt's failed attempt records them (`_unrun`)
            session.asked, session.pending = asked + session.asked, pending or session.pending
            raise
        transcript = runs_dir(self.env) / f"{handle.run_id}.jsonl"
        session.handle = handle
        if session.cancelled:
            handle.cancel()
        while True:
            event = await events.get()
            if event is None:
                break
            # written right after its run_start
            if pending is not None and await self.records.submit(
                functools.partial(pending.drop_if_held, transcript)
            ):
                pending = None
            try:
                await self._report(session, event)
            except Exception:  # a client that cannot take an update must not stop the run
                log.exception("session/update failed")
        session.notify = None
        session.plan = None  # never acted on: the reply is the message, not a plan too
        result = await asyncio.to_thread(handle.wait)
        assert result is not None  # on_done came after the result was set
        if pending is not None:  # a run that failed before it began: record_unstarted's transcript
            await self.records.submit(functools.partial(pending.settle, result.transcript_path or transcript))
        return result

    def _index_opener(self, root: Path, settings: Settings, stop: threading.Event) -> Any:
        from server.settings import cache_dir

        env = self.env

        def open_index() -> Any:
            from indexing.service import IndexCancelled, WorkspaceIndex

            try:
                index = WorkspaceIndex(root, settings.index, cache_dir=cache_dir(env), env=env)
                index.index(cancel=stop)  # session/cancel during a first index of a large tree
                return index
            except IndexCancelled:
                log.info("acp: indexing %s stopped by session/cancel", root)
                return None
            except Exception:  # retrieval helps the agent; the run goes on with file scans
                log.exception("could not index %s; the agent searches files instead", root)
                return None

        return open_index

    async def _update(self, session: _Session, update: Any) -> None:
        assert self.conn is not None
        if not session.closed:  # the client forgot it
            await self.conn.session_update(session_id=session.session_id, update=update)

    async def _say(self, session: _Session, text: str) -> None:
        await self._update(session, update_agent_message_text(text))

    async def _report(self, session: _Session, event: AgentEvent) -> None:
        data = event.data
        if event.kind == "plan":
            lines = [line.strip(" -*\t") for line in event.message.splitlines()]
            session.plan = [plan_entry(line) for line in lines if line] or None
        elif event.kind == "text":
            await self._say(session, event.message)
        elif event.kind == "warning":
            await self._update(session, _warning(event.message, data.get("subject")))
        elif event.kind == "tool_call":
            if session.plan is not None:  # the run acts: its first text was a plan
                entries, session.plan = session.plan, None
                await self._update(session, update_plan(entries))
            name = str(data.get("name", ""))
            raw = data.get("input")
            input = raw if isinstance(raw, Mapping) else {}
            tool_id = f"tool-{next(self._ids)}"
            session.tool_ids[str(data.get("id") or tool_id)] = tool_id
            path = input.get("path")
            locations = (
                [ToolCallLocation(path=str(session.root / path))] if isinstance(path, str) and path else None
            )
            await self._update(
                session,
                start_tool_call(
                    tool_id,
                    event.message,
                    kind=_tool_kind(name, input),  # type: ignore[arg-type]
                    status="in_progress",
                    locations=locations,
                    raw_input=dict(input),
                ),
            )
        elif event.kind == "stage" and data.get("stage") == "verify":
            # The checks can take minutes: the editor shows them as a command running, not silence.
            session.verify_id = f"verify-{next(self._ids)}"
            await self._update(
                session,
                start_tool_call(
                    session.verify_id,
                    "Verifying the change: running the checks",
                    kind="execute",
                    status="in_progress",
                ),
            )
        elif event.kind == "verification":
            result = data.get("verification")
            found, session.verify_id = session.verify_id, None
            if found is None or result is None:
                return
            failed: Literal["completed", "failed"] = "failed" if result.failed else "completed"
            await self._update(session, update_tool_call(found, status=failed, raw_output=result.summary()))
        elif event.kind == "reflection":
            await self._say(session, f"\n{event.message}\n")
        elif event.kind == "tool_result":
            output = data.get("output")
            found = session.tool_ids.pop(str(data.get("id") or ""), None)
            if found is None:  # no call was reported for it
                return
            tool_id = found
            status: Literal["completed", "failed"] = "failed" if data.get("is_error") else "completed"
            raw = _raw_output(output) if isinstance(output, str) else event.message
            await self._update(session, update_tool_call(tool_id, status=status, raw_output=raw))

    # -- the proposal: permission, then writes --------------------------------------------------------

    async def _settle(self, session: _Session, result: RunResult) -> str:
        """Show the proposal, ask permission, write it when allowed; what came of it, for the model."""
        assert self.conn is not None and result.proposal is not None
        proposal = result.proposal
        tool_id = f"proposal-{proposal.proposal_id}"
        diffs = [
            tool_diff_content(
                str(session.root / change.path),
                change.new_text,
                None if change.kind == "created" else change.base_text,
            )
            for change in proposal.files
        ]
        locations = [ToolCallLocation(path=str(session.root / change.path)) for change in proposal.files]
        title = f"Apply the proposal to {', '.join(proposal.paths)}"
        await self._update(
            session,
            start_tool_call(
                tool_id, title, kind="edit", status="pending", content=diffs, locations=locations
            ),
        )
        await self._say(session, proposal.summary)
        options = {ALLOW: "Apply the changes", REJECT: "Reject"}
        record = self._decisions(session, result, title)
        try:
            permission = await self.conn.request_permission(
                session_id=session.session_id,
                tool_call=ToolCallUpdate(tool_call_id=tool_id, title=title, kind="edit", status="pending"),
                options=[
                    PermissionOption(option_id=ALLOW, name=options[ALLOW], kind="allow_once"),
                    PermissionOption(option_id=REJECT, name=options[REJECT], kind="reject_once"),
                ],
            )
        except BaseException as error:  # no answer: on record, and the prompt fails as before
            await record.answer(None, "unanswered", f"the editor could not ask: {error!r}")
            raise
        outcome = permission.outcome
        chosen = outcome.option_id if isinstance(outcome, AllowedOutcome) else None
        proposed = f"You proposed changes to {', '.join(proposal.paths)}. Your summary: {proposal.summary}"
        change = _diff(proposal.diff)
        if session.cancelled:  # the client answers a pending permission request "cancelled" on cancel
            await record.answer(None, "cancelled", "the prompt was cancelled while its permission was asked")
            await self._update(session, update_tool_call(tool_id, status="failed", raw_output="cancelled"))
            await self._say(session, "Cancelled: nothing was written.")
            return f"{proposed}\nThe user cancelled before allowing it: nothing was written.\n{change}"
        if chosen != ALLOW:
            if chosen == REJECT:
                await record.answer(options[REJECT], "rejected")
            else:
                await record.answer(None, "unanswered", "the editor's question was closed without a choice")
            await self._update(session, update_tool_call(tool_id, status="failed", raw_output="rejected"))
            await self._say(session, "Rejected: nothing was written.")
            return f"{proposed}\nThe user rejected it: nothing was written.\n{change}"
        await record.answer(options[ALLOW], "allowed")  # on disk before the writes begin
        try:
            written = await self._write(session, proposal)
        except Exception as error:
            await record.applied([], str(error))
            await self._update(session, update_tool_call(tool_id, status="failed", raw_output=str(error)))
            await self._say(session, f"Nothing was written: {error}")
            return f"{proposed}\nThe user allowed it, but nothing was written: {error}\n{change}"
        await record.applied(written, None)
        await self._update(session, update_tool_call(tool_id, status="completed", raw_output=written))
        await self._say(session, f"Applied: {', '.join(written)}.")
        return f"{proposed}\nThe user allowed it and it was written: the files hold it now."

    def _decisions(self, session: _Session, result: RunResult, question: str) -> _Decisions:
        """Where the user's answer to `result`'s proposal (`question`) and what came of it go: the run's
        transcript (`agent.apply.ProposalDecisions`, with the session's credentials withheld)."""
        from agent.apply import ProposalDecisions
        from server.cli.agent import runs_dir

        proposal = result.proposal
        assert proposal is not None
        path = result.transcript_path
        runs = path.parent if path is not None else runs_dir(self.env)
        decisions = ProposalDecisions(
            runs, proposal.run_id, proposal.proposal_id, root=session.root, redact=session.credentials
        )
        return _Decisions(decisions, question, list(proposal.paths), self.records)

    async def _write(self, session: _Session, proposal: Proposal) -> list[str]:
        """Rebase every change onto the client's current text, then write them all (or none: raises).
        The disk writes' journal names the proposal's run, so that a start that finishes them after a
        kill adds what came of them to the run's transcript (`agent.apply.recover_applies`)."""
        from agent.apply import apply_changes, journal_dir
        from agent.paths import PathRefused, resolve_in_workspace
        from server.cli.agent import runs_dir

        if _PROPOSALS not in sys.modules:  # the first time: it imports the language server's run manager
            await asyncio.to_thread(importlib.import_module, _PROPOSALS)  # (lsprotocol): 0.5 s, off the loop
        from server.features.runs.proposals import prepare_changes

        files = proposal.files
        for change in files:
            for path in filter(None, (change.path, change.old_path)):
                # As the CLI's --apply and the server's accept check it, now: a folder of the path may have
                # become a link out of the workspace since the run proposed it.
                try:
                    rel = resolve_in_workspace(session.root, path)
                except PathRefused as refused:
                    message = f"the proposal names a path agentls refuses to write: {refused}"
                    raise ValueError(message) from None
                if rel != path:
                    raise ValueError(f"the proposal names a path agentls refuses to write: {path!r}")
        current: dict[str, str | None] = {}
        for change in files:
            for path in filter(None, (change.path, change.old_path)):
                if path not in current:
                    current[path] = await self._client_text(session, path)
        changes = prepare_changes(files, current.get)
        fs = self.capabilities.fs
        journal = journal_dir(runs_dir(self.env))
        write = functools.partial(
            apply_changes,
            root=session.root,
            journal=journal,
            label=f"the proposal of session {session.session_id}",
            run_id=proposal.run_id,
            proposal_id=proposal.proposal_id,
        )
        if fs is None or not fs.write_text_file:
            await asyncio.to_thread(write, changes)
            return [change.path for change in changes]
        assert self.conn is not None
        for change in changes:  # the client writes the texts (its buffers follow); disk takes the rest
            if change.kind != "deleted":
                await self.conn.write_text_file(
                    path=str(session.root / change.path),
                    content=change.new_text,
                    session_id=session.session_id,
                )
        removals = [change for change in changes if change.kind == "deleted"] + [
            dataclasses.replace(change, path=change.old_path, kind="deleted", old_path=None, new_text="")
            for change in changes
            if change.kind == "renamed" and change.old_path
        ]
        await asyncio.to_thread(write, removals)
        return [change.path for change in changes]


class RetryNotices(logging.Handler):
    """Tells the user of a session each wait of its run's model call before a retry (a 429 or 529 storm
    can last minutes), as a warning message: `agent.models.calls` logs the wait on the run's thread, with
    the `RetryWait` as the record's ``retry_wait``; the CLI prints the same line on stderr."""

    def __init__(self, agent: AgentlsAcpAgent) -> None:
        super().__init__(logging.WARNING)
        self.agent = agent

    def emit(self, record: logging.LogRecord) -> None:
        from agent.loop import AgentEvent

        wait = getattr(record, "retry_wait", None)
        if wait is None:
            return
        for session in list(self.agent.sessions.values()):
            handle, notify = session.handle, session.notify
            thread = handle.thread if handle is not None else None
            if notify is not None and thread is not None and thread.ident == record.thread:
                notify(AgentEvent("warning", str(wait.summary), data={"subject": "model_retry"}))


def serve(env: Mapping[str, str] | None = None) -> None:
    """Serve ACP on stdin/stdout until the client closes the connection or sends SIGTERM (as the ACP SDK
    does when the process has not ended 2 s after it closed stdin); then `AgentlsAcpAgent.close`."""
    agent = AgentlsAcpAgent(env if env is not None else dict(os.environ))
    logging.getLogger("agent.models").addHandler(RetryNotices(agent))
    signal.signal(signal.SIGTERM, _terminated)
    try:
        # The SDK answers "method not found" for the optional methods agentls does not implement (load,
        # fork, resume, modes, config options), so the class is not a full `acp.interfaces.Agent`.
        asyncio.run(_serve(cast("AcpAgent", agent)))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the recording short
        agent.close()


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends `serve` as the end of its input does (its ``finally`` runs), with status 143."""
    raise SystemExit(128 + signum)


async def _serve(agent: AcpAgent) -> None:
    """`run_agent` on stdio, its input screened first (`server.acp_input`: hostile lines never reach it)."""
    from server.acp_input import OneLineExpectedErrors, guarded_stdio

    logging.getLogger().addFilter(OneLineExpectedErrors())  # the SDK logs on the root logger
    writer, reader, screening = await guarded_stdio()
    try:
        # session/close is in the ACP schema the SDK implements, but its router (0.12) serves it only with
        # the "unstable" methods on; the others of those (fork, resume) agentls does not implement: the SDK
        # answers "method not found" for them as before.
        await run_agent(agent, writer, reader, use_unstable_protocol=True)
    finally:
        screening.cancel()

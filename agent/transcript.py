"""Transcripts: one JSON-lines file per agent run, written as the run goes, read back by `agentls runs`.

Each line is one record, a JSON object with `type`, `t` (seconds since the run started) and `at` (UTC
time, ISO 8601). Record types, in the order a run writes them:

- `run_start`: `schema`, `run_id`, `task` (kind, title, instruction, path, range, symbol), `model`,
  `role` (the agent's role, `solo` by default), `settings` (every agent setting, as the settings model
  dumps them, with credentials masked: `agent.credential_fields`), `root`, `instructions` (the project
  instruction files in the system prompt: path, bytes, truncated, omitted; see `agent.project`), and,
  only when `settings` are not the run's settled ones, `settled` saying what they are ("not settled: ...":
  `{}` for an attempt that ended before its settings were known; the settings known while ``agentls
  acp``'s trust questions were open, in its record of their answers).
- `request`: one Messages API call. The prefix that repeats from call to call is not written again:
  `system_sha256` and `tools_sha256` name the system prompt and the tool definitions, whose full text is
  written (`system`, `tools`) the first time each hash appears; `messages_start` and `messages` give the
  messages appended since the previous request. Concatenating the `messages` of a run's requests gives
  each request's whole conversation (see `reconstruct_messages`). An image (an MCP tool's screenshot)
  is never written as its base64 text: the file goes beside the transcript, once,
  `<run_id>.d/images/<sha256>.png` (0600), and the block's `source` names it (`{"type": "file",
  "media_type", "path"` relative to the transcript's folder, `"sha256"` and `"bytes"` of the file`}`).
- `response`: `content` (the assistant's blocks), `stop_reason`, `usage`, `cost`, `latency`, `attempts`,
  `request_id`, `model`, `role` and `node` (whom the call is charged to, `agent.costs`).
- `todo`: the run's todo list after each change (`items`: id, text, status; `agent.tools.todo`).
- `tool_call` (`id`, `name`, `input`) and `tool_result` (`id`, `name`, `content`, `is_error`, `seconds`;
  `images`, when images were sent with it: `media_type`, `width`, `height`, `bytes`, `sha256` each).
- `verification`: the checks run on the change: `outcome` ("passed", "failed" or "no_tests": nothing failed
  but no test ran), `passed`, and each check (name, command, passed, ran_nothing, output, seconds).
- `decision`: stage changes, reflections after a failed verification, budget and step-limit stops; kind
  `delegate`: a `delegate` sub-agent's task, report, `usage`, `cost`, steps, model and its own
  transcript (`<run_id>.d/explore-N.jsonl`); kind `mcp_server_failed`: an MCP server that did not start
  (`server`, `reason`, `stderr`, `advice`, and `message`, the warning the user was shown); kind
  `mcp_server_untrusted`: one left out because nobody answered whether to trust it (`server`, `reason`,
  `message`); kind `mcp_trust_not_remembered`: one the user trusted in the run's question whose trust file
  could not be written, started for this run only (`server`, `reason`, `message`); kind
  `mcp_server_answered`: a server a team run's earlier role asked about, not asked about again (`server`,
  `sha256`, `trusted`, `answer`: the user's, None for none, `reason`; `agent.mcp.trust`).
- `approval`: a question the user was asked and the answer (`subject`, `detail`, `question`, `approved`,
  `answer`: the option chosen, None for none; `agent.approval`). ``agentls acp`` asks whether to trust
  the workspace's settings (subject ``settings``) and MCP servers (``mcp_server``) before a prompt's run:
  those come right after the run's first `run_start`, with `asked_at` (when the answer came) and, when
  no answer came, `reason` (the question was closed without a choice, or the editor could not ask). A
  prompt that ends before its run begins (refused for want of an API key, a run that cannot build its
  model) still writes them: the transcript of that attempt is its `run_start`, the `approval` records and
  a `run_end` with status "failed" and the error (`agent.runner.record_unstarted`). Until one of these
  transcripts holds them, ``agentls acp`` keeps the answers in a record of their own, written as each
  comes (`durable`: fsync'd), a `run_start` (the settings known then, `settled` saying they are not
  settled) and the `approval` records, removed once they are kept; a process killed before leaves it
  (listed as "incomplete"). When the run (or the attempt's transcript) that takes them is about to
  begin, the record gets a `decision` of kind ``answers_taken`` naming its `run_id` (`ANSWERS_TAKEN`):
  `list_runs` leaves out such a record once that run's transcript holds the answers, so a kill between
  the two writes lists one entry, the run's.
  ``agentls acp`` also asks the user whether to apply a run's proposal: the answer is an `approval` of
  subject ``proposal`` (`detail`: the proposal's id; `outcome`: "allowed", "rejected", "cancelled" or
  "unanswered"; `files`: the paths the answer covers, all of the proposal's, as ACP asks for the whole;
  `asked_at`; `reason` when no answer came), appended to the run's transcript after its `run_end` as
  soon as the answer comes (`Transcript.continued`, fsync'd), then, when allowed, a `decision` of kind
  ``proposal_applied`` (`proposal_id`, `written`: the paths written, `error`: why nothing was). The
  language server and ``agentls run --apply`` write the same records (a per-hunk accept adds `hunks`, the
  ids accepted; ``--commit`` adds `commit`, `branch` and `committed`; a write a later start finished,
  `recovered`). A proposal can have several answers (hunks accepted one by one, then the rest
  rejected): `proposal_answers` reads each with what came of it, and `agentls runs` lists what all of
  them come to beside the status (`summarise_answers`: "applied", "rejected", "partly applied (2 of 5
  hunks), rest rejected", "partly applied (1 of 3 files), 2 pending"; `RunSummary.proposal_answer`, and
  each answer in `RunSummary.proposal_answers`) and shows each under the proposal.
- `proposal`: `proposal_id`, `summary`, `verified`, `diff`, `files` (path, kind, old path, diff).
- `run_end`: `status`, `summary`, `error`, `usage`, `cost`, `steps`, `seconds`, `step_seconds`, `roles`
  (usage, cost and calls per role and node; they add up to `usage` and `cost`).

A team run (`agent.team.engine`) writes one transcript for all its roles: its own `run_start` (role
``team:<graph>``), then each role's `run_start` ... `run_end`, then its own `run_end`, whose `roles` hold
the whole run's (a resumed run's earlier parts included). The run has ended once it has as many `run_end`
records as `run_start` ones (`run_end_of`).

The agent loop writes these records through `agent.recorder.Recorder`, which builds them as typed values;
this module stores and reads them. Every record is flushed as it is written, so a crash leaves a readable
file without a `run_end` (listed as "incomplete"). The API key never appears: the writer is given the
secrets to scrub (`redact`) and replaces them wherever they would appear; secret values found in the code
(`indexing.secrets`) are replaced by their placeholders in every record. Files live in the state directory
the caller passes (`<cache_dir>/runs` for the CLI), created 0700, each file 0600; the file name is the run
id, which sorts by start time.

The `schema` number in `run_start` changes only when a record's meaning changes; readers here accept
schema 1.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from agent.hunks import editor_hunk_count
from agent.images import image_positions

if TYPE_CHECKING:
    from indexing.secrets import Redactor

__all__ = [
    "ANSWERS_TAKEN",
    "SCHEMA",
    "ProposalAnswer",
    "RunNotFound",
    "RunRecord",
    "RunSummary",
    "Transcript",
    "TranscriptRecord",
    "content_hash",
    "list_runs",
    "load_run",
    "new_run_id",
    "proposal_answers",
    "reconstruct_messages",
    "summarise_answers",
]

log = logging.getLogger(__name__)

SCHEMA = 1
"""Version of the record format written in `run_start`."""

_REDACTED = "[redacted]"


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id that sorts by start time and is unique: `20261125-143012-3f9a1c`."""
    moment = now or dt.datetime.now(dt.UTC)
    return f"{moment:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of `value` (how requests name their system prompt and tools)."""
    data = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Transcript:
    """Writes one run's records to `<directory>/<run_id>.jsonl`, one flushed line per record."""

    def __init__(
        self,
        directory: Path,
        run_id: str | None = None,
        *,
        redact: Iterable[str] = (),
        secrets: Redactor | None = None,
        preface: Sequence[tuple[str, Mapping[str, Any]]] = (),
        durable: bool = False,
    ) -> None:
        """`redact`: secrets (the API key) that must never be written; empty strings are ignored.
        `secrets`: the run's `indexing.secrets.Redactor`; every string of every record goes through it, and
        `run_end` records get `secrets_withheld` (how many values were kept from the model). `preface`:
        records (type, fields) of what happened before the run, written right after its first `run_start`
        (``agentls acp``'s trust questions, asked before a prompt's run). `durable`: each record is on the
        disk (fsync) before `write` returns, for records nothing else keeps (a user's answers)."""
        self.secrets = secrets
        self.durable = durable
        self._preface = list(preface)
        self.run_id = run_id or new_run_id()
        self.directory = Path(directory)
        self.path = self.directory / f"{self.run_id}.jsonl"
        # Longer secrets first, so a secret that contains another is replaced whole.
        keys = sorted({s for s in redact if s and len(s) >= 4}, key=len, reverse=True)
        self._redactions: list[tuple[str, str]] = []
        for secret in keys:
            self._redactions.append((secret, _REDACTED))
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            if escaped != secret:
                self._redactions.append((escaped, _REDACTED))
        self._started = time.monotonic()
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self._seen_hashes: set[str] = set()
        self._messages_sent = 0
        self.records_written = 0

    # -- writing -------------------------------------------------------------------------------------

    def _open(self) -> IO[str]:
        if self._file is None:
            # Transcripts hold code and command output: only the user may read them (0700 folder, 0600 file).
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(OSError):
                os.chmod(self.directory, 0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = open(fd, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if self.durable:  # the file's name too, not only its lines
                from agent.apply import fsync_folder

                fsync_folder(self.directory)
        return self._file

    def write(self, type: str, **fields: Any) -> None:
        """Append one record. Never raises for an unserializable value (it is written as its `str`)."""
        if self.secrets is not None:
            fields = self.secrets.redact_value(fields)
            if type == "run_end":
                fields["secrets_withheld"] = self.secrets.withheld
        record = {"type": type, "t": round(time.monotonic() - self._started, 4), "at": _now_iso(), **fields}
        line = json.dumps(record, ensure_ascii=False, default=str)
        for secret, replacement in self._redactions:
            line = line.replace(secret, replacement)
        with self._lock:
            try:
                handle = self._open()
                handle.write(line + "\n")
                handle.flush()
                if self.durable:
                    os.fsync(handle.fileno())
            except OSError as error:
                # A full disk must not end the run; the run's result still reaches the user.
                log.warning("cannot write the transcript %s: %s", self.path, error)
                return
        self.records_written += 1
        if type == "run_start" and self._preface:
            preface, self._preface = self._preface, []
            for kind, details in preface:
                self.write(kind, **details)

    def request(
        self,
        *,
        step: int,
        system: str | Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        model: str,
    ) -> None:
        """A request record: hashes of the stable prefix (full text the first time) and new messages."""
        fields: dict[str, Any] = {"step": step, "model": model}
        for name, value in (("system", system), ("tools", list(tools))):
            digest = content_hash(value)
            fields[f"{name}_sha256"] = digest
            if digest not in self._seen_hashes:
                self._seen_hashes.add(digest)
                fields[name] = value
        start = self._messages_sent if self._messages_sent <= len(messages) else 0
        fields["messages_start"] = start
        fields["messages"] = self._image_files(messages[start:])
        fields["message_count"] = len(messages)
        self._messages_sent = len(messages)
        self.write("request", **fields)

    def _image_files(self, messages: Sequence[Mapping[str, Any]]) -> list[Any]:
        """`messages` with each image's base64 data written to a file beside the transcript and its block
        naming that file instead (copies; messages without images are passed as they are)."""
        found = list(image_positions(messages))
        if not found:
            return list(messages)
        copies = [dict(message) for message in messages]
        for at, block in reversed(found):
            content = list(copies[at.message]["content"])
            reference = self._image_file(block)
            if at.inner is None:
                content[at.block] = reference
            else:
                holder = dict(content[at.block])
                holder["content"] = [*holder["content"]]
                holder["content"][at.inner] = reference
                content[at.block] = holder
            copies[at.message]["content"] = content
        return copies

    def _image_file(self, block: Mapping[str, Any]) -> dict[str, Any]:
        """Write one image block's file (once per content) and return the block that names it."""
        found = block.get("source")
        source: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        media_type = str(source.get("media_type", ""))
        try:
            raw = base64.b64decode(str(source.get("data", "")))
        except (binascii.Error, ValueError):
            raw = b""
        digest = hashlib.sha256(raw).hexdigest()
        folder = self.directory / f"{self.run_id}.d" / "images"
        path = folder / f"{digest}.{media_type.rpartition('/')[2] or 'bin'}"
        if not path.exists():
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with open(fd, "wb") as handle:
                    handle.write(raw)
            except OSError as error:
                log.warning("cannot write the image %s beside the transcript: %s", path, error)
        where = str(path.relative_to(self.directory))
        reference = {
            "type": "file",
            "media_type": media_type,
            "path": where,
            "sha256": digest,
            "bytes": len(raw),
        }
        return {"type": "image", "source": reference}

    def child(self, name: str) -> Transcript:
        """The transcript of a sub-agent of this run, `<directory>/<run_id>.d/<name>.jsonl`, with the same
        redactions (not listed by `list_runs`; the `delegate` decision of this run names it)."""
        child = Transcript(self.directory / f"{self.run_id}.d", name, secrets=self.secrets)
        child._redactions = list(self._redactions)
        return child

    def rewound(self, index: int) -> None:
        """The conversation was rewritten from message `index` on (masked or condensed): the next
        request record writes the messages from there again."""
        with self._lock:
            self._messages_sent = min(self._messages_sent, max(0, index))

    def close(self) -> None:
        """Close the file (records written so far stay)."""
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                finally:
                    self._file = None

    @classmethod
    def continued(
        cls, path: Path, *, redact: Iterable[str] = (), secrets: Redactor | None = None, durable: bool = False
    ) -> Transcript:
        """The transcript `path` of a run that has ended, to append what came after its ``run_end`` (the
        user's answer to its proposal): `t` goes on from the time of its ``run_start``."""
        path = Path(path)
        transcript = cls(path.parent, path.stem, redact=redact, secrets=secrets, durable=durable)
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                first = json.loads(next(lines, "{}"))
            began = dt.datetime.fromisoformat(str(first["at"]))
            offset = float(first.get("t", 0.0))  # the run's clock started before its first record
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return transcript  # `t` counts from now; `at` still says when
        transcript._started -= max(0.0, (dt.datetime.now(dt.UTC) - began).total_seconds()) + offset
        return transcript

    def __enter__(self) -> Transcript:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptRecord:
    """One line of a transcript."""

    type: str
    t: float
    """Seconds since the run started."""
    data: Mapping[str, Any]
    """The whole record as written (type and times included)."""

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the record."""
        return self.data.get(key, default)


@dataclass(frozen=True)
class RunSummary:
    """What `agentls runs` lists about one run."""

    run_id: str
    started_at: str
    """UTC time the run started (ISO 8601), "" when the file has no run_start."""
    task: str
    """The task's one-line title."""
    kind: str
    status: str
    """The run's status, "running" while it has no run_end and its process lives, else "incomplete"."""
    total_tokens: int
    cost: float
    path: Path
    proposal_answer: str = ""
    """What came of the run's proposal, every answer to it summed up (`summarise_answers`): "applied",
    "rejected", "allowed, not written", "partly applied (2 of 5 hunks), rest rejected", ...; "" when no
    answer was recorded."""
    proposal_answers: tuple[ProposalAnswer, ...] = ()
    """Each answer to the run's proposal and what came of it, in order (`proposal_answers`)."""


@dataclass(frozen=True)
class RunRecord:
    """A whole transcript: its summary and every record, in order."""

    summary: RunSummary
    records: tuple[TranscriptRecord, ...]
    skipped_lines: int = 0
    """Lines that were not valid JSON (a crash mid-write leaves at most one)."""

    def of_type(self, type: str) -> list[TranscriptRecord]:
        """The records of one type, in order."""
        return [record for record in self.records if record.type == type]

    @property
    def end(self) -> TranscriptRecord | None:
        """The run's own `run_end` (`run_end_of`), None while it runs or when it was killed."""
        return run_end_of(self.records)


def run_end_of(records: Sequence[TranscriptRecord]) -> TranscriptRecord | None:
    """The run's own `run_end`: the last one, once every `run_start` has its end (a team run's roles end
    before the run does); None while the run goes on, or when its process died."""
    starts = sum(1 for record in records if record.type == "run_start")
    ends = [record for record in records if record.type == "run_end"]
    return ends[-1] if ends and len(ends) >= starts else None


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON and for comparing with what was sent)."""
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(item) for item in value]
    return value


def _read_records(path: Path) -> tuple[list[TranscriptRecord], int]:
    records: list[TranscriptRecord] = []
    skipped = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                skipped += 1
                continue
            if not isinstance(data, dict) or "type" not in data:
                skipped += 1
                continue
            records.append(TranscriptRecord(str(data["type"]), float(data.get("t", 0.0)), _freeze(data)))
    return records, skipped


# A run without run_end whose file changed within this many seconds is taken to be still running.
_RUNNING_SECONDS = 120.0


def _summary(path: Path, records: Sequence[TranscriptRecord]) -> RunSummary:
    start = next((r for r in records if r.type == "run_start"), None)
    end = run_end_of(records)
    task = start.get("task", {}) if start is not None else {}
    if end is not None:
        status = str(end.get("status", "unknown"))
        usage = end.get("usage", {}) or {}
        cost = float(end.get("cost", 0.0) or 0.0)
    else:
        pid = start.get("pid") if start is not None else None
        if isinstance(pid, int):  # the process that runs it tells (a killed run is not running)
            from agent.resume import process_alive

            running = process_alive(pid)
        else:  # transcripts from before the pid was recorded: written to recently
            try:
                running = time.time() - path.stat().st_mtime < _RUNNING_SECONDS
            except OSError:
                running = False
        status = "running" if running else "incomplete"
        usage = {}
        cost = 0.0
        for record in records:
            delegated = record.type == "decision" and record.get("kind") == "delegate"
            if record.type == "response" or delegated:  # a sub-agent's calls count as the run's
                cost += float(record.get("cost", 0.0) or 0.0)
                for key, value in (record.get("usage", {}) or {}).items():
                    usage = {**usage, key: int(usage.get(key, 0)) + int(value or 0)}
    tokens = sum(int(value or 0) for value in usage.values())
    answers = proposal_answers(records)
    return RunSummary(
        run_id=str(start.get("run_id", path.stem)) if start is not None else path.stem,
        started_at=str(start.get("at", "")) if start is not None else "",
        task=str(task.get("title", "")) if isinstance(task, Mapping) else "",
        kind=str(task.get("kind", "")) if isinstance(task, Mapping) else "",
        status=status,
        total_tokens=tokens,
        cost=cost,
        path=path,
        proposal_answer=summarise_answers(answers, _proposal_record(records)),
        proposal_answers=tuple(answers),
    )


@dataclass(frozen=True)
class ProposalAnswer:
    """One answer to a run's proposal (an ``approval`` of subject ``proposal``) and what came of it (the
    ``proposal_applied`` decision that follows it), as `proposal_answers` reads them."""

    outcome: str
    """"allowed", "rejected", "cancelled" or "unanswered"."""
    answer: str | None
    """What the user chose (the option, the command, "yes", "--yes"); None for none."""
    at: str
    """When the answer came (ISO 8601)."""
    files: tuple[str, ...]
    """The paths the answer covers."""
    hunks: tuple[str, ...] | None = None
    """The hunk ids of a per-hunk accept; None when the answer covers its files whole."""
    reason: str | None = None
    """Why no answer came (cancelled, unanswered)."""
    result: str = ""
    """For an allowed answer: "written", "not written" (an `error` and nothing written), "partly written"
    (some paths and an `error`), "written, not committed" (``--apply --commit`` wrote the files, then the
    commit failed), or "" while no ``proposal_applied`` says (killed while writing)."""
    written: tuple[str, ...] = ()
    error: str | None = None
    recovered: bool = False
    """The writes were finished (or found unfinished) by a later start, from the apply journal."""
    commit: str | None = None
    branch: str | None = None
    committed: tuple[str, ...] = ()
    """The paths of the commit an ``--apply --commit`` made (`commit` on `branch`)."""


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list | tuple) else ()


def proposal_answers(records: Sequence[TranscriptRecord]) -> list[ProposalAnswer]:
    """Every answer to the run's proposal (the one the last answer names; with no answer on record, the
    one the last ``proposal_applied`` decision names), in order, each with the ``proposal_applied``
    decision that came of it: the first such decision after it, or, for a decision a later start wrote
    (``recovered``), the last allowed answer still without one. A decision with no allowed answer before
    it (an answer lost) is an allowed answer of its own, with no `answer`."""
    last = _last_answer(records)
    if last is not None:
        proposal_id = last.get("detail")
    else:
        proposal_id = next((r.get("proposal_id") for r in reversed(records) if _is_applied(r)), None)
    if proposal_id is None:
        return []
    answers: list[ProposalAnswer] = []
    open_at: int | None = None  # the allowed answer waiting for what came of it
    for record in records:
        if record.type == "approval" and record.get("subject") == "proposal":
            if record.get("detail") != proposal_id:
                continue
            outcome = str(record.get("outcome") or ("allowed" if record.get("approved") else "rejected"))
            hunks = record.get("hunks")
            answers.append(
                ProposalAnswer(
                    outcome=outcome,
                    answer=None if record.get("answer") is None else str(record.get("answer")),
                    at=str(record.get("asked_at") or record.get("at") or ""),
                    files=_strings(record.get("files")),
                    hunks=_strings(hunks) if isinstance(hunks, list | tuple) else None,
                    reason=None if record.get("reason") is None else str(record.get("reason")),
                )
            )
            open_at = len(answers) - 1 if outcome == "allowed" else open_at
        elif _is_applied(record) and record.get("proposal_id") == proposal_id:
            if open_at is None:
                answers.append(ProposalAnswer("allowed", None, str(record.get("at") or ""), ()))
                open_at = len(answers) - 1
            written, error = _strings(record.get("written")), record.get("error")
            result = ("partly written" if written else "not written") if error else "written"
            if error and written and "committed" in record.data and not record.get("commit"):
                result = "written, not committed"  # `agentls run --apply --commit`: the commit failed
            answers[open_at] = dataclasses.replace(
                answers[open_at],
                result=result,
                written=written,
                error=None if error is None else str(error),
                recovered=bool(record.get("recovered")),
                commit=None if record.get("commit") is None else str(record.get("commit")),
                branch=None if record.get("branch") is None else str(record.get("branch")),
                committed=_strings(record.get("committed")),
            )
            open_at = None
    return answers


def _last_answer(records: Sequence[TranscriptRecord]) -> TranscriptRecord | None:
    """The last answer to a proposal (``approval`` of subject ``proposal``) in `records`, if any."""
    return next(
        (r for r in reversed(records) if r.type == "approval" and r.get("subject") == "proposal"), None
    )


def _is_applied(record: TranscriptRecord) -> bool:
    return record.type == "decision" and record.get("kind") == "proposal_applied"


_REST = {"rejected": "rejected", "failed": "not written", "allowing": "allowed", "pending": "pending"}
"""What became of the part of a proposal not applied, in the order the summary says it."""


def summarise_answers(answers: Sequence[ProposalAnswer], proposal: TranscriptRecord | None) -> str:
    """`RunSummary.proposal_answer`: what all the answers to a proposal came to, in one phrase.

    One answer, or several that wrote nothing: each answer's word ("applied", "allowed, not written",
    "allowed": no word of the writes yet, "rejected", "cancelled", "unanswered"), joined by ", then ".
    Everything written: "applied" ("committed" for an ``--apply --commit``), "in N parts" when several
    accepts wrote it. Part of it written: "partly applied (2 of 5 hunks), rest rejected", "partly applied
    (1 of 3 files), 2 pending" (files when each file was taken or left whole, else hunks, counted from
    the proposal's diff as the per-hunk review makes them, `agent.hunks.editor_hunk_count`: a lone
    ``\\r`` ends a line there too), with what became of the rest: rejected, pending (no answer yet), not
    written, allowed (no word of the writes yet)."""
    if not answers:
        return ""
    totals: dict[str, int] = {}
    for item in (proposal.get("files") if proposal is not None else None) or ():
        if isinstance(item, Mapping) and item.get("path"):
            modified = item.get("kind", "modified") == "modified"
            count = editor_hunk_count(str(item.get("diff") or "")) if modified else 1
            totals[str(item["path"])] = max(1, count)
    # per file: the state of each hunk an answer named, and of the rest of the file
    named: dict[str, dict[str, str]] = {}
    rest: dict[str, str] = {}
    for answer in answers:
        for path in answer.files:
            totals.setdefault(path, 1)
        on_disk = set(answer.written) | set(answer.committed)
        for path in answer.files:
            if answer.outcome == "rejected":
                state = "rejected"
            elif answer.outcome != "allowed":
                continue  # cancelled, unanswered: nothing changes
            elif answer.result == "":
                state = "allowing"
            else:  # without an error every file is done (a recovery's `written` is the journal's part)
                state = "applied" if answer.error is None or path in on_disk else "failed"
            hunks = [h for h in answer.hunks or () if h.rsplit("#", 1)[0] == path]
            states = named.setdefault(path, {})
            if answer.hunks is not None:
                states.update(dict.fromkeys(hunks, state))
            else:  # the file whole: what of it was not applied yet
                rest[path] = state
                states.update({h: state for h, was in states.items() if was != "applied"})
    counts: dict[str, int] = {}
    file_counts: dict[str, int] = {}
    whole = True
    for path, total in totals.items():
        states = named.get(path, {})
        total = max(total, len(states))  # answers naming hunks the proposal's diff does not hold
        per_file: dict[str, int] = {}
        for state in states.values():
            per_file[state] = per_file.get(state, 0) + 1
        left = rest.get(path, "pending")
        per_file[left] = per_file.get(left, 0) + total - len(states)
        per_file = {state: n for state, n in per_file.items() if n}
        whole = whole and len(per_file) == 1
        for state, n in per_file.items():
            counts[state] = counts.get(state, 0) + n
        if len(per_file) == 1:
            (only,) = per_file
            file_counts[only] = file_counts.get(only, 0) + 1
    unit, counts = ("files", file_counts) if whole else ("hunks", counts)
    total = sum(counts.values())
    applied = counts.pop("applied", 0)
    word = "committed" if any(a.commit for a in answers) else "applied"
    if applied and not counts:
        writes = [a for a in answers if a.written or a.committed]
        failed = bool(writes) and writes[-1].result == "written, not committed"
        not_committed = ", not committed" if failed else ""
        return (word if len(writes) < 2 else f"{word} in {len(writes)} parts") + not_committed
    if applied:
        remainder = [
            "rest rejected" if state == "rejected" and len(counts) == 1 else f"{counts[state]} {words}"
            for state, words in _REST.items()
            if counts.get(state)
        ]
        return f"partly {word} ({applied} of {total} {unit}), {', '.join(remainder)}"
    steps: list[str] = []
    for answer in answers:
        step = answer.outcome
        if answer.outcome == "allowed" and answer.result:
            step = "allowed, not written" if answer.result != "written" else word
        if not steps or steps[-1] != step:
            steps.append(step)
    return ", then ".join(steps)


def _proposal_record(records: Sequence[TranscriptRecord]) -> TranscriptRecord | None:
    """The ``proposal`` record the answers are about (the last answer's, else the run's last)."""
    last = _last_answer(records)
    proposals = [r for r in records if r.type == "proposal"]
    named = [r for r in proposals if last is not None and r.get("proposal_id") == last.get("detail")]
    found = named or proposals
    return found[-1] if found else None


ANSWERS_TAKEN = "answers_taken"
"""The ``decision`` kind a record of answers waiting for a run (``agentls acp``'s) gets when the run that
takes them is about to start: its `run_id` names the transcript that will hold them."""


def _head_approvals(records: Sequence[TranscriptRecord]) -> int:
    """How many ``approval`` records come right after the first ``run_start`` (where a run's transcript
    writes the answers given before it)."""
    types = [record.type for record in records]
    if "run_start" not in types:
        return 0
    after = types[types.index("run_start") + 1 :]
    return next((at for at, kind in enumerate(after) if kind != "approval"), len(after))


def _taken_by(records: Sequence[TranscriptRecord]) -> tuple[str, int] | None:
    """For a record of answers waiting for a run: the run id that takes them (`ANSWERS_TAKEN`) and how
    many answers it holds; None for any other transcript."""
    if run_end_of(records) is not None:
        return None
    link = next(
        (r for r in reversed(records) if r.type == "decision" and r.get("kind") == ANSWERS_TAKEN), None
    )
    if link is None or not link.get("run_id"):
        return None
    return str(link.get("run_id")), sum(1 for record in records if record.type == "approval")


def list_runs(directory: Path) -> list[RunSummary]:
    """Every run in `directory`, newest first. Unreadable files are skipped (and logged). A record of
    answers waiting for a run (`ANSWERS_TAKEN`) whose run's transcript holds them is folded into that run:
    not listed (a process killed between the two writes leaves both)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    summaries: list[tuple[RunSummary, tuple[str, int] | None]] = []
    held: dict[str, int] = {}
    for path in directory.glob("*.jsonl"):
        try:
            records, _ = _read_records(path)
        except OSError as error:
            log.warning("cannot read the transcript %s: %s", path, error)
            continue
        summaries.append((_summary(path, records), _taken_by(records)))
        held[path.stem] = _head_approvals(records)
    listed = [
        summary
        for summary, taken in summaries
        if taken is None or held.get(taken[0], -1) < taken[1]  # not in its run's transcript: listed
    ]
    return sorted(listed, key=lambda s: (s.started_at, s.run_id), reverse=True)


class RunNotFound(LookupError):
    """No transcript matches the id; the message says what to do."""


def load_run(directory: Path, run_id: str) -> RunRecord:
    """The transcript of `run_id` (a unique prefix of an id is enough). Raises `RunNotFound`."""
    directory = Path(directory)
    exact = directory / f"{run_id}.jsonl"
    if "/" in run_id or "\\" in run_id or not run_id.strip():
        raise RunNotFound(f"{run_id!r} is not a run id; `agentls runs` lists them")
    if exact.is_file():
        path = exact
    else:
        matches = sorted(directory.glob(f"{run_id}*.jsonl")) if directory.is_dir() else []
        if not matches:
            raise RunNotFound(f"no run {run_id!r} in {directory}; `agentls runs` lists the runs there")
        if len(matches) > 1:
            names = ", ".join(p.stem for p in matches[:5])
            raise RunNotFound(f"{run_id!r} matches several runs ({names}); give more of the id")
        path = matches[0]
    records, skipped = _read_records(path)
    return RunRecord(_summary(path, records), tuple(records), skipped)


def reconstruct_messages(run: RunRecord) -> list[list[Any]]:
    """The full `messages` list of each request of a run (plain dicts and lists, as they were sent
    before the model layer added cache breakpoints), rebuilt from the request records' deltas."""
    conversation: list[Any] = []
    out: list[list[Any]] = []
    for record in run.of_type("request"):
        start = int(record.get("messages_start", 0))
        conversation = conversation[:start] + _thaw(record.get("messages", ()))
        out.append(list(conversation))
    return out

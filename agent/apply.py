"""Writing accepted changes to disk, journaled, so a process killed half-way is finished on the next start.

`apply_changes` is the one place where agentls writes a proposal's files itself (`agentls run --apply`
and `--commit` through `agent.proposal.apply_proposal`, the language server's files for an editor
without resource operations, the ACP endpoint's disk writes). Before the first file it writes a journal
to ``<runs dir>/applying/`` (0600): for every path, its text and mode before and after (None: absent;
a rename is its old path removed and its new path written). It holds an exclusive `flock` on the
journal while it writes, writes each file atomically (`write_atomic`: a temporary file renamed over the
target), and removes the journal when the last file is written.

`recover_applies` runs when agentls starts (every CLI command, ``initialized`` of the language server,
``initialize`` of the ACP endpoint). A journal it can lock belongs to a process that died mid-apply. If
every path is either as it was before or as the change leaves it, the apply is rolled forward (the user
had accepted the change) and the journal removed. If some file changed since in another way (edited by
hand after the crash), nothing is written: the journal is kept as ``*.unresolved.json`` and the message
says which files are in which state. Either way the messages say what happened, for the user, and,
when the journal names its run (`apply_changes`' `run_id` and `proposal_id`) and that run's transcript
is in the runs folder, a ``proposal_applied`` decision is added to it (``recovered: true``; `written`, and
`error` when files changed since), the record the killed process did not write: ``agentls runs`` then
lists the run "applied" (or "partly applied (1 of 2 files), 1 not written", or "allowed, not written"
when the workspace folder is gone) instead of "allowed".

`OrderedWrites` is how a process with an event loop (the language server, ``agentls acp``) writes those
records without waiting on their fsyncs on the loop: one worker thread does them one at a time in the order
they were handed over, and the caller awaits each before it answers, so a record is on disk by then.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from agent.overlay import FileChange

if TYPE_CHECKING:
    from agent.recorder import Recorder

try:  # POSIX; elsewhere an apply is journaled but not locked against a concurrent recovery
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "JOURNAL_FOLDER",
    "OrderedWrites",
    "ProposalDecisions",
    "apply_changes",
    "fsync_folder",
    "journal_dir",
    "recover_applies",
    "write_atomic",
]

log = logging.getLogger(__name__)

JOURNAL_FOLDER = "applying"
"""The journal's folder inside the runs folder (next to the transcripts)."""

_VERSION = 1
_TEMP_SUFFIX = ".agentls"
_T = TypeVar("_T")


def journal_dir(runs_dir: Path) -> Path:
    """Where apply journals live for the transcripts folder `runs_dir`."""
    return runs_dir / JOURNAL_FOLDER


def fsync_folder(folder: Path) -> None:
    """Put `folder`'s entries on the disk (fsync the folder): a file's new or changed name in it survives a
    crash, not only the file's content."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, mode: int | None, *, durable: bool = False) -> None:
    """Write `text` to `path` through a temporary file renamed over it (never half-written); `mode`
    defaults to 0644. Creates missing parent folders. `durable`: on the disk when this returns (the file
    fsync'd before the rename, the folder after it), for what nothing else keeps (a user's answer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
        if durable:  # the rename itself
            fsync_folder(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@dataclass(frozen=True)
class _Entry:
    """One path of an apply: its state before and after (text None: absent)."""

    path: str
    before: str | None
    before_mode: int | None
    after: str | None
    after_mode: int | None


def _read_state(path: Path) -> tuple[str | None, int | None]:
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None, None
    return data.decode("utf-8", errors="surrogateescape"), mode


def _entries(changes: Sequence[FileChange], root: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    for change in changes:
        target = root / change.path
        before, before_mode = _read_state(target)
        if change.kind == "deleted":
            entries.append(_Entry(change.path, before, before_mode, None, None))
            continue
        source = root / (change.old_path or change.path)
        mode = source.stat().st_mode & 0o777 if source.exists() else 0o644
        entries.append(_Entry(change.path, before, before_mode, change.new_text, mode))
        if change.kind == "renamed" and change.old_path is not None:
            old, old_mode = _read_state(root / change.old_path)
            entries.append(_Entry(change.old_path, old, old_mode, None, None))
    return entries


def _lock(handle: IO[Any], *, wait: bool) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _set(root: Path, entry: _Entry) -> None:
    """Bring one path to its after state."""
    target = root / entry.path
    if entry.after is None:
        target.unlink(missing_ok=True)
    else:
        write_atomic(target, entry.after, entry.after_mode)


def apply_changes(
    changes: Sequence[FileChange],
    root: Path,
    *,
    journal: Path | None,
    label: str = "a proposal",
    on_written: Callable[[str], None] | None = None,
    run_id: str | None = None,
    proposal_id: str | None = None,
) -> list[str]:
    """Write `changes` (already checked and rebased) under `root`; returns the paths written or removed.

    `journal` is the journal folder (`journal_dir`); None writes without one (a caller with no runs
    folder). `label` names the change in a recovery message. `on_written` is called with each path once
    it is written or removed. `run_id` and `proposal_id`: the run and proposal the change is, kept in
    the journal so that a recovery adds what came of it to that run's transcript."""
    root = Path(os.path.abspath(root))
    entries = _entries(changes, root)
    handle: IO[Any] | None = None
    final: Path | None = None
    if journal is not None and entries:
        journal.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        final = journal / name
        record = {
            "version": _VERSION,
            "root": str(root),
            "label": label,
            "run_id": run_id,
            "proposal_id": proposal_id,
            "pid": os.getpid(),
            "started": time.time(),
            "files": [entry.__dict__ for entry in entries],
        }
        fd, tmp = tempfile.mkstemp(prefix=".journal.", dir=journal)
        handle = os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")
        _lock(handle, wait=True)  # before the journal is visible: a recovery must never take a live apply
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
        os.replace(tmp, final)
    touched: list[str] = []
    try:
        for entry in entries:
            _set(root, entry)
            touched.append(entry.path)
            if on_written is not None:
                on_written(entry.path)
        if final is not None:
            final.unlink(missing_ok=True)
    finally:
        if handle is not None:
            handle.close()
    # the paths in the proposal's order: a rename's new path, then its old one
    return touched


def _remove_temporaries(root: Path, paths: Sequence[str]) -> None:
    """Temporary files `write_atomic` left next to `paths` when it was killed."""
    for rel in paths:
        target = root / rel
        try:
            for leftover in target.parent.glob(f".{target.name}.*{_TEMP_SUFFIX}"):
                leftover.unlink(missing_ok=True)
        except OSError:
            continue


def _recover_one(path: Path) -> str | None:
    """Finish or report the journal at `path`; None when it is not an unfinished apply."""
    try:
        handle = path.open("r", encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None
    with handle:
        if not _lock(handle, wait=False):
            return None  # its process is still applying
        if os.fstat(handle.fileno()).st_nlink == 0:
            return None  # finished while we waited for the lock
        try:
            record = json.load(handle)
            root = Path(record["root"])
            label = str(record.get("label") or "a proposal")
            entries = [_Entry(**item) for item in record["files"]]
        except (ValueError, KeyError, TypeError) as error:
            bad = path.with_suffix(".unreadable.json")
            os.replace(path, bad)
            return f"agentls found an apply journal it cannot read ({error}); it is kept at {bad}."
        if not root.is_dir():
            path.unlink(missing_ok=True)
            message = f"agentls was stopped while applying {label} to {root}, which no longer exists."
            _record(path.parent, record, root=None, written=[], error=message)
            return message
        states = {}
        for entry in entries:
            now, _mode = _read_state(root / entry.path)
            state = "after" if now == entry.after else "before" if now == entry.before else "other"
            states[entry.path] = state
        _remove_temporaries(root, [e.path for e in entries])
        done = sum(state == "after" for state in states.values())
        where = f"{label} to {root} ({done} of {len(entries)} files written)"
        others = [p for p, state in states.items() if state == "other"]
        if others:
            kept = path.with_suffix(".unresolved.json")
            os.replace(path, kept)
            message = (
                f"agentls was stopped while applying {where}, and {', '.join(others)} changed since, so "
                f"agentls wrote nothing more. Written: {_names(states, 'after')}; not written: "
                f"{_names(states, 'before')}. Check those files; what each should contain is in {kept}."
            )
            written = [p for p, state in states.items() if state == "after"]
            _record(path.parent, record, root=root, written=written, error=message)
            return message
        pending = [e for e in entries if states[e.path] == "before"]
        for entry in pending:
            _set(root, entry)
        path.unlink(missing_ok=True)
        _record(path.parent, record, root=root, written=[e.path for e in entries], error=None)
        if not pending:
            return f"agentls was stopped after applying {where}; every file was already written."
        return (
            f"agentls was stopped while applying {where}; it finished the change now: "
            f"{', '.join(e.path for e in pending)} written."
        )


def _record(
    journal: Path, record: dict[str, Any], *, root: Path | None, written: list[str], error: str | None
) -> None:
    """Add what came of a recovered apply to its run's transcript (in the runs folder, next to the
    journal folder): the ``proposal_applied`` decision the killed process did not write (`recovered`:
    finished at a later start). Nothing when the journal names no run (an older journal)."""
    run_id, proposal_id = record.get("run_id"), record.get("proposal_id")
    if isinstance(run_id, str) and isinstance(proposal_id, str):
        decisions = ProposalDecisions(journal.parent, run_id, proposal_id, root=root)
        decisions.applied(written, error, recovered=True)


class ProposalDecisions:
    """What the user did with a run's proposal and what came of it, appended to the run's transcript in
    `runs_dir` after its ``run_end`` (`agent.recorder.after_the_run`: fsync'd, secrets withheld, `redact`
    too): `answered` (an ``approval`` of subject ``proposal``) and `applied` (a ``proposal_applied``
    decision). Nothing is written for a run without a transcript there (none is made up), and a failure
    to write is logged, never raised: the answer takes effect all the same."""

    def __init__(
        self, runs_dir: Path, run_id: str, proposal_id: str, *, root: Path | None, redact: Sequence[str] = ()
    ) -> None:
        path = Path(runs_dir) / f"{run_id}.jsonl"
        self.path = path if "/" not in run_id and path.is_file() else None
        self.proposal_id, self.root, self.redact = proposal_id, root, list(redact)
        if self.path is None:
            log.info(
                "run %s has no transcript in %s: what came of its proposal is not on record", run_id, runs_dir
            )

    def _write(self, write: Callable[[Recorder], None]) -> None:
        from agent.recorder import after_the_run

        if self.path is None:
            return
        try:
            recorder = after_the_run(self.path, root=self.root, redact=self.redact)
            try:
                write(recorder)
            finally:
                recorder.close()
        except Exception:
            log.exception("what came of proposal %s could not be added to %s", self.proposal_id, self.path)

    def answered(
        self,
        outcome: str,
        answer: str | None,
        files: Sequence[str],
        *,
        question: str,
        reason: str | None = None,
        **more: Any,
    ) -> None:
        """The user's answer: `outcome` "allowed", "rejected", "cancelled" or "unanswered" (`reason`
        says why no answer came), `answer` what they chose, `files` the paths it covers."""
        self._write(
            lambda recorder: recorder.proposal_answered(
                self.proposal_id,
                question=question,
                outcome=outcome,
                answer=answer,
                files=files,
                reason=reason,
                **more,
            )
        )

    def applied(self, written: Sequence[str], error: str | None, **more: Any) -> None:
        """What came of an allowed proposal: the paths `written`, or the `error` that stopped the writes."""
        self._write(
            lambda recorder: recorder.proposal_applied(self.proposal_id, written=written, error=error, **more)
        )


class OrderedWrites:
    """Durable writes (`ProposalDecisions`' records: two fsyncs each) taken off an event loop: one worker
    thread does them one at a time, in the order `submit` was called, so a run's answer is written before
    what came of it and a later answer after both, and the loop goes on serving meanwhile.

    Await what `submit` returns before answering the request the write records: the record is then on
    disk (fsync'd) when the answer goes out, as when the loop wrote it itself. A write handed over is done
    even when the request is cancelled, awaiting or not (a cancel while it waits in line does not take it
    out of the line); the worker's thread is joined at the process's exit, so a write handed over before
    a clean exit is not lost. `wait` does the same for a caller without an event loop."""

    def __init__(self, name: str = "agentls-records") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, write: Callable[[], _T]) -> asyncio.Future[_T]:
        """Queue `write` behind those handed over before it; its future on the running loop (cancelling
        that future leaves the write to be done)."""
        return asyncio.shield(asyncio.wrap_future(self._pool.submit(write)))

    def wait(self, write: Callable[[], _T]) -> _T:
        """Queue `write` behind those handed over before it and wait for it on this thread (the process's
        end, its event loop gone)."""
        return self._pool.submit(write).result()


def _names(states: dict[str, str], state: str) -> str:
    return ", ".join(p for p, s in states.items() if s == state) or "none"


def recover_applies(journal: Path) -> list[str]:
    """Finish every apply a killed process left unfinished in the journal folder `journal`; one message
    per apply for the user (empty when there was none)."""
    try:
        found = sorted(p for p in journal.iterdir() if p.suffix == ".json" and p.stem.count(".") == 0)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for stale in journal.glob(".journal.*"):  # killed before its journal was complete: nothing written
        with stale.open("rb") as handle:
            if _lock(handle, wait=False):
                stale.unlink(missing_ok=True)
    messages: list[str] = []
    for path in found:
        try:
            message = _recover_one(path)
        except OSError as error:
            message = f"agentls could not finish the interrupted apply in {path}: {error}; fix it, retry."
        if message is not None:
            log.warning("%s", message)
            messages.append(message)
    return messages

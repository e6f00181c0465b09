"""The proposal store's state machine, `prepare_changes`, `proposal_hunks`, the lenses, and accept and
reject through `RunManager` with a plain editor that implements the `Editor` port."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from agent.overlay import FileChange
from agent.proposal import Proposal
from agent.usage import Usage
from server.documents import DocumentStore
from server.edits import NoApplyEdit
from server.features import commands
from server.features.progress import WorkDone
from server.features.runs import (
    AcceptRefused,
    ProposalError,
    ProposalStore,
    RunManager,
    prepare_changes,
    proposal_hunks,
)
from server.features.runs.lenses import proposal_lenses
from server.features.runs.proposals import file_hunks, split_hunks
from server.settings import Settings

BASE = "def f():\n    pass\n\n\ndef g():\n    return 1\n"
NEW = "def f():\n    return 42\n\n\ndef g():\n    return 1\n"


def change(
    path: str = "m.py", kind: Any = "modified", base: str = BASE, new: str = NEW, **kw: Any
) -> FileChange:
    return FileChange(
        path=path,
        kind=kind,
        old_path=kw.get("old_path"),
        base_text=base,
        new_text=new,
        base_version=None,
        diff=f"--- a/{path}\n+++ b/{path}\n",
    )


def proposal(*files: FileChange, pid: str = "p1") -> Proposal:
    return Proposal(
        proposal_id=pid,
        run_id="r1",
        summary="Implement f\nmore",
        files=tuple(files),
        diff="diff",
        usage=Usage(),
        cost=0.0,
        verified=True,
        verification_summary="ok",
    )


# -- the store ----------------------------------------------------------------------------------------


def test_a_new_proposal_is_pending_and_one_without_files_is_empty(tmp_path: Path) -> None:
    store = ProposalStore()
    store.add(proposal(change()), tmp_path, "implement")
    store.add(proposal(pid="p2"), tmp_path, "ask")
    assert store.status("p1") == "pending"
    assert store.status("p2") == "empty"
    assert [p.proposal.proposal_id for p in store.pending()] == ["p1"]


def test_accept_goes_through_applying_and_cannot_happen_twice(tmp_path: Path) -> None:
    store = ProposalStore()
    store.add(proposal(change()), tmp_path, "implement")
    store.begin_accept("p1")
    assert store.status("p1") == "applying"
    with pytest.raises(ProposalError, match="is being applied; wait"):
        store.begin_accept("p1")
    with pytest.raises(ProposalError, match="is being applied"):
        store.reject("p1")
    store.finish_accept("p1", applied=True)
    assert store.status("p1") == "accepted"
    with pytest.raises(ProposalError, match="was already accepted; nothing was accepted again"):
        store.begin_accept("p1")
    with pytest.raises(ProposalError, match="was already accepted; nothing was rejected again"):
        store.reject("p1")
    assert store.status("p1") == "accepted"
    assert list(store.pending()) == []


def test_an_accept_the_editor_declined_leaves_the_proposal_pending(tmp_path: Path) -> None:
    store = ProposalStore()
    store.add(proposal(change()), tmp_path, "implement")
    store.begin_accept("p1")
    store.finish_accept("p1", applied=False)
    assert store.status("p1") == "pending"
    with pytest.raises(ProposalError, match="pending, not being applied"):
        store.finish_accept("p1", applied=True)


def test_reject_then_accept_or_reject_again_is_refused(tmp_path: Path) -> None:
    store = ProposalStore()
    store.add(proposal(change()), tmp_path, "implement")
    store.reject("p1")
    assert store.status("p1") == "rejected"
    with pytest.raises(ProposalError, match="was rejected; run the task again"):
        store.begin_accept("p1")
    with pytest.raises(ProposalError, match="was rejected"):
        store.reject("p1")


def test_unknown_and_empty_proposals_are_refused_with_what_happened(tmp_path: Path) -> None:
    store = ProposalStore()
    with pytest.raises(ProposalError, match=r"no proposal nope in this server .*nothing was accepted"):
        store.begin_accept("nope")
    with pytest.raises(ProposalError, match="no proposal nope in this server"):
        store.get("nope")
    store.add(proposal(pid="p2"), tmp_path, "ask")
    with pytest.raises(ProposalError, match="has no changes to reject; its run changed no file"):
        store.reject("p2")
    assert store.status("p2") == "empty"


# -- prepare_changes and proposal_hunks -----------------------------------------------------------


def test_unchanged_files_keep_their_change() -> None:
    c = change()
    assert prepare_changes([c], {"m.py": BASE}.get) == [c]


def test_a_file_edited_elsewhere_gets_the_proposal_rebased_onto_the_edit() -> None:
    edited = BASE.replace("return 1", "return 2")
    (out,) = prepare_changes([change()], {"m.py": edited}.get)
    assert out.base_text == edited
    assert out.new_text == NEW.replace("return 1", "return 2")


def test_a_stale_proposal_is_refused_as_a_whole_naming_each_file() -> None:
    conflicting = BASE.replace("pass", "return 0")
    files = [change(), change("gone.py"), change("new.py", "created", "", "x = 1\n")]
    current = {"m.py": conflicting, "new.py": "y = 2\n"}.get
    with pytest.raises(AcceptRefused) as refused:
        prepare_changes(files, current)
    message = str(refused.value)
    assert "m.py:" in message
    assert "gone.py no longer exists" in message
    assert "new.py was created since the run began" in message


def test_deletes_creates_and_renames() -> None:
    created = change("new.py", "created", "", "x = 1\n")
    deleted = change("old.py", "deleted", "a = 1\n", "")
    renamed = change("b.py", "renamed", BASE, NEW, old_path="a.py")
    assert prepare_changes([created], dict[str, str]().get) == [created]
    assert prepare_changes([created], {"new.py": "x = 1\n"}.get) == []  # already there, identical
    assert prepare_changes([deleted], dict[str, str]().get) == []  # already gone
    with pytest.raises(AcceptRefused, match=r"you changed old\.py since the run began"):
        prepare_changes([deleted], {"old.py": "a = 2\n"}.get)
    assert prepare_changes([renamed], {"a.py": BASE}.get) == [renamed]
    with pytest.raises(AcceptRefused, match=r"b\.py exists now; the proposal renames a\.py to it"):
        prepare_changes([renamed], {"a.py": BASE, "b.py": ""}.get)


def test_hunks_start_where_the_changes_are_also_after_an_edit_above() -> None:
    assert proposal_hunks(BASE, change()) == [1]
    shifted = "import os\n\n" + BASE
    assert proposal_hunks(shifted, change()) == [3]
    two = change(new=NEW.replace("return 1", "return 7"))
    assert proposal_hunks(BASE, two) == [1, 5]


def test_lenses_for_pending_proposals_of_this_document(tmp_path: Path) -> None:
    store = ProposalStore()
    store.add(proposal(change()), tmp_path, "implement")
    store.add(proposal(change("other.py"), pid="p2"), tmp_path, "implement")
    uri = (tmp_path / "m.py").as_uri()
    lenses = proposal_lenses(uri, BASE, tmp_path, "m.py", store.pending())
    assert [(lens.range.start.line, lens.command.title) for lens in lenses if lens.command] == [
        (1, "Accept"),
        (1, "Reject"),
        (1, "Show diff"),
    ]
    assert lenses[0].command is not None and lenses[0].command.command == commands.ACCEPT
    assert lenses[0].command.arguments == [{"proposalId": "p1"}]
    assert lenses[2].command is not None and lenses[2].command.arguments == [{"proposalId": "p1", "uri": uri}]
    store.reject("p1")
    assert proposal_lenses(uri, BASE, tmp_path, "m.py", store.pending()) == []


# -- accept and reject through the manager, with a plain editor ------------------------------------


class PlainEditor:
    """The `Editor` port, recording what the manager asked; `apply` decides the editor's answer."""

    handles_proposals = True

    def __init__(self, apply: Callable[[], types.ApplyWorkspaceEditResult]) -> None:
        self.apply = apply
        self.applied: list[list[FileChange]] = []
        self.shown: list[tuple[str, types.MessageType]] = []
        self.notified: list[tuple[str, Any]] = []
        self.refreshed = 0

    def notify(self, method: str, params: Any) -> None:
        self.notified.append((method, params))

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.shown.append((message, kind))

    async def apply_edit(
        self, changes: Sequence[FileChange], root: Path, *, label: str, description: str | None
    ) -> types.ApplyWorkspaceEditResult | None:
        self.applied.append(list(changes))
        return self.apply()

    async def ask(self, question: str, options: Sequence[str]) -> str | None:
        return None

    async def show_document(self, uri: str) -> bool:
        return False

    async def start_progress(self, title: str, message: str, on_cancel: Callable[[], None]) -> WorkDone:
        return WorkDone(None, "token")

    def refresh_lenses(self) -> None:
        self.refreshed += 1


class PlainWorkspace:
    """The `Workspace` port over one folder and a real `DocumentStore`."""

    def __init__(self, root: Path) -> None:
        self.roots = [root]
        self.documents = DocumentStore(1_000_000)
        self.env: Mapping[str, str] = {}
        self.cache_dir = root / ".cache"

    def settings_for(self, root: Path) -> Settings:
        return Settings()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:
        return asyncio.get_running_loop().create_task(coro)


def manager_with(tmp_path: Path, editor: PlainEditor) -> RunManager:
    (tmp_path / "m.py").write_text(BASE, encoding="utf-8")
    manager = RunManager(editor, PlainWorkspace(tmp_path))
    manager.proposals.add(proposal(change()), tmp_path, "implement")
    return manager


def test_accept_reads_the_open_buffer_and_sends_the_rebased_change(tmp_path: Path) -> None:
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    manager = manager_with(tmp_path, editor)
    edited = BASE.replace("return 1", "return 2")
    manager.workspace.documents.open((tmp_path / "m.py").as_uri(), edited, 3, "python")
    result = asyncio.run(manager.accept("p1"))
    assert (result.proposal_id, result.applied, result.failure_reason) == ("p1", True, None)
    assert [c.new_text for c in editor.applied[0]] == [NEW.replace("return 1", "return 2")]
    assert manager.proposals.status("p1") == "accepted"
    assert editor.refreshed == 1
    with pytest.raises(JsonRpcException, match="already accepted") as twice:
        asyncio.run(manager.accept("p1"))
    assert twice.value.code == types.LSPErrorCodes.RequestFailed.value == -32803


def test_a_declined_or_failed_edit_leaves_the_proposal_pending(tmp_path: Path) -> None:
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=False, failure_reason="busy"))
    manager = manager_with(tmp_path, editor)
    result = asyncio.run(manager.accept("p1"))
    assert (result.applied, result.failure_reason) == (False, "busy")
    assert manager.proposals.status("p1") == "pending"

    def boom() -> types.ApplyWorkspaceEditResult:
        raise ConnectionError("gone")

    editor.apply = boom
    with pytest.raises(JsonRpcException, match="the editor did not apply proposal p1: gone"):
        asyncio.run(manager.accept("p1"))
    assert manager.proposals.status("p1") == "pending"
    assert asyncio.run(manager.reject("p1")).rejected
    assert manager.proposals.status("p1") == "rejected"


def test_an_editor_that_never_answers_the_apply_leaves_the_proposal_pending(tmp_path: Path) -> None:
    """No answer to workspace/applyEdit (or the accept cancelled while waiting): the proposal does not stay
    "applying", where it could be neither accepted nor rejected."""

    class SilentEditor(PlainEditor):
        async def apply_edit(self, *args: Any, **kwargs: Any) -> types.ApplyWorkspaceEditResult | None:
            await asyncio.Event().wait()  # never answered
            return None

    editor = SilentEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    manager = manager_with(tmp_path, editor)
    manager.apply_timeout = 0.2
    with pytest.raises(JsonRpcException, match=r"did not answer workspace/applyEdit .* pending again"):
        asyncio.run(manager.accept("p1"))
    assert manager.proposals.status("p1") == "pending"

    async def cancelled_accept() -> None:
        manager.apply_timeout = 60
        task = asyncio.ensure_future(manager.accept("p1"))
        await asyncio.sleep(0.1)
        assert manager.proposals.status("p1") == "applying"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_accept())
    assert manager.proposals.status("p1") == "pending"
    assert asyncio.run(manager.reject("p1")).rejected


@pytest.mark.parametrize("plugin", [True, False])
def test_a_stale_accept_applies_nothing_and_says_why(tmp_path: Path, plugin: bool) -> None:
    """The refusal is the answer; only an editor without the agentls plugin is also shown it."""
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    editor.handles_proposals = plugin
    manager = manager_with(tmp_path, editor)
    (tmp_path / "m.py").write_text(BASE.replace("pass", "return 0"), encoding="utf-8")
    with pytest.raises(JsonRpcException, match=r"agentls did not apply proposal p1: m\.py") as refused:
        asyncio.run(manager.accept("p1"))
    assert editor.applied == []
    assert manager.proposals.status("p1") == "pending"
    assert editor.shown == ([] if plugin else [(refused.value.message, types.MessageType.Error)])


def test_a_refused_accept_from_the_proposals_question_is_shown_once(tmp_path: Path) -> None:
    """An editor without the plugin answers the proposal's question with Accept; the refusal is shown once."""

    class Accepting(PlainEditor):
        handles_proposals = False

        async def ask(self, question: str, options: Sequence[str]) -> str | None:
            return "Accept"

    editor = Accepting(lambda: types.ApplyWorkspaceEditResult(applied=True))
    manager = manager_with(tmp_path, editor)
    (tmp_path / "m.py").write_text(BASE.replace("pass", "return 0"), encoding="utf-8")
    asyncio.run(manager._announce(manager.proposals.get("p1").proposal))
    assert [kind for _, kind in editor.shown] == [types.MessageType.Error], editor.shown
    assert editor.shown[0][0].startswith("agentls did not apply proposal p1: m.py"), editor.shown
    assert manager.proposals.status("p1") == "pending"


# -- per-hunk accept ------------------------------------------------------------------------------------

BASE2 = "def f():\n    pass\n\n\ndef g():\n    return 1\n\n\ndef h():\n    return 3\n"
NEW2 = "def f():\n    return 42\n\n\ndef g():\n    return 1\n\n\ndef h():\n    return 4\n"
ONLY_F = "def f():\n    return 42\n\n\ndef g():\n    return 1\n\n\ndef h():\n    return 3\n"


def test_hunks_have_ids_lines_and_split_into_chosen_and_rest() -> None:
    hunks = file_hunks(change(base=BASE2, new=NEW2))
    assert [(h.old_start, h.old_lines, h.new_start, h.new_lines) for h in hunks] == [
        (2, 1, 2, 1),
        (10, 1, 10, 1),
    ]
    assert all(h.id.startswith("m.py#") for h in hunks) and hunks[0].id != hunks[1].id
    chosen, rest = split_hunks([change(base=BASE2, new=NEW2)], [hunks[0].id])
    assert [c.new_text for c in chosen] == [ONLY_F] and [c.base_text for c in chosen] == [BASE2]
    assert [(c.base_text, c.new_text) for c in rest] == [(ONLY_F, NEW2)]
    assert "+    return 4" in rest[0].diff and "return 42" not in rest[0].diff.replace(" return 42\n", "")
    assert [h.id for h in file_hunks(rest[0])] == [hunks[1].id]  # the rest keeps its id
    created = change("n.py", "created", "", "x = 1\n")
    (whole,) = file_hunks(created)
    assert split_hunks([created], [whole.id]) == ([created], [])
    assert split_hunks([created, change()], [whole.id])[1] == [change()]
    with pytest.raises(ProposalError, match=r"m\.py#nope is not a hunk of this proposal"):
        split_hunks([change()], ["m.py#nope"])


def test_a_partial_accept_applies_the_chosen_hunks_and_keeps_the_rest_pending(tmp_path: Path) -> None:
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    (tmp_path / "m.py").write_text(BASE2, encoding="utf-8")
    manager = RunManager(editor, PlainWorkspace(tmp_path))
    manager.proposals.add(proposal(change(base=BASE2, new=NEW2)), tmp_path, "implement")
    details = manager.proposal("p1")
    first, second = (h.id for h in details.files[0].hunks)

    with pytest.raises(JsonRpcException, match="is not a hunk"):
        asyncio.run(manager.accept("p1", ["m.py#0000"]))
    assert editor.applied == [] and manager.proposals.status("p1") == "pending"

    result = asyncio.run(manager.accept("p1", [first]))
    assert result.applied and result.pending_hunks == [second]
    assert [c.new_text for c in editor.applied[0]] == [ONLY_F]
    assert manager.proposals.status("p1") == "pending"
    left = manager.proposal("p1")
    assert [h.id for h in left.files[0].hunks] == [second]
    assert not left.verified and "not verified" in left.verification_summary
    assert "+    return 4" in left.diff and "+    return 42" not in left.diff

    (tmp_path / "m.py").write_text(ONLY_F, encoding="utf-8")  # what the editor saved
    assert asyncio.run(manager.accept("p1", [second])).pending_hunks == []
    assert [c.new_text for c in editor.applied[1]] == [NEW2]
    assert manager.proposals.status("p1") == "accepted"


def test_reject_after_a_partial_accept_drops_the_rest(tmp_path: Path) -> None:
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    (tmp_path / "m.py").write_text(BASE2, encoding="utf-8")
    manager = RunManager(editor, PlainWorkspace(tmp_path))
    manager.proposals.add(proposal(change(base=BASE2, new=NEW2)), tmp_path, "implement")
    first = manager.proposal("p1").files[0].hunks[0].id
    asyncio.run(manager.accept("p1", [first]))
    assert asyncio.run(manager.reject("p1")).rejected and manager.proposals.status("p1") == "rejected"
    assert len(editor.applied) == 1


def test_the_accept_args_take_hunks() -> None:
    parsed = commands.parse_arguments(
        commands.ACCEPT, commands.ARGUMENTS[commands.ACCEPT], [{"proposalId": "p1", "hunks": ["m.py#ab"]}]
    )
    assert parsed.hunks == ["m.py#ab"]  # type: ignore[attr-defined]


def test_an_accept_refused_as_stale_waits_for_the_late_did_change_and_retries(tmp_path: Path) -> None:
    uri = (tmp_path / "m.py").as_uri()
    typed = "# typed\n" + BASE
    answers: list[types.ApplyWorkspaceEditResult] = []

    def apply() -> types.ApplyWorkspaceEditResult:
        if not answers:  # the keystroke reaches the server 0.3 s after the editor refused the edit
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, manager.workspace.documents.change, uri, typed, 4)
            answers.append(
                types.ApplyWorkspaceEditResult(
                    applied=False, failure_reason="Edits on 'm.py' require version 3"
                )
            )
        else:
            answers.append(types.ApplyWorkspaceEditResult(applied=True))
        return answers[-1]

    editor = PlainEditor(apply)
    manager = manager_with(tmp_path, editor)
    manager.workspace.documents.open(uri, BASE, 3, "python")
    result = asyncio.run(manager.accept("p1"))
    assert result.applied and manager.proposals.status("p1") == "accepted"
    assert [c.new_text for c in editor.applied[1]] == ["# typed\n" + NEW]  # rebased onto the keystroke


def test_an_accept_the_editor_keeps_refusing_says_what_to_do(tmp_path: Path) -> None:
    editor = PlainEditor(
        lambda: types.ApplyWorkspaceEditResult(
            applied=False, failure_reason="Edits on 'm.py' require version 3"
        )
    )
    manager = manager_with(tmp_path, editor)
    manager.settle_timeout = 0.2
    manager.workspace.documents.open((tmp_path / "m.py").as_uri(), BASE, 3, "python")
    result = asyncio.run(manager.accept("p1"))
    assert not result.applied and str(result.failure_reason).startswith(
        "Edits on 'm.py' require version 3. Your editor holds changes it has not sent to agentls yet"
    )
    assert "wait a second, or save the file, and accept again" in str(result.failure_reason)
    assert manager.proposals.status("p1") == "pending" and len(editor.applied) == 1
    assert editor.shown == []  # the plugin says the answer's reason; a message too would say it twice


def test_reverify_checks_what_is_left_of_a_partly_accepted_proposal(tmp_path: Path) -> None:
    broken = NEW2.replace("    return 4\n", "    return (4\n")
    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    (tmp_path / "m.py").write_text(BASE2, encoding="utf-8")
    manager = RunManager(editor, PlainWorkspace(tmp_path))
    manager.proposals.add(proposal(change(base=BASE2, new=broken)), tmp_path, "implement")
    first = manager.proposal("p1").files[0].hunks[0].id
    asyncio.run(manager.accept("p1", [first]))
    (tmp_path / "m.py").write_text(ONLY_F, encoding="utf-8")
    assert "not verified" in manager.proposal("p1").verification_summary

    details = asyncio.run(manager.reverify("p1"))
    assert not details.verified and "not verified" not in details.verification_summary
    assert "syntax python: FAILED" in details.verification_summary, details.verification_summary
    assert manager.proposals.status("p1") == "pending"
    asyncio.run(manager.reject("p1"))
    with pytest.raises(JsonRpcException, match="only a pending one is verified"):
        asyncio.run(manager.reverify("p1"))


def test_a_run_with_an_unknown_mode_is_refused_before_it_gets_a_run_id(tmp_path: Path) -> None:
    manager = manager_with(tmp_path, PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True)))
    args = commands.parse_arguments(
        commands.RUN, commands.ARGUMENTS[commands.RUN], [{"instruction": "Say hi", "mode": "bogus"}]
    )
    with pytest.raises(JsonRpcException, match="there is no graph 'bogus'; the graphs are: solo, team"):
        asyncio.run(manager.start(commands.RUN, args))
    assert manager.runs == {}


class NoEditsEditor(PlainEditor):
    """An editor without ``workspace.applyEdit``: the server writes the files."""

    async def apply_edit(self, *args: Any, **kwargs: Any) -> types.ApplyWorkspaceEditResult | None:
        raise NoApplyEdit("your editor applies no edits agentls sends")


def fsync_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The threads `os.fsync` runs on from now on (the real fsync, its thread noted)."""
    real_fsync, threads = os.fsync, []

    def fsync(fd: int) -> None:
        threads.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return threads


def test_the_answers_records_are_fsynced_off_the_loop_in_order_before_each_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``approval`` and ``proposal_applied`` records of an accept, then the reject's ``approval``, are
    written (each fsync'd) on a worker thread, never on the event loop's, in the order the answers came,
    and each is in the transcript when its command is answered."""
    import json

    from agent.transcript import Transcript

    editor = PlainEditor(lambda: types.ApplyWorkspaceEditResult(applied=True))
    (tmp_path / "m.py").write_text(BASE2, encoding="utf-8")
    manager = RunManager(editor, PlainWorkspace(tmp_path))
    manager.proposals.add(proposal(change(base=BASE2, new=NEW2)), tmp_path, "implement")
    runs = tmp_path / ".cache" / "runs"
    transcript = Transcript(runs, "r1")
    transcript.write("run_start", run_id="r1", task={"title": "T", "kind": "run"}, model="m")
    transcript.write("run_end", status="proposed", usage={}, cost=0.0, proposal_id="p1")
    transcript.close()
    synced_on = fsync_threads(monkeypatch)

    def answers() -> list[tuple[str, Any]]:
        lines = transcript.path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines][2:]
        return [(r["type"], r.get("outcome") or r.get("written")) for r in records]

    async def answer() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        first = manager.proposal("p1").files[0].hunks[0].id
        assert (await manager.accept("p1", [first])).applied
        accepted = answers()
        assert (await manager.reject("p1")).rejected
        return accepted, answers()

    loop_thread = threading.get_ident()  # asyncio.run runs the loop on this thread
    accepted, rejected = asyncio.run(answer())
    assert accepted == [("approval", "allowed"), ("decision", ["m.py"])]
    assert rejected == [*accepted, ("approval", "rejected")]
    assert synced_on and loop_thread not in synced_on, "an fsync ran on the event loop"


def test_the_files_the_server_writes_for_an_editor_without_apply_edit_are_written_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor that applies no edit has the server write the files (`agent.apply.apply_changes`, its
    journal fsync'd) on a worker thread; the accept answers once they are written."""
    manager = manager_with(tmp_path, NoEditsEditor(lambda: types.ApplyWorkspaceEditResult(applied=True)))
    synced_on = fsync_threads(monkeypatch)
    loop_thread = threading.get_ident()
    assert asyncio.run(manager.accept("p1")).applied
    assert (tmp_path / "m.py").read_text(encoding="utf-8") == NEW
    assert list((tmp_path / ".cache" / "runs" / "applying").iterdir()) == []  # the journal is gone
    assert synced_on and loop_thread not in synced_on, "the journal was fsync'd on the event loop"


def test_an_accept_cancelled_while_the_server_writes_its_files_answers_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editor applied its part (here: none, it applies no edits) and the files are being written when
    the accept is cancelled: the writes finish, and the accept answers that they did."""
    manager = manager_with(tmp_path, NoEditsEditor(lambda: types.ApplyWorkspaceEditResult(applied=True)))
    real_fsync, entered, release = os.fsync, threading.Event(), threading.Event()

    def fsync(fd: int) -> None:  # the journal's fsync waits until the accept was cancelled
        entered.set()
        release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    async def cancelled_while_writing() -> Any:
        task = asyncio.ensure_future(manager.accept("p1"))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        release.set()
        return await task

    result = asyncio.run(cancelled_while_writing())
    assert result.applied and manager.proposals.status("p1") == "accepted"
    assert (tmp_path / "m.py").read_text(encoding="utf-8") == NEW

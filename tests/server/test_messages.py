"""Each typed reply converts to the JSON the editors read (the wire format the VS Code extension and the
Neovim plugin depend on), pinned here key by key, plus what `to_json` does with nesting and None."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.messages import (
    AcceptResult,
    CancelResult,
    DiffShown,
    HunkInfo,
    ProposalDetails,
    ProposalFile,
    ProposalFileDetails,
    ProposalReady,
    Reindexed,
    RejectResult,
    RunFailed,
    RunInfo,
    RunStarted,
    SearchResult,
    ServerStats,
    to_json,
)

USAGE = {
    "input_tokens": 1,
    "output_tokens": 2,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 3,
}
RANGE = {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 5}}

CASES: list[tuple[Any, Any]] = [
    (RunStarted("r1"), {"runId": "r1"}),
    (CancelResult("r1", "cancelling"), {"runId": "r1", "status": "cancelling"}),
    (RunFailed("r1", "no key", "failed"), {"runId": "r1", "message": "no key", "status": "failed"}),
    (
        RunInfo("r1", "Implement f", "implement", "proposed", USAGE, 0.5, None, "proposal ready: 1 file(s)"),
        {
            "runId": "r1",
            "task": "Implement f",
            "kind": "implement",
            "status": "proposed",
            "usage": USAGE,
            "cost": 0.5,
            "proposalId": None,  # a run without a proposal says so with null, as before
            "message": "proposal ready: 1 file(s)",
        },
    ),
    (
        ProposalReady("p1", "r1", "done", [ProposalFile("file:///w/m.py", "m.py", "modified")], "proposed"),
        {
            "proposalId": "p1",
            "runId": "r1",
            "summary": "done",
            "files": [{"uri": "file:///w/m.py", "path": "m.py", "kind": "modified"}],
            "status": "proposed",
        },
    ),
    (
        ProposalDetails(
            proposal_id="p1",
            run_id="r1",
            summary="done",
            diff="D",
            files=[
                ProposalFileDetails(
                    "file:///w/m.py", "m.py", "modified", "d1", hunks=[HunkInfo("m.py#ab12cd34", 2, 1, 2, 3)]
                ),
                ProposalFileDetails("file:///w/b.py", "b.py", "renamed", "d2", old_uri="file:///w/a.py"),
            ],
            usage=USAGE,
            cost=0.25,
            verified=True,
            verification_summary="pytest: 3 passed",
            complete=False,
            status="pending",
            commit_message="feat: done\n",
        ),
        {
            "proposalId": "p1",
            "runId": "r1",
            "summary": "done",
            "diff": "D",
            "files": [
                {
                    "uri": "file:///w/m.py",
                    "path": "m.py",
                    "kind": "modified",
                    "diff": "d1",
                    "hunks": [
                        {"id": "m.py#ab12cd34", "oldStart": 2, "oldLines": 1, "newStart": 2, "newLines": 3}
                    ],
                },
                {
                    "uri": "file:///w/b.py",
                    "path": "b.py",
                    "kind": "renamed",
                    "diff": "d2",
                    "oldUri": "file:///w/a.py",
                    "hunks": [],
                },
            ],
            "usage": USAGE,
            "cost": 0.25,
            "verified": True,
            "verificationSummary": "pytest: 3 passed",
            "complete": False,
            "status": "pending",
            "commitMessage": "feat: done\n",
        },
    ),
    (AcceptResult("p1", True), {"proposalId": "p1", "applied": True}),
    (
        AcceptResult("p1", True, pending_hunks=["m.py#ab12cd34"]),
        {"proposalId": "p1", "applied": True, "pendingHunks": ["m.py#ab12cd34"]},
    ),
    (
        AcceptResult("p1", False, "busy"),
        {"proposalId": "p1", "applied": False, "failureReason": "busy"},
    ),
    (RejectResult("p1"), {"proposalId": "p1", "rejected": True}),
    (DiffShown("file:///c/p1.diff", "D"), {"uri": "file:///c/p1.diff", "diff": "D"}),
    (
        SearchResult("m.py", "file:///w/m.py", RANGE, None, "function", "python", 0.9, "def f(): ..."),
        {
            "path": "m.py",
            "uri": "file:///w/m.py",
            "range": RANGE,
            "symbol": None,
            "kind": "function",
            "language": "python",
            "score": 0.9,
            "text": "def f(): ...",
        },
    ),
    (
        ServerStats("0.1.0", "utf-8", ["/w"], 2, None, {"/w": "done"}, True, {"agent": {}}),
        {
            "version": "0.1.0",
            "positionEncoding": "utf-8",
            "folders": ["/w"],
            "documents": 2,
            "loop": None,
            "indexing": {"/w": "done"},
            "indexingIdle": True,
            "settings": {"agent": {}},
        },
    ),
    (Reindexed(["/w"]), {"folders": ["/w"]}),
]


@pytest.mark.parametrize(("reply", "wire"), CASES, ids=[type(reply).__name__ for reply, _ in CASES])
def test_each_reply_is_the_json_the_editors_read(reply: Any, wire: Any) -> None:
    converted = to_json(reply)
    assert converted == wire
    assert list(converted) == list(wire)  # the same keys, in the same order
    assert json.loads(json.dumps(converted)) == wire  # plain JSON, nothing left to convert


def test_lists_of_replies_convert_item_by_item() -> None:
    assert to_json([RunStarted("a"), RunStarted("b")]) == [{"runId": "a"}, {"runId": "b"}]
    assert to_json({"k": (RunStarted("a"),)}) == {"k": [{"runId": "a"}]}

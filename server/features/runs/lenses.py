"""Code lenses for pending proposals: "Accept", "Reject" and "Show diff" at each hunk of an open document.

Pure: `proposal_lenses` takes the document (its URI, text, folder and relative path) and the pending
proposals, and returns the lenses. A deleted file gets its lenses on the first line; a modified or
renamed file at the start of each hunk, located in the current text by `proposals.proposal_hunks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lsprotocol import types

from server.features import commands
from server.features.runs.proposals import Pending, proposal_hunks

__all__ = ["proposal_lenses"]


def proposal_lenses(
    uri: str, text: str, root: Path, rel: str, pending: Iterable[Pending]
) -> list[types.CodeLens]:
    """The lenses of the document `uri` (``root``/``rel``, holding `text`) for these pending proposals."""
    lenses: list[types.CodeLens] = []
    for item in pending:
        if item.root != root:
            continue
        pid = item.proposal.proposal_id
        for change in item.proposal.files:
            if change.kind == "deleted" and change.path == rel:
                lines = [0]
            elif change.kind in ("modified", "renamed") and (change.old_path or change.path) == rel:
                lines = proposal_hunks(text, change)
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
                            range=where, command=types.Command(title=title, command=command, arguments=args)
                        )
                    )
    return lenses

"""Accepted proposals into version control: the commit message, a commit on a branch, a patch file.

`commit_message(summary, verification_summary, paths)` is the proposal's message. The solo role's prompt
asks the model to end its summary with a ``Commit message:`` block (a conventional subject, a blank line, a
body: what and why, the verification); when the model wrote one it is used as is (the verification line
is added when the body does not mention it), otherwise a message is derived from the summary: a
conventional type guessed from the paths and words (``docs``, ``test``, ``fix``, ``feat``...), the
summary's first sentence as the subject, the summary and the verification as the body.

`commit_proposal(files, root, message=..., branch=None, force=False)` makes the accepted change one
commit without touching anything else of the user's:

- the commit is built in a *temporary index* (``GIT_INDEX_FILE`` in a temporary folder): ``read-tree``
  of the branch's tip, ``hash-object -w`` and ``update-index --cacheinfo`` for each file, ``write-tree``,
  ``commit-tree``, then ``update-ref`` with the old tip as a guard. The user's index, staged work and
  other files are never read into or written by it; no hook runs (``core.hooksPath=/dev/null``);
- on the checked-out branch (the default) the files are also written to disk (`apply_proposal`, which
  refuses files changed since the run) and, so ``git status`` stays clean for them, only the touched
  paths' entries of the user's index are set to the committed blobs;
- ``branch`` names another branch (created from HEAD when it does not exist): only that branch moves,
  the working tree and the index stay as they are (``git switch NAME`` shows the change);
- it refuses (`CommitRefused`, the message says what to do) when a touched file has uncommitted changes
  (staged, unstaged, or an untracked file where one is to be created), because the proposal's text
  includes them, unless ``force``; and when a touched file on the target branch differs from the text
  the run started from.

`format_patch(message, diff, ...)` writes the change as a ``git format-patch`` mail (``git am`` applies
it); `patch_from_run` builds one from a run's transcript (``agentls runs export ID --patch``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.scratch import scratch_folder
from agent.vcs import GitError, repo_toplevel, run_git

__all__ = [
    "CommitRefused",
    "CommitResult",
    "commit_message",
    "commit_proposal",
    "format_patch",
    "patch_from_run",
]

_ZERO = "0" * 40
_BLOCK = re.compile(r"^\s*(?:#+\s*|\*\*)?commit message:?(?:\*\*)?:?\s*$", re.IGNORECASE | re.MULTILINE)
_CONVENTIONAL = re.compile(r"^[a-z]+(?:\([^)]*\))?!?: \S")
_WARNING = re.compile(r"^(?:UNFINISHED|NOT VERIFIED|WARNING)\b.*?\n\n", re.DOTALL)


class CommitRefused(Exception):
    """The change cannot be committed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class CommitResult:
    """A commit made from a proposal."""

    commit: str
    branch: str
    created_branch: bool
    checked_out: bool
    """True when `branch` is the checked-out branch (the files were written to disk too)."""
    written: tuple[str, ...] = ()


class ChangedFile(Protocol):
    """What committing needs of one file of a proposal (`agent.overlay.FileChange` has it)."""

    @property
    def path(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def old_path(self) -> str | None: ...
    @property
    def base_text(self) -> str: ...
    @property
    def new_text(self) -> str: ...


# -- the message ---------------------------------------------------------------------------------------


def _written_message(summary: str) -> str | None:
    matches = list(_BLOCK.finditer(summary))
    if not matches:
        return None
    match = matches[-1]
    if match is None:
        return None
    text = summary[match.end() :].strip("\n")
    fence = re.match(r"^\s*```[a-z]*\n(.*?)\n\s*```", text, re.DOTALL)
    if fence is not None:
        text = fence.group(1)
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if not lines or not lines[0].strip():
        return None
    lines[0] = lines[0].strip().strip("`").strip()
    return "\n".join(lines).strip()


def _guess_type(summary: str, paths: Sequence[str]) -> str:
    lowered = summary.lower()
    if paths and all(p.endswith((".md", ".rst", ".txt")) or p.startswith("docs/") for p in paths):
        return "docs"
    if paths and all("test" in Path(p).name or p.startswith("tests/") for p in paths):
        return "test"
    if re.search(r"\b(fix|fixes|fixed|bug|crash|error|wrong|incorrect)\b", lowered):
        return "fix"
    if re.search(r"\b(refactor|rename|move|extract|simplif)", lowered):
        return "refactor"
    return "feat"


def _first_sentence(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#*-> ").strip()
        if line:
            sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0].rstrip(".")
            return sentence
    return "apply the agent's change"


def commit_message(summary: str, verification_summary: str = "", paths: Sequence[str] = ()) -> str:
    """The commit message of a proposal (the model's own ``Commit message:`` block, or one derived)."""
    summary = _WARNING.sub("", summary.strip(), count=1).strip()
    verification = verification_summary.strip()
    if summary.startswith("UNFINISHED"):  # nothing but the warning: the run stopped before it summarised
        body = "\n\n".join(part for part in (summary, verification) if part)
        return f"wip: unfinished change from an agentls run\n\n{body}\n"
    written = _written_message(summary)
    if written is not None:
        subject, _, body = written.partition("\n")
        body = body.strip()
        if verification and not re.search(r"verif|tests? pass|passed", body, re.IGNORECASE):
            body = f"{body}\n\n{verification}".strip()
        return f"{subject}\n\n{body}\n" if body else f"{subject}\n"
    sentence = _first_sentence(summary)
    if _CONVENTIONAL.match(sentence):
        subject = sentence
    else:
        first = sentence[:1] if sentence[1:2].isupper() else sentence[:1].lower()  # keep "HTTP", "API"
        subject = f"{_guess_type(summary, paths)}: {first}{sentence[1:]}"
    if len(subject) > 72:
        subject = subject[:69].rstrip() + "..."
    cut = _BLOCK.split(summary)[0].strip()
    body = "\n\n".join(part for part in (cut, verification) if part)
    return f"{subject}\n\n{body}\n" if body else f"{subject}\n"


# -- the commit ----------------------------------------------------------------------------------------


def _git(root: Path, args: Sequence[str], *, input: bytes | None = None, index: str | None = None) -> str:
    extra = {"GIT_INDEX_FILE": index} if index is not None else None
    result = run_git(root, args, input=input, env=extra)
    if not result.ok:
        message = result.stderr.strip() or f"exit status {result.returncode}"
        if "tell me who you are" in message or "empty ident" in message:
            raise CommitRefused(
                "git does not know who you are, so it cannot commit: run "
                '`git config --global user.name "Your Name"` and '
                "`git config --global user.email you@example.com`"
            )
        raise GitError(f"git {args[0]} failed: {message}")
    return result.stdout


def _blob(root: Path, ref: str, path: str) -> tuple[str, str] | None:
    """(mode, sha) of `path` (repository-relative) in `ref`'s tree, None when absent."""
    out = _git(root, ["ls-tree", "-z", ref, "--", path])
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, _, name = entry.partition("\t")
        mode, kind, sha = meta.split()
        if name == path and kind == "blob":
            return mode, sha
    return None


def _hash(root: Path, text: str, *, write: bool) -> str:
    args = ["hash-object", "--stdin", "--no-filters"] + (["-w"] if write else [])
    return _git(root, args, input=text.encode("utf-8")).strip()


def _current_branch(root: Path) -> str | None:
    result = run_git(root, ["symbolic-ref", "-q", "HEAD"])
    ref = result.stdout.strip()
    return ref.removeprefix("refs/heads/") if result.ok and ref.startswith("refs/heads/") else None


def _dirty(root: Path, paths: Iterable[str]) -> list[str]:
    out = _git(root, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths])
    return [entry[3:] for entry in out.split("\0") if len(entry) > 3 and entry[2] == " "]


def _touched(files: Sequence[ChangedFile]) -> list[str]:
    out: list[str] = []
    for change in files:
        if change.old_path is not None:
            out.append(change.old_path)
        out.append(change.path)
    return out


def commit_proposal(
    files: Sequence[ChangedFile],
    root: Path,
    *,
    message: str,
    branch: str | None = None,
    force: bool = False,
    apply: Any = None,
) -> CommitResult:
    """Commit `files` (a proposal's changes, workspace-relative under `root`) with `message`.

    `apply` writes the files to disk when the target is the checked-out branch (the CLI passes
    ``lambda: apply_proposal(proposal, root)``); it must raise to stop the commit. Raises `CommitRefused`
    or `GitError`.
    """
    root = Path(os.path.abspath(root))
    if not files:
        raise CommitRefused("the proposal changes no file; there is nothing to commit")
    if not message.strip():
        raise CommitRefused("the commit message is empty")
    top = repo_toplevel(root)
    prefix = Path(os.path.relpath(root.resolve(), top.resolve())).as_posix()
    prefix = "" if prefix == "." else prefix + "/"

    def repo_path(rel: str) -> str:
        return prefix + rel

    head = run_git(top, ["rev-parse", "-q", "--verify", "HEAD^{commit}"]).stdout.strip() or None
    current = _current_branch(top)
    target = branch or current
    if target is None:
        raise CommitRefused(
            "HEAD is detached, so there is no branch to commit on: pass --branch NAME to commit on a new "
            "or existing branch"
        )
    if run_git(top, ["check-ref-format", "--branch", target]).returncode != 0 or target.startswith("-"):
        raise CommitRefused(f"{target!r} is not a valid branch name")
    ref = f"refs/heads/{target}"
    tip = run_git(top, ["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"]).stdout.strip() or None
    created = tip is None
    parent = tip if tip is not None else head
    checked_out = target == current

    touched = [repo_path(p) for p in _touched(files)]
    if checked_out and not force:
        dirty = _dirty(top, touched)
        if dirty:
            raise CommitRefused(
                f"{', '.join(sorted(set(dirty)))} ha{'ve' if len(set(dirty)) > 1 else 's'} uncommitted "
                "changes, which the proposal's text includes: commit or stash them first, or pass --force "
                "to commit them together with the change"
            )
    # Every touched file on the target branch must still be what the run started from.
    for change in files:
        before = change.old_path or change.path
        current_blob = _blob(top, parent, repo_path(before)) if parent else None
        if change.kind == "created":
            if current_blob is not None and not force:
                raise CommitRefused(f"{before} already exists on {target}; the proposal creates it")
            continue
        expected = _hash(top, change.base_text, write=False)
        if (current_blob is None or current_blob[1] != expected) and not force:
            raise CommitRefused(
                f"{before} on {target} is not the text the run started from (it was changed on disk or "
                f"differs on that branch); pass --force to commit the proposal's text over it"
            )

    with scratch_folder("agentls-index-") as scratch:
        index = str(scratch / "index")
        if parent is not None:
            _git(top, ["read-tree", parent], index=index)
        entries: list[tuple[str, str | None, str | None]] = []
        for change in files:
            if change.kind == "renamed" and change.old_path is not None:
                entries.append((repo_path(change.old_path), None, None))
            if change.kind == "deleted":
                entries.append((repo_path(change.path), None, None))
                continue
            old = _blob(top, parent, repo_path(change.old_path or change.path)) if parent else None
            entries.append(
                (repo_path(change.path), old[0] if old else "100644", _hash(top, change.new_text, write=True))
            )
        for path, mode, sha in entries:
            if sha is None:
                _git(top, ["update-index", "--force-remove", "--", path], index=index)
            else:
                _git(top, ["update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}"], index=index)
        tree = _git(top, ["write-tree"], index=index).strip()
        args = ["commit-tree", tree] + (["-p", parent] if parent else [])
        commit = _git(top, args, input=message.encode("utf-8")).strip()

    written: tuple[str, ...] = ()
    if checked_out and apply is not None:
        written = tuple(apply())
    old_tip = tip if tip is not None else _ZERO
    _git(top, ["update-ref", "-m", f"agentls: {message.splitlines()[0]}", ref, commit, old_tip])
    if checked_out:
        # Only the touched paths' entries of the user's index move to the committed blobs.
        for path, mode, sha in entries:
            if sha is None:
                _git(top, ["update-index", "--force-remove", "--", path])
            else:
                _git(top, ["update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}"])
    return CommitResult(commit, target, created, checked_out, written)


# -- patches -------------------------------------------------------------------------------------------


def _ident(root: Path | None) -> str:
    if root is not None:
        try:
            result = run_git(root, ["var", "GIT_AUTHOR_IDENT"])
            if result.ok and "<" in result.stdout:
                return result.stdout.rsplit(">", 1)[0] + ">"
        except GitError:
            pass
    return "agentls <agentls@localhost>"


def _prefix_paths(diff: str, prefix: str) -> str:
    if not prefix:
        return diff
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git a/"):
            a, _, b = line[len("diff --git a/") :].rstrip("\n").partition(" b/")
            line = f"diff --git a/{prefix}{a} b/{prefix}{b}\n"
        elif line.startswith(("--- a/", "+++ b/")):
            line = line[:6] + prefix + line[6:]
        elif line.startswith(("rename from ", "rename to ")):
            word = "rename from " if line.startswith("rename from ") else "rename to "
            line = word + prefix + line[len(word) :]
        out.append(line)
    return "".join(out)


def format_patch(
    message: str, diff: str, *, author: str = "agentls <agentls@localhost>", date: dt.datetime | None = None
) -> str:
    """`diff` with `message` as one ``git format-patch`` mail (``git am`` applies it)."""
    subject, _, body = message.strip().partition("\n")
    moment = date or dt.datetime.now(dt.UTC)
    header = (
        f"From {_ZERO} Mon Sep 17 00:00:00 2001\n"
        f"From: {author}\n"
        f"Date: {email.utils.format_datetime(moment)}\n"
        f"Subject: [PATCH] {subject.strip()}\n\n"
    )
    body = body.strip()
    text = header + (body + "\n" if body else "") + "---\n\n" + diff
    if not text.endswith("\n"):
        text += "\n"
    return text + "-- \nagentls\n\n"


def patch_from_run(proposal: Mapping[str, Any], root: Path | None) -> str:
    """The ``format-patch`` text of a transcript's proposal record (its diff, summary and verification),
    paths made repository-relative when `root` is a folder inside a git repository."""
    files = proposal.get("files", ()) or ()
    paths = [str(f.get("path", "")) for f in files if isinstance(f, Mapping)]
    message = str(proposal.get("commit_message") or "") or commit_message(
        str(proposal.get("summary", "")), str(proposal.get("verification_summary", "")), paths
    )
    diff = str(proposal.get("diff", ""))
    prefix = ""
    if root is not None and root.is_dir():
        try:
            top = repo_toplevel(root)
            rel = Path(os.path.relpath(root.resolve(), top.resolve())).as_posix()
            prefix = "" if rel == "." else rel + "/"
        except GitError:
            pass
    return format_patch(
        message, _prefix_paths(diff, prefix), author=_ident(root if root and root.is_dir() else None)
    )

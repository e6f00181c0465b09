"""Git tools: read and review the workspace's real repository (never the agent's overlay, never a write).

- `git_status {}`: branch, ahead/behind and changed files (``git status --short --branch``).
- `git_diff {mode?, base?, head?, path?, stat?}`: ``worktree`` (unstaged, the default), ``staged``, or
  ``refs`` (``base`` to ``head``, default HEAD).
- `git_log {path?, symbol?, start_line?, end_line?, rev?, max_count?, patch?}`: commits, optionally of
  one file, of a line range of it (``-L START,END:PATH``) or of a symbol (a Python ``def``/``class`` is
  located with `ast` in the file as committed at `rev`, default HEAD, whose lines ``-L`` reads, and
  followed by its lines; other languages use git's ``-L :NAME:PATH``). A line range of a file whose
  text on disk differs from `rev`'s says that its lines were read at `rev`. At a `rev` before the file
  was renamed, the file, its line range and its symbol are read under its name there, and named.
- `git_show {rev, path?, file?}`: a commit with its patch (limited to `path`, and to the workspace folder
  when that is a folder of a larger repository), or with ``file: true`` the
  text of `path` at `rev` (``rev: "HEAD~1:src/app.py"`` means the same, its path checked like `path`).
  No other tool takes ``REV:PATH`` (`agent.vcs.check_ref`).
- `git_blame {path, start_line?, end_line?, rev?}`: who last changed each line of a range. At a `rev`
  before the file was renamed, the file's name there is found (``git log --follow``), blamed, and named.

All of them run through `agent.vcs.run_git` (no hooks, pager, external diff or textconv, no index
refresh), take paths relative to the workspace (refused outside it, inside ``.git`` or secret), drop the
sections of secret files from diffs, and cut their output to `MAX_OUTPUT_CHARS` with a note saying how to
narrow the call. They show committed history and the files on disk: the agent's own edits are in the
overlay and do not appear here.

The history of one file follows it across renames (``git log --follow``), and a file named at a `rev`
from before its rename is found under its name there (`git_log`, with a line range or a symbol too,
`git_show`'s file, `git_blame`).
Where history is missing, the result says why rather than let the model conclude there is none: in a
shallow clone `git_log` and `git_blame` end with a note that older commits are not in it (and a revision
that is not there says so); in a repository with no commits yet, a revision error says that; a
`git_show` of a commit limited to a `path` it does not change says so instead of answering nothing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.paths import PathRefused, is_secret_path, resolve_in_workspace
from agent.tools import CustomTool, ToolError, one_line
from agent.vcs import SAFE_DIFF, GitError, check_ref, run_git

__all__ = [
    "GIT_TOOLS",
    "MAX_OUTPUT_CHARS",
    "GitBlameTool",
    "GitDiffTool",
    "GitLogTool",
    "GitShowTool",
    "GitStatusTool",
    "python_symbol_lines",
]

MAX_OUTPUT_CHARS = 20_000
_MAX_LOG = 50
_DIFF_HEADER = re.compile(r"^diff --git a/(.*?) b/(.*)$")

_PATH = {"type": "string", "description": "A file or folder, relative to the workspace root."}

_NO_REVISION = (
    "unknown revision",
    "bad revision",
    "bad object",
    "invalid object name",
    "not a valid object name",
    "no such ref",
    "does not have any commits yet",
)
"""How git says a revision is not in the repository (``LC_ALL=C``, lower-cased)."""

SHALLOW_NOTE = (
    "[this repository is a shallow clone: its history stops at the oldest commit it holds and older commits "
    "are not in it (git blame marks lines from that commit with ^); if the older history matters, ask the "
    "user to run `git fetch --unshallow`]"
)
NO_COMMITS = "The repository has no commits yet, so there is no history to show (git_status lists its files)."


def _bounded(text: str, hint: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    cut = cut[: cut.rfind("\n") + 1] or cut
    return f"{cut}\n[output cut at {limit:,} of {len(text):,} characters; {hint}]"


def _drop_secret_sections(diff: str) -> str:
    """`diff` without the per-file sections of secret files (a line says each was left out)."""
    out: list[str] = []
    skipping = False
    for line in diff.splitlines(keepends=True):
        header = _DIFF_HEADER.match(line.rstrip("\n"))
        if header is not None:
            skipping = is_secret_path(header.group(1)) or is_secret_path(header.group(2))
            if skipping:
                out.append(f"[diff of the secret file {header.group(2)} left out]\n")
                continue
        if not skipping:
            out.append(line)
    return "".join(out)


def python_symbol_lines(text: str, symbol: str) -> tuple[int, int] | None:
    """The (first, last) line of the Python function or class `symbol` (``Class.method`` works) in `text`."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    parts = symbol.split(".")
    nodes: Sequence[ast.AST] = tree.body
    found: ast.AST | None = None
    for index, part in enumerate(parts):
        found = None
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == part:
                found = node
                break
        if found is None and index == 0 and len(parts) == 1:
            # A method named alone: the first definition of that name anywhere.
            for node in ast.walk(tree):
                kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
                if isinstance(node, kinds) and node.name == part:
                    found = node
                    break
        if found is None:
            return None
        nodes = getattr(found, "body", [])
    if found is None:
        return None
    decorators = getattr(found, "decorator_list", [])
    first = min([getattr(found, "lineno", 1)] + [d.lineno for d in decorators])
    return first, getattr(found, "end_lineno", None) or first


class _GitTool(CustomTool):
    """What the git tools share: the workspace root and the safe runner."""

    read_only = True

    def __init__(self, root: Path, *, max_output_chars: int = MAX_OUTPUT_CHARS) -> None:
        self.root = Path(root)
        self.max_output_chars = max_output_chars

    def _path(self, path: object, *, must_be_file: bool = False) -> str:
        try:
            rel = resolve_in_workspace(self.root, str(path))
        except PathRefused as refused:
            raise ToolError(str(refused)) from None
        if must_be_file and not (self.root / rel).is_file():
            raise ToolError(f"{rel} is not a file in the workspace")
        return rel

    def run(self, input: Mapping[str, Any]) -> str:
        raise NotImplementedError

    @staticmethod
    def _ref(value: object, what: str) -> str:
        try:
            return check_ref(str(value), what)
        except GitError as error:
            raise ToolError(str(error)) from None

    def _git(self, args: Sequence[str], hint: str) -> str:
        try:
            result = run_git(self.root, args)
        except GitError as error:
            raise ToolError(str(error)) from None
        if not result.ok:
            message = result.stderr.strip() or f"git exited with status {result.returncode}"
            if "not a git repository" in message:
                message = "The workspace is not in a git repository, so there is no history to show."
            failed = f"git {args[0]} failed: {one_line(message, 400)}"
            if any(words in message.lower() for words in _NO_REVISION):
                if not self._answers(["rev-parse", "--verify", "--quiet", "HEAD"]):
                    raise ToolError(NO_COMMITS)
                if self._shallow():
                    failed += f"\n{SHALLOW_NOTE}"
            raise ToolError(failed)
        return _bounded(_drop_secret_sections(result.stdout), hint, self.max_output_chars)

    def _answers(self, args: Sequence[str]) -> str | None:
        """The output of a quick git query, or None when it fails."""
        try:
            result = run_git(self.root, args)
        except GitError:
            return None
        return result.stdout.strip() if result.ok and result.stdout.strip() else None

    def _shallow(self) -> bool:
        """Whether the repository is a shallow clone (its older history is not there)."""
        return self._answers(["rev-parse", "--is-shallow-repository"]) == "true"

    def _name_at(self, rev: str, rel: str) -> str | None:
        """The workspace path `rel` had at `rev`: `rel` itself, the name it had before a rename since (its
        history followed from HEAD, ``git log --follow``), or None when neither is there (git then says
        so). Raises `ToolError` when that earlier name is outside the workspace or a secret file."""
        if self._answers(["cat-file", "-t", f"{rev}:./{rel}"]) is not None:
            return rel
        prefix = self._answers(["rev-parse", "--show-prefix"]) or ""
        names = self._answers(
            ["-c", "core.quotePath=false", "log", "--follow", "--name-only", "--format=", "HEAD", "--", rel]
        )
        seen: set[str] = set()
        for name in (names or "").splitlines():
            if not name or name in seen or name.startswith('"'):
                continue
            seen.add(name)
            if self._answers(["cat-file", "-t", f"{rev}:{name}"]) is None:
                continue
            if not name.startswith(prefix):
                raise ToolError(
                    f"{rel} was named {name} at {rev}, outside the workspace; it is not shown there"
                )
            earlier = name[len(prefix) :]
            if is_secret_path(earlier):
                raise ToolError(f"{rel} was named {earlier} at {rev}, a secret file; it is not shown")
            return earlier
        return None

    def _with_history_note(self, text: str) -> str:
        """`text`, with `SHALLOW_NOTE` after it in a shallow clone."""
        return f"{text.rstrip()}\n\n{SHALLOW_NOTE}" if self._shallow() else text


class GitStatusTool(_GitTool):
    """`git_status`."""

    name = "git_status"
    description = (
        "Show the real repository's state: current branch, ahead/behind its upstream, and files "
        "that are modified, staged or untracked on disk (your own edits are not on disk and do not show)."
    )
    input_schema: Mapping[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        return "git_status"

    def run(self, input: Mapping[str, Any]) -> str:
        text = self._git(["status", "--short", "--branch", "--untracked-files=normal", "--", "."], "")
        return text or "(no changes)"


class GitDiffTool(_GitTool):
    """`git_diff`."""

    name = "git_diff"
    description = (
        "Show a diff of the real repository: `worktree` (unstaged changes on disk, the default), "
        "`staged` (the index against HEAD), or `refs` (from `base` to `head`, head defaults to HEAD). "
        "Limit it to a file or folder with `path`; `stat: true` lists changed files only."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["worktree", "staged", "refs"]},
            "base": {"type": "string", "description": "With mode refs: the older revision."},
            "head": {"type": "string", "description": "With mode refs: the newer revision (HEAD)."},
            "path": _PATH,
            "stat": {"type": "boolean", "description": "Only the list of changed files and line counts."},
        },
        "additionalProperties": False,
    }

    @staticmethod
    def _mode(input: Mapping[str, Any]) -> str:
        """The mode asked for; `base` or `head` without a mode mean `refs` (not a worktree diff that
        ignores them and answers "no differences")."""
        return str(input.get("mode") or ("refs" if input.get("base") or input.get("head") else "worktree"))

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        mode = GitDiffTool._mode(input)
        refs = f" {input.get('base', '')}..{input.get('head', 'HEAD')}" if mode == "refs" else ""
        where = f" -- {input['path']}" if input.get("path") else ""
        return f"git_diff {mode}{refs}{where}"

    def run(self, input: Mapping[str, Any]) -> str:
        mode = self._mode(input)
        if mode != "refs" and (input.get("base") or input.get("head")):
            raise ToolError(f"`base` and `head` go with mode `refs`, not `{mode}`")
        args = ["diff", *SAFE_DIFF, "--find-renames"]
        if input.get("stat"):
            args.append("--stat")
        if mode == "staged":
            args.append("--cached")
        elif mode == "refs":
            if not input.get("base"):
                raise ToolError("git_diff with mode `refs` needs `base` (and optionally `head`)")
            args += [self._ref(input["base"], "base"), self._ref(input.get("head", "HEAD"), "head")]
        args += ["--", self._path(input.get("path", "."))]
        text = self._git(args, "pass `path` or `stat: true` to narrow it")
        return text or f"(no {mode} differences)"


class GitLogTool(_GitTool):
    """`git_log`."""

    name = "git_log"
    description = (
        "Show commit history (newest first): of the repository, of one `path`, of a line range of a "
        "file (`start_line`/`end_line`), or of a function or class (`symbol` with `path`, e.g. "
        "`Parser.parse`), to learn why code is the way it is. `patch: true` adds the changes."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "path": _PATH,
            "symbol": {"type": "string", "description": "A function or class in `path` to follow."},
            "start_line": {"type": "integer"},
            "end_line": {"type": "integer"},
            "rev": {"type": "string", "description": "Start from this revision (default HEAD)."},
            "max_count": {
                "type": "integer",
                "description": f"Commits to show (default 10, at most {_MAX_LOG}).",
            },
            "patch": {"type": "boolean", "description": "Include each commit's diff."},
        },
        "additionalProperties": False,
    }

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        where = input.get("path", "")
        if input.get("symbol"):
            where = f"{input['symbol']} in {where}"
        elif input.get("start_line"):
            where = f"{where}:{input['start_line']}-{input.get('end_line', input['start_line'])}"
        return f"git_log {where}".rstrip()

    def _committed_text(self, rev: str, rel: str) -> str:
        """The text of `rel` at `rev`: what ``git log -L`` reads its line numbers in."""
        try:
            result = run_git(self.root, ["show", "--no-textconv", f"{rev}:./{rel}"])
        except GitError as error:
            raise ToolError(str(error)) from None
        if not result.ok:
            if self._answers(["rev-parse", "--verify", "--quiet", "HEAD"]) is None:
                raise ToolError(NO_COMMITS)
            raise ToolError(
                f"{rel} is not in the repository at {rev} ({one_line(result.stderr.strip(), 200)}), so it "
                "has no history there yet"
            )
        return result.stdout

    def _line_range(self, rel: str, input: Mapping[str, Any], on_disk_name: str) -> str | None:
        """``-L``'s argument for `symbol` or `start_line` in `rel` (the file's name at `rev`), or None;
        `on_disk_name`: its name on disk now (another one when it was renamed since `rev`)."""
        symbol = input.get("symbol")
        if symbol:
            if rel.endswith(".py"):
                # Located in the file as committed at `rev`, whose lines `-L` follows: the file on disk may
                # have uncommitted changes that moved the definition (its lines there name other code).
                rev = self._ref(input["rev"], "rev") if input.get("rev") else "HEAD"
                lines = python_symbol_lines(self._committed_text(rev, rel), str(symbol))
                if lines is None:
                    try:
                        on_disk = python_symbol_lines(
                            (self.root / on_disk_name).read_text("utf-8"), str(symbol)
                        )
                    except (OSError, UnicodeDecodeError):
                        on_disk = None
                    only = " (only the uncommitted file on disk has it, so it has no history yet)"
                    raise ToolError(
                        f"there is no function or class {symbol!r} in {rel} at {rev}{only if on_disk else ''}"
                    )
                return f"{lines[0]},{lines[1]}:{rel}"
            name = str(symbol).split(".")[-1]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ToolError(f"{symbol!r} is not an identifier")
            return f":{name}:{rel}"
        start = input.get("start_line")
        if start is not None:
            end = int(input.get("end_line", start))
            if start < 1 or end < start:
                raise ToolError("start_line must be at least 1 and end_line at least start_line")
            return f"{start},{end}:{rel}"
        return None

    def run(self, input: Mapping[str, Any]) -> str:
        count = max(1, min(int(input.get("max_count", 10)), _MAX_LOG))
        args = [
            "log",
            *SAFE_DIFF,
            f"--max-count={count}",
            "--date=short",
            "--format=commit %H%n%an <%ae> %ad%n%n%w(0,4,4)%B",
        ]
        path = input.get("path")
        if (input.get("symbol") or input.get("start_line") is not None) and not path:
            raise ToolError("`symbol` and `start_line` need the `path` of the file they are in")
        rel = self._path(path) if path else None
        if (
            rel is not None
            and (input.get("symbol") or input.get("start_line"))
            and not (self.root / rel).is_file()
        ):
            # A name the file had at `rev` (before a rename since) is as good as its name now.
            at = self._ref(input["rev"], "rev") if input.get("rev") else None
            if at is None or self._answers(["cat-file", "-t", f"{at}:./{rel}"]) != "blob":
                raise ToolError(f"{rel} is not a file in the workspace" + (f" nor at {at}" if at else ""))
        on_disk_name = rel
        renamed = ""
        if rel is not None and input.get("rev"):
            # At a `rev` before a rename, the file (and a line range or symbol in it) is read under its
            # name there; the log follows that name.
            rev = self._ref(input["rev"], "rev")
            earlier = self._name_at(rev, rel)
            if earlier is not None and earlier != rel:
                renamed = (
                    f"\n\n[{rel} was named {earlier} at {rev} (renamed since): this is {earlier}'s history]"
                )
                rel = earlier
        line_range = self._line_range(rel, input, on_disk_name or rel) if rel else None
        if line_range is not None:
            args.append(f"-L{line_range}")
            if not input.get("patch"):
                args.append("--no-patch")
        elif input.get("patch"):
            args.append("--patch")
        else:
            args.append("--stat")
        if input.get("rev"):
            args.append(self._ref(input["rev"], "rev"))
        if line_range is None:
            if rel is not None and ((self.root / rel).is_file() or renamed):
                args.append("--follow")  # a file's history goes on before it was renamed
            args += ["--", rel or "."]
        text = self._with_history_note(
            (self._git(args, "lower `max_count` or leave `patch` out") or "(no commits)") + renamed
        )
        if rel is not None and input.get("start_line") is not None and not input.get("symbol"):
            rev = self._ref(input["rev"], "rev") if input.get("rev") else "HEAD"
            try:
                changed = (self.root / str(on_disk_name)).read_text("utf-8") != self._committed_text(rev, rel)
            except (OSError, UnicodeDecodeError):
                changed = True
            if changed:  # git read the numbers in the committed file, not in the one the model sees
                text += (
                    f"\n\n[{on_disk_name} on disk differs from {rel} at {rev}: `start_line`/`end_line` were "
                    f"read as lines of the file at {rev}; give `symbol` to follow a function or class "
                    "wherever it is]"
                    if renamed
                    else f"\n\n[{rel} on disk differs from {rev}: `start_line`/`end_line` were read as lines "
                    f"of the file at {rev}; give `symbol` to follow a function or class wherever it is]"
                )
        return text


class GitShowTool(_GitTool):
    """`git_show`."""

    name = "git_show"
    description = (
        "Show one commit (message and patch, limited to `path` when given), or with `file: true` the "
        'text of `path` as it was at revision `rev` (`rev: "HEAD~1:src/app.py"` works too).'
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "rev": {"type": "string", "description": "A commit hash, branch, tag or HEAD~N."},
            "path": _PATH,
            "file": {"type": "boolean", "description": "Show the file at `rev` instead of the commit."},
        },
        "required": ["rev"],
        "additionalProperties": False,
    }

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        where = f":{input['path']}" if input.get("file") and input.get("path") else ""
        return f"git_show {input.get('rev', '')}{where}"

    def run(self, input: Mapping[str, Any]) -> str:
        rev, path, file = str(input["rev"]).strip(), input.get("path"), bool(input.get("file"))
        if ":" in rev and not rev.startswith(":") and path is None:
            # git's REV:PATH, read as `file: true`: PATH goes through the same checks as `path` (relative to
            # the workspace; never a secret file, .git or a path outside it).
            rev, path = rev.split(":", 1)
            file = True
        rev = self._ref(rev, "rev")
        if file:
            if not path:
                raise ToolError("`file: true` needs the `path` of the file to show")
            rel = self._path(path)
            earlier = self._name_at(rev, rel)
            note = ""
            if earlier is not None and earlier != rel:
                note = f"\n[{rel} was named {earlier} at {rev} (renamed since): this is {earlier}]"
                rel = earlier
            return (
                self._git(["show", "--no-textconv", f"{rev}:./{rel}"], "read a narrower range with git_blame")
                + note
            )
        args = ["show", *SAFE_DIFF, "--find-renames", "--stat", "--patch", "--format=fuller", rev]
        if path:
            rel = self._path(path)
            text = self._git([*args, "--", rel], "pass `path` to see one file's part")
            # git prints nothing when the commit does not change the path (it shows no header either).
            return text or (
                f"({rev} does not change {rel}: give git_show no `path` to see what it changes, or "
                "git_log with this `path` for the commits that do)"
            )
        if self._answers(["rev-parse", "--show-prefix"]):
            # The workspace is a folder of a larger repository: the commit's files outside it stay out.
            text = self._git([*args, "--", "."], "pass `path` to see one file's part")
            return text or f"({rev} changes no file in this workspace folder, only files outside it)"
        return self._git(args, "pass `path` to see one file's part")


class GitBlameTool(_GitTool):
    """`git_blame`."""

    name = "git_blame"
    description = (
        "Show, for each line of a file (or of `start_line`..`end_line`), the commit, author and date "
        "that last changed it. Follow up with git_show on a commit to read why."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "path": _PATH,
            "start_line": {"type": "integer"},
            "end_line": {"type": "integer"},
            "rev": {
                "type": "string",
                "description": "Blame as of this revision (default: the file on disk).",
            },
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        lines = f":{input['start_line']}-{input.get('end_line', '')}" if input.get("start_line") else ""
        return f"git_blame {input.get('path', '')}{lines}"

    def run(self, input: Mapping[str, Any]) -> str:
        rel = self._path(input["path"])
        if is_secret_path(rel):
            raise ToolError(f"{rel} is a secret file; it is not shown")
        args = ["blame", "--date=short", "--no-progress"]
        start = input.get("start_line")
        if start is not None:
            end = int(input.get("end_line", start + 199))
            if start < 1 or end < start:
                raise ToolError("start_line must be at least 1 and end_line at least start_line")
            args.append(f"-L{start},{end}")
        note = ""
        if input.get("rev"):
            rev = self._ref(input["rev"], "rev")
            args.append(rev)
            earlier = self._name_at(rev, rel)
            if earlier is not None and earlier != rel:
                note = f"\n[{rel} was named {earlier} at {rev} (renamed since): these are {earlier}'s lines]"
                rel = earlier
        args += ["--", rel]
        return self._with_history_note(
            self._git(args, "pass `start_line` and `end_line` for a smaller range") + note
        )


GIT_TOOLS: tuple[type[_GitTool], ...] = (GitStatusTool, GitDiffTool, GitLogTool, GitShowTool, GitBlameTool)
"""The git tools, in the order a role lists them."""

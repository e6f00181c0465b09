"""Running git on the user's repository safely: the one place agentls starts `git`.

`run_git(root, args)` runs ``git -C root ARGS`` so that nothing in the repository or the user's setup can
run code or write to ``.git`` behind our back:

- ``GIT_CONFIG_NOSYSTEM=1`` (no ``/etc/gitconfig``), ``GIT_OPTIONAL_LOCKS=0`` (``git status`` does not
  refresh and rewrite the index), ``GIT_TERMINAL_PROMPT=0``, ``GIT_PAGER=cat``, no replace objects;
- ``-c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.pager=cat -c color.ui=false
  -c diff.external= -c protocol.allow=never`` on every call;
- callers that show diffs add ``--no-ext-diff --no-textconv`` (`SAFE_DIFF`), so neither an external diff
  tool nor a textconv filter from ``.gitattributes`` runs;
- stdin is closed (or the given bytes), a timeout applies, and output is returned as text with undecodable
  bytes replaced.

`check_ref` refuses revision arguments that could be read as options (a leading ``-``), hold odd
characters, or name a file (``REV:PATH``, ``:PATH``: a file's text at a revision or in the index, which
would bypass the callers' checks of paths). Writes (the commit of an accepted proposal) live in
`agent.commit`, which uses this runner with a temporary index.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SAFE_CONFIG",
    "SAFE_DIFF",
    "GitError",
    "GitResult",
    "check_ref",
    "git_env",
    "repo_toplevel",
    "run_git",
]

SAFE_CONFIG: tuple[str, ...] = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.pager=cat",
    "-c",
    "color.ui=false",
    "-c",
    "diff.external=",
    "-c",
    "protocol.allow=never",
    "-c",
    "core.quotePath=false",
)
"""``-c`` options given to every git call."""

SAFE_DIFF: tuple[str, ...] = ("--no-ext-diff", "--no-textconv", "--no-color")
"""Options for every command that prints a diff (diff, log -p, show)."""

_REF = re.compile(r"^[A-Za-z0-9_./@{}~^+-]{1,200}$")

DEFAULT_TIMEOUT = 30.0

_KEPT = frozenset({"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"})


class GitError(Exception):
    """git failed or is not usable here; the message says what happened (and what to do)."""


@dataclass(frozen=True)
class GitResult:
    """One finished git call."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def git_env(base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: `base` (default: ours) made safe, plus `extra`."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        # Variables that redirect git to another repository, index or object store, or run programs.
        if key.startswith("GIT_") and key not in _KEPT:
            del env[key]
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "LC_ALL": "C",
        }
    )
    if extra:
        env.update(extra)
    return env


def run_git(
    root: Path,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> GitResult:
    """Run ``git -C root <safe config> ARGS``; raises `GitError` when git is missing or times out."""
    command = ["git", "-C", str(root), *SAFE_CONFIG, *args]
    try:
        done = subprocess.run(
            command,
            input=input if input is not None else b"",
            capture_output=True,
            env=git_env(None, env),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH); install git to use the git tools") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:2])} did not finish within {timeout:.0f} s") from None
    return GitResult(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def repo_toplevel(root: Path) -> Path:
    """The top of the git work tree holding `root`; raises `GitError` when there is none."""
    result = run_git(root, ["rev-parse", "--show-toplevel"])
    if not result.ok or not result.stdout.strip():
        raise GitError(
            f"{root} is not inside a git repository (git says: {result.stderr.strip() or 'no work tree'})"
        )
    return Path(result.stdout.strip())


def check_ref(ref: str, what: str = "revision") -> str:
    """`ref` when it is a plausible revision (``HEAD~2``, ``main``, ``v1.0``, a hash); else `GitError`."""
    ref = ref.strip()
    if ":" in ref:
        raise GitError(
            f"{what} {ref!r} names a file (REV:PATH), not a revision: give the revision alone and the file "
            "as `path` (git_show with `file: true` shows a file as it was at a revision)"
        )
    if not ref or ref.startswith("-") or not _REF.match(ref) or ".." in ref:
        raise GitError(
            f"{what} {ref!r} is not a revision git accepts here: use a branch, tag, commit hash or "
            "HEAD~N (no options, spaces or ranges)"
        )
    return ref

"""Running git on the user's repository safely: where the agent starts `git` (`indexing.shared` is the other).

`run_git(root, args)` runs ``git -C root ARGS`` so that nothing in the repository or the user's setup can
run code or write to ``.git`` behind our back:

- `indexing.git_safety.safe_git_command` builds the call: ``GIT_CONFIG_NOSYSTEM=1``,
  ``GIT_OPTIONAL_LOCKS=0`` (``git status`` does not rewrite the index), no pager, prompts or replace
  objects; ``-c core.hooksPath=/dev/null -c core.fsmonitor=false -c log.showSignature=false
  -c protocol.allow=never`` and the rest of `SAFE_CONFIG`; every filter, textconv, diff or merge
  driver and signing program the repository's own config names reset; submodules' work trees left
  unopened by ``status`` and ``diff``, and ``blame`` run with ``--no-textconv``;
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

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexing.git_safety import SAFE_CONFIG, git_env, safe_git_command

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

SAFE_DIFF: tuple[str, ...] = ("--no-ext-diff", "--no-textconv", "--no-color")
"""Options for every command that prints a diff (diff, log -p, show)."""

_REF = re.compile(r"^[A-Za-z0-9_./@{}~^+-]{1,200}$")

DEFAULT_TIMEOUT = 30.0


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


def run_git(
    root: Path,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> GitResult:
    """Run ``git -C root <safe config> ARGS``; raises `GitError` when git is missing or times out."""
    command, safe_env = safe_git_command(root, args, env)
    try:
        done = subprocess.run(
            command,
            input=input if input is not None else b"",
            capture_output=True,
            env=safe_env,
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

"""How agentls starts git on the host, so that nothing in the repository it reads can run a program.

git runs outside the sandbox, on a repository agentls did not write and that the model (or the repository's
own content steering it) may have chosen to look at. Its ``.git/config`` (and the files it includes) and its
attributes can name programs that git starts while reading: an fsmonitor, hooks, a clean or smudge filter
(run by ``git status``, ``git diff`` and ``git blame`` on a file whose stat data changed), a textconv
(``git blame``), an external diff, a merge driver, a signature checker (``log.showSignature`` with
``gpg.program``). A submodule's own config does the same when ``git status`` or ``git diff`` looks inside it.

`safe_git_command(root, args)` gives the argv and environment that close all of these:

- `SAFE_CONFIG` on every call: no hooks, fsmonitor, pager, colour, external diff, network transport,
  signature checks;
- `repository_overrides`: every filter, textconv, diff and merge command and signing program that the
  repository's own config sets (scope local or worktree, includes too) is reset, through
  ``GIT_CONFIG_COUNT`` (which takes any subsection name), to nothing (its filter no longer required) or to
  git's default program. The user's global config is theirs and is kept (git-lfs installed globally works);
- ``status`` and ``diff`` get ``--ignore-submodules=dirty`` (a submodule's commit still shows, its work
  tree is not opened: ``submodule.NAME.ignore`` in ``.gitmodules`` cannot undo a command-line option), and
  ``blame`` gets ``--no-textconv``;
- `git_env`: ``GIT_*`` variables that redirect git elsewhere are dropped, system config is off, no optional
  locks (``git status`` does not rewrite the index), no prompts, and pathspecs are literal
  (``GIT_LITERAL_PATHSPECS``: a workspace folder inside a larger repository is not left through
  ``:(top)``, ``:/`` or ``:(glob)../**``).

`agent.vcs.run_git` and `indexing.shared` run git only through it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["SAFE_CONFIG", "git_env", "repository_overrides", "safe_git_command"]

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
    "-c",
    "log.showSignature=false",
)
"""``-c`` options given to every git call."""

_KEPT = frozenset({"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"})

_DRIVER_KEYS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver)$|^gpg\."
"""The config keys that name a program git may start while reading (and the signing ones)."""

_GPG_DEFAULTS = {
    "gpg.program": "gpg",
    "gpg.openpgp.program": "gpg",
    "gpg.x509.program": "gpgsm",
    "gpg.ssh.program": "ssh-keygen",
    "gpg.ssh.defaultkeycommand": "",
}

_USER_SCOPES = frozenset({"global", "system", "command"})

_EXTRA_OPTIONS: dict[str, tuple[str, ...]] = {
    "status": ("--ignore-submodules=dirty",),
    "diff": ("--ignore-submodules=dirty",),
    "blame": ("--no-textconv",),
}


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
            # A path is a path: `:(top)`, `:!x` or `:(glob)../**` would reach past the workspace folder.
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "LC_ALL": "C",
        }
    )
    if extra:
        env.update(extra)
    return env


def repository_overrides(root: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The config values that undo the programs the repository at `root` names in its own config.

    Reading config runs nothing; a folder outside any repository (or no git) gives no overrides."""
    query = ["config", "--show-scope", "--null", "--name-only", "--get-regexp", _DRIVER_KEYS]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *SAFE_CONFIG, *query],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=git_env(env),
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    fields = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    overrides: dict[str, str] = {}
    for scope, name in zip(fields[0::2], fields[1::2], strict=False):
        if scope in _USER_SCOPES or not name:
            continue
        section, _, rest = name.partition(".")
        if section == "gpg":
            if name.lower() in _GPG_DEFAULTS:
                overrides[name] = _GPG_DEFAULTS[name.lower()]
            continue
        overrides[name] = ""
        if section == "filter":
            overrides[f"filter.{rest.rpartition('.')[0]}.required"] = "false"
    return overrides


def _with_extra_options(args: Sequence[str]) -> list[str]:
    """`args` with the options `_EXTRA_OPTIONS` adds after its subcommand (past any leading ``-c X``)."""
    out = list(args)
    index = 0
    while index < len(out) and out[index] == "-c":
        index += 2
    if index < len(out) and out[index] in _EXTRA_OPTIONS:
        out[index + 1 : index + 1] = _EXTRA_OPTIONS[out[index]]
    return out


def safe_git_command(
    root: Path, args: Sequence[str], extra_env: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment to run ``git ARGS`` in `root` safely (see the module docstring)."""
    env = git_env(None, extra_env)
    overrides = repository_overrides(root)
    if overrides:
        env["GIT_CONFIG_COUNT"] = str(len(overrides))
        for number, (key, value) in enumerate(overrides.items()):
            env[f"GIT_CONFIG_KEY_{number}"] = key
            env[f"GIT_CONFIG_VALUE_{number}"] = value
    return ["git", "-C", str(root), *SAFE_CONFIG, *_with_extra_options(args)], env

"""Turning paths the model writes into workspace-relative paths, and refusing the ones it may not touch.

Every tool that names a file goes through `resolve_in_workspace`. It accepts a path relative to the workspace
root or an absolute path inside it and returns the workspace-relative POSIX path (`"."` for the root). It
refuses, with a `PathRefused` whose message is written for the model:

- NUL bytes, empty paths and paths too long for the system (a name over 255 bytes, a path of 4096);
  line breaks, other control characters and bidirectional-text controls,
  which can make a diff or a file list show something else than what is written (`quote_path` renders a
  path safely wherever one is shown);
- anything that leaves the root lexically (`../x`, `/etc/passwd`);
- paths whose existing part on disk goes through a symlink that resolves outside the root;
- secret files (`.env`, keys, credentials: `indexing.policy.is_secret_path`, which the indexer uses too);
- the `.git` directory, whose hooks and config would run code once a proposal is applied, in any case
  and with trailing dots or spaces (`.GIT/hooks` is the same folder on macOS and Windows defaults).
"""

from __future__ import annotations

import logging
import os
import posixpath
from pathlib import Path, PurePosixPath

from indexing.policy import is_secret_path

__all__ = [
    "PathRefused",
    "is_git_path",
    "is_secret_path",
    "quote_path",
    "resolve_in_workspace",
    "unsafe_characters",
]

_UNSAFE = frozenset(
    [chr(c) for c in range(0x20)]
    + ["\x7f"]
    + [chr(c) for c in range(0x80, 0xA0)]
    + ["\u2028", "\u2029", "\u200e", "\u200f", "\u061c"]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)


def unsafe_characters(path: str) -> list[str]:
    """The control and bidirectional-text characters in `path`, as escapes (``\\n``, ``\\u202e``)."""
    return sorted({ascii(c)[1:-1] for c in path if c in _UNSAFE})


def is_git_path(rel_path: str) -> bool:
    """Whether a workspace-relative path is in a ``.git`` folder, however its name is cased or padded."""
    return any(part.lower().rstrip(" .") == ".git" for part in PurePosixPath(rel_path).parts)


def quote_path(path: str) -> str:
    """`path` as git shows it: as is when plain, else in double quotes with C escapes (``"a\\nb.py"``),
    so that a name cannot fake a diff header or a line of a list."""
    if not any(c in _UNSAFE or c in '"\\' for c in path):
        return path
    escaped = path.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ascii(c)[1:-1] if c in _UNSAFE else c for c in escaped) + '"'


log = logging.getLogger(__name__)

_NAME_MAX = 255
_PATH_MAX = 4096
"""Linux's limits (bytes of one name, of a whole path): past them every file call fails."""


class PathRefused(ValueError):
    """A path the agent may not use. The message says why, for the model to read."""


def _relative_to(path: str, root: str) -> str | None:
    """`path` relative to `root` (both absolute and normalized), or None when it is outside."""
    if path == root:
        return "."
    prefix = root if root.endswith("/") else root + "/"
    if path.startswith(prefix):
        return path[len(prefix) :]
    return None


def resolve_in_workspace(root: Path, path: str) -> str:
    """Return `path` as a workspace-relative POSIX path, or raise `PathRefused`.

    `root` is the workspace root; `path` is relative to it or absolute inside it. The root itself is `"."`.
    """
    if not isinstance(path, str):
        raise PathRefused(f"The path must be a string, got {type(path).__name__}.")
    if "\x00" in path:
        raise PathRefused("The path contains a NUL byte.")
    bad = unsafe_characters(path)
    if bad:
        raise PathRefused(
            f"The path {quote_path(path)} contains {', '.join(bad)} (line breaks, control or text-direction "
            "characters), which agentls refuses in file names: they can disguise what a diff shows."
        )
    if not path.strip():
        raise PathRefused("The path is empty. Give a path relative to the workspace root, or `.` for it.")

    root_abs = os.path.normpath(os.path.abspath(root))
    root_real = os.path.realpath(root_abs)
    outside = (
        f"The path {path} is outside the workspace {root_abs}. "
        "Use a path relative to the workspace root or an absolute path inside it."
    )

    if os.path.isabs(path):
        normalized = os.path.normpath(path)
        rel = _relative_to(normalized, root_abs)
        if rel is None and root_real != root_abs:
            # The caller may have written the root's real path (e.g. /private/tmp for /tmp on macOS).
            rel = _relative_to(normalized, root_real)
        if rel is None:
            raise PathRefused(outside)
    else:
        rel = posixpath.normpath(path.replace(os.sep, "/"))
        if rel == ".." or rel.startswith("../") or rel.startswith("/"):
            raise PathRefused(outside)

    rel = PurePosixPath(rel).as_posix()
    if len(os.fsencode(os.path.join(root_abs, rel))) >= _PATH_MAX or any(
        len(os.fsencode(part)) > _NAME_MAX for part in rel.split("/")
    ):
        raise PathRefused(
            f"The path {quote_path(path[:200])}... is too long: a file name takes at most {_NAME_MAX} bytes "
            f"and a whole path fewer than {_PATH_MAX}. Use a shorter name."
        )
    if rel != ".":
        # Symlinks on disk (in the overlay's base) must not lead outside; realpath resolves the part
        # that exists and keeps the rest lexically, so not-yet-created files are checked too.
        real = os.path.realpath(os.path.join(root_abs, rel))
        if _relative_to(real, root_real) is None:
            raise PathRefused(
                f"The path {path} goes through a symbolic link that leads outside the workspace ({real}); "
                "it is refused."
            )
        if is_git_path(rel):
            raise PathRefused(
                f"The path {path} is inside a .git directory, which the agent may not read or edit. "
                "Use git commands through the bash tool to inspect the repository."
            )
        if is_secret_path(rel):
            raise PathRefused(
                f"The path {path} is a secret file (keys, credentials, .env); the agent may not use it."
            )
    return rel

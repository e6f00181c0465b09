"""The one policy for secrets and built-in ignores: every consumer uses it, and no list got weaker."""

from __future__ import annotations

import pytest

from agent import overlay, paths
from agent.tools import editor
from indexing import policy, walker
from server import workspace


def test_every_consumer_uses_the_policy() -> None:
    assert paths.is_secret_path is policy.is_secret_path
    assert walker.is_secret_path is policy.is_secret_path
    assert walker.IGNORE_FILE_NAMES is policy.IGNORE_FILE_NAMES
    assert walker.BUILTIN_IGNORED_NAMES is policy.BUILTIN_IGNORED_NAMES
    assert overlay.DEFAULT_BIND_DIRS is policy.SANDBOX_BOUND_DIRS
    assert overlay.DEFAULT_SKIP_DIRS is policy.SANDBOX_SKIPPED_DIRS
    assert workspace.SKIPPED_DIRS is policy.SKIPPED_DIRS
    assert editor.SKIPPED_DIRS is policy.SKIPPED_DIRS


def test_the_skipped_folders_hold_every_list_there_was() -> None:
    # The server's and the editor tool's own lists, before they used the policy.
    server_list = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache"}
    server_list |= {".pytest_cache", ".ruff_cache", ".tox", ".nox"}
    editor_list = {"node_modules", "__pycache__"}
    assert server_list | editor_list <= policy.SKIPPED_DIRS
    assert (
        policy.BUILTIN_IGNORED_NAMES | policy.SANDBOX_BOUND_DIRS | policy.SANDBOX_SKIPPED_DIRS
        <= policy.SKIPPED_DIRS
    )
    assert (
        "venv" not in policy.BUILTIN_IGNORED_NAMES
    )  # a real package may be called venv (CPython's Lib/venv)


# Names agent.paths' own fallback list refused: the policy refuses them too.
@pytest.mark.parametrize(
    "path",
    [".env", ".env.prod", "a.pem", "b.key", "c.p12", "d.pfx", "id_rsa", "id_rsa.bak", "id_dsa.old",
     "keys/id_ecdsa.orig", "id_ed25519.1", "credentials", "credentials.txt", "conf/credentials.csv",
     ".netrc", ".pgpass", ".npmrc", ".pypirc", "ID_RSA.BAK"],
)  # fmt: skip
def test_the_old_fallback_names_are_secret(path: str) -> None:
    assert policy.is_secret_path(path)


@pytest.mark.parametrize("path", ["credentials.py", "docs/credentials.md", "id_utils.py", "env.py"])
def test_code_that_only_sounds_secret_is_not(path: str) -> None:
    assert not policy.is_secret_path(path)

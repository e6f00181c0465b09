"""What agentls never reads and never indexes: secret files, built-in ignored folders, ignore-file names.

One place for these rules, so the indexer, the agent's tools, the overlay and the language server agree:

- `is_secret_path`: files that must never be read, indexed, shown or edited (keys, credentials, ``.env``);
  `agent.paths.resolve_in_workspace` refuses them for every tool;
- `IGNORE_FILE_NAMES`: the per-directory ignore files (gitignore syntax) the walker reads;
- `BUILTIN_IGNORED_NAMES` / `BUILTIN_IGNORED_SUFFIXES`: file and folder names never indexed, at any depth,
  whatever the ignore files say;
- `SANDBOX_BOUND_DIRS` / `SANDBOX_SKIPPED_DIRS`: folders the overlay does not copy into the sandbox
  (bound read-only from the workspace, or left out: caches tools rebuild);
- `SKIPPED_DIRS`: all of the above folders: file events inside them do not re-index (the server), and
  directory listings for the model leave them out (the editor tool).

Everything here is plain data and string checks (no I/O, no third-party imports), so any process may
import it cheaply.
"""

from __future__ import annotations

import re

__all__ = [
    "BUILTIN_IGNORED_NAMES",
    "BUILTIN_IGNORED_SUFFIXES",
    "IGNORE_FILE_NAMES",
    "SANDBOX_BOUND_DIRS",
    "SANDBOX_SKIPPED_DIRS",
    "SKIPPED_DIRS",
    "is_secret_path",
]

IGNORE_FILE_NAMES: tuple[str, ...] = (".gitignore", ".agentlsignore")
"""Per-directory ignore files, in the order they are applied (later wins within one directory)."""

BUILTIN_IGNORED_NAMES: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        "node_modules",
        "__pycache__",
        ".venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".eggs",
        ".direnv",
        ".idea",
        ".vscode",
        ".DS_Store",
    }
)
"""File and directory names never indexed, at any depth. Not ``venv``: a real package may have that name
(CPython's ``Lib/venv``); the walker recognises virtual environments by their marker file instead."""

BUILTIN_IGNORED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo", ".egg-info")
"""Name endings never indexed (compiled Python, egg metadata folders)."""

SANDBOX_BOUND_DIRS: frozenset[str] = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", ".tox", ".nox", ".direnv"}
)
"""Directory names that are not copied into the sandbox but bound read-only from the real workspace."""

SANDBOX_SKIPPED_DIRS: frozenset[str] = frozenset(
    {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".cache"}
)
"""Directory names left out of the sandbox entirely (caches that tools rebuild)."""

SKIPPED_DIRS: frozenset[str] = BUILTIN_IGNORED_NAMES | SANDBOX_BOUND_DIRS | SANDBOX_SKIPPED_DIRS
"""Folders that never hold the user's source: version control, dependencies, virtualenvs, caches, editors."""


# --------------------------------------------------------------------------------------------------
# Secret files

_SECRET_DIRS = frozenset({".ssh", ".gnupg", ".aws"})
_SECRET_NAMES = frozenset(
    {
        ".netrc",
        "_netrc",
        ".pgpass",
        ".my.cnf",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        ".htpasswd",
        "credentials",
        "credentials.json",
    }
)
_SECRET_SUFFIXES = (
    ".pem",
    ".key",
    ".p12",
    ".pfx",
    ".p8",
    ".ppk",
    ".jks",
    ".keystore",
    ".kdbx",
    ".ovpn",
    ".tfvars",
    ".env",
)
_SECRET_PATTERN = re.compile(
    r"""
    id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?(?:\..+)?      # ssh keys, their copies (id_rsa.bak) and .pub halves
    | .*credentials.*\.(?:json|ya?ml|toml|ini)          # gcp-credentials.json, credentials.prod.yml
    | credentials(?:\.[\w-]+)*\.(?:txt|csv|cfg|conf|xml|properties)  # credentials.txt, credentials.csv
    | secrets?(?:\.[\w-]+)?\.(?:json|ya?ml|toml|ini)    # secrets.yaml, secrets.prod.json (not secrets.py)
    | terraform\.tfstate.*                              # state files hold every secret terraform saw
    | .*-sa\.json | service[-_]?account.*\.json         # service-account keys
    """,
    re.VERBOSE,
)


def is_secret_path(rel_path: str) -> bool:
    """Whether a workspace-relative path names a file that must never be read, indexed or shown.

    The agent's tools use this too, to refuse secret files. Names are compared case-insensitively.
    A path is secret when:

    - its name starts with `.env` (`.env`, `.env.local`, `.envrc`, and the `.env.example`-style
      templates too: they are often filled with real values by mistake) or ends with `.env`
      (`prod.env`); `env.example` and Alembic's `env.py` are not secret;
    - its name ends with `.pem`, `.key`, `.p12`, `.pfx`, `.p8`, `.ppk`, `.jks`, `.keystore`, `.kdbx`,
      `.ovpn` or `.tfvars`;
    - it is an SSH key: `id_rsa`, `id_dsa`, `id_ecdsa`, `id_ed25519` (with `_sk`, any extension: the
      `.pub` halves, which are not secret but harmless to skip, and copies such as `id_rsa.bak`); only
      these key names, not every `id_*`;
    - its name is `.netrc`, `_netrc`, `.pgpass`, `.my.cnf`, `.npmrc`, `.pypirc`, `.git-credentials`,
      `.htpasswd`, `credentials` or `credentials.json`, or matches `*credentials*.{json,yml,yaml,toml,ini}`,
      `credentials*.{txt,csv,cfg,conf,xml,properties}`, `secret(s).{json,yml,yaml,toml,ini}` (also
      `secrets.prod.yaml`), `terraform.tfstate*`, `*-sa.json` or `service-account*.json` (code such as
      `credentials.py` is not secret);
    - it lies inside a `.ssh`, `.gnupg` or `.aws` directory, or is `.docker/config.json` or `.kube/config`.
    """
    # str.split, not PurePosixPath: this runs for every file of every walk (a third of the kernel's walk).
    parts = [part for part in rel_path.replace("\\", "/").lower().split("/") if part and part != "."]
    if not parts:
        return False
    name = parts[-1]
    if name.startswith(".env") or name.endswith(_SECRET_SUFFIXES) or name in _SECRET_NAMES:
        return True
    if _SECRET_PATTERN.fullmatch(name):
        return True
    if any(part in _SECRET_DIRS for part in parts[:-1]):
        return True
    return tuple(parts[-2:]) in ((".docker", "config.json"), (".kube", "config"))

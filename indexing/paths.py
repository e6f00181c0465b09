"""Where agentls keeps its files: the cache folder and a workspace's index folder in it.

Both are marked as caches with a ``CACHEDIR.TAG`` file (the Cache Directory Tagging Specification, which
backup tools and ``tar --exclude-caches`` honour): `tag_cache_dir` writes it, `is_tagged_cache` checks it.
The walker never enters a tagged folder, so an index or cache that lies inside a workspace (``[index] uri
= "idx"``, ``AGENTLS_CACHE_DIR`` under the project) is not indexed itself, with its placeholder key.

It also says where the user's own settings file is (`user_settings_file`), the name of the file, in the
cache folder, that records which workspace settings the user trusted (`SETTINGS_TRUST_FILE`), and the
name of the folder in the cache's ``models`` that `agentls model distill` writes (`DISTILLED_MODEL_NAME`).

Standard library only, so that the command line's quick search (`server.cli.quick`) finds them without
importing pydantic and the settings tree (`server.settings`, `indexing.config` and
`server.settings_trust` re-export these), and the test run's controller process names the test model's
folder without importing numpy (`indexing.embeddings` re-exports `DISTILLED_MODEL_NAME`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CACHEDIR_TAG",
    "DISTILLED_MODEL_NAME",
    "SETTINGS_TRUST_FILE",
    "cache_dir",
    "default_index_location",
    "is_tagged_cache",
    "models_stamp",
    "tag_cache_dir",
    "too_broad",
    "user_settings_file",
]

CACHEDIR_TAG = "CACHEDIR.TAG"
SETTINGS_TRUST_FILE = "settings-trust.json"
"""In the cache folder: the workspace settings the user trusted (`server.settings_trust`)."""
DISTILLED_MODEL_NAME = "distilled-minilm"
"""Folder under `cache_dir/models` where `agentls model distill` writes its model by default."""
_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
_TAG_TEXT = (
    _SIGNATURE.decode() + "\n# This file is a cache directory tag created by agentls.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


def cache_dir(env: Mapping[str, str]) -> Path:
    """``$AGENTLS_CACHE_DIR``, else ``$XDG_CACHE_HOME/agentls``, else ``~/.cache/agentls``."""
    if env.get("AGENTLS_CACHE_DIR"):
        return Path(env["AGENTLS_CACHE_DIR"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or str(Path.home()), ".cache")
    return Path(base).expanduser() / "agentls"


def default_index_location(root: Path, cache_dir: Path) -> Path:
    """``<cache>/index/<name>-<hash of the absolute root>``: one folder per workspace, outside the repo."""
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    name = (root.resolve().name or "root")[:64]  # a file name has at most 255 bytes; the hash keeps it unique
    return cache_dir / "index" / f"{name}-{digest}"


def tag_cache_dir(folder: Path) -> None:
    """Write ``folder/CACHEDIR.TAG`` when it is missing (the folder exists); a failure is ignored: the tag
    only keeps walkers and backups out."""
    tag = folder / CACHEDIR_TAG
    if not tag.exists():
        try:
            tag.write_text(_TAG_TEXT)
        except OSError:
            pass


def is_tagged_cache(folder: str) -> bool:
    """Whether ``folder`` holds a ``CACHEDIR.TAG`` that starts with the specification's signature."""
    try:
        with open(os.path.join(folder, CACHEDIR_TAG), "rb") as handle:
            return handle.read(len(_SIGNATURE)) == _SIGNATURE
    except OSError:
        return False


def models_stamp(cache_dir: Path) -> str:
    """The state of the models installed in ``cache_dir/models`` (their names, and the folder's mtime for a
    model replaced under the same name): what a warm search process and its search card depend on besides
    the settings, so that a model pulled or distilled since retires them."""
    models = cache_dir / "models"
    try:
        return f"{models.stat().st_mtime_ns}:{sorted(os.listdir(models))}"
    except OSError:
        return "none"


def too_broad(root: Path, env: Mapping[str, str]) -> str:
    """``"your home folder"``, ``"the root folder"`` or ``"the temporary folder"`` when ``root`` (a real
    path) is one: a workspace there would have every project and file in it indexed. The temporary
    folder is ``TMPDIR`` of `env`, ``/tmp`` or ``/var/tmp``: an editor opening a loose file such as
    ``/tmp/scratch.py`` has no project around it, and other programs' files fill that folder. Else ``""``."""
    if root == Path(env.get("HOME") or Path.home()).resolve():
        return "your home folder"
    if root == Path(root.anchor):
        return "the root folder"
    temporary = {Path("/tmp").resolve(), Path("/var/tmp").resolve()}
    if env.get("TMPDIR"):
        temporary.add(Path(env["TMPDIR"]).resolve())
    return "the temporary folder" if root in temporary else ""


def user_settings_file(env: Mapping[str, str]) -> Path:
    """The user's own settings file, trusted as the user's: ``$XDG_CONFIG_HOME/agentls/agentls.toml``, else
    ``~/.config/agentls/agentls.toml``."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or str(Path.home())) / ".config")
    return Path(base).expanduser() / "agentls" / "agentls.toml"

"""Settings that weaken protection or send data elsewhere, and the trust in a workspace's values of them.

A workspace's ``agentls.toml`` (or ``[tool.agentls]`` of its ``pyproject.toml``) may come from a repository
the user cloned and did not write. `sensitive_settings` lists, in this one place, the settings such a file
could use against the user, each with what it may be set to without trust (`Safe`):

- where the code and keys go: the model's and the roles' ``provider``, ``base_url`` and ``api_key_env``
  (the environment variable whose value is sent as the key), the embedding and rerank endpoints (a local
  provider is safe), ``index.shared``, ``agent.install.index_url``, ``allow_secret_values`` (false is safe);
- where agentls writes or reads on the machine: ``index.uri``, and ``index.embedding.model`` /
  ``index.rerank.model`` naming a folder outside the workspace (a model id, looked up only in the caches
  of models the user put on the machine, and a folder inside the workspace are safe; a relative folder
  is the workspace root's wherever agentls runs, for this check and for the loader alike:
  `indexing.config.model_folder`);
- what goes into the index: ``index.exclude`` holding a ``!pattern``, which re-includes what the
  ``.gitignore`` files leave out, such as the local settings file with the user's keys that git keeps out
  of the repository (patterns that only leave files out are safe: while the ``!pattern`` entries wait
  for the trust, the list's other patterns apply, `safe_part`). A committed ``.agentlsignore`` cannot
  re-include what git ignores at all (`indexing.walker`): the exclude setting is where a re-include is
  written, with the user's trust for a workspace's file;
- the sandbox's isolation: ``enabled``, ``allow_unsandboxed``, ``network``, ``allowed_hosts`` (some of the
  default hosts are safe), ``extra_ro_paths``, ``hidden_home_entries`` (a list keeping every default entry
  is safe), ``bwrap_path``, ``path``, ``scratch_dir``; and ``approve`` (``ask`` is safe);
- limits, sensitive only above their default, or above the user's own value when the user's file sets
  one (a repository could raise them to exhaust the machine or the user's model account; lowering one is
  safe): every number of ``[agent.sandbox]`` and ``[agent.install]``
  (time, CPU, memory, processes, file sizes, files, disk, output kept; one added there later is covered
  too), ``agent.verify_timeout``, ``agent.max_cost_usd`` (the one cap on a run's spending: the team's, the
  delegates' and the nodes' budgets, the step and token limits and the model's choice and size all stay
  inside it), ``index.workers`` (above the 8 processes that 0 may start), ``index.max_file_bytes``,
  ``index.search_process_idle``; and ``server.refresh_seconds`` below its default (0, off, is safe).

The other settings are safe from a workspace's file, and are not asked about:

- ``agent.test_command`` runs, in the sandbox and with its limits, the workspace's own tests: the command
  detected without it (pytest and its ``conftest.py``, ``npm test``'s script, ``make test``) runs code the
  repository wrote just as well, so the setting gives a repository nothing it does not already have.
- ``[mcp.servers.NAME]`` (or ``[agent.mcp.servers.NAME]``): a server is asked about before it starts,
  with its ``command``, ``args``, ``env``, ``cwd``, ``url`` and ``headers`` (`agent.mcp.trust`); its
  ``timeout``, and the bounds ``max_result_chars``, ``max_images`` and ``start_timeout``, only narrow or
  wait. Its ``tools`` and ``enabled`` too, but for a server of the user's own file (at either place)
  that sets a list of ``tools`` (a workspace's may keep some of them only: an empty list is every tool)
  or ``enabled = false`` (a workspace's may not turn it on): those are sensitive, as the user's
  protection. The two places are one table (`server.settings_files.joined`): a workspace's table of a
  server of the user's own file, at either place, changes only the fields it writes, each under these
  rules. A changed ``command``, ``args``, ``env``, ``cwd``, ``url`` or ``headers`` is a configuration the
  MCP trust has not seen, asked about before it starts as a new server is (the question names the
  ``env`` and ``headers`` it gets); the user's ``tools`` and ``enabled = false`` stand until the user
  trusts the workspace's. The user's ``env`` and ``headers`` (and the credentials in ``args``) never
  go to a ``command``, ``args``, ``cwd`` or ``url`` the workspace's file chose, nor to the user's own
  command or URL with an ``env`` entry or header the workspace's file adds (``LD_PRELOAD``, ``PATH``:
  its code in the user's command; ``Host``: another backend): that server gets only the workspace's
  own, and a message says so (`server.settings_files.withheld_credentials`); no trust brings them there
  (the user sets the same values in their own settings instead).
- The model's ``model``, ``max_tokens``, ``temperature``, ``context_window``, ``vision`` and
  ``prompt_caching``, its ``timeout``, ``connect_timeout`` and retries (``max_retries``,
  ``retry_deadline_seconds``, ``retry_base_delay``, ``retry_max_delay``); ``max_steps``,
  ``max_reflections``, ``max_input_tokens``, ``max_total_tokens`` and ``max_minutes`` (the last three
  unlimited by default, so a file can only lower them), ``[agent.delegate]``, ``[agent.team]`` (its graphs
  are made of agentls' own roles) and ``[agent.roles]``' other model fields: a run's cost stays under
  ``max_cost_usd``, and it runs while the user watches and can cancel it.
- ``agent.verify``, ``syntax_checks``, ``team.confirm_spec`` and the context and output sizes sent to the
  model (``context_token_budget``, ``max_tool_result_chars``, ``max_test_output_chars``, ``[agent.memory]``):
  what is checked and shown before the user accepts a proposal, which nothing is written without.
- ``[index]``'s chunking and storage tuning (``max_line_chars``, ``chunk_max_lines``, ``window_lines``,
  ``window_overlap``, ``batch_files``, which a batch's byte bound caps, ``vector_index_min_rows``,
  ``compact_after_fragments``, ``query_expansion``, the embedding's ``batch_size`` (at most 4,096) and
  ``max_chars``, the reranker's ``candidates`` (at most 200) and ``timeout``): their cost is bounded by the
  files' size, which ``max_file_bytes`` bounds.
- ``[server]``: ``index_on_start``, ``reindex_on_save``, ``log_level``, ``loop_monitor`` and
  ``index_nice`` (0 at least: never above the editor's priority) change nothing outside agentls.
  ``index_home_or_root`` only acts in a workspace that is the home folder, ``/`` or the temporary folder,
  whose settings file is that folder's own: the user's, or root's (in the temporary folder, any local
  user's; that folder is indexed only when the user opens it as a workspace).

`untrusted_dropped` takes the sensitive settings out of a workspace file's raw settings unless the user
trusted exactly those values for that workspace: a SHA-256 `fingerprint` of every sensitive value the file
sets, kept in ``<agentls cache>/settings-trust.json`` (`agent.trust_store.TrustStore`, as the MCP servers'
trust is; change, add or remove any of them and the trust is asked again, as it is for a value that became
sensitive since). Each dropped key gets a message with its file and line and the command that trusts them,
``agentls settings --trust --path ROOT`` (which shows the values first). The safe default, or the user's
own value, is used meanwhile. A limit the user's own file sets is compared with the user's value instead
of the default (`sensitive_values`' ``user``): a workspace's file cannot bring a limit the user lowered
back up to its default without the question, and is free to stay at or under a limit the user raised.
So are the sandbox's lists (``allowed_hosts``, ``extra_ro_paths``: some of the user's entries only;
``hidden_home_entries``: every one of them) and an MCP server's ``tools`` and ``enabled``, wherever
either file writes the server (``[mcp.servers.NAME]`` or ``[agent.mcp.servers.NAME]``). The user's
``index.exclude`` is never replaced: the files' lists add up (`server.settings_files.COMBINED`). An
invalid value of the workspace's file (which validation refuses, so it is not asked about) falls back to
the user's own value, not the default (`server.settings_files.validated`'s ``under``). An invalid value of
the editor's settings falls back to the layers below as they apply (`server.settings_files.load`): to the
workspace's value only when it applies (safe, or trusted), and an invalid MCP ``command`` or ``url`` of
the editor's chooses no destination, so the user's credentials stay withheld from the workspace's.

The language server asks instead (`server.lsp`): once per workspace and `fingerprint` in a server's life,
``window/showMessageRequest`` with `question` (the keys and values, URLs' credentials masked, and the
command that trusts them later) and the actions `TRUST` and `IGNORE`. The question is logged when asked; the
values stay dropped while it waits, however long. `TRUST` is `remember`ed in the same store as the
command's, for exactly the values it showed (a late answer, after the file changed, trusts those and not
the new ones, which have a question of their own), and the settings are read again (a trust file that
cannot be written leaves them dropped, and a warning message says why and how to trust them later);
`IGNORE`, no answer or a dismissed question leaves them dropped and logged. A client that cannot answer
gets the messages. ``agentls acp`` asks with ``session/request_permission`` before a session's run, the
same way (`server.acp`).

The user's own settings are trusted for everything: the user-level file `user_settings_file`
(``$XDG_CONFIG_HOME/agentls/agentls.toml``, by default ``~/.config/agentls/agentls.toml``) and the
editor's settings (``initializationOptions``, ``workspace/configuration``). The trust file's place comes
from the environment only (`indexing.paths.cache_dir`), never from a setting a workspace could write.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from indexing.config import IndexSettings, model_folder
from indexing.credentials import mask_urls
from indexing.models import AUTO_WORKERS_MAX
from indexing.paths import SETTINGS_TRUST_FILE as TRUST_FILE
from indexing.paths import cache_dir, user_settings_file
from server.settings_files import IndexingSettings, ServerSettings

if TYPE_CHECKING:
    from agent.trust_store import Kept, TrustStore

__all__ = [
    "IGNORE",
    "TRUST",
    "TRUST_FILE",
    "Sensitive",
    "fingerprint",
    "question",
    "remember",
    "sensitive_settings",
    "sensitive_values",
    "settings_trust",
    "trust_command",
    "untrusted_dropped",
    "user_settings_file",
]

TRUST, IGNORE = "Trust these settings", "Ignore them"
"""The actions of the language server's question (`question`)."""


def _default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)


def _figure(number: float) -> str:
    return f"{number:,.0f}" if float(number).is_integer() else f"{number:,}"


_MODEL = ("provider", "base_url", "api_key_env")
_SENT = "choose where the code and your API key are sent"

Safe = tuple[Any, ...] | Callable[[Any, Path], bool]
"""What a sensitive setting may be set to without trust: a tuple of values, or a test of the value and the
workspace's root."""


def _number(value: Any) -> float | None:
    """`value` as the number validation would read (a TOML number, or a string of one); None: no number,
    which validation refuses (the setting falls back to its default with a message, no trust needed)."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


class _Bound:
    """Safe: a limit at or below `bound` (its default; `lower`: at or above it, or 0, off). NaN and
    infinity are not. `of_user` gives the bound of the user's own value of the setting, when the user's
    file sets it (`sensitive_values`): the file may not bring back what the user lowered."""

    def __init__(self, bound: float, *, lower: bool = False, auto: float | None = None) -> None:
        self.bound = bound
        self.lower = lower
        self.auto = auto
        """The bound a user's 0 (automatic) stands for (`index.workers`); None: 0 is a value like any."""

    def of_user(self, value: Any) -> _Bound | None:
        """The rule with the user's `value` as its bound; None: no number (validation dropped it)."""
        number = _number(value)
        if number is None or number != number:
            return None
        if number == 0 and self.auto is not None:
            number = self.auto
        return _Bound(number, lower=self.lower, auto=self.auto)

    def __call__(self, value: Any, root: Path) -> bool:
        number = _number(value)
        if number == 0 and self.auto is not None:
            number = self.auto
        if not self.lower:
            return (number is None and value is not None) or (number is not None and number <= self.bound)
        if number is None or number == 0:
            return True
        return self.bound != 0 and number >= self.bound


def _at_most(limit: float, *, auto: float | None = None) -> _Bound:
    """Safe: a limit set to `limit` (its default) or lower; NaN, infinity and anything higher are not."""
    return _Bound(limit, auto=auto)


def _off_or_at_least(every: float) -> _Bound:
    """Safe: 0 (off) or an interval of `every` or longer (a user who set 0, off: only 0)."""
    return _Bound(every, lower=True)


class _Keeps:
    """Safe: a list that still holds every one of `kept` (its default; more entries hide more). `of_user`:
    the rule with the user's own list as what must be kept, when the user's file sets one (a workspace
    may not show what the user added to the list)."""

    def __init__(self, kept: list[str]) -> None:
        self.kept = kept

    def of_user(self, value: Any) -> _Keeps | None:
        return _Keeps(value) if isinstance(value, list) else None

    def __call__(self, value: Any, root: Path) -> bool:
        return isinstance(value, list) and set(self.kept) <= set(value)


class _Narrows:
    """Safe, for a setting where an empty list means everything (an MCP server's ``tools``): anything,
    unless the user's own file sets a list (`of_user`); then a list of some of its entries only (an empty
    list would be every tool of the server)."""

    def __init__(self, allowed: list[str] | None = None) -> None:
        self.allowed = allowed

    def of_user(self, value: Any) -> _Narrows | None:
        return _Narrows(value) if isinstance(value, list) and value else None

    def __call__(self, value: Any, root: Path) -> bool:
        if self.allowed is None:
            return True
        return isinstance(value, list) and bool(value) and set(value) <= set(self.allowed)


class _StaysOff:
    """Safe, for an on/off setting: anything, unless the user's own file turned it off (`of_user`); then
    only off (an MCP server the user's file disabled)."""

    def __init__(self, off: bool = False) -> None:
        self.off = off

    def of_user(self, value: Any) -> _StaysOff | None:
        return _StaysOff(True) if value is False else None

    def __call__(self, value: Any, root: Path) -> bool:
        return not self.off or value is False


class _Within:
    """Safe: a list of some of `allowed` only (its default; fewer hosts reach less, fewer folders show
    less). `of_user`: the rule with the user's own list as the bound, when the user's file sets one (a
    workspace may not bring back a default host the user took out)."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed

    def of_user(self, value: Any) -> _Within | None:
        return _Within(value) if isinstance(value, list) else None

    def __call__(self, value: Any, root: Path) -> bool:
        return isinstance(value, list) and set(value) <= set(self.allowed)


def _model_in_workspace(value: Any, root: Path) -> bool:
    """Safe: a model named by its id (found only in the caches of models the user put on the machine),
    or a folder inside the workspace. Unsafe: a folder anywhere else, which the loader would read. A
    relative folder is the workspace root's (`indexing.config.model_folder`), wherever agentls runs: the
    settings load makes it absolute, so the loader reads the folder checked here."""
    if not isinstance(value, str):
        return True  # validation refuses it
    try:
        folder = model_folder(value, root)
        return folder is None or folder.resolve().is_relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError):  # RuntimeError: a symbolic link loop (Python 3.11)
        return False


def _reincludes(item: Any) -> bool:
    """Whether the exclude pattern `item` is a ``!pattern``, which re-includes what git ignores."""
    return isinstance(item, str) and item.strip().startswith("!")


def _no_reinclude(value: Any, root: Path) -> bool:
    """Safe: patterns that only leave files out; a ``!pattern`` could re-include what git ignores."""
    if not isinstance(value, list):
        return True  # validation refuses it
    return not any(_reincludes(item) for item in value)


_APPLIES_UNTRUSTED: dict[str, Callable[[Any], Any]] = {
    "index.exclude": lambda value: [item for item in value if not _reincludes(item)],
}
"""The sensitive settings of which a part is safe and applies without trust, and that part of a value:
``index.exclude``'s patterns that only leave files out (its ``!pattern`` entries wait for the trust)."""


def safe_part(item: Sensitive) -> Any:
    """What of the sensitive value `item` applies while it is not trusted (`_APPLIES_UNTRUSTED`); None:
    none of it, the setting waits for the trust as a whole."""
    part = _APPLIES_UNTRUSTED.get(item.key)
    return part(item.value) if part is not None and isinstance(item.value, list) else None


def _limit(why: str, model: type[BaseModel], name: str, unit: str = "") -> tuple[str, Safe]:
    """A limit: sensitive above its default, which the message names."""
    default = _default(model, name)
    return f"{why} (the default is {_figure(default)}{unit})", _at_most(default)


def _limits(section: str, model: type[BaseModel], who: str) -> dict[str, tuple[str, Safe]]:
    """Every number of `model` (a settings section of resource limits) as a limit. One added to the section
    later is covered without being listed here."""
    return {
        f"{section}.{name}": _limit(f"raise a limit on what {who} use of your machine", model, name)
        for name, field in model.model_fields.items()
        if field.annotation in (int, float)
    }


_INDEXING_RULES: dict[str, tuple[str, Safe]] = {
    "index.embedding.provider": (
        "choose where the code is sent to be embedded",
        ("none", "model2vec", "sentence-transformers"),
    ),
    "index.embedding.base_url": ("choose where the code is sent to be embedded", ()),
    "index.embedding.api_key_env": ("choose which of your keys is sent with the code", ()),
    "index.embedding.model": ("read a model from a folder outside the workspace", _model_in_workspace),
    "index.rerank.provider": ("choose where the code is sent to be reranked", ("none", "cross-encoder")),
    "index.rerank.url": ("choose where the code is sent to be reranked", ()),
    "index.rerank.api_key_env": ("choose which of your keys is sent with the code", ()),
    "index.rerank.model": ("read a model from a folder outside the workspace", _model_in_workspace),
    "index.uri": ("choose where on your machine the index is written", ()),
    "index.exclude": (
        "index files your .gitignore keeps out of git or your own exclude patterns leave out (a "
        "`!pattern` re-includes them), such as a local settings file with your keys",
        _no_reinclude,
    ),
    "index.shared": ("read the index from object storage it chooses", ()),
    "index.workers": (
        "start more parser processes than the default (one per core, at most 8)",
        _at_most(AUTO_WORKERS_MAX, auto=AUTO_WORKERS_MAX),
    ),
    "index.max_file_bytes": _limit(
        "read larger files into memory to index them", IndexSettings, "max_file_bytes", " bytes"
    ),
    "index.search_process_idle": _limit(
        "keep the search process running longer after a search", IndexSettings, "search_process_idle", " s"
    ),
    "server.refresh_seconds": (
        "make the server look through the workspace for changes more often (the default is every "
        f"{_figure(_default(ServerSettings, 'refresh_seconds'))} s)",
        _off_or_at_least(_default(ServerSettings, "refresh_seconds")),
    ),
}
"""The sensitive settings of the sections indexing and search read (`IndexingSettings`): those of
`sensitive_settings` that need none of the agent's classes."""


_MCP_RULES: dict[str, tuple[str, Safe]] = {
    "tools": ("let the agent use tools of an MCP server your own settings leave out", _Narrows()),
    "enabled": ("start an MCP server your own settings turn off", _StaysOff()),
}
"""An MCP server's settings that narrow a server of the user's own file: sensitive only against it."""


@functools.cache
def sensitive_settings() -> dict[str, tuple[str, Safe]]:
    """Each sensitive setting (``*``: any name), what a workspace could do with it (for the messages), and
    what it may be set to without trust (`Safe`): values that cannot weaken anything (``network = "off"``, a
    local embedding provider, a limit at or below its default). MCP servers have their own trust, asked
    before one starts (`agent.mcp.trust`): only what narrows a server of the user's own file is here.

    Made on first use: the agent's rules read the defaults of its settings classes, which reading the
    settings of a workspace that sets no agent section (`agentls index`, `search`) does not import
    (`_rules_for`)."""
    from agent.config import AgentSettings
    from agent.installs import InstallSettings
    from agent.sandbox import SandboxSettings

    return {
        **{f"agent.model.{key}": (_SENT, ()) for key in _MODEL},
        **{f"agent.roles.*.model.{key}": (_SENT, ()) for key in _MODEL},
        **_INDEXING_RULES,
        "agent.install.index_url": ("choose the package index installs download from", ()),
        **_limits("agent.install", InstallSettings, "package installs"),
        "agent.allow_secret_values": ("send the secret values in the code to the model", (False,)),
        "agent.approve": ("let MCP tools run without asking", ("ask",)),
        "agent.max_cost_usd": _limit(
            "let a run spend more of your money on the model", AgentSettings, "max_cost_usd", " USD"
        ),
        "agent.verify_timeout": _limit(
            "let each check of a change run longer", AgentSettings, "verify_timeout", " s"
        ),
        "agent.sandbox.enabled": ("turn the commands' sandbox off", (True,)),
        "agent.sandbox.allow_unsandboxed": ("run commands without a sandbox", (False,)),
        "agent.sandbox.network": ("give the commands network access", ("off",)),
        "agent.sandbox.allowed_hosts": (
            "let the commands reach more hosts",
            _Within(_default(SandboxSettings, "allowed_hosts")),
        ),
        "agent.sandbox.extra_ro_paths": ("let the commands read more of your machine", _Within([])),
        "agent.sandbox.hidden_home_entries": (
            "let the commands read what is hidden of your home",
            _Keeps(_default(SandboxSettings, "hidden_home_entries")),
        ),
        "agent.sandbox.bwrap_path": ("choose the program that runs as the sandbox", ()),
        "agent.sandbox.path": ("choose the programs the commands find", ()),
        "agent.sandbox.scratch_dir": ("choose where on your machine the commands' copies are written", ()),
        **_limits("agent.sandbox", SandboxSettings, "commands"),
        **{
            f"{at}servers.*.{name}": rule
            for at in ("mcp.", "agent.mcp.")
            for name, rule in _MCP_RULES.items()
        },
    }


def _rules_for(raw: Mapping[str, Any]) -> dict[str, tuple[str, Safe]]:
    """The sensitive settings the table `raw` can set: those of the indexing sections alone when it sets no
    other section (so that no agent class is imported for it)."""
    return _INDEXING_RULES if set(raw) <= set(IndexingSettings.model_fields) else sensitive_settings()


@dataclass(frozen=True, slots=True)
class Sensitive:
    """One sensitive setting a file sets: its dotted key, value, and what it could do."""

    key: str
    value: Any
    why: str


def _matches(pattern: str, key: tuple[str, ...]) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(key) and all(p == "*" or p == k for p, k in zip(parts, key, strict=True))


def _safe(value: Any, safe: Safe, root: Path) -> bool:
    return safe(value, root) if callable(safe) else value in safe


def _user_value(user: Mapping[str, Any] | None, key: tuple[str, ...]) -> Any:
    """The value the user's own settings set at `key`; None: not set there."""
    node: Any = user
    for part in key:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _rule_for(
    key: tuple[str, ...], rule: tuple[str, Safe], user: Mapping[str, Any] | None
) -> tuple[str, Safe]:
    """`rule`, its bound the user's own value of it when the user's file sets it (a limit above or below
    the default, a list of hosts, folders or hidden entries longer or shorter than the default: the
    user's value is the one the workspace's file would change)."""
    why, safe = rule
    mine = _user_value(user, key)
    if mine is None and key[:2] == ("mcp", "servers"):  # a server may be written at either place
        mine = _user_value(user, ("agent", *key))
    elif mine is None and key[:3] == ("agent", "mcp", "servers"):
        mine = _user_value(user, key[1:])
    if not isinstance(safe, _Bound | _Keeps | _Within | _Narrows | _StaysOff) or mine is None:
        return rule
    if (bound := safe.of_user(mine)) is None:
        return rule
    if not isinstance(safe, _Bound):
        return f"{why} (your own settings set {shown(mine)})", bound
    default = re.search(r" \(the default is (?:every )?[0-9.,]+([^)]*)\)$", why)
    unit = default.group(1) if default is not None else ""
    why = why[: default.start()] if default is not None else why
    return f"{why} (your own settings set {_figure(float(_number(mine) or 0))}{unit})", bound


def sensitive_values(
    raw: Mapping[str, Any], root: Path, user: Mapping[str, Any] | None = None
) -> list[Sensitive]:
    """The sensitive settings `raw` (the table of the settings file of the workspace `root`) sets to a
    value that could weaken protection, in the order it sets them. `user`: the user's own settings (their
    file's table, `user_settings_file`); a limit it sets is compared with the user's value instead of the
    default, so a workspace cannot bring back up what the user lowered."""
    found: list[Sensitive] = []
    rules = _rules_for(raw)

    def walk(node: Mapping[str, Any], at: tuple[str, ...]) -> None:
        for name, value in node.items():
            key = (*at, str(name))
            rule = next((r for p, r in rules.items() if _matches(p, key)), None)
            if rule is not None:
                why, safe = _rule_for(key, rule, user)
                if not _safe(value, safe, root):
                    found.append(Sensitive(".".join(key), value, why))
            elif isinstance(value, Mapping):
                walk(value, key)

    walk(raw, ())
    return found


def fingerprint(values: list[Sensitive]) -> str:
    """SHA-256 of every sensitive key and value a file sets (order-free)."""
    what = {item.key: item.value for item in values}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def settings_trust(env: Mapping[str, str]) -> TrustStore:
    """The store of trusted settings, ``<agentls cache>/settings-trust.json``."""
    from agent.trust_store import TrustStore

    return TrustStore(cache_dir(env) / TRUST_FILE)


def trust_command(root: Path) -> str:
    return shlex.join(["agentls", "settings", "--trust", "--path", str(root)])


def shown(value: Any) -> str:
    """A value for the terminal, credentials in URLs masked."""
    return mask_urls(json.dumps(value)) if not isinstance(value, str) else mask_urls(repr(value))


def question(root: Path, values: list[Sensitive] | tuple[Sensitive, ...], source: str) -> str:
    """The editor's question whether to trust `values` of the workspace `root`'s file `source`: each key and
    value (credentials in URLs masked, as ``agentls settings`` shows them), what it could do, the part of
    it that applies already (`safe_part`: ``index.exclude``'s patterns that only leave files out), and the
    command that trusts them later (a question left unanswered, or ignored, is not asked again)."""
    listed, partly = [], False
    for item in values:
        part = safe_part(item)
        partly = partly or bool(part)
        applies = f"; of it, {shown(part)} applies already" if part else ""
        listed.append(f"{item.key} = {shown(item.value)} (could {item.why}{applies})")
    them = "the rest" if partly else "them"
    return (
        f"The agentls settings of this workspace ({source}) set sensitive values: {'; '.join(listed)}. "
        f'Until you trust them, {"the rest is" if partly else "they are"} ignored. "{TRUST}" applies them '
        f'from now on for {root} (until one of them changes); "{IGNORE}" keeps {them} ignored (the safe '
        f"defaults, or your own settings, apply; to trust them later: `{trust_command(root)}`)."
    )


def remember(
    root: Path, values: list[Sensitive] | tuple[Sensitive, ...], source: str, env: Mapping[str, str]
) -> Kept:
    """Trust exactly `values` of `root`'s settings file `source` from now on, as ``agentls settings
    --trust`` does; whether the trust file kept it (`agent.trust_store.Kept`)."""
    return settings_trust(env).add(root, fingerprint(list(values)), settings=source)


def _table_of(raw: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The table of `raw` that holds the dotted `key`'s last part; None: there is none."""
    node: Any = raw
    for part in key.split(".")[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _drop(raw: dict[str, Any], key: str) -> None:
    if (table := _table_of(raw, key)) is not None:
        table.pop(key.split(".")[-1], None)


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    if (table := _table_of(raw, key)) is not None:
        table[key.split(".")[-1]] = value


def untrusted_dropped(
    raw: dict[str, Any],
    found: list[Sensitive],
    root: Path,
    source: str,
    env: Mapping[str, str],
    *,
    text: str | None = None,
    prefix: tuple[str, ...] = (),
    trusted: Collection[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """`raw` (read from the workspace file `source`, whose TOML is `text`, its table at `prefix`) without its
    sensitive settings `found` (its `sensitive_values`, with the user's own settings, whose limits bound
    the file's; `server.settings_files.load` keeps them for the language server's question too), unless
    the user trusted exactly these values for `root`; a message for each one dropped, naming its file and
    line and the command that trusts them. Of a setting with a safe part (`safe_part`: ``index.exclude``'s
    patterns that only leave files out) only the rest is dropped, which its message names (its
    ``!pattern`` entries). `raw` is changed in place. `trusted`: the `fingerprint`s of values the user
    trusted for `root` that the trust file does not hold (``agentls acp``'s, trusted while it runs when
    the file could not be written), which apply as the trust file's do."""
    from server.settings_files import SettingsMessage, toml_line

    if not found:
        return raw, []
    values = fingerprint(found)
    if values in trusted or settings_trust(env).has(root, values):
        return raw, []
    messages: list[str] = []
    for item in found:
        line = toml_line(text, (*prefix, *item.key.split("."))) if text is not None else None
        where = f"{source}:{line}" if line is not None else source
        untrusted = "the workspace's own settings are not trusted with these values"
        part = safe_part(item)
        if part:  # an empty part is dropped: the user's own value stands, as for the rest
            _set(raw, item.key, part)
            held = ", ".join(repr(entry) for entry in item.value if entry not in part)
            said = (
                f"{where}: ignoring {held} of `{item.key}` (they could {item.why}): {untrusted}; its "
                f"other entries apply; run `{trust_command(root)}` to see and trust them"
            )
        else:
            _drop(raw, item.key)
            said = (
                f"{where}: ignoring `{item.key}` (it could {item.why}): {untrusted}; run "
                f"`{trust_command(root)}` to see and trust them"
            )
        messages.append(SettingsMessage(said, item.key, source, "untrusted"))
    return raw, messages

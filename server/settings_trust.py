"""Settings that weaken protection or send data elsewhere, and the trust in a workspace's values of them.

A workspace's ``agentls.toml`` (or ``[tool.agentls]`` of its ``pyproject.toml``) may come from a repository
the user cloned and did not write. `SENSITIVE` lists, in this one place, the settings such a file could use
against the user: where the model and the embedding and rerank endpoints are (``base_url``, the provider,
and ``api_key_env``, the environment variable whose value is sent as the key), where the index is kept or
uploaded, the sandbox's isolation (``network``, ``allowed_hosts``, ``extra_ro_paths``,
``hidden_home_entries``, ``allow_unsandboxed``, ``enabled``, ``bwrap_path``, ``path``, ``scratch_dir``),
the package index installs use, ``allow_secret_values`` and ``approve``.

`untrusted_dropped` takes them out of a workspace file's raw settings unless the user trusted exactly
those values for that workspace: a SHA-256 `fingerprint` of every sensitive value the file sets, kept in
``<agentls cache>/settings-trust.json`` (`agent.trust_store.TrustStore`, as the MCP servers' trust is;
change, add or remove any of them and the trust is asked again). Each dropped key gets a message with
its file and line and the command that trusts them, ``agentls settings --trust --path ROOT`` (which shows
the values first). The safe default, or the user's own value, is used meanwhile.

The language server asks instead (`server.lsp`): once per workspace and `fingerprint` in a server's life,
``window/showMessageRequest`` with `question` (the keys and values, URLs' credentials masked) and the actions
`TRUST` and `IGNORE`. `TRUST` is `remember`ed in the same store as the command's and the settings are read
again; `IGNORE`, or no answer, leaves them dropped and logged. A client that cannot answer gets the messages.

The user's own settings are trusted for everything: the user-level file `user_settings_file`
(``$XDG_CONFIG_HOME/agentls/agentls.toml``, by default ``~/.config/agentls/agentls.toml``) and the
editor's settings (``initializationOptions``, ``workspace/configuration``). The trust file's place comes
from the environment only (`indexing.paths.cache_dir`), never from a setting a workspace could write.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.trust_store import TrustStore
from indexing.credentials import mask_urls
from indexing.paths import cache_dir

__all__ = [
    "IGNORE",
    "SENSITIVE",
    "TRUST",
    "TRUST_FILE",
    "Sensitive",
    "fingerprint",
    "question",
    "remember",
    "sensitive_values",
    "settings_trust",
    "trust_command",
    "untrusted_dropped",
    "user_settings_file",
]

TRUST_FILE = "settings-trust.json"
TRUST, IGNORE = "Trust these settings", "Ignore them"
"""The actions of the language server's question (`question`)."""

_MODEL = ("provider", "base_url", "api_key_env")
_SENT = "choose where the code and your API key are sent"

SENSITIVE: dict[str, tuple[str, tuple[Any, ...]]] = {
    **{f"agent.model.{key}": (_SENT, ()) for key in _MODEL},
    **{f"agent.roles.*.model.{key}": (_SENT, ()) for key in _MODEL},
    "index.embedding.provider": (
        "choose where the code is sent to be embedded",
        ("none", "model2vec", "sentence-transformers"),
    ),
    "index.embedding.base_url": ("choose where the code is sent to be embedded", ()),
    "index.embedding.api_key_env": ("choose which of your keys is sent with the code", ()),
    "index.rerank.provider": ("choose where the code is sent to be reranked", ("none", "cross-encoder")),
    "index.rerank.url": ("choose where the code is sent to be reranked", ()),
    "index.rerank.api_key_env": ("choose which of your keys is sent with the code", ()),
    "index.uri": ("choose where on your machine the index is written", ()),
    "index.shared": ("read the index from object storage it chooses", ()),
    "agent.install.index_url": ("choose the package index installs download from", ()),
    "agent.allow_secret_values": ("send the secret values in the code to the model", (False,)),
    "agent.approve": ("let MCP tools run without asking", ("ask",)),
    "agent.sandbox.enabled": ("turn the commands' sandbox off", (True,)),
    "agent.sandbox.allow_unsandboxed": ("run commands without a sandbox", (False,)),
    "agent.sandbox.network": ("give the commands network access", ("off",)),
    "agent.sandbox.allowed_hosts": ("let the commands reach more hosts", ([],)),
    "agent.sandbox.extra_ro_paths": ("let the commands read more of your machine", ([],)),
    "agent.sandbox.hidden_home_entries": ("let the commands read what is hidden of your home", ()),
    "agent.sandbox.bwrap_path": ("choose the program that runs as the sandbox", ()),
    "agent.sandbox.path": ("choose the programs the commands find", ()),
    "agent.sandbox.scratch_dir": ("choose where on your machine the commands' copies are written", ()),
}
"""Each sensitive setting (``*``: any name), what a workspace could do with it (for the messages), and the
values that cannot weaken anything (``network = "off"``, a local embedding provider), which need no
trust. MCP servers are not here: they have their own trust, asked before one starts (`agent.mcp.trust`)."""


@dataclass(frozen=True, slots=True)
class Sensitive:
    """One sensitive setting a file sets: its dotted key, value, and what it could do."""

    key: str
    value: Any
    why: str


def _matches(pattern: str, key: tuple[str, ...]) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(key) and all(p == "*" or p == k for p, k in zip(parts, key, strict=True))


def sensitive_values(raw: Mapping[str, Any]) -> list[Sensitive]:
    """The sensitive settings `raw` (a settings file's table) sets to a value that could weaken protection,
    in the order it sets them."""
    found: list[Sensitive] = []

    def walk(node: Mapping[str, Any], at: tuple[str, ...]) -> None:
        for name, value in node.items():
            key = (*at, str(name))
            rule = next((r for p, r in SENSITIVE.items() if _matches(p, key)), None)
            if rule is not None:
                if value not in rule[1]:
                    found.append(Sensitive(".".join(key), value, rule[0]))
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
    return TrustStore(cache_dir(env) / TRUST_FILE)


def user_settings_file(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/agentls/agentls.toml``, else ``~/.config/agentls/agentls.toml``."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or str(Path.home())) / ".config")
    return Path(base).expanduser() / "agentls" / "agentls.toml"


def trust_command(root: Path) -> str:
    return shlex.join(["agentls", "settings", "--trust", "--path", str(root)])


def shown(value: Any) -> str:
    """A value for the terminal, credentials in URLs masked."""
    return mask_urls(json.dumps(value)) if not isinstance(value, str) else mask_urls(repr(value))


def question(root: Path, values: list[Sensitive] | tuple[Sensitive, ...], source: str) -> str:
    """The editor's question whether to trust `values` of the workspace `root`'s file `source`: each key and
    value (credentials in URLs masked, as ``agentls settings`` shows them) and what it could do."""
    listed = "; ".join(f"{item.key} = {shown(item.value)} (could {item.why})" for item in values)
    return (
        f"The agentls settings of this workspace ({source}) set sensitive values: {listed}. They are "
        f'ignored until you trust them. "{TRUST}" applies them from now on for {root} (until one of '
        f'them changes); "{IGNORE}" keeps using the safe defaults.'
    )


def remember(
    root: Path, values: list[Sensitive] | tuple[Sensitive, ...], source: str, env: Mapping[str, str]
) -> None:
    """Trust exactly `values` of `root`'s settings file `source` from now on, as ``agentls settings
    --trust`` does."""
    settings_trust(env).add(root, fingerprint(list(values)), settings=source)


def _drop(raw: dict[str, Any], key: str) -> None:
    node: Any = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def untrusted_dropped(
    raw: dict[str, Any],
    root: Path,
    source: str,
    env: Mapping[str, str],
    *,
    text: str | None = None,
    prefix: tuple[str, ...] = (),
) -> tuple[dict[str, Any], list[str]]:
    """`raw` (read from the workspace file `source`, whose TOML is `text`, its table at `prefix`) without its
    sensitive settings, unless the user trusted exactly these values for `root`; a message for each one
    dropped, naming its file and line and the command that trusts them. `raw` is changed in place."""
    from server.settings import toml_line

    found = sensitive_values(raw)
    if not found or settings_trust(env).has(root, fingerprint(found)):
        return raw, []
    messages = []
    for item in found:
        _drop(raw, item.key)
        line = toml_line(text, (*prefix, *item.key.split("."))) if text is not None else None
        where = f"{source}:{line}" if line is not None else source
        messages.append(
            f"{where}: ignoring `{item.key}` (it could {item.why}): the workspace's own settings are not "
            f"trusted with these values; run `{trust_command(root)}` to see and trust them"
        )
    return raw, messages

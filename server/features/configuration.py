"""Settings as the language server sees them: five layers merged per workspace folder.

Later layers win: built-in defaults, the user's own file (``~/.config/agentls/agentls.toml``),
``agentls.toml`` or ``[tool.agentls]`` in the folder (its sensitive settings only once trusted:
`server.settings_trust`; each one dropped is a message shown once like the others), the
``initializationOptions`` the editor sent, and ``workspace/configuration`` section ``agentls`` (or what a
``workspace/didChangeConfiguration`` pushed, for clients that cannot be asked). Layers merge table by
table (`server.settings_files.merge`): a later layer changes the settings it writes, the others stand;
an MCP server's table merges field by field whichever of ``[mcp]`` and ``[agent.mcp]`` each layer
writes it at, between the editor's two layers too. A list a later layer writes replaces the earlier
one's, except the ``index.exclude`` lists of the user's file, the folder's file and the editor's
settings, which add up, in that order (`server.settings_files.COMBINED`; of the editor's two layers,
the later one's list replaces the earlier's: both are the editor's settings). The editor's layers are
the user's own: the credentials of an MCP server they write (``env``, ``headers``) go where the user's
settings make it run or connect, never to a command, URL, environment entry or header the folder's file
chose (`server.settings_files.withheld_credentials`). An invalid value of the editor's layers falls back
to the layers below as they apply (the folder's file's value when it applies, else the user's own), one
of the folder's file to the user's own, else to the default (`server.settings_files.load`);
`SettingsMessages` remembers which problems were already shown so a reload does not repeat them, even
when an edit moved their line, and forgets those a reload no longer finds: a problem fixed and later
back is shown again. A server started without a folder (an editor opened on a single file) has the same
layers but the folder's file: the user's own file applies there too.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from server.settings import LoadedSettings, load_settings, merge
from server.settings_files import SettingsMessage

__all__ = ["SECTION", "SettingsMessages", "client_layer", "resolve"]

log = logging.getLogger(__name__)

SECTION = "agentls"


def client_layer(value: Any, source: str) -> tuple[dict[str, Any], list[str]]:
    """A settings object sent by the editor, unwrapped from ``{"agentls": {...}}`` when wrapped.

    Anything that is not an object (``null`` means "nothing set") is ignored with a message.
    """
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [f"{source}: expected an object of agentls settings, got {type(value).__name__}; ignored"]
    inner = value.get(SECTION)
    if isinstance(inner, Mapping) and all(k == SECTION for k in value):
        return dict(inner), []
    return dict(value), []


def resolve(
    root: Path | None,
    init: Mapping[str, Any],
    client: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """The settings of one folder, or of a server without folders when `root` is None (the user's own
    file and the editor's layers: the user's settings apply wherever the editor is opened); `env`: where
    the user's file and the trust file are (default: this process's environment)."""
    return load_settings(root, merge(init, client), env=env)


def _key(message: str) -> Hashable:
    """What a message is about: a `SettingsMessage`'s (setting, file, kind), another message's text."""
    return message.key if isinstance(message, SettingsMessage) else message


class SettingsMessages:
    """Messages about ignored settings, each problem shown to the user once while it lasts: a
    `SettingsMessage` is known by its (setting, file, kind), so an edit that moves its line does not show
    it again, and two problems said in the same words (of two files, or two settings) are each shown;
    another message by its text. A problem that a settings read no longer finds (`new`'s `read`) is
    forgotten, so it is shown again if it comes back."""

    def __init__(self) -> None:
        self._shown: set[Hashable] = set()

    def new(self, messages: Sequence[str], *, read: Iterable[str] | None = None) -> list[str]:
        """Those of `messages` not shown yet, which are shown from now on. `read`: every message of the
        settings read that `messages` come from, those shown otherwise too (the untrusted settings the
        editor is asked about): a problem shown before that is not among them is gone and forgotten first,
        so that it is shown again if it comes back. None: `messages` are only a part of a read (shown
        late), and nothing is forgotten."""
        if read is not None:
            self._shown &= {_key(message) for message in read}
        fresh = []
        for message in messages:
            key = _key(message)
            if key not in self._shown:
                self._shown.add(key)
                fresh.append(message)
        return fresh

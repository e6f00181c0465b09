"""Reading the settings: where they come from, their validation with a message per ignored setting, and the
sections that indexing and search read (`IndexingSettings`), whose classes import none of the agent's.

Sources, later ones winning: built-in defaults, the user's own file
(``$XDG_CONFIG_HOME/agentls/agentls.toml``, by default ``~/.config/agentls/agentls.toml``),
``agentls.toml`` or ``[tool.agentls]`` in the workspace's ``pyproject.toml`` (whose sensitive settings,
those that weaken protection or send data elsewhere, apply only once the user trusted their values for
that workspace: `server.settings_trust`), then (in the language server) ``initializationOptions`` and
``workspace/configuration`` section ``agentls``; the lists that protect (`COMBINED`: ``index.exclude``)
add up instead, the user's own first, so that a workspace's list never drops the user's patterns;
``[agent.mcp]`` and ``[mcp]`` (MCP servers) are one table written at either place, joined field by field
(`joined`), so that a workspace's server never replaces the user's own whole, yet the credentials of the
user's own settings never follow a command, URL, environment entry or header the workspace's file chose
(`withheld_credentials`: said in a message at that line). Without a workspace (a language server started
with no folder) the sources are the same but the workspace's file: the user's own file applies
everywhere. An invalid value falls back to the value of the
layers below it, else to its default: a workspace's to the user's own file's value, when it sets one; the
editor's to the workspace's file's value as it applies, else to the user's own (`load` merges the layers
again without it, so that what they withhold stays withheld); a message says which setting, why and which
value is used instead, with the file and line it was read from (an unknown key: the setting it was
probably meant to be). A valid setting that no run can use (a role's model of another provider:
`server.settings.unusable`) is said too, and kept: checked once, on the merged settings a run gets (a
role's provider in the user's file is usable when the workspace's file sets the same one for the run), and
said with the file and line of the source whose value wins (`SettingsFile`), naming another file that sets
a key of it too. The command line's agent runs refuse to start on such a message
(`server.cli.support.workspace_settings`), everything else goes on. Each file's invalid values are said
with that file's line, the same words in two files twice. A bad entry of a list is not dropped alone: a
bad string of a list drops that list, and a bad field of a table in an array of tables (a node of
``[[agent.team.graphs.NAME.nodes]]``) drops what holds the array (that graph), the message naming the
entry and its field; a bad key of a table (a graph named `solo`) drops that entry; the rest of the file
stands.

The settings tree is `server.settings.Settings`: `IndexingSettings` (``index``, ``server``) and the agent's
sections (``agent``, ``mcp``), whose classes (`agent.config` and the sandbox's, installs', memory's and
team's settings it holds) take 0.1-0.3 s to import and build. `load_indexing_settings`, which ``agentls
index``, ``search`` and ``model`` read their settings with, validates the whole tree only when a source
sets more than the indexing sections (then with the same messages, an agent setting's too); otherwise it
validates those sections alone, which give the same messages for them, and imports no ``agent`` module.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from indexing.config import IndexSettings, anchor_model_folders
from indexing.paths import user_settings_file

if TYPE_CHECKING:
    from server.settings_trust import Sensitive


class ServerSettings(BaseModel):
    """How the language server behaves (section `server`)."""

    model_config = ConfigDict(extra="forbid")

    index_on_start: bool = True
    """Index every workspace folder in the background once the editor has connected."""
    index_home_or_root: bool = False
    """Serve a workspace folder that is your home folder, ``/`` or the temporary folder even when it has
    no index yet (indexing it reads every project and file in it). Without this, such a folder is left
    alone until ``agentls index FOLDER`` has indexed it on purpose, as the command line does."""
    reindex_on_save: bool = True
    """Re-index a file when it is saved or changes on disk (watched files)."""
    refresh_seconds: float = Field(default=30.0, ge=0)
    """When the editor cannot watch files for the server (Neovim before 0.9, for one), look this often
    for files changed outside the editor (a `git checkout`, a formatter run in a terminal). Quiet: only
    files whose size or modification time changed are read again, and nothing shows in the editor unless
    something changed. 0 turns it off."""
    log_level: Literal["error", "warning", "info", "debug"] = "info"
    """The least severe log messages sent to the editor's output panel (`window/logMessage`)."""
    loop_monitor: bool = False
    """Measure the server's event-loop stalls with a heartbeat; `agentls/serverStats` reports them."""
    index_nice: int = Field(default=10, ge=0, le=19)
    """How much lower the indexing process's CPU priority is than the server's (its niceness goes up by
    this much when it starts, so indexing yields the CPU to the editor). Read when that process starts.
    Test harnesses set 0: niceness counts against the processes of the same session (Linux autogroups),
    such as a test run's other workers, and a first index waited minutes behind them."""


class IndexingSettings(BaseModel):
    """The sections indexing and search read: ``index`` and ``server`` (`server.settings.Settings` adds the
    agent's)."""

    model_config = ConfigDict(extra="forbid")

    index: IndexSettings = Field(default_factory=IndexSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)


Tree = TypeVar("Tree", bound=IndexingSettings)
"""A settings tree: `IndexingSettings`, or the whole of it (`server.settings.Settings`)."""


class SettingsMessage(str):
    """A message about a setting that is ignored or that no run can use: its text, and what it is about,
    which an edit that moves its line leaves the same (`key`): the `setting` (dotted; None: a whole
    file), the `file` it is said of (a path, or where the settings came from) and the `kind` of problem
    (``untrusted``, ``unusable``, ``unreadable``, or pydantic's error type of an invalid value:
    ``extra_forbidden`` for an unknown key). A `str`, so that whatever shows or compares messages as
    text goes on doing so. `loc`: where an ignored value is in the settings (their keys, the two places
    of the MCP servers joined: `joined`; empty: no ignored value), which `load` takes out of the editor's
    settings when they set it. `instead`: what applies in place of an ignored value, which the text ends
    with (``; using {instead}``: ``the default``, ``your own settings' value``); empty: none is said (an
    unknown key)."""

    setting: str | None
    file: str
    kind: str
    loc: tuple[int | str, ...]
    instead: str

    def __new__(
        cls,
        text: str,
        setting: str | None = None,
        file: str = "",
        kind: str = "",
        loc: tuple[int | str, ...] = (),
        instead: str = "",
    ) -> SettingsMessage:
        made = super().__new__(cls, f"{text}; using {instead}" if instead else text)
        made.setting, made.file, made.kind, made.loc, made.instead = setting, file, kind, loc, instead
        return made

    def using(self, instead: str) -> SettingsMessage:
        """This message saying that `instead` applies in place of the ignored value; itself when it says
        no value (an unknown key)."""
        if not self.instead:
            return self
        head = self[: len(self) - len(f"; using {self.instead}")]
        return SettingsMessage(head, self.setting, self.file, self.kind, self.loc, instead)

    @property
    def key(self) -> tuple[str | None, str, str]:
        """(setting, file, kind): the same problem, wherever its line is and whatever its words."""
        return self.setting, self.file, self.kind


NOTICES = frozenset({"withheld"})
"""The kinds of `SettingsMessage` that say how the user was protected, not that a setting is ignored or
unusable: ``withheld``, the user's MCP credentials kept from a destination a workspace's file chose
(`withheld_credentials`). A run lacks nothing the settings set (the server runs as configured, without
the user's credentials), so the command line's strict runs show them and start
(`server.cli.support.workspace_settings`)."""


def is_notice(message: str) -> bool:
    """Whether `message` is a notice of protection (`NOTICES`), not a setting ignored or unusable."""
    return isinstance(message, SettingsMessage) and message.kind in NOTICES


def _unreadable(file: str, text: str) -> SettingsMessage:
    """The message that the settings of `file` could not be read at all."""
    return SettingsMessage(text, None, file, "unreadable")


# No slots: a call through a parametrized alias (`server.settings.LoadedSettings`, which is
# `LoadedSettings[Settings]`) sets `__orig_class__` on the new instance; a frozen dataclass refuses that
# with an AttributeError, which `typing` expects, but a frozen one with slots raised TypeError from its
# `super()`.
@dataclass(frozen=True)
class LoadedSettings(Generic[Tree]):
    settings: Tree
    messages: tuple[str, ...]  # one per setting that was ignored, saying why
    sources: tuple[str, ...]  # files the settings came from
    # settings files that could not be parsed at all: ``path: cannot read it (why)`` each
    unreadable: tuple[str, ...] = ()
    # sensitive settings of the workspace's file dropped as not trusted (`server.settings_trust`): each
    # with its file and line and the command that trusts them; the rest of the settings are used
    untrusted: tuple[str, ...] = ()
    # the sensitive values of `untrusted`, whose trust the language server asks for (empty when trusted)
    pending: tuple[Sensitive, ...] = ()


def _drop(data: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    node: Any = data
    for key in loc[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if isinstance(node, dict) and loc and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def _child(node: Any, key: int | str) -> Any:
    """`node[key]` of the raw settings, or None when there is none."""
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
        return node[key]
    return None


def _target(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """What to drop for an error at `loc`: `loc` itself, unless it runs through a list, whose entries
    cannot be dropped alone (a graph without one of its nodes would be another graph). Then the list, or,
    when its entries are tables, the table holding the list (the graph). A bad key of a table (pydantic's
    ``[key]``, a graph named `solo`) drops that entry."""
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    node: Any = data
    for depth, key in enumerate(loc):
        if isinstance(key, int):
            table = isinstance(_child(node, key), dict)
            return loc[: depth - 1] if table and depth >= 2 else loc[:depth]
        node = _child(node, key)
    return loc


def _where(data: Mapping[str, Any], loc: tuple[int | str, ...], start: int) -> str:
    """`loc` from its `start`th key on, for people: ``nodes[1] (name = 'code').type``, a table of a list
    named by its name."""
    node: Any = data
    parts: list[str] = []
    for depth, key in enumerate(loc):
        node = _child(node, key)
        if depth < start:
            continue
        if isinstance(key, int):
            named = node.get("name") if isinstance(node, dict) else None
            index = f"[{key}]" + (f" (name = {named!r})" if named else "")
            parts[-1:] = [(parts[-1] if parts else "") + index]
        else:
            parts.append(str(key))
    return ".".join(parts)


@dataclass(frozen=True)
class SettingsFile:
    """A settings file as read: its `path`, its TOML `text` (None: no file, the editor's settings), where
    the settings sit in it (`prefix`: ``tool.agentls`` of a ``pyproject.toml``), and `table`, its settings
    as they are applied (the workspace's without the sensitive values not trusted; None: as `text`
    writes them). Says where a setting is written (`writes`, `line`) and its value (`value`)."""

    path: str
    text: str | None
    prefix: tuple[str, ...] = ()
    table: Mapping[str, Any] | None = None

    def writes(self, key: tuple[str, ...]) -> bool:
        """Whether this file sets the setting at `key` (as applied: `table`)."""
        return self.value(key) is not None

    def value(self, key: tuple[str, ...]) -> Any:
        """The value this file sets at `key` (as applied: `table`); None: it sets none."""
        node: Any = self.table
        if node is None:
            try:
                node = tomllib.loads(self.text or "")
            except tomllib.TOMLDecodeError:
                return None
            key = (*self.prefix, *key)
        for part in key:
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def line(self, key: tuple[str, ...]) -> int | None:
        """The line (from 1) of the setting at `key` (`toml_line`); None: no text, or not written."""
        return toml_line(self.text, (*self.prefix, *key)) if self.text is not None else None

    def where(self, key: tuple[str, ...]) -> str:
        """``path:line`` of the setting at `key`, or the path alone when the line is not known."""
        line = self.line(key)
        return f"{self.path}:{line}" if line is not None else self.path


EDITOR_SETTINGS = "the editor's settings (section agentls)"
"""Where a setting is said to come from when no settings file writes it (`load`'s overrides)."""

_Checked = TypeVar("_Checked", bound=IndexingSettings, covariant=True)


class Validate(Protocol[_Checked]):
    """How a loader validates the raw settings: `validated`'s arguments after the tree, then the settings
    files `raw` was merged from, highest precedence first, which name where a setting no run can use is
    written (`server.settings.unusable`), and `otherwise`, where one none of them writes is said to be
    (None: not said). `files` None: `raw` is the one file `source` (`text`). `under`: the user's own
    settings, which an invalid entry of the others falls back to (`validated`). `editor`: the editor's
    settings merged over `text`'s, whose invalid entries are said as theirs, not `source`'s (`validated`)."""

    def __call__(
        self,
        raw: Mapping[str, Any],
        source: str = ...,
        text: str | None = ...,
        prefix: tuple[str, ...] = ...,
        *,
        files: Sequence[SettingsFile] | None = ...,
        otherwise: str | None = ...,
        under: Mapping[str, Any] | None = ...,
        editor: Mapping[str, Any] | None = ...,
    ) -> tuple[_Checked, list[str]]: ...


def validated(
    tree: type[Tree],
    raw: Mapping[str, Any],
    source: str = "settings",
    text: str | None = None,
    prefix: tuple[str, ...] = (),
    *,
    under: Mapping[str, Any] | None = None,
    editor: Mapping[str, Any] | None = None,
) -> tuple[Tree, list[str]]:
    """Validate ``raw`` as ``tree``; invalid or unknown entries fall back to defaults, each with a message.
    ``text``: the TOML ``raw`` was read from, whose line of each setting the message names
    (``agentls.toml:3:``); ``prefix``: where ``raw`` sits in it (``tool.agentls`` of a ``pyproject.toml``).
    An unknown key's message names the setting it was probably meant to be. `under`: the user's own
    settings ``raw`` was merged over; an invalid entry falls back to its value there, when it has one,
    rather than to the default (a workspace's ``memory_mb = "lots"`` would otherwise bring the limit the
    user's own file lowered back up to the default, and ``exclude = "build/"`` empty the user's list).
    `editor`: the editor's settings, merged over `text`'s into ``raw``: an entry they write is said as
    theirs (`EDITOR_SETTINGS`, no line: the value is not `source`'s; its `SettingsMessage.loc` is where,
    which `load` takes out of them to merge the layers below again), one they do not write at `text`'s
    line."""
    settings, messages, _ = _validated(tree, raw, source, text, prefix, under, editor)
    return settings, messages


_UNSET = object()


def _value_at(node: Any, loc: tuple[int | str, ...]) -> Any:
    """The value at `loc` of the raw settings `node`; `_UNSET`: none."""
    for key in loc:
        node = _child(node, key)
        if node is None:
            return _UNSET
    return node


def _put(data: dict[str, Any], loc: tuple[int | str, ...], value: Any) -> None:
    node: Any = data
    for key in loc[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node[loc[-1]] = _deep_copy(value) if isinstance(value, Mapping) else value


def _validated(
    tree: type[Tree],
    raw: Mapping[str, Any],
    source: str,
    text: str | None,
    prefix: tuple[str, ...],
    under: Mapping[str, Any] | None = None,
    editor: Mapping[str, Any] | None = None,
) -> tuple[Tree, list[str], dict[str, Any]]:
    """`validated`, and ``raw`` without the entries it dropped (empty: none of it could be read), its
    ``[agent.mcp]`` joined into ``[mcp]`` (`joined`; a message names a key where `text` writes it)."""
    data: dict[str, Any] = joined(raw)
    under = joined(under) if under is not None else None
    editor = joined(editor) if editor is not None else None
    messages: list[str] = []
    restored: set[tuple[int | str, ...]] = set()  # each entry falls back to `under`'s once, at most
    for _ in range(50):  # each round drops at least one bad entry
        try:
            return tree.model_validate(data), messages, data
        except ValidationError as exc:
            dropped: list[tuple[int | str, ...]] = []
            for err in exc.errors():
                loc = tuple(err["loc"])
                if any(loc[: len(done)] == done for done in dropped):
                    continue  # what follows from an entry dropped already (a graph left without nodes)
                target = _target(data, loc)
                name = ".".join(str(p) for p in _as_written(text, prefix, target))
                bare = target == loc or (loc[-1:] == ("[key]",) and target == loc[:-1])
                why = err["msg"] if bare else f"at `{_where(data, loc, len(target))}`: {err['msg']}"
                written = (*prefix, *_as_written(text, prefix, target))
                theirs = editor is not None and _value_at(editor, target) is not _UNSET
                said_of = EDITOR_SETTINGS if theirs else source  # the value is the editor's: no file's
                where = said_of
                if text is not None and not theirs and (line := toml_line(text, written)) is not None:
                    where = f"{source}:{line}"
                mine = _value_at(under, target) if target not in restored else _UNSET
                if mine is not _UNSET and _value_at(data, target) != mine:
                    _put(data, target, mine)
                    restored.add(target)
                    dropped.append(target)
                    said = f"{where}: ignoring `{name}`: {why}"
                    messages.append(
                        SettingsMessage(said, name, said_of, err["type"], target, "your own settings' value")
                    )
                elif _drop(data, target):
                    dropped.append(target)
                    unknown = err["type"] == "extra_forbidden" and bare
                    said = f"{where}: ignoring `{name}`: {_unknown(tree, target) if unknown else why}"
                    instead = "" if unknown else "the default"
                    messages.append(SettingsMessage(said, name, said_of, err["type"], target, instead))
            if not dropped:
                break
    messages.append(_unreadable(source, f"{source}: settings could not be read; using defaults"))
    return tree(), messages, {}


def _as_written(
    text: str | None, prefix: tuple[str, ...], key: tuple[int | str, ...]
) -> tuple[int | str, ...]:
    """The setting `key` of the joined settings (`joined`) as the file `text` writes it: a key of ``[mcp]``
    whose nearest table (or itself) the file writes at ``[agent.mcp]`` only is named there, so that its
    message names that key and line."""
    if text is None or key[:1] != ("mcp",):
        return key
    try:
        table = _value_at(tomllib.loads(text), prefix)
    except tomllib.TOMLDecodeError:
        return key
    for length in range(len(key), 0, -1):
        if _value_at(table, key[:length]) is not _UNSET:
            return key
        if _value_at(table, ("agent", *key[:length])) is not _UNSET:
            return ("agent", *key)
    return key


def validate_sections(
    raw: Mapping[str, Any],
    source: str = "settings",
    text: str | None = None,
    prefix: tuple[str, ...] = (),
    *,
    files: Sequence[SettingsFile] | None = None,
    otherwise: str | None = None,
    under: Mapping[str, Any] | None = None,
    editor: Mapping[str, Any] | None = None,
) -> tuple[IndexingSettings, list[str]]:
    """``raw`` validated as `server.settings.validate_settings` does, when it sets more than the sections
    of `IndexingSettings` (an agent section, or a key that is none, whose message names the section it was
    probably meant to be); otherwise as `IndexingSettings`, whose messages are the same for those sections,
    without importing the agent's classes (and which hold no setting a run cannot use: `files` and
    `otherwise` are `Validate`'s)."""
    if set(raw) <= set(IndexingSettings.model_fields):
        return validated(IndexingSettings, raw, source, text, prefix, under=under, editor=editor)
    from server.settings import validate_settings

    return validate_settings(
        raw, source, text, prefix, files=files, otherwise=otherwise, under=under, editor=editor
    )


def _valid_entries(
    raw: Mapping[str, Any], source: str, text: str | None, prefix: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``raw``, one settings file's table, without its invalid entries, and a message for each (with its
    line), as `validate_sections` says them (no setting a run cannot use: that is a question for the
    merged settings)."""
    if set(raw) <= set(IndexingSettings.model_fields):
        _, messages, data = _validated(IndexingSettings, raw, source, text, prefix)
    else:
        from server.settings import Settings

        _, messages, data = _validated(Settings, raw, source, text, prefix)
    return data, messages


def _unknown(tree: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """Why an unknown key is ignored, with the setting of that table it is closest to, when one is close."""
    names = _field_names(tree, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    parent = "".join(f"{part}." for part in loc[:-1])
    hint = f" (did you mean `{parent}{close[0]}`?)" if close else ""
    return f"there is no such setting{hint}"


def _field_names(tree: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The setting names of the table at ``loc`` of the settings ``tree``; [] when it is not a known table."""
    model: Any = tree
    keyed = False  # the table is a dict of tables (graphs, servers): the next key is a name
    for key in loc:
        if keyed:
            keyed = False
            continue
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            return []
        inner = [field.annotation, *typing.get_args(field.annotation)]
        found = next((t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if found is None:
            return []
        keyed = found is not field.annotation and typing.get_origin(field.annotation) is dict
        model = found
    return list(model.model_fields)


def toml_line(text: str, key: tuple[int | str, ...]) -> int | None:
    """The line (from 1) of ``text`` where the setting at ``key`` is written: its ``name = value`` line,
    else the header of its table (``[agent.sandbox]``), else the nearest enclosing one written; None when
    none is. Line-based (tables, dotted and quoted keys); a value spread over lines is found at its
    first."""
    wanted = tuple(str(part) for part in key if not isinstance(part, int))
    table: tuple[str, ...] = ()
    best: tuple[int, int] | None = None  # (keys matched, line)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = _TABLE.match(stripped)
        if header:
            table = _dotted(header.group(1))
            path = table
        elif assigned := _KEY.match(stripped):
            path = (*table, *_dotted(assigned.group(1)))
        else:
            continue
        if path == wanted[: len(path)] and (best is None or len(path) > best[0]):
            best = (len(path), number)
            if path == wanted:
                return number
    return best[1] if best else None


_TABLE = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _dotted(keys: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", keys)
    return tuple(part[1:-1] if part[:1] in "\"'" else part for part in parts)


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}


COMBINED: frozenset[tuple[str, ...]] = frozenset({("index", "exclude")})
"""The list settings whose values from the sources add up, in their order (the user's own file's, then
the workspace's, then the editor's settings'), where another setting's later value replaces the earlier
one: the lists that protect. ``index.exclude``: a workspace's list replacing the user's own would drop
its patterns (``secrets/``) without asking; combined, a later ``!pattern`` still re-includes what an
earlier one left out (gitignore's order), and a workspace's ``!pattern`` waits for the user's trust
(`server.settings_trust`)."""


def joined(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`raw` (one source's settings) with its ``[agent.mcp]`` joined into ``[mcp]``, field by field: the
    two are one table, written at either place (its servers ``[agent.mcp.servers.NAME]`` and
    ``[mcp.servers.NAME]``); a field written at both is ``[mcp]``'s, as it was. `merge` joins each side
    before merging, so the files' tables merge field by field whichever place each wrote: a workspace's
    ``[mcp.servers.fs]`` over the user's own ``[agent.mcp.servers.fs]`` changes the fields it writes and
    leaves the others the user's (``tools``, ``enabled``), as at the same place, instead of replacing the
    user's server whole; a partial table (``timeout = 9``) over the user's server is valid. A value at
    either place that is not a table is left where it is, for validation to say."""
    out = _deep_copy(raw)
    agent = out.get("agent")
    moved = agent.get("mcp") if isinstance(agent, dict) else None
    if not isinstance(agent, dict) or not isinstance(moved, dict):
        return out
    if not isinstance(out.get("mcp", {}), Mapping):
        return out
    del agent["mcp"]
    if not agent:
        del out["agent"]
    out["mcp"] = merge(moved, out.get("mcp", {}), at=("mcp",))
    return out


def merge(
    base: Mapping[str, Any],
    over: Mapping[str, Any],
    combine: frozenset[tuple[str, ...]] = frozenset(),
    at: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`base` with `over`'s settings over it, table by table; a list at a key of `combine` (`COMBINED`)
    is `base`'s entries then `over`'s. `at`: where these tables sit in the settings; at the top (``()``)
    each side's ``[agent.mcp]`` is joined into its ``[mcp]`` first (`joined`), so that they merge field by
    field whichever place each wrote."""
    if not at:
        base, over = joined(base), joined(over)
    out = _deep_copy(base)
    for key, value in over.items():
        here = (*at, str(key))
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, combine, here)
        elif here in combine and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


_DESTINATION = {"command": ("command", "args", "cwd", "env"), "url": ("url", "headers")}
"""The fields of an MCP server that say what it runs (a stdio server, ``command``) or how it reaches its
``url`` (`withheld_credentials`): for a stdio server its environment too (``LD_PRELOAD``, ``PATH``,
``PYTHONPATH``, ``NODE_OPTIONS``, ``HTTPS_PROXY`` make the user's command run other code, or send its
traffic elsewhere), for an HTTP one its headers (``Host`` routes the request to another site behind the
same front end, where a reverse proxy or CDN chooses the backend by it)."""
_CREDENTIALS = ("env", "headers")
"""The fields of an MCP server whose values are all credentials (`agent.credential_fields`)."""


def _servers(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The MCP server tables of the settings `raw`, written at either place (`joined`)."""
    mcp = joined(raw).get("mcp")
    servers = mcp.get("servers") if isinstance(mcp, dict) else None
    if not isinstance(servers, dict):
        return {}
    return {str(name): table for name, table in servers.items() if isinstance(table, dict)}


@dataclass(frozen=True)
class Withheld:
    """Credentials of the user's own settings for the MCP server `server` that are not sent to where the
    workspace's file makes it run or connect (`withheld_credentials`): what of the server's destination
    the workspace's file sets (`destination`: keys of the server's table, ``("command",)``, ``("url",)``,
    or an entry of its ``env`` or ``headers``, ``("env", "LD_PRELOAD")``) and the user's fields kept
    back, each with the names of its entries (`fields`: ``env`` and ``headers``; of ``args``, the
    credentials in them, named without their values: ``--token``, `_credential_args`); `command`: the
    user's own ``command``, which their ``args`` were written for (curl's ``-u user:password``)."""

    server: str
    destination: tuple[tuple[str, ...], ...]
    fields: tuple[tuple[str, tuple[str, ...]], ...]
    command: Any = None


def _chosen(field: str, written: Any, own: Any, editors: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    """What of the destination `field` of a server the workspace's file chooses: `written`, its value there,
    when the editor's settings (`editors`: their table of the server) do not write it and it differs from
    the user's own (`own`); of ``env`` and ``headers``, each entry so written. A value of ``env`` or
    ``headers`` that is no table chooses nothing: it is invalid, and validation falls back to the
    user's own value (`validated`'s ``under``)."""
    if field not in _CREDENTIALS:
        differs = field not in editors and written != own
        return ((field,),) if differs else ()
    if not isinstance(written, Mapping):
        return ()
    own = own if isinstance(own, Mapping) else {}
    theirs = editors.get(field)
    theirs = theirs if isinstance(theirs, Mapping) else {}
    return tuple((field, str(key)) for key in written if key not in theirs and written[key] != own.get(key))


def withheld_credentials(
    own: Mapping[str, Any], workspace: Mapping[str, Any], editor: Mapping[str, Any]
) -> list[Withheld]:
    """The MCP servers whose destination the workspace's file chooses while the user's own settings (their
    file `own`, and the `editor`'s, which win over the workspace's) give them credentials.

    A destination is what a server runs or reaches, and how: the ``command``, ``args``, ``cwd`` and
    ``env`` of a stdio server, the ``url`` and ``headers`` of an HTTP one (`_DESTINATION`); the
    workspace chooses it when it writes one of those (of ``env`` and ``headers``: any entry), and the
    editor's settings do not, with a value other than the user's. Merged field by field (`merge`), the
    user's ``env`` and ``headers`` would go there, and the user's ``args`` with the credentials in them
    (``--token X``) when the workspace writes none, once the MCP trust question, which reads like one
    about the user's own server, is answered yes: to another program, or to the user's program with a
    ``LD_PRELOAD`` or ``PATH`` that runs the workspace's code in it. So the server gets only what the
    workspace's file writes of ``env`` and ``headers``, and the user's ``args`` without what carries a
    credential (`without_withheld`, `agent.credential_fields.args_without_credentials`: the flag and its
    value; the other args are no credential by the rule that lets the args of a list without one go
    there whole, and the user's command keeps working without the credential, as without the ``env``).
    The editor's settings are the user's own: a destination they choose takes the user's credentials
    along. A server whose joined fields are both a command and a URL is invalid, and validation falls
    back to the user's own server whole (`validated`'s ``under``): none is withheld then."""
    theirs, later, mine = _servers(workspace), _servers(editor), _servers(merge(own, editor))
    found = []
    for name, table in theirs.items():
        own_table, editors = mine.get(name, {}), later.get(name, {})
        whole = {**own_table, **table, **editors}
        if whole.get("command") is not None and whole.get("url") is not None:
            continue
        chosen = tuple(
            key
            for field in _DESTINATION["url" if whole.get("url") is not None else "command"]
            if field in table
            for key in _chosen(field, table[field], own_table.get(field), editors)
        )
        fields: list[tuple[str, tuple[str, ...]]] = []
        for field in _CREDENTIALS if chosen else ():
            given, written = own_table.get(field), table.get(field)
            written = written if isinstance(written, dict) else {}
            given = given if isinstance(given, dict) else {}
            if kept := tuple(sorted(str(key) for key in given if given[key] != written.get(key))):
                fields.append((field, kept))
        command = own_table.get("command")
        if chosen and "args" not in table and (named := _credential_args(own_table.get("args"), command)[1]):
            fields.append(("args", named))
        if fields:
            found.append(Withheld(name, chosen, tuple(fields), command))
    return found


def _credential_args(args: Any, command: Any) -> tuple[list[Any], tuple[str, ...]]:
    """An MCP server's `args` (of its `command`) without what carries a credential, and what that is, named
    for a message (`agent.credential_fields.args_without_credentials`: ``--token``); `args` as they are and
    nothing when they are no list."""
    if not isinstance(args, list):
        return args, ()
    from agent.credential_fields import args_without_credentials

    kept, named = args_without_credentials(args, command)
    return kept, tuple(named)


def without_withheld(
    raw: Mapping[str, Any], withheld: Sequence[Withheld], workspace: Mapping[str, Any]
) -> dict[str, Any]:
    """`raw` (settings merged from the user's, the `workspace`'s and the editor's) with the `withheld`
    credentials of its MCP servers taken out: each ``env`` and ``headers`` is the workspace's file's own
    value, or none; ``args`` (which the workspace's file does not write) are the user's without their
    credentials."""
    out = joined(raw)
    mcp = out.get("mcp")
    servers = mcp.get("servers") if isinstance(mcp, dict) else None
    theirs = _servers(workspace)
    for item in withheld:
        server = servers.get(item.server) if isinstance(servers, dict) else None
        if not isinstance(server, dict):
            continue
        for field, _ in item.fields:
            written = theirs.get(item.server, {}).get(field)
            if field == "args":  # the user's: the workspace's file writes none
                server["args"] = _credential_args(server.get("args"), item.command)[0]
            elif written is None:
                server.pop(field, None)
            else:
                server[field] = _deep_copy(written) if isinstance(written, Mapping) else written
    return out


def _withheld_message(item: Withheld, file: SettingsFile | None, source: str) -> SettingsMessage:
    """What `withheld_credentials` found, said at the line of the workspace's file (`file`, else the
    path `source`) that sets the server's destination."""
    path = file.path if file is not None else source
    where = _written_at(file, ("mcp", "servers", item.server, *item.destination[0]), source)
    what = [
        f"{'credentials in ' if field == 'args' else ''}{field} ({', '.join(names)})"
        for field, names in item.fields
    ]
    args = any(field == "args" for field, _ in item.fields)
    listed = ", ".join(what[:-1]) + f" and {what[-1]}" if len(what) > 1 else what[0]
    maps = " and ".join(field for field, _ in item.fields if field != "args")
    gets = [f"only the {maps} that file writes"] if maps else []
    gets += ["your args without those credentials"] if args else []
    to = "URL" if any(chosen[0] in _DESTINATION["url"] for chosen in item.destination) else "command"
    set_here = ", ".join(f"`{'.'.join(map(_bare_or_quoted, chosen))}`" for chosen in item.destination)
    text = (
        f"{where}: your own settings' {listed} for MCP server `{item.server}` are not sent to the {to} "
        f"set by {path} ({set_here}); the server gets {', and '.join(gets)}. To send them, "
        f"set the same {set_here} in your own settings"
    )
    return SettingsMessage(text, f"mcp.servers.{item.server}", path, "withheld")


def _written_at(file: SettingsFile | None, key: tuple[int | str, ...], source: str) -> str:
    """``path:line`` where the workspace's `file` writes the setting `key` of the joined settings
    (`_as_written`: at ``[agent.mcp]`` or ``[mcp]``); `source`, its path, when its text is not known."""
    if file is None:
        return source
    return file.where(tuple(str(part) for part in _as_written(file.text, file.prefix, key)))


def _bare_or_quoted(key: str) -> str:
    """`key` as a TOML key: bare when it can be (``LD_PRELOAD``), else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def workspace_settings(
    root: Path, unreadable: list[str] | None = None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Raw settings from ``agentls.toml`` (preferred) or ``[tool.agentls]`` in ``pyproject.toml``; files
    that cannot be parsed are skipped with a message, and what is wrong with them added to ``unreadable``."""
    messages: list[str] = []
    for name in ("agentls.toml", "pyproject.toml"):
        path = root / name
        try:
            if not path.is_file():
                continue
        except OSError:  # a folder the editor named that cannot exist (a name too long, say)
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problem = f"{path}: cannot read it ({exc})"
            messages.append(_unreadable(str(path), f"{problem}; its settings are ignored"))
            if unreadable is not None:
                unreadable.append(problem)
            continue
        if name == "pyproject.toml":
            data = data.get("tool", {}).get("agentls", {})
            if not data:
                continue
        return data, messages, [str(path)]
    return {}, messages, []


def user_settings(path: Path, unreadable: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The user's own settings file `path` (`server.settings_trust.user_settings_file`), trusted for
    everything: its raw settings without the entries that are invalid, and a message for each of those
    (with its line) or for a file that cannot be parsed (also added to ``unreadable``)."""
    raw, messages, _ = _user_file(path, unreadable)
    return raw, messages


def _user_file(path: Path, unreadable: list[str] | None) -> tuple[dict[str, Any], list[str], str | None]:
    """`user_settings`, and the file's text (None: no file, or unreadable). A setting valid alone that no
    run can use is not said here: whether a run can use it depends on the other files (a role's provider
    is usable when the workspace's file sets the same one for the run), so `load` says it of the merged
    settings, naming this file when it writes it."""
    try:
        if not path.is_file():
            return {}, [], None
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problem = f"{path}: cannot read it ({exc})"
        if unreadable is not None:
            unreadable.append(problem)
        return {}, [_unreadable(str(path), f"{problem}; its settings are ignored")], None
    raw, messages = _valid_entries(raw, str(path), text)
    return raw, messages, text


def load_indexing_settings(
    root: Path, *, env: Mapping[str, str] | None = None
) -> LoadedSettings[IndexingSettings]:
    """The settings of the workspace `root` as `server.settings.load_settings` reads them, with the same
    messages, for the commands that only index and search: the agent's sections are validated (and their
    classes imported) only when a source sets one (`validate_sections`)."""
    return load(root, validate_sections, env=env)


@dataclass(frozen=True)
class _Read:
    """The settings files of a workspace as `load` applies them, before they are merged."""

    user: dict[str, Any]  # the user's own file's settings, without its invalid entries
    user_file: SettingsFile | None  # None: the user has no settings file (or it cannot be read)
    workspace: dict[str, Any]  # the workspace's file's settings, without its sensitive values not trusted
    workspace_file: SettingsFile | None  # None: none, or its text cannot be read
    sources: list[str]  # the workspace's file, when there is one
    messages: list[str]  # the user's file's invalid entries, the workspace's file unreadable
    unreadable: list[str]
    untrusted: list[str]
    pending: list[Sensitive]


def _read(root: Path | None, env: Mapping[str, str], trusted: Collection[str] = ()) -> _Read:
    """The settings files as `load` applies them: the user's own, and the workspace `root`'s (None: no
    workspace, the user's own alone), its sensitive values trusted by the trust file or by `trusted`
    (`server.settings_trust.untrusted_dropped`)."""
    from server.settings_trust import sensitive_values, untrusted_dropped

    unreadable: list[str] = []
    user_path = user_settings_file(env)
    user, messages, user_text = _user_file(user_path, unreadable)
    raw, more_messages, sources = workspace_settings(root, unreadable) if root is not None else ({}, [], [])
    text = None
    if sources:  # a message names the setting's line in the file
        try:
            text = Path(sources[0]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
    prefix = ("tool", "agentls") if sources and sources[0].endswith("pyproject.toml") else ()
    untrusted: list[str] = []
    pending: list[Sensitive] = []
    if sources and root is not None:
        found = sensitive_values(raw, root, user)  # before the untrusted ones are dropped from raw
        raw, untrusted = untrusted_dropped(
            raw, found, root, sources[0], env, text=text, prefix=prefix, trusted=trusted
        )
        pending = found if untrusted else []
    return _Read(
        user,
        SettingsFile(str(user_path), user_text, (), user) if user_text is not None else None,
        raw,
        SettingsFile(sources[0], text, prefix, raw) if sources and text is not None else None,
        sources,
        messages + more_messages,
        unreadable,
        untrusted,
        pending,
    )


def applied_files(
    root: Path, env: Mapping[str, str] | None = None, *, trusted: Collection[str] = ()
) -> list[SettingsFile]:
    """The settings files of the workspace `root` as `load` applies them, highest precedence first: the
    workspace's (without its sensitive values the user has not trusted: `load`'s `trusted`), then the
    user's own."""
    read = _read(root, os.environ if env is None else env, trusted)
    return [file for file in (read.workspace_file, read.user_file) if file is not None]


def load(
    root: Path | None,
    validate: Validate[Tree],
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    trusted: Collection[str] = (),
) -> LoadedSettings[Tree]:
    """The settings of the workspace `root`, later sources winning: defaults, the user's file, the
    workspace's file without the sensitive settings the user has not trusted for it (each dropped one
    said in `LoadedSettings.untrusted`, see `server.settings_trust`), then `overrides` (the editor's);
    checked by `validate`. The lists of `COMBINED` (``index.exclude``) add up instead, in that order. An
    invalid value of the workspace's file falls back to the user's own file's value, when it sets one,
    rather than to the default (`validated`'s ``under``). An invalid value of the editor's settings is
    taken out of them, and the settings merged again without it (`_without_editors_invalid`): it falls
    back to the value of the layers below, as they apply (the workspace's file's as trusted, else the
    user's own, else the default), with the credentials those layers withhold withheld, and its message
    says which value is used (`_instead`). A relative model folder is made absolute from the folder of
    the file that sets it (`indexing.config.anchor_model_folders`; the workspace root for the editor's
    settings, or without a workspace the user's file's folder, as for the user's own file). A setting
    no run can use is checked once, on the merged settings, and said with the file and line of the
    source that wins for it (`server.settings.unusable`). `env`: where the user's file and the trust
    file are (default: this process's environment). `root` None: no workspace (a language server started
    without a folder), the user's file and `overrides` alone, each of the user's settings applying as in
    a workspace without a file. `trusted`: the `server.settings_trust.fingerprint`s of
    sensitive values of the workspace's file that the user trusted for `root` beyond the trust file
    (``agentls acp``'s, for this process only): they apply as trusted ones do, said at their file's line.
    """
    env = os.environ if env is None else env
    read = _read(root, env, trusted)
    sources = read.sources
    # A relative model folder is its file's: the user's file's folder's, the workspace root's; the
    # editor's settings' the workspace root's, or without a workspace the user's file's folder's, as the
    # user's own file's (never the process's working folder, which no check has seen).
    own_folder = user_settings_file(env).parent
    editors_folder = own_folder if root is None else root
    user = anchor_model_folders(read.user, own_folder)
    workspace = anchor_model_folders(read.workspace, root) if root is not None else read.workspace
    source = sources[0] if sources else "settings"
    # The workspace's file's lines name its settings' messages, the editor's settings merged over it too
    # (`validated`'s `editor`: not at the lines of the entries the editor's settings write).
    text = read.workspace_file.text if read.workspace_file is not None else None
    prefix = read.workspace_file.prefix if read.workspace_file is not None else ()
    otherwise = EDITOR_SETTINGS if overrides else source
    editor = joined(overrides) if overrides else None
    ignored: list[SettingsMessage] = []
    written = [file for file in (read.workspace_file, read.user_file) if file is not None]
    while True:  # each round takes at least one invalid entry out of the editor's settings
        anchored = editor if editor is None else anchor_model_folders(editor, editors_folder)
        layers = _Layers.of(user, workspace, anchored)
        files = written if editor is None else [SettingsFile(EDITOR_SETTINGS, None, (), editor), *written]
        settings, more = validate(
            layers.raw,
            source,
            text,
            prefix,
            files=files,
            otherwise=otherwise,
            under=layers.under,
            editor=editor,
        )
        theirs = [m for m in more if isinstance(m, SettingsMessage) and m.file == EDITOR_SETTINGS and m.loc]
        fewer = _without_editors_invalid(editor, theirs) if editor is not None and theirs else None
        if fewer is None:
            break
        editor, ignored = fewer, [*ignored, *theirs]
    listed = [*([read.user_file.path] if read.user and read.user_file is not None else []), *sources]
    said = [_withheld_message(item, read.workspace_file, source) for item in layers.withheld]
    applied = joined(workspace) if ignored else {}
    instead = [_instead(message, layers, applied, read.workspace_file, source, more) for message in ignored]
    return LoadedSettings(
        settings,
        tuple(read.messages + said + instead + more),
        tuple(listed),
        tuple(read.unreadable),
        tuple(read.untrusted),
        tuple(read.pending),
    )


@dataclass(frozen=True)
class _Layers:
    """The settings of `load`'s layers merged (`raw`), the user's own (`under`, which an invalid value of
    the workspace's file falls back to) and the MCP credentials of the user's kept from a destination
    the workspace's file chose (`withheld`), taken out of both."""

    raw: dict[str, Any]
    under: dict[str, Any]
    withheld: list[Withheld]

    @classmethod
    def of(
        cls, user: Mapping[str, Any], workspace: Mapping[str, Any], editor: Mapping[str, Any] | None
    ) -> _Layers:
        raw = merge(user, workspace, COMBINED)
        if editor is not None:
            raw = merge(raw, editor, COMBINED)
        withheld = withheld_credentials(user, workspace, editor or {})
        if not withheld:
            return cls(raw, dict(user), [])
        # nor does an invalid value of the workspace's bring them back (`validated`'s `under`)
        return cls(
            without_withheld(raw, withheld, workspace), without_withheld(user, withheld, workspace), withheld
        )


def _without_editors_invalid(
    editor: dict[str, Any], ignored: Sequence[SettingsMessage]
) -> dict[str, Any] | None:
    """The editor's settings `editor` (joined) without the entries `ignored` says are invalid (their
    `loc`): merged again without them, each setting takes the value of the layers below as they apply,
    including which credentials those withhold (an invalid ``command`` of the editor's is not the
    editor's choice of a destination, which would take the user's credentials along to the workspace's).
    None: none of them is there to take out."""
    out = _deep_copy(editor)
    dropped = [_drop(out, message.loc) for message in ignored]
    return out if any(dropped) else None


def _instead(
    message: SettingsMessage,
    layers: _Layers,
    workspace: Mapping[str, Any],
    workspace_file: SettingsFile | None,
    source: str,
    said: Sequence[str],
) -> SettingsMessage:
    """`message`, about an invalid value of the editor's settings that `load` took out of them, saying the
    value used instead, the layers' below as merged without it (`layers`): the workspace's file's (as
    applied, `workspace`), with its line and a number's or a flag's value; the user's own; both, for a
    table or a list that adds up (`COMBINED`); the default; or, when that value is ignored too (`said`,
    the messages of the final validation), what that one falls back to."""
    if not message.instead:  # an unknown key: no value of the layers below is used instead of it
        return message
    loc = message.loc
    below = next(
        (m for m in said if isinstance(m, SettingsMessage) and m.loc and m.loc == loc[: len(m.loc)]), None
    )
    value = _value_at(layers.raw, loc)
    theirs = _value_at(workspace, loc) is not _UNSET
    mine = _value_at(layers.under, loc) is not _UNSET
    if isinstance(below, SettingsMessage) and below.instead:
        instead = below.instead
    elif below is not None or value is _UNSET:
        instead = "the default"
    elif theirs:
        where = _written_at(workspace_file, loc, source)
        both = mine and (isinstance(value, Mapping) or loc in COMBINED)
        shown = f" ({json.dumps(value)})" if isinstance(value, (bool, int, float)) else ""
        instead = (
            f"your own settings' value with the one set at {where}"
            if both
            else f"the value set at {where}{shown}"
        )
    else:
        instead = "your own settings' value"
    return message.using(instead)

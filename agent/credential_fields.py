"""Which settings hold credentials: masked wherever settings are written out, learnt by a run's Redactor.

Settings may carry tokens, keys and passwords in these places (`server.settings.Settings`):

- ``env`` and ``headers`` of an MCP server (``[mcp.servers.NAME]``, also under ``agent.mcp``): every
  value (``GITHUB_PERSONAL_ACCESS_TOKEN``, ``Authorization = "Bearer ..."``);
- an MCP server's ``args``: the value of a flag that names a credential (``--token X``, ``--api-key=X``,
  ``GITHUB_TOKEN=X``), and of a header given as an arg (``--header "Authorization: Bearer X"``, as
  ``mcp-remote`` takes it: ``X``, its scheme kept readable, all of it up to the arg's end, ``=`` padding
  included); an option's value given in one arg with it counts as the value alone does, after ``=``
  (``--header=Authorization: Bearer X``, ``--env=GITHUB_TOKEN=X``) or glued to a short option (curl's
  ``-HAuthorization: Bearer X``, docker's ``-eKEY=X``); in curl's args, the password of ``-u user:X``
  (``--user``, ``-U``, ``--proxy-user``; ``--user=user:X``, ``-uuser:X``, after short flags in one arg:
  ``-sSu user:X``), the user name kept readable;
- any URL (``agent.model.base_url`` and a role's, ``agent.install.index_url``, an MCP server's ``url``,
  ``index.embedding.base_url``, ``index.rerank.url``): its user info (``https://user:pass@host``) and the
  values of its query (``?api_key=...``);
- a field whose name says it is a credential (``token``, ``secret``, ``password``, ``api_key``...; none
  today, but a setting added later is covered). Fields that *name* an environment variable
  (``api_key_env``) hold no credential and are kept.

`mask_settings` returns a settings dump (``model_dump(mode="json")``, of the whole tree or of a section)
with those values replaced by what says only whether they are set (``"<set, 40 chars>"``), key names kept:
the transcript's ``run_start`` (`agent.recorder`), the language server's ``agentls/serverStats``, the MCP
trust question and pygls' debug log of the editor's settings all write settings through it.
`mask_text` does the same in free text (an MCP server's stderr). `credential_values` lists the values
themselves, for the run's `indexing.secrets.Redactor` to learn (`agent.runner`), so a tool's output that
prints one (an MCP server echoing its token) shows a placeholder to the model and on disk.

The rules for a URL and for a credential's name are `indexing.credentials`'s, which masks the index
settings the index's own files keep with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from indexing.credentials import URL_PATTERN, mask_url, mask_urls, masked
from indexing.credentials import names_credential as _names_credential

__all__ = [
    "args_without_credentials",
    "credential_values",
    "mask_settings",
    "mask_text",
    "mask_url",
    "masked",
]

_SECRET_MAPS = frozenset({"env", "headers"})
"""Settings whose values are all masked: an MCP server's environment and HTTP headers."""
_AUTH_SCHEMES = frozenset({"basic", "bearer", "digest", "negotiate", "token", "apikey"})
"""The first word of an ``Authorization`` header, which is no secret."""
_HEADER_ARG = re.compile(rf"([A-Za-z0-9_-]+):[ \t]*(?:(?i:{'|'.join(sorted(_AUTH_SCHEMES))})[ \t]+)?")
"""An arg that is a header, ``Name: value`` (`_args`): its name, and what comes before the value (an
``Authorization`` header's scheme too)."""
_MIN_LEARNT = 6
"""Shorter values are not learnt by the Redactor (it replaces none shorter), nor masked in free text."""


def _url_values(url: str) -> Iterator[str]:
    """The credentials in `url`: its password (its user name too when there is none, or when it looks like
    a key: ``https://TOKEN@host``), and the values of its query that a credential's name or shape gives
    away (``?api_key=...``; not ``?version=2``)."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
        pairs = parse_qsl(parts.query)
    except ValueError:
        return
    if password:
        yield password
    if user and (not password or _looks_like_a_key(user)):
        yield user
    for name, value in pairs:
        if _names_credential(name) or _looks_like_a_key(value):
            yield value


def _args(args: Iterable[Any], command: Any = None) -> Iterator[tuple[Any, str, str | None]]:
    """Each of an MCP server's `args` with where a credential is in it: ``(arg, name, value)``, where
    `value` is the credential (the arg after a ``--token``-style flag, the value of ``TOKEN=value``, or
    of a header ``Authorization: Bearer value`` whose name names a credential) and `name` is what comes
    before it: ``""``, ``"TOKEN="``, ``"Authorization: Bearer "``; or None when the arg is none (a URL in
    it may still hold one). An option's value in the same arg is read as the value alone would be: after
    ``=`` (``--header=Authorization: Bearer value``, ``--env=TOKEN=value``; `name` then starts with the
    option, ``"--header=Authorization: Bearer "``), and after a short option glued to it, curl's
    ``-HAuthorization: Bearer value``, docker's ``-eKEY=value`` (`_glued_option`).

    In curl's args (`command` is curl, or they follow an arg that is, as in ``docker run IMAGE curl
    ...``), the password of ``-u user:password`` is one too, in each form curl takes (``-u``, ``--user``,
    ``-U``, ``--proxy-user``; the value in the next arg, after ``=`` or glued: ``-uuser:password``; after
    other short flags in the same arg: ``-sSu``):
    `name` keeps the user name, ``"user:"``, as a header's keeps its name. Not in other commands' args,
    where ``-u`` is no password (docker's ``-u 1000:1000``, a user and a group)."""
    secret_next = user_next = False
    curl = _is_curl(command)
    for arg in args:
        if not isinstance(arg, str):
            yield arg, "", None
            continue
        if secret_next:
            secret_next = False
            yield arg, "", arg
            continue
        found = _user_password(arg, 0) if user_next else None
        curl = curl or _is_curl(arg)
        if found is None and curl:
            found = _curl_user(arg)
        option, equals, _ = arg.partition("=")
        starts = [0]
        if equals and option.startswith("-"):
            starts.append(len(option) + 1)
        if _glued_option(arg):
            starts.append(2)
        found = found or next(filter(None, (_credential_at(arg, start) for start in starts)), None)
        user_next = curl and (arg in _CURL_USER or _short_user_value(arg) == len(arg))
        if found is not None:
            yield arg, *found
            continue
        secret_next = arg.startswith("-") and _names_credential(arg)
        yield arg, "", None


_CURL_USER = frozenset({"-u", "--user", "-U", "--proxy-user"})
"""curl's options whose value is ``user:password`` (of the site, of the proxy)."""

_CURL_FLAGS = frozenset("sSvfLkiIlnNOpqRjgGZMaBJ#0123456")
"""curl's short options that take no value, which may come before ``-u`` in one arg (``-sSu``)."""


def _is_curl(word: Any) -> bool:
    """`word` runs curl: ``curl``, ``/usr/bin/curl``, ``curl.exe``."""
    return isinstance(word, str) and re.split(r"[/\\]", word)[-1].lower() in ("curl", "curl.exe")


def _curl_user(arg: str) -> tuple[str, str] | None:
    """The password of a curl ``user:password`` given in one arg with its option (``--user=ada:pw``,
    ``-uada:pw``): ``(what comes before it, the password)``, or None."""
    for option in ("--user=", "--proxy-user="):
        if arg.startswith(option):
            return _user_password(arg, len(option))
    start = _short_user_value(arg)
    return _user_password(arg, start) if start is not None and start < len(arg) else None


def _short_user_value(arg: str) -> int | None:
    """Where the value of ``-u`` or ``-U`` starts in a curl arg of short options (``-u``, ``-uada:pw``,
    ``-sSu``, ``-sSuada:pw``: the value is the rest of the arg, or the next arg when nothing is left), or
    None when the arg has no such option before one that takes a value of its own (``-HUser: u``)."""
    if not arg.startswith("-") or arg.startswith("--"):
        return None
    for at, letter in enumerate(arg[1:], start=1):
        if letter in "uU":
            return at + 1
        if letter not in _CURL_FLAGS:
            return None
    return None


def _user_password(arg: str, start: int) -> tuple[str, str] | None:
    """``user:password`` read from `start` on: ``(arg up to the password, the password)``, or None when no
    password is given (``-u ada``: curl asks for it)."""
    user, colon, password = arg[start:].partition(":")
    return (arg[:start] + user + colon, password) if colon and password else None


def _glued_option(arg: str) -> bool:
    """`arg` is a short option with its value glued to it (``-HName: value``, ``-eNAME=value``), as curl,
    docker and getopt take one."""
    return len(arg) > 2 and arg[0] == "-" and arg[1].isalpha()


def _credential_at(arg: str, start: int) -> tuple[str, str] | None:
    """The credential of `arg` read from `start` on, as the arg alone would be: a header whose name names a
    credential (its value may hold ``=``: ``Authorization: Basic dXNlcjpwYXNz==``), else ``NAME=value``;
    ``(what comes before the value, the value)``, or None."""
    header = _HEADER_ARG.match(arg, start)
    if header and _names_credential(header.group(1)) and arg[header.end() :].strip():
        return arg[: header.end()], arg[header.end() :]
    name, equals, value = arg[start:].partition("=")
    if equals and _names_credential(name):
        return arg[:start] + name + equals, value
    return None


def _mask_args(args: list[Any], command: Any) -> list[Any]:
    return [
        f"{name}{masked(value)}" if value is not None else mask_urls(arg) if isinstance(arg, str) else arg
        for arg, name, value in _args(args, command)
    ]


def args_without_credentials(args: Iterable[Any], command: Any = None) -> tuple[list[Any], list[str]]:
    """An MCP server's `args` without what carries a credential by these rules, the rest kept in order;
    and what was taken out, named for a message without its value. Taken out: an arg that gives a flag
    its credential whole (``--api-key=X``: named ``--api-key=``; ``--header=Authorization: Bearer X``:
    ``--header=Authorization: Bearer``); a credential standing alone, with the
    option just before it, which may take it as its value (``--token X``: ``--token``; ``-e
    GITHUB_TOKEN=X``: ``-e GITHUB_TOKEN=``; ``--mirror https://user:pass@host``: the URL masked), so that
    no option is left to take the next arg as its value instead (curl's ``-u ada:pw``, `command`'s args:
    ``-u ada:``). Nothing taken out: `args` hold no credential (`credential_values` finds none)."""
    kept: list[Any] = []
    named: list[str] = []
    option = False  # the last arg kept is an option that may take the next one as its value
    for arg, name, value in _args(args, command):
        before, option = option, False
        if value is not None and name.startswith("-"):  # ``--api-key=X``: the credential and its flag
            named.append(name.rstrip())  # ``--header=Authorization: Bearer``
            continue
        if value is None and not (isinstance(arg, str) and any(_strings_values(arg))):
            kept.append(arg)
            option = isinstance(arg, str) and arg.startswith("-") and "=" not in arg
            continue
        what = name if value is not None else mask_urls(arg)  # "" after a ``--token``-style flag
        what = f"{kept.pop()} {what}".strip() if before else what
        named.append(what or masked(str(value)))
    return kept, named


def _args_values(args: Iterable[Any], command: Any) -> Iterator[str]:
    for arg, _, value in _args(args, command):
        if value is not None:
            yield value
        elif isinstance(arg, str):
            yield from _strings_values(arg)


def _strings_values(value: str) -> Iterator[str]:
    for match in URL_PATTERN.finditer(value):
        yield from _url_values(match.group(0))


def mask_settings(dump: Any) -> Any:
    """A copy of the settings dump `dump` with every credential masked (see the module docstring).

    Works on any part of the tree (``Settings``, ``AgentSettings``, ``McpSettings``, a role's model) and on
    the editor's raw settings, since it goes by the names of the fields, not by where they are."""
    return _mask(dump, "")


def _mask(value: Any, name: str, command: Any = None) -> Any:
    """`value`, the setting `name`, masked; `command`: the ``command`` beside it (of an MCP server's
    ``args``)."""
    if isinstance(value, Mapping):
        if name in _SECRET_MAPS:
            return {k: masked(v) if isinstance(v, str) else _mask(v, str(k)) for k, v in value.items()}
        return {k: _mask(v, str(k), value.get("command")) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if name == "args":
            return _mask_args(list(value), command)
        return [_mask(v, name) for v in value]
    if isinstance(value, str):
        if value and _names_credential(name):
            return masked(value)
        return mask_urls(value)
    return value


def credential_values(dump: Any, *, learnt_only: bool = True) -> list[str]:
    """The credentials in the settings dump `dump` (the values `mask_settings` hides), longest first.

    `learnt_only`: leave out what a run's Redactor must not learn, as it would then hide it from the model
    everywhere: values shorter than 6 characters, and ``env`` and ``headers`` values that neither have a
    credential's name (``GITHUB_TOKEN``, ``Authorization``) nor look like a key or token (a folder or a
    ``LOG_LEVEL`` stays readable). Without it, every value masked in a dump is listed."""
    found: set[str] = set()
    _collect(dump, "", found, learnt_only)
    return sorted((v for v in found if not learnt_only or len(v) >= _MIN_LEARNT), key=len, reverse=True)


def _collect(value: Any, name: str, found: set[str], learnt_only: bool, command: Any = None) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if name in _SECRET_MAPS and isinstance(item, str):
                _collect_map_value(str(key), item, name, found, learnt_only)
            else:
                _collect(item, str(key), found, learnt_only, value.get("command"))
    elif isinstance(value, (list, tuple)):
        if name == "args":
            found.update(_args_values(value, command))
        else:
            for item in value:
                _collect(item, name, found, learnt_only)
    elif isinstance(value, str) and value:
        if _names_credential(name):
            found.add(value)
        else:
            found.update(_strings_values(value))


def _collect_map_value(key: str, value: str, kind: str, found: set[str], learnt_only: bool) -> None:
    """An ``env`` or ``headers`` value: the whole of it when it is (or may be) a credential, and the words
    of a header (``Bearer TOKEN``); a URL's credentials (``DATABASE_URL``)."""
    found.update(_strings_values(value))
    words = value.split() if kind == "headers" else []
    candidates = [value] + [word for word in words if word.lower() not in _AUTH_SCHEMES]
    for candidate in candidates:
        if not learnt_only or _names_credential(key) or _looks_like_a_key(candidate):
            found.add(candidate)


def _looks_like_a_key(value: str) -> bool:
    """A token-shaped value: 16 or more characters, no spaces, letters and digits, not a path or a URL."""
    return (
        len(value) >= 16
        and not any(c.isspace() for c in value)
        and "://" not in value
        and not value.startswith(("/", "~", "."))
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
    )


def mask_text(text: str, values: Iterable[str]) -> str:
    """`text` with each of `values` (6 characters or more; longest first) replaced by ``[redacted]``."""
    for value in sorted({v for v in values if len(v) >= _MIN_LEARNT}, key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return text

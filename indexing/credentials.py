"""Credentials in URLs and in setting names, masked wherever the indexing package writes settings or URLs
to disk: the index's file state (`indexing.state`), the command line's search card (`server.cli.quick`)
and the search process's log (`indexing.search_daemon`).

Index settings can hold a credential only in a URL (``index.embedding.base_url``, ``index.rerank.url``):
its user info (``https://user:pass@host``) and its query values (``?api_key=...``); `indexing.config`
refuses credential-named keys and a ``shared`` URI with either. A field named like a credential (``token``,
``password``, ``api_key``...; not ``api_key_env``, which names a variable) is masked too, should one be
added. `agent.credential_fields` builds the masking of the whole settings tree (an MCP server's ``env``,
``headers`` and ``args`` too) on these rules.

Standard library only: the search process imports it before anything else.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = [
    "URL_PATTERN",
    "UrlMaskingFormatter",
    "mask_settings_json",
    "mask_url",
    "mask_urls",
    "masked",
    "names_credential",
]

_CREDENTIAL_NAME = re.compile(
    r"token(?!s)|secret|passw|api[-_]?key|access[-_]?key|account[-_]?key|private[-_]?key|credential|auth"
    r"|cookie|bearer|(^|[-_])(pat|pwd|key|sig|sas)($|[-_])",
    re.I,
)
"""A name (setting, environment variable, header, flag or query parameter) that says it holds a credential."""
URL_PATTERN = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.I)
"""A URL in free text."""


def masked(value: str) -> str:
    """What a dump shows of a credential: whether it is set and its length, never a character of it."""
    if not value:
        return "<empty>"
    return f"<set, {len(value)} char{'s' if len(value) != 1 else ''}>"


def names_credential(name: str) -> bool:
    """Whether ``name`` says it holds a credential (``GITHUB_TOKEN``, ``api_key``; not ``api_key_env``)."""
    return bool(_CREDENTIAL_NAME.search(name)) and not name.lower().endswith("_env")


def mask_url(url: str) -> str:
    """`url` without its user info and query values: ``https://***@host/path?key=***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return masked(url)
    if "@" not in parts.netloc and not parts.query:
        return url
    netloc = "***@" + parts.netloc.rsplit("@", 1)[1] if "@" in parts.netloc else parts.netloc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{name}=***" for name, _ in pairs) if pairs else ("***" if parts.query else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_urls(text: str) -> str:
    """`text` with every URL in it masked (`mask_url`)."""
    return URL_PATTERN.sub(lambda m: mask_url(m.group(0)), text) if "://" in text else text


def mask_settings_json(settings_json: str) -> str:
    """Index settings as JSON (``IndexSettings.model_dump_json()``) with their credentials masked: the form
    the index's file state keeps, to compare with the next run's settings put in the same form.

    A credential that changes alone (a new password for the same endpoint) leaves that form as it was, so
    it neither re-indexes nor re-embeds: the rows do not depend on it. A change of where the data comes
    from (the endpoint's host, port or path, the model) still shows; one of a query value does not. Text
    that is not JSON is returned masked as free text."""
    try:
        data = json.loads(settings_json)
    except ValueError:
        return mask_urls(settings_json)
    return json.dumps(_mask(data, ""), separators=(",", ":"), ensure_ascii=False)


def _mask(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {key: _mask(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, name) for item in value]
    if isinstance(value, str):
        return masked(value) if value and names_credential(name) else mask_urls(value)
    return value


class UrlMaskingFormatter(logging.Formatter):
    """A log formatter that masks every URL's credentials in what it formats (a traceback included): httpx
    logs each request's URL with its user info, and an endpoint's error names its URL."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_urls(super().format(record))

"""Trust in a workspace's MCP servers: asked once per workspace and command, remembered, recorded.

An ``[mcp.servers.NAME]`` table can come from the ``agentls.toml`` of a repository the user did not write,
and a stdio server runs on the host with the user's rights. So before a run starts a server,
`trusted_servers` checks `McpTrust`: the user trusted this workspace's server with exactly this
configuration before (a SHA-256 `fingerprint` of the command, arguments, environment, working folder,
URL and headers: change any of them and the question comes back). The configuration is the one that runs:
the server's fields joined from the user's own file and the workspace's (`server.settings_files.joined`),
so a workspace that changes the command of a server of the user's own file is asked about as a new
server; the user's ``env`` and ``headers`` (and the credentials in ``args``) do not go with a command,
``args``, ``cwd``, ``env`` entry, URL or header the workspace chose
(`server.settings_files.withheld_credentials`), so a yes to a question that reads like one about the
user's own server sends them nowhere new; a relative ``cwd`` is a folder of the workspace
(`agent.mcp.client`). If not, the user is asked through the run's ask callback
(editor message or terminal prompt, `agent.approval`); "Trust and start" is remembered in
``<agentls cache>/mcp-trust.json`` (0600; only fingerprints, never the environment's values), any other
answer, or nobody to ask, leaves the server out of this run and it is asked again next time. A "Trust and
start" the trust file cannot keep (a read-only cache: `agent.trust_store.Kept`) holds for the run, which
tells the user why it was not remembered (`NotRemembered`, `trusted_servers`' ``on_not_remembered``).
Every question and answer is an ``approval`` record of the run's transcript (subject ``mcp_server``);
a server started on remembered trust is a ``decision`` record (kind ``mcp_server_trusted``).

``agentls acp`` asks before a prompt's run instead (`server.acp`: ACP can ask only inside a prompt's
turn), with ``session/request_permission`` and the same `question`: "Trust and start" is
`McpTrust.remember`ed, so the run finds the server trusted (its ``mcp_server_trusted`` record); a server
the user did not trust there is disabled in the run's settings, so the run does not ask again. The
question and its answer are handed to the run, whose transcript writes them first (`agent.approval.Asked`).
When the trust file cannot be written, "Trust and start" holds for that agentls process: the run gets it
in its `RunAnswers` (`RunAnswers.trusted`).

A question nobody answered (no one to ask: a run without a terminal; the editor's question dismissed or
timed out) is an `Untrusted` for `trusted_servers`' ``on_untrusted``: which server,
why nobody answered, and how to trust it (``agentls mcp --trust --path ROOT`` in a terminal). The tool
set makes it a warning of the run, as it does a server that fails to start (`agent.tools.toolset`); without
``on_untrusted`` it is logged as a warning. A user who answered "Don't start" chose it: that is only logged.

A team run's roles each start the servers again. They share the run's `RunAnswers` (``answers``), which
keeps how each question ended, so a server is asked about once per run: a later role takes that outcome
("Don't start"; or no answer, told as the first role told it) with a ``decision`` record (kind
``mcp_server_answered``) instead of a question. "Trust and start" is in the trust file at once (a later
role's record is ``mcp_server_trusted``); `RunAnswers` holds it too, for a run that keeps no trust file.

The trust file is read once for all the servers of a settings (`trusted_servers`, and ``agentls acp``'s
check before a prompt's run), not once per server (`agent.trust_store.TrustStore.trusted`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from agent.credential_fields import mask_settings
from agent.mcp.client import tool_name
from agent.mcp.config import McpServerSettings, McpSettings
from agent.tools.ask import NoAnswer
from agent.trust_store import Kept, TrustStore

if TYPE_CHECKING:
    from agent.recorder import Recorder
    from agent.tools.ask import AskCallback

__all__ = [
    "TRUST",
    "TRUST_FILE",
    "McpTrust",
    "NotRemembered",
    "RunAnswers",
    "Untrusted",
    "describe_server",
    "fingerprint",
    "question",
    "trusted_servers",
]

log = logging.getLogger(__name__)

TRUST_FILE = "mcp-trust.json"
TRUST, DONT = "Trust and start", "Don't start"


def fingerprint(config: McpServerSettings) -> str:
    """SHA-256 of what the server runs or reaches (command, args, env, cwd, url, headers)."""
    what = {
        "command": config.command,
        "args": config.args,
        "env": config.env,
        "cwd": config.cwd,
        "url": config.url,
        "headers": config.headers,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


class McpTrust(TrustStore):
    """The servers the user trusted, by workspace and fingerprint, in one JSON file (None: not kept)."""

    def is_trusted(self, root: Path, config: McpServerSettings) -> bool:
        return self.has(root, fingerprint(config))

    def remember(self, root: Path, name: str, config: McpServerSettings) -> Kept:
        """Trust this server of this workspace from now on (written atomically, 0600); whether it was kept."""
        return self.add(root, fingerprint(config), server=name)


def describe_server(config: McpServerSettings) -> str:
    """What starting the server does, for the question: ``runs `cmd args` with ENV set ...``, ``connects to
    URL sending the headers NAME...``: what it runs or reaches and the names of the credentials it gets
    (of a server whose command, URL, env or headers a workspace's file changed, only those that file
    writes: the user's own stay with the user's destination, `server.settings_files.withheld_credentials`);
    credentials in its URL and arguments masked (`agent.credential_fields`), as the question goes to the
    transcript."""
    shown = mask_settings(config.model_dump(mode="json"))
    if config.url is not None:
        headers = f" sending the headers {', '.join(sorted(config.headers))}" if config.headers else ""
        return f"connects to {shown['url']}{headers}"
    line = shlex.join([str(config.command), *shown["args"]])
    env = f" with {', '.join(sorted(config.env))} set" if config.env else ""
    return f"runs `{line}`{env} on your machine with your rights"


def question(name: str, config: McpServerSettings) -> str:
    """The question whether to trust the server `name`: what it runs, with which arguments (masked)."""
    return (
        f"This workspace's settings start the MCP server `{name}`, which {describe_server(config)}. "
        "Trust it? The answer is remembered for this workspace and this exact configuration."
    )


@dataclass(frozen=True)
class Untrusted:
    """A server left out of a run because the question whether to trust it got no answer, for the user
    (`message`) and the model (`note`)."""

    server: str
    root: Path
    why: str
    """Why nobody answered: "nobody was there to answer it", "there is no terminal to ask on"..."""

    @property
    def message(self) -> str:
        command = shlex.join(["agentls", "mcp", "--trust", "--path", str(self.root)])
        return (
            f"The MCP server `{self.server}` was not started: it is not trusted in this workspace, and the "
            f"question whether to trust it got no answer ({self.why}). Its tools are left out of this run. "
            f'To trust it, run `{command}` in a terminal (or answer "{TRUST}" when a run asks).'
        )

    @property
    def note(self) -> str:
        """The model's line about it: the tools it may expect are not there."""
        return (
            f"The MCP server `{self.server}` was not started (the user has not trusted it), so its tools "
            f"({tool_name(self.server, '')}*) are not available in this run: do without them."
        )

    def record(self) -> dict[str, str]:
        """The fields of its transcript record."""
        return {"server": self.server, "reason": f"not trusted; no answer ({self.why})"}


@dataclass(frozen=True)
class NotRemembered:
    """A server the user trusted when a run asked, whose trust file could not keep the answer: it starts
    for this run (and the other roles of a team run), and the question comes again next run."""

    server: str
    kept: Kept
    """What came of writing the trust file (not `Kept.kept`)."""

    @property
    def why(self) -> str:
        """Why: `agent.trust_store.Kept.why` ("PATH could not be written (ERROR)")."""
        return self.kept.why

    @property
    def message(self) -> str:
        what = f"The MCP server `{self.server}` is trusted for this run, but"
        return self.kept.message(what, "The question comes again next run")

    @property
    def note(self) -> str:
        """Nothing for the model: the server's tools are there."""
        return ""

    def record(self) -> dict[str, str]:
        return {"server": self.server, "reason": f"trusted for this run only: {self.why}"}


@dataclass(frozen=True)
class _Outcome:
    """How a trust question ended: trusted or not, the user's answer (None: none came) and why nobody
    answered (None: the user answered)."""

    trusted: bool
    answer: str | None
    unanswered: str | None


class RunAnswers:
    """The trust questions one run asked and how each ended, by workspace and `fingerprint`: a team run
    shares one among its roles, which each start the servers again, so each is asked once per run."""

    def __init__(self) -> None:
        self._outcomes: dict[tuple[str, str], _Outcome] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(root: Path, config: McpServerSettings) -> tuple[str, str]:
        return str(Path(root).resolve()), fingerprint(config)

    def get(self, root: Path, config: McpServerSettings) -> _Outcome | None:
        with self._lock:
            return self._outcomes.get(self._key(root, config))

    def put(self, root: Path, config: McpServerSettings, outcome: _Outcome) -> None:
        with self._lock:
            self._outcomes[self._key(root, config)] = outcome

    def trusted(self, root: Path, config: McpServerSettings) -> None:
        """The user answered "Trust and start" for this server before the run, but the trust file could not
        keep it (``agentls acp``): the run takes the answer as its own."""
        self.put(root, config, _Outcome(True, TRUST, None))


def trusted_servers(
    settings: McpSettings,
    root: Path,
    *,
    trust: McpTrust,
    ask: AskCallback | None,
    recorder: Recorder | None,
    on_untrusted: Callable[[Untrusted], None] | None = None,
    answers: RunAnswers | None = None,
    on_not_remembered: Callable[[NotRemembered], None] | None = None,
) -> McpSettings:
    """`settings` with every enabled server the user does not trust (now or before) disabled. A server
    left out because nobody answered goes to `on_untrusted` (None: logged as a warning); one trusted in
    this run's question whose trust file could not be written goes to `on_not_remembered` (None: logged).
    `answers`: the run's questions so far (a team run's); a server asked about in this run is not asked
    about again. The trust file is read once (`TrustStore.trusted`), not once per server."""
    servers: dict[str, McpServerSettings] = {}
    trusted = set(trust.trusted(root)) if any(c.enabled for c in settings.servers.values()) else set()
    for name, config in settings.servers.items():
        if not config.enabled:
            servers[name] = config
            continue
        digest = fingerprint(config)
        if digest in trusted:
            if recorder is not None:
                recorder.decision("mcp_server_trusted", server=name, sha256=digest)
            servers[name] = config
            continue
        outcome = answers.get(root, config) if answers is not None else None
        if outcome is not None:  # asked in this run already (a team run's earlier role)
            if recorder is not None:
                recorder.decision(
                    "mcp_server_answered",
                    server=name,
                    sha256=digest,
                    trusted=outcome.trusted,
                    answer=outcome.answer,
                    reason="asked earlier in this run",
                )
        else:
            outcome = _ask(name, config, ask, recorder)
            if outcome.trusted and not (kept := trust.remember(root, name, config)).kept:
                _tell(NotRemembered(name, kept), on_not_remembered)
            elif outcome.trusted:  # a server of the same configuration further on is trusted too
                trusted.add(digest)
            if answers is not None and ask is not None:  # a question was put: its outcome holds
                answers.put(root, config, outcome)
        if outcome.trusted:
            servers[name] = config
            continue
        servers[name] = config.model_copy(update={"enabled": False})
        if outcome.unanswered is None:  # the user's own answer: nothing to tell them
            log.info("MCP server %s was not started: the user did not trust it for %s", name, root)
        else:
            _tell(Untrusted(name, Path(root), outcome.unanswered), on_untrusted)
    return settings.model_copy(update={"servers": servers})


def _ask(
    name: str, config: McpServerSettings, ask: AskCallback | None, recorder: Recorder | None
) -> _Outcome:
    """Ask the user whether to trust the server `name` (the question and answer are recorded)."""
    from agent.approval import ask_approval

    unanswered: list[str] = []
    answered: list[str] = []
    asking = _noting_answer(ask, answered, unanswered) if ask is not None else None
    trusted = ask_approval(
        asking, recorder, question(name, config), subject="mcp_server", detail=name, options=(TRUST, DONT)
    )
    if trusted or (ask is not None and not unanswered):
        return _Outcome(trusted, answered[0] if answered else None, None)
    return _Outcome(False, None, unanswered[0] if unanswered else "nobody was there to answer it")


_Told = TypeVar("_Told", Untrusted, NotRemembered)


def _tell(what: _Told, callback: Callable[[_Told], None] | None) -> None:
    """`what` (a server left out, or trusted for this run only) to `callback`, else to the log."""
    if callback is None:
        log.warning("%s", what.message)
        return
    try:
        callback(what)
    except Exception:  # telling of it must not cost the other servers
        log.exception("reporting on the MCP server %s failed", what.server)


def _noting_answer(ask: AskCallback, answered: list[str], unanswered: list[str]) -> AskCallback:
    """`ask` that appends the answer to `answered`, or why there was none (`NoAnswer`) to `unanswered`
    before raising it on."""

    def asking(question: str, options: Sequence[str]) -> str:
        try:
            answer = ask(question, options)
        except NoAnswer as nobody:
            unanswered.append(str(nobody) or "no answer came")
            raise
        answered.append(answer)
        return answer

    return asking

"""``agentls acp`` tells the user what its settings files' messages say (`server.acp`'s
``_tell_messages``): a value ignored as invalid, an unknown key, the user's MCP credentials withheld from a
URL the workspace's file chose (47ac9cf). Before, an ACP user (Zed, ...) never learnt of them: the
language server showed them, ``agentls acp`` said nothing.

A real ``agentls acp`` process, driven by the ACP SDK's client side (`tests.server.test_acp`'s helpers),
against the fake Messages API: each message is a warning message of the session (subject ``settings``,
``_meta.agentls`` naming its setting, file and kind) before the run's answer, once per session for each
(setting, file, kind): an edit that moves its line does not say it again, a new problem is said at the
next prompt, and another session is told them all again, once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from acp import text_block

from server.acp import DONT_START_MCP
from tests.fakes.anthropic_server import FakeAnthropic, text
from tests.server.test_acp import AGENT_TOML, RecordingClient, _env, _in_one_process, ws

__all__ = ["ws"]  # fixture used below

pytestmark = pytest.mark.usefixtures("nothing_raises_in_a_finalizer")

TOKEN = "ghp_settingsMessage0123456789abcdef"
USERS = (
    '[agent.mcp.servers.gh]\nurl = "http://127.0.0.1:9/mcp"\n'
    f'headers = {{ Authorization = "Bearer {TOKEN}" }}\n'
)
PROBLEMS = '\n[index]\nmax_file_bytes = "big"\n\n[mcp.servers.gh]\nurl = "http://127.0.0.1:9/theirs"\n'


class SessionsClient(RecordingClient):
    """`RecordingClient`, with the session of each update."""

    def __init__(self, choice: str | None) -> None:
        super().__init__(choice)
        self.by_session: list[tuple[str, Any]] = []

    async def session_update(self, session_id: str, update: Any, **kw: Any) -> None:
        await super().session_update(session_id, update, **kw)
        self.by_session.append((session_id, update))

    def said(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The agent messages of one session: (text, ``_meta.agentls`` or {})."""
        return [
            (str(u.content.text), (u.field_meta or {}).get("agentls", {}))
            for sid, u in self.by_session
            if sid == session_id and getattr(u, "session_update", "") == "agent_message_chunk"
        ]


def _labels(said: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The session's messages in order: a settings warning by its setting, another message by its text."""
    return [
        str(meta.get("setting")) if meta.get("subject") == "settings" else text.strip() for text, meta in said
    ]


def _warned(said: list[tuple[str, dict[str, Any]]]) -> dict[tuple[Any, Any, Any], str]:
    """The settings warnings among `said`: (setting, file, problem) -> text."""
    return {
        (meta.get("setting"), meta.get("file"), meta.get("problem")): text.strip()
        for text, meta in said
        if meta.get("kind") == "warning" and meta.get("subject") == "settings"
    }


def _line(text: str, words: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if words in line)


def test_the_settings_messages_reach_the_session_once_before_the_runs_output(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    (tmp_path / "config" / "agentls").mkdir(parents=True)
    (tmp_path / "config" / "agentls" / "agentls.toml").write_text(USERS)
    settings = ws / "agentls.toml"
    settings.write_text(AGENT_TOML + PROBLEMS)
    env = {**_env(fake_anthropic, tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    fake_anthropic.enqueue(text("First answer."), text("Second answer."), text("Third answer."))
    client = SessionsClient(DONT_START_MCP)  # the workspace's `gh` is an MCP server not trusted yet
    # before the second prompt: a comment moves every line; a new problem, an unknown key
    edited = (
        "# the team's settings\n\n" + AGENT_TOML + PROBLEMS.replace("[index]\n", '[index]\ncolour = "blue"\n')
    )

    async def body(conn: Any, first: str) -> list[str]:
        ids = [first, first, (await conn.new_session(cwd=str(ws), mcp_servers=[])).session_id]
        for number, session_id in enumerate(ids):
            if number == 1:
                settings.write_text(edited)
            reply = await conn.prompt(session_id=session_id, prompt=[text_block("What does f return?")])
            assert str(reply.stop_reason) == "end_turn"
        return ids

    first, _, second = asyncio.run(_in_one_process(client, ws, env, body))

    file = str(settings.resolve())
    withheld, invalid, unknown = (
        ("mcp.servers.gh", file, "withheld"),
        ("index.max_file_bytes", file, "int_parsing"),
        ("index.colour", file, "extra_forbidden"),
    )
    said = client.said(first)
    warned = _warned(said)
    told = [meta for _, meta in said if meta.get("subject") == "settings"]
    assert set(warned) == {withheld, invalid, unknown} and len(told) == 3, said
    # each once: the first two before the first run's answer, the new one before the second's
    labels = [label for label in _labels(said) if label.startswith(("index.", "mcp.", "First", "Second"))]
    assert sorted(labels[:2]) == ["index.max_file_bytes", "mcp.servers.gh"], labels
    assert labels[2:] == ["First answer.", "index.colour", "Second answer."], labels
    first_file = AGENT_TOML + PROBLEMS
    assert warned[withheld].startswith(
        f"warning: {file}:{_line(first_file, '/theirs')}: your own settings' headers (Authorization) for "
        f"MCP server `gh` are not sent to the URL set by {file} (`url`)"
    ), warned[withheld]
    assert warned[invalid].startswith(
        f"warning: {file}:{_line(first_file, 'max_file_bytes')}: ignoring `index.max_file_bytes`"
    ), warned[invalid]
    assert warned[unknown].startswith(f"warning: {file}:{_line(edited, 'colour')}: "), warned[unknown]
    # another session is told them all, once, before its run's answer (the lines as the file is now)
    again = client.said(second)
    assert set(_warned(again)) == {withheld, invalid, unknown}, again
    labels = [label for label in _labels(again) if label.startswith(("index.", "mcp.", "Third"))]
    assert len(labels) == 4 and labels[-1] == "Third answer.", labels
    assert f"{file}:{_line(edited, 'max_file_bytes')}: " in _warned(again)[invalid]
    assert not any(TOKEN in str(update) for update in client.updates)


def test_a_problem_fixed_and_back_is_told_again_in_the_same_session(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    """Four prompts of one session: the workspace's file has an invalid value (told), then it is fixed
    (nothing told), then it is back (told again, as the language server shows it again), then still
    there (not told). On c6dacdb the session's messages were never forgotten: the third prompt said
    nothing, and the user was not told that the value was ignored again."""
    settings = ws / "agentls.toml"
    bad = AGENT_TOML + '\n[index]\nmax_file_bytes = "big"\n'
    settings.write_text(bad)
    env = {**_env(fake_anthropic, tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    answers = ("First answer.", "Second answer.", "Third answer.", "Fourth answer.")
    fake_anthropic.enqueue(*(text(answer) for answer in answers))
    client = SessionsClient(DONT_START_MCP)

    async def body(conn: Any, session_id: str) -> str:
        for text_ in (bad, AGENT_TOML, bad, bad):
            settings.write_text(text_)
            reply = await conn.prompt(session_id=session_id, prompt=[text_block("What does f return?")])
            assert str(reply.stop_reason) == "end_turn"
        return session_id

    session_id = asyncio.run(_in_one_process(client, ws, env, body))
    labels = [label for label in _labels(client.said(session_id)) if label.startswith(("index.", *answers))]
    assert labels == [
        "index.max_file_bytes",
        "First answer.",
        "Second answer.",
        "index.max_file_bytes",
        "Third answer.",
        "Fourth answer.",
    ], labels

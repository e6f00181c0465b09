"""The trust file (`agent.trust_store.TrustStore`): `add` says whether the trust was kept and, when the file
or its folder cannot be written, why, without raising; the CLI commands that trust (``agentls settings
--trust``, ``agentls mcp --trust``) tell the user so and exit 1 rather than print "trusted"."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.trust_store import TrustStore
from tests.agent.agent_harness import copy_workspace
from tests.trusted_settings import UNWRITABLE, settings_workspace, unwritable_trust_file


def test_a_trust_kept_says_so_and_is_on_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "trust.json"  # the folder is made
    kept = TrustStore(path).add(tmp_path / "ws", "ab" * 32, server="tickets")
    assert kept.kept and kept.error is None and kept.why == "" and kept.path == path
    assert TrustStore(path).has(tmp_path / "ws", "ab" * 32)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("how", UNWRITABLE)
def test_a_trust_file_that_cannot_be_written_is_returned_with_why_not_raised(
    tmp_path: Path, how: str
) -> None:
    """Before, a cache folder that could not be made raised out of `add` (its mkdir was outside the try:
    FileExistsError through `agentls settings --trust`, the language server's task, a run's MCP
    question), and a file that could not be written returned None like a kept one: a caller read the file
    back to know, and told the user "see the log"."""
    path = tmp_path / "cache" / "settings-trust.json"
    unwritable_trust_file(tmp_path / "cache", how, path.name)
    kept = TrustStore(path).add(tmp_path / "ws", "cd" * 32, settings="agentls.toml")
    assert not kept.kept and isinstance(kept.error, OSError)
    assert kept.why.startswith(f"{path} could not be written (") and kept.why.endswith(")"), kept.why
    assert not TrustStore(path).has(tmp_path / "ws", "cd" * 32)


def test_agentls_settings_trust_says_the_trust_file_could_not_be_written(tmp_path: Path) -> None:
    """``agentls settings --trust --yes`` printed "trusted: they apply from now on" when the trust file
    could not be written (a folder in its place), though the values stayed ignored. Now: an error naming
    the file and why, exit status 1."""
    from server.cli.main import main

    ws = settings_workspace(tmp_path, '[agent.sandbox]\nnetwork = "on"\n')
    cache = tmp_path / "cache"
    unwritable_trust_file(cache, "folder in its place", "settings-trust.json")
    env = {"AGENTLS_CACHE_DIR": str(cache), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = CliRunner().invoke(main, ["settings", "--trust", "--yes", "--path", str(ws)], env=env)
    assert result.exit_code == 1, result.output
    assert "trusted: they apply" not in result.output, result.output
    said = " ".join(result.output.split())
    assert "Error: not trusted, as the answer could not be remembered: " in said, said
    assert f"{cache / 'settings-trust.json'} could not be written (" in said, said


def test_agentls_mcp_trust_says_the_trust_file_could_not_be_written(tmp_path: Path) -> None:
    """``agentls mcp --trust --yes`` with a cache folder that cannot be made (a file there) ended in a
    FileExistsError traceback; with a trust file that cannot be written it printed "tickets: trusted".
    Now: an error naming the server, the file and why, exit status 1."""
    from server.cli.main import main

    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text('[mcp.servers.tickets]\ncommand = "python3"\nargs = ["tickets.py"]\n')
    for how in UNWRITABLE:
        cache = tmp_path / how / "cache"
        unwritable_trust_file(cache, how, "mcp-trust.json")
        env = {"AGENTLS_CACHE_DIR": str(cache), "XDG_CONFIG_HOME": str(tmp_path / "config")}
        result = CliRunner().invoke(main, ["mcp", "--trust", "--yes", "--path", str(root)], env=env)
        assert result.exit_code == 1, (how, result.output, result.exception)
        said = " ".join(result.output.split())
        assert "tickets: trusted" not in said, said
        assert "Error: tickets: not trusted, as the answer could not be remembered: " in said, said
        assert f"{cache / 'mcp-trust.json'} could not be written (" in said, said


def test_a_runs_check_of_its_mcp_servers_reads_the_trust_file_once(tmp_path: Path) -> None:
    """`agent.mcp.trust.trusted_servers` with three servers the user trusted (and one disabled) reads the
    trust file once for all of them (`TrustStore.reads`) and starts the three; on fa346ad it read it once
    per enabled server (3)."""
    from agent.mcp.config import McpServerSettings, McpSettings
    from agent.mcp.trust import McpTrust, trusted_servers

    root = tmp_path / "ws"
    servers = {f"s{n}": McpServerSettings(command="srv", args=[f"--n={n}"]) for n in range(3)}
    servers["off"] = McpServerSettings(command="srv", enabled=False)
    trust = McpTrust(tmp_path / "mcp-trust.json")
    for name in ("s0", "s1", "s2"):
        assert trust.remember(root, name, servers[name]).kept
    before = trust.reads
    got = trusted_servers(McpSettings(servers=servers), root, trust=trust, ask=None, recorder=None)
    assert trust.reads - before == 1
    assert [name for name, config in got.servers.items() if config.enabled] == ["s0", "s1", "s2"]
    assert trust.trusted(root) == trust.trusted(tmp_path / "ws" / ".." / "ws")
    assert len(trust.trusted(root)) == 3

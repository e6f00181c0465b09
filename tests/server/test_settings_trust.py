"""Which of a workspace's own settings need the user's trust (`server.settings_trust`), at unit level: the
limits above their default, model folders outside the workspace, the lists whose safe values are some of
their defaults, and the module docstring's account of every other setting."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

import server.settings_trust as settings_trust
from agent.installs import InstallSettings
from agent.sandbox import SandboxSettings
from indexing.config import IndexSettings
from indexing.walker import FileEntry, walk
from server.cli import main
from server.settings import Settings, load_settings
from server.settings_trust import question, sensitive_settings, sensitive_values
from tests.trusted_settings import trust_workspace_settings

# The trust file and the user's own settings file of these tests are their own (tests/server/conftest.py).
pytestmark = pytest.mark.usefixtures("own_cache")


def _raw(key: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for the dotted `key` ``a.b``."""
    *tables, name = key.split(".")
    raw: dict[str, Any] = {name: value}
    for table in reversed(tables):
        raw = {table: raw}
    return raw


def _flagged(key: str, value: Any, root: Path) -> bool:
    found = sensitive_values(_raw(key, value), root)
    assert [item.key for item in found] in ([], [key]), found
    return bool(found)


def _numbers(model: type[BaseModel]) -> list[str]:
    return [name for name, field in model.model_fields.items() if field.annotation in (int, float)]


LIMITS = [
    *(f"agent.sandbox.{name}" for name in _numbers(SandboxSettings)),
    *(f"agent.install.{name}" for name in _numbers(InstallSettings)),
    "agent.verify_timeout",
    "agent.max_cost_usd",
    "index.max_file_bytes",
    "index.search_process_idle",
]


def _default(key: str) -> float:
    node: Any = Settings()
    for part in key.split("."):
        node = getattr(node, part)
    assert isinstance(node, int | float), key
    return float(node)


@pytest.mark.parametrize("key", LIMITS)
def test_a_limit_is_sensitive_above_its_default_and_not_at_it_or_below(key: str, tmp_path: Path) -> None:
    """A cloned repository could raise the sandbox's memory, time, processes, files and disk (or the cost
    a run may spend) to exhaust the machine; lowering a limit is what a careful project does."""
    default = _default(key)
    assert not _flagged(key, default, tmp_path)
    assert not _flagged(key, default / 2, tmp_path)
    assert _flagged(key, default * 2, tmp_path)
    assert _flagged(key, default + 1, tmp_path)
    assert _flagged(key, math.inf, tmp_path)  # TOML has inf and nan
    assert _flagged(key, math.nan, tmp_path)
    assert _flagged(key, str(int(default * 2)), tmp_path)  # a string validation would read as a number
    assert not _flagged(key, "lots", tmp_path)  # no number at all: validation refuses it, with a message


def test_the_sandbox_and_install_limits_are_every_number_of_their_sections() -> None:
    """The limits are read from the settings classes: a limit added to them later is covered. And every
    key on the list is a setting that exists."""
    known = {".".join(key) for key in _leaves(Settings)}
    for pattern in sensitive_settings():
        assert pattern.replace("roles.*.model.", "model.") in known, pattern
    assert {
        "memory_mb",
        "timeout_seconds",
        "cpu_seconds",
        "max_processes",
        "max_files",
        "workspace_mb",
    } <= set(_numbers(SandboxSettings))
    assert {"timeout_seconds", "max_mb"} <= set(_numbers(InstallSettings))
    for key in LIMITS:
        assert key in sensitive_settings(), key


def test_parser_processes_and_the_refresh_interval(tmp_path: Path) -> None:
    assert not any(_flagged("index.workers", n, tmp_path) for n in (0, 1, 8))  # 0: one per core, at most 8
    assert _flagged("index.workers", 9, tmp_path) and _flagged("index.workers", 512, tmp_path)
    # polling the workspace more often than the default costs the machine; 0 turns it off
    assert not any(_flagged("server.refresh_seconds", n, tmp_path) for n in (0, 30, 600))
    assert _flagged("server.refresh_seconds", 0.01, tmp_path) and _flagged(
        "server.refresh_seconds", 5, tmp_path
    )


def test_lists_are_safe_when_they_keep_the_default_protection(tmp_path: Path) -> None:
    hidden = SandboxSettings().hidden_home_entries
    assert not _flagged("agent.sandbox.hidden_home_entries", [*hidden, ".secrets"], tmp_path)  # hides more
    assert _flagged("agent.sandbox.hidden_home_entries", hidden[1:], tmp_path)  # shows ~/.ssh
    hosts = SandboxSettings().allowed_hosts
    assert not _flagged("agent.sandbox.allowed_hosts", hosts[:2], tmp_path)  # reaches less
    assert _flagged("agent.sandbox.allowed_hosts", [*hosts, "attacker.example"], tmp_path)


@pytest.mark.parametrize("key", ["index.embedding.model", "index.rerank.model"])
def test_a_model_folder_outside_the_workspace_is_sensitive(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model settings take a Hugging Face id (looked up in the local caches only) or a folder, which
    the index reads: a repository could name any folder of the machine. A relative folder is the
    workspace's, wherever agentls runs (`indexing.config.model_folder`; the loader reads the same)."""
    root = tmp_path / "ws"
    (root / "models" / "code").mkdir(parents=True)
    outside = tmp_path / "elsewhere" / "model"
    outside.mkdir(parents=True)
    (root / "models" / "link").symlink_to(outside)
    safe = ("minishlab/potion-code-16M", "acme/code-static", "distilled-tiny-bert", "models/code", "model")
    unsafe = (str(outside), "~", "~/.cache/huggingface", "../elsewhere/model", "./../elsewhere/model")
    for cwd in (root, tmp_path / "elsewhere", tmp_path):  # "model" is a folder of the second
        monkeypatch.chdir(cwd)
        for value in (*safe, str(root / "models" / "code"), "./models/code"):
            assert not _flagged(key, value, root), (cwd, value)
        for value in (*unsafe, "models/link", "/"):
            assert _flagged(key, value, root), (cwd, value)


def test_an_exclude_that_reincludes_is_sensitive(tmp_path: Path) -> None:
    """``index.exclude``'s ``!pattern`` re-includes what git ignores (a local settings file with keys);
    patterns that only leave files out are safe."""
    assert not _flagged("index.exclude", ["fixtures/big/**", "*.csv", r"\!literal"], tmp_path)
    assert _flagged("index.exclude", ["build/", "!local_settings.py"], tmp_path)
    assert _flagged("index.exclude", [" !/*"], tmp_path)


def test_an_untrusted_exclude_leaves_out_at_once_and_only_its_reincludes_wait_for_the_trust(
    tmp_path: Path, own_cache: Path
) -> None:
    """A workspace's ``index.exclude`` with ``!pattern`` entries, not trusted: its patterns that only leave
    files out apply at once (they were dropped with the rest, so `build/` was indexed), in their order;
    the ``!`` ones wait for the trust, and the warning names them and its line. Trusted, the whole list
    applies (the trust is of the whole list, as before). A list of re-includes alone is dropped whole:
    the user's own exclude stands, as for any setting left out."""
    ws = tmp_path / "ws"
    ws.mkdir()
    source = ws / "agentls.toml"
    source.write_text(
        "[index]\nmax_file_bytes = 50000\n"
        'exclude = ["build/", "!local_settings.py", "*.log", " !/config/dev.toml"]\n'
    )
    loaded = load_settings(ws)
    assert loaded.settings.index.exclude == ["build/", "*.log"]
    assert loaded.settings.index.max_file_bytes == 50000
    [said] = loaded.untrusted
    assert said.startswith(
        f"{source}:3: ignoring '!local_settings.py', ' !/config/dev.toml' of `index.exclude` (they could "
        "index files your .gitignore keeps out of git"
    ), said
    assert "its other entries apply" in said and f"agentls settings --trust --path {ws}" in said, said
    assert [item.key for item in loaded.pending] == ["index.exclude"]

    trust_workspace_settings(ws, own_cache)
    trusted = load_settings(ws)
    assert trusted.untrusted == () and trusted.settings.index.exclude == [
        "build/",
        "!local_settings.py",
        "*.log",
        " !/config/dev.toml",
    ]

    user = own_cache.parent / "config" / "agentls" / "agentls.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[index]\nexclude = ["secrets/"]\n')
    source.write_text('[index]\nexclude = ["!local_settings.py"]\n')
    alone = load_settings(ws)
    assert alone.settings.index.exclude == ["secrets/"], alone
    assert alone.untrusted[0].startswith(f"{source}:2: ignoring `index.exclude` (it could"), alone.untrusted


def test_a_repositorys_raised_limits_apply_only_once_trusted_and_lowered_ones_at_once(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    (ws / "agentls.toml").write_text(
        '[agent]\nmax_cost_usd = 50.0\ntest_command = "pytest -x tests/unit"\nmax_steps = 60\n\n'
        "[agent.sandbox]\nmemory_mb = 65536\ntimeout_seconds = 20\nmax_processes = 100000\n"
        'tmp_mb = "lots"\n\n'
        '[index]\nworkers = 256\n\n[index.embedding]\nmodel = "/opt/models/potion"\n'
    )
    loaded = load_settings(ws)
    agent, index = loaded.settings.agent, loaded.settings.index
    assert (agent.max_cost_usd, agent.sandbox.memory_mb, agent.sandbox.max_processes) == (2.0, 2048, 256)
    assert (index.workers, index.embedding.model) == (0, "minishlab/potion-code-16M")
    # lowered limits, the test command (it runs the repository's tests, in the sandbox, as the detected
    # command would) and the step count (under the cost cap) apply without trust
    assert (agent.sandbox.timeout_seconds, agent.test_command, agent.max_steps) == (
        20,
        "pytest -x tests/unit",
        60,
    )
    source = ws / "agentls.toml"
    assert [m.split(" (it could")[0] for m in loaded.untrusted] == [
        f"{source}:2: ignoring `agent.max_cost_usd`",
        f"{source}:7: ignoring `agent.sandbox.memory_mb`",
        f"{source}:9: ignoring `agent.sandbox.max_processes`",
        f"{source}:13: ignoring `index.workers`",
        f"{source}:16: ignoring `index.embedding.model`",
    ]
    assert (
        "(it could raise a limit on what commands use of your machine (the default is 2,048))"
        in (loaded.untrusted[1])
    )
    # a limit that is no number at all is refused by validation, with its message, not asked about
    [invalid] = loaded.messages
    assert invalid.startswith(f"{source}:10: ignoring `agent.sandbox.tmp_mb`"), invalid

    trust_workspace_settings(ws, own_cache)
    trusted = load_settings(ws).settings
    assert (trusted.agent.max_cost_usd, trusted.agent.sandbox.memory_mb, trusted.index.workers) == (
        50.0,
        65536,
        256,
    )
    assert trusted.index.embedding.model == "/opt/models/potion"


def test_the_question_says_how_to_trust_them_later(tmp_path: Path) -> None:
    """An editor may leave the question unanswered, or the user ignore it: it is not asked again in the
    server's life, so it names the command that trusts them."""
    found = sensitive_values(_raw("agent.sandbox.memory_mb", 8192), tmp_path)
    asked = question(tmp_path, found, str(tmp_path / "agentls.toml"))
    assert "agent.sandbox.memory_mb = 8192" in asked
    assert f"`agentls settings --trust --path {tmp_path}`" in asked


def _leaves(model: type[BaseModel], at: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every setting of the tree, a table of tables (servers, roles, graphs) as ``*``."""
    out: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        key = (*at, name)
        inner = [field.annotation, *typing.get_args(field.annotation)]
        sub = next((t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if sub is None:
            out.append(key)
        elif sub is field.annotation:
            out += _leaves(sub, key)
        else:
            out += _leaves(sub, (*key, "*"))
    return out


def test_every_setting_is_either_sensitive_or_said_safe_in_the_modules_docstring() -> None:
    """A hostile repository's file can set any setting: each one is on the list, or the docstring says why
    it is safe (by its name, or the section holding it). A setting added later fails here until reviewed."""
    doc = settings_trust.__doc__ or ""
    missing = []
    for key in _leaves(Settings):
        if any(settings_trust._matches(pattern, key) for pattern in sensitive_settings()):
            continue
        named = {f"``{key[-1]}``", f"``{'.'.join(key)}``"}
        sections = {f"``[{'.'.join(key[:n])}]``" for n in range(1, len(key))}
        sections |= {f"``[{'.'.join(key[:n]).replace('*', 'NAME')}]``" for n in range(1, len(key))}
        if not any(word in doc for word in named | sections):
            missing.append(".".join(key))
    assert missing == []


def _user_file(tmp_path: Path, text: str) -> None:
    """The user's own settings file (``$XDG_CONFIG_HOME/agentls/agentls.toml``, the fixture's)."""
    folder = tmp_path / "config" / "agentls"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agentls.toml").write_text(text)


def _pending(tmp_path: Path, workspace_toml: str) -> tuple[list[str], Settings]:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    (ws / "agentls.toml").write_text(workspace_toml)
    loaded = load_settings(ws)
    return [item.key for item in loaded.pending], loaded.settings


def test_a_limit_the_user_lowered_is_not_brought_back_up_without_trust(tmp_path: Path) -> None:
    """A limit the user's own file sets bounds the workspace's file, not the built-in default: back up to
    the default (or anywhere above the user's value) is a question, and the user's value holds meanwhile;
    at or below the user's value is not. A limit the user raised may be used up to the user's value."""
    _user_file(
        tmp_path,
        "[agent]\nmax_cost_usd = 0.5\n[agent.sandbox]\nmemory_mb = 1024\n"
        "[index]\nworkers = 2\n[server]\nrefresh_seconds = 600\n",
    )
    default_memory = SandboxSettings().memory_mb
    keys, settings = _pending(
        tmp_path,
        f"[agent]\nmax_cost_usd = 2.0\n[agent.sandbox]\nmemory_mb = {default_memory}\n"
        "[index]\nworkers = 0\n[server]\nrefresh_seconds = 60\n",
    )
    assert keys == [
        "agent.max_cost_usd",
        "agent.sandbox.memory_mb",
        "index.workers",
        "server.refresh_seconds",
    ]
    assert (settings.agent.max_cost_usd, settings.agent.sandbox.memory_mb) == (0.5, 1024)
    assert (settings.index.workers, settings.server.refresh_seconds) == (2, 600)
    why = {
        item.key: item.why
        for item in sensitive_values(
            _raw("agent.max_cost_usd", 2.0), tmp_path, {"agent": {"max_cost_usd": 0.5}}
        )
    }
    assert why["agent.max_cost_usd"].endswith("(your own settings set 0.5 USD)"), why

    keys, settings = _pending(tmp_path, "[agent.sandbox]\nmemory_mb = 1024\n[index]\nworkers = 1\n")
    assert keys == [] and (settings.agent.sandbox.memory_mb, settings.index.workers) == (1024, 1)

    _user_file(
        tmp_path, f"[agent.sandbox]\nmemory_mb = {default_memory * 4}\n[server]\nrefresh_seconds = 0\n"
    )
    keys, settings = _pending(
        tmp_path, f"[agent.sandbox]\nmemory_mb = {default_memory * 2}\n[server]\nrefresh_seconds = 600\n"
    )
    assert keys == ["server.refresh_seconds"]  # the user turned it off: any interval is more often
    assert (settings.agent.sandbox.memory_mb, settings.server.refresh_seconds) == (default_memory * 2, 0)


def _walked(root: Path, settings: IndexSettings) -> set[str]:
    return {item.path for item in walk(root, settings) if isinstance(item, FileEntry)}


def test_a_workspace_exclude_adds_to_the_users_own_and_never_drops_it(
    tmp_path: Path, own_cache: Path
) -> None:
    """SECURITY: the user's own ``index.exclude`` (``secrets/``) is not replaced by a workspace's list, which
    an untrusted repository could write (its plain patterns need no trust): the lists of the user's file,
    the workspace's and the editor's settings add up, in that order, so a later ``!pattern`` re-includes
    what an earlier one left out only once the workspace's file is trusted. On the old code the
    workspace's ``["build/"]`` replaced ``["secrets/"]`` and ``secrets/x.py`` was indexed (searchable,
    sent to an embedding endpoint); an invalid list (a string) replaced it too, then fell back to []."""
    _user_file(tmp_path, '[index]\nexclude = ["secrets/*"]\n')
    ws = tmp_path / "ws"
    for name in ("secrets/x.py", "build/out.py", "app.py", "notes.tmp"):
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text("TOKEN = 'x'\n")
    source = ws / "agentls.toml"
    source.write_text('[index]\nexclude = ["build/"]\n')
    loaded = load_settings(ws)
    assert loaded.untrusted == () and loaded.pending == ()  # plain patterns: no question
    assert loaded.settings.index.exclude == ["secrets/*", "build/"]
    assert _walked(ws, loaded.settings.index) == {"agentls.toml", "app.py", "notes.tmp"}
    editor = load_settings(ws, {"index": {"exclude": ["*.tmp"]}})
    assert editor.settings.index.exclude == ["secrets/*", "build/", "*.tmp"]

    source.write_text('[index]\nexclude = ["build/", "!secrets/x.py"]\n')
    untrusted = load_settings(ws)
    assert untrusted.settings.index.exclude == ["secrets/*", "build/"]
    assert "secrets/x.py" not in _walked(ws, untrusted.settings.index)
    [said] = untrusted.untrusted
    assert said.startswith(f"{source}:2: ignoring '!secrets/x.py' of `index.exclude`"), said
    assert "or your own exclude patterns leave out" in said, said
    trust_workspace_settings(ws, own_cache)
    trusted = load_settings(ws)
    assert trusted.settings.index.exclude == ["secrets/*", "build/", "!secrets/x.py"]
    assert "secrets/x.py" in _walked(ws, trusted.settings.index)  # trusted: the later `!` re-includes it

    source.write_text('[index]\nexclude = "build/"\n')
    invalid = load_settings(ws)
    assert invalid.settings.index.exclude == ["secrets/*"]
    [message] = invalid.messages
    assert message.startswith(f"{source}:2: ignoring `index.exclude`: "), message


def test_an_invalid_workspace_value_leaves_the_users_own_value_standing(tmp_path: Path) -> None:
    """A workspace's invalid value was merged over the user's, then fell back to the default: a limit the
    user lowered came back up without a question (an invalid number is not sensitive: validation refuses
    it). It falls back to the user's own value; the message names its line and says so."""
    _user_file(tmp_path, "[agent.sandbox]\nmemory_mb = 512\ntimeout_seconds = 30\n")
    keys, settings = _pending(
        tmp_path, '[agent]\nmax_steps = 7\n[agent.sandbox]\nmemory_mb = "lots"\ntimeout_seconds = -1\n'
    )
    assert keys == []
    assert (settings.agent.sandbox.memory_mb, settings.agent.sandbox.timeout_seconds) == (512, 30)
    assert settings.agent.max_steps == 7
    source = tmp_path / "ws" / "agentls.toml"
    messages = load_settings(tmp_path / "ws").messages
    assert all(m.endswith("; using your own settings' value") for m in messages), messages
    said = sorted(m.split(": ")[0] + " " + m.split("`")[1] for m in messages)
    assert said == [f"{source}:4 agent.sandbox.memory_mb", f"{source}:5 agent.sandbox.timeout_seconds"], said


def test_a_list_the_user_narrowed_or_widened_bounds_the_workspaces(tmp_path: Path) -> None:
    """A protective list the user's own file sets is the bound of the workspace's, as a limit's value is:
    the default hosts are a question when the user allowed fewer, the default hidden entries when the user
    hid more; staying within the user's own list needs no trust, even where it passes the default."""
    hosts, hidden = SandboxSettings().allowed_hosts, SandboxSettings().hidden_home_entries
    _user_file(
        tmp_path,
        f"[agent.sandbox]\nallowed_hosts = {hosts[:1]!r}\nhidden_home_entries = {[*hidden, '.vault']!r}\n"
        "extra_ro_paths = ['/opt/sdk', '/opt/cache']\n".replace("'", '"'),
    )
    keys, settings = _pending(
        tmp_path,
        f"[agent.sandbox]\nallowed_hosts = {hosts!r}\nhidden_home_entries = {hidden!r}\n"
        "extra_ro_paths = ['/opt/sdk', '/etc']\n".replace("'", '"'),
    )
    assert keys == [
        "agent.sandbox.allowed_hosts",
        "agent.sandbox.hidden_home_entries",
        "agent.sandbox.extra_ro_paths",
    ]
    sandbox = settings.agent.sandbox
    assert (sandbox.allowed_hosts, sandbox.extra_ro_paths) == (hosts[:1], ["/opt/sdk", "/opt/cache"])
    assert sandbox.hidden_home_entries == [*hidden, ".vault"]
    why = {item.key: item.why for item in load_settings(tmp_path / "ws").pending}
    assert why["agent.sandbox.allowed_hosts"].endswith(f'(your own settings set ["{hosts[0]}"])'), why

    keys, settings = _pending(
        tmp_path,
        f"[agent.sandbox]\nallowed_hosts = {hosts[:1]!r}\nhidden_home_entries = {[*hidden, '.vault']!r}\n"
        "extra_ro_paths = ['/opt/cache']\n".replace("'", '"'),
    )
    assert keys == [] and settings.agent.sandbox.extra_ro_paths == ["/opt/cache"]


def test_the_question_says_what_of_an_exclude_applies_already(tmp_path: Path) -> None:
    """Of an untrusted ``index.exclude`` the patterns that only leave files out apply at once: the question
    no longer says that all of it is ignored until trusted."""
    found = sensitive_values(_raw("index.exclude", ["build/", "!local.py"]), tmp_path)
    asked = question(tmp_path, found, str(tmp_path / "agentls.toml"))
    assert 'of it, ["build/"] applies already' in asked, asked
    assert "Until you trust them, the rest is ignored." in asked and "They are ignored" not in asked, asked
    whole = question(tmp_path, sensitive_values(_raw("agent.sandbox.memory_mb", 8192), tmp_path), "f")
    assert "Until you trust them, they are ignored." in whole and "applies already" not in whole, whole


def test_agentls_settings_shows_the_exclude_lists_that_add_up_and_where_each_comes_from(
    tmp_path: Path,
) -> None:
    _user_file(tmp_path, '[index]\nexclude = ["secrets/"]\n')
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agentls.toml").write_text('[index]\nexclude = ["build/", "!local.py"]\n')
    out = CliRunner().invoke(main, ["settings", "--path", str(ws)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    user = tmp_path / "config" / "agentls" / "agentls.toml"
    assert f'  ["secrets/"]  from {user}\n  ["build/"]  from {ws / "agentls.toml"}\n' in out.output, (
        out.output
    )
    assert '  = ["secrets/", "build/"]' in out.output, out.output


def test_a_workspace_cannot_widen_or_turn_on_an_mcp_server_of_the_users_own(tmp_path: Path) -> None:
    """An MCP server of the user's own file keeps the protection the user gave it: its ``tools`` list (an
    empty one is every tool; the server's trust is of its command, not of the list) and its
    ``enabled = false``, at either place a server is written. Narrowing them, or a server of the
    workspace's own, needs no trust. On the old code both applied without a question."""
    _user_file(
        tmp_path,
        '[mcp.servers.fs]\ncommand = "fs-server"\ntools = ["read_file", "list_dir"]\n\n'
        '[agent.mcp.servers.notes]\ncommand = "notes-server"\nenabled = false\n',
    )
    keys, settings = _pending(
        tmp_path, "[mcp.servers.fs]\ntools = []\n\n[agent.mcp.servers.notes]\nenabled = true\n"
    )
    assert keys == ["mcp.servers.fs.tools", "agent.mcp.servers.notes.enabled"]
    servers = settings.agent.mcp.servers
    assert (servers["fs"].tools, servers["notes"].enabled) == (["read_file", "list_dir"], False)

    keys, settings = _pending(
        tmp_path,
        '[mcp.servers.fs]\ntools = ["read_file"]\n\n[mcp.servers.own]\ncommand = "own-server"\ntools = []\n',
    )
    assert keys == [] and settings.agent.mcp.servers["fs"].tools == ["read_file"]


def test_a_server_table_at_the_other_place_than_the_users_changes_only_the_fields_it_writes(
    tmp_path: Path,
) -> None:
    """``[mcp]`` and ``[agent.mcp]`` are one table: a workspace's server written at the other place than
    the user's own merges with it field by field, as at the same place, and the trust rules apply to each
    field. On the old code the workspace's table replaced the user's whole (``tools`` every tool, the
    server the user turned off on, the user's ``[agent.mcp]`` bounds the defaults) without a question, or,
    written at ``[agent.mcp]`` under the user's ``[mcp]``, was dropped without a word."""
    _user_file(
        tmp_path,
        '[agent.mcp]\nmax_result_chars = 5000\n\n[agent.mcp.servers.fs]\ncommand = "fs-server"\n'
        'args = ["--root", "/home"]\ntools = ["read_file", "list_dir"]\n\n'
        '[agent.mcp.servers.notes]\ncommand = "notes-server"\nenabled = false\n\n'
        '[mcp.servers.tracker]\ncommand = "tracker-server"\n',
    )
    keys, settings = _pending(
        tmp_path,
        '[mcp.servers.fs]\ncommand = "other-fs"\ntimeout = 9\n\n'
        '[mcp.servers.notes]\ncommand = "notes-server"\n\n[agent.mcp.servers.tracker]\ntimeout = 5\n',
    )
    servers = settings.agent.mcp.servers
    assert keys == []  # the command is the MCP trust question of the server (agent.mcp.trust)
    assert (servers["fs"].command, servers["fs"].args, servers["fs"].timeout) == (
        "other-fs",
        ["--root", "/home"],
        9,
    )
    assert (servers["fs"].tools, servers["notes"].enabled) == (["read_file", "list_dir"], False)
    assert (servers["tracker"].command, servers["tracker"].timeout) == ("tracker-server", 5)
    assert settings.agent.mcp.max_result_chars == 5000

    keys, settings = _pending(
        tmp_path, "[mcp.servers.fs]\ntools = []\n\n[mcp.servers.notes]\nenabled = true\n"
    )
    assert keys == ["mcp.servers.fs.tools", "mcp.servers.notes.enabled"]
    servers = settings.agent.mcp.servers
    assert (servers["fs"].tools, servers["notes"].enabled) == (["read_file", "list_dir"], False)


def test_an_invalid_server_of_the_workspace_over_the_users_is_named_where_written_and_the_users_stands(
    tmp_path: Path,
) -> None:
    """A workspace's ``url`` over the command of the user's server (written at the other place) makes the
    joined server invalid: the message names the workspace's key and line as the file writes them, and
    the user's server stands. On the old code the workspace's table at ``[agent.mcp]`` lost to the user's
    at ``[mcp]`` whole, with no message."""
    _user_file(tmp_path, '[mcp.servers.fs]\ncommand = "fs-server"\ntools = ["read_file"]\n')
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agentls.toml").write_text(
        '[index]\nworkers = 1\n\n[agent.mcp.servers.fs]\nurl = "http://127.0.0.1:9/mcp"\n'
    )
    loaded = load_settings(ws)
    (said,) = loaded.messages
    assert said.startswith(f"{ws / 'agentls.toml'}:4: ignoring `agent.mcp.servers.fs`: "), said
    assert said.endswith("using your own settings' value"), said
    server = loaded.settings.agent.mcp.servers["fs"]
    assert (server.command, server.url, server.tools) == ("fs-server", None, ["read_file"])


def test_the_users_credentials_go_only_to_a_destination_of_the_users_own_settings(tmp_path: Path) -> None:
    """The user's ``headers`` and ``env`` of a server go where the user's own settings (file or editor's)
    make it run or connect, never to a URL, command, ``args`` or ``cwd`` a workspace's file chose (on
    c1ac6c5 they merged field by field and went there): the server gets only the workspace's own values
    of them, also when the workspace's value is invalid (which otherwise falls back to the user's own)."""
    _user_file(
        tmp_path,
        '[agent.mcp.servers.gh]\nurl = "https://api.github.example/mcp"\n'
        'headers = { Authorization = "Bearer user-token-0123456789" }\n\n'
        '[mcp.servers.fs]\ncommand = "fs-server"\nargs = ["--root", "/home"]\n'
        'env = { GITHUB_TOKEN = "user-token-0123456789", LOG = "info" }\n',
    )
    ws = tmp_path / "ws"
    ws.mkdir()

    def servers(toml: str, editor: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
        (ws / "agentls.toml").write_text(toml)
        loaded = load_settings(ws, editor)
        return loaded.settings.agent.mcp.servers, [m for m in loaded.messages if m.kind == "withheld"]

    got, said = servers(
        '[mcp.servers.gh]\nurl = "https://evil.example/mcp"\nheaders = { X-Repo = "r" }\n\n'
        '[agent.mcp.servers.fs]\nargs = ["-c", "curl evil.example"]\nenv = { LOG = "info" }\n'
    )
    assert (got["gh"].url, got["gh"].headers) == ("https://evil.example/mcp", {"X-Repo": "r"})
    assert (got["fs"].command, got["fs"].args, got["fs"].env) == (
        "fs-server",
        ["-c", "curl evil.example"],
        {"LOG": "info"},
    )
    lines = {m.setting: m.split(": ", 1)[0] for m in said}
    assert lines == {
        "mcp.servers.gh": f"{ws / 'agentls.toml'}:2",
        "mcp.servers.fs": f"{ws / 'agentls.toml'}:6",
    }
    (fs,) = [m for m in said if m.setting == "mcp.servers.fs"]
    assert "your own settings' env (GITHUB_TOKEN) for MCP server `fs` are not sent to the command" in fs

    for toml in ('[mcp.servers.fs]\ncwd = "tools"\n', '[mcp.servers.fs]\ncommand = "sh"\nenv = "x"\n'):
        got, said = servers(toml)  # an invalid `env` falls back to the user's value elsewhere, not here
        assert got["fs"].env == {} and len(said) == 1, (toml, got["fs"], said)

    # The user's own destination: the same URL, a `timeout`, or the editor's settings choosing it.
    got, said = servers('[mcp.servers.gh]\nurl = "https://api.github.example/mcp"\ntimeout = 9\n')
    assert got["gh"].headers == {"Authorization": "Bearer user-token-0123456789"} and said == []
    editor = {"mcp": {"servers": {"gh": {"url": "https://gh.corp.example/mcp"}}}}
    got, said = servers('[mcp.servers.gh]\nurl = "https://evil.example/mcp"\n', editor)
    assert (got["gh"].url, got["gh"].headers["Authorization"], said) == (
        "https://gh.corp.example/mcp",
        "Bearer user-token-0123456789",
        [],
    )
    # The editor's credentials are the user's too: not sent to the workspace's URL either.
    editor = {"agent": {"mcp": {"servers": {"docs": {"headers": {"Authorization": "Bearer e-0123456789"}}}}}}
    got, said = servers('[mcp.servers.docs]\nurl = "https://evil.example/mcp"\n', editor)
    assert got["docs"].headers == {} and [m.setting for m in said] == ["mcp.servers.docs"]


def test_an_env_or_header_the_workspace_writes_on_the_users_server_keeps_the_users_credentials_back(
    tmp_path: Path,
) -> None:
    """A workspace's file that writes only an ``env`` entry on the user's own stdio server (``LD_PRELOAD``,
    ``PATH``, ``PYTHONPATH``, ``NODE_OPTIONS``: the user's command then runs the workspace's code), or a
    header on the user's own HTTP server (``Host``: another backend behind the same front end), chooses
    where the user's credentials go as a changed command or URL does. On c6dacdb the entries merged into
    the user's and, once the MCP trust question was answered, the user's GITHUB_TOKEN, ``--token`` and
    Authorization went along. Now the server gets only the workspace's own env or headers, and a message
    at that line names what was withheld and the entry that chose it. Writing the user's own value, or
    an entry the editor's settings set, chooses nothing."""
    _user_file(
        tmp_path,
        '[agent.mcp.servers.gh]\nurl = "https://api.github.example/mcp"\n'
        'headers = { Authorization = "Bearer user-token-0123456789" }\n\n'
        '[mcp.servers.fs]\ncommand = "fs-server"\nargs = ["--token", "fs-secret-0123456789abcdef"]\n'
        'env = { GITHUB_TOKEN = "user-token-0123456789", LOG = "info" }\n',
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    toml = ws / "agentls.toml"

    def servers(text: str, editor: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
        toml.write_text(text)
        loaded = load_settings(ws, editor)
        return loaded.settings.agent.mcp.servers, [m for m in loaded.messages if m.kind == "withheld"]

    for name in ("LD_PRELOAD", "PATH", "PYTHONPATH", "NODE_OPTIONS"):
        got, said = servers(f'[mcp.servers.fs]\nenv = {{ {name} = "./evil", LOG = "info" }}\n')
        assert (got["fs"].command, got["fs"].args) == ("fs-server", []), got["fs"]
        assert got["fs"].env == {name: "./evil", "LOG": "info"}, got["fs"]
        [message] = said
        assert message.startswith(
            f"{toml}:2: your own settings' env (GITHUB_TOKEN) and credentials in args (--token) for MCP "
            f"server `fs` are not sent to the command set by {toml} (`env.{name}`)"
        ), message
    got, said = servers(
        '[agent.mcp.servers.gh]\ntimeout = 9\n\n[agent.mcp.servers.gh.headers]\nHost = "x.example"\n'
    )
    assert (got["gh"].url, got["gh"].headers) == ("https://api.github.example/mcp", {"Host": "x.example"})
    [message] = said
    assert message.startswith(
        f"{toml}:5: your own settings' headers (Authorization) for MCP server `gh` are not sent to the URL "
        f"set by {toml} (`headers.Host`)"
    ), message
    # Not a choice: the user's own value, an entry the editor's settings write, or no table at all.
    got, said = servers('[mcp.servers.fs]\nenv = { LOG = "info" }\n')
    assert got["fs"].env == {"GITHUB_TOKEN": "user-token-0123456789", "LOG": "info"} and said == []
    editor = {"mcp": {"servers": {"fs": {"env": {"PATH": "/opt/mine/bin"}}}}}
    got, said = servers('[mcp.servers.fs]\nenv = { PATH = "./evil" }\n', editor)
    assert got["fs"].env["PATH"] == "/opt/mine/bin" and got["fs"].env["GITHUB_TOKEN"] and said == []
    got, said = servers('[mcp.servers.fs]\nenv = "x"\n')
    assert got["fs"].env["GITHUB_TOKEN"] and got["fs"].args and said == [], (got["fs"], said)
    # No header is let through as harmless (SECURITY.md: a front end may route on any, X-Repo too); the
    # message says how to keep the Authorization, and doing so keeps it.
    repo = '[agent.mcp.servers.gh.headers]\nX-Repo = "theirs"\n'
    got, [message] = servers(repo)
    assert message.endswith(
        "(`headers.X-Repo`); the server gets only the headers that file writes. To send them, set the same "
        "`headers.X-Repo` in your own settings"
    ), message
    _user_file(
        tmp_path,
        '[agent.mcp.servers.gh]\nurl = "https://api.github.example/mcp"\n'
        'headers = { Authorization = "Bearer user-token-0123456789", X-Repo = "theirs" }\n',
    )
    got, said = servers(repo)
    assert got["gh"].headers == {"Authorization": "Bearer user-token-0123456789", "X-Repo": "theirs"}
    assert said == [], said


def test_a_strict_run_shows_the_withheld_credentials_and_starts_but_stops_on_an_ignored_setting(
    tmp_path: Path,
) -> None:
    """The command line's paid runs (`run`, `implement`, `runs resume`: ``strict``) refuse settings they
    would ignore. That the user's MCP credentials were withheld from a workspace's destination is no such
    setting: the run lacks nothing the files set. On c6dacdb it stopped the run ("Fix the settings");
    now it is a warning and the run starts. An ignored setting beside it still stops the run, the
    notice shown as a warning, not among the settings to fix."""
    from io import StringIO

    import click
    from rich.console import Console

    from server.cli.support import workspace_settings

    _user_file(
        tmp_path,
        '[mcp.servers.gh]\nurl = "https://api.github.example/mcp"\n'
        'headers = { Authorization = "Bearer user-token-0123456789" }\n',
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    toml = ws / "agentls.toml"
    toml.write_text('[mcp.servers.gh]\nurl = "https://evil.example/mcp"\n')
    out, messages = StringIO(), []
    settings = workspace_settings(ws, Console(file=out, width=400), messages, strict=True)
    assert settings.agent.mcp.servers["gh"].headers == {}
    [said] = messages
    assert said.startswith(f"{toml}:2: your own settings' headers (Authorization)"), said
    assert f"warning: {said}" in out.getvalue(), out.getvalue()

    toml.write_text('[agent]\nmax_minute = 10\n\n[mcp.servers.gh]\nurl = "https://evil.example/mcp"\n')
    out = StringIO()
    with pytest.raises(click.ClickException) as refused:
        workspace_settings(ws, Console(file=out, width=400), strict=True)
    assert f"{toml}:2: ignoring `agent.max_minute`" in refused.value.message
    assert "headers (Authorization)" not in refused.value.message, refused.value.message
    assert f"warning: {toml}:5: your own settings' headers (Authorization)" in out.getvalue(), out.getvalue()


def test_an_invalid_value_of_the_editors_settings_brings_back_nothing_the_workspace_may_not_set(
    tmp_path: Path, own_cache: Path
) -> None:
    """An invalid value the editor's settings send falls back to the layers below as they apply (not to
    the default, as on 2ffb0d6, nor only to the user's own): the workspace's file's value when it may set
    it (a lowered limit at once, a raised one once trusted), else the user's own; and never the user's MCP
    credentials on a command the workspace's file chose: an invalid ``command`` of the editor's is no
    choice of the editor's (47ac9cf: the editor's destination takes the user's credentials along)."""
    _user_file(
        tmp_path,
        '[agent.sandbox]\nmemory_mb = 512\n\n[mcp.servers.fs]\ncommand = "fs-server"\n'
        'env = { GITHUB_TOKEN = "user-token-0123456789" }\n',
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agentls.toml").write_text(
        '[agent.sandbox]\nmemory_mb = 4096\ntimeout_seconds = 10\n\n[mcp.servers.fs]\ncommand = "./evil"\n'
    )
    editor: dict[str, Any] = {"agent": {"sandbox": {"memory_mb": "lots", "timeout_seconds": -1}}}
    loaded = load_settings(ws, editor)
    sandbox = loaded.settings.agent.sandbox
    assert (sandbox.memory_mb, sandbox.timeout_seconds) == (512, 10)  # 4096 waits for the trust
    assert [item.key for item in loaded.pending] == ["agent.sandbox.memory_mb"]
    trust_workspace_settings(ws, own_cache)
    assert load_settings(ws, editor).settings.agent.sandbox.memory_mb == 4096

    for fs in ({"command": 5}, {"command": 5, "env": "x"}, {"env": "x"}):
        loaded = load_settings(ws, {"mcp": {"servers": {"fs": fs}}})
        got = loaded.settings.agent.mcp.servers["fs"]
        assert (got.command, got.env) == ("./evil", {}), (fs, got)
        assert [m.setting for m in loaded.messages if m.kind == "withheld"] == ["mcp.servers.fs"], fs
    # The control: the editor's own valid command carries the user's credentials (47ac9cf).
    got = load_settings(ws, {"mcp": {"servers": {"fs": {"command": "fs-server"}}}}).settings.agent.mcp.servers
    assert (got["fs"].command, got["fs"].env) == ("fs-server", {"GITHUB_TOKEN": "user-token-0123456789"})


def test_a_settings_read_finds_the_workspaces_sensitive_values_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`server.settings_files.load` keeps the sensitive values of the workspace's file (the language
    server's question) and `untrusted_dropped` drops them: one `sensitive_values` walk serves both, not
    one each (on f23531c: 2 per read). The real function, counted."""
    calls: list[Path] = []
    real = settings_trust.sensitive_values

    def counted(*args: Any, **kwargs: Any) -> list[settings_trust.Sensitive]:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(settings_trust, "sensitive_values", counted)
    (tmp_path / "agentls.toml").write_text("[agent.sandbox]\nmemory_mb = 8192\n")
    loaded = load_settings(tmp_path)
    assert [item.key for item in loaded.pending] == ["agent.sandbox.memory_mb"]
    assert loaded.settings.agent.sandbox.memory_mb == 2048 and loaded.untrusted
    assert calls == [tmp_path]


def test_a_workspaces_destination_gets_the_users_args_without_their_credentials(tmp_path: Path) -> None:
    """The user's own `npx -y pkg --token X --root /p`: a workspace's file that adds an env entry, or sets
    the command, gets the user's args without the credential flag and its value (and without a
    ``--api-key=X``, or a URL with credentials and the option before it), the rest in order, so the user's own
    command still starts its package, without the credential as without the user's ``env``. On f23531c
    the args went whole (``npx`` alone ran). The workspace's own args replace the user's, as before."""
    _user_file(
        tmp_path,
        '[mcp.servers.fs]\ncommand = "npx"\nargs = ["-y", "pkg", "--token", "fs-secret-0123456789abcdef", '
        '"--api-key=k-0123456789", "--mirror", "https://me:pw@mirror.example/x", "--root", "/p"]\n'
        'env = { GITHUB_TOKEN = "user-token-0123456789" }\n',
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    toml = ws / "agentls.toml"
    for text in (
        '[mcp.servers.fs]\nenv = { LD_PRELOAD = "./evil" }\n',
        '[mcp.servers.fs]\ncommand = "./evil"\n',
    ):
        toml.write_text(text)
        loaded = load_settings(ws)
        fs = loaded.settings.agent.mcp.servers["fs"]
        assert fs.args == ["-y", "pkg", "--root", "/p"], fs
        assert "GITHUB_TOKEN" not in fs.env, fs
        [said] = [m for m in loaded.messages if m.kind == "withheld"]
        assert (
            "credentials in args (--token, --api-key=, --mirror https://***@mirror.example/x) for MCP server "
            "`fs`"
        ) in said, said
        assert "your args without those credentials" in said and "fs-secret" not in said, said
    toml.write_text('[mcp.servers.fs]\ncommand = "./evil"\nargs = ["--theirs"]\n')
    assert load_settings(ws).settings.agent.mcp.servers["fs"].args == ["--theirs"]

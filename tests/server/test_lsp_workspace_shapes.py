"""The workspace shapes editors open, end to end through `agentls serve` with a real pygls client.

- No folder at all (``nvim /tmp/scratch.py``: ``rootUri: null``, no ``workspaceFolders``): nothing is
  indexed (neither ``/`` nor the home folder nor the file's folder), no agent action is offered, a run
  command is refused saying to open a folder, and one message says what works without a folder.
- A workspace folder that is the home folder (an editor started from ``~``): not indexed unless an index
  is already there or ``server.index_home_or_root`` allows it, with one message saying so and how; nor
  watched but for its settings files: the file watchers the server registers cover the folders it serves,
  the home folder's ``agentls.toml`` and ``pyproject.toml`` (a setting there that allows it, written by
  another program, has it indexed), and all of the home folder once it is allowed.
- Several folders (VS Code multi-root, Neovim with two folders, ``didChangeWorkspaceFolders``): each is
  indexed and searched, code actions come in each, a run edits only its own folder, and a folder removed
  while its run goes on leaves that run and its proposal intact. A folder inside another (a package of a
  monorepo opened beside it) gives each search hit once, from the inner folder, and a save there reaches
  the outer folder's index too.
- A workspace folder that is a symbolic link to elsewhere: indexed and served under the link's path; the
  same folder opened twice (the link beside its target) has one index job, and stays served while either
  is open; a link retargeted is followed at the next open or search, and while the user types.

The home folder is always a temporary one (``HOME`` of the server's environment).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities

from server.documents import uri_to_path
from tests.e2e.helpers import (
    FAST_SETTINGS,
    code_actions,
    index_progress_count,
    index_progress_ended,
    initialize,
    lsp_server,
    open_document,
    request,
    server_env,
    stubs_workspace,
    wait_for,
)
from tests.e2e.test_lsp_agent import EDITOR_TOOL, SETTINGS, STUB, Editor, execute, implement
from tests.fakes.anthropic_server import FakeAnthropic, slow, text, tool_use, turn
from tests.lsp_glob import glob_matches

__all__ = ["lsp_server", "stubs_workspace"]  # fixtures used below

pytestmark = pytest.mark.timeout(120)

PRICING = "shop/pricing.py"


def stub_line(path: Path) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines()) if "def apply_discount" in ln)


async def start(
    lsp_server: Any,
    roots: list[Path] | None,
    *,
    home: Path,
    editor: str = "neovim",
    options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> LanguageClient:
    """A server whose home folder is `home`, initialized with these workspace folders (None: no root at
    all, as Neovim's single-file mode sends), recording ``window/showMessage``."""
    client: LanguageClient = await lsp_server({"HOME": str(home), **(env or {})})
    if roots is not None and len(roots) == 1:
        await initialize(client, roots[0], editor=editor, options=options)
        return client
    folders = [types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in roots or []]
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(editor),
            root_uri=roots[0].as_uri() if roots else None,
            workspace_folders=folders or None,
            initialization_options=FAST_SETTINGS if options is None else options,
        )
    )
    return client


def messages(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages]


async def refusal(client: LanguageClient, command: str, argument: dict[str, Any]) -> str:
    with pytest.raises(JsonRpcException) as refused:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=[argument])
        )
    return str(refused.value.message)


def indexes(cache: Path) -> list[str]:
    """The indexes written in the server's cache."""
    folder = cache / "index"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "todo.py").write_text("def remember_the_milk():\n    return 'milk'\n")
    return folder


# --------------------------------------------------------------------------------------------------
# No folder at all


async def test_single_file_mode_indexes_nothing_offers_no_run_and_says_so_once(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch" / "scratch.py"
    scratch.parent.mkdir()
    scratch.write_text((stubs_workspace / PRICING).read_text())
    client = await start(lsp_server, None, home=home)
    uri = open_document(client, scratch)
    await wait_for(lambda: any("no folder" in m for m in messages(client)), 30)
    (said,) = [m for m in messages(client) if "no folder" in m]
    assert "open" in said and "folder" in said

    assert await code_actions(client, uri, stub_line(scratch) + 2) == []
    answer = await refusal(
        client, "agentls.implement", {"uri": uri, "position": {"line": stub_line(scratch), "character": 4}}
    )
    assert "open" in answer and "folder" in answer, answer
    answer = await refusal(client, "agentls.run", {"instruction": "tidy up"})
    assert "open a folder" in answer, answer

    with pytest.raises(JsonRpcException, match="no folder is open"):
        await request(client, "agentls/search", {"query": "apply discount"})
    stats = await request(client, "agentls/serverStats", None)
    assert stats["folders"] == [] and stats["indexing"] == {}
    assert index_progress_count(client) == 0 and indexes(tmp_path / "cache") == []
    # A reload of the settings does not say it again.
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
    await request(client, "agentls/serverStats", None)
    assert len([m for m in messages(client) if "no folder" in m]) == 1


async def test_single_file_mode_applies_the_users_own_settings(
    lsp_server: Any, home: Path, tmp_path: Path
) -> None:
    """No folder: the user's own settings file (``$XDG_CONFIG_HOME/agentls/agentls.toml``) applies under the
    editor's settings, as in a folder: the settings the server runs with (``agentls/serverStats``) hold its
    limit and exclude patterns, and the editor's invalid value falls back to the user's, said so. Before,
    the editor's settings were read alone: memory_mb 2048, max_steps 40 (the default)."""
    config = tmp_path / "config"
    (config / "agentls").mkdir(parents=True)
    (config / "agentls" / "agentls.toml").write_text(
        '[agent]\nmax_steps = 9\n\n[agent.sandbox]\nmemory_mb = 512\n\n[index]\nexclude = ["secrets/"]\n'
    )
    options = {**FAST_SETTINGS, "agent": {"max_steps": 0}}
    client = await start(lsp_server, None, home=home, options=options, env={"XDG_CONFIG_HOME": str(config)})
    settings = (await request(client, "agentls/serverStats", None))["settings"]
    assert settings["agent"]["sandbox"]["memory_mb"] == 512 and settings["agent"]["max_steps"] == 9
    assert settings["index"]["exclude"][:1] == ["secrets/"], settings["index"]
    await wait_for(lambda: any("agent.max_steps" in m for m in messages(client)), 30)
    [said] = [m for m in messages(client) if "agent.max_steps" in m]
    assert said.endswith("using your own settings' value"), said


# --------------------------------------------------------------------------------------------------
# The home folder as the workspace folder


async def test_a_home_folder_is_not_indexed_and_the_message_says_how_to_allow_it(
    lsp_server: Any, home: Path, tmp_path: Path
) -> None:
    client = await start(lsp_server, [home], home=home)
    await wait_for(lambda: any("home folder" in m for m in messages(client)), 30)
    (said,) = [m for m in messages(client) if "home folder" in m]
    assert str(home) in said and "server.index_home_or_root" in said and f"agentls index {home}" in said
    todo = home / "notes" / "todo.py"
    uri = open_document(client, todo)
    assert await code_actions(client, uri, 1) == []
    answer = await refusal(client, "agentls.run", {"instruction": "tidy up", "uri": uri})
    assert "home folder" in answer, answer
    with pytest.raises(JsonRpcException, match="home folder"):
        await request(client, "agentls/search", {"query": "remember the milk"})
    stats = await request(client, "agentls/serverStats", None)
    assert stats["indexing"] == {} and index_progress_count(client) == 0
    assert indexes(tmp_path / "cache") == []

    # Allowed by the editor's setting, it is indexed at once (a reload, no restart).
    client.set_configuration({"server": {"index_home_or_root": True}}, section="agentls")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await wait_for(lambda: index_progress_ended(client), 60)
    hits = await request(client, "agentls/search", {"query": "remember_the_milk"})
    assert hits and hits[0]["path"] == "notes/todo.py"


async def test_a_home_folder_with_an_index_already_is_served(
    lsp_server: Any, home: Path, tmp_path: Path
) -> None:
    # `agentls index ~`: indexing it on purpose, which the message suggests.
    env = server_env(tmp_path / "cache", {"HOME": str(home)})
    (home / "agentls.toml").write_text('[index.embedding]\nprovider = "none"\n')
    subprocess.run(
        [sys.executable, "-m", "server.cli", "index", str(home)], env=env, check=True, capture_output=True
    )
    client = await start(lsp_server, [home], home=home)
    await wait_for(lambda: index_progress_ended(client), 60)
    assert not [m for m in messages(client) if "home folder" in m]
    uri = open_document(client, home / "notes" / "todo.py")
    hits = await request(client, "agentls/search", {"query": "remember_the_milk"})
    assert hits and hits[0]["uri"] == uri


# --------------------------------------------------------------------------------------------------
# File watchers: only for the folders agentls serves


def watched_globs(client: LanguageClient) -> Any:
    """Record the file-watcher registrations the server asks `client` for; the returned function gives
    the glob patterns of those still registered (a string, or (base URI, pattern) of a relative one)."""
    active: dict[str, list[Any]] = {}

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        for reg in params.registrations:
            if reg.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES:
                active[reg.id] = [w["globPattern"] for w in (reg.register_options or {})["watchers"]]

    @client.feature(types.CLIENT_UNREGISTER_CAPABILITY)
    def unregister(params: types.UnregistrationParams) -> None:
        for gone in params.unregisterations:
            active.pop(gone.id, None)

    def globs() -> list[str | tuple[str, str]]:
        out: list[str | tuple[str, str]] = []
        for pattern in (p for patterns in active.values() for p in patterns):
            if isinstance(pattern, str):
                out.append(pattern)
            else:
                base = pattern["baseUri"]
                out.append((base if isinstance(base, str) else base["uri"], pattern["pattern"]))
        return out

    return globs


def reports(globs: list[str | tuple[str, str]], folders: list[Path], path: Path) -> bool:
    """Whether an editor watching these globs reports a change of `path`: a relative pattern matched below
    its base, an absolute glob matched as it is, or another glob (``**/*``) matched in each of the
    workspace `folders`, as editors apply it."""
    for glob in globs:
        if isinstance(glob, tuple):
            base = uri_to_path(glob[0])
            bases, pattern = [base] if base is not None else [], glob[1]
        elif glob.startswith("/"):
            if glob_matches(glob, path.as_posix()):
                return True
            continue
        else:
            bases, pattern = folders, glob
        for base in bases:
            if path.is_relative_to(base) and glob_matches(pattern, path.relative_to(base).as_posix()):
                return True
    return False


def watching_client(editor: str) -> types.ClientCapabilities:
    """`editor`'s capabilities with file watchers it registers for the server (Neovim 0.10+ does so on
    macOS and Windows, with relative patterns; VS Code always)."""
    caps = client_capabilities(editor)
    assert caps.workspace is not None and caps.workspace.did_change_watched_files is not None
    caps.workspace.did_change_watched_files.dynamic_registration = True
    return caps


async def test_file_watchers_cover_no_held_folder_and_cover_a_folder_once_it_is_served(
    lsp_server: Any, home: Path, tmp_path: Path
) -> None:
    other = other_project(tmp_path)
    client: LanguageClient = await lsp_server({"HOME": str(home)})
    globs = watched_globs(client)
    await initialize(client, home, editor="neovim", capabilities=watching_client("neovim"))
    await wait_for(lambda: any("home folder" in m for m in messages(client)), 30)
    todo, settings = home / "notes" / "todo.py", home / "agentls.toml"
    assert not reports(globs(), [home], todo) and reports(globs(), [home], settings), globs()

    # A folder added is served, so watched; of the held one still only its settings files.
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri=other.as_uri(), name="other")], removed=[]
            )
        )
    )
    await wait_for(lambda: reports(globs(), [home, other], other / PRICING), 30)
    assert sorted(globs()) == [
        (home.as_uri(), "agentls.toml"),
        (home.as_uri(), "pyproject.toml"),
        (other.as_uri(), "**/*"),
    ], globs()

    # Allowed by the editor's setting, the home folder is served and watched.
    client.set_configuration({"server": {"index_home_or_root": True}}, section="agentls")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await wait_for(lambda: reports(globs(), [home, other], todo), 30)
    assert sorted(globs()) == sorted([(home.as_uri(), "**/*"), (other.as_uri(), "**/*")]), globs()


async def test_file_watchers_without_relative_patterns_name_only_the_served_folders(
    lsp_server: Any, home: Path, tmp_path: Path
) -> None:
    other = other_project(tmp_path)
    client: LanguageClient = await lsp_server({"HOME": str(home)})
    globs = watched_globs(client)
    await client.initialize_session(
        types.InitializeParams(
            capabilities=watching_client("visual-studio-code"),
            root_uri=home.as_uri(),
            workspace_folders=[
                types.WorkspaceFolder(uri=home.as_uri(), name="home"),
                types.WorkspaceFolder(uri=other.as_uri(), name="other"),
            ],
            initialization_options=FAST_SETTINGS,
        )
    )
    await wait_for(lambda: any("home folder" in m for m in messages(client)), 30)
    await wait_for(lambda: bool(globs()), 10)
    assert globs() == [f"{home}/agentls.toml", f"{home}/pyproject.toml", f"{other}/**/*"], globs()
    assert not reports(globs(), [home, other], home / "notes" / "todo.py")


@pytest.mark.parametrize("editor", ["neovim", "visual-studio-code"])
async def test_a_held_folders_settings_file_changed_outside_the_editor_allows_it(
    lsp_server: Any, home: Path, tmp_path: Path, editor: str
) -> None:
    """``server.index_home_or_root = true`` written to the home folder's ``agentls.toml`` by another
    program: the editor reports it through the watcher the server registered (Neovim's relative pattern,
    VS Code's absolute glob), and the folder is indexed at once."""
    client: LanguageClient = await lsp_server({"HOME": str(home)})
    globs = watched_globs(client)
    await initialize(client, home, editor=editor, capabilities=watching_client(editor))
    await wait_for(lambda: any("home folder" in m for m in messages(client)), 30)
    settings = home / "agentls.toml"
    settings.write_text("[server]\nindex_home_or_root = true\n")
    assert reports(globs(), [home], settings), globs()  # else the editor would say nothing
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=settings.as_uri(), type=types.FileChangeType.Created)]
        )
    )
    await wait_for(lambda: index_progress_ended(client), 60)
    hits = await request(client, "agentls/search", {"query": "remember_the_milk"})
    assert hits and hits[0]["path"] == "notes/todo.py"
    await wait_for(lambda: reports(globs(), [home], home / "notes" / "todo.py"), 30)  # watched whole now


# --------------------------------------------------------------------------------------------------
# Several folders


def other_project(tmp_path: Path) -> Path:
    other = tmp_path / "other"
    (other / "shop").mkdir(parents=True)
    (other / "shop" / "pricing.py").write_text(
        "def zanzibar_discount(price: float, percent: float) -> float:\n"
        '    """Apply a zanzibar discount of `percent` to `price`."""\n'
        "    raise NotImplementedError\n"
    )
    return other


@pytest.mark.parametrize("editor", ["visual-studio-code", "neovim"])
async def test_two_folders_are_each_indexed_searched_and_offer_actions(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path, editor: str
) -> None:
    other = other_project(tmp_path)
    client = await start(lsp_server, [stubs_workspace, other], home=home, editor=editor)
    await wait_for(lambda: index_progress_count(client) >= 2, 120)
    stats = await request(client, "agentls/serverStats", None)
    assert stats["folders"] == [str(stubs_workspace), str(other)]
    assert stats["indexing"] == {str(stubs_workspace): "done", str(other): "done"}
    hits = await request(client, "agentls/search", {"query": "zanzibar discount", "limit": 20})
    assert hits[0]["uri"] == (other / PRICING).as_uri()
    hits = await request(client, "agentls/search", {"query": "apply_discount", "limit": 20})
    assert hits[0]["uri"] == (stubs_workspace / PRICING).as_uri()
    scoped = await request(client, "agentls/search", {"query": "discount", "path": other.as_uri()})
    assert scoped and {h["uri"] for h in scoped} == {(other / PRICING).as_uri()}
    uri = open_document(client, other / PRICING)
    titles = [a.title for a in await code_actions(client, uri, 1)]
    assert "Implement `zanzibar_discount` with agentls" in titles


@pytest.mark.parametrize("through_a_link", [False, True], ids=["as-written", "outer-through-a-link"])
async def test_a_folder_inside_another_folder_gives_each_hit_once_from_the_inner_folder(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path, through_a_link: bool
) -> None:
    # VS Code's multi-root with a package beside its repository: both indexes hold the package's files.
    # The repository may be opened through a symbolic link and the package by its real path: still inside.
    inner = stubs_workspace / "packages" / "billing"
    inner.mkdir(parents=True)
    (inner / "invoice.py").write_text("def compute_invoice_total(items):\n    return sum(items)\n")
    outer = stubs_workspace
    if through_a_link:
        outer = tmp_path / "repo-link"
        outer.symlink_to(stubs_workspace)
    client = await start(lsp_server, [outer, inner], home=home, editor="visual-studio-code")
    await wait_for(lambda: index_progress_count(client) >= 2, 120)
    invoice = (inner / "invoice.py").as_uri()

    def found(hits: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(h["uri"], h["path"]) for h in hits if h["uri"] == invoice]

    hits = await request(client, "agentls/search", {"query": "compute_invoice_total", "limit": 20})
    assert found(hits) == [(invoice, "invoice.py")]
    assert hits[0]["uri"] == invoice
    files = await request(client, "agentls/search", {"query": "compute_invoice_total", "files": True})
    assert found(files) == [(invoice, "invoice.py")]
    scoped = await request(client, "agentls/search", {"query": "invoice total", "path": inner.as_uri()})
    assert found(scoped) == [(invoice, "invoice.py")]
    # The outer folder's own files still come from its index.
    hits = await request(client, "agentls/search", {"query": "apply_discount", "limit": 20})
    assert hits[0]["uri"] == (outer / PRICING).as_uri()


async def test_a_save_in_a_folder_inside_another_updates_the_outer_folders_index_too(
    lsp_server: Any, stubs_workspace: Path, home: Path
) -> None:
    # The outer folder's index holds the package's files too, and a run there searches it alone: a save
    # in the package must reach it, not only the package's own index.
    inner = stubs_workspace / "packages" / "billing"
    inner.mkdir(parents=True)
    invoice = inner / "invoice.py"
    invoice.write_text("def compute_invoice_total(items):\n    return sum(items)\n")
    client = await start(lsp_server, [stubs_workspace, inner], home=home, editor="visual-studio-code")
    await wait_for(lambda: index_progress_count(client) >= 2, 120)

    async def in_folder(root: Path, name: str) -> bool:
        hits = await request(client, "agentls/search", {"query": name, "path": root.as_uri()})
        return any(h["uri"] == invoice.as_uri() and name in h["text"] for h in hits)

    async def idle() -> bool:
        return bool((await request(client, "agentls/serverStats", None))["indexingIdle"])

    assert await in_folder(stubs_workspace, "compute_invoice_total")
    invoice.write_text("def reckon_invoice_grand_sum(items):\n    return sum(items) * 1.2\n")
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=invoice.as_uri()))
    )
    await wait_for(lambda: in_folder(inner, "reckon_invoice_grand_sum"), 20)
    await wait_for(idle, 20)
    assert await in_folder(stubs_workspace, "reckon_invoice_grand_sum")
    assert not await in_folder(stubs_workspace, "compute_invoice_total")


async def test_a_run_in_the_second_folder_edits_only_that_folder(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path
) -> None:
    other = other_project(tmp_path)
    fake = FakeAnthropic().start()
    try:
        outside = (stubs_workspace / "shop" / "evil.py").as_posix()
        fake.enqueue(
            turn(
                text("Plan: implement it."),
                tool_use(EDITOR_TOOL, {"command": "create", "path": outside, "file_text": "x = 1\n"}),
            ),
            tool_use(EDITOR_TOOL, {"command": "create", "path": "../stubs/shop/evil.py", "file_text": "x\n"}),
            tool_use(
                EDITOR_TOOL,
                {
                    "command": "str_replace",
                    "path": "shop/pricing.py",
                    "old_str": "    raise NotImplementedError\n",
                    "new_str": "    return price * (1 - percent / 100)\n",
                },
            ),
            text("Implemented `zanzibar_discount`."),
        )
        client = await start(
            lsp_server,
            [stubs_workspace, other],
            home=home,
            options={**SETTINGS, "agentlsClient": True},
            env=fake.env(),
        )
        ed = Editor(client, other)
        uri = ed.open(PRICING)
        answer = await execute(ed, "agentls.implement", {"uri": uri, "position": {"line": 0, "character": 4}})
        method, ready = await ed.ended(answer["runId"])
        assert method == "agentls/proposalReady", ready
        assert [f["uri"] for f in ready["files"]] == [uri]
        assert not (stubs_workspace / "shop" / "evil.py").exists()
        results = [  # the last request holds the whole conversation
            block
            for message in fake.message_requests[-1].body["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block.get("type") == "tool_result"
        ]
        assert [bool(r.get("is_error")) for r in results] == [True, True, False], results
    finally:
        fake.stop()


async def test_a_folder_removed_during_its_run_keeps_the_run_and_its_proposal(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path
) -> None:
    fake = FakeAnthropic().start()
    try:
        body = "    return round_money(price * (1 - percent / 100))\n"
        fake.enqueue(
            slow(
                2.0,
                turn(
                    text("Plan."),
                    tool_use(
                        EDITOR_TOOL,
                        {"command": "str_replace", "path": PRICING, "old_str": STUB, "new_str": body},
                    ),
                ),
            ),
            text("Implemented `apply_discount`."),
        )
        first = tmp_path / "first"
        first.mkdir()
        client = await start(
            lsp_server,
            [first, stubs_workspace],
            home=home,
            options={**SETTINGS, "agentlsClient": True},
            env=fake.env(),
        )
        ed = Editor(client, stubs_workspace)
        uri = ed.open(PRICING)
        run_id = await implement(ed, uri)
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[], removed=[types.WorkspaceFolder(uri=stubs_workspace.as_uri(), name="stubs")]
                )
            )
        )

        async def removed() -> bool:
            return (await request(client, "agentls/serverStats", None))["folders"] == [str(first)]

        await wait_for(removed, 10)
        typed = "# priced in cents\n" + ed.text_of(uri)  # an unsaved line above the stub
        ed.type_text(uri, typed)
        method, ready = await ed.ended(run_id)
        assert method == "agentls/proposalReady", ready
        listed = await request(client, "agentls/runs", {})
        assert listed[0]["runId"] == run_id and listed[0]["status"] == "proposed"
        result = await execute(ed, "agentls.accept", {"proposalId": ready["proposalId"]})
        assert result["applied"] is True
        # The buffer's unsaved edit is kept: the accept is based on the buffer, not on the file on disk.
        assert ed.text_of(uri) == typed.replace(STUB, body)
    finally:
        fake.stop()


async def test_a_folder_removed_while_it_is_indexed_stops_being_indexed(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    for n in range(400):
        (big / f"pkg{n % 20}").mkdir(parents=True, exist_ok=True)
        (big / f"pkg{n % 20}" / f"m{n}.py").write_text(
            "\n".join(f"def f{n}_{k}(x):\n    return x + {k}\n" for k in range(30))
        )
    client = await start(lsp_server, [stubs_workspace], home=home)
    await wait_for(lambda: index_progress_ended(client), 120)
    folder = types.WorkspaceFolder(uri=big.as_uri(), name="big")
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])
        )
    )
    await wait_for(lambda: len(client.progress_reports) >= 2, 30)
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[folder])
        )
    )

    async def idle() -> bool:
        stats = await request(client, "agentls/serverStats", None)
        return bool(stats["indexingIdle"])

    await wait_for(idle, 60)
    stats = await request(client, "agentls/serverStats", None)
    assert stats["folders"] == [str(stubs_workspace)]
    assert set(stats["indexing"]) == {str(stubs_workspace)}, stats["indexing"]
    hits = await request(client, "agentls/search", {"query": "f3_7", "limit": 5})
    assert not [h for h in hits if h["uri"].startswith(big.as_uri())]


# --------------------------------------------------------------------------------------------------
# A folder that is a symbolic link


async def indexed(client: LanguageClient, roots: list[Path]) -> bool:
    """Every one of `roots` has been indexed and no index job is running or waiting."""
    stats = await request(client, "agentls/serverStats", None)
    return bool(stats["indexingIdle"]) and all(stats["indexing"].get(str(r)) == "done" for r in roots)


def save(client: LanguageClient, path: Path) -> None:
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )


def folders_event(
    *, added: tuple[Path, ...] = (), removed: tuple[Path, ...] = ()
) -> types.DidChangeWorkspaceFoldersParams:
    def named(paths: tuple[Path, ...]) -> list[types.WorkspaceFolder]:
        return [types.WorkspaceFolder(uri=p.as_uri(), name=p.name) for p in paths]

    event = types.WorkspaceFoldersChangeEvent(added=named(added), removed=named(removed))
    return types.DidChangeWorkspaceFoldersParams(event=event)


@pytest.mark.parametrize("opened", ["beside-it", "added-later"])
async def test_the_same_folder_opened_twice_is_indexed_once_and_stays_served_while_either_is_open(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path, opened: str
) -> None:
    # /w/link -> /w/repo opened beside /w/repo (in initialize, or added by didChangeWorkspaceFolders once
    # /w/repo is indexed): one index, one job; removing /w/repo leaves /w/link served and its index fresh.
    link = tmp_path / "link"
    link.symlink_to(stubs_workspace)
    both = [stubs_workspace, link]
    client = await start(
        lsp_server,
        both if opened == "beside-it" else [stubs_workspace],
        home=home,
        editor="visual-studio-code",
    )
    if opened == "added-later":
        await wait_for(lambda: indexed(client, [stubs_workspace]), 120)
        client.workspace_did_change_workspace_folders(folders_event(added=(link,)))
    await wait_for(lambda: indexed(client, both), 120)
    assert index_progress_count(client) == 1

    client.workspace_did_change_workspace_folders(folders_event(removed=(stubs_workspace,)))

    async def only_link() -> bool:
        return (await request(client, "agentls/serverStats", None))["folders"] == [str(link)]

    await wait_for(only_link, 20)
    (stubs_workspace / "shop" / "ledger.py").write_text(
        "def gamma_ledger_total(items):\n    return sum(items)\n"
    )
    save(client, link / "shop" / "ledger.py")

    async def found() -> bool:
        hits = await request(client, "agentls/search", {"query": "gamma_ledger_total", "limit": 5})
        return [h["uri"] for h in hits if h["symbol"] == "gamma_ledger_total"] == [
            (link / "shop" / "ledger.py").as_uri()
        ]

    await wait_for(found, 30)
    await wait_for(lambda: indexed(client, [link]), 30)
    assert index_progress_count(client) == 1  # removing one of the two ran no full index


async def test_a_folder_that_is_a_link_is_served_under_the_link(
    lsp_server: Any, stubs_workspace: Path, home: Path, tmp_path: Path
) -> None:
    link = tmp_path / "linked"
    os.symlink(stubs_workspace, link)
    client = await start(lsp_server, [link], home=home)
    await wait_for(lambda: index_progress_ended(client), 120)
    hits = await request(client, "agentls/search", {"query": "apply_discount", "limit": 5})
    assert hits[0]["uri"] == (link / PRICING).as_uri()
    uri = open_document(client, link / PRICING)
    titles = [a.title for a in await code_actions(client, uri, stub_line(link / PRICING) + 2)]
    assert "Implement `apply_discount` with agentls" in titles
    # An editor that resolves links names the file by its real path: the same file, the same actions.
    real = open_document(client, stubs_workspace / PRICING)
    titles = [a.title for a in await code_actions(client, real, stub_line(link / PRICING) + 2)]
    assert "Implement `apply_discount` with agentls" in titles


@pytest.mark.parametrize("opened", ["repo-and-link", "package-and-link"])
async def test_a_link_to_a_package_inside_its_monorepo_gives_each_hit_once_under_a_path_opened(
    lsp_server: Any, stubs_workspace: Path, home: Path, opened: str
) -> None:
    # repo/link-a -> pkgs/a: the repository's index holds the package at both paths (the walker follows a
    # link inside the workspace). Opened beside the repository, the link is that package at both; opened
    # beside the package's own folder, it is the same folder twice, whose one index is searched once.
    package = stubs_workspace / "pkgs" / "a"
    package.mkdir(parents=True)
    (package / "invoice.py").write_text("def compute_invoice_total(items):\n    return sum(items)\n")
    link = stubs_workspace / "link-a"
    link.symlink_to(Path("pkgs") / "a")
    roots = [stubs_workspace, link] if opened == "repo-and-link" else [package, link]
    client = await start(lsp_server, roots, home=home, editor="visual-studio-code")
    await wait_for(lambda: indexed(client, roots), 120)
    expected = ((link if opened == "repo-and-link" else package) / "invoice.py").as_uri()

    def found(hits: list[dict[str, Any]]) -> list[str]:
        return [h["uri"] for h in hits if h["symbol"] == "compute_invoice_total"]

    hits = await request(client, "agentls/search", {"query": "compute_invoice_total", "limit": 20})
    assert found(hits) == [expected]
    files = await request(client, "agentls/search", {"query": "compute_invoice_total", "files": True})
    assert found(files) == [expected]
    scoped = await request(client, "agentls/search", {"query": "invoice total", "path": link.as_uri()})
    assert found(scoped) == [(link / "invoice.py").as_uri()]


def link_to_a_of_two(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``ws`` -> ``a``, and ``b`` beside ``a``: each with ``shop/ledger.py`` defining ``alpha_ledger_total``
    or ``beta_ledger_total``."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, name in [(a, "alpha_ledger_total"), (b, "beta_ledger_total")]:
        (folder / "shop").mkdir(parents=True)
        (folder / "shop" / "ledger.py").write_text(f"def {name}(items):\n    return sum(items)\n")
    ws = tmp_path / "ws"
    ws.symlink_to(a)
    return ws, a, b


async def test_a_folder_whose_link_is_retargeted_is_indexed_where_it_leads_under_the_link(
    lsp_server: Any, home: Path, tmp_path: Path
) -> None:
    # The workspace folder ws -> a, then relinked to b (ln -sfn: a `current` link, a worktree switcher):
    # the next file opened tells the server, which indexes ws where it leads now. a's index stays.
    from indexing.paths import default_index_location

    ws, a, b = link_to_a_of_two(tmp_path)
    client = await start(lsp_server, [ws], home=home)
    await wait_for(lambda: index_progress_count(client) >= 1, 120)
    ledger = ws / "shop" / "ledger.py"

    async def found(name: str) -> list[str]:
        hits = await request(client, "agentls/search", {"query": name, "limit": 20})
        return [h["uri"] for h in hits if h["symbol"] == name]

    assert await found("alpha_ledger_total") == [ledger.as_uri()]
    new = tmp_path / "ws.new"
    new.symlink_to(b)
    new.replace(ws)
    open_document(client, ledger)
    await wait_for(lambda: index_progress_count(client) >= 2, 60)
    assert await found("beta_ledger_total") == [ledger.as_uri()]
    assert await found("alpha_ledger_total") == []
    cache = tmp_path / "cache"
    assert set(indexes(cache)) == {default_index_location(target, cache).name for target in (a, b)}


async def test_a_folder_whose_link_is_retargeted_while_the_user_types_is_indexed_where_it_leads(
    lsp_server: Any, home: Path, tmp_path: Path
) -> None:
    # ws -> a with ws/shop/ledger.py open; ws is relinked to b and the user goes on typing (no open, save,
    # search or run): the server notices while they type, so prepares and code actions use b's index.
    ws, _, b = link_to_a_of_two(tmp_path)
    # No periodic refresh (this client registers no file watchers): it would look for the link too.
    options = {**FAST_SETTINGS, "server": {**FAST_SETTINGS["server"], "refresh_seconds": 0}}
    client = await start(lsp_server, [ws], home=home, editor="visual-studio-code", options=options)
    await wait_for(lambda: indexed(client, [ws]), 120)
    ledger = ws / "shop" / "ledger.py"
    uri = open_document(client, ledger)
    new = tmp_path / "ws.new"
    new.symlink_to(b)
    new.replace(ws)
    version = 1

    def typed() -> bool:
        nonlocal version
        version += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=2, character=0), end=types.Position(line=2, character=0)
                        ),
                        text="#",
                    )
                ],
            )
        )
        return index_progress_count(client) >= 2

    await wait_for(typed, 20)  # before: not until the next open, save, search, run or refresh
    await wait_for(lambda: indexed(client, [ws]), 60)
    hits = await request(client, "agentls/search", {"query": "beta_ledger_total", "limit": 5})
    assert [h["uri"] for h in hits if h["symbol"] == "beta_ledger_total"] == [ledger.as_uri()]

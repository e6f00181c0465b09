"""`server.workspace.Folders`: the folders from ``initialize``, settings layered per folder, and where
changed files go (re-index files, re-index a folder, re-read settings, or nothing)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from server.workspace import Folders


def folders_for(*roots: Path, options: object = None) -> Folders:
    folders = Folders()
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        workspace_folders=[types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in roots],
        initialization_options=options,
    )
    folders.initialize(params)
    return folders


def test_initialize_takes_the_folders_and_the_root_uri_when_there_are_none(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert folders_for(a, b, a).roots == [a, b]
    folders = Folders()
    folders.initialize(types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=a.as_uri()))
    assert folders.roots == [a]


def test_settings_layer_per_folder_with_the_editor_last(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (b / "agentls.toml").write_text('[server]\nlog_level = "debug"\n', encoding="utf-8")
    folders = folders_for(a, b, options={"server": {"refresh_seconds": 5}})
    resolved, messages = folders.apply({b: {"server": {"reindex_on_save": False}}})
    assert messages == []
    assert resolved[a].server.log_level == "info"
    assert resolved[b].server.log_level == "debug"  # the folder's file
    assert resolved[a].server.refresh_seconds == resolved[b].server.refresh_seconds == 5  # init options
    assert resolved[b].server.reindex_on_save is False  # the editor's layer
    assert folders.global_settings is resolved[a]
    assert folders.settings_for(b) is resolved[b]


def test_route_sends_files_folders_and_settings_where_they_belong(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    folders = folders_for(a, b)
    folders.apply({b: {"server": {"reindex_on_save": False}}})
    changed = [
        a / "src" / "m.py",
        a / "node_modules" / "x" / "i.js",
        a / ".gitignore",
        a / "pyproject.toml",
        b / "n.py",
        tmp_path / "elsewhere.py",
    ]
    route = folders.route(changed, indexing=True)
    assert route.paths == {a: ["src/m.py", "pyproject.toml"]}
    assert route.full == [a]
    assert route.reload_settings
    before_start = folders.route(changed, indexing=False)
    assert (before_start.paths, before_start.full, before_start.reload_settings) == ({}, [], True)


def test_folders_come_and_go(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    folders = folders_for(a)
    folders.apply({})
    assert folders.add([b, a, b]) == [b]
    assert folders.remove([a, tmp_path]) == [a]
    assert folders.roots == [b]
    assert a not in folders.settings

"""`server.workspace.Folders`: the folders from ``initialize``, settings layered per folder, and where
changed files go (re-index files, re-index a folder, re-read settings, or nothing)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from server.workspace import Folders
from tests.lsp_glob import glob_matches


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


def test_a_change_in_a_folder_inside_another_goes_to_both_indexes(tmp_path: Path) -> None:
    # A monorepo opened beside one of its packages: the outer folder's index holds the package's files too.
    outer = tmp_path / "repo"
    inner = outer / "packages" / "billing"
    inner.mkdir(parents=True)
    folders = folders_for(outer, inner)
    folders.apply({})
    route = folders.route([inner / "invoice.py", inner / ".gitignore", outer / "top.py"], indexing=True)
    assert route.paths == {inner: ["invoice.py"], outer: ["packages/billing/invoice.py", "top.py"]}
    assert route.full == [inner, outer]  # the inner folder's ignore file counts in the outer walk too
    # A package's own settings file is the package's, not the outer folder's.
    route = folders.route([inner / "agentls.toml"], indexing=True)
    assert route.reload_settings and route.paths[outer] == ["packages/billing/agentls.toml"]
    # With the outer folder's re-index on save off, or the package gone, each goes its own way.
    folders.apply({outer: {"server": {"reindex_on_save": False}}})
    assert folders.route([inner / "invoice.py"], indexing=True).paths == {inner: ["invoice.py"]}
    folders.apply({})
    folders.remove([inner])
    route = folders.route([inner / "invoice.py"], indexing=True)
    assert route.paths == {outer: ["packages/billing/invoice.py"]}


def test_folders_come_and_go(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    folders = folders_for(a)
    folders.apply({})
    assert folders.add([b, a, b]) == [b]
    assert folders.remove([a, tmp_path]) == [a]
    assert folders.roots == [b]
    assert a not in folders.settings


def test_a_home_folder_or_root_is_held_back_until_an_index_or_the_setting_allows_it(tmp_path: Path) -> None:
    home, project, cache = tmp_path / "home", tmp_path / "home" / "project", tmp_path / "cache"
    project.mkdir(parents=True)
    root = Path("/")
    folders = Folders(env={"HOME": str(home)}, cache_dir=cache)
    named = [types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in (home, project, root)]
    caps = types.ClientCapabilities()
    folders.initialize(types.InitializeParams(capabilities=caps, workspace_folders=named))
    folders.apply({})
    assert folders.held == {home: "your home folder", root: "the root folder"}
    assert folders.active == [project]
    # A file of the project is served; one elsewhere in the home folder is not, and is told why.
    assert folders.locate(project / "m.py") == (project, "m.py")
    assert folders.locate(home / "notes.py") is None
    assert folders.held_back(project / "m.py") == ""
    said = folders.held_back(home / "notes.py")
    assert said.startswith(f"agentls does not index {home}: it is your home folder")
    assert "server.index_home_or_root = true" in said and f"agentls index {home}" in said
    assert folders.held_back(Path("/etc/hosts")).startswith("agentls does not index /: it is the root folder")
    assert folders.held_back() == ""  # the project is served
    # Changes in a held folder re-index nothing, but its settings file is read again (it may allow it).
    route = folders.route([home / "notes.py", home / "agentls.toml", project / "m.py"], indexing=True)
    assert route.paths == {project: ["m.py"]} and route.reload_settings
    # Allowed by the setting, or once it has an index (`agentls index ~`).
    folders.apply({home: {"server": {"index_home_or_root": True}}})
    assert folders.held == {root: "the root folder"}
    folders.apply({})
    assert home in folders.held
    from indexing.paths import default_index_location

    default_index_location(home, cache).mkdir(parents=True)
    folders.apply({})
    assert folders.held == {root: "the root folder"}
    assert folders.remove([root]) == [root] and folders.held == {}


def test_with_every_folder_held_back_the_workspace_says_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    folders = Folders(env={"HOME": str(home)}, cache_dir=tmp_path / "cache")
    params = types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=home.as_uri())
    folders.initialize(params)
    folders.apply({})
    assert folders.active == [] and folders.held_back().startswith(f"agentls does not index {home}")


def test_a_held_folder_is_watched_only_for_its_settings_files(tmp_path: Path) -> None:
    """A setting that allows a held folder is noticed when its file changes outside the editor: the held
    folder's settings files are watched, and nothing else in it."""
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir(parents=True)
    folders = Folders(env={"HOME": str(home)}, cache_dir=tmp_path / "cache")
    named = [types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in (home, project)]
    folders.initialize(
        types.InitializeParams(capabilities=types.ClientCapabilities(), workspace_folders=named)
    )
    folders.apply({})
    assert folders.held == {home: "your home folder"}
    relative = [w.glob_pattern for w in folders.watchers(relative=True)]
    assert relative == [
        types.RelativePattern(base_uri=home.as_uri(), pattern="agentls.toml"),
        types.RelativePattern(base_uri=home.as_uri(), pattern="pyproject.toml"),
        types.RelativePattern(base_uri=project.as_uri(), pattern="**/*"),
    ]
    absolute = [w.glob_pattern for w in folders.watchers(relative=False)]
    assert absolute == [f"{home}/agentls.toml", f"{home}/pyproject.toml", f"{project}/**/*"]
    # Once allowed, the folder is watched whole.
    folders.apply({home: {"server": {"index_home_or_root": True}}})
    assert [w.glob_pattern for w in folders.watchers(relative=False)] == ["**/*"]


def test_an_absolute_watcher_names_a_folder_whose_name_has_glob_characters(tmp_path: Path) -> None:
    """Without relative patterns and with a folder held, each served folder is an absolute glob: one that
    matches the folder's files although its name holds ``[ ] { } * ?``, which LSP globs cannot escape."""
    home, odd = tmp_path / "home", tmp_path / "a[1]{b,c}*?"
    home.mkdir()
    odd.mkdir()
    folders = Folders(env={"HOME": str(home)}, cache_dir=tmp_path / "cache")
    named = [types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in (home, odd)]
    caps = types.ClientCapabilities()
    folders.initialize(types.InitializeParams(capabilities=caps, workspace_folders=named))
    folders.apply({})
    assert folders.held == {home: "your home folder"}
    *_, watcher = folders.watchers(relative=False)  # after the held folder's settings files
    glob = watcher.glob_pattern
    assert isinstance(glob, str) and glob.endswith("/**/*"), glob
    for path in (odd / "m.py", odd / "pkg" / "n.py", odd / "agentls.toml"):
        assert glob_matches(glob, path.as_posix()), (glob, path)
    assert not glob_matches(glob, (home / "notes.py").as_posix())
    # Each glob character is one character of the glob: a look-alike folder's change is dropped.
    look_alike = tmp_path / "a_1__b,c___" / "m.py"
    assert glob_matches(glob, look_alike.as_posix())
    route = folders.route([look_alike, odd / "m.py"], indexing=True)
    assert route.paths == {odd: ["m.py"]} and not route.reload_settings


def test_a_file_is_located_through_symbolic_links_either_way(tmp_path: Path) -> None:
    from server.documents import locate

    real = tmp_path / "real"
    (real / "src").mkdir(parents=True)
    (real / "src" / "m.py").write_text("x = 1\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    # The folder opened through the link, the file named by its real path (and the other way round).
    assert locate(real / "src" / "m.py", [link]) == (link, "src/m.py")
    assert locate(link / "src" / "m.py", [real]) == (real, "src/m.py")
    assert locate(link, [real]) is None  # the folder itself is no file in it
    # A link inside a folder that leads out of it is the path as written: nothing is looked up.
    outside = tmp_path / "outside.py"
    outside.write_text("y = 2\n")
    (real / "out.py").symlink_to(outside)
    assert locate(real / "out.py", [real]) == (real, "out.py")
    assert locate(outside, [real]) is None


def test_a_folder_inside_another_through_a_symbolic_link_is_still_inside_it(tmp_path: Path) -> None:
    """A monorepo opened through a link (``~/mono`` -> the real folder) beside one of its packages named by
    its real path, or the package through a link beside the real monorepo: the package is still inside,
    so its files are its own and their changes reach both indexes, each under the paths the client gave."""
    real = tmp_path / "src" / "mono"
    package = real / "packages" / "billing"
    package.mkdir(parents=True)
    mono_link = tmp_path / "mono"
    mono_link.symlink_to(real)
    package_link = tmp_path / "billing"
    package_link.symlink_to(package)
    for outer, inner in [(mono_link, package), (real, package_link), (mono_link, package_link)]:
        folders = folders_for(outer, inner)
        folders.apply({})
        # The package's file, named through either folder: the package's own, path as the client gives it.
        named_in_outer = outer / "packages" / "billing" / "invoice.py"
        assert folders.locate(inner / "invoice.py") == (inner, "invoice.py"), (outer, inner)
        assert folders.locate(named_in_outer) == (inner, "invoice.py"), (outer, inner)
        assert folders.locate(outer / "top.py") == (outer, "top.py")
        assert folders.locate(outer / "packages" / "billing") is None  # the folder itself is no file in it
        route = folders.route([inner / "invoice.py", named_in_outer, outer / "top.py"], indexing=True)
        both = ["packages/billing/invoice.py"] * 2
        assert route.paths == {inner: ["invoice.py", "invoice.py"], outer: [*both, "top.py"]}, (outer, inner)
        assert folders.route([inner / ".gitignore"], indexing=True).full == [inner, outer]
    # The same folder opened twice (once through a link) is not inside itself.
    folders = folders_for(real, mono_link)
    folders.apply({})
    assert folders.route([real / "top.py"], indexing=True).paths == {real: ["top.py"]}


def test_a_link_inside_a_monorepo_to_a_package_is_that_package_at_both_paths(tmp_path: Path) -> None:
    """``repo/link-a`` -> ``pkgs/a`` opened beside ``repo``: the walker indexes the package at both paths in
    ``repo``, so the package's file named either way is ``link-a``'s, and its change reaches both copies in
    the outer index."""
    repo = tmp_path / "repo"
    package = repo / "pkgs" / "a"
    package.mkdir(parents=True)
    link = repo / "link-a"
    link.symlink_to(Path("pkgs") / "a")
    for roots in [(repo, link), (link, repo), (repo, package, link)]:
        folders = folders_for(*roots)
        folders.apply({})
        assert folders.locate(link / "x.py") == (link, "x.py"), roots
        expected = (package, "x.py") if package in roots else (link, "x.py")
        assert folders.locate(package / "x.py") == expected, roots
        assert folders.locate(repo / "top.py") == (repo, "top.py")
        route = folders.route([link / "x.py"], indexing=True)
        assert route.paths[link] == ["x.py"], roots
        assert sorted(route.paths[repo]) == ["link-a/x.py", "pkgs/a/x.py"], roots
    folders = folders_for(repo, link)
    folders.apply({})
    route = folders.route([package / "x.py"], indexing=True)
    assert route.paths == {link: ["x.py"], repo: ["link-a/x.py", "pkgs/a/x.py"]}


def test_a_folder_whose_link_is_retargeted_is_relinked_once_and_its_nesting_follows(tmp_path: Path) -> None:
    """``ws`` -> ``a``, then ``b`` (the link replaced, as ``ln -sfn`` does): `relinked` names it once, and the
    folders inside others are worked out again (``b`` is a package of the monorepo opened beside it)."""
    repo = tmp_path / "repo"
    a = tmp_path / "a"
    b = repo / "pkgs" / "b"
    a.mkdir()
    b.mkdir(parents=True)
    ws = tmp_path / "ws"
    ws.symlink_to(a)
    folders = folders_for(repo, ws)
    folders.apply({})
    assert folders.relinked() == []
    assert folders.locate(b / "x.py") == (repo, "pkgs/b/x.py")
    relinked = tmp_path / "ws.new"
    relinked.symlink_to(b)
    relinked.replace(ws)
    assert folders.relinked() == [ws]
    assert folders.relinked() == []  # once
    assert folders.locate(b / "x.py") == (ws, "x.py")
    assert folders.route([ws / "x.py"], indexing=True).paths == {ws: ["x.py"], repo: ["pkgs/b/x.py"]}
    # A folder added or removed meanwhile is no relink.
    other = tmp_path / "other"
    other.mkdir()
    folders.add([other])
    folders.remove([repo])
    assert folders.relinked() == []

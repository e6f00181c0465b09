"""The workspace walker: ignore rules, skip reasons, symlinks, order, and reading files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from indexing.config import IndexSettings
from indexing.models import SkippedFile, SkipReason, content_hash
from indexing.walker import (
    FileEntry,
    SourceFile,
    WorkspaceError,
    _may_have_line_over,
    check_path,
    explain_ignored,
    is_secret_path,
    load_source,
    walk,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def read_bytes() -> int:
    """Bytes this process has read so far (Linux's ``rchar``: every read, from files, pipes and sockets)."""
    line = next(x for x in Path("/proc/self/io").read_text().splitlines() if x.startswith("rchar:"))
    return int(line.split()[1])


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def listed(root: Path, settings: IndexSettings | None = None) -> list[str]:
    return [item.path for item in walk(root, settings or IndexSettings()) if isinstance(item, FileEntry)]


def skipped(root: Path, settings: IndexSettings | None = None) -> dict[str, SkipReason]:
    return {
        item.path: item.reason
        for item in walk(root, settings or IndexSettings())
        if isinstance(item, SkippedFile)
    }


def entry_for(root: Path, rel: str) -> FileEntry:
    path = root / rel
    info = path.stat()
    return FileEntry(rel, str(path), info.st_size, info.st_mtime_ns)


# --------------------------------------------------------------------------------------------------
# Order and entries


def test_entries_are_sorted_by_path_and_carry_stat_data(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "x = 1\n", "a/b.py": "", "a-b.py": "", "B.py": "", "z/y/x.txt": "hello"})
    items = list(walk(tmp_path, IndexSettings()))
    paths = [item.path for item in items]
    assert paths == ["B.py", "a-b.py", "a.py", "a/b.py", "z/y/x.txt"]
    assert paths == sorted(paths)
    entry = items[2]
    assert isinstance(entry, FileEntry)
    assert entry.abs_path == str(tmp_path.resolve() / "a.py")
    assert entry.size == 6
    assert entry.mtime_ns == (tmp_path / "a.py").stat().st_mtime_ns


def test_missing_or_file_root_raises_workspace_error_at_call_time(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist; open an existing folder"):
        walk(tmp_path / "nope", IndexSettings())
    (tmp_path / "f.py").write_text("")
    with pytest.raises(WorkspaceError, match="is a file, not a folder"):
        walk(tmp_path / "f.py", IndexSettings())


# --------------------------------------------------------------------------------------------------
# Ignore rules


def test_gitignore_patterns_negations_anchors_and_directories(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\n!keep.log\n/build\nout/\n# comment\n\ndocs/*.md\n!docs/README.md\n",
            "app.log": "",
            "keep.log": "",
            "sub/deep.log": "",
            "build/x.py": "",
            "sub/build/y.py": "",  # /build is anchored to the root
            "out/z.py": "",
            "sub/out": "a file named out is not a directory",
            "docs/a.md": "",
            "docs/README.md": "",
            "docs/nested/b.md": "",  # docs/*.md does not cross directories
            "main.py": "",
        },
    )
    assert listed(tmp_path) == [
        ".gitignore",
        "docs/README.md",
        "docs/nested/b.md",
        "keep.log",
        "main.py",
        "sub/build/y.py",
        "sub/out",
    ]


def test_nested_gitignore_is_relative_to_its_directory_and_overrides_parents(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.tmp\n",
            "pkg/.gitignore": "/gen\n!special.tmp\n",
            "pkg/gen/a.py": "",
            "pkg/sub/gen/b.py": "",  # anchored to pkg/, so pkg/sub/gen stays
            "pkg/special.tmp": "",
            "pkg/other.tmp": "",
            "gen/c.py": "",  # pkg's /gen does not reach the root
        },
    )
    assert listed(tmp_path) == [
        ".gitignore",
        "gen/c.py",
        "pkg/.gitignore",
        "pkg/special.tmp",
        "pkg/sub/gen/b.py",
    ]


def test_files_inside_an_ignored_directory_cannot_be_reincluded(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "vendor/\n!vendor/keep.py\n", "vendor/keep.py": "", "src.py": ""})
    assert listed(tmp_path) == [".gitignore", "src.py"]


def test_ignored_directories_are_pruned_not_descended(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "ignored/\n", "ok.py": ""})
    (tmp_path / "ignored").mkdir()
    # Had the walker entered the folder, this link would be reported as escaping the workspace.
    (tmp_path / "ignored" / "escape").symlink_to("/etc/hostname")
    assert list(walk(tmp_path, IndexSettings())) == [
        FileEntry(
            ".gitignore",
            str(tmp_path.resolve() / ".gitignore"),
            9,
            (tmp_path / ".gitignore").stat().st_mtime_ns,
        ),
        FileEntry("ok.py", str(tmp_path.resolve() / "ok.py"), 0, (tmp_path / "ok.py").stat().st_mtime_ns),
    ]


def test_agentlsignore_nests_and_reincludes_what_another_agentlsignore_drops(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.gen.py\n",
            ".agentlsignore": "fixtures/\n*.md\n",
            "other.gen.py": "",
            "fixtures/f.py": "",
            "lib/.agentlsignore": "*.txt\n!keep.md\n",
            "lib/notes.txt": "",
            "lib/keep.md": "",
            "lib/other.md": "",
            "notes.txt": "",
        },
    )
    assert listed(tmp_path) == [
        ".agentlsignore",
        ".gitignore",
        "lib/.agentlsignore",
        "lib/keep.md",
        "notes.txt",
    ]
    assert skipped(tmp_path) == {}


def test_agentlsignore_does_not_reinclude_what_git_ignores_and_says_so(tmp_path: Path) -> None:
    """A repository's `.agentlsignore` cannot put the local files its `.gitignore` keeps out of git (a
    settings file with the user's keys) into the index; the skipped entry says why and what to do."""
    make_tree(
        tmp_path,
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            ".git/info/exclude": "mine.py\n",
            ".gitignore": "*.gen.py\nlocal_settings.py\nbuild/\n",
            ".agentlsignore": "!wanted.gen.py\n!local_settings.py\n!build/\n!mine.py\n",
            "wanted.gen.py": "",
            "local_settings.py": "API_KEY = 'x'\n",
            "mine.py": "",
            "build/out.py": "",
            "sub/.gitignore": "!ok.gen.py\n",
            "sub/ok.gen.py": "",
            "sub/deep/.gitignore": "conf.py\n",
            "sub/deep/.agentlsignore": "!conf.py\n",
            "sub/deep/conf.py": "",
        },
    )
    assert listed(tmp_path) == [
        ".agentlsignore",
        ".gitignore",
        "sub/.gitignore",
        "sub/deep/.agentlsignore",
        "sub/deep/.gitignore",
        "sub/ok.gen.py",
    ]
    refused = {i.path: i for i in walk(tmp_path, IndexSettings()) if isinstance(i, SkippedFile)}
    assert set(refused) == {"build", "local_settings.py", "mine.py", "sub/deep/conf.py", "wanted.gen.py"}
    assert {i.reason for i in refused.values()} == {SkipReason.IGNORED}
    detail = refused["local_settings.py"].detail
    assert ".gitignore ignores it ('local_settings.py')" in detail
    assert "'!local_settings.py' of .agentlsignore does not re-include what git ignores" in detail
    assert '"!/local_settings.py"' in detail and "agentls settings --trust" in detail
    assert '"!/build/"' in refused["build"].detail and "info/exclude" in refused["mine.py"].detail
    # The exclude setting (the user's own, or a workspace's the user trusted) does re-include them.
    settings = IndexSettings(exclude=["!/local_settings.py", "!/build/"])
    assert {"local_settings.py", "build/out.py"} <= set(listed(tmp_path, settings))
    # Said on every walk, also one that reuses the listings of the last (`WalkSnapshot`).
    from indexing.walker import WalkSnapshot

    snapshot_file = tmp_path.parent / f"{tmp_path.name}-snapshot.json"
    for _ in range(2):
        snapshot = WalkSnapshot.load(snapshot_file, IndexSettings())
        again = {
            i.path for i in walk(tmp_path, IndexSettings(), snapshot=snapshot) if isinstance(i, SkippedFile)
        }
        snapshot.save(snapshot_file)
        assert again == set(refused)
    assert check_path(tmp_path, "local_settings.py", IndexSettings()) == refused["local_settings.py"]


def test_git_info_exclude_and_exclude_setting(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/info/exclude": "local-only/\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            "local-only/x.py": "",
            "data/big.csv": "",
            "data/small.csv": "",
            "keep.py": "",
            ".gitignore": "*.csv\n",
        },
    )
    settings = IndexSettings(exclude=["keep.py", "!data/small.csv"])
    assert listed(tmp_path, settings) == [".gitignore", "data/small.csv"]


def test_parent_repository_ignores_apply_to_a_subfolder_workspace(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/info/exclude": "scratch/\n",
            ".gitignore": "*.log\nproject/dist/\n",
            "project/app.py": "",
            "project/app.log": "",
            "project/dist/bundle.py": "",
            "project/scratch/s.py": "",
        },
    )
    assert listed(tmp_path / "project") == ["app.py"]


def test_parent_ignore_files_that_ignore_the_workspace_itself_are_not_applied(tmp_path: Path) -> None:
    # A dotfiles repository in $HOME typically ignores everything.
    make_tree(tmp_path, {".git/HEAD": "", ".gitignore": "*\n!.bashrc\n", "code/app.py": "", "code/b.log": ""})
    assert listed(tmp_path / "code") == ["app.py", "b.log"]


def test_builtin_ignores_and_virtualenvs(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/config": "",
            "node_modules/x/index.js": "",
            "pkg/__pycache__/m.cpython-311.pyc": b"\0",
            "pkg/m.pyc": b"\0",
            "pkg/m.py": "",
            ".DS_Store": b"\0",
            ".venv/lib/site.py": "",
            "env/pyvenv.cfg": "home = /usr\n",
            "env/lib/os.py": "",
            "venv/__init__.py": "# a real package named venv, like CPython's Lib/venv\n",
            ".vscode/sftp.json": "{}",
            ".idea/workspace.xml": "",
            "x.egg-info/PKG-INFO": "",
            ".mypy_cache/x.json": "",
        },
    )
    assert listed(tmp_path) == ["pkg/m.py", "venv/__init__.py"]


def test_folders_tagged_as_caches_are_not_entered(tmp_path: Path) -> None:
    signature = "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n"
    make_tree(
        tmp_path,
        {
            "src/m.py": "",
            "target/CACHEDIR.TAG": signature,  # Cargo's build folder
            "target/debug/build/out.rs": "fn f() {}\n",
            "notes/CACHEDIR.TAG": "not the signature\n",  # a file of that name without it: ordinary
            "notes/n.py": "",
        },
    )
    assert listed(tmp_path) == ["notes/CACHEDIR.TAG", "notes/n.py", "src/m.py"]
    assert check_path(tmp_path, "target/debug/build/out.rs", IndexSettings()) is None


def test_an_index_and_a_cache_inside_the_workspace_are_not_indexed(tmp_path: Path) -> None:
    from indexing.config import EmbeddingSettings
    from indexing.service import WorkspaceIndex

    root = make_tree(tmp_path / "ws", {"a.py": "def alpha():\n    return 1\n"})
    settings = IndexSettings(uri=str(root / "idx"), embedding=EmbeddingSettings(provider="none"))
    index = WorkspaceIndex(root, settings, cache_dir=root / "cache", env={})
    try:
        index.index()
        (root / "a.py").write_text("def alpha():\n    return 2\n")
        index.index()  # the first run's index and cache files are on disk now
        assert (root / "cache" / "secret-key").exists() and (root / "idx" / "lance").is_dir()
        assert listed(root, settings) == ["a.py"]
        assert {h.path for h in index.search("alpha version secret", limit=20)} == {"a.py"}
    finally:
        index.close()


# --------------------------------------------------------------------------------------------------
# Skip reasons


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        ".env.example",
        ".envrc",
        "config/.ENV.production",
        "deploy/prod.env",
        "certs/server.pem",
        "tls/server.key",
        "a.p12",
        "b.pfx",
        "keystore.jks",
        "release.keystore",
        "vault.kdbx",
        "id_rsa",
        "home/.ssh/id_ed25519.pub",
        "home/.ssh/config",
        "x/.aws/credentials",
        ".docker/config.json",
        ".netrc",
        ".pgpass",
        ".npmrc",
        ".pypirc",
        "credentials",
        "credentials.json",
        "gcp-credentials.json",
        "config/secrets.yml",
        "secrets.yaml",
        "secrets.json",
        "secrets.toml",
        "infra/terraform.tfstate",
        "infra/terraform.tfstate.backup",
        "deploy-sa.json",
        "service-account.json",
        "prod.tfvars",
        ".git-credentials",
    ],
)
def test_secret_paths(path: str) -> None:
    assert is_secret_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "env.py",  # Alembic
        "migrations/env.py",
        "env.example",
        "environment.yml",
        "secrets.py",
        "src/secrets/manager.py",
        "keys.py",
        "id_utils.py",
        "credentials.py",
        "docs/credentials.md",
        "key_value_store.go",
        "monkey.py",
        "src/pem_parser.rs",
        "docker/config.json",
        "",
    ],
)
def test_non_secret_paths(path: str) -> None:
    assert not is_secret_path(path)


def test_secret_and_too_large_files_are_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, {".env": "TOKEN=x\n", "small.py": "x = 1\n", ".ssh/id_rsa": "key"})
    big = tmp_path / "huge.bin"
    with big.open("wb") as handle:
        handle.truncate(5 * 1024**3)  # sparse: reading it would take seconds, stat takes microseconds
    before = read_bytes()
    result = skipped(tmp_path, IndexSettings(max_file_bytes=100))
    assert read_bytes() - before < 50 * 1024**2  # its size came from stat: not a byte of it was read
    assert result == {
        ".env": SkipReason.SECRET,
        ".ssh/id_rsa": SkipReason.SECRET,
        "huge.bin": SkipReason.TOO_LARGE,
    }
    assert listed(tmp_path, IndexSettings(max_file_bytes=100)) == ["small.py"]


def test_gitignored_secrets_are_pruned_silently(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": ".env\n", ".env": "TOKEN=x\n", "a.py": ""})
    assert list(walk(tmp_path, IndexSettings()))[1:] == [entry_for(tmp_path.resolve(), "a.py")]
    assert skipped(tmp_path) == {}


def test_file_vanishing_between_listing_and_stat(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "", "b.py": ""})
    items = walk(tmp_path, IndexSettings())
    first = next(items)  # the directory was listed before the first file was yielded
    assert first.path == "a.py"
    (tmp_path / "b.py").unlink()
    assert list(items) == [SkippedFile("b.py", SkipReason.VANISHED, "removed before it could be read")]


# --------------------------------------------------------------------------------------------------
# Symbolic links


def test_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    root = tmp_path / "ws"
    make_tree(outside, {"secret.py": "x", "dir/f.py": ""})
    make_tree(root, {"real/mod.py": "m", "real/.env": "T=1", "top.py": ""})
    (root / "file_link.py").symlink_to(root / "real" / "mod.py")
    (root / "dir_link").symlink_to(root / "real", target_is_directory=True)
    (root / "escape.py").symlink_to(outside / "secret.py")
    (root / "escape_dir").symlink_to(outside / "dir", target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    (root / "innocent.txt").symlink_to(root / "real" / ".env")
    (root / "broken.py").symlink_to(root / "missing.py")

    items = {item.path: item for item in walk(root, IndexSettings())}
    assert isinstance(items["file_link.py"], FileEntry)
    assert items["file_link.py"].abs_path == str(root.resolve() / "file_link.py")
    assert isinstance(items["dir_link/mod.py"], FileEntry)
    assert isinstance(items["real/mod.py"], FileEntry)
    assert items["escape.py"] == SkippedFile(
        "escape.py", SkipReason.SYMLINK_ESCAPE, f"points to {(outside / 'secret.py').resolve()}"
    )
    assert items["escape_dir"].reason == SkipReason.SYMLINK_ESCAPE  # type: ignore[union-attr]
    assert not any(path.startswith("escape_dir/") for path in items)
    assert items["real/loop"].reason == SkipReason.UNREADABLE  # type: ignore[union-attr]
    assert items["dir_link/loop"].reason == SkipReason.UNREADABLE  # type: ignore[union-attr]
    assert items["innocent.txt"].reason == SkipReason.SECRET  # type: ignore[union-attr]
    assert items["broken.py"].reason == SkipReason.UNREADABLE  # type: ignore[union-attr]
    assert "broken symbolic link" in items["broken.py"].detail  # type: ignore[union-attr]


def test_symlink_loop_between_sibling_directories_terminates(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "to_b").symlink_to(tmp_path / "b", target_is_directory=True)
    (tmp_path / "b" / "to_a").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "b" / "f.py").write_text("")
    paths = [item.path for item in walk(tmp_path, IndexSettings())]
    assert paths == ["a/to_b/f.py", "a/to_b/to_a", "b/f.py", "b/to_a/to_b"]


# --------------------------------------------------------------------------------------------------
# Permissions: root bypasses permission bits, so these run in a child process without that power.

_UNREADABLE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from indexing.config import IndexSettings
    from indexing.models import SkippedFile
    from indexing.walker import FileEntry, load_source, walk
    root = Path(sys.argv[1])
    out = {}
    for item in walk(root, IndexSettings()):
        if isinstance(item, FileEntry):
            item = load_source(item, IndexSettings().parse_limits())
        out[item.path] = item.reason.value if isinstance(item, SkippedFile) else "ok"
    print(json.dumps(out))
    """
)


def _run_without_permission_override(root: Path) -> dict[str, str]:
    command = [sys.executable, "-c", _UNREADABLE_SCRIPT, str(root)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permission bits cannot be made to bite")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_unreadable_directories_and_files(tmp_path: Path) -> None:
    make_tree(tmp_path, {"locked/x.py": "", "private.py": "x = 1\n", "open.py": ""})
    (tmp_path / "locked").chmod(0)
    (tmp_path / "private.py").chmod(0)
    try:
        result = _run_without_permission_override(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
        (tmp_path / "private.py").chmod(0o644)
    assert result == {"locked": "unreadable", "open.py": "ok", "private.py": "unreadable"}


# --------------------------------------------------------------------------------------------------
# check_path


def test_check_path_agrees_with_walk(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "build/\n",
            "pkg/.gitignore": "*.gen.py\n",
            "pkg/a.py": "x",
            "pkg/b.gen.py": "",
            "build/out.py": "",
            ".env": "",
            "env/pyvenv.cfg": "",
            "env/lib.py": "",
        },
    )
    (tmp_path / "escape.py").symlink_to("/etc/hostname")
    settings = IndexSettings()
    assert check_path(tmp_path, "pkg/a.py", settings) == entry_for(tmp_path.resolve(), "pkg/a.py")
    assert check_path(tmp_path, "pkg/b.gen.py", settings) is None
    assert check_path(tmp_path, "build/out.py", settings) is None
    assert check_path(tmp_path, "env/lib.py", settings) is None
    assert check_path(tmp_path, "missing.py", settings) is None
    assert check_path(tmp_path, "../etc/passwd", settings) is None
    assert check_path(tmp_path, "pkg", settings) is None
    assert check_path(tmp_path, ".env", settings) == SkippedFile(".env", SkipReason.SECRET)
    escape = check_path(tmp_path, "escape.py", settings)
    assert isinstance(escape, SkippedFile) and escape.reason == SkipReason.SYMLINK_ESCAPE
    walked = {item.path: item for item in walk(tmp_path, settings)}
    for rel in ("pkg/a.py", ".env", "escape.py"):
        assert check_path(tmp_path, rel, settings) == walked[rel]


# --------------------------------------------------------------------------------------------------
# load_source


def load(root: Path, rel: str, settings: IndexSettings | None = None) -> SourceFile | SkippedFile:
    return load_source(entry_for(root, rel), (settings or IndexSettings()).parse_limits())


def test_load_source_reads_text_hash_and_metadata(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfdef f():\n    return 'caf\xc3\xa9'\n"
    make_tree(tmp_path, {"m.py": data})
    source = load(tmp_path, "m.py")
    assert isinstance(source, SourceFile)
    assert source.text == "def f():\n    return 'café'\n"  # BOM stripped
    assert source.hash == content_hash(data)  # of the raw bytes, BOM included
    assert source.size == len(data)
    assert source.mtime_ns == (tmp_path / "m.py").stat().st_mtime_ns
    assert not source.data_had_invalid_utf8


def test_invalid_utf8_is_replaced_keeping_lines(tmp_path: Path) -> None:
    make_tree(tmp_path, {"latin1.txt": "a\ncaf\xe9\nb\n".encode("latin-1")})
    source = load(tmp_path, "latin1.txt")
    assert isinstance(source, SourceFile)
    assert source.data_had_invalid_utf8
    assert source.text.split("\n") == ["a", "caf\ufffd", "b", ""]


def test_language_of_python_files(tmp_path: Path) -> None:
    pytest.importorskip(
        "indexing.languages", reason="indexing.languages is written by another part of the team"
    )
    make_tree(tmp_path, {"m.py": "x = 1\n"})
    source = load(tmp_path, "m.py")
    assert isinstance(source, SourceFile) and source.language == "python"


def test_binary_files(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "nul.dat": b"text\0more",
            "controls.dat": bytes(range(1, 32)) * 20 + b"abc",
            "ansi.log": b"\x1b[31mred\x1b[0m\tok\r\n" * 50,  # escape codes are text
            "empty.py": b"",
        },
    )
    assert load(tmp_path, "nul.dat") == SkippedFile("nul.dat", SkipReason.BINARY, "contains NUL bytes")
    controls = load(tmp_path, "controls.dat")
    assert isinstance(controls, SkippedFile) and controls.reason == SkipReason.BINARY
    assert isinstance(load(tmp_path, "ansi.log"), SourceFile)
    empty = load(tmp_path, "empty.py")
    assert isinstance(empty, SourceFile) and empty.text == ""


def test_binary_files_without_nul_bytes(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    noise = bytes(rng.randrange(1, 256) for _ in range(3000))  # no NUL, few control bytes
    make_tree(
        tmp_path,
        {
            "key.bin": noise[:64],
            "blob.dat": noise,
            "latin1.py": ("# caf\xe9, d\xe9j\xe0 vu, na\xefve\n" + "x = 1\n" * 20).encode("latin-1"),
        },
    )
    for rel in ("key.bin", "blob.dat"):
        result = load(tmp_path, rel)
        assert isinstance(result, SkippedFile) and result.reason == SkipReason.BINARY, rel
        assert "not valid UTF-8" in result.detail
    latin1 = load(tmp_path, "latin1.py")  # another encoding's text: a few invalid characters
    assert isinstance(latin1, SourceFile) and latin1.data_had_invalid_utf8


@pytest.mark.parametrize(
    ("rel", "content"),
    [
        ("package-lock.json", "{}\n"),
        ("web/yarn.lock", "# yarn\n"),
        ("Cargo.lock", "[[package]]\n"),
        ("poetry.lock", ""),
        ("uv.lock", ""),
        ("go.sum", ""),
        ("static/app.min.js", "var a=1;\n"),
        ("static/app.min.css", "a{}\n"),
        ("static/app.js.map", "{}\n"),
        ("gen.go", "// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n"),
        (
            "schema_pb2.py",
            "# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  DO NOT EDIT!\n",
        ),
        ("api.ts", "/**\n * This file is autogenerated.\n */\nexport {}\n"),
        ("Snap.java", "// @generated SignedSource<<abc>>\nclass A {}\n"),
    ],
)
def test_generated_files(tmp_path: Path, rel: str, content: str) -> None:
    make_tree(tmp_path, {rel: content})
    result = load(tmp_path, rel)
    assert isinstance(result, SkippedFile) and result.reason == SkipReason.GENERATED, result


def test_generated_marker_below_the_header_does_not_count(tmp_path: Path) -> None:
    make_tree(tmp_path, {"tool.py": "import x\n\n\n\n\n\n# writes files marked DO NOT EDIT\n"})
    assert isinstance(load(tmp_path, "tool.py"), SourceFile)


def test_minified_files(tmp_path: Path) -> None:
    settings = IndexSettings(max_line_chars=100)
    make_tree(
        tmp_path,
        {
            "avg.js": ("x" * 150 + "\n") * 10,  # average 151 > 100
            "one_long_line.js": "short\n" * 500 + "y" * 2001 + "\n",  # 2001 > 20 * 100
            "normal.js": ("x" * 90 + "\n") * 400 + "z" * 1999 + "\n",  # average 96
        },
    )
    avg = load(tmp_path, "avg.js", settings)
    assert isinstance(avg, SkippedFile) and avg.reason == SkipReason.GENERATED and "average" in avg.detail
    long_line = load(tmp_path, "one_long_line.js", settings)
    assert isinstance(long_line, SkippedFile) and "a line of 2001" in long_line.detail
    assert isinstance(load(tmp_path, "normal.js", settings), SourceFile)


def test_a_line_over_the_limit_is_found_wherever_it_lies() -> None:
    """`_may_have_line_over` skips splitting a long file into lines: it must never miss a line longer than
    the limit (else a minified file is indexed), whatever its place and the blocks it is checked by."""
    limit = 40
    for size in (limit, limit + 1, limit + 2, 2 * limit + 3):
        for place in range(0, 130, 7):
            text = "ab\n" * (place // 3) + "x" * size + "\n" + "cd\n" * 20
            longest = max(len(line) for line in text.split("\n"))
            assert _may_have_line_over(text, limit) or longest <= limit, (size, place)
    assert not _may_have_line_over(("y" * (limit // 4) + "\n") * 50, limit)  # short lines: no split


def test_load_source_vanished_grown_and_secret(tmp_path: Path) -> None:
    make_tree(tmp_path, {"gone.py": "", "grows.py": "x", ".env": "A=1"})
    gone = entry_for(tmp_path, "gone.py")
    (tmp_path / "gone.py").unlink()
    assert load_source(gone, IndexSettings().parse_limits()).reason == SkipReason.VANISHED  # type: ignore[union-attr]
    grows = entry_for(tmp_path, "grows.py")
    (tmp_path / "grows.py").write_text("x" * 50)
    result = load_source(grows, IndexSettings(max_file_bytes=10).parse_limits())
    assert isinstance(result, SkippedFile) and result.reason == SkipReason.TOO_LARGE
    assert load(tmp_path, ".env") == SkippedFile(".env", SkipReason.SECRET)


# --------------------------------------------------------------------------------------------------
# Speed


@pytest.mark.benchmark
def test_walk_speed_on_a_django_sized_tree() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / ".gitignore").write_text("*.log\nbuild/\n")
        for package in range(60):
            for module in range(50):
                path = root / f"pkg{package}" / f"sub{module % 5}" / f"mod{module}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("x = 1\n")
        started = time.perf_counter()
        count = sum(1 for _ in walk(root, IndexSettings()))
        elapsed = time.perf_counter() - started
    assert count == 3001
    assert elapsed < 0.5, f"walking 3,000 files took {elapsed:.2f} s"


def test_walk_only_restricts_to_the_given_paths_with_the_same_rules(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\n",
            "pkg/a.py": "",
            "pkg/b.py": "",
            "pkg/c.log": "",
            "other/d.py": "",
            "deep/er/e.py": "",
            ".env": "",
        },
    )
    # Unrelated folders are not listed: this escaping link would otherwise be reported.
    (tmp_path / "other" / "escape").symlink_to("/etc/hostname")
    wanted = ["deep/er/e.py", "pkg/a.py", "pkg/c.log", "./pkg/missing.py", ".env", "pkg", "../x"]
    items = list(walk(tmp_path, IndexSettings(), only=wanted))
    assert items == [
        SkippedFile(".env", SkipReason.SECRET),
        entry_for(tmp_path.resolve(), "deep/er/e.py"),
        entry_for(tmp_path.resolve(), "pkg/a.py"),
    ]
    assert list(walk(tmp_path, IndexSettings(), only=[])) == []


def test_walk_only_whole_folders_walks_a_named_folder_with_the_same_rules(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\n",
            "pkg/a.py": "",
            "pkg/c.log": "",
            "pkg/deep/.gitignore": "gen/\n",
            "pkg/deep/b.py": "",
            "pkg/deep/gen/g.py": "",
            "pkg/deep/.env": "",
            "pkgs/other.py": "",
            "top.py": "",
        },
    )
    items = list(walk(tmp_path, IndexSettings(), only=["pkg/deep", "top.py"], whole_folders=True))
    root = tmp_path.resolve()
    assert items == [
        SkippedFile("pkg/deep/.env", SkipReason.SECRET),
        entry_for(root, "pkg/deep/.gitignore"),
        entry_for(root, "pkg/deep/b.py"),
        entry_for(root, "top.py"),
    ]
    assert [i.path for i in walk(tmp_path, IndexSettings(), only=["pkg"], whole_folders=True)] == [
        "pkg/a.py",
        "pkg/deep/.env",
        "pkg/deep/.gitignore",
        "pkg/deep/b.py",
    ]


def test_a_gitignore_that_ignores_everything_is_explained(tmp_path: Path) -> None:
    # Debian's kernel source: upstream patterns, then "/*" and "!/debian/" appended.
    (tmp_path / ".gitignore").write_text("*.o\n.*\n!.gitignore\n/*\n!/debian/\n")
    for name in ("kernel", "mm", "include"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.c").write_text("int a;\n")
    (tmp_path / "Makefile").write_text("all:\n")
    assert [item.path for item in walk(tmp_path, IndexSettings())] == []
    message = explain_ignored(tmp_path, IndexSettings())
    assert "4 of the 4 entries" in message
    assert "'/*' in .gitignore" in message
    assert "add '!/*' to `exclude` in the [index] section of your own settings file or of" in message
    assert "agentls settings --trust" in message

    (tmp_path / ".agentlsignore").write_text("!/*\n")  # cannot re-include what git ignores
    assert {item.path for item in walk(tmp_path, IndexSettings()) if isinstance(item, FileEntry)} == set()
    settings = IndexSettings(exclude=["!/*"])  # the override the message suggests
    assert explain_ignored(tmp_path, settings) == ""
    paths = {item.path for item in walk(tmp_path, settings) if isinstance(item, FileEntry)}
    assert {"kernel/a.c", "mm/a.c", "include/a.c", "Makefile"} <= paths


def test_a_workspace_ignoring_little_gets_no_message(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("build/\n*.o\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "README").write_text("hi\n")
    assert explain_ignored(tmp_path, IndexSettings()) == ""
    (tmp_path / "settings-excluded").mkdir()
    assert explain_ignored(tmp_path, IndexSettings(exclude=["/*"])).startswith("4 of the 4 entries")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_combined_pattern_prefilter_never_hides_a_match(seed: int) -> None:
    """`_AnyPattern` answers "no pattern matches" for pathspec: it must never say so when one does."""
    import random

    from pathspec import GitIgnoreSpec

    from indexing.walker import _AnyPattern

    patterns = [
        "*.o", "/foo", "!bar/", "a/**/b", "build/", ".*", "/*", "x/y", "*", "**", "**/z", "a/*", "!*.c",
        "doc/**", "*.[ch]", "\\#*", "*~", "/a/b/", "m*n/", "**/q/**", "!/debian/", "foo/bar/*.c", "!z",
    ]  # fmt: skip
    names = ["a", "b", "foo", "bar", "x", "y", "z", "q", "m1n", "build", ".git", "f.o", "f.c", "#x", "doc"]
    rng = random.Random(seed)
    for _ in range(300):
        spec = GitIgnoreSpec.from_lines(rng.sample(patterns, rng.randint(1, 6)))
        prefilter = _AnyPattern.of(spec)
        assert prefilter is not None
        for _ in range(50):
            path = "/".join(rng.choice(names) for _ in range(rng.randint(1, 4)))
            path += "/" if rng.random() < 0.5 else ""
            if spec.check_file(path).include is not None:
                assert prefilter.matches(path), (spec, path)


def test_a_walk_snapshot_reuses_unchanged_folders_and_sees_every_change(tmp_path: Path) -> None:
    from indexing.walker import WalkSnapshot

    root = tmp_path / "ws"
    make_tree(root, {"a/x.py": "1", "a/b/y.py": "2", "a/.gitignore": "*.log\n", "a/keep.log": "", "c.py": ""})
    snapshot_file = tmp_path / "snapshot.json"
    old = time.time_ns() - 10_000_000_000  # folders older than the racy window are recorded
    for folder in (root / "a", root / "a" / "b"):
        os.utime(folder, ns=(old, old))

    def paths() -> list[str]:
        snapshot = WalkSnapshot.load(snapshot_file, IndexSettings())
        found = [item.path for item in walk(root, IndexSettings(), snapshot=snapshot)]
        snapshot.save(snapshot_file)
        assert found == [item.path for item in walk(root, IndexSettings())]  # same as a walk without
        return found

    assert paths() == ["a/.gitignore", "a/b/y.py", "a/x.py", "c.py"]
    assert set(json.loads(snapshot_file.read_text())["folders"]) == {"a/", "a/b/"}
    assert paths() == ["a/.gitignore", "a/b/y.py", "a/x.py", "c.py"]
    (root / "a" / "b" / "new.py").write_text("")  # the folder's mtime moves
    assert "a/b/new.py" in paths()
    (root / "a" / ".gitignore").write_text("*.log\nx.py\n")  # an ignore file changes in place
    os.utime(root / "a", ns=(old, old))
    assert "a/x.py" not in paths()


def test_a_snapshot_walk_of_nested_folders_keeps_the_order_of_a_plain_walk(tmp_path: Path) -> None:
    """Folders with a valid listing are walked from a stack, the others listed afresh, in between."""
    from indexing.walker import WalkSnapshot

    root = tmp_path / "ws"
    files = ["a/b/c/d.py", "a/b/c/e.py", "a/b/f.py", "a/b2/g.py", "a/z.py", "a0.py", "b/c/h.py", "b/i.py"]
    make_tree(root, dict.fromkeys(files, "x = 1\n"))
    old = time.time_ns() - 10_000_000_000
    for folder in ("a", "a/b", "a/b/c", "a/b2", "b", "b/c"):
        os.utime(root / folder, ns=(old, old))
    snapshot_file = tmp_path / "snapshot.json"
    # A new file's folder is listed afresh; its parents and its own subfolders come from the snapshot.
    for change in ("", "a/b/new.py", "b/c/new.py"):
        if change:
            (root / change).write_text("")
        snapshot = WalkSnapshot.load(snapshot_file, IndexSettings())
        found = [item.path for item in walk(root, IndexSettings(), snapshot=snapshot)]
        snapshot.save(snapshot_file)
        assert found == [item.path for item in walk(root, IndexSettings())] == sorted(found)
        assert change in found or not change


def test_a_refused_reinclude_is_logged_once_per_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The language server walks again every `server.refresh_seconds` when the editor cannot watch files:
    the refusal is in each walk's skipped entries, but in the log once (INFO), not once per walk."""
    make_tree(
        tmp_path,
        {
            ".gitignore": "local_settings.py\n",
            ".agentlsignore": "!local_settings.py\n",
            "local_settings.py": "",
        },
    )
    with caplog.at_level(logging.DEBUG, logger="indexing.walker"):
        for _ in range(3):
            skipped = [i for i in walk(tmp_path, IndexSettings()) if isinstance(i, SkippedFile)]
            assert [i.path for i in skipped] == ["local_settings.py"]
    said = [r for r in caplog.records if "local_settings.py stays out of the index" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO, logging.DEBUG, logging.DEBUG]

"""The git tools on real repositories made in the test: status, diffs, history of a file, a line range and
a Python symbol, show, blame; paths confined to the workspace, secret files left out, bounded output, and
nothing written to ``.git``."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from agent.tools import ToolRegistry
from agent.tools.git import GIT_TOOLS, GitLogTool, python_symbol_lines

GIT_ID = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


def git(root: Path, *args: str) -> str:
    import os

    env = {**os.environ, **GIT_ID, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "calc.py").write_text(
        "def add(a, b):\n    return a + b\n\n\nclass Box:\n    def size(self):\n        return 1\n"
    )
    (root / "README.md").write_text("calc\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "feat: add and Box")
    (root / "calc.py").write_text(
        "def add(a, b):\n    return a + b\n\n\nclass Box:\n    def size(self):\n        return 2\n"
    )
    git(root, "commit", "-q", "-am", "fix: Box.size is 2\n\nBecause boxes hold two.")
    (root / "README.md").write_text("calc, a calculator\n")
    git(root, "commit", "-q", "-am", "docs: say what calc is")
    return root


@pytest.fixture
def tools(repo: Path) -> ToolRegistry:
    return ToolRegistry(cls(repo) for cls in GIT_TOOLS)


def _git_dir_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / ".git").rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def test_status_and_diffs_worktree_staged_and_between_refs(repo: Path, tools: ToolRegistry) -> None:
    (repo / "calc.py").write_text((repo / "calc.py").read_text() + "\nX = 1\n")
    (repo / "new.txt").write_text("new\n")
    (repo / "README.md").write_text("staged readme\n")
    git(repo, "add", "README.md")
    before = _git_dir_digest(repo)

    status = tools.execute("git_status", {})
    assert not status.is_error
    assert "## main" in status.content
    assert " M calc.py" in status.content and "M  README.md" in status.content
    assert "?? new.txt" in status.content

    worktree = tools.execute("git_diff", {})
    assert "+X = 1" in worktree.content and "README" not in worktree.content
    staged = tools.execute("git_diff", {"mode": "staged"})
    assert "+staged readme" in staged.content and "X = 1" not in staged.content
    refs = tools.execute("git_diff", {"mode": "refs", "base": "HEAD~2", "head": "HEAD~1"})
    assert "-        return 1" in refs.content and "+        return 2" in refs.content
    only = tools.execute("git_diff", {"mode": "refs", "base": "HEAD~2", "path": "README.md"})
    assert "calc.py" not in only.content and "+calc, a calculator" in only.content
    # `base`/`head` without a mode mean refs (they were ignored: a worktree diff answered instead).
    implied = tools.execute("git_diff", {"base": "HEAD~2", "head": "HEAD~1"})
    assert implied.content == refs.content
    mixed = tools.execute("git_diff", {"mode": "staged", "base": "HEAD~2"})
    assert mixed.is_error and "go with mode `refs`" in mixed.content
    # Nothing under .git changed: no index refresh, no lock files left.
    assert _git_dir_digest(repo) == before


def test_log_of_a_file_a_line_range_and_a_python_symbol(repo: Path, tools: ToolRegistry) -> None:
    whole = tools.execute("git_log", {"path": "calc.py"})
    assert "fix: Box.size is 2" in whole.content and "feat: add and Box" in whole.content
    assert "docs:" not in whole.content
    method = tools.execute("git_log", {"path": "calc.py", "symbol": "Box.size"})
    assert not method.is_error, method.content
    assert "fix: Box.size is 2" in method.content and "Because boxes hold two." in method.content
    add = tools.execute("git_log", {"path": "calc.py", "symbol": "add"})
    assert "feat: add and Box" in add.content and "fix: Box.size" not in add.content
    lines = tools.execute("git_log", {"path": "calc.py", "start_line": 1, "end_line": 2, "patch": True})
    assert "+def add(a, b):" in lines.content and "fix:" not in lines.content
    missing = tools.execute("git_log", {"path": "calc.py", "symbol": "nope"})
    assert missing.is_error and "no function or class 'nope'" in missing.content


def test_show_a_commit_a_file_at_a_revision_and_blame(repo: Path, tools: ToolRegistry) -> None:
    commit = tools.execute("git_show", {"rev": "HEAD~1"})
    assert "fix: Box.size is 2" in commit.content and "+        return 2" in commit.content
    old = tools.execute("git_show", {"rev": "HEAD~2", "path": "calc.py", "file": True})
    assert old.content.endswith("return 1\n")
    blame = tools.execute("git_blame", {"path": "calc.py", "start_line": 7, "end_line": 7})
    assert not blame.is_error, blame.content
    assert blame.content.count("\n") == 1 and "return 2" in blame.content and "Ada" in blame.content


def test_refusals_paths_outside_options_as_refs_secrets_and_no_repository(
    repo: Path, tools: ToolRegistry, tmp_path: Path
) -> None:
    outside = tools.execute("git_blame", {"path": "../elsewhere.py"})
    assert outside.is_error and "outside the workspace" in outside.content
    target = tmp_path / "written-by-git"
    option = tools.execute("git_show", {"rev": f"--output={target}"})
    assert option.is_error and "not a revision" in option.content
    assert not target.exists()
    (repo / ".env").write_text("TOKEN=abc123\n")
    git(repo, "add", "-f", ".env")
    git(repo, "commit", "-q", "-m", "chore: env")
    shown = tools.execute("git_show", {"rev": "HEAD"})
    assert "abc123" not in shown.content and "secret file .env left out" in shown.content
    blamed = tools.execute("git_blame", {"path": ".env"})
    assert blamed.is_error and "abc123" not in blamed.content
    plain = tmp_path / "plain"
    plain.mkdir()
    none = ToolRegistry([GitLogTool(plain)]).execute("git_log", {})
    assert none.is_error and "not in a git repository" in none.content


def test_output_is_bounded_with_a_hint(repo: Path) -> None:
    (repo / "big.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    git(repo, "add", "big.txt")
    git(repo, "commit", "-q", "-m", "feat: big")
    tool = GitLogTool(repo, max_output_chars=2000)
    text = ToolRegistry([tool]).execute("git_log", {"patch": True, "max_count": 1}).content
    assert len(text) < 2300 and "output cut at 2,000" in text and "max_count" in text


def test_python_symbol_lines_finds_methods_and_decorated_functions() -> None:
    source = "import x\n\n@dec\ndef f():\n    pass\n\nclass A:\n    def g(self):\n        return 1\n"
    assert python_symbol_lines(source, "f") == (3, 5)
    assert python_symbol_lines(source, "A.g") == (8, 9)
    assert python_symbol_lines(source, "g") == (8, 9)
    assert python_symbol_lines(source, "A.h") is None


def test_a_file_named_in_the_revision_is_checked_like_a_path(repo: Path, tools: ToolRegistry) -> None:
    """``REV:PATH`` (git's own syntax for a file at a revision) goes through the path checks: git_show reads
    it as `file: true` with that path, other tools refuse it; a secret file or one outside the workspace is
    never shown."""
    (repo / ".env").write_text("TOKEN=abc123\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "inner.py").write_text("INNER = 1\n")
    git(repo, "add", "-f", ".env", "sub")
    git(repo, "commit", "-q", "-m", "chore: env and sub")
    old = tools.execute("git_show", {"rev": "HEAD~1:calc.py"})
    assert not old.is_error, old.content
    assert old.content.endswith("return 2\n")
    for rev in ("HEAD:.env", ":.env", "HEAD:./.env", "HEAD:sub/../.env"):
        shown = tools.execute("git_show", {"rev": rev})
        assert shown.is_error and "abc123" not in shown.content, (rev, shown.content)
    refs = tools.execute("git_diff", {"base": "HEAD:calc.py", "head": "HEAD:.env"})
    assert refs.is_error and "names a file (REV:PATH)" in refs.content and "abc123" not in refs.content
    log = tools.execute("git_log", {"rev": "HEAD:.env"})
    assert log.is_error and "names a file (REV:PATH)" in log.content
    # A workspace in a folder of the repository: git reads PATH from the repository's top, the tool from
    # the workspace, so a file beside the workspace is out of reach.
    inner = ToolRegistry(cls(repo / "sub") for cls in GIT_TOOLS)
    assert inner.execute("git_show", {"rev": "HEAD:inner.py"}).content == "INNER = 1\n"
    beside = inner.execute("git_show", {"rev": "HEAD:../calc.py"})
    assert beside.is_error and "outside the workspace" in beside.content
    top = inner.execute("git_show", {"rev": "HEAD:calc.py"})
    assert top.is_error and "return 2" not in top.content


def test_a_files_log_follows_renames_and_show_says_a_commit_leaves_a_path_alone(
    repo: Path, tools: ToolRegistry
) -> None:
    """The history of a renamed file goes on before the rename (``--follow``), as a model asking why its
    code is so expects; a `git_show` limited to a file the commit does not change says so (not "")."""
    git(repo, "mv", "calc.py", "arith.py")
    git(repo, "commit", "-q", "-m", "refactor: calc.py is arith.py")
    log = tools.execute("git_log", {"path": "arith.py"})
    assert not log.is_error, log.content
    assert "refactor: calc.py is arith.py" in log.content and "calc.py => arith.py" in log.content
    assert "fix: Box.size is 2" in log.content and "feat: add and Box" in log.content
    assert "docs:" not in log.content
    untouched = tools.execute("git_show", {"rev": "HEAD~1", "path": "arith.py"})
    assert not untouched.is_error
    assert untouched.content.startswith("(HEAD~1 does not change arith.py: give git_show no `path`")


def test_a_shallow_clone_and_a_repository_with_no_commits_say_why_history_is_missing(
    repo: Path, tmp_path: Path
) -> None:
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    tools = ToolRegistry(cls(shallow) for cls in GIT_TOOLS)
    log = tools.execute("git_log", {"path": "calc.py"})
    assert "docs: say what calc is" in log.content and "fix: Box.size" not in log.content
    assert log.content.endswith(
        "older commits are not in it (git blame marks lines from that commit "
        "with ^); if the older history matters, ask the user to run "
        "`git fetch --unshallow`]"
    )
    blame = tools.execute("git_blame", {"path": "calc.py", "start_line": 1, "end_line": 1})
    assert blame.content.startswith("^") and "shallow clone" in blame.content
    older = tools.execute("git_show", {"rev": "HEAD~1"})
    assert older.is_error and "unknown revision" in older.content and "shallow clone" in older.content
    # A full clone says nothing of the kind.
    full = ToolRegistry(cls(repo) for cls in GIT_TOOLS)
    assert "shallow" not in full.execute("git_log", {}).content
    assert "shallow" not in full.execute("git_show", {"rev": "HEAD~9"}).content

    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    (empty / "a.py").write_text("A = 1\n")
    tools = ToolRegistry(cls(empty) for cls in GIT_TOOLS)
    for name, input in (("git_log", {}), ("git_show", {"rev": "HEAD"}), ("git_blame", {"path": "a.py"})):
        result = tools.execute(name, input)
        assert result.is_error and result.content.startswith("The repository has no commits yet"), (
            name,
            result.content,
        )
    assert "?? a.py" in tools.execute("git_status", {}).content


def test_optional_fields_sent_as_null_count_as_left_out(repo: Path, tools: ToolRegistry) -> None:
    """Models of OpenAI-compatible servers send every field of a call, null for the ones they leave out:
    those calls run as if the fields were not sent (they were refused: "expected string, got null"); a
    required field that is null is still refused."""
    log = tools.execute("git_log", {"path": "calc.py", "symbol": None, "rev": None, "max_count": None})
    assert not log.is_error, log.content
    assert "fix: Box.size is 2" in log.content and "docs:" not in log.content
    blame = tools.execute("git_blame", {"path": "calc.py", "start_line": 7, "end_line": None, "rev": None})
    assert not blame.is_error and "return 2" in blame.content, blame.content
    missing = tools.execute("git_show", {"rev": None, "path": None})
    assert missing.is_error and "`rev`: expected string, got null" in missing.content


def test_a_symbols_history_is_found_while_the_file_has_uncommitted_changes(
    repo: Path, tools: ToolRegistry
) -> None:
    """The user's uncommitted edits moved the definitions on disk: a symbol is still located where git
    follows it, in the committed file (its lines on disk named other code, or were past the committed
    file's end); one only on disk is said to have no history yet; a line range says in which file its
    numbers were read."""
    committed = (repo / "calc.py").read_text()
    (repo / "calc.py").write_text(
        "import os\nimport sys\n\n\ndef helper():\n    return os, sys\n\n\n" + committed
    )
    method = tools.execute("git_log", {"path": "calc.py", "symbol": "Box.size"})
    assert not method.is_error, method.content
    assert "fix: Box.size is 2" in method.content and "feat: add and Box" in method.content
    add = tools.execute("git_log", {"path": "calc.py", "symbol": "add"})
    assert "feat: add and Box" in add.content and "fix: Box.size" not in add.content, add.content
    new = tools.execute("git_log", {"path": "calc.py", "symbol": "helper"})
    assert new.is_error and new.content == (
        "there is no function or class 'helper' in calc.py at HEAD (only the uncommitted file on disk has "
        "it, so it has no history yet)"
    )
    lines = tools.execute("git_log", {"path": "calc.py", "start_line": 1, "end_line": 2})
    assert "feat: add and Box" in lines.content
    assert lines.content.endswith(
        "[calc.py on disk differs from HEAD: `start_line`/`end_line` were read as "
        "lines of the file at HEAD; give `symbol` to follow a function or class "
        "wherever it is]"
    )


def test_blame_at_a_revision_before_a_rename_finds_the_files_name_there(
    repo: Path, tools: ToolRegistry
) -> None:
    """A `git_blame` with a `rev` older than the file's rename blames the file under its name at that
    revision and says so, not git's "no such path arith.py in HEAD~1"; a file that was not there at all
    still gets git's own refusal."""
    git(repo, "mv", "calc.py", "arith.py")
    git(repo, "commit", "-q", "-m", "refactor: calc.py is arith.py")
    (repo / "arith.py").write_text((repo / "arith.py").read_text().replace("return 2", "return 3"))
    git(repo, "commit", "-q", "-am", "fix: Box.size is 3")
    blame = tools.execute("git_blame", {"path": "arith.py", "start_line": 7, "end_line": 7, "rev": "HEAD~2"})
    assert not blame.is_error, blame.content
    assert "return 2" in blame.content and "Ada" in blame.content
    assert "arith.py was named calc.py at HEAD~2" in blame.content
    now = tools.execute("git_blame", {"path": "arith.py", "start_line": 7, "end_line": 7, "rev": "HEAD"})
    assert not now.is_error and "return 3" in now.content and "named" not in now.content
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    git(repo, "commit", "-q", "-m", "feat: new")
    missing = tools.execute("git_blame", {"path": "new.py", "rev": "HEAD~1"})
    assert missing.is_error and "new.py" in missing.content


def test_log_and_show_at_a_revision_before_a_rename_find_the_files_name_there(
    repo: Path, tools: ToolRegistry
) -> None:
    """`git_log` and `git_show`'s file at a `rev` older than the file's rename read the file under its name
    there and say so (before, the log answered "(no commits)" and the show git's "exists on disk, but not
    in 'HEAD~1'")."""
    git(repo, "mv", "calc.py", "arith.py")
    git(repo, "commit", "-q", "-m", "refactor: calc.py is arith.py")
    log = tools.execute("git_log", {"path": "arith.py", "rev": "HEAD~1"})
    assert not log.is_error, log.content
    assert "fix: Box.size is 2" in log.content and "feat: add and Box" in log.content
    assert "refactor:" not in log.content and "docs:" not in log.content
    assert log.content.rstrip().endswith(
        "[arith.py was named calc.py at HEAD~1 (renamed since): this is calc.py's history]"
    )
    shown = tools.execute("git_show", {"rev": "HEAD~1", "path": "arith.py", "file": True})
    assert not shown.is_error, shown.content
    assert "return 2" in shown.content and "arith.py was named calc.py at HEAD~1" in shown.content


def test_a_symbol_and_a_line_range_at_a_revision_before_a_rename_are_read_under_the_files_name_there(
    repo: Path, tools: ToolRegistry
) -> None:
    """`git_log` with `symbol` or `start_line` and a `rev` older than the file's rename locates the lines
    in the file under its name at `rev`, follows them and says so (before, a Python symbol was "arith.py
    is not in the repository at HEAD~2", and git's -L gave "There is no path arith.py in the commit" for a
    line range or another language's symbol). Both the Python (`ast`) and git's own (``-L :NAME:``) ways of
    finding a symbol are checked: the second is what a .js file gets."""
    (repo / "shapes.js").write_text("function area(w, h) {\n  return w * h;\n}\n")
    git(repo, "add", "shapes.js")
    git(repo, "commit", "-q", "-m", "feat: area")
    (repo / "shapes.js").write_text("function area(w, h) {\n  return w * h * 1;\n}\n")
    git(repo, "commit", "-q", "-am", "fix: area keeps its units")
    git(repo, "mv", "calc.py", "arith.py")
    git(repo, "mv", "shapes.js", "geometry.js")
    git(repo, "commit", "-q", "-m", "refactor: new names")
    (repo / "arith.py").write_text((repo / "arith.py").read_text().replace("return 2", "return 3"))
    git(repo, "commit", "-q", "-am", "fix: Box.size is 3")
    note = "[arith.py was named calc.py at HEAD~2 (renamed since): this is calc.py's history]"

    method = tools.execute("git_log", {"path": "arith.py", "symbol": "Box.size", "rev": "HEAD~2"})
    assert not method.is_error, method.content
    assert "fix: Box.size is 2" in method.content and "feat: add and Box" in method.content
    assert "is 3" not in method.content and "refactor:" not in method.content
    assert note in method.content
    lines = tools.execute("git_log", {"path": "arith.py", "start_line": 1, "end_line": 2, "rev": "HEAD~2"})
    assert not lines.is_error, lines.content
    assert "feat: add and Box" in lines.content and "fix: Box.size" not in lines.content
    assert note in lines.content
    assert lines.content.endswith(
        "[arith.py on disk differs from calc.py at HEAD~2: `start_line`/`end_line` were read as lines of "
        "the file at HEAD~2; give `symbol` to follow a function or class wherever it is]"
    )
    area = tools.execute("git_log", {"path": "geometry.js", "symbol": "area", "rev": "HEAD~2"})
    assert not area.is_error, area.content
    assert "fix: area keeps its units" in area.content and "feat: area" in area.content
    assert "[geometry.js was named shapes.js at HEAD~2 (renamed since)" in area.content
    # The name the file had at `rev`, which is no longer on disk, is read there too (before: "calc.py is not
    # a file in the workspace"); a name that is neither on disk nor at `rev` is still refused.
    by_old_name = tools.execute("git_log", {"path": "calc.py", "symbol": "Box.size", "rev": "HEAD~2"})
    assert not by_old_name.is_error, by_old_name.content
    assert "fix: Box.size is 2" in by_old_name.content and "is 3" not in by_old_name.content
    nowhere = tools.execute("git_log", {"path": "nothing.py", "symbol": "Box.size", "rev": "HEAD~2"})
    assert nowhere.is_error and "nothing.py is not a file in the workspace nor at HEAD~2" in nowhere.content
    # At a revision after the rename the file is read under its name now, and no note is added.
    now = tools.execute("git_log", {"path": "arith.py", "symbol": "Box.size", "rev": "HEAD"})
    assert not now.is_error and "fix: Box.size is 3" in now.content and "named" not in now.content

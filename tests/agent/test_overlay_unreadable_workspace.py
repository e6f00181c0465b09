"""Workspace files agentls cannot read: a file (`locked.py`) and a folder (`closed/`) of another owner with
mode 000, as a container's or another user's files can be.

The first copy of the workspace leaves them out and names them: the bash tool's first result says so, and
the verification checks nothing on such a copy and says why. A command that writes at `locked.py` in the
copy is not folded back (the overlay has no base to compare with: nothing is proposed for it), and the
result says why; the editor tool refuses the file and the folder with the reason, never an exception's
repr. The overlay answered all three with a PermissionError before.

The tests run as root, which reads anyway: the steps run in a child process in a user namespace of its own
without a mapping (``unshare -U``, tests/agent/userns.py), where the files' owner (1234) is another user
and the permission bits apply.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolRegistry
from agent.tools.bash import BashTool
from agent.tools.editor import EditorTool
from tests.agent.userns import in_child, print_verification, skip_unless_chmod_denies, warnings_of

_EDITS: list[dict[str, Any]] = [
    {"command": "view", "path": "locked.py"},
    {"command": "str_replace", "path": "locked.py", "old_str": "L = 1", "new_str": "L = 2"},
    {"command": "create", "path": "locked.py", "file_text": "L = 2\n"},
    {"command": "view", "path": "closed"},
    {"command": "view", "path": "closed/inner.py"},
    {"command": "view", "path": "."},
]


def _bash(ws: str, scratch: str) -> None:
    """The child process: the overlay edits a.py; a command writes locked.py and a.py, one deletes
    locked.py, then the editor's commands on the unreadable file and folder. Prints the results, the
    overlay's changes and the warnings as JSON. Unsandboxed: bubblewrap cannot make its namespaces here."""
    warnings = warnings_of("agent.overlay")
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    results = []
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        tools = ToolRegistry([bash, EditorTool(overlay)])
        for command in ("ls; cat a.py; echo 'L = 2' > locked.py; echo 'A = 3' > a.py", "rm locked.py"):
            result = tools.execute("bash", {"command": command})
            results.append([result.content, result.is_error])
        edits = [tools.execute("str_replace_based_edit_tool", edit) for edit in _EDITS]
    print(
        json.dumps(
            {
                "results": results,
                "edits": [[edit.content, edit.is_error] for edit in edits],
                "kinds": {c.path: c.kind for c in overlay.changes()},
                "a": overlay.read("a.py"),
                "warnings": warnings,
            }
        )
    )


def _verify(ws: str, scratch: str) -> None:
    """The child process: the verification of an overlay that edits a.py."""
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    print_verification(overlay, scratch)


def _verify_ignored(ws: str, scratch: str, create: str) -> None:
    """The child process: the verification of an overlay that edits a.py, and creates build/gen.py when
    `create` is "1"."""
    overlay = Overlay(Path(ws))
    overlay.write("a.py", "A = 2\n")
    if create == "1":
        overlay.create("build/gen.py", "G = 1\n")
    print_verification(overlay, scratch)


def _made_readable(ws: str, scratch: str) -> None:
    """The child process: locked.py and closed/ (this process's own files here) are made unreadable
    (mode 000), a first command and the editor meet them so; then they are made readable again, as the user
    would fix them, and the editor and the next commands use them."""
    root = Path(ws)
    (root / "locked.py").chmod(0)
    (root / "closed").chmod(0)
    overlay = Overlay(root)
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        tools = ToolRegistry([bash, EditorTool(overlay)])
        view = {"command": "view", "path": "locked.py"}
        first = tools.execute("bash", {"command": "cat locked.py closed/inner.py"})
        refused = tools.execute("str_replace_based_edit_tool", view)
        (root / "locked.py").chmod(0o644)
        (root / "closed").chmod(0o755)
        shown = tools.execute("str_replace_based_edit_tool", view)
        command = "cat locked.py closed/inner.py; echo 'L = 2' > locked.py; echo 'I = 2' > closed/inner.py"
        second = tools.execute("bash", {"command": command})
        third = tools.execute("bash", {"command": "cat locked.py closed/inner.py"})
    print(
        json.dumps(
            {
                "first": first.content,
                "refused": [refused.content, refused.is_error],
                "shown": [shown.content, shown.is_error],
                "second": second.content,
                "third": third.content,
                "changes": {c.path: [c.kind, c.base_text, c.new_text] for c in overlay.changes()},
            }
        )
    )


def _own_workspace(tmp_path: Path) -> Path:
    """a.py, locked.py and closed/inner.py, of the tests' own owner: the child makes them unreadable (and
    readable again) itself, as the user would."""
    skip_unless_chmod_denies(tmp_path)
    ws = tmp_path / "ws"
    (ws / "closed").mkdir(parents=True)
    for rel, text in {"a.py": "A = 1\n", "locked.py": "L = 1\n", "closed/inner.py": "I = 1\n"}.items():
        (ws / rel).write_text(text)
    (tmp_path / "scratch").mkdir()
    return ws


def test_an_unreadable_workspace_file_the_user_makes_readable_is_used_from_then_on(tmp_path: Path) -> None:
    """locked.py and closed/ could not be read when the run began, and the user then gives them a readable
    mode: the editor shows locked.py at once, the next command's copy holds both (the result says they were
    copied), and what that command writes there is kept and proposed against the workspace's text. Before,
    they stayed unreadable for the whole run: the editor refused locked.py, commands did not see them and
    their changes to them were not kept."""
    ws = _own_workspace(tmp_path)
    seen = in_child(__name__, "_made_readable", str(ws), str(tmp_path / "scratch"))
    first = seen["first"]
    assert "[could not copy" in first and "closed/ (Permission denied)" in first, first
    assert "locked.py (Permission denied)" in first, first
    assert seen["refused"][1] and "Cannot read locked.py in the workspace" in seen["refused"][0], seen
    assert not seen["shown"][1] and "L = 1" in seen["shown"][0], seen
    second = seen["second"]
    assert second.startswith("L = 1\nI = 1\n"), second
    assert "[copied closed/, locked.py from the workspace into the copy before the command" in second, second
    assert "not kept" not in second and "could not copy" not in second, second
    assert seen["third"].startswith("L = 2\nI = 2") and "copied" not in seen["third"], seen
    assert seen["changes"] == {
        "closed/inner.py": ["modified", "I = 1\n", "I = 2\n"],
        "locked.py": ["modified", "L = 1\n", "L = 2\n"],
    }, seen


def _made_readable_behind_links(ws: str, scratch: str) -> None:
    """The child process: a command replaces the copy's empty closed/ and the missing locked.py with links to
    the real workspace's (on the host they lead out of the copy, into the user's tree); then the user makes
    both readable, and the next command's update copies them."""
    root = Path(ws)
    (root / "locked.py").chmod(0)
    (root / "closed").chmod(0)
    overlay = Overlay(root)
    with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
        tools = ToolRegistry([bash])
        links = f"rmdir closed && ln -s {root}/closed closed && ln -s {root}/locked.py locked.py"
        tools.execute("bash", {"command": links})
        (root / "locked.py").chmod(0o644)
        (root / "closed").chmod(0o755)
        second = tools.execute("bash", {"command": "cat locked.py closed/inner.py"})
        copy = bash._dest
        assert copy is not None
        kinds = {rel: (copy / rel).is_symlink() for rel in ("closed", "locked.py")}
    changes = [c.path for c in overlay.changes()]
    print(json.dumps({"second": second.content, "links": kinds, "changes": changes}))


def test_what_the_user_makes_readable_is_never_copied_through_a_commands_link(tmp_path: Path) -> None:
    """The copy of a folder or file that becomes readable goes where the copy has it, never through a link a
    command left at its place: a link out of the copy would have the copy write into the user's tree."""
    ws = _own_workspace(tmp_path)
    seen = in_child(__name__, "_made_readable_behind_links", str(ws), str(tmp_path / "scratch"))
    assert seen["second"].startswith("L = 1\nI = 1"), seen
    assert seen["links"] == {"closed": False, "locked.py": False}, seen
    assert sorted(p.name for p in (ws / "closed").iterdir()) == ["inner.py"], seen
    assert (ws / "locked.py").read_text() == "L = 1\n", seen
    assert (ws / "closed" / "inner.py").read_text() == "I = 1\n", seen
    assert seen["changes"] == [], seen


def _written_in_a_closed_folder(ws: str, scratch: str) -> None:
    """The child process, once with the copy watched and once walked after each command: closed/ is made
    unreadable, a command writes new files in the copy's closed/ (not kept: the folder had no base), the
    user makes closed/ readable, and a command that writes nothing runs."""
    root = Path(ws)
    seen: dict[str, Any] = {}
    for watch in (True, False):
        (root / "closed").chmod(0)
        overlay = Overlay(root, watch_copies=watch)
        with BashTool(overlay, Sandbox(SandboxSettings(enabled=False)), scratch_dir=Path(scratch)) as bash:
            tools = ToolRegistry([bash])
            write = "echo 'N = 1' > closed/new.py && mkdir closed/sub && echo 'D = 1' > closed/sub/deep.py"
            first = tools.execute("bash", {"command": write})
            (root / "closed").chmod(0o755)
            second = tools.execute("bash", {"command": "cat closed/new.py closed/inner.py"})
        changes = {c.path: [c.kind, c.base_text, c.new_text] for c in overlay.changes()}
        seen["watched" if watch else "walked"] = {
            "first": first.content,
            "second": second.content,
            "changes": changes,
        }
    print(json.dumps(seen))


def test_files_a_command_wrote_in_a_folder_the_user_makes_readable_are_proposed(tmp_path: Path) -> None:
    """What a command created in the copy's closed/ while agentls could not read the workspace's closed/ is
    not kept then (no base to compare with); once the user makes closed/ readable and the next update copies
    it, those files are taken at the next fold-back like any file a command created, though no command
    wrote them since. Before, they stayed in the copy unknown to the overlay until a command changed them."""
    ws = _own_workspace(tmp_path)
    seen = in_child(__name__, "_written_in_a_closed_folder", str(ws), str(tmp_path / "scratch"))
    for how in ("watched", "walked"):
        run = seen[how]
        assert "not kept" in run["first"] and "closed/new.py" in run["first"], (how, run)
        assert run["second"].startswith("N = 1\nI = 1"), (how, run)
        assert run["changes"] == {
            "closed/new.py": ["created", "", "N = 1\n"],
            "closed/sub/deep.py": ["created", "", "D = 1\n"],
        }, (how, run)
    assert sorted(p.name for p in (ws / "closed").iterdir()) == ["inner.py"]


def _reverify_user_excluded(ws: str, scratch: str, config: str) -> None:
    """The child process: the language server's ``agentls.reverify`` of a pending proposal that edits
    a.py, with the folder's settings read as the server reads them (the user's file in `config` is
    ``$XDG_CONFIG_HOME/agentls/agentls.toml``); only the agent's are made fast and unsandboxed here."""
    import asyncio
    from collections.abc import Coroutine

    from agent.overlay import FileChange
    from agent.proposal import Proposal
    from agent.usage import Usage
    from server.documents import DocumentStore
    from server.features.runs.manager import RunManager
    from server.settings import load_settings
    from tests.agent.agent_harness import fast_settings

    root = Path(ws)
    loaded = load_settings(root, env={"XDG_CONFIG_HOME": config})
    fast = fast_settings(sandbox=SandboxSettings(enabled=False, scratch_dir=scratch))
    settings = loaded.settings.model_copy(update={"agent": fast})

    class Workspace:
        def __init__(self) -> None:
            self.roots = [root]
            self.documents = DocumentStore(1_000_000)
            self.env: dict[str, str] = {}
            self.cache_dir = Path(scratch) / "cache"

        def settings_for(self, folder: Path) -> Any:
            return settings

        def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:
            return asyncio.get_running_loop().create_task(coro)

    class Editor:
        handles_proposals = True

        def notify(self, method: str, params: Any) -> None: ...

        def show(self, message: str, kind: Any = None) -> None: ...

        def refresh_lenses(self) -> None: ...

    change = FileChange("a.py", "modified", None, "A = 1\n", "A = 2\n", None, "")
    proposal = Proposal("p1", "r1", "edit a.py", (change,), "", Usage(), 0.0, False, "not verified")
    manager = RunManager(Editor(), Workspace())  # type: ignore[arg-type]
    manager.proposals.add(proposal, root, "implement")
    details = asyncio.run(manager.reverify("p1"))
    print(json.dumps({"summary": details.verification_summary, "sources": list(loaded.sources)}))


def test_a_reverify_leaves_out_what_the_users_exclude_setting_leaves_out(tmp_path: Path) -> None:
    """The user's own ``index.exclude`` (their settings file, merged with the workspace's and the
    editor's as the index has it) leaves out private/, which holds a file agentls cannot read: the
    verification the language server runs for ``agentls.reverify`` runs its checks without it and names it
    in a note. Before, that verification had no index and so only the default exclude: it failed as an
    environment problem naming private/key.py."""
    skip_unless_chmod_denies(tmp_path)
    ws = tmp_path / "ws"
    (ws / "private").mkdir(parents=True)
    (ws / "a.py").write_text("A = 1\n")
    (ws / "private" / "key.py").write_text("K = 1\n")
    os.chown(ws / "private" / "key.py", 1234, 1234)
    (ws / "private" / "key.py").chmod(0)
    (tmp_path / "scratch").mkdir()
    config = tmp_path / "config"
    (config / "agentls").mkdir(parents=True)
    (config / "agentls" / "agentls.toml").write_text('[index]\nexclude = ["private/"]\n')
    seen = in_child(__name__, "_reverify_user_excluded", str(ws), str(tmp_path / "scratch"), str(config))
    assert str(config / "agentls" / "agentls.toml") in seen["sources"], seen
    summary = seen["summary"]
    assert "environment problem" not in summary and "syntax python" in summary, summary
    assert "private/key.py (Permission denied)" in summary, summary


def _run_user_excluded(ws: str, scratch: str, config: str, model_url: str, runs: str) -> None:
    """The child process: a run (`agent.runner.start_run`, as the language server, the CLI and ACP start
    one) with the folder's index settings read as they read them, whose model calls `run_tests` once."""
    from agent.runner import Credentials, start_run
    from server.settings import load_settings
    from tests.agent.agent_harness import FAST_MODEL, fast_settings, mean_task

    root = Path(ws)
    loaded = load_settings(root, env={"XDG_CONFIG_HOME": config})
    settings = fast_settings(
        sandbox=SandboxSettings(enabled=False, scratch_dir=scratch),
        model=FAST_MODEL.model_copy(update={"base_url": model_url}),
        verify=False,
    )
    credentials = Credentials.from_env({"ANTHROPIC_API_KEY": "sk-test"}, settings.model)
    handle = start_run(
        mean_task(root),
        root=root,
        settings=settings,
        credentials=credentials,
        runs_dir=Path(runs),
        index_settings=loaded.settings.index,
    )
    result = handle.wait(120)
    print(json.dumps({"status": result.status if result is not None else None}))


def test_a_runs_run_tests_leaves_out_what_the_users_exclude_setting_leaves_out(
    tmp_path: Path, fake_anthropic: Any
) -> None:
    """The same through a run: its `run_tests` (the tool's verifier, built for the run) gets the index
    settings the run was started with, so private/ (the user's exclude) does not stop the tests; the
    result the model gets names private/key.py in a note. The run has no index here, as a run started
    before its folder's index has tables."""
    from tests.agent.agent_harness import copy_workspace, done
    from tests.fakes.anthropic_server import tool_use, turn

    skip_unless_chmod_denies(tmp_path)
    ws = copy_workspace(tmp_path / "ws")
    (ws / "private").mkdir()
    (ws / "private" / "key.py").write_text("K = 1\n")
    os.chown(ws / "private" / "key.py", 1234, 1234)
    (ws / "private" / "key.py").chmod(0)
    (tmp_path / "scratch").mkdir()
    (tmp_path / "runs").mkdir()
    config = tmp_path / "config"
    (config / "agentls").mkdir(parents=True)
    (config / "agentls" / "agentls.toml").write_text('[index]\nexclude = ["private/"]\n')
    fake_anthropic.enqueue(turn(tool_use("run_tests", {"path": "tests"})), done("Ran the tests."))
    args = (str(ws), str(tmp_path / "scratch"), str(config), fake_anthropic.url, str(tmp_path / "runs"))
    seen = in_child(__name__, "_run_user_excluded", *args)
    assert seen["status"] == "no_changes", seen
    body = fake_anthropic.message_requests[1].body
    results = [b for b in body["messages"][-1]["content"] if b.get("type") == "tool_result"]
    tested = json.dumps(results)
    assert "environment problem" not in tested.lower() and "pytest" in tested, tested
    assert "private/key.py (Permission denied)" in tested, tested


def _team_user_excluded(ws: str, scratch: str, config: str, model_url: str, runs: str) -> None:
    """The child process: a team run (the shop feature of tests/agent/team) with private/key.py made
    unreadable and the folder's index settings read as the server reads them; prints the run's status and
    its verifications' summaries."""
    from agent.runner import Credentials, start_run
    from agent.task_builders import run_task
    from server.settings import load_settings
    from tests.agent.agent_harness import FAST_MODEL, fast_settings
    from tests.agent.team.team_harness import INSTRUCTION

    root = Path(ws)
    (root / "private" / "key.py").chmod(0)
    loaded = load_settings(root, env={"XDG_CONFIG_HOME": config})
    settings = fast_settings(
        sandbox=SandboxSettings(enabled=False, scratch_dir=scratch),
        model=FAST_MODEL.model_copy(update={"base_url": model_url}),
    )
    settings.team.confirm_spec = False
    credentials = Credentials.from_env({"ANTHROPIC_API_KEY": "sk-test"}, settings.model)
    handle = start_run(
        run_task(INSTRUCTION, root=root),
        root=root,
        settings=settings,
        credentials=credentials,
        runs_dir=Path(runs),
        mode="team",
        index_settings=loaded.settings.index,
    )
    result = handle.wait(240)
    assert result is not None
    summaries = [v.summary() for v in result.verifications]
    print(json.dumps({"status": result.status, "verifications": summaries}))


def test_a_team_runs_checks_leave_out_what_the_users_exclude_setting_leaves_out(tmp_path: Path) -> None:
    """A team run hands the index settings to its roles' `run_tests` and to its own final verification:
    QA's test runs and the run's verification run without private/key.py (the user's exclude) and name it."""
    from tests.agent.team.team_harness import RoleScript, feature_script, shop_workspace
    from tests.fakes.anthropic_server import FakeAnthropic

    skip_unless_chmod_denies(tmp_path)
    ws = shop_workspace(tmp_path / "ws")
    (ws / "private").mkdir()
    (ws / "private" / "key.py").write_text("K = 1\n")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "runs").mkdir()
    config = tmp_path / "config"
    (config / "agentls").mkdir(parents=True)
    (config / "agentls" / "agentls.toml").write_text('[index]\nexclude = ["private/"]\n')
    roles = RoleScript(feature_script())
    with FakeAnthropic(responder=roles) as fake:
        args = (str(ws), str(tmp_path / "scratch"), str(config), fake.url, str(tmp_path / "runs"))
        seen = in_child(__name__, "_team_user_excluded", *args)
    assert seen["status"] == "proposed", seen
    tested = [
        json.dumps(block)
        for body, role in zip(roles.bodies, roles.calls, strict=True)
        if role == "qa"
        for block in body["messages"][-1]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result" and "pytest" in json.dumps(block)
    ]
    assert tested and all("private/key.py (Permission denied)" in text for text in tested), tested
    assert not any("environment problem" in text.lower() for text in tested), tested
    assert seen["verifications"], seen
    final = seen["verifications"][-1]
    assert "environment problem" not in final and "private/key.py (Permission denied)" in final, final


def _ignored_workspace(tmp_path: Path) -> Path:
    """a.py, and of owner 1234: build/ (gitignored, mode 111: it can be searched, not listed) holding
    out.o, run.log (gitignored by `*.log`) and notes.txt (in .agentlsignore) with mode 000."""
    skip_unless_chmod_denies(tmp_path)
    ws = tmp_path / "ws"
    (ws / "build").mkdir(parents=True)
    for rel, text in {
        "a.py": "A = 1\n",
        ".gitignore": "build/\n*.log\n",
        ".agentlsignore": "notes.txt\n",
        "build/out.o": "o\n",
        "run.log": "log\n",
        "notes.txt": "n\n",
    }.items():
        (ws / rel).write_text(text)
    for rel, mode in {"build/out.o": 0, "build": 0o111, "run.log": 0, "notes.txt": 0}.items():
        os.chown(ws / rel, 1234, 1234)
        (ws / rel).chmod(mode)
    (tmp_path / "scratch").mkdir()
    return ws


def test_a_verification_runs_without_ignored_workspace_files_it_could_not_copy_and_names_them(
    tmp_path: Path,
) -> None:
    """build/, run.log and notes.txt cannot be copied, but .gitignore or .agentlsignore leaves them out
    (the walker's rules, as the index has them) and the change touches none: the checks run, and one
    note of the result names them and why. 4cc4a03 failed the verification as an environment problem."""
    ws = _ignored_workspace(tmp_path)
    seen = in_child(__name__, "_verify_ignored", str(ws), str(tmp_path / "scratch"), "0")
    assert seen["environment"] == "" and seen["outcome"] != "failed", seen
    assert seen["commands"] and all(seen["commands"]), seen
    notes = [line for line in seen["summary"].splitlines() if line.startswith("- note: the verification's")]
    assert len(notes) == 1, seen
    for name in (
        "build/ (Permission denied)",
        "run.log (Permission denied)",
        "notes.txt (Permission denied)",
    ):
        assert name in notes[0], seen
    assert "ignored (.gitignore, .agentlsignore or the exclude setting)" in notes[0], seen
    assert seen["left"] == [], seen


def test_a_verification_whose_change_is_in_an_ignored_folder_it_could_not_copy_checks_nothing(
    tmp_path: Path,
) -> None:
    """The change creates build/gen.py in the ignored build/ the copy could not list: the copy lacks what
    the change's file sits beside, so nothing is checked and the environment problem names build/ (and not
    the ignored files the change does not touch)."""
    ws = _ignored_workspace(tmp_path)
    seen = in_child(__name__, "_verify_ignored", str(ws), str(tmp_path / "scratch"), "1")
    assert seen["outcome"] == "failed" and seen["commands"] == [""], seen
    assert "the workspace's build/ (Permission denied)" in seen["environment"], seen
    assert "run.log" not in seen["environment"], seen
    assert "- note: " in seen["summary"] and "run.log (Permission denied)" in seen["summary"], seen
    assert seen["left"] == [], seen


def _workspace(tmp_path: Path) -> Path:
    """a.py, sub/f.py, and locked.py and closed/inner.py of owner 1234 with mode 000."""
    skip_unless_chmod_denies(tmp_path)
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "closed").mkdir()
    for rel, text in {
        "a.py": "A = 1\n",
        "sub/f.py": "F = 1\n",
        "locked.py": "L = 1\n",
        "closed/inner.py": "I = 1\n",
    }.items():
        (ws / rel).write_text(text)
    for rel in ("locked.py", "closed/inner.py", "closed"):
        os.chown(ws / rel, 1234, 1234)
        (ws / rel).chmod(0)
    (tmp_path / "scratch").mkdir()
    return ws


def test_the_bash_tool_names_unreadable_workspace_files_and_keeps_nothing_of_them(tmp_path: Path) -> None:
    """The first result names locked.py and closed/ with the reason, the command still runs; what it writes
    at locked.py (and its deletion later) is not kept, and the result says why; its a.py is kept."""
    ws = _workspace(tmp_path)
    seen = in_child(__name__, "_bash", str(ws), str(tmp_path / "scratch"))
    (first, first_error), (second, second_error) = seen["results"]
    assert first.startswith("a.py\nclosed\nsub\nA = 2\n"), seen
    assert not first_error and not second_error, seen
    assert (
        "\n[not kept: the command's changes to locked.py (Permission denied), which agentls cannot read in "
        "the workspace: with nothing to compare them with, no change to them can be proposed]" in first
    ), seen
    note = first[first.index("[could not copy ") :]
    assert "locked.py (Permission denied)" in note and "closed/ (Permission denied)" in note, seen
    assert note.endswith(
        "from the workspace into the copy commands run on: commands do not see them (a "
        "folder is there, empty), so tests that need them fail for that reason]"
    ), seen
    assert "[could not copy" not in second and "locked.py (Permission denied)" in second, seen
    assert seen["kinds"] == {"a.py": "modified"} and seen["a"] == "A = 3\n", seen
    copy_warnings = [w for w in seen["warnings"] if w.startswith("could not copy")]
    assert len(copy_warnings) == 1 and "locked.py (Permission denied)" in copy_warnings[0], seen


def test_the_editor_refuses_unreadable_workspace_files_with_the_reason(tmp_path: Path) -> None:
    """view, str_replace and create of locked.py, view of closed/ and closed/inner.py: errors that say
    agentls cannot read them and why, not an exception's repr; a view of the root marks closed/."""
    ws = _workspace(tmp_path)
    seen = in_child(__name__, "_bash", str(ws), str(tmp_path / "scratch"))
    *refused, (root, root_error) = seen["edits"]
    for (text, is_error), path in zip(
        refused, ("locked.py", "locked.py", "locked.py", "closed", "closed/inner.py"), strict=True
    ):
        assert is_error, seen
        assert "PermissionError" not in text and "Permission denied" in text, text
        assert text.startswith((f"Cannot read {path} in the workspace", f"Cannot list the folder {path} ")), (
            text
        )
    assert not root_error and "/closed/ (agentls cannot list it)\n" in root and "/sub/f.py\n" in root, root


def test_a_verification_of_a_workspace_with_unreadable_files_checks_nothing_and_says_why(
    tmp_path: Path,
) -> None:
    """The verification's copy lacks locked.py and closed/: no check runs, the verification fails as an
    environment problem naming them and why, and its copy is removed."""
    ws = _workspace(tmp_path)
    seen = in_child(__name__, "_verify", str(ws), str(tmp_path / "scratch"))
    assert seen["outcome"] == "failed" and seen["commands"] == [""], seen
    assert "locked.py (Permission denied)" in seen["environment"], seen
    assert "closed/ (Permission denied)" in seen["environment"], seen
    assert "make them readable to agentls" in seen["environment"], seen
    assert seen["summary"].startswith("Not verified: an environment problem, not the change"), seen
    assert seen["left"] == [], seen

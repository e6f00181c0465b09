"""Governed installs (`agent.installs`): the model's `install_package` goes through the user's approval,
installs from a local package index (an HTTP server on 127.0.0.1 standing in for PyPI, allowed by the
sandbox's network policy) into the run's own package layer, never the user's environment, and proposes
the manifest edit; the tests then pass in the sandbox. Refused or without network, nothing is installed.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.installs import InstallPackageTool, InstallSettings, add_requirement
from agent.overlay import Overlay
from agent.sandbox import Sandbox, SandboxSettings
from agent.task_builders import run_task
from agent.tools import ToolError, ToolRegistry
from agent.transcript import load_run
from server.cli.agent import _show_run
from tests.agent.agent_harness import Harness, bash, done, fast_settings
from tests.agent.test_overlay import disk_snapshot
from tests.fakes.anthropic_server import FakeAnthropic, tool_use

WHEEL = "demo_dep-1.0-py3-none-any.whl"


def _wheel(path: Path) -> None:
    files = {
        "demo_dep/__init__.py": "def answer():\n    return 42\n",
        "demo_dep-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: demo-dep\nVersion: 1.0\n",
        "demo_dep-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "demo_dep-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in {**files, "demo_dep-1.0.dist-info/RECORD": record}.items():
            wheel.writestr(name, text)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[int]:
    """A PEP 503 simple index on 127.0.0.1 (directory listings) holding one wheel; yields its port."""
    folder = tmp_path / "index" / "simple" / "demo-dep"
    folder.mkdir(parents=True)
    _wheel(folder / WHEEL)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0.1"\ndependencies = []\n')
    (root / "app.py").write_text("import demo_dep\n\n\ndef answer():\n    return demo_dep.answer()\n")
    (root / "tests" / "test_app.py").write_text(
        "from app import answer\n\n\ndef test_answer():\n    assert answer() == 42\n"
    )
    return root


def _settings(port: int, network: str = "registries", approve: str = "ask") -> Any:
    return fast_settings(
        approve=approve,
        test_command="PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python3 -m pytest -q -p no:cacheprovider tests",
        sandbox=SandboxSettings(timeout_seconds=60, network=network, allowed_hosts=[f"127.0.0.1:{port}"]),
        install={"index_url": f"http://127.0.0.1:{port}/simple/", "timeout_seconds": 60},
    )


class Answers:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.questions: list[str] = []

    def __call__(self, question: str, options: Sequence[str]) -> str:
        self.questions.append(question)
        return self.answer


def test_an_approved_install_lands_in_the_run_layer_and_the_proposal_edits_the_manifest(
    fake_anthropic: FakeAnthropic,
    project: Path,
    index: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = disk_snapshot(project)
    harness = Harness(fake_anthropic, project, tmp_path / "runs")
    fake_anthropic.enqueue(
        bash("python3 -c 'import app'"),
        tool_use("install_package", {"package": "demo-dep"}),
        bash("python3 -c 'import app; print(app.answer())'"),
        done("Installed demo-dep; the test passes."),
    )
    answers = Answers("Allow")
    result = harness.run(run_task("Make the tests pass", root=project), _settings(index), ask=answers)

    first = harness.tool_results(1)[0]
    assert "ModuleNotFoundError" in str(first["content"])
    installed = str(harness.tool_results(2)[0]["content"])
    assert "demo-dep 1.0" in installed and "Added `demo-dep>=1.0` to pyproject.toml" in installed
    assert str(harness.tool_results(3)[0]["content"]).strip() == "42"  # the bash session imports it
    assert result.proposal is not None and result.proposal.verified, result.summary
    assert [f.path for f in result.proposal.files] == ["pyproject.toml"]
    assert '+dependencies = ["demo-dep>=1.0"]' in result.proposal.diff
    assert disk_snapshot(project) == before  # the user's files and environment are untouched
    # Asked once: the answer to the install covers the index's host (no second question about it), and
    # the answer and every request of the install are recorded.
    assert len(answers.questions) == 1, answers.questions
    assert "install `demo-dep` from 127.0.0.1 into this run's environment" in answers.questions[0]
    records = harness.transcript_records(result)
    approvals = [(r["subject"], r["approved"]) for r in records if r["type"] == "approval"]
    assert approvals == [("install", True)]
    network = [r for r in records if r["type"] == "network"]
    assert network and all(r["allowed"] and r["port"] == index for r in network)
    assert {r["reason"] for r in network} == {"allowlisted; approved with the install of demo-dep"}
    assert any(r["target"].endswith(f"/{WHEEL}") for r in network)
    (install,) = [r for r in records if r["type"] == "decision" and r["kind"] == "install"]
    assert install["installed"] == {"demo-dep": "1.0"} and install["manifest"] == "pyproject.toml"
    _show_run(load_run(tmp_path / "runs", result.run_id))  # `agentls runs ID`
    shown = capsys.readouterr().out
    assert "install demo-dep: demo-dep 1.0, added to pyproject.toml" in shown
    assert "approval (install) demo-dep: approved" in shown


def test_a_refused_install_installs_nothing_and_off_offers_no_install(
    fake_anthropic: FakeAnthropic, project: Path, index: int, tmp_path: Path
) -> None:
    harness = Harness(fake_anthropic, project, tmp_path / "runs")
    fake_anthropic.enqueue(tool_use("install_package", {"package": "demo-dep"}), done("Could not install."))
    answers = Answers("Deny")
    settings = _settings(index).model_copy(update={"verify": False})
    result = harness.run(run_task("Make the tests pass", root=project), settings, ask=answers)
    refusal = harness.tool_results(1)[0]
    assert refusal.get("is_error") and "did not approve installing demo-dep" in str(refusal["content"])
    assert result.proposal is None or not result.proposal.files
    records = harness.transcript_records(result)
    assert [r for r in records if r["type"] == "network"] == []
    assert [(r["subject"], r["approved"]) for r in records if r["type"] == "approval"] == [("install", False)]

    # network = "off": the tool is not offered, and the prompt says there is no network.
    fake_anthropic.enqueue(done("No network: I left the import as it is."))
    count = len(fake_anthropic.message_requests)
    harness.run(run_task("Make the tests pass", root=project), _settings(index, network="off"))
    body = fake_anthropic.message_requests[count].body
    assert "install_package" not in [tool["name"] for tool in body["tools"]]
    assert "There is no network" in str(body["system"])


def test_an_install_whose_manifest_edit_fails_is_recorded_and_still_usable(
    fake_anthropic: FakeAnthropic,
    project: Path,
    index: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pip succeeds, then the manifest edit fails (a Poetry project has no [project] table for the
    `manifest` the model named): the install is still an `install` record of the transcript, with why the
    manifest was not changed; the result is an error saying what is installed and what to do; the package
    stays usable for the run."""
    poetry = '[tool.poetry]\nname = "app"\n\n[tool.poetry.dependencies]\npython = "^3.11"\n'
    (project / "pyproject.toml").write_text(poetry)
    harness = Harness(fake_anthropic, project, tmp_path / "runs")
    fake_anthropic.enqueue(
        tool_use("install_package", {"package": "demo-dep", "manifest": "pyproject.toml"}),
        bash("python3 -c 'import app; print(app.answer())'"),
        done("demo-dep is installed; add it to [tool.poetry.dependencies]."),
    )
    settings = _settings(index, approve="auto").model_copy(update={"verify": False})
    result = harness.run(run_task("Make the tests pass", root=project), settings)

    (failed,) = harness.tool_results(1)
    content = str(failed["content"])
    assert failed.get("is_error")
    assert content.startswith("Installed demo-dep 1.0 into this run's environment, but the manifest")
    assert "no [project] table" in content and "Add `demo-dep>=1.0` to the project's dependencies" in content
    assert str(harness.tool_results(2)[0]["content"]).strip() == "42"  # still installed for the run
    assert (project / "pyproject.toml").read_text() == poetry
    records = harness.transcript_records(result)
    (install,) = [r for r in records if r["type"] == "decision" and r["kind"] == "install"]
    assert install["installed"] == {"demo-dep": "1.0"} and install["exit_code"] == 0
    assert install["manifest"] is None and "no [project] table" in install["manifest_error"]
    _show_run(load_run(tmp_path / "runs", result.run_id))  # `agentls runs ID`
    shown = capsys.readouterr().out
    assert "install demo-dep: demo-dep 1.0; the manifest was not changed: could not add" in shown


def test_each_install_records_what_it_installed_not_what_the_run_had_already(
    fake_anthropic: FakeAnthropic, project: Path, index: int, tmp_path: Path
) -> None:
    """A misspelt name the index does not have fails as pip says, and its transcript record installs
    nothing (it listed the packages earlier installs of the run had put in the layer)."""
    harness = Harness(fake_anthropic, project, tmp_path / "runs")
    fake_anthropic.enqueue(
        tool_use("install_package", {"package": "demo-dep"}),
        tool_use("install_package", {"package": "demo-dpe"}),
        done("demo-dep is installed."),
    )
    settings = _settings(index, approve="auto").model_copy(update={"verify": False})
    result = harness.run(run_task("Make the tests pass", root=project), settings)
    typo = harness.tool_results(2)[0]
    assert typo.get("is_error") and "No matching distribution found for demo-dpe" in str(typo["content"])
    records = harness.transcript_records(result)
    installs = [r for r in records if r["type"] == "decision" and r["kind"] == "install"]
    assert [(r["requirement"], r["installed"], r["exit_code"]) for r in installs] == [
        ("demo-dep", {"demo-dep": "1.0"}, 0),
        ("demo-dpe", {}, 1),
    ]


def test_a_package_that_is_not_one_requirement_is_refused_saying_what_to_send(project: Path) -> None:
    """What models send instead of one requirement (a pip command, several packages, a URL) is refused
    before anything runs, saying what to send instead (it was the parser's "Expected semicolon ...")."""
    sandbox = Sandbox(SandboxSettings(timeout_seconds=60, network="registries"))
    tool = InstallPackageTool(Overlay(project), sandbox)
    registry = ToolRegistry([tool])
    expected = {
        "numpy pandas": "install_package installs one requirement per call: call it once for each of "
        "`numpy`, `pandas`",
        "requests, urllib3>=2": "call it once for each of `requests`, `urllib3>=2`",
        "pip install -U requests": "give `package` the requirement alone, without a command: not "
        "'pip install -U requests' but `requests`",
        "git+https://github.com/psf/requests": "only packages from the index can be installed",
        "requests>=": "'requests>=' is not a package requirement (",
    }
    for package, message in expected.items():
        result = registry.execute("install_package", {"package": package})
        assert result.is_error and message in result.content, (package, result.content)
        assert "Expected semicolon" not in result.content or package == "requests>="
    assert tool.layer is None  # nothing was installed


def test_the_manifest_edit_keeps_existing_entries_and_requirements_files(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = [\n    "attrs>=23",  # pinned\n]\n'
        "\n[tool.ruff]\nline-length = 90\n"
    )
    overlay = Overlay(tmp_path)
    assert add_requirement(overlay, "demo-dep>=1.0") == ("pyproject.toml", True)
    assert overlay.read("pyproject.toml").startswith(
        '[project]\nname = "x"\ndependencies = [\n    "attrs>=23",  # pinned\n    "demo-dep>=1.0",\n]\n'
    )
    assert add_requirement(overlay, "Demo_Dep>=2") == ("pyproject.toml", False)  # already there
    assert add_requirement(overlay, "six", "requirements-dev.txt") == ("requirements-dev.txt", True)
    assert overlay.read("requirements-dev.txt") == "six\n"
    assert not (tmp_path / "requirements-dev.txt").exists()


def test_dynamic_dependencies_go_to_the_file_they_are_read_from(tmp_path: Path) -> None:
    """A pyproject.toml that declares its dependencies dynamic gets no static list (setuptools would refuse
    to build the project): the requirement goes to the file they are read from."""
    pyproject = (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "x"\nversion = "0.1"\ndynamic = ["dependencies"]\n\n'
        '[tool.setuptools.dynamic]\ndependencies = {file = ["requirements.in"]}\n'
    )
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "requirements.in").write_text("attrs\n")
    overlay = Overlay(tmp_path)
    assert add_requirement(overlay, "demo-dep>=1.0") == ("requirements.in", True)
    assert overlay.read("requirements.in") == "attrs\ndemo-dep>=1.0\n"
    assert overlay.read("pyproject.toml") == pyproject
    with pytest.raises(ToolError, match=r"dynamic.*give `manifest` requirements.in"):
        add_requirement(overlay, "six", "pyproject.toml")
    # The tool refuses that manifest before pip runs: nothing is installed.
    tool = InstallPackageTool(overlay, Sandbox(SandboxSettings(network="registries")))
    call = {"package": "six", "manifest": "pyproject.toml"}
    refused = ToolRegistry([tool]).execute("install_package", call)
    assert refused.is_error and "[project].dynamic" in refused.content and tool.layer is None
    # The project as proposed still builds: setuptools reads both the metadata and the new requirement.
    for name in ("pyproject.toml", "requirements.in"):
        (tmp_path / name).write_text(overlay.read(name))
    from setuptools.config.pyprojecttoml import read_configuration

    read = read_configuration(tmp_path / "pyproject.toml")
    assert read["project"]["dynamic"] == ["dependencies"]

    # Without a file named (another backend's plugin), requirements.txt.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "y"\ndynamic = ["dependencies", "version"]\n')
    assert add_requirement(Overlay(tmp_path), "six") == ("requirements.txt", True)


def test_the_manifest_edit_keeps_crlf_line_endings(tmp_path: Path) -> None:
    """A Windows checkout's manifests end their lines in "\\r\\n": the added requirement does too, and
    no other line changes."""
    pyproject = '[project]\r\nname = "x"\r\ndependencies = [\r\n    "attrs>=23"\r\n]\r\n'
    (tmp_path / "pyproject.toml").write_bytes(pyproject.encode())
    (tmp_path / "requirements-dev.txt").write_bytes(b"\xef\xbb\xbfpytest\r\nruff")
    overlay = Overlay(tmp_path)
    assert add_requirement(overlay, "demo-dep>=1.0") == ("pyproject.toml", True)
    assert overlay.read("pyproject.toml") == pyproject.replace(
        '"attrs>=23"\r\n', '"attrs>=23",\r\n    "demo-dep>=1.0",\r\n'
    )
    assert add_requirement(overlay, "six", "requirements-dev.txt") == ("requirements-dev.txt", True)
    assert overlay.read("requirements-dev.txt") == "\ufeffpytest\r\nruff\r\nsix\r\n"


def test_the_package_folder_is_bounded_as_the_workspace_copy_is(project: Path, index: int) -> None:
    """The run's package folder is writable in every command (a host folder in the system's temp folder,
    like the workspace copy): what passes ``agent.install.max_mb`` stops the command, and its result names
    the folder, the limit and the setting (before, it grew without bound)."""
    sandbox = Sandbox(
        SandboxSettings(
            timeout_seconds=60, network="registries", allowed_hosts=[f"127.0.0.1:{index}"], max_file_mb=1
        )
    )
    settings = InstallSettings(index_url=f"http://127.0.0.1:{index}/simple/", timeout_seconds=60, max_mb=2)
    tool = InstallPackageTool(Overlay(project), sandbox, settings)
    try:
        installed = ToolRegistry([tool]).execute("install_package", {"package": "demo-dep"})
        assert not installed.is_error, installed.content
        assert tool.layer is not None
        fill = 'for i in 1 2 3 4 5 6; do head -c 900000 /dev/zero > "$PYTHONPATH/junk$i"; done; sleep 5'
        result = sandbox.run(fill, project)
        assert result.exit_code != 0 and result.space_limit is not None, (result.exit_code, result.stderr)
        assert result.space_limit.place == "package folder"
        assert result.stderr.rstrip().endswith(
            "[the sandbox's package folder is full: 2 MiB limit, setting agent.install.max_mb; "
            "the command was stopped]"
        ), result.stderr
    finally:
        tool.close()
        sandbox.close()


def test_the_package_folder_holds_at_most_max_files(project: Path, index: int) -> None:
    """An empty file takes no space, so ``agent.install.max_mb`` never sees a command that makes millions
    of them in the run's package folder (each one an inode of the host's temp folder). Past
    ``agent.install.max_files`` the command is stopped, as one past ``agent.sandbox.max_files`` in the
    workspace copy is, and its result names the folder, the limit and the setting (before, the folder's
    files were not counted: the command ran to its end)."""
    sandbox = Sandbox(
        SandboxSettings(timeout_seconds=60, network="registries", allowed_hosts=[f"127.0.0.1:{index}"])
    )
    settings = InstallSettings(
        index_url=f"http://127.0.0.1:{index}/simple/", timeout_seconds=60, max_files=1000
    )
    tool = InstallPackageTool(Overlay(project), sandbox, settings)
    try:
        installed = ToolRegistry([tool]).execute("install_package", {"package": "demo-dep"})
        assert not installed.is_error, installed.content
        make = (
            'mkdir "$PYTHONPATH/{0}" && cd "$PYTHONPATH/{0}" && seq 1 {1} | xargs touch; sleep {2}; echo done'
        )
        result = sandbox.run(make.format("many", 3000, 20), project)
        assert result.killed and "done" not in result.stdout, (result.stdout, result.stderr)
        assert result.space_limit is not None and result.space_limit.place == "package folder"
        assert result.stderr.splitlines()[-1] == (
            "[the sandbox's package folder holds too many files: 1,000 limit, setting "
            "agent.install.max_files; the command was stopped]"
        )
        assert tool.layer is not None
        shutil.rmtree(tool.layer.path / "many")
        normal = sandbox.run(make.format("few", 300, 0), project)
        assert (normal.exit_code, normal.stdout, normal.space_limit) == (0, "done\n", None)
    finally:
        tool.close()
        sandbox.close()

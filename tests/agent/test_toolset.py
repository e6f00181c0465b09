"""The tool-set factory and the roles: which tools a role gets, what a read-only role may do, each tool's
definition per provider and its one-line description, the role's system prompt, and the transcript's
settings record written from the settings model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.overlay import Overlay
from agent.prompts import system_prompt
from agent.recorder import Recorder
from agent.roles import SOLO, PromptContext, Role, RoleNotFound, get_role
from agent.sandbox import Sandbox
from agent.task_builders import run_task
from agent.tools import ToolRegistry
from agent.tools.toolset import CATALOG, ToolResources, describe_call, toolset
from agent.transcript import Transcript
from tests.agent.agent_harness import EDITOR, Harness, copy_workspace, fast_settings, result_text, view
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use, turn

READER = Role(name="reader", prompt="prompts/system.md", tools=SOLO.tools, read_only=True)
"""A read-only role naming every tool: the factory must drop the ones that change files."""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return copy_workspace(tmp_path / "ws")


def _resources(root: Path) -> ToolResources:
    settings = fast_settings()
    return ToolResources.create(settings, Overlay(root), Sandbox(settings.sandbox))


def test_the_solo_role_gets_every_tool_in_order(ws: Path) -> None:
    registry = toolset(SOLO, _resources(ws))
    assert registry.names == list(SOLO.tools)
    assert registry.names[:7] == [
        "str_replace_based_edit_tool",
        "bash",
        "search_code",
        "find_symbol",
        "lookup_docs",
        "run_tests",
        "ask_user",
    ]
    assert set(registry.names) <= set(CATALOG)
    editor = registry.get(EDITOR)
    assert editor is not None and not editor.read_only
    bash = registry.get("bash")
    assert bash is not None and not bash.read_only


def test_a_read_only_role_gets_no_bash_and_a_view_only_editor(ws: Path) -> None:
    registry = toolset(READER, _resources(ws))
    assert "bash" not in registry.names
    assert registry.names == [name for name in SOLO.tools if name != "bash"]
    assert registry.names[:6] == [
        "str_replace_based_edit_tool",
        "search_code",
        "find_symbol",
        "lookup_docs",
        "run_tests",
        "ask_user",
    ]
    assert all(tool.read_only for tool in registry.tools)
    before = (ws / "mathx" / "stats.py").read_text()
    for call in (
        {"command": "create", "path": "new.py", "file_text": "x = 1\n"},
        {"command": "str_replace", "path": "mathx/stats.py", "old_str": "def mean", "new_str": "def avg"},
        {"command": "insert", "path": "mathx/stats.py", "insert_line": 0, "insert_text": "# hi\n"},
    ):
        result = registry.execute(EDITOR, call)
        assert result.is_error and "files may not be changed" in result.content
    viewed = registry.execute(EDITOR, {"command": "view", "path": "mathx/stats.py"})
    assert not viewed.is_error and "def mean" in viewed.content
    assert (ws / "mathx" / "stats.py").read_text() == before and not (ws / "new.py").exists()


def test_a_question_keeps_bash_but_the_editor_only_views(ws: Path) -> None:
    registry = toolset(SOLO, _resources(ws), edits_allowed=False)
    assert "bash" in registry.names
    result = registry.execute(EDITOR, {"command": "create", "path": "new.py", "file_text": "x\n"})
    assert result.is_error and "files may not be changed" in result.content


def test_a_role_naming_an_unknown_tool_is_refused(ws: Path) -> None:
    broken = Role(name="broken", prompt="prompts/system.md", tools=("bash", "teleport"))
    with pytest.raises(KeyError, match="teleport"):
        toolset(broken, _resources(ws))


def test_definitions_per_provider(ws: Path) -> None:
    registry = toolset(SOLO, _resources(ws))
    anthropic = {d["name"]: d for d in registry.definitions("anthropic")}
    assert anthropic[EDITOR] == {"type": "text_editor_20250728", "name": EDITOR}
    assert anthropic["bash"] == {"type": "bash_20250124", "name": "bash"}
    assert registry.definitions() == registry.definitions("anthropic")  # the default stays Anthropic

    plain = {d["name"]: d for d in registry.definitions("openai")}
    assert list(plain) == registry.names
    for tool in registry.tools:
        definition = plain[tool.name]
        assert set(definition) == {"name", "description", "input_schema"}
        assert definition["input_schema"] == dict(tool.input_schema)
        assert definition["input_schema"]["type"] == "object" and definition["description"].strip()
        json.dumps(definition)  # JSON-serialisable, as a wire format needs
        if tool.name not in (EDITOR, "bash"):  # custom tools: one definition for every provider
            assert anthropic[tool.name] == definition
    editor_properties = plain[EDITOR]["input_schema"]["properties"]
    assert {"command", "path", "old_str", "new_str", "insert_line", "insert_text", "view_range"} <= set(
        editor_properties
    )
    assert all(prop.get("description") for prop in editor_properties.values())
    assert "command" in plain["bash"]["input_schema"]["properties"]


def test_describe_shows_a_call_in_one_line(ws: Path) -> None:
    registry = toolset(SOLO, _resources(ws))
    calls: list[tuple[str, dict[str, Any], str]] = [
        (EDITOR, {"command": "str_replace", "path": "mathx/stats.py"}, "str_replace mathx/stats.py"),
        (EDITOR, {"command": "view", "path": "a.py", "view_range": [1, 20]}, "view a.py [1, 20]"),
        ("bash", {"command": "pytest   -q\n  tests"}, "bash: pytest -q tests"),
        ("bash", {"restart": True}, "bash: restart"),
        ("search_code", {"query": "retry policy"}, "search_code: retry policy"),
        ("find_symbol", {"name": "mean"}, "find_symbol: mean"),
        ("run_tests", {"symbol": "mean"}, "run_tests: mean"),
        ("run_tests", {}, "run_tests: all"),
        ("ask_user", {"question": "Which one?"}, "ask_user: Which one?"),
    ]
    for name, input, expected in calls:
        tool = registry.get(name)
        assert tool is not None
        assert tool.describe(input) == expected
        assert registry.describe(name, input) == expected
        assert describe_call(name, input) == expected  # by name alone, for transcripts read back
    long = "x" * 500
    assert len(describe_call("bash", {"command": long})) <= len("bash: ") + 100
    assert describe_call("launch_rockets", {"count": 3}) == "launch_rockets: {'count': 3}"
    assert ToolRegistry().describe("launch_rockets", {"count": 3}) == "launch_rockets: {'count': 3}"


def test_the_solo_role_prompt_and_the_role_lookup() -> None:
    assert get_role("solo") is SOLO
    with pytest.raises(RoleNotFound, match="solo"):
        get_role("architect-of-doom")
    assert SOLO.system_prompt() == system_prompt()  # today's prompt, byte for byte
    assert SOLO.first_turn("TASK\n", edits_allowed=True).startswith("TASK\n\nStart by restating the goal")
    assert SOLO.first_turn("TASK\n", edits_allowed=False) == "TASK\n"  # a question gets no plan request
    extended = SOLO.system_prompt(PromptContext(sections=("# Environment\n\nroot: /w",)))
    assert extended.startswith(system_prompt().rstrip("\n")) and extended.endswith(
        "# Environment\n\nroot: /w\n"
    )


def test_run_start_records_every_setting_from_the_model(tmp_path: Path) -> None:
    settings = fast_settings(max_tool_result_chars=4_321, syntax_checks=False)
    transcript = Transcript(tmp_path / "runs")
    Recorder(transcript).run_start(
        run_id=transcript.run_id,
        root=tmp_path,
        model="claude-x",
        task=run_task("Do it", root=tmp_path),
        settings=settings,
        role="solo",
    )
    transcript.close()
    record = json.loads(transcript.path.read_text().splitlines()[0])
    assert record["type"] == "run_start" and record["role"] == "solo" and record["schema"] == 1
    assert record["settings"] == settings.model_dump(mode="json")
    assert (
        record["settings"]["max_tool_result_chars"] == 4_321 and record["settings"]["syntax_checks"] is False
    )
    assert record["task"]["kind"] == "run" and record["task"]["instruction"] == "Do it"


def test_the_loop_sends_only_the_tools_of_its_role(
    fake_anthropic: FakeAnthropic, ws: Path, tmp_path: Path
) -> None:
    h = Harness(fake_anthropic, ws, tmp_path / "runs")
    h.fake.enqueue(
        turn(
            text("Plan."), view(), tool_use(EDITOR, {"command": "create", "path": "n.py", "file_text": "1\n"})
        ),
        text("Read it; changed nothing."),
    )
    result = h.run(run_task("Look at stats", root=ws), role=READER)
    tools = [t["name"] for t in h.fake.message_requests[0].body["tools"]]
    assert "bash" not in tools and tools[0] == EDITOR
    viewed, created = h.tool_results(1)
    assert "is_error" not in viewed
    assert created["is_error"] and "files may not be changed" in result_text(created)
    assert result.status == "no_changes"
    records = h.transcript_records(result)
    assert records[0]["role"] == "reader"

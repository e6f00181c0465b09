"""Loading workspace settings (`server.settings`): what is wrong is said at load, and what is kept."""

from __future__ import annotations

from pathlib import Path

from server.settings import load_settings


def test_an_unknown_model_provider_is_said_at_load_and_kept_so_runs_refuse_it(tmp_path: Path) -> None:
    (tmp_path / "agentls.toml").write_text('[agent.model]\nprovider = "opnai"\nmodel = "qwen2.5-coder"\n')
    loaded = load_settings(tmp_path)
    # Kept, not replaced by the default provider: a typo must not send the code to Anthropic.
    assert loaded.settings.agent.model.provider == "opnai"
    [message] = loaded.messages
    assert message.startswith(f"{tmp_path / 'agentls.toml'}: agent.model.provider = 'opnai'")
    assert "'anthropic', 'openai'" in message and "Agent runs refuse to start" in message


def test_an_invalid_value_falls_back_to_its_default_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "agentls.toml").write_text('[agent.model]\nprovider = "openai"\nmax_tokens = -5\n')
    loaded = load_settings(tmp_path)
    assert loaded.settings.agent.model.provider == "openai"
    assert loaded.settings.agent.model.max_tokens == 32_000
    [message] = loaded.messages
    assert message.split(": ")[1] == "ignoring `agent.model.max_tokens`"


def test_a_bad_node_of_a_custom_graph_drops_that_graph_and_names_the_node_not_the_whole_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "agentls.toml").write_text(
        "[agent]\nmax_steps = 12\nmax_cost_usd = 0.5\n\n"
        '[[agent.team.graphs.quick.nodes]]\nname = "spec"\nrole = "planner"\n'
        '[[agent.team.graphs.quick.nodes]]\nname = "build"\ntype = "work-items"\nrole = "coder"\n\n'
        '[[agent.team.graphs.plan_only.nodes]]\nname = "spec"\nrole = "planner"\n\n'
        '[agent.sandbox]\nextra_ro_paths = ["/opt/sdk", 3]\ntimeout_seconds = 20\n'
    )
    loaded = load_settings(tmp_path)
    # The rest of the file stands: its budget is not dropped with the bad node.
    agent = loaded.settings.agent
    assert (agent.max_steps, agent.max_cost_usd, agent.sandbox.timeout_seconds) == (12, 0.5, 20)
    assert list(agent.team.graphs) == ["plan_only"]
    assert agent.sandbox.extra_ro_paths == []
    assert sorted(message.split(": ", 1)[1] for message in loaded.messages) == [
        "ignoring `agent.sandbox.extra_ro_paths`: at `[1]`: Input should be a valid string; using the "
        "default",
        "ignoring `agent.team.graphs.quick`: at `nodes[1] (name = 'build').type`: Input should be 'role', "
        "'work_items', 'review' or 'solo'; using the default",
    ]


def test_a_message_names_the_line_and_an_unknown_key_the_setting_it_is_closest_to(tmp_path: Path) -> None:
    """Messages named the file and key only, and an unknown key read "Extra inputs are not permitted; using
    the default", with no hint that `max_minute` was meant to be `max_minutes`."""
    (tmp_path / "agentls.toml").write_text(
        '[agent]\nmax_steps = 3\nmax_minute = 10\n\n[agent.sandbox]\ntimeout_seconds = "ten"\n'
        '[index.embedding]\nmodl = "x"\n[zzz]\nq = 1\n'
    )
    source = tmp_path / "agentls.toml"
    assert sorted(load_settings(tmp_path).messages) == sorted(
        [
            f"{source}:3: ignoring `agent.max_minute`: there is no such setting (did you mean "
            "`agent.max_minutes`?)",
            f"{source}:6: ignoring `agent.sandbox.timeout_seconds`: Input should be a valid number, unable "
            "to parse string as a number; using the default",
            f"{source}:8: ignoring `index.embedding.modl`: there is no such setting (did you mean "
            "`index.embedding.model`?)",
            f"{source}:9: ignoring `zzz`: there is no such setting",
        ]
    )
    (tmp_path / "agentls.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.agentls]\nagent.max_cost_usd = "lots"\n'
    )
    [message] = load_settings(tmp_path).messages
    assert message.startswith(f"{tmp_path / 'pyproject.toml'}:5: ignoring `agent.max_cost_usd`: "), message

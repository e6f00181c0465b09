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

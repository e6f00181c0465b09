"""The scripted model, `load_model`'s choice of provider, and the credentials each provider reads."""

from __future__ import annotations

import threading

import pytest

from agent.config import ModelSettings
from agent.models import (
    Cancelled,
    Credentials,
    MissingCredentials,
    ModelError,
    UnknownProvider,
    load_model,
)
from agent.models.anthropic import AnthropicModel
from agent.models.openai_compat import OpenAICompatModel
from agent.models.scripted import ScriptedModel, reply, tool_call
from agent.usage import Usage, price_for


def test_the_scripted_model_answers_in_order_and_records_requests() -> None:
    call = tool_call("bash", {"command": "ls"}, id="call_1")
    model = ScriptedModel(reply("Looking.", call))
    model.enqueue(tool_call("find_symbol", {"name": "mean"}), reply("Done."))
    seen: list[str] = []
    messages = [{"role": "user", "content": "go"}]

    first = model.complete("system", [{"name": "bash"}], messages, on_text=seen.append)
    messages.append(first.as_message())  # the caller's list changes; the record does not
    second = model.complete("system", [], messages)
    third = model.complete("system", [], messages)

    assert first.text == "Looking." and first.stop_reason == "tool_use" and seen == ["Looking."]
    assert [(c.id, c.name, c.input) for c in first.tool_calls] == [("call_1", "bash", {"command": "ls"})]
    assert second.tool_calls[0].name == "find_symbol" and second.text == ""
    assert third.stop_reason == "end_turn" and third.text == "Done."
    assert len(model.requests) == 3 and model.requests[0].messages == [{"role": "user", "content": "go"}]
    assert model.requests[0].tools == [{"name": "bash"}]
    assert model.pending == 0 and model.provider == "scripted"
    with pytest.raises(ModelError, match="no reply left for request 4"):
        model.complete("system", [], messages)


def test_the_scripted_model_raises_queued_errors_and_honours_cancel() -> None:
    model = ScriptedModel(ModelError("boom"), reply("after"))
    with pytest.raises(ModelError, match="boom"):
        model.complete("", [], [])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        model.complete("", [], [], cancel=cancel)
    assert model.pending == 1


def test_load_model_picks_the_provider() -> None:
    anthropic = load_model(ModelSettings(), Credentials(api_key="k"))
    openai = load_model(
        ModelSettings(provider="openai", model="qwen2.5-coder"),
        Credentials.from_env({}, ModelSettings(provider="openai")),
    )
    try:
        assert isinstance(anthropic, AnthropicModel) and anthropic.provider == "anthropic"
        assert isinstance(openai, OpenAICompatModel) and openai.provider == "openai"
        assert openai.url == "https://api.openai.com/v1/chat/completions"
    finally:
        anthropic.close()
        openai.close()


def test_an_unknown_provider_is_refused_with_the_accepted_values() -> None:
    settings = ModelSettings(provider="gemini")
    with pytest.raises(UnknownProvider) as failure:
        load_model(settings, Credentials(api_key="k"))
    assert "agent.model.provider = 'gemini'" in failure.value.message
    assert "'anthropic', 'openai'" in failure.value.message
    with pytest.raises(MissingCredentials, match="'gemini' is not a model provider"):
        Credentials.from_env({"ANTHROPIC_API_KEY": "k"}, settings)


@pytest.mark.parametrize("url", ["::not a url", "localhost:11434/v1", "http://[bad", "ftp://host/v1"])
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_base_url_that_is_no_url_is_a_setting_to_fix_not_a_bug(provider: str, url: str) -> None:
    """Set in the settings, the message names agent.model.base_url and the file note follows; from the
    environment, the variable (and no file). Before, the Anthropic client raised httpx's InvalidURL, which
    a run called a bug of agentls, and the OpenAI one failed at its first request."""
    from agent.settings_error import SettingsError, setting_to_fix

    with pytest.raises(SettingsError) as in_file:
        load_model(ModelSettings(provider=provider, base_url=url), Credentials("k", None, url, provider))
    said = setting_to_fix(in_file.value, ["/ws/agentls.toml"])
    assert said is not None and said.startswith(f"agent.model.base_url = {url!r} is not a URL"), said
    assert said.endswith("change it in /ws/agentls.toml, then start again.")
    with pytest.raises(SettingsError) as from_env:
        load_model(ModelSettings(provider=provider), Credentials("k", None, url, provider))
    said = setting_to_fix(from_env.value)
    assert said is not None and said.startswith(f"{provider.upper()}_BASE_URL = {url!r}"), said
    assert "agentls.toml" not in said


def test_credentials_are_read_per_provider() -> None:
    env = {
        "ANTHROPIC_API_KEY": "ant",
        "ANTHROPIC_BASE_URL": "http://proxy",
        "OPENAI_API_KEY": "oai",
        "OPENROUTER_API_KEY": "or",
    }
    assert Credentials.from_env(env) == Credentials("ant", None, "http://proxy", "anthropic")
    openai = ModelSettings(provider="openai", base_url="http://localhost:11434/v1")
    assert Credentials.from_env(env, openai) == Credentials(
        "oai", None, "http://localhost:11434/v1", "openai"
    )
    router = ModelSettings(provider="openai", api_key_env="OPENROUTER_API_KEY")
    assert Credentials.from_env(env, router).api_key == "or"
    assert Credentials.from_env({}, openai).api_key is None  # Ollama needs no key
    with pytest.raises(MissingCredentials, match="ANTHROPIC_API_KEY is missing"):
        Credentials.from_env({"OPENAI_API_KEY": "oai"})


def test_prices_are_per_provider() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert usage.cost("claude-sonnet-5-5") == pytest.approx(12.0)
    assert usage.cost("claude-sonnet-5-5", "openai") == 0.0
    assert not price_for("gpt-4.1", "openai").known
    assert usage.cost("some-local-model") > 0  # unknown Claude-side ids stay priced conservatively

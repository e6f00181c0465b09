"""The agent's settings: which model, how far a run may go, how commands are isolated, how work is verified.

`ModelSettings` (which provider and model, and how they are called) lives here rather than in
`agent.models` so that reading settings imports no SDK (`anthropic` takes about a second): the CLI's
index and search verbs and the language server load settings without ever calling the model.

`AgentSettings` is the `agent` section of the agentls settings tree (`server.settings.Settings.agent`).
Every field has a default, so an empty section is a working configuration. `budget()` turns the token,
cost and time limits into the `agent.usage.Budget` the loop checks around every model call.
`AgentSettings.unusable()` lists the settings that are valid alone but that no run can use (a provider
agentls has not, a role's model of another provider, a base URL that is no URL): a run refuses each
(`AgentSettings.model_for`, `agent.models.load_model`, with the same check and message), and the settings
reader says them with their file and line (`server.settings.unusable`), so a run stops before it starts.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.installs import InstallSettings
from agent.mcp.config import McpSettings
from agent.memory import MemorySettings
from agent.sandbox import SandboxSettings
from agent.settings_error import SettingsError
from agent.team.config import TeamSettings
from agent.tools.delegate import DelegateSettings
from agent.usage import Budget

__all__ = ["DEFAULT_MODEL", "AgentSettings", "ModelSettings", "RoleSettings", "base_url_problem"]

# The newest Sonnet in anthropic 2.13.0's model list, and not in its `_data/deprecated_models.py` (which
# lists claude-sonnet-4-5 and claude-opus-4-5 as deprecated). Sonnet is the tier Anthropic recommends for
# agentic coding at scale; Opus / Fable cost 2-4x more per token. Note for settings: from Sonnet 5 on,
# adaptive thinking is on by default and non-default `temperature` is rejected with a 400.
DEFAULT_MODEL = "claude-sonnet-5-5"


PROVIDERS = ("anthropic", "openai")
"""The values `agent.model.provider` accepts (`agent.models.load_model`)."""


def unknown_provider_message(provider: str) -> str:
    """What to tell the user when `agent.model.provider` names no provider. A run refuses such a provider
    rather than fall back to another: a typo must not send the code to a provider the user did not pick."""
    return (
        f"agent.model.provider = {provider!r} is not a model provider agentls has; set it to one of "
        f"{', '.join(repr(p) for p in PROVIDERS)} (use 'openai' for Ollama, vLLM, LM Studio and OpenRouter)."
    )


def base_url_problem(url: str, provider: str, where: str) -> str | None:
    """What is wrong with `url`, the model API's base URL that `where` sets (``agent.model.base_url`` or an
    environment variable), and what to set instead; None when it is an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # "http://[bad": an IPv6 host that does not end
        usable = False
    if usable:
        return None
    example = "https://api.anthropic.com" if provider == "anthropic" else "http://localhost:11434/v1"
    return (
        f"{where} = {url!r} is not a URL agentls can send the model's requests to: set it to an http:// "
        f"or https:// URL with a host (e.g. {example!r}), or remove it for the provider's own"
    )


class ModelSettings(BaseModel):
    """How the agent calls its model. Every field has a default; the entry point fills them from settings."""

    model_config = ConfigDict(extra="forbid")

    provider: str = "anthropic"
    """`anthropic` (Claude through the Messages API) or `openai` (any OpenAI-compatible Chat Completions
    endpoint: OpenAI, Ollama, vLLM, LM Studio, OpenRouter); see `agent.models.load_model`."""
    model: str = DEFAULT_MODEL
    """Model id sent to the API (see the comment on DEFAULT_MODEL for why this one). With the `openai`
    provider it must be set to a model the endpoint serves (e.g. `qwen2.5-coder:14b` on Ollama)."""
    base_url: str | None = None
    """The API's base URL. None: ANTHROPIC_BASE_URL or https://api.anthropic.com for `anthropic`;
    OPENAI_BASE_URL or https://api.openai.com/v1 for `openai` (Ollama: http://localhost:11434/v1)."""
    api_key_env: str | None = None
    """The environment variable holding the API key. None: ANTHROPIC_API_KEY for `anthropic`,
    OPENAI_API_KEY for `openai` (optional there: local servers such as Ollama need none)."""
    max_tokens: int = Field(default=32_000, ge=1)
    """Output cap per call, thinking included (adaptive thinking counts against it)."""
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    """Sampling temperature; None sends nothing (Sonnet 5 and later reject non-default values)."""
    timeout: float = Field(default=300.0, gt=0)
    """Seconds an attempt may wait for the next bytes of a response before it counts as failed."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to establish the connection."""
    max_retries: int = Field(default=6, ge=0)
    """Retries after the first attempt (so at most max_retries + 1 requests per call)."""
    retry_deadline_seconds: float = Field(default=300.0, gt=0)
    """Overall deadline of one call, retries and waits included; no retry starts past it."""
    retry_base_delay: float = Field(default=1.0, ge=0)
    """First backoff delay in seconds; doubles on each retry (with jitter) unless the server says when."""
    retry_max_delay: float = Field(default=30.0, ge=0)
    """Cap on a computed backoff delay (a server's retry-after is honoured even when longer)."""
    prompt_caching: bool = True
    """Place `cache_control` breakpoints (Anthropic; see `with_cache_breakpoints`)."""
    context_window: int | None = Field(default=None, ge=1_000)
    """The model's context window in tokens; None: from the model id (200k for Claude, 1M for `[1m]`
    ids, 128k for other providers' models). The run masks and condenses its conversation to stay in it."""
    vision: bool | None = None
    """Whether the model sees images (an MCP tool's screenshot reaches it as an image; otherwise as a note
    naming it). None: Claude does (`anthropic`); OpenAI-compatible models do not, as most local ones
    cannot (true for one that can: GPT-4o, Qwen2.5-VL, Llama 3.2 Vision...)."""


class RoleSettings(BaseModel):
    """``[agent.roles.NAME]``: settings of one role (``solo``, ``explore``, ``planner``, ``coder``...)."""

    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] = Field(default_factory=dict)
    """``[agent.roles.NAME.model]``: fields of `ModelSettings` that differ for this role (say a cheaper
    ``model`` for ``explore``); the others come from ``[agent.model]``. The provider must stay the
    run's (the run has one set of credentials)."""

    @field_validator("model")
    @classmethod
    def _known_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(ModelSettings.model_fields))
        if unknown:
            raise ValueError(
                f"unknown model setting(s) {', '.join(unknown)}; the model settings are: "
                f"{', '.join(ModelSettings.model_fields)}"
            )
        ModelSettings.model_validate(value)  # each value is checked as [agent.model] would be
        return value


class AgentSettings(BaseModel):
    """How the agent runs. Limits end a run cleanly with what it has; they never corrupt anything."""

    model_config = ConfigDict(extra="forbid")

    model: ModelSettings = Field(default_factory=ModelSettings)
    """The model provider, the model, and how it is called (retries, timeouts, prompt caching)."""

    max_steps: int = Field(default=40, ge=1)
    """Model turns one run may take (each turn is one Messages API call and the tools it asks for)."""
    max_reflections: int = Field(default=3, ge=0)
    """Times a failed verification is sent back to the model to fix before the run gives up and proposes
    the change with its failure stated plainly."""
    max_input_tokens: int | None = Field(default=None, ge=0)
    """Prompt tokens summed over the run's calls, cached ones included; None is unlimited."""
    max_total_tokens: int | None = Field(default=None, ge=0)
    """Prompt plus output tokens summed over the run's calls; None is unlimited."""
    max_cost_usd: float | None = Field(default=2.0, ge=0)
    """Cost of the run in USD at list price (unknown models are priced high); None is unlimited."""
    max_minutes: float | None = Field(default=None, ge=0)
    """Wall-clock minutes of the run, resumed parts included (waits for the user's answers too); None is
    unlimited. Past it the run stops as a budget does (an UNFINISHED proposal, resumable); a model call or
    command in flight is cut at the bound, and a step is not started with too little time left. None by
    default: the cost budget already bounds what a run spends, while the time a task needs depends on the
    machine and the project's tests, so a default would stop good runs; set it for batches and CI."""

    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    """Isolation and limits of the commands the agent runs (bash tool, tests, checks)."""
    test_command: str | None = None
    """The project's test command, run in the sandbox from the workspace root. None detects it: pytest
    (pyproject/pytest.ini/setup.cfg/tox.ini/conftest.py or a tests folder of Python tests), `npm test`
    (package.json with a real test script), `go test ./...` (go.mod), `cargo test` (Cargo.toml)."""
    verify: bool = True
    """Verify the change (syntax checks, doctests, tests) when the model says it is done."""
    syntax_checks: bool = True
    """Run the toolchain's syntax checks on changed files (py_compile, node --check, go vet, cargo check)
    when the toolchain is installed."""
    verify_timeout: float = Field(default=300.0, gt=0)
    """Wall-clock limit in seconds of each verification command (a test run, a syntax check)."""
    context_token_budget: int = Field(default=12_000, ge=0)
    """Estimated tokens of workspace context (the target file, definitions, tests, similar code) gathered
    once at the start and sent as part of the cached prompt prefix."""
    max_tool_result_chars: int = Field(default=30_000, ge=1_000)
    """A tool result longer than this is cut (head and tail kept) before it goes to the model."""
    max_test_output_chars: int = Field(default=12_000, ge=1_000)
    """Characters of a failing check's output (its tail, where the failures are) sent back to the model."""
    memory: MemorySettings = Field(default_factory=MemorySettings)
    """How a long run keeps its conversation inside the context window (`agent.memory`)."""
    mcp: McpSettings = Field(default_factory=McpSettings)
    """MCP servers whose tools the agent gets (``[mcp.servers.NAME]``, see `agent.mcp.config`)."""
    install: InstallSettings = Field(default_factory=InstallSettings)
    """How `install_package` installs dependencies (``[agent.install]``, see `agent.installs`)."""
    delegate: DelegateSettings = Field(default_factory=DelegateSettings)
    """Bounds of the `delegate` tool's sub-agents (`agent.tools.delegate`)."""
    roles: dict[str, RoleSettings] = Field(default_factory=dict)
    """Per-role settings, ``[agent.roles.NAME]``: today the role's model (`model_for`)."""
    team: TeamSettings = Field(default_factory=TeamSettings)
    """Team runs: spec confirmation, QA rounds, overall bounds and custom graphs (`agent.team.config`)."""
    approve: Literal["auto", "ask"] = "auto"
    """``ask``: the user approves each call of an MCP server's tool first (editor message or terminal
    prompt; no answer is a refusal). ``auto``: tools run without asking."""
    allow_secret_values: bool = False
    """Send secret values found in the code (API keys, passwords) to the model as they are, and let the
    agent change them. Off: they are replaced by `<secret:...>` placeholders and edits keep them intact.
    Turning it on is logged at every run."""

    def model_for(self, role: str) -> ModelSettings:
        """The model settings of `role`: ``[agent.model]`` with ``[agent.roles.ROLE.model]`` over it.

        Raises `SettingsError` (a `ValueError`) when the role's provider differs from the run's (one set
        of credentials)."""
        overrides = self.roles[role].model if role in self.roles else {}
        if not overrides:
            return self.model
        merged = ModelSettings.model_validate({**self.model.model_dump(), **overrides})
        if merged.provider != self.model.provider:
            raise SettingsError(
                f"[agent.roles.{role}.model] sets provider = {merged.provider!r}, but the run uses "
                f"{self.model.provider!r}; a role may change the model, not the provider: remove provider "
                f"from [agent.roles.{role}.model], or set provider = {merged.provider!r} in [agent.model]"
            )
        return merged

    def unusable(self) -> list[tuple[tuple[tuple[str, ...], ...], str]]:
        """The settings that are valid alone but that no run can use, each as (the keys under ``agent``
        that make it, the one to change first; what is wrong and how to fix it): the checks a run makes
        when it is built (`model_for`, `agent.models.load_model`), made when the settings are read."""
        found: list[tuple[tuple[tuple[str, ...], ...], str]] = []
        provider = self.model.provider
        if provider not in PROVIDERS:
            found.append(((("model", "provider"),), unknown_provider_message(provider)))
        url = self.model.base_url
        if url is not None and (problem := base_url_problem(url, provider, "agent.model.base_url")):
            found.append(((("model", "base_url"),), problem))
        for role in self.roles:
            try:
                self.model_for(role)
            except ValueError as error:  # SettingsError, or a role's value ModelSettings refuses
                keys = [("roles", role, "model", "provider"), ("model", "provider")]
                if not isinstance(error, SettingsError):
                    keys = [("roles", role, "model")]
                    error = SettingsError(f"[agent.roles.{role}.model]: {error}")
                found.append((tuple(keys), str(error)))
        return found

    def budget(self) -> Budget:
        """The token, cost and time limits as a `Budget`."""
        return Budget(
            max_input_tokens=self.max_input_tokens,
            max_total_tokens=self.max_total_tokens,
            max_cost_usd=self.max_cost_usd,
            max_minutes=self.max_minutes,
        )

"""Token usage, what it costs, and the budgets that bound a run.

`Usage` is what one Messages API call reports (or the sum of several); `price_for` maps a model id to
its list price; `Budget.check` raises `BudgetExceeded` once a running total passes a limit, and
`Budget.check_ahead` before a call that could pass one at its worst case. `Budget.max_minutes` bounds a
run's wall-clock time: `Budget.check_time` raises `BudgetExceeded` once the run's time is up, or before a
step when too little of it is left for one (`Budget.step_seconds`), and `Budget.seconds_left` is what caps
the wait of a model call and the time limit of a command in flight (`agent.timebound`).

Prices are USD per million tokens from Anthropic's pricing page
(https://platform.claude.com/docs/en/about-claude/pricing and the per-model overview pages), as
published on 2026-11-10. Cache writes are the 5-minute writes we use (`cache_control: ephemeral`),
1.25x the input price on every model; cache reads are 0.1x input except where the page lists a cut
(Sonnet 5.5 and Opus 5.5: 0.05x; Fable/Mythos 5.1 and 5.2: 0.025x). Update this table when the page
changes; `ModelPrice.known` is False for ids it does not cover.

Prices are per provider: the table is Anthropic's. For any other provider (`openai`: OpenAI-compatible
endpoints, often local and free; `scripted` in tests) no price list is kept, so the price is 0 with
`known` False, and `Budget.check` says so when a cost limit is set; bound such runs with token budgets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PRICES_CHECKED = "2026-11-10"
"""When the price table below was last compared with the pricing page."""


@dataclass(frozen=True)
class ModelPrice:
    """List prices of one model family in USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    known: bool = True
    """False when the model id is not in the table and a conservative default was used."""


def _price(input_: float, output: float, read_multiplier: float = 0.1) -> ModelPrice:
    return ModelPrice(
        input=input_, output=output, cache_write=input_ * 1.25, cache_read=input_ * read_multiplier
    )


# Keys are model-id prefixes; the longest matching prefix wins, so "claude-sonnet-5-5" is not priced as
# "claude-sonnet-5" and dated ids ("claude-haiku-4-5-20251001") find their family.
_PRICES: dict[str, ModelPrice] = {
    "claude-fable-5-2": _price(8.0, 40.0, 0.025),
    "claude-mythos-5-2": _price(8.0, 40.0, 0.025),
    "claude-fable-5-1": _price(10.0, 50.0, 0.025),
    "claude-mythos-5-1": _price(10.0, 50.0, 0.025),
    "claude-fable-5": _price(10.0, 50.0),
    "claude-mythos-5": _price(10.0, 50.0),
    "claude-opus-5-5": _price(4.0, 20.0, 0.05),
    "claude-opus-5": _price(5.0, 25.0),
    "claude-opus-4-8": _price(5.0, 25.0),
    "claude-opus-4-7": _price(5.0, 25.0),
    "claude-opus-4-6": _price(5.0, 25.0),
    "claude-opus-4-5": _price(5.0, 25.0),
    "claude-opus-4-1": _price(15.0, 75.0),
    "claude-opus-4": _price(15.0, 75.0),
    "claude-sonnet-5-5": _price(2.0, 10.0, 0.05),
    "claude-sonnet-5": _price(2.0, 10.0),
    "claude-sonnet-4-6": _price(3.0, 15.0),
    "claude-sonnet-4-5": _price(3.0, 15.0),
    "claude-sonnet-4": _price(3.0, 15.0),
    # Haiku 5.5 bills prompts over 100k tokens at 5x; a summed Usage cannot tell which calls crossed
    # that line, so this is the lower band (agent prompts stay well under it).
    "claude-haiku-5-5": _price(0.10, 0.50),
    "claude-haiku-4-5": _price(1.0, 5.0),
    "claude-3-5-haiku": _price(0.80, 4.0),
}

# Unknown ids (a new model, or a compatible endpoint's own names) are priced like the most expensive
# current family, so a cost budget errs on the side of stopping early.
_UNKNOWN_PRICE = ModelPrice(input=10.0, output=50.0, cache_write=12.5, cache_read=1.0, known=False)


# What may follow a family prefix in a model id: a date (claude-haiku-4-5-20251001), a Bedrock version
# (-v1:0), a Vertex version (@20251101), a context variant ([1m]) or -latest. Anything else (say a
# future "claude-opus-4-10") is a different model, not "claude-opus-4".
_ID_SUFFIX = re.compile(r"(-\d{8})?(-v\d+(:\d+)?)?(@[\w.-]+|\[\w+\]|-latest)?")


_NO_PRICE = ModelPrice(input=0.0, output=0.0, cache_write=0.0, cache_read=0.0, known=False)


def price_for(model: str, provider: str = "anthropic") -> ModelPrice:
    """The list price of `model`; `known` is False (and the price conservative) for unknown ids.

    Provider-prefixed ids ("us.anthropic.claude-sonnet-5-5-v1:0") are priced as their Claude family.
    Providers other than "anthropic" have no price list: 0, `known` False.
    """
    if provider != "anthropic":
        return _NO_PRICE
    name = model.strip().lower()
    name = name[name.find("claude-") :] if "claude-" in name else name
    best: str | None = None
    for prefix in _PRICES:
        if (
            name.startswith(prefix)
            and _ID_SUFFIX.fullmatch(name[len(prefix) :])
            and (best is None or len(prefix) > len(best))
        ):
            best = prefix
    return _PRICES[best] if best is not None else _UNKNOWN_PRICE


@dataclass(frozen=True)
class Usage:
    """Tokens of one or more Messages API calls, as the API reports them.

    `input_tokens` counts only the uncached part of the prompt (after the last cache breakpoint); the
    whole prompt is `total_input_tokens`.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    @classmethod
    def from_api(cls, usage: Any) -> Usage:
        """Build from the SDK's `Usage` object or a wire-format dict; absent cache fields count as 0."""

        def field(name: str) -> int:
            value = usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)
            return int(value or 0)

        return cls(
            input_tokens=field("input_tokens"),
            output_tokens=field("output_tokens"),
            cache_creation_input_tokens=field("cache_creation_input_tokens"),
            cache_read_input_tokens=field("cache_read_input_tokens"),
        )

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        """The sum of `usages` (zero for none)."""
        result = cls()
        for usage in usages:
            result = result + usage
        return result

    @property
    def total_input_tokens(self) -> int:
        """Every prompt token: uncached, written to the cache, and read from it."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def total_tokens(self) -> int:
        """Prompt and output tokens together."""
        return self.total_input_tokens + self.output_tokens

    @property
    def cache_read_fraction(self) -> float:
        """Share of the prompt served from the prompt cache (0.0 for an empty prompt)."""
        total = self.total_input_tokens
        return self.cache_read_input_tokens / total if total else 0.0

    def cost(self, model: str, provider: str = "anthropic") -> float:
        """Cost in USD at the list price of `model` from `provider` (see `price_for` for unknown ids)."""
        price = price_for(model, provider)
        return (
            self.input_tokens * price.input
            + self.output_tokens * price.output
            + self.cache_creation_input_tokens * price.cache_write
            + self.cache_read_input_tokens * price.cache_read
        ) / 1_000_000

    def as_dict(self) -> dict[str, int]:
        """The four counters under their API names (for transcripts and LSP replies)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


class BudgetExceeded(Exception):
    """A run used more tokens, money or time than its budget allows; the message says which limit and what
    to do."""

    def __init__(self, message: str, *, limit: str, allowed: float, used: float) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit
        self.allowed = allowed
        self.used = used


MIN_STEP_SECONDS = 10.0
"""A step (a model call and its tools) is not started with less time left than this, or than a tenth of
`Budget.max_minutes` when that is shorter: the model's first token alone often takes seconds, and a call
cut off at the bound is billed for its prompt and gives nothing."""


def duration(seconds: float) -> str:
    """Seconds for people: "2.9 s", "4 min 10 s", "1 h 5 min".

    >>> duration(2.94), duration(250), duration(3900)
    ('2.9 s', '4 min 10 s', '1 h 5 min')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


class Budget(BaseModel):
    """Limits on what one agent run may spend. Every limit is optional; None means unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_input_tokens: int | None = Field(default=None, ge=0)
    """Prompt tokens summed over all calls, cached ones included (`Usage.total_input_tokens`)."""
    max_output_tokens: int | None = Field(default=None, ge=0)
    """Output tokens summed over all calls (thinking included, as the API bills it)."""
    max_total_tokens: int | None = Field(default=None, ge=0)
    """Prompt plus output tokens summed over all calls."""
    max_cost_usd: float | None = Field(default=None, ge=0)
    """Cost in USD at list price (`Usage.cost`); unknown models are priced conservatively."""
    max_minutes: float | None = Field(default=None, ge=0)
    """Wall-clock minutes of the run, resumed parts included (`check_time`)."""

    @property
    def step_seconds(self) -> float:
        """The least time left with which a step is started (`MIN_STEP_SECONDS`, or a tenth of the
        bound when that is shorter); 0 without a time bound."""
        if self.max_minutes is None:
            return 0.0
        return min(MIN_STEP_SECONDS, self.max_minutes * 6.0)

    def seconds_left(self, seconds: float) -> float | None:
        """Seconds left of `max_minutes` when the run has taken `seconds` (never below 0); None: no bound."""
        if self.max_minutes is None:
            return None
        return max(0.0, self.max_minutes * 60.0 - seconds)

    def check_time(self, seconds: float, *, step: bool = False) -> None:
        """Raise `BudgetExceeded` if the run, `seconds` in, has used its `max_minutes`; with `step`, also
        when less is left than a step needs (`step_seconds`), so the next one is not started."""
        left = self.seconds_left(seconds)
        if self.max_minutes is None or left is None:
            return
        if left > 0 and not (step and left < self.step_seconds):
            return
        taken = f"the run has taken {duration(seconds)} against max_minutes = {self.max_minutes:g}"
        if left > 0:
            taken += f"; the {duration(left)} left is too little for another step"
        raise BudgetExceeded(
            f"Time budget reached: {taken}. Raise max_minutes in the agentls settings (or resume the run "
            "with a bigger --max-minutes) or give the agent a smaller task.",
            limit="max_minutes",
            allowed=self.max_minutes,
            used=round(seconds / 60.0, 4),
        )

    def check(
        self, total: Usage, model: str, provider: str = "anthropic", *, spent: float | None = None
    ) -> None:
        """Raise `BudgetExceeded` if `total` (the run so far) has passed any limit. `spent`: the run's
        cost when its calls were priced by more than one model (roles with their own models); None
        prices `total` with `model`."""
        counts: list[tuple[str, int | None, int]] = [
            ("max_input_tokens", self.max_input_tokens, total.total_input_tokens),
            ("max_output_tokens", self.max_output_tokens, total.output_tokens),
            ("max_total_tokens", self.max_total_tokens, total.total_tokens),
        ]
        for name, limit, used in counts:
            if limit is not None and used > limit:
                raise BudgetExceeded(
                    f"Token budget exceeded: the run used {used:,} tokens against {name} = {limit:,}. "
                    f"Raise {name} in the agentls settings or give the agent a smaller task.",
                    limit=name,
                    allowed=limit,
                    used=used,
                )
        if self.max_cost_usd is not None:
            cost = total.cost(model, provider) if spent is None else spent
            if cost > self.max_cost_usd:
                known = price_for(model, provider).known
                note = "" if known else f" (estimated: no list price known for {model!r})"
                raise BudgetExceeded(
                    f"Cost budget exceeded: the run cost ${cost:.4f}{note} against max_cost_usd = "
                    f"${self.max_cost_usd:.2f}. Raise max_cost_usd in the agentls settings or give the "
                    "agent a smaller task.",
                    limit="max_cost_usd",
                    allowed=self.max_cost_usd,
                    used=cost,
                )

    def check_ahead(
        self,
        total: Usage,
        prompt_tokens: int,
        max_output_tokens: int,
        model: str,
        provider: str = "anthropic",
        *,
        spent: float | None = None,
    ) -> None:
        """Raise `BudgetExceeded` if the next call could take the run past a limit at its worst case.

        The worst case of a call is its whole prompt (`prompt_tokens`, an estimate) written to the cache,
        the dearest way to send input, and `max_output_tokens` of output. Checked before every call, so
        a run stops before the call that could overshoot and never ends above its budget.
        """
        worst = Usage(output_tokens=max_output_tokens, cache_creation_input_tokens=prompt_tokens)
        after = total + worst
        counts: list[tuple[str, int | None, int]] = [
            ("max_input_tokens", self.max_input_tokens, after.total_input_tokens),
            ("max_output_tokens", self.max_output_tokens, after.output_tokens),
            ("max_total_tokens", self.max_total_tokens, after.total_tokens),
        ]
        for name, limit, used in counts:
            if limit is not None and used > limit:
                raise BudgetExceeded(
                    f"Token budget reached: the run has used {total.total_tokens:,} tokens and the next "
                    f"model call could take it to {used:,} against {name} = {limit:,} (a prompt of about "
                    f"{prompt_tokens:,} tokens and up to {max_output_tokens:,} output tokens). Raise {name} "
                    "in the agentls settings or give the agent a smaller task.",
                    limit=name,
                    allowed=limit,
                    used=total.total_tokens,
                )
        if self.max_cost_usd is not None:
            spent = total.cost(model, provider) if spent is None else spent
            worst_cost = worst.cost(model, provider)
            if spent + worst_cost > self.max_cost_usd:
                raise BudgetExceeded(
                    f"Cost budget reached: the run has cost ${spent:.4f} and the next model call could cost "
                    f"up to ${worst_cost:.4f} (a prompt of about {prompt_tokens:,} tokens and up to "
                    f"{max_output_tokens:,} output tokens), which would pass max_cost_usd = "
                    f"${self.max_cost_usd:.2f}. Raise max_cost_usd in the agentls settings (or resume the "
                    "run with a bigger --max-cost) or give the agent a smaller task.",
                    limit="max_cost_usd",
                    allowed=self.max_cost_usd,
                    used=spent,
                )

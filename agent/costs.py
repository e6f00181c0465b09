"""Usage and cost per role and per node: the ledger a run keeps of every model call it paid for.

Each model call is charged to the role that made it (`solo` for the solo loop, `explore` for a
`delegate` sub-agent, planner/architect/coder/qa in a team run) and, when a team engine set one, the
graph node it ran in. Each call is priced with its own model (roles may use different models, see
`agent.config.AgentSettings.model_for`), so the run's cost is the sum of its calls' costs, and the
per-role sums add up to the run's totals exactly.

`CostLedger.add` charges one call; `merge` takes in another agent's ledger (a sub-agent's, or a team
role's); `entries` lists one `RoleCost` per (role, node) in the order they first spent; `payload` is the
``roles`` list of the proposal payload (``[{role, inputTokens, outputTokens, cost}]``, ``node`` when
set); `records` and `from_records` carry it through the transcript and the saved run state;
`from_transcript` rebuilds it from a transcript's records (`agentls runs ID`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.usage import Usage

__all__ = ["CostLedger", "RoleCost"]


@dataclass(frozen=True)
class RoleCost:
    """What one role (in one node) spent: tokens, USD at list price, and how many model calls."""

    role: str
    node: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    calls: int = 0

    def payload(self) -> dict[str, Any]:
        """The proposal payload's entry: role, inputTokens (cached ones included), outputTokens, cost."""
        entry: dict[str, Any] = {
            "role": self.role,
            "inputTokens": self.usage.total_input_tokens,
            "outputTokens": self.usage.output_tokens,
            "cost": round(self.cost, 6),
        }
        if self.node is not None:
            entry["node"] = self.node
        return entry

    def record(self) -> dict[str, Any]:
        """The transcript's and the run state's form (usage under the API's names)."""
        return {
            "role": self.role,
            "node": self.node,
            "usage": self.usage.as_dict(),
            "cost": self.cost,  # not rounded: a resumed run's ledger is the saved one exactly
            "calls": self.calls,
        }


class CostLedger:
    """The model calls of one agent (and of the agents it absorbed), summed by (role, node)."""

    def __init__(self, entries: Iterable[RoleCost] = ()) -> None:
        self._entries: dict[tuple[str, str | None], RoleCost] = {}
        for entry in entries:
            self._put(entry)

    def _put(self, entry: RoleCost) -> None:
        key = (entry.role, entry.node)
        old = self._entries.get(key)
        if old is None:
            self._entries[key] = entry
            return
        self._entries[key] = RoleCost(
            entry.role, entry.node, old.usage + entry.usage, old.cost + entry.cost, old.calls + entry.calls
        )

    def add(
        self, role: str, node: str | None, usage: Usage, model: str, provider: str = "anthropic"
    ) -> float:
        """Charge one call of `model` to `role` (in `node`); returns that call's cost."""
        cost = usage.cost(model, provider)
        self._put(RoleCost(role, node, usage, cost, 1))
        return cost

    def merge(self, other: CostLedger) -> None:
        """Take in every entry of `other` (a sub-agent's or a team role's ledger)."""
        for entry in other.entries:
            self._put(entry)

    @property
    def entries(self) -> list[RoleCost]:
        """One entry per (role, node), in the order each first spent."""
        return list(self._entries.values())

    @property
    def usage(self) -> Usage:
        """Every call's tokens together."""
        return Usage.total(entry.usage for entry in self._entries.values())

    @property
    def cost(self) -> float:
        """Every call's cost together, each at its own model's price."""
        return sum(entry.cost for entry in self._entries.values())

    def payload(self) -> list[dict[str, Any]]:
        """The ``roles`` list of the proposal payload."""
        return [entry.payload() for entry in self.entries]

    def records(self) -> list[dict[str, Any]]:
        """The entries as plain data (transcript, run state)."""
        return [entry.record() for entry in self.entries]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> CostLedger:
        """A ledger from `records` (`records` form, or the payload form ``{role, node?, inputTokens,
        outputTokens, cost}``, whose input tokens count as uncached); entries of the same role and node
        are summed, unreadable ones skipped."""
        entries: list[RoleCost] = []
        for item in records:
            if not isinstance(item, Mapping) or not item.get("role"):
                continue
            node = item.get("node")
            if "usage" in item or "inputTokens" not in item:
                usage = Usage.from_api(item.get("usage") or {})
            else:
                usage = Usage(
                    input_tokens=int(item.get("inputTokens") or 0),
                    output_tokens=int(item.get("outputTokens") or 0),
                )
            entries.append(
                RoleCost(
                    role=str(item["role"]),
                    node=str(node) if node is not None else None,
                    usage=usage,
                    cost=float(item.get("cost") or 0.0),
                    calls=int(item.get("calls") or 1),
                )
            )
        return cls(entries)

    @classmethod
    def from_transcript(cls, records: Iterable[Any]) -> CostLedger:
        """The ledger of a run from its transcript records (objects with `type` and `get`).

        A run that ended with one `run_end` carrying `roles` has its ledger there (condensation calls
        included). Otherwise (a team run, whose roles each end their own loop; a run that crashed) it is
        summed from the `response` records by role and node, plus each `delegate` decision under its
        sub-agent's role."""
        records = list(records)
        ends = [record for record in records if record.type == "run_end"]
        if len(ends) == 1 and ends[0].get("roles"):
            return cls.from_records(ends[0].get("roles"))
        ledger = cls()
        for record in records:
            delegated = record.type == "decision" and record.get("kind") == "delegate"
            if record.type != "response" and not delegated:
                continue
            node = record.get("node")
            ledger._put(
                RoleCost(
                    role=str(record.get("role") or "solo"),
                    node=str(node) if node is not None and not delegated else None,
                    usage=Usage.from_api(record.get("usage") or {}),
                    cost=float(record.get("cost") or 0.0),
                    calls=1 if not delegated else int(record.get("steps") or 0),
                )
            )
        return ledger

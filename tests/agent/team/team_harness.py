"""Shared pieces of the team tests: a small shop workspace, the fake Messages API playing each role (it
reads the role from the system prompt), the scripted 3-file feature, and a `TeamRun` wired to the fake
through the real SDK, a real overlay, the real bubblewrap sandbox and a real transcript."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import AgentSettings
from agent.loop import AgentEvent, RunResult
from agent.models.anthropic import AnthropicModel
from agent.overlay import Overlay
from agent.resume import RunState
from agent.sandbox import Sandbox
from agent.team.engine import TeamRun
from agent.team.graph import TEAM_GRAPH, Graph, Node
from agent.transcript import Transcript
from tests.agent.agent_harness import EDITOR, fast_settings
from tests.fakes.anthropic_server import FakeAnthropic, Reply, ScriptItem, fault, text, tool_use, turn

ROLE = re.compile(r"\(role: (\w+)\)")

CART = '''"""A shopping cart."""


def total(prices: list[float]) -> float:
    """The sum of `prices`."""
    return sum(prices)
'''
PYPROJECT = """[project]
name = "shop"
version = "0.1.0"

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-p no:pytest-lsp -p no:asyncio -p no:anyio -p no:hypothesispytest -p no:benchmark -p no:timeout"
"""
INSTRUCTION = "Add percentage discounts to the cart total."


def shop_workspace(root: Path) -> Path:
    """A tiny project: shop/cart.py with `total`, and its test."""
    (root / "shop").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "shop" / "__init__.py").write_text('"""A tiny shop."""\n')
    (root / "shop" / "cart.py").write_text(CART)
    (root / "tests" / "test_cart.py").write_text(
        "from shop.cart import total\n\n\ndef test_total():\n    assert total([1.0, 2.0]) == 3.0\n"
    )
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


class RoleScript:
    """A responder for `FakeAnthropic`: each role gets its own queue of turns, chosen by the
    ``(role: NAME)`` of the request's system prompt; `calls` lists the role of every request."""

    def __init__(self, turns: Mapping[str, Sequence[ScriptItem]]) -> None:
        self.turns = {role: deque(items) for role, items in turns.items()}
        self.calls: list[str] = []
        self.bodies: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, body: Mapping[str, Any]) -> ScriptItem:
        system = body.get("system", "")
        if not isinstance(system, str):
            system = "".join(str(block.get("text", "")) for block in system)
        match = ROLE.search(system)
        role = match.group(1) if match else "solo"
        with self._lock:
            self.calls.append(role)
            self.bodies.append(body)
            queue = self.turns.get(role)
            if not queue:
                return fault(400, "invalid_request_error", f"the script has no turn left for {role}")
            return queue.popleft()

    def left(self) -> dict[str, int]:
        """Turns not used yet, by role."""
        return {role: len(queue) for role, queue in self.turns.items() if queue}


def create(path: str, content: str) -> Reply:
    return tool_use(EDITOR, {"command": "create", "path": path, "file_text": content})


def replace(path: str, old: str, new: str) -> Reply:
    return tool_use(EDITOR, {"command": "str_replace", "path": path, "old_str": old, "new_str": new})


SPEC = {
    "title": "Percentage discounts",
    "user_stories": ["As a shopper, I want a percentage discount on my cart total, so that sales apply."],
    "acceptance_criteria": [
        {"id": "AC1", "text": "apply_discount(100, 10) returns 90.0"},
        {"id": "AC2", "text": "apply_discount raises ValueError for a percent outside 0..100"},
        {"id": "AC3", "text": "total([50, 50], discount=10) returns 90.0"},
    ],
    "open_questions": [],
    "out_of_scope": ["currency rounding"],
}
DESIGN = {
    "summary": "A discount module used by the cart",
    "files_to_touch": ["shop/cart.py"],
    "files_to_create": ["shop/discount.py"],
    "symbols": ["shop.discount.apply_discount", "shop.cart.total"],
    "interfaces": ["apply_discount(amount: float, percent: float) -> float"],
    "risks": ["callers of total() without a discount must keep working"],
    "work_items": [
        {
            "id": "W1",
            "title": "discount module",
            "description": "Create shop/discount.py with apply_discount.",
            "files": ["shop/discount.py"],
            "criteria": ["AC1", "AC2"],
        },
        {
            "id": "W2",
            "title": "cart discount",
            "description": "Give total() a discount percent argument, default 0.",
            "files": ["shop/cart.py"],
            "criteria": ["AC3"],
        },
    ],
}
# W1 forgets the range check: QA's test of AC2 fails until the coder fixes it.
DISCOUNT = '''"""Discounts."""


def apply_discount(amount: float, percent: float) -> float:
    """`amount` less `percent` per cent."""
    return amount * (100 - percent) / 100
'''
CHECK = '''    """`amount` less `percent` per cent."""
'''
CHECK_FIXED = (
    CHECK
    + """    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be within 0..100, got {percent}")
"""
)
QA_TESTS = """import pytest

from shop.cart import total
from shop.discount import apply_discount


def test_ac1_ten_percent():
    assert apply_discount(100, 10) == 90.0


def test_ac2_out_of_range():
    with pytest.raises(ValueError):
        apply_discount(100, 150)


def test_ac3_cart_total():
    assert total([50, 50], discount=10) == 90.0
"""
REVIEW_FAIL = {
    "criteria": [
        {"id": "AC1", "verdict": "pass", "evidence": "test_ac1_ten_percent passed"},
        {"id": "AC2", "verdict": "fail", "evidence": "test_ac2_out_of_range: DID NOT RAISE ValueError"},
        {"id": "AC3", "verdict": "pass", "evidence": "test_ac3_cart_total passed"},
    ],
    "passed": False,
    "tests_added": ["tests/test_discount.py"],
    "issues": [],
    "fix_instructions": "apply_discount must raise ValueError when percent is outside 0..100.",
}
REVIEW_PASS = {
    "criteria": [
        {"id": "AC1", "verdict": "pass", "evidence": "test_ac1_ten_percent passed"},
        {"id": "AC2", "verdict": "pass", "evidence": "test_ac2_out_of_range passed"},
        {"id": "AC3", "verdict": "pass", "evidence": "test_ac3_cart_total passed"},
    ],
    "passed": True,
    "tests_added": ["tests/test_discount.py"],
}


def feature_script() -> dict[str, list[ScriptItem]]:
    """The 3-file feature: planner -> architect -> coders W1, W2 -> QA rejects (a failing test) ->
    coder FIX1 -> QA passes."""
    return {
        "planner": [
            turn(text("Let me see the cart."), tool_use(EDITOR, {"command": "view", "path": "shop/cart.py"})),
            tool_use("submit_spec", SPEC),
        ],
        "architect": [tool_use("submit_design", DESIGN)],
        "coder": [
            create("shop/discount.py", DISCOUNT),
            tool_use("submit_result", {"work_item": "W1", "files_changed": ["shop/discount.py"]}),
            replace(
                "shop/cart.py",
                CART.split("\n\n\n", 1)[1],
                "from shop.discount import apply_discount\n\n\n"
                "def total(prices: list[float], discount: float = 0) -> float:\n"
                '    """The sum of `prices`, less `discount` per cent."""\n'
                "    return apply_discount(sum(prices), discount)\n",
            ),
            tool_use(
                "submit_result", {"work_item": "W2", "files_changed": ["shop/cart.py"], "notes": "default 0"}
            ),
            # FIX1, after QA's first review
            replace("shop/discount.py", CHECK, CHECK_FIXED),
            tool_use("submit_result", {"work_item": "FIX1", "files_changed": ["shop/discount.py"]}),
        ],
        "qa": [
            create("tests/test_discount.py", QA_TESTS),
            tool_use("run_tests", {"path": "tests/test_discount.py"}),
            tool_use("submit_review", REVIEW_FAIL),
            tool_use("run_tests", {"path": "tests/test_discount.py"}),
            tool_use("submit_review", REVIEW_PASS),
        ],
    }


TWO_REVIEWS = Graph(
    name="twice",
    description="a spec, one coder, then two QA reviews of one round each",
    nodes=(
        Node(name="plan", role="planner"),
        Node(name="code", type="work_items", role="coder"),
        Node(name="check", type="review", role="qa", max_rounds=1),
        Node(name="recheck", type="review", role="qa", max_rounds=1),
    ),
)
TWO_REVIEWS_TOML = """
[[agent.team.graphs.twice.nodes]]
name = "plan"
role = "planner"
[[agent.team.graphs.twice.nodes]]
name = "code"
type = "work_items"
role = "coder"
[[agent.team.graphs.twice.nodes]]
name = "check"
type = "review"
role = "qa"
max_rounds = 1
[[agent.team.graphs.twice.nodes]]
name = "recheck"
type = "review"
role = "qa"
max_rounds = 1
"""
"""`TWO_REVIEWS` as a workspace defines it in agentls.toml."""


def two_reviews_script() -> dict[str, list[ScriptItem]]:
    """`TWO_REVIEWS` on the shop: spec -> coder W1 -> check rejects -> FIX1 -> check passes -> recheck
    rejects -> FIX2 -> recheck passes; each review node uses its one round."""
    cart = "def total(prices: list[float], discount: float = 0) -> float:\n    return sum(prices)\n"
    return {
        "planner": [tool_use("submit_spec", SPEC)],
        "coder": [
            create("shop/discount.py", DISCOUNT),
            tool_use("submit_result", {"work_item": "W1"}),
            replace("shop/discount.py", CHECK, CHECK_FIXED),  # FIX1, from node check
            tool_use("submit_result", {"work_item": "FIX1"}),
            replace("shop/cart.py", CART.split("\n\n\n", 1)[1], cart),  # FIX2, from node recheck
            tool_use("submit_result", {"work_item": "FIX2"}),
        ],
        "qa": [tool_use("submit_review", review) for review in (REVIEW_FAIL, REVIEW_PASS) * 2],
    }


@dataclass
class TeamHarness:
    """TeamRun factory bound to one fake server and one workspace."""

    fake: FakeAnthropic
    root: Path
    runs_dir: Path
    events: list[AgentEvent] = field(default_factory=list)
    asked: list[tuple[str, list[str]]] = field(default_factory=list)
    answer: str = "Start"

    def ask(self, question: str, options: Sequence[str]) -> str:
        self.asked.append((question, list(options)))
        return self.answer

    def team(
        self,
        settings: AgentSettings | None = None,
        graph: Graph = TEAM_GRAPH,
        *,
        ask: Callable[[str, Sequence[str]], str] | None = None,
        run_id: str | None = None,
    ) -> TeamRun:
        settings = settings or fast_settings()
        model = AnthropicModel(settings.model, api_key="sk-ant-fake", base_url=self.fake.url)
        return TeamRun(
            model,
            settings,
            graph,
            root=self.root,
            overlay=Overlay(self.root),
            sandbox=Sandbox(settings.sandbox),
            ask=ask or self.ask,
            on_event=self.events.append,
            transcript=Transcript(self.runs_dir, run_id),
        )

    def of_kind(self, kind: str) -> list[AgentEvent]:
        return [event for event in self.events if event.kind == kind]


def run_team(
    fake: FakeAnthropic, root: Path, runs: Path, settings: AgentSettings, resume: RunState | None = None
) -> RunResult:
    """A team run of `INSTRUCTION` (or of the saved run `resume`) through `agent.runner.start_run` on the
    fake API, as the CLI starts one; its result (within 30 s)."""
    from agent.models import Credentials
    from agent.runner import start_run
    from agent.task_builders import run_task
    from tests.fakes.anthropic_server import FAKE_API_KEY

    credentials = Credentials(api_key=FAKE_API_KEY, base_url=fake.url)
    task = resume.task if resume is not None else run_task(INSTRUCTION, root=root)
    handle = start_run(
        task, root=root, settings=settings, credentials=credentials, runs_dir=runs, mode="team", resume=resume
    )
    result = handle.wait(30)
    assert result is not None, "the team run did not end within 30 s"
    return result

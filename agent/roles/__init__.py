"""Roles: what one agent in a run is for, as data the loop is parameterised by.

A `Role` has a name, a system-prompt template, the names of its tools (built by
`agent.tools.toolset.toolset`), whether it is read-only, and optional model settings of its own. The loop
(`agent.loop.Agent`) takes a role and knows nothing else about it: its system prompt comes from
`Role.system_prompt(context)`, its tools from `toolset(role, ...)`, and its first user turn from
`Role.first_turn` (the rendered task, then the role's `begin`).

`solo` (`SOLO`) is one agent that formalizes, plans, edits, runs commands and tests, and asks the user
when the task is ambiguous; its prompt is ``agent/prompts/system.md``. The team roles (`agent.team`) are
`planner` (a `Spec`; read-only, may ask the user), `architect` (a `Design`; read-only), `coder` (carries
out one work item on the overlay: a `WorkResult`) and `qa` (writes tests from the criteria, runs them,
reviews the diff: a `Review`); each names its handoff (`Role.handoff`) and ends by submitting it through
the submit tool the team engine adds (`agent.team.submit`). `explore` (`EXPLORE`) is the read-only
sub-agent of the `delegate` tool (`agent.tools.delegate`). A new role is a
new `Role` value registered in `ROLES` (with its prompt template beside the others); roles that may not
change files (`read_only=True`) get the view-only editor and no tool that changes the overlay.

Templates use `string.Template` placeholders (``$root``) and are filled by `PromptContext`; a template
without placeholders (the solo prompt) renders byte-identical from run to run, so it can be cached.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import ModelSettings

__all__ = [
    "ARCHITECT",
    "CODER",
    "EXPLORE",
    "PLANNER",
    "QA",
    "ROLES",
    "SOLO",
    "TEAM_ROLES",
    "PromptContext",
    "Role",
    "RoleNotFound",
    "get_role",
]

EDITOR = "str_replace_based_edit_tool"
BASH = "bash"
SEARCH_CODE = "search_code"
FIND_SYMBOL = "find_symbol"
RUN_TESTS = "run_tests"
ASK_USER = "ask_user"
LOOKUP_DOCS = "lookup_docs"
GIT = ("git_status", "git_diff", "git_log", "git_show", "git_blame")
TODO = "todo"
DELEGATE = "delegate"


_SOLO_BEGIN = (
    "\nStart by restating the goal as a short spec with acceptance criteria, and a plan of a few steps "
    "(ask the user with `ask_user` only if the task is ambiguous in a way the code cannot settle). Then "
    "carry the plan out with the tools. When you are done, reply without calling any tool: that reply is "
    "the summary the user reads, and your change is verified (syntax checks, doctests, the related "
    "tests) before it is proposed.\n"
)


@dataclass(frozen=True)
class PromptContext:
    """What a run adds to its role's system prompt."""

    values: Mapping[str, str] = field(default_factory=dict)
    """Values for the template's placeholders (missing ones stay as written)."""
    sections: tuple[str, ...] = ()
    """Sections appended after the template, in order (for example the environment, project rules)."""


@functools.cache
def _template(path: str) -> Template:
    return Template((resources.files("agent") / path).read_text("utf-8"))


@dataclass(frozen=True)
class Role:
    """One kind of agent: its prompt, its tools and, optionally, its model."""

    name: str
    prompt: str
    """The system-prompt template, a path inside the `agent` package (``prompts/system.md``)."""
    tools: tuple[str, ...]
    """Names of the tools the role gets, in the order the model sees them (see `agent.tools.toolset`)."""
    read_only: bool = False
    """True: the role may not change files (view-only editor, no bash)."""
    model: ModelSettings | None = None
    """Model settings of the role; None uses the run's (`AgentSettings.model`)."""
    begin: str = ""
    """Appended to the first user turn of a task that may edit (the solo role asks for a spec and a plan
    first, and says how the run ends)."""
    handoff: str | None = None
    """The handoff the role submits in a team run (`agent.team.handoffs.HANDOFFS` key); None for solo."""

    def system_prompt(self, context: PromptContext | None = None) -> str:
        """The role's system prompt for one run."""
        template = _template(self.prompt)
        text = template.safe_substitute(context.values) if context is not None else template.template
        parts = [text.strip()]
        if context is not None:
            parts.extend(section.strip() for section in context.sections if section.strip())
        return "\n\n".join(parts) + "\n"

    def first_turn(self, task_prompt: str, *, edits_allowed: bool) -> str:
        """The first user message: the rendered task (context first), then the role's `begin`."""
        return task_prompt + self.begin if edits_allowed else task_prompt


SOLO = Role(
    name="solo",
    prompt="prompts/system.md",
    tools=(EDITOR, BASH, SEARCH_CODE, FIND_SYMBOL, LOOKUP_DOCS, RUN_TESTS, ASK_USER, *GIT, TODO, DELEGATE),
    begin=_SOLO_BEGIN,
)
"""Today's agent: one loop that does the whole task."""

_READ = (EDITOR, SEARCH_CODE, FIND_SYMBOL, LOOKUP_DOCS, *GIT)

PLANNER = Role(
    name="planner",
    prompt="prompts/planner.md",
    tools=(*_READ, ASK_USER, TODO, DELEGATE),
    read_only=True,
    handoff="Spec",
    begin="\nWrite the spec for this request and submit it with `submit_spec`.\n",
)
"""Turns the request into a `Spec`; asks the user about ambiguities; changes nothing."""
ARCHITECT = Role(
    name="architect",
    prompt="prompts/architect.md",
    tools=(*_READ, TODO, DELEGATE),
    read_only=True,
    handoff="Design",
    begin="\nDesign the change for this spec and submit it with `submit_design`.\n",
)
"""Turns the spec into a `Design` with ordered work items; changes nothing."""
CODER = Role(
    name="coder",
    prompt="prompts/coder.md",
    tools=(EDITOR, BASH, SEARCH_CODE, FIND_SYMBOL, LOOKUP_DOCS, RUN_TESTS, *GIT, TODO, DELEGATE),
    handoff="WorkResult",
    begin="\nCarry out this work item, then submit with `submit_result`.\n",
)
"""Carries out one work item (or QA's fix instructions) on the overlay: a `WorkResult`."""
QA = Role(
    name="qa",
    prompt="prompts/qa.md",
    tools=(EDITOR, BASH, SEARCH_CODE, FIND_SYMBOL, RUN_TESTS, *GIT, TODO),
    handoff="Review",
    begin="\nTest the change against the acceptance criteria and submit your verdict with `submit_review`.\n",
)
"""Writes tests from the criteria, runs them, reviews the diff: a `Review`."""

TEAM_ROLES: tuple[Role, ...] = (PLANNER, ARCHITECT, CODER, QA)
"""The roles of the team graph, in the order they work."""

EXPLORE = Role(
    name="explore",
    prompt="prompts/explore.md",
    tools=(EDITOR, SEARCH_CODE, FIND_SYMBOL, *GIT),
    read_only=True,
)
"""The `delegate` tool's sub-agent (`agent.tools.delegate`): answers one question about the code with
read-only tools and its own context, and reports back briefly."""

ROLES: Mapping[str, Role] = {role.name: role for role in (SOLO, *TEAM_ROLES, EXPLORE)}
"""The roles by name."""


class RoleNotFound(LookupError):
    """No role has that name; the message lists the ones that exist."""


def get_role(name: str) -> Role:
    """The role called `name`; raises `RoleNotFound`."""
    try:
        return ROLES[name]
    except KeyError:
        raise RoleNotFound(f"there is no role {name!r}; the roles are: {', '.join(ROLES)}") from None

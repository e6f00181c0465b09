"""The team engine: runs a graph's nodes in order on one overlay and proposes the result once.

```
TeamRun.run(task)        run_start (role "team:<graph>"), then for each node from state.next_node:
  role node              one RoleAgent of the node's role; its handoff goes into the state
  work_items node        one coder RoleAgent per work item of the design, in order
  review node            QA reviews; a failed review goes to a coder as a FIX work item, then QA again,
                         at most max_rounds times, counted per review node; a fix that changed no file
                         is not reviewed again (below); then the graph goes on (flagged when still failing)
  after each node        checkpoint (agent.team.checkpoint) + run state (agent.resume), so a resumed run
                         restarts at the node that failed (a review node in a fix round: with that fix)
  at the end             one verification of the overlay's changes, one proposal carrying
                         team = {spec, design, review}; run_end
```

A fix that changes nothing: QA would judge the same work the same way, so re-asking it only spends tokens
until the rounds run out. The fixer's first submission while the overlay is as QA saw it (same files, same
texts: `_work_digest`) is refused once, in its own conversation, saying its fix changed nothing (a
"fix_unchanged" decision); a second one is accepted and ends the node's loop without asking QA again
(decision "give_up", reason "fixer_unchanged"; a "warning" event). The run then proposes the work with QA's
report, its verdict "Not verified: QA rejects the change", the fixer's notes, and a summary starting
"WARNING: QA still rejects this change: the fixer made no change in round N of node NAME ...".

Every role is the solo loop (`agent.team.role_agent.RoleAgent`) on the same overlay, sandbox, index,
`ask_user` callback, cancel event and transcript (each role's records follow a `run_start` naming its
role); the engine adds `handoff` records (a coder's `WorkResult` names the files the overlay says it
changed, whatever it listed; a "files_changed" decision keeps what it reported when the two differ).
Events: the roles' own (steps, tool calls) pass through, and the engine emits "role" (started / finished /
failed) and "handoff" (role, node, handoff name, the JSON document and a markdown rendering) as
`agent.loop.AgentEvent`s. A "warning" is passed on once per run
(by subject and text): each role starts the MCP servers again, so a server that cannot start would warn
once per role; the transcript keeps each role's record of it, and each role's model is told. For the same
reason the roles share the run's MCP trust answers (`agent.mcp.trust.RunAnswers`): the user is asked
whether to trust a server once per run, and a later role takes that answer (an ``mcp_server_answered``
decision of the transcript).

Accounting: one `agent.costs.CostLedger` per run, by role and node (each role agent's calls, its explore
sub-agents' under `explore` in the same node); the run's usage and cost are its sums, and the checkpoint
holds its records, so a resumed run goes on from exactly what was spent (cached input apart).

Bounds: the run's token, cost and time budgets cover all roles (each agent gets what is left, and a
node's `max_cost_usd` and `max_minutes` cap its share, explorations included), each agent has the node's
`max_steps` (else `agent.max_steps`), and the whole run `agent.team.max_steps`. The run's time
(`agent.max_minutes`) counts from its start, resumed parts included (the state keeps the run's seconds and
the checkpoint each node's); the final verification's commands end by it too. A node that ends without
its handoff (invalid too often, out of steps, budget or time, a model error) stops the run there with the
work so far as an UNFINISHED proposal; `agentls runs resume ID` continues from that node. After the
planner, the spec is shown for confirmation through the `ask_user` path when `agent.team.confirm_spec` is
true; a refusal ends the run with no change. The question waits at most to the run's time bound: still
unanswered then, it is withdrawn and the run stops there (budget_exhausted), its resume asking again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agent.config import AgentSettings
from agent.costs import CostLedger
from agent.loop import Agent, AgentEvent, EventKind, RunCancelled, RunResult, RunStatus
from agent.mcp.trust import RunAnswers
from agent.models import Cancelled
from agent.overlay import Overlay
from agent.proposal import Proposal, new_proposal_id
from agent.recorder import Recorder
from agent.resume import RunState, overlay_files, restore_overlay, save_state
from agent.roles import ROLES
from agent.settings_error import setting_to_fix
from agent.task import Task
from agent.team.checkpoint import TeamState, save_checkpoint
from agent.team.graph import Graph, Node
from agent.team.handoffs import Design, Review, Spec, WorkItem, WorkResult, against_spec, markdown
from agent.team.role_agent import Limit, RoleAgent
from agent.team.submit import SubmitTool
from agent.timebound import DeadlineEvent, TimeBoundSandbox, bounded_ask
from agent.tools.ask import AskCallback, NoAnswer, QuestionWithdrawn
from agent.tools.todo import TodoList
from agent.transcript import Transcript, new_run_id
from agent.usage import Budget, BudgetExceeded, Usage
from agent.verify import VerificationResult, Verifier

if TYPE_CHECKING:
    from agent.interpreter import Interpreter
    from agent.ports import CodeIndex, EventSink, Model, Sandbox
    from agent.toolchains import Toolchain
    from indexing.config import IndexSettings

__all__ = ["TeamRun"]

log = logging.getLogger(__name__)

_DIFF_CHARS = 20_000
_YES = frozenset({"start", "yes", "y", "ok", "go"})


class _NodeFailed(Exception):
    def __init__(self, message: str, status: RunStatus = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _SpecDeclined(Exception):
    pass


def _json(document: BaseModel | Mapping[str, Any]) -> str:
    data = document.model_dump() if isinstance(document, BaseModel) else dict(document)
    return "```json\n" + json.dumps(data, indent=1, ensure_ascii=False) + "\n```"


class TeamRun:
    """One run of a team graph. Create one per run (or resumed run)."""

    def __init__(
        self,
        model: Model,
        settings: AgentSettings,
        graph: Graph,
        *,
        root: Path,
        overlay: Overlay,
        sandbox: Sandbox,
        index: CodeIndex | None = None,
        ask: AskCallback | None = None,
        on_event: EventSink | None = None,
        cancel: threading.Event | None = None,
        transcript: Transcript | None = None,
        scratch_dir: Path | None = None,
        models: Callable[[str], Model] | None = None,
        index_settings: IndexSettings | None = None,
    ) -> None:
        """`model` is the run's client; `models` (role name -> client, `agent.models.roles.RoleModels`)
        gives a role its own model (``[agent.roles.NAME.model]``); None: `model` for every role.
        `index_settings`: the workspace's index settings, for its verifiers (`Verifier(index_settings=...)`).
        """
        self.model = model
        self.models = models
        self.settings = settings
        self.graph = graph
        self.root = Path(root)
        self.overlay = overlay
        self.sandbox: Sandbox = sandbox
        if settings.max_minutes is not None:
            self.sandbox = TimeBoundSandbox(sandbox, self.seconds_left)
        self.index = index
        self.index_settings = index_settings
        self.ask = ask
        self.on_event = on_event
        self.cancel = cancel or threading.Event()
        self.transcript = transcript
        self.scratch_dir = scratch_dir
        self.recorder = Recorder(transcript)
        self.run_id = transcript.run_id if transcript is not None else new_run_id()
        self.runs_dir = transcript.directory if transcript is not None else None
        self.state = TeamState(graph=graph)
        self.task: Task | None = None
        self.ledger = CostLedger()
        """Usage and cost per role and node (`agent.costs`): the run's one account of what it spent
        (`usage` and `cost` are its sums), saved in the checkpoint as records and restored exactly."""
        self.todos = TodoList()
        self.interpreter: Interpreter | None = None
        """The project's Python, found by the first role's verifier and shared by the others."""
        self.toolchains: tuple[Toolchain, ...] | None = None
        """The project's Cargo and Go (`agent.toolchains`), likewise asked once for the whole run."""
        """One todo list for the whole run, shared by its roles (each role's loop shows its changes)."""
        self.verifications: list[VerificationResult] = []
        self.node_seconds: dict[str, float] = {}
        """Wall time per node, model calls included (the overhead benchmark subtracts them); a resumed
        run starts from the checkpoint's, so a node's `max_minutes` counts its earlier parts."""
        self._seconds_before = 0.0
        """Wall-clock seconds of the run's earlier parts (resumed), counted against `agent.max_minutes`."""
        self._started: float | None = None
        self._node_began: tuple[str, float] | None = None
        """The node at work and when it began (its time so far is not yet in `node_seconds`)."""
        self.resumed_from: str | None = None
        self.warned: set[tuple[str, str]] = set()
        """The warnings passed on so far (subject, text): each is said once per run."""
        self.mcp_answers = RunAnswers()
        """The MCP trust questions asked so far: each role starts the servers again, but the user answers
        once per run (`agent.mcp.trust`)."""

    # -- the run ---------------------------------------------------------------------------------------

    def run(self, task: Task, resume: tuple[RunState, TeamState] | None = None) -> RunResult:
        """Run the graph on `task` (or continue the stopped run `resume`); never raises for a failed run."""
        started = self._started = time.monotonic()
        self.task = task
        status: RunStatus = "failed"
        summary, error, proposal = "", None, None
        self.recorder.run_start(
            run_id=self.run_id,
            root=self.root,
            model=self.model.model_name,
            task=task,
            settings=self.settings,
            role=f"team:{self.graph.name}",
        )
        try:
            if resume is not None:
                self._restore(*resume)
            for index in range(self.state.next_node, len(self.graph.nodes)):
                self._confirm()  # after the planner's node is saved, so a stop at the question resumes here
                self.state.next_node = index
                node = self.graph.nodes[index]
                began = time.monotonic()
                self._node_began = (node.name, began)
                self._decision("node", node=node.name, node_type=node.type, role=node.role)
                try:
                    self._run_node(node)
                finally:
                    self._node_began = None
                    self.node_seconds[node.name] = self.node_seconds.get(node.name, 0.0) + (
                        time.monotonic() - began
                    )
                self.state.next_node = index + 1
                self._checkpoint("running", None)
            self._confirm()
            self._check_time()  # the final checks are not started when the run's time is up
            status, summary, proposal = self._propose()
        except _SpecDeclined as declined:
            status = "no_changes"
            summary = (
                f"The spec was not confirmed ({declined}); nothing was changed. Run again with a clearer "
                "request."
            )
        except (RunCancelled, Cancelled, KeyboardInterrupt):
            status, summary = "cancelled", "The run was cancelled; nothing was proposed."
        except _NodeFailed as failed:
            status, error = failed.status, failed.message
            summary, proposal = self._keep_work(failed.message)
        except Exception as failure:
            setting = setting_to_fix(failure)  # a role's model whose setting cannot be used: the user's
            if setting is None:
                log.exception("team run %s failed", self.run_id)
            error = setting or (
                f"internal error: {failure!r}. This is a bug in agentls; the transcript has the details."
            )
            summary, proposal = self._keep_work(f"The run failed: {error}")
        finally:
            if self.cancel.is_set() and status != "failed":
                status, proposal = "cancelled", None
                summary = "The run was cancelled; nothing was proposed."
            self._checkpoint(status, error)
            seconds = time.monotonic() - started
            self._emit("stop", f"run {status}" + (f": {error}" if error else ""), status=status)
            self.recorder.run_end(
                status=status,
                summary=summary,
                error=error,
                usage=self.usage,
                cost=self.cost,
                steps=self.state.steps,
                reflections=self.state.rounds,
                proposal_id=proposal.proposal_id if proposal is not None else None,
                seconds=seconds,
                step_seconds=(),
                roles=self.ledger.records(),
            )
        return RunResult(
            run_id=self.run_id,
            task=task,
            status=status,
            summary=summary,
            proposal=proposal,
            usage=self.usage,
            cost=self.cost,
            steps=self.state.steps,
            verifications=tuple(self.verifications),
            transcript_path=self.recorder.path,
            error=error,
            plan=markdown(Spec.model_validate(self.state.spec)) if self.state.spec else "",
            reflections=self.state.rounds,
            seconds=seconds,
            roles=tuple(self.ledger.entries),
        )

    @property
    def usage(self) -> Usage:
        """Every model call of the run so far, resumed parts included (the ledger's sum)."""
        return self.ledger.usage

    @property
    def cost(self) -> float:
        """The run's cost so far, each call at its own model's price (the ledger's sum)."""
        return self.ledger.cost

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds of the run so far, its earlier parts included when it was resumed."""
        now = 0.0 if self._started is None else time.monotonic() - self._started
        return self._seconds_before + now

    def seconds_left(self) -> float | None:
        """Seconds left of `agent.max_minutes` (None: no time bound)."""
        return self.settings.budget().seconds_left(self.elapsed)

    def _deadline(self) -> threading.Event:
        """The run's cancel, also set once its `agent.max_minutes` is used up (`DeadlineEvent`)."""
        left = self.seconds_left()
        return self.cancel if left is None else DeadlineEvent(self.cancel, time.monotonic() + left)

    def _check_time(self) -> None:
        """Stop the run (budget_exhausted, resumable) when its `agent.max_minutes` is used up."""
        try:
            self.settings.budget().check_time(self.elapsed)
        except BudgetExceeded as exceeded:
            raise _NodeFailed(exceeded.message, "budget_exhausted") from exceeded

    def _node_spent(self, name: str) -> float:
        """Wall-clock seconds node `name` has taken so far, its earlier parts and its current one."""
        now = 0.0
        if self._node_began is not None and self._node_began[0] == name:
            now = time.monotonic() - self._node_began[1]
        return self.node_seconds.get(name, 0.0) + now

    def _restore(self, saved: RunState, state: TeamState) -> None:
        restored = restore_overlay(self.overlay, saved)
        self._seconds_before = saved.seconds
        self.node_seconds = dict(state.node_seconds)
        self.state = state.model_copy(update={"graph": self.graph})
        self.ledger = CostLedger.from_records(state.roles)
        self.todos.restore(state.todos)
        self.resumed_from = saved.run_id
        node = self.graph.nodes[min(state.next_node, len(self.graph.nodes) - 1)].name
        self._decision(
            "resumed",
            resumed_from=saved.run_id,
            node=node,
            files=sorted(saved.files),
            merged=restored.merged,
            kept_user_text=restored.kept,
        )

    # -- nodes -----------------------------------------------------------------------------------------

    def _run_node(self, node: Node) -> None:
        if node.type == "work_items":
            self._work_items(node)
        elif node.type == "review":
            self._review(node)
        elif node.type == "role":
            self._store(self._run_role(node, node.role, self._brief(node.role)))
        else:
            raise _NodeFailed(f"node {node.name!r}: a {node.type} node cannot run inside a team graph")

    def _store(self, document: BaseModel) -> None:
        data = document.model_dump()
        if isinstance(document, Spec):
            self.state.spec = data
            self.state.spec_pending = True
        elif isinstance(document, Design):
            self.state.design = data
        elif isinstance(document, WorkResult):
            self.state.results.append(data)
        elif isinstance(document, Review):
            self.state.reviews.append(data)

    def _work_items(self, node: Node) -> None:
        done = {str(result.get("work_item")) for result in self.state.results}
        for item in self._items():
            if item.id in done:
                continue  # finished before a resume
            author = "architect" if self.state.design is not None else "planner"  # who wrote the item
            self._handoff(author, node.name, item)
            self._store(self._run_role(node, node.role, self._brief(node.role, item), item))
            self._checkpoint("running", None)

    def _items(self) -> list[WorkItem]:
        if self.state.design is not None:
            return list(Design.model_validate(self.state.design).work_items)
        spec = Spec.model_validate(self.state.spec) if self.state.spec else None
        return [
            WorkItem(
                id="W1",
                title=spec.title if spec else "the task",
                description="Carry out the whole task" + (" to meet the spec." if spec else "."),
                criteria=spec.criterion_ids if spec else ["AC1"],
            )
        ]

    def _review(self, node: Node) -> None:
        """QA, then while it rejects and this node has rounds left: a fixer, then QA again. Each review
        node counts its own rounds. A fix that changes nothing is not reviewed again (see `_fix`)."""
        rounds = node.max_rounds
        if rounds is None:
            rounds = self.settings.team.max_rounds
        if rounds is None:
            rounds = self.settings.max_reflections
        if not self._resume_fix(node):
            return
        while True:
            review = self._run_role(node, node.role, self._brief(node.role))
            assert isinstance(review, Review)
            self._store(review)
            self._checkpoint("running", None)
            if review.passed:
                self.state.review_end = None
                return
            done = self.state.review_rounds.get(node.name, 0)
            if done >= rounds:
                self.state.review_end = _after_rounds(done)
                self._decision("give_up", node=node.name, rounds=done)
                return
            done += 1
            self.state.review_rounds[node.name] = done
            self.state.rounds += 1
            self._decision("reflection", node=node.name, number=done)
            self._emit(
                "reflection",
                f"QA rejected the change; a coder fixes it ({done} of {rounds})",
                stage="reflect",
            )
            if not self._fix(node, self._fix_item(review), done, self._work_digest()):
                return

    def _resume_fix(self, node: Node) -> bool:
        """Finish the fix round a stopped run was in at `node`, if any, before QA reviews again. False when
        that fix changed nothing (the node's loop ends, as in `_fix`)."""
        fixing = self.state.fixing
        if fixing is None or fixing.get("node") != node.name:
            return True
        item = WorkItem.model_validate(fixing["item"])
        return self._fix(node, item, int(fixing["round"]), str(fixing["digest"]))

    def _fix_item(self, review: Review) -> WorkItem:
        """The work item of a fix round: what `review` found, for a coder."""
        failing = [c.id for c in review.criteria if c.verdict == "fail"]
        return WorkItem(
            id=f"FIX{self.state.rounds}",  # run-wide, so two review nodes' fixes keep apart
            title="Fix what QA found",
            description="\n".join(
                [
                    review.fix_instructions or "Make the failing criteria pass.",
                    *(f"- {c.id}: {c.evidence}" for c in review.criteria if c.verdict == "fail"),
                    *(f"- issue: {issue}" for issue in review.issues),
                ]
            ),
            criteria=failing or [c.id for c in review.criteria],
        )

    def _fix(self, node: Node, fix: WorkItem, number: int, before: str) -> bool:
        """Round `number` of `node`: the fixer works on `fix`, what QA found in the work whose digest is
        `before`. False when it changed nothing.

        QA would judge the same work again, so a fix that changed no file is not reviewed: the fixer's
        first submission without a change is refused once, in its own conversation (the nudge: make the
        change, or submit again with notes saying why none is needed); a second one ends the node's loop,
        and the run proposes the work with QA's report, flagged. The round is in the state until the fix is
        handed over, so a run stopped in it resumes here (`_resume_fix`)."""
        self.state.fixing = {"node": node.name, "round": number, "item": fix.model_dump(), "digest": before}
        self._handoff(node.role, node.name, fix)
        nudged = False

        def nudge(document: BaseModel) -> str | None:
            nonlocal nudged
            if nudged or self._work_digest() != before:
                return None
            nudged = True
            self._decision("fix_unchanged", node=node.name, round=number, work_item=fix.id, nudged=True)
            return (
                f"Your {fix.id} changed no file: the work is exactly what QA rejected, and QA would judge "
                "it the same way. Make the change QA asks for, then call submit_result again. If you are "
                "sure the code needs no change, call submit_result again with notes saying why; the run "
                "then stops with QA's report instead of reviewing the same work again."
            )

        result = self._run_role(node, node.fixer, self._brief(node.fixer, fix), fix, nudge)
        assert isinstance(result, WorkResult)
        self._store(result)
        self.state.fixing = None
        if self._work_digest() != before:
            self._checkpoint("running", None)
            return True
        self.state.review_end = (
            f": the fixer made no change in round {number} of node {node.name} (told once that its fix "
            "changed nothing), so QA was not asked to judge the same work again"
        )
        self._decision(
            "give_up",
            node=node.name,
            rounds=number,
            reason="fixer_unchanged",
            message=f"QA rejected; the fixer made no change in round {number}"
            + (f" ({result.notes})" if result.notes else ""),
        )
        self._emit(
            "warning",
            f"the fixer made no change in round {number} of node {node.name}; QA is not asked again",
            node=node.name,
        )
        self._checkpoint("running", None)
        return False

    def _work_digest(self) -> str:
        """The overlay's changes (paths, kinds and texts) as one digest: equal when no file changed."""
        changes = [(c.path, c.kind, c.old_path, c.new_text) for c in self.overlay.changes()]
        return hashlib.sha256(json.dumps(changes, ensure_ascii=False).encode()).hexdigest()

    # -- one role --------------------------------------------------------------------------------------

    def _run_role(
        self,
        node: Node,
        role_name: str,
        brief: str,
        item: WorkItem | None = None,
        check: Callable[[BaseModel], str | None] | None = None,
    ) -> BaseModel:
        """Run one agent of the role to its handoff; `check` refuses a submission with a message for the
        role, as `against_spec` does (asked only when that agrees)."""
        assert self.task is not None
        role = ROLES[role_name]
        assert role.handoff is not None
        spec = Spec.model_validate(self.state.spec) if self.state.spec else None

        def agrees(document: BaseModel) -> str | None:
            return against_spec(document, spec, item) or (check(document) if check is not None else None)

        submit = SubmitTool(role.handoff, check=agrees)
        settings = self._node_settings(node)
        before = self._changed_texts()
        self._emit(
            "role", f"{role.name} started ({node.name})", role=role.name, node=node.name, state="started"
        )
        if self.transcript is not None:
            self.transcript.rewound(0)  # each role's first request records its whole conversation
        agent = RoleAgent(
            self.models(role.name) if self.models is not None else self.model,
            settings,
            root=self.root,
            overlay=self.overlay,
            sandbox=self.sandbox,
            index=self.index,
            index_settings=self.index_settings,
            ask=self.ask,
            on_event=self._forward,
            cancel=self.cancel,
            transcript=self.transcript,
            scratch_dir=self.scratch_dir,
            role=role,
            submit=submit,
            node=node.name,
            models=self.models,
            todos=self.todos,
            interpreter=self.interpreter,
            toolchains=self.toolchains,
            mcp_answers=self.mcp_answers,
            checkpoint=lambda role_agent: self._checkpoint("running", None, role_agent),
            limits=self._limits(node),
        )
        self.interpreter = agent.verifier.interpreter
        self.toolchains = agent.verifier.toolchains  # the role asks them first thing (its prompt names them)
        result = agent.run(replace(self.task, kind="run", instruction=brief, edits_allowed=True))
        self.ledger.merge(CostLedger(result.roles))
        self.state.roles = self.ledger.records()
        self.state.todos = self.todos.snapshot()
        self.state.steps += result.steps
        self.verifications.extend(result.verifications)
        if result.status == "cancelled" or self.cancel.is_set():
            raise RunCancelled("cancelled")
        document = submit.accepted
        if document is None:
            self._emit(
                "role", f"{role.name} failed ({node.name})", role=role.name, node=node.name, state="failed"
            )
            why = result.error or result.summary or "it stopped"
            raise _NodeFailed(
                f"the {role.name} (node {node.name}) ended without a {role.handoff}: {why}",
                "budget_exhausted" if result.status == "budget_exhausted" else "failed",
            )
        self._emit(
            "role", f"{role.name} finished ({node.name})", role=role.name, node=node.name, state="finished"
        )
        if isinstance(document, WorkResult):
            document = self._files_changed(document, before, node)
        self._handoff(role.name, node.name, document)
        return document

    def _changed_texts(self) -> dict[str, tuple[str, str | None, str | None]]:
        """The overlay's changes by path: kind, old path (a rename's) and text."""
        return {c.path: (c.kind, c.old_path, c.new_text) for c in self.overlay.changes()}

    def _files_changed(
        self, result: WorkResult, before: Mapping[str, tuple[str, str | None, str | None]], node: Node
    ) -> WorkResult:
        """`result` naming the files its coder really changed (`before` is the overlay as the coder found
        it): a coder lists them itself, and often leaves some out, or all ("Result of FIX1: no files" for a
        fix that edited a file). The handoff, the transcript and the editors show the overlay's account; a
        "files_changed" decision keeps what the coder reported."""
        after = self._changed_texts()
        actual = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
        if sorted(set(result.files_changed)) == actual:
            return result
        self._decision(
            "files_changed",
            node=node.name,
            work_item=result.work_item,
            reported=list(result.files_changed),
            actual=actual,
        )
        return result.model_copy(update={"files_changed": actual})

    def _node_settings(self, node: Node) -> AgentSettings:
        s = self.settings
        steps_left = s.team.max_steps - self.state.steps
        if steps_left <= 0:
            raise _NodeFailed(
                f"The team run reached agent.team.max_steps = {s.team.max_steps} before node {node.name}. "
                "Raise it in the agentls settings or give the team a smaller task.",
                "budget_exhausted",
            )
        cost = None if s.max_cost_usd is None else max(0.0, s.max_cost_usd - self.cost)
        if node.max_cost_usd is not None:
            spent = sum(entry.cost for entry in self.ledger.entries if entry.node == node.name)
            node_left = max(0.0, node.max_cost_usd - spent)
            cost = node_left if cost is None else min(cost, node_left)
        seconds = [
            left
            for left in (
                self.seconds_left(),
                Budget(max_minutes=node.max_minutes).seconds_left(self._node_spent(node.name)),
            )
            if left is not None
        ]

        def left(limit: int | None, used: int) -> int | None:
            return None if limit is None else max(0, limit - used)

        return s.model_copy(
            update={
                "max_steps": min(node.max_steps or s.max_steps, steps_left),
                "max_cost_usd": cost,
                "max_total_tokens": left(s.max_total_tokens, self.usage.total_tokens),
                "max_input_tokens": left(s.max_input_tokens, self.usage.total_input_tokens),
                "max_minutes": min(seconds) / 60.0 if seconds else None,
                "verify": False,  # QA verifies; the engine checks the final change once
            }
        )

    def _limits(self, node: Node) -> list[Limit]:
        """The run's budget and the node's caps, with what the run (and the node) spent so far."""
        limits = [Limit(self.settings.budget(), self.usage, self.cost, seconds=self.elapsed)]
        caps = [name for name in ("max_cost_usd", "max_minutes") if getattr(node, name) is not None]
        if caps:
            spent = [entry for entry in self.ledger.entries if entry.node == node.name]
            limits.append(
                Limit(
                    Budget(max_cost_usd=node.max_cost_usd, max_minutes=node.max_minutes),
                    sum((entry.usage for entry in spent), Usage()),
                    sum(entry.cost for entry in spent),
                    f"The budget of node {node.name} (its {' and '.join(caps)} in graph {self.graph.name}) "
                    "counts its own calls and time: ",
                    seconds=self._node_spent(node.name),
                )
            )
        return limits

    def _brief(self, role: str, item: WorkItem | None = None) -> str:
        """The role's task: the user's request, then the handoffs it works from."""
        assert self.task is not None
        request = self.task.instruction.strip() or self.task.title
        parts = [f"## The user's request\n{request}"]
        if self.state.spec is not None and role != "planner":
            parts.append(f"## Spec (from the planner)\n{_json(self.state.spec)}")
        if self.state.design is not None and role in ("coder", "qa"):
            parts.append(
                f"## Design (from the architect)\n{markdown(Design.model_validate(self.state.design))}"
            )
        if item is not None:
            parts.append(
                f"## Your work item\n{_json(item)}\nSubmit your result with work_item = {item.id!r}."
            )
        if role == "qa":
            results = "\n".join(f"- {r['work_item']}: {r.get('notes', '')}" for r in self.state.results)
            diff = self.overlay.proposal_diff()
            if len(diff) > _DIFF_CHARS:
                diff = diff[:_DIFF_CHARS] + "\n[... the diff is cut; view the files ...]"
            parts.append(f"## What the coders report\n{results or '(nothing)'}")
            parts.append(f"## The change so far\n```diff\n{diff}\n```")
        return "\n\n".join(parts)

    def _confirm(self) -> None:
        """Ask the user to confirm a new spec (when configured and someone can answer). A run stopped at the
        question (Ctrl-C) keeps the spec pending, so its resume asks again instead of planning again."""
        if self.state.spec is None or not self.state.spec_pending:
            return
        if not self.settings.team.confirm_spec or self.ask is None:
            self.state.spec_pending = False
            return
        spec = Spec.model_validate(self.state.spec)
        ask = self.ask
        if self.settings.max_minutes is not None:  # waiting for the user counts: not past the bound
            ask = bounded_ask(ask, self._deadline)
        try:
            answer = ask(f"Start coding from this spec?\n\n{markdown(spec)}", ["Start", "Stop"])
        except QuestionWithdrawn as withdrawn:  # the spec stays pending: the resumed run asks again
            self._decision("question_withdrawn", question="spec", reason=str(withdrawn))
            if self.cancel.is_set():
                raise RunCancelled("cancelled") from withdrawn
            self._check_time()
            raise _NodeFailed(f"The spec was not confirmed: {withdrawn}.", "budget_exhausted") from withdrawn
        except NoAnswer as nobody:
            if self.cancel.is_set():  # cancelled while asking: the resumed run asks again
                raise RunCancelled("cancelled") from nobody
            self.state.spec_pending = False
            self._decision("spec_unconfirmed", reason=str(nobody))
            return
        if answer.strip().lower() not in _YES:
            self._decision("spec_declined", answer=answer)
            raise _SpecDeclined(f"answer: {answer.strip() or 'none'}")
        self.state.spec_pending = False
        self._decision("spec_confirmed")

    # -- the end ---------------------------------------------------------------------------------------

    def _propose(self) -> tuple[RunStatus, str, Proposal | None]:
        spec = Spec.model_validate(self.state.spec) if self.state.spec else None
        review = Review.model_validate(self.state.reviews[-1]) if self.state.reviews else None
        changes = self.overlay.changes()
        title = spec.title if spec else (self.task.title if self.task else "the task")
        rejected = review is not None and not review.passed
        if not changes:
            if rejected:
                assert review is not None
                why = f"nothing was changed, and QA still rejects the work{self._review_end()}"
                return "no_changes", f"{title}: {why}.\n\n{markdown(review)}", None
            return "no_changes", f"{title}: no change was needed.", None
        verification = self._verify(changes)
        parts = [f"{title} (team run, graph {self.graph.name})."]
        if rejected:
            parts.insert(
                0,
                f"WARNING: QA still rejects this change{self._review_end()}; review the failures before "
                "applying it.",
            )
        if review is not None:
            parts.append(markdown(review))
        notes = [f"- {r['work_item']}: {r['notes']}" for r in self.state.results if r.get("notes")]
        if notes:
            parts.append("Coders' notes:\n" + "\n".join(notes))
        if verification is None:
            verification_summary = "Not verified: verification is off (agent.verify = false)."
        else:
            verification_summary = verification.summary()
        if review is not None and not review.passed:  # the checks may pass; QA's tests of the spec did not
            failing = [c.id for c in review.criteria if c.verdict == "fail"]
            what = f"{', '.join(failing)} failing" if failing else f"{len(review.issues)} issue(s) open"
            verification_summary = f"Not verified: QA rejects the change ({what}).\n{verification_summary}"
        summary = "\n\n".join(parts)
        verified = verification is not None and verification.passed and (review is None or review.passed)
        return "proposed", summary, self._proposal(summary, changes, verified, verification_summary)

    def _review_end(self) -> str:
        """Why the last review loop ended with QA rejecting, as the end of a sentence."""
        if self.state.review_end is not None:
            return self.state.review_end
        return _after_rounds(self.state.rounds)  # a checkpoint from before review_end

    def _proposal(
        self, summary: str, changes: list[Any], verified: bool, checked: str, complete: bool = True
    ) -> Proposal:
        """The run's one proposal (recorded), carrying the handoffs behind it."""
        reviews = self.state.reviews
        review = reviews[-1] if reviews else None
        proposal = Proposal(
            proposal_id=new_proposal_id(),
            run_id=self.run_id,
            summary=summary,
            files=tuple(changes),
            diff=self.overlay.proposal_diff(),
            usage=self.usage,
            cost=self.cost,
            verified=verified,
            verification_summary=checked,
            complete=complete,
            roles=tuple(self.ledger.entries),
            team={"spec": self.state.spec, "design": self.state.design, "review": review},
        )
        self.recorder.proposal(proposal)
        return proposal

    def _verify(self, changes: list[Any]) -> VerificationResult | None:
        if not self.settings.verify:
            return None
        self._emit("stage", "verifying", stage="verify")
        verifier = Verifier(
            self.overlay,
            self.sandbox,
            self.settings,
            index=self.index,
            cancel=self.cancel,
            scratch_dir=self.scratch_dir,
            interpreter=self.interpreter,
            toolchains=self.toolchains,
            index_settings=self.index_settings,
        )
        result = verifier.verify(changes, trigger="finish")
        self.verifications.append(result)
        self.recorder.verification(step=self.state.steps, result=result)
        self._emit("verification", f"verification {result.verdict()}", verification=result)
        return result

    def _keep_work(self, message: str) -> tuple[str, Proposal | None]:
        node = self.graph.nodes[min(self.state.next_node, len(self.graph.nodes) - 1)].name
        resume = f"`agentls runs resume {self.run_id}` continues the run at node {node}."
        try:
            changes = self.overlay.changes()
        except Exception:
            log.exception("team run %s: the overlay's changes cannot be read", self.run_id)
            changes = []
        if not changes:
            return f"The run stopped: {message} {resume}", None
        summary = (
            f"UNFINISHED: {message} The proposal holds the work so far; it was not verified and may be "
            f"incomplete. {resume}"
        )
        unfinished = "Not verified: the run stopped before it finished."
        return summary, self._proposal(summary, changes, False, unfinished, complete=False)

    # -- records and events ----------------------------------------------------------------------------

    def _checkpoint(self, status: str, error: str | None, role: Agent | None = None) -> None:
        """Save the run's state and its checkpoint; `role`: the agent at work, whose edits, steps and
        spending so far are saved with them (the node it is in runs again on resume)."""
        if self.runs_dir is None or self.task is None:
            return
        state, ledger = self.state, self.ledger
        node_seconds = dict(self.node_seconds)
        if self._node_began is not None:
            node_seconds[self._node_began[0]] = self._node_spent(self._node_began[0])
        state = state.model_copy(update={"node_seconds": node_seconds})
        if role is not None:
            ledger = CostLedger(self.ledger.entries)
            ledger.merge(role.ledger)
            state = state.model_copy(
                update={
                    "roles": ledger.records(),
                    "steps": state.steps + role.steps,
                    "todos": self.todos.snapshot(),
                }
            )
        try:
            files, renames, bases = overlay_files(self.overlay.changes())
            save_state(
                self.runs_dir,
                RunState(
                    run_id=self.run_id,
                    root=str(self.root),
                    task=self.task,
                    status=status,
                    bases=bases,
                    messages=[],
                    steps=state.steps,
                    reflections=state.rounds,
                    usage=ledger.usage,
                    files=files,
                    renames=renames,
                    error=error,
                    resumed_from=self.resumed_from,
                    seconds=self.elapsed,
                ),
            )
            save_checkpoint(self.runs_dir, self.run_id, state)
        except Exception:
            log.exception("team run %s: its checkpoint could not be saved", self.run_id)

    def _handoff(self, role: str, node: str, document: BaseModel) -> None:
        name = type(document).__name__
        data = document.model_dump()
        text = markdown(document)
        if self.transcript is not None:
            self.transcript.write("handoff", role=role, node=node, handoff=name, document=data)
        self._emit("handoff", text, role=role, node=node, handoff=name, document=data, markdown=text)

    def _decision(self, kind: str, **fields: Any) -> None:
        self.recorder.decision(kind, step=self.state.steps, **fields)

    def _forward(self, event: AgentEvent) -> None:
        """A role's event, counted in the run's steps, tokens and cost (a role's end is not the run's; a
        warning an earlier role gave is not said again)."""
        if event.kind == "stop" or self.on_event is None or self._said_before(event):
            return
        self.on_event(
            replace(
                event,
                step=self.state.steps + event.step,
                usage=self.usage + event.usage,
                cost=self.cost + event.cost,
            )
        )

    def _said_before(self, event: AgentEvent) -> bool:
        """Whether `event` is a warning this run passed on already (noted as passed on when not)."""
        if event.kind != "warning":
            return False
        key = (str(event.data.get("subject") or ""), event.message)
        if key in self.warned:
            return True
        self.warned.add(key)
        return False

    def _emit(self, kind: EventKind, message: str, **data: Any) -> None:
        if self.on_event is None:
            return
        event = AgentEvent(
            kind=kind,
            message=message,
            step=self.state.steps,
            usage=self.usage,
            cost=self.cost,
            data=MappingProxyType(dict(data)),
        )
        if self._said_before(event):
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("the on_event callback failed on %s", kind)


def _after_rounds(rounds: int) -> str:
    """How a review loop that ran out of rounds ended, as the end of a sentence."""
    return f" after {rounds} round{'' if rounds == 1 else 's'} of fixes"

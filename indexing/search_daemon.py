"""A warm search process per workspace index, so that ``agentls search`` answers in a fraction of a second.

Importing LanceDB takes about 3 seconds of CPU (most of it pydantic building validators for the LanceDB
namespace REST client at import time), and loading an embedding model more: a search from the command
line used to pay both on every query, for a search that takes 20-60 ms once they are loaded. The first
``agentls search`` of a workspace searches in its own process, as before, and then starts this process
in the background (so does ``agentls index`` after its run); later searches send their query to it over a
unix socket and print its answer. The client side (`query`, `index_run`, `spawn`, `running`,
`wait_listening`, `fingerprint`) imports nothing heavy: the CLI reaches the socket without loading
LanceDB, pyarrow or numpy, and its quick path (`server.cli.quick`) without the settings tree either.

- Its log (``search.log`` in the index folder) masks the credentials of every URL it names (httpx logs
  each request's URL, a password in ``index.embedding.base_url`` included).
- The socket lives in the index folder (0700, so only the user can connect), or, when that path is too
  long for a unix socket, in a private folder under the temporary directory.
- One process per index: a second one started meanwhile sees the first one's lock and exits.
- Its index settings come through a pipe on its stdin, not its command line: every user of the machine can
  read a process's command line (``ps``, ``/proc/PID/cmdline``), and the settings may carry credentials
  (a password or an ``api_key`` query in ``index.embedding.base_url`` or ``index.rerank.url``).
- It answers the index as it is on disk: before each query it checks whether a table has a new version
  (its ``_versions`` folder changed) and, if so, moves its readers to the newest versions.
- It exits after ``idle`` seconds without a query, when its index folder disappears, and after any error
  while searching (the client then searches in its own process, and the next search starts a fresh one).
- A query carries the client's `fingerprint` (index settings, cache folder, agentls' indexing code);
  a process started with other settings or older code answers "stale" and exits.
- ``agentls index`` runs in it too when it is there (`index_run`): an edited file is re-indexed without
  importing LanceDB again, with progress sent to the client as it comes. When none is running, the
  command line starts one (``--warm-up-after``: it listens at once and warms up after that first run),
  compares the workspace with the index's file state meanwhile, and sends that scan with the request
  (`indexing.state.Scan`), so the process indexes what changed without walking the tree again.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexing.models import IndexReport, SearchHit
from indexing.paths import models_stamp

if TYPE_CHECKING:
    from indexing.service import WorkspaceIndex
    from indexing.state import Scan

log = logging.getLogger(__name__)

__all__ = [
    "fingerprint",
    "index_run",
    "query",
    "running",
    "serve",
    "socket_path",
    "spawn",
    "wait_listening",
]

SOCKET_NAME = "search.sock"
_LOCK_NAME = "search.lock"
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_TICK_SECONDS = 1.0  # how often an idle process checks its lifetime and its index folder
_MAX_REQUEST = 1 << 20


def socket_path(location: Path) -> Path:
    """Where the search process of the index at ``location`` listens."""
    path = location / SOCKET_NAME
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha1(os.fsencode(location.resolve())).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"agentls-{os.getuid()}" / f"{digest}.sock"


def fingerprint(settings_json: str, cache_dir: Path) -> str:
    """What a search process must have been started with to answer a client: the index settings, the
    cache folder (models, secret key), the models installed in it (a model pulled or distilled since
    the process loaded its embedder retires it: the next index adds vectors, the next search uses them)
    and the indexing code itself (size and mtime of its modules, so an upgrade or an edit of agentls
    retires running processes)."""
    digest = hashlib.sha256(settings_json.encode())
    digest.update(os.fsencode(cache_dir))
    digest.update(f"models:{models_stamp(cache_dir)};".encode())
    package = Path(__file__).parent
    for module in sorted(package.glob("*.py")):
        with contextlib.suppress(OSError):
            stat = module.stat()
            digest.update(f"{module.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:32]


def query(
    location: Path,
    print_: str,
    text: str,
    *,
    limit: int,
    path: str | None,
    files: bool = False,
    timeout: float = 10.0,
    details: dict[str, Any] | None = None,
) -> list[SearchHit] | None:
    """Ask the search process of the index at ``location``; None when there is none that can answer (not
    running, started with other settings, or failing): the caller then searches in its own process.

    ``details`` receives the rest of the answer: ``model_present``, whether an embedding model for the
    index's settings is on the machine (`indexing.model_store.model_present`), which the CLI's note on
    lexical search needs and could not tell without importing numpy and httpx (half a second); and
    ``notes``, when the search has some (its query could not be embedded, say: it was searched lexically).
    """
    target = socket_path(location)
    if not target.exists():
        return None
    request = {"fingerprint": print_, "query": text, "limit": limit, "path": path, "files": files}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(target))
            conn.sendall(json.dumps(request).encode() + b"\n")
            answer = json.loads(_read_line(conn))
    except (OSError, ValueError) as exc:  # no process, a dead one's socket, a timeout, a garbled answer
        log.debug("search process at %s did not answer: %s", target, exc)
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("hits"), list):
        log.debug("search process at %s answered %r", target, answer)
        return None
    if details is not None:
        details.update((key, value) for key, value in answer.items() if key != "hits")
    return [SearchHit(**{**hit, "sources": tuple(hit.get("sources", ()))}) for hit in answer["hits"]]


def spawn(
    root: Path,
    settings_json: str,
    cache_dir: Path,
    location: Path,
    env: Mapping[str, str],
    *,
    idle: float,
    warm_up_after: float = 0.0,
) -> subprocess.Popen[bytes] | None:
    """Start the search process of this workspace in the background (its own session, no terminal), unless
    one holds the index's search lock already. Its log goes to ``search.log`` in the index folder.
    ``warm_up_after``: the caller will send a request as soon as it listens (see `serve`).
    ``settings_json`` goes to it on its stdin (see the module docstring), never on its command line."""
    if idle <= 0 or running(location):
        return None
    # -P: ``-m`` would put the current folder (the workspace, as a rule) first on sys.path, and a
    # workspace with an ``indexing`` package of its own (agentls' own repository) would run that instead.
    command = [
        sys.executable,
        "-P",
        "-m",
        "indexing.search_daemon",
        "--root",
        str(root),
        "--cache-dir",
        str(cache_dir),
        "--idle",
        str(idle),
        "--warm-up-after",
        str(warm_up_after),
    ]
    # The child must import this package as the parent did (a source checkout on sys.path, not installed).
    child_env = dict(env)
    package_parent = str(Path(__file__).resolve().parent.parent)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    try:
        with open(location / "search.log", "ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                env=child_env,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        log.info("could not start the search process: %s", exc)
        return None
    _send_settings(process, settings_json)
    return process


def _send_settings(process: subprocess.Popen[bytes], settings_json: str) -> None:
    """Write the settings to the process's stdin and close it (its end of file ends them: `main`)."""
    assert process.stdin is not None
    try:
        with process.stdin:
            process.stdin.write(settings_json.encode())
    except OSError as exc:  # it ended at once (its log says why); the next command starts another
        log.info("could not hand the search process its settings: %s", exc)


def running(location: Path) -> bool:
    """Whether a search process of the index at ``location`` is running (listening, or starting)."""
    return _locked(location / _LOCK_NAME)


def wait_listening(location: Path, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Wait until the search process of the index at ``location`` listens: True then; False after
    ``timeout`` seconds, or when neither ``process`` (the one the caller started, if any) nor a process
    holding the search lock is there any more. A process started while another one held the lock (two
    commands at once) exits at once, and the other one listens."""
    target = socket_path(location)
    deadline = time.monotonic() + timeout
    while not target.exists():
        if process is not None and process.poll() is not None:
            process = None
        if (process is None and not running(location)) or time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _locked(lock_file: Path) -> bool:
    """Whether a running search process holds this lock."""
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _private_folder(folder: Path) -> bool:
    """Create ``folder`` (0700) if needed; whether it is this user's and nobody else's."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    stat = folder.lstat()
    mine = stat.st_uid == os.getuid() and not stat.st_mode & 0o077
    return mine and folder.is_dir() and not folder.is_symlink()


def _read_line(conn: socket.socket) -> bytes:
    parts: list[bytes] = []
    size = 0
    while not parts or not parts[-1].endswith(b"\n"):
        part = conn.recv(1 << 20)
        if not part:
            break
        parts.append(part)
        size += len(part)
        if size > 64 * _MAX_REQUEST:
            raise ValueError("answer too long")
    return b"".join(parts)


# ------------------------------------------------------------------------------------------ the process
def _versions_stamp(index: WorkspaceIndex) -> tuple[int, ...]:
    """Changes whenever a table of the index commits a new version (a manifest lands in ``_versions``)."""
    lance = index.location / "lance"
    stamp: list[int] = []
    with contextlib.suppress(OSError):
        for table in sorted(lance.iterdir()):
            with contextlib.suppress(OSError):
                stamp.append((table / "_versions").stat().st_mtime_ns)
    return tuple(stamp)


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[bool]:
    """Hold the index's search lock; yields False (and holds nothing) when another process has it."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            yield False
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield True
    finally:
        os.close(fd)


def serve(index: WorkspaceIndex, print_: str, *, idle: float, warm_up_after: float = 0.0) -> None:
    """Answer queries for ``index`` until ``idle`` seconds pass without one (see the module docstring).

    It warms up (loads the embedding model, opens the search indexes: a search on the kernel's index
    takes 0.13 s more the first time) before it listens; with ``warm_up_after`` > 0 it listens first and
    warms up after the first request, or after that many seconds without one: the command line that
    started it to run an index (`server.cli.quick`) is about to connect, and waits for no warm-up."""
    location = index.location
    with _exclusive(location / _LOCK_NAME) as mine:
        if not mine:
            log.info("another search process serves %s", location)
            return
        if not index.is_indexed():
            log.info("%s is not indexed; nothing to serve", location)
            return
        if warm_up_after <= 0:
            _warm_up(index)
        target = socket_path(location)
        if not _private_folder(target.parent):
            log.warning("%s is not a private folder of this user; not serving searches", target.parent)
            return
        target.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            # Bound under another name (no longer than the socket's) and moved into place once listening:
            # a client that sees the socket can connect (`wait_listening`).
            staging = target.with_name(f".{os.getpid():x}")
            staging.unlink(missing_ok=True)
            listener.bind(str(staging))
            os.chmod(staging, 0o600)
            listener.listen(8)
            os.replace(staging, target)
            log.info("listening on %s", target)
            listener.settimeout(_TICK_SECONDS)
            bound = os.stat(target).st_ino
            try:
                _accept_loop(index, listener, print_, idle, warm_up_after)
            finally:
                with contextlib.suppress(OSError):
                    if os.stat(target).st_ino == bound:  # not a successor's socket
                        target.unlink()


def _warm_up(index: WorkspaceIndex) -> None:
    index.search("warm up", limit=1)  # loads the model, opens the indexes: the first query is fast


def _accept_loop(
    index: WorkspaceIndex, listener: socket.socket, print_: str, idle: float, warm_up_after: float = 0.0
) -> None:
    stamp = _versions_stamp(index)
    last = time.monotonic()
    warm_up_at = last + warm_up_after if warm_up_after > 0 else None  # None: warm already
    while time.monotonic() - last < idle:
        if not (index.location / "meta.json").exists():
            log.info("the index at %s is gone; exiting", index.location)
            return
        if warm_up_at is not None and time.monotonic() >= warm_up_at:
            _warm_up(index)
            warm_up_at = None
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        last = time.monotonic()
        if warm_up_at is not None:
            warm_up_at = last  # after this first request
        with conn:
            conn.settimeout(10.0)
            try:
                request = json.loads(_read_line(conn))
            except (OSError, ValueError):
                continue
            if not isinstance(request, dict) or request.get("fingerprint") != print_:
                _answer(conn, {"stale": True})
                log.info("a client with other settings or code asked; exiting")
                return
            if request.get("op") == "index":
                _answer(conn, _index_run(index, conn, request.get("scan")))
                last = time.monotonic()
                continue
            now = _versions_stamp(index)
            if now != stamp:
                index.store.refresh()
                stamp = now
            notes: list[str] = []
            try:
                hits = index.search(
                    str(request.get("query", "")),
                    limit=int(request.get("limit", 10)),
                    path=request.get("path") or None,
                    files=request.get("files") is True,
                    notes=notes,
                )
            except Exception as exc:  # the client searches itself; a fresh process opens the index anew
                log.exception("search failed")
                _answer(conn, {"error": f"{type(exc).__name__}: {exc}"})
                return
            answer = {"hits": [asdict(hit) for hit in hits], "model_present": _model_present(index)}
            _answer(conn, {**answer, "notes": notes} if notes else answer)


def _model_present(index: WorkspaceIndex) -> bool:
    """Whether an embedding model for the index's settings is on the machine (folders only; asked per
    query, since `agentls model pull` may have brought one since this process started)."""
    from indexing.model_store import model_present

    return model_present(index.settings.embedding, index.cache_dir, index.env)


def _index_run(index: WorkspaceIndex, conn: socket.socket, scan_json: object = None) -> dict[str, Any]:
    """An ``agentls index`` run in this process (LanceDB loaded, tables open): progress goes to the client
    as it comes (at most twice a second); a client that went away (Ctrl-C) cancels the run. ``scan_json``:
    the client's `indexing.state.Scan` of the workspace (`Scan.to_json`), used instead of walking it."""
    from indexing.lock import IndexLocked
    from indexing.service import IndexCancelled
    from indexing.state import Scan
    from indexing.walker import WorkspaceError

    try:
        scan = None if scan_json is None else Scan.from_json(scan_json)
    except ValueError as exc:
        return {"error": str(exc)}
    log.info(
        "index run: %s", "walking the workspace" if scan is None else f"{len(scan.changed)} changed files"
    )

    cancel = threading.Event()
    sent = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - sent[0] < 0.5 and done != total:
            return
        sent[0] = now
        try:
            conn.sendall(json.dumps({"progress": [phase, done, total]}).encode() + b"\n")
        except OSError:
            cancel.set()

    try:
        report = index.index(progress=progress, cancel=cancel, scan=scan)
        log.info("index run: %d files indexed, %d removed", report.files_indexed, report.files_removed)
    except IndexLocked as exc:
        return {"locked": str(exc)}
    except (IndexCancelled, WorkspaceError) as exc:
        return {"error": str(exc)}
    except Exception as exc:  # logged; the client runs the index itself
        log.exception("index run failed")
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"report": asdict(report)}


def index_run(
    location: Path,
    print_: str,
    progress: Callable[[str, int, int], None],
    scan: Scan | None = None,
    sent: Callable[[], None] | None = None,
) -> IndexReport | None:
    """Run ``agentls index`` in the warm search process of the index at ``location``, if one can answer;
    None when there is none, or it could not run (another writer holds the index, an error): the caller
    then runs the index itself. ``scan``: the workspace compared with the index's file state just now
    (`indexing.state.scan`), so the process runs the index without walking the tree again. ``sent()`` is
    called once the request is sent: the caller's own work can go on while the process runs the index."""
    target = socket_path(location)
    if not target.exists():
        return None
    head = json.dumps({"fingerprint": print_, "op": "index"})[:-1]
    request = f'{head}, "scan": {"null" if scan is None else scan.encoded()}}}\n'.encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10.0)
            conn.connect(str(target))
            conn.sendall(request)
            if sent is not None:
                sent()
            conn.settimeout(None)  # a run takes as long as it takes; progress lines come meanwhile
            with conn.makefile("rb") as lines:
                for line in lines:
                    answer = json.loads(line)
                    if "progress" in answer:
                        progress(*answer["progress"])
                        continue
                    if "report" in answer:
                        return IndexReport(**answer["report"])
                    log.debug("search process at %s answered %r", target, answer)
                    return None
    except (OSError, ValueError, TypeError) as exc:
        log.debug("search process at %s did not run the index: %s", target, exc)
    return None


def _answer(conn: socket.socket, payload: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(payload).encode() + b"\n")


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    """``python -m indexing.search_daemon``: what `spawn` runs. The index settings (JSON) are read from
    stdin, to its end, before anything else."""
    parser = argparse.ArgumentParser(prog="python -m indexing.search_daemon")
    parser.add_argument("--root", required=True)
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--idle", type=float, default=600.0)
    parser.add_argument("--warm-up-after", type=float, default=0.0)
    args = parser.parse_args(argv)
    settings_json = sys.stdin.buffer.read().decode()
    from indexing.credentials import UrlMaskingFormatter

    handler = logging.StreamHandler()  # stderr: search.log, in the cache; no URL's credentials in it
    handler.setFormatter(UrlMaskingFormatter("%(asctime)s agentls search %(process)d: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    signal.signal(signal.SIGTERM, _exit_on_signal)  # through `serve`'s cleanup: the socket goes too
    os.environ.setdefault("RUST_LOG", "error")
    from indexing.config import IndexSettings
    from indexing.service import WorkspaceIndex

    settings = IndexSettings.model_validate_json(settings_json)
    cache_dir = Path(args.cache_dir)
    index = WorkspaceIndex(Path(args.root), settings, cache_dir=cache_dir, env=dict(os.environ))
    serve(index, fingerprint(settings_json, cache_dir), idle=args.idle, warm_up_after=args.warm_up_after)


if __name__ == "__main__":
    main()

"""Running commands for the agent under bubblewrap, with limits, and getting their output back.

`Sandbox.run` starts one command in a fresh sandbox:

```
bwrap --info-fd N --block-fd N                                         # see _SandboxInit
      --die-with-parent --new-session --unshare-net --unshare-pid --unshare-ipc --cap-drop ALL
      --ro-bind /usr /usr --symlink usr/bin /bin ... --ro-bind /etc /etc --ro-bind /opt /opt
      --dev /dev --size N --tmpfs /dev/shm --proc /proc --size N --tmpfs /tmp --dir /tmp/home
      --size N --tmpfs /var/tmp
      --ro-bind PYTHON PYTHON [--ro-bind VENV_BASE VENV_BASE ~/.cargo ...]   # toolchains, read-only
      --ro-bind /dev/null /etc/shadow ...                                   # host secrets hidden
      --bind WORKDIR MOUNT_AT [--ro-bind SRC DST ...] --remount-ro / --remount-ro /dev
      --chdir MOUNT_AT -- COMMAND
```

- Only what a toolchain needs is there, read-only: the system folders (`/usr`, `/bin`, `/sbin`, `/lib*`,
  `/etc`, `/opt`), the Python installation running agentls, the installations the bound virtual
  environments point to (``home`` in their ``pyvenv.cfg``, even under /tmp), the per-user toolchain
  folders of the project's kind (``~/.cargo`` and ``~/.rustup`` for Cargo, ``~/go`` for Go modules,
  ``~/.m2``, ``~/.gradle``) and `SandboxSettings.extra_ro_paths`. Everything else of the host is absent:
  the home (HOME is a private folder under /tmp), other projects, agentls' own cache, index and
  transcripts, and in /etc the password hashes, sudo rules, SSH host keys and TLS private keys.
- `WORKDIR` (the materialized overlay, shown at `MOUNT_AT`, usually the real workspace path so absolute
  paths and editable installs resolve to the copy) and the private `/tmp`, `/var/tmp` and `/dev/shm` are
  the only writable places (the sandbox's root and `/dev`, tmpfs owned by the command's user, are
  remounted read-only last). The real workspace is shadowed, so nothing inside can write to it.
- What commands write is held in RAM (tmpfs, and `WORKDIR` in /dev/shm by default), so it is bounded:
  each tmpfs holds `SandboxSettings.tmp_mb` (bwrap's ``--size``; a bwrap without it, before 0.7 or
  setuid, is logged once and leaves them unbounded), a `tmp_dir` given by the caller as much, and `WORKDIR`
  may grow by `workspace_mb` over its size at its first command. A tmpfs past its size refuses writes
  ("No space left on device"); a host folder past its bound, watched as the command runs
  (`_SpaceGuard`), stops the command. A host folder an extension makes writable (`BoundedFolder`: the
  run's package folder of `agent.installs`, ``agent.install.max_mb``) is watched the same way. Either
  way the result names the place, the limit and the setting (`CommandResult.space_limit`, the last line
  of stderr) and the command fails. The count of files is bounded too (`max_files`: an empty file takes
  no space but an inode, about 1 KiB of RAM in tmpfs, and bwrap 0.8 cannot pass a tmpfs's ``nr_inodes``):
  each tmpfs's count is read from the descriptor the guard holds (``fstatvfs``), a host folder's is
  counted once its filesystem has lost that many free inodes during the command; past it the command is
  stopped. The package folder's count has its own setting, ``agent.install.max_files``
  (`BoundedFolder.max_files`), counted the same way.
- A read-only bound `node_modules` is a fresh tmpfs holding each of its entries read-only, with its
  caches (`.vite`, `.vitest`, `.cache`) empty and writable: Vitest writes its results cache into
  `node_modules/.vite` on every run and fails the run when it cannot.
- `--cap-drop ALL` matters when agentls runs as root: without it a root process inside can remount `/`
  read-write (checked on bubblewrap 0.8).
- No network (`--unshare-net` leaves only a loopback of its own), no view of other processes.
  `SandboxSettings.network` ``"registries"`` adds one way out, the allowlisting proxy of
  `agent.netsandbox` (its unix socket bound in, a forwarder wrapped around the command); ``"on"`` shares
  the host's network. `Sandbox.extensions` (`agent.netsandbox.SandboxExtension`) add mounts, variables
  and a command wrapper to every sandboxed command (the per-run package layer of `agent.installs`).
- Limits through `setrlimit` in the child before `exec`: CPU seconds, memory, file size, and
  processes. Memory is `RLIMIT_DATA` (the private writable memory a process maps: its heap, anonymous
  mappings, thread stacks), not `RLIMIT_AS`: the JVM and V8 reserve gigabytes of address space they never
  touch (Java's compressed class space, WebAssembly memories, which Node's own `fetch` uses), and an
  address-space limit stops them before they start. Shared mappings and files in tmpfs are not counted.
  The kernel does not apply `RLIMIT_NPROC` to root, and it counts all of the user's processes, so the
  limit is set to the user's current count plus `max_processes`.
- Wall-clock timeout, cancellation and a stop for space kill the command with SIGKILL (the time a
  command's first request to a registry waits for the user's approval does not count against the
  timeout); so does its own end, so background jobs never outlive it. No process of a sandboxed command
  survives that kill, whenever it comes, and `run` returns only once they are all gone (it waits up to
  `_REAP_SECONDS`, then logs a warning). The kill goes to the process group (bwrap's outer process) and
  to bwrap's first process in the sandbox, pid 1 of its PID namespace, whose death the kernel makes the
  death of every process inside. The group alone is not enough: ``--new-session`` moves that process
  out of the group, and it binds itself to bwrap (``--die-with-parent``) only afterwards, so a group kill
  in that instant left it and the command running for good, reparented to init (bubblewrap issue #633).
  `run` holds it (a pidfd, `_SandboxInit`) before it lets bwrap start the command (``--block-fd``; until
  then all of bwrap is in the group, blocked).
  Unsandboxed (on Linux) the command runs under `agent.subreaper`, a small process of its own that is a
  child subreaper (``PR_SET_CHILD_SUBREAPER``): a process of the command that left the group
  (``setsid``, a daemon that double-forks) is reparented to it, not to init, and so is still its
  descendant. When the command ends, or `run` closes a pipe to it (cancel, timeout, space stop; the
  agent's death closes it too), it kills every descendant it finds in ``/proc``, round after round until
  it has no child left, then exits as the command did; `run` waits for that up to `_REAP_SECONDS`, then
  warns and kills the group. The subreaper is that helper, not the agent's process, so the agent's own
  orphans are unaffected; it runs under the command's limits and takes one of its `max_processes`. It
  costs a Python start per command (about 20 ms of CPU; see its docstring). Not covered: a command that
  kills the subreaper itself first (same user, no isolation) leaves its descendants to init.
- Every command also gets the parent-death signal (``PR_SET_PDEATHSIG``), so none outlives a killed
  agentls, sandboxed or not (unsandboxed, the subreaper gets SIGTERM and ends all of the command, what
  left its group included, as on a cancel). The signal follows the thread that started the command,
  which `run` holds until the command is reaped. Sandboxed, that signal kills bwrap's outer process, and
  bwrap's pid 1 dies with it once it has set its own (``--die-with-parent``, after ``--new-session``).
  Before that (issue #633 again: while bwrap sets up, up to `_ATTACH_SECONDS` while the tmpfs are opened)
  pid 1 would go on, reparented to init, and run the command to its own end. `agent.sandbox_reaper`
  closes that window: one small process per `Sandbox` (started with its first sandboxed command, ended by
  `close` or when the sandbox is collected) that holds, for each command being set up, the writing end of
  its ``--block-fd`` pipe (so a waiting pid 1 gets no end of file from agentls' death) and, once `run`
  knows it, a pidfd of pid 1; when agentls dies it kills them (pid 1, and whatever still holds a held
  pipe), then exits. It learns of that death as the end of its socket, so a child agentls forks without
  exec (a multiprocessing fork worker) closes its copy of the socket right after the fork
  (`_SetupReaper`). It costs a ``sendmsg`` or three per command (about 0.7 ms of CPU with bwrap's 6.5)
  and a Python start per `Sandbox` (about 12 ms of CPU: it imports little). Running bwrap under
  `agent.subreaper` would close the window too, but a Python start per command quadrupled a sandboxed
  ``true``'s CPU (28 ms instead of 7).
- The environment is rebuilt from scratch: PATH, HOME (a private directory under /tmp), LANG, TERM,
  the switches that stop npm and pip from asking a registry for their own updates on every command,
  plus what the caller passes, minus anything that looks like a credential.
- Output: stdout and stderr are captured separately; each keeps its first and last
  `max_output_bytes / 2` bytes with a `[... truncated N bytes ...]` marker between.

Without bwrap, `run` raises `SandboxUnavailable` unless `allow_unsandboxed` is set, in which case (or with
`enabled = false`) commands run directly in `WORKDIR` with the same limits and environment but no
isolation; a warning is logged once. There a program that cannot be started (an argv whose program is
missing) gives exit status 127 and the reason on stderr, as a shell would, not an `OSError`.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import resource
import select
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.netproxy import DEFAULT_REGISTRIES
from agent.sandbox_reaper import proc_stat
from agent.scratch import remove_tree

if TYPE_CHECKING:
    from agent.netsandbox import NetworkGateway, SandboxExtension

__all__ = [
    "BWRAP_MISSING_MESSAGE",
    "WORKSPACE_COPY",
    "BoundedFolder",
    "CommandResult",
    "Sandbox",
    "SandboxSettings",
    "SandboxUnavailable",
    "SpaceLimit",
    "default_scratch_dir",
    "sandbox_path",
]

log = logging.getLogger(__name__)

_FORK_SAFE_FOR_LANCE = "lance is not fork-safe"
# With a preexec_fn, subprocess forks through Python's at-fork hooks, and Lance's (there once an index has
# loaded Lance) warns with this message on each such fork. The sandbox's child touches no Lance dataset:
# past the at-fork hooks it runs the preexec_fn (setrlimit and prctl, computed beforehand) and execs the
# command, which drops the copy of this process, Lance's threads and state with it. The filter is set once
# for the process: `warnings.catch_warnings` around the call is not thread-safe (commands of concurrent
# runs, and the index store's own filters, could leave each other's filters in place or lose them).
warnings.filterwarnings("ignore", message=_FORK_SAFE_FOR_LANCE, category=UserWarning)

BWRAP_MISSING_MESSAGE = (
    "bubblewrap (bwrap) is not installed: `sudo apt-get install bubblewrap` (Debian/Ubuntu) or set "
    "agent.sandbox.allow_unsandboxed = true to run commands without isolation"
)

_NO_USER_NAMESPACES_HINT = (
    "Allow unprivileged user namespaces (Ubuntu 23.10 and later: `sudo sysctl "
    "kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile for bwrap; Debian before 11: "
    "`sudo sysctl kernel.unprivileged_userns_clone=1`; in a container: run it with user namespaces "
    "allowed), or set agent.sandbox.allow_unsandboxed = true to run commands without isolation"
)

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_DEFAULT_HIDDEN_HOME_ENTRIES = [
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".docker",
    ".kube",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
    ".pgpass",
    ".anthropic",
    ".claude",
    ".claude.json",
]

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
"""Host folders every toolchain may need, mounted read-only (merged-/usr symlinks kept as symlinks)."""

_ETC_SECRETS = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/etc/ssl/private",
    "/etc/ssh",
    "/etc/krb5.keytab",
    "/etc/machine-id",
)
"""Files and folders of /etc hidden inside: password hashes, sudo rules, private keys, host identity."""

_TOOLCHAIN_HOME_DIRS = {
    "Cargo.toml": (".cargo", ".rustup"),
    "go.mod": ("go",),
    "pom.xml": (".m2",),
    "build.gradle": (".gradle",),
    "build.gradle.kts": (".gradle",),
}
"""Per-user toolchain folders a project of that kind needs to build offline, mounted read-only."""

# Environment variable names that never go into the sandbox, whoever passes them.
_SECRET_ENV = re.compile(r"(^ANTHROPIC_|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|COOKIE|SESSION)", re.I)

_READ_CHUNK = 65536
_MIB = 1024 * 1024
WORKSPACE_COPY = "workspace copy"
"""`SpaceLimit.place` of the writable workspace copy."""
_TMPFS_PLACES = ("/tmp", "/var/tmp", "/dev/shm")
"""The sandbox's own tmpfs mounts, each `SandboxSettings.tmp_mb` large."""
# Once a folder's filesystem has lost more free space than the folder may still take, its files are added
# up; the next sum waits this many times as long as the last took, so walks take at most a fifth of the time.
_SPACE_WALK_PAUSE = 4.0
# How long to wait for bwrap to set up the sandbox before the command starts without its tmpfs watched,
# and how long a command stopped before its start waits for bwrap to name the sandbox's first process.
_ATTACH_SECONDS = 5.0
# How long a kill waits for the sandbox's processes to be gone before `run` returns (a warning is logged).
_REAP_SECONDS = 5.0
# How long output may keep flowing after the command exited (from processes that escaped the group).
_DRAIN_SECONDS = 0.5


class SandboxSettings(BaseModel):
    """How agent commands are isolated and limited."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Run commands under bubblewrap. False runs them directly (limits only, no isolation)."""
    allow_unsandboxed: bool = False
    """When bubblewrap is missing, run commands without isolation instead of refusing."""
    timeout_seconds: float = Field(default=60.0, gt=0)
    """Wall-clock limit of one command; the whole process group is killed when it passes."""
    cpu_seconds: int = Field(default=60, ge=1)
    """CPU-time limit per process (RLIMIT_CPU)."""
    memory_mb: int = Field(default=2048, ge=16)
    """Memory limit per process in MiB: the private writable memory it maps (RLIMIT_DATA), so runtimes that
    reserve more address space than they use (the JVM, V8's WebAssembly) still start."""
    max_processes: int = Field(default=256, ge=1)
    """Processes a command may add to the user's current count (RLIMIT_NPROC; not enforced for root)."""
    max_file_mb: int = Field(default=1024, ge=1)
    """Largest file a command may write, in MiB (RLIMIT_FSIZE)."""
    tmp_mb: int = Field(default=1024, ge=1)
    """Size of each of the sandbox's /tmp, /var/tmp and /dev/shm in MiB (tmpfs, held in RAM). The bash
    session's /tmp, a folder of `scratch_dir`, is held to it too: a command that fills it is stopped."""
    max_files: int = Field(default=500_000, ge=1)
    """Files and folders a command may make in each of the sandbox's /tmp, /var/tmp and /dev/shm, and in
    the workspace copy and the bash session's /tmp: an empty file takes no space (`tmp_mb` does not count
    it) but about 1 KiB of the host's RAM in tmpfs. bubblewrap cannot set a tmpfs's inode count (0.8 has
    only ``--size``), so the count is watched as the command runs, and a command past it is stopped."""
    workspace_mb: int = Field(default=4096, ge=1)
    """MiB that commands may add to the workspace copy they run on (in RAM when `scratch_dir` is /dev/shm),
    counted from the copy as first made: a command that passes it is stopped."""
    max_output_bytes: int = Field(default=200_000, ge=256)
    """Bytes kept of each of stdout and stderr (head and tail); the middle is cut with a marker."""
    bwrap_path: str | None = None
    """Path to the bwrap executable; None looks it up on PATH."""
    path: str | None = None
    """PATH inside the sandbox; None is the system PATH plus the directory of agentls' Python."""
    hidden_home_entries: list[str] = Field(default_factory=lambda: list(_DEFAULT_HIDDEN_HOME_ENTRIES))
    """Files and folders of the user's home hidden inside the sandbox (credentials) when a part of the home
    is mounted (the home itself never is)."""
    scratch_dir: str | None = None
    """Where materialized workspaces go; None picks /dev/shm when writable, else the system temp dir."""
    extra_ro_paths: list[str] = Field(default_factory=list)
    """More host folders mounted read-only inside (a toolchain or package cache agentls does not know).
    Everything not mounted (your home, other projects, agentls' own caches and transcripts) is absent."""
    network: Literal["off", "registries", "on"] = "off"
    """What commands reach: ``off`` nothing (a loopback of their own); ``registries`` only
    `allowed_hosts`, through agentls' proxy, every request recorded in the run's transcript; ``on`` the
    host's network, unfiltered."""
    allowed_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_REGISTRIES))
    """Hosts reachable with ``network = "registries"``: ``host`` (ports 443 and 80), ``host:port``, or
    ``*.domain``. Default: PyPI, npm, crates.io and the Go module proxy."""


def _venv_base(venv: Path) -> list[Path]:
    """The installation a virtual environment's interpreter comes from (``home`` in its pyvenv.cfg)."""
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            home = Path(value.strip())
            return [home.parent if home.name == "bin" else home]
    return []


def _toolchain_roots(settings: SandboxSettings, venvs: Sequence[Path], project: Path | None) -> list[Path]:
    """Host paths outside the system folders that commands need: the Python running agentls (its
    installation and environment), virtual environments bound into the sandbox and the installations
    they point to, per-user toolchains of the project's kind, and `settings.extra_ro_paths`."""
    roots = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent.parent]
    for venv in venvs:
        roots += _venv_base(venv)
    for marker, names in _TOOLCHAIN_HOME_DIRS.items():
        if project is not None and (project / marker).is_file():
            roots += [Path.home() / name for name in names]
    roots += [Path(p).expanduser() for p in settings.extra_ro_paths]
    seen: list[Path] = []
    for root in roots:
        try:
            resolved = root.resolve()
        except OSError:
            continue
        if resolved.is_dir() and resolved != Path("/") and resolved not in seen:
            seen.append(resolved)
    return seen


_DEPENDENCY_CACHES = frozenset({".cache", ".vite", ".vitest"})
"""Folders of node_modules that tools write to as they run (Vitest's results and Vite's pre-bundled
dependencies, babel-loader's and ESLint's caches): empty and writable in the sandbox."""


def _read_only_bind(source: Path, destination: Path) -> list[str]:
    """bwrap arguments showing `source` read-only at `destination`. A `node_modules` folder becomes a tmpfs
    holding each of its entries read-only (symbolic links, pnpm's, as links) but not its caches, so the
    tools that write there as they run still work."""
    plain = ["--ro-bind", str(source), str(destination)]
    if source.name != "node_modules" or source.is_symlink() or not source.is_dir():
        return plain
    try:
        entries = sorted(os.scandir(source), key=lambda entry: entry.name)
    except OSError:
        return plain
    args = ["--tmpfs", str(destination)]
    for entry in entries:
        if entry.name in _DEPENDENCY_CACHES:
            continue
        target = str(destination / entry.name)
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), target]
        else:
            args += ["--ro-bind", entry.path, target]
    return args


def _hidden_paths(home: Path | None, entries: Sequence[str]) -> list[Path]:
    paths = [Path(p) for p in _ETC_SECRETS]
    if home is not None:
        paths += [home / entry for entry in entries]
    return [p for p in paths if not p.is_symlink() and p.exists()]


class SandboxUnavailable(RuntimeError):
    """Commands cannot be isolated here and running them unsandboxed is not allowed."""


@dataclass(frozen=True)
class SpaceLimit:
    """A limit on what a command may write that the command reached."""

    place: str
    """``/tmp``, ``/var/tmp``, ``/dev/shm``, `WORKSPACE_COPY` or an extension's `BoundedFolder.place`."""
    limit_mb: int
    setting: str
    """Where the limit is set: ``agent.sandbox.tmp_mb``, ``agent.sandbox.workspace_mb`` or an extension's
    (``agent.install.max_mb``)."""
    on_host: bool
    """The place is a host folder (the workspace copy, the bash session's /tmp), watched as the command
    ran; else one of the sandbox's tmpfs, where the kernel refused the writes past the limit and the command
    went on as it chose."""
    stopped: bool
    """The command was killed for it (else it ended before the watch saw the folder past its limit)."""
    limit_files: int | None = None
    """Set when the limit passed is the count of files (``agent.sandbox.max_files``, or an extension's
    folder's: ``agent.install.max_files``), not the space."""

    @property
    def message(self) -> str:
        """One line for the model and the user: what filled, the limit, the setting, what happened."""
        if self.limit_files is not None:
            then = "the command was stopped" if self.stopped else "the command ended past it"
            return (
                f"the sandbox's {self.place} holds too many files: {self.limit_files:,} limit, setting "
                f"{self.setting}; {then}"
            )
        if self.place == WORKSPACE_COPY:
            what = f"the sandbox's workspace copy is full: {self.limit_mb} MiB limit on what commands add"
        else:
            what = f"the sandbox's {self.place} is full: {self.limit_mb} MiB limit"
        then = "writes past it failed (No space left on device)"
        if self.on_host:
            then = "the command was stopped" if self.stopped else "the command ended past it"
        return f"{what}, setting {self.setting}; {then}"


@dataclass(frozen=True)
class BoundedFolder:
    """A host folder a `SandboxExtension` makes writable to commands (the run's package folder), and its
    bound: watched as the command runs like the workspace copy, and the command stopped past it. Only
    commands write there, so the sandbox keeps an upper bound of its size from one command to the next
    and walks it only when that passes the bound (a folder holding torch takes 0.7 s to walk)."""

    place: str
    """What the messages call it ("package folder")."""
    path: Path
    limit_mb: int
    """MiB it may hold."""
    setting: str
    """The setting of the bound (``agent.install.max_mb``)."""
    max_files: int | None = None
    """Files and folders it may hold, counted as the workspace copy's are (``agent.sandbox.max_files``);
    None: not counted."""
    files_setting: str = ""
    """The setting of that count (``agent.install.max_files``)."""


@dataclass(frozen=True)
class CommandResult:
    """What one command did."""

    exit_code: int
    """The command's exit status; 128+N when bwrap reports signal N; -N when run unsandboxed."""
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    """Some output was cut (see `SandboxSettings.max_output_bytes`)."""
    duration: float
    """Wall-clock seconds."""
    killed: bool
    """The process group was killed before the command ended on its own (timeout or cancel)."""
    cancelled: bool = False
    sandboxed: bool = True
    """False when the command ran without bubblewrap."""
    space_limit: SpaceLimit | None = None
    """The limit on written data the command reached, if any. Its message is the last line of `stderr`,
    and a command that reached one fails: an exit status of 0 becomes 1."""


def sandbox_path(settings: SandboxSettings) -> str:
    """PATH inside the sandbox: `settings.path`, else the system PATH after the directory of agentls'
    Python (callers put the project's environment first)."""
    if settings.path is not None:
        return settings.path
    path = _DEFAULT_PATH
    python_dir = os.path.dirname(sys.executable)
    if python_dir and python_dir not in path.split(":"):
        path = f"{python_dir}:{path}"
    return path


def default_scratch_dir() -> Path:
    """A directory for materialized workspaces: tmpfs when there is one (file creation is much cheaper)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


class _Capture:
    """Keeps the head and the tail of one output stream within a byte budget."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > self._tail_limit:
                del self._tail[: len(self._tail) - self._tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head) + len(self._tail)

    def text(self) -> str:
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail
        cut = self.total - len(self._head) - len(self._tail)
        return f"{head}\n[... truncated {cut} bytes ...]\n{tail}"


def _disk_usage(path: Path) -> int:
    """Bytes the files and folders under `path` take (allocated blocks, each inode once, links not
    followed)."""
    total = 0
    seen: set[int] = set()
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_nlink > 1:
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            total += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
    return total


def _count_files(path: Path) -> int:
    """Files and folders under `path` (links not followed)."""
    count = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    count += 1
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return count


def _free_inodes(path: Path) -> int | None:
    """Free inodes of the filesystem holding `path`; None when it cannot tell (or does not count them)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_ffree if st.f_files else None


def _space(path: Path) -> tuple[int, int] | None:
    """(free, used) bytes of the filesystem holding `path`: used is what every file on it takes, free
    what is left of its size (blocks reserved for root included, so every write lowers it)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bfree * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize


@dataclass
class _WatchedFolder:
    """A host folder a command writes to (the workspace copy, the bash session's /tmp) and its bound."""

    place: str
    path: Path
    allowed: int
    """Bytes the folder may hold."""
    limit_mb: int
    setting: str
    usage: int | None = None
    """Bytes the folder takes, when just measured (its first command)."""
    headroom: int = 0
    """What the folder could still take when the command started."""
    free_at_start: int | None = None
    """Free bytes of its filesystem then (or at its last walk)."""
    next_walk: float = 0.0
    max_files: int | None = None
    """Files the folder may hold (``agent.sandbox.max_files``); None: not counted."""
    files_setting: str = "agent.sandbox.max_files"
    """The setting of `max_files` (an extension's folder has its own: ``agent.install.max_files``)."""
    remember: bool = False
    """Only commands write to it (an extension's folder): the sandbox keeps its size between commands."""
    free_files_at_start: int | None = None
    """Free inodes of its filesystem when the command started (or at its last count)."""
    next_count: float = 0.0


class _SpaceGuard:
    """Watches what one command writes against `tmp_mb` and `workspace_mb`.

    The sandbox's tmpfs (/tmp, /var/tmp, /dev/shm) are bounded by the kernel (bwrap's ``--size``); the
    guard holds a descriptor of each (through ``/proc/PID/root`` while bwrap waits on ``--block-fd``), so it
    can tell afterwards that one filled even though the sandbox is gone. The host folders (the workspace
    copy and the bash session's /tmp live in `scratch_dir`, /dev/shm by default) have no kernel bound an
    unprivileged process can set: every poll compares their filesystem's free space with what they had
    left (one ``statvfs``), and when that much is gone, their files are added up (walks take a fifth of the
    time at most); past the bound the command is stopped. Another process filling the same filesystem
    costs walks, never a wrong stop. Nor is a folder walked when the command starts while its filesystem's
    used space (which holds the folder's) is within the folder's bound: what the folder may still take is
    at least the difference. In /dev/shm with nothing big beside the copy, a command walks nothing (a walk
    of a copy the kernel's size takes a second or more); the first command on a copy measures its size,
    unless its caller knows it (`Sandbox.run`'s `cwd_bytes`: the bash tool's copy, counted as it was made)."""

    def __init__(self, folders: Sequence[_WatchedFolder], max_files: int | None = None) -> None:
        self._folders = list(folders)
        self._max_files = max_files
        for folder in self._folders:
            if folder.max_files is not None:
                folder.free_files_at_start = _free_inodes(folder.path)
            space = _space(folder.path)
            if space is None:
                continue  # not watched (`poll` skips it)
            folder.free_at_start, used = space
            if folder.usage is None and used > folder.allowed:
                folder.usage = _disk_usage(folder.path)
            folder.headroom = folder.allowed - (used if folder.usage is None else folder.usage)
        self._tmpfs: list[tuple[str, int]] = []
        self._tmpfs_full: set[str] = set()
        self._tmp_mb = 0
        self.stopped_by: SpaceLimit | None = None

    def attach(self, pid: int, places: Sequence[str], tmp_mb: int, alive: Callable[[], bool]) -> None:
        """Open the sandbox's tmpfs at `places` once bwrap has set them up, through the sandbox's process
        `pid` (named on bwrap's ``--info-fd``; each tmpfs is recognised by its size). Gives up quietly after
        a while: the kernel still bounds them, only the message naming the limit is lost."""
        self._tmp_mb = tmp_mb
        deadline = time.monotonic() + _ATTACH_SECONDS
        size = tmp_mb * _MIB
        pending = list(places)
        while pending and time.monotonic() < deadline and alive():
            for place in list(pending):
                try:
                    fd = os.open(f"/proc/{pid}/root{place}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError:
                    continue
                st = os.fstatvfs(fd)
                if st.f_blocks * st.f_frsize == size:
                    self._tmpfs.append((place, fd))
                    pending.remove(place)
                else:  # not yet the sandbox's root: bwrap is still setting up
                    os.close(fd)
            if pending:
                time.sleep(0.005)
        if pending:
            log.debug("cannot watch the sandbox's %s; their limits hold, unnamed", ", ".join(pending))

    def poll(self, exited: bool = False) -> SpaceLimit | None:
        """Check the limits now; the host folder's limit the command passed (stop it), else None."""
        for place, fd in self._tmpfs:
            try:
                st = os.fstatvfs(fd)
            except OSError:
                continue
            if st.f_bavail == 0:
                self._tmpfs_full.add(place)
            if self._max_files is not None and st.f_files and st.f_files - st.f_ffree > self._max_files:
                self.stopped_by = SpaceLimit(
                    place,
                    self._tmp_mb,
                    "agent.sandbox.max_files",
                    on_host=False,
                    stopped=not exited,
                    limit_files=self._max_files,
                )
                return self.stopped_by
        now = time.monotonic()
        for folder in self._folders:
            if self._too_many_files(folder, now, exited):
                return self.stopped_by
            if folder.free_at_start is None:
                continue
            space = _space(folder.path)
            if space is None or folder.free_at_start - space[0] <= folder.headroom:
                continue
            free = space[0]
            if now < folder.next_walk and not exited:
                continue
            usage = _disk_usage(folder.path)
            folder.next_walk = now + (time.monotonic() - now) * _SPACE_WALK_PAUSE
            if usage > folder.allowed:
                self.stopped_by = SpaceLimit(
                    folder.place, folder.limit_mb, folder.setting, on_host=True, stopped=not exited
                )
                return self.stopped_by
            # Someone else took the space (or the folder is close to its bound): measure from here.
            folder.free_at_start, folder.headroom = free, folder.allowed - usage
        return None

    def _too_many_files(self, folder: _WatchedFolder, now: float, exited: bool) -> bool:
        """Whether `folder` holds more than its `max_files` (then `stopped_by` says so). Counted only once
        its filesystem has lost that many free inodes since the command started (one ``statvfs`` a poll),
        and then at most a fifth of the time, as the space is."""
        if folder.max_files is None or folder.free_files_at_start is None:
            return False
        free = _free_inodes(folder.path)
        if free is None or folder.free_files_at_start - free <= folder.max_files:
            return False
        if now < folder.next_count and not exited:
            return False
        count = _count_files(folder.path)
        folder.next_count = now + (time.monotonic() - now) * _SPACE_WALK_PAUSE
        if count > folder.max_files:
            self.stopped_by = SpaceLimit(
                folder.place,
                folder.limit_mb,
                folder.files_setting,
                on_host=True,
                stopped=not exited,
                limit_files=folder.max_files,
            )
            return True
        folder.free_files_at_start = free  # someone else's files: count from here
        return False

    def finish(self) -> SpaceLimit | None:
        """The last check once the command ended (it may have filled a limit after the last poll); closes
        the tmpfs descriptors, which frees what the sandbox left in them."""
        try:
            if self.stopped_by is None:
                self.poll(exited=True)
        finally:
            for _, fd in self._tmpfs:
                os.close(fd)
            self._tmpfs = []
        if self.stopped_by is not None:
            return self.stopped_by
        for place in _TMPFS_PLACES:
            if place in self._tmpfs_full:
                return SpaceLimit(place, self._tmp_mb, "agent.sandbox.tmp_mb", on_host=False, stopped=False)
        return None


def _read_child_pid(fd: int, stop: Callable[[], bool]) -> int | None:
    """The sandbox's process id from bwrap's ``--info-fd`` (JSON); None when bwrap ends first or `stop`
    says so (asked every 50 ms)."""
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not stop():
        if not poller.poll(50):
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
        try:
            info = json.loads(data)
        except ValueError:
            continue
        pid = info.get("child-pid") if isinstance(info, dict) else None
        return pid if isinstance(pid, int) else None
    return None


class _SandboxInit:
    """bwrap's first process in the sandbox (pid 1 of its PID namespace), held so that a kill reaches it and
    can wait for its end.

    bwrap's ``--new-session`` moves this process out of the command's process group (``setsid`` before it
    forks the command), and it sets its parent-death signal (``--die-with-parent``) only after that: a
    group kill in between ends bwrap's outer process alone and leaves this one, and the command it then
    starts, running for good, reparented to init (bubblewrap issue #633). Killed directly, it takes every
    process of the sandbox with it: the kernel kills a PID namespace's processes when its first process
    dies, and that process has ended only once they are all reaped. Held through a pidfd, so the kill and
    the wait never reach another process that took its pid; without one (Linux before 5.3) through its pid
    and start time."""

    def __init__(self, pid: int, pidfd: int | None, start: str) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._start = start

    @classmethod
    def hold(cls, pid: int, parent: int) -> _SandboxInit | None:
        """Process `pid` while it is still the child of bwrap's outer process `parent` (not yet reaped, so
        its pid is not reused); None when it has ended."""
        pidfd: int | None = None
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                pidfd = pidfd_open(pid)
            except ProcessLookupError:
                return None
            except OSError as error:  # ENOSYS: a kernel without pidfds
                log.debug("no pidfd for the sandbox's process %d (%s): held by its start time", pid, error)
        stat = proc_stat(pid)
        if stat is None or stat[0] != parent:
            if pidfd is not None:
                os.close(pidfd)
            return None
        return cls(pid, pidfd, stat[1])

    def message(self, key: str) -> tuple[str, list[int]]:
        """The `agent.sandbox_reaper` message that makes it hold this process for command `key`."""
        if self._pidfd is not None:
            return f"init {key}", [self._pidfd]
        return f"init {key} {self.pid} {self._start}", []

    def _running(self) -> bool:
        stat = proc_stat(self.pid)
        return stat is not None and stat[1] == self._start and stat[2] != "Z"

    def kill(self) -> None:
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            elif self._running():
                os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, seconds: float) -> bool:
        """Whether the process (so every process of the sandbox) ended within `seconds`."""
        if self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            return bool(poller.poll(int(seconds * 1000)))
        deadline = time.monotonic() + seconds
        while self._running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class _SetupReaper:
    """The owner's end of `agent.sandbox_reaper`, one per `Sandbox`: it kills the sandboxes of an owner
    that died while they were being set up (bubblewrap issue #633). Messages are sent from any thread
    (one ``sendmsg`` each, whole on a ``SOCK_SEQPACKET`` socket).

    The reaper sees the owner's death as the end of its socket, so no other process may hold the owner's
    end: a child forked without exec (a ``multiprocessing`` fork worker, ``os.fork``) would, until it
    exits, and close-on-exec does not apply to it. Such a child closes its copy of every reaper's socket
    right after the fork (``os.register_at_fork``, registered with the first reaper), and a `Sandbox` it
    uses starts a reaper of its own (`inherited`)."""

    _open: ClassVar[weakref.WeakSet[_SetupReaper]] = weakref.WeakSet()
    """The reapers of this process (forking is the whole process's, so this is too)."""
    _open_lock: ClassVar[threading.Lock] = threading.Lock()
    _fork_hook: ClassVar[bool] = False

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", _SANDBOX_REAPER, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the language server's stdout is its channel to the editor
                start_new_session=True,  # no signal to the owner's terminal or group reaches it
                close_fds=True,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self._socket = mine
        self._owner = os.getpid()
        with _SetupReaper._open_lock:
            if not _SetupReaper._fork_hook:
                os.register_at_fork(after_in_child=_SetupReaper._close_in_child)
                _SetupReaper._fork_hook = True
            _SetupReaper._open.add(self)

    @staticmethod
    def _close_in_child() -> None:
        """In a child just forked: close the parent's reaper sockets (no lock taken: another thread of the
        parent may have held it at the fork)."""
        _SetupReaper._open_lock = threading.Lock()
        for reaper in list(_SetupReaper._open):
            reaper._socket.close()
        _SetupReaper._open = weakref.WeakSet()

    @property
    def inherited(self) -> bool:
        """Whether this is a forked child's copy of its parent's reaper (its socket closed)."""
        return os.getpid() != self._owner

    def send(self, message: str, fds: Sequence[int] = ()) -> bool:
        """Whether the reaper got `message` (False once it has died)."""
        try:
            socket.send_fds(self._socket, [message.encode("ascii")], list(fds))
        except OSError:
            return False
        return True

    def close(self) -> None:
        """End the reaper: with nothing held (no sandbox being set up), it only exits."""
        self._socket.close()
        if self.inherited:
            return  # the parent's reaper: the parent ends it
        try:
            self._proc.wait(_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the sandbox reaper (pid %d) did not exit when told to", self._proc.pid)


def _count_user_processes(uid: int) -> int:
    """Processes the user owns now (what RLIMIT_NPROC counts against)."""
    count = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


def _takes_tmpfs_size(bwrap: str) -> bool:
    """Whether this bwrap sizes its tmpfs (``--size``: bubblewrap 0.7 and later; refused when setuid)."""
    try:
        if os.stat(bwrap).st_mode & stat.S_ISUID:
            return False
        proc = subprocess.run([bwrap, "--help"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"--size" in proc.stdout + proc.stderr


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up in the parent (never between fork and exec); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    from agent.subreaper import load_prctl

    return load_prctl()


_PR_SET_PDEATHSIG = 1
_SUBREAPER = str(Path(__file__).with_name("subreaper.py"))
_SANDBOX_REAPER = str(Path(__file__).with_name("sandbox_reaper.py"))


def _limits_setter(
    limits: Sequence[tuple[int, int, int]], prctl: Callable[..., int] | None = None
) -> Callable[[], None]:
    """A preexec_fn that only calls setrlimit (and prctl): everything it needs is computed before the fork.

    With `prctl`, the command gets SIGKILL when the agent's process dies, kill -9 included (bwrap's
    ``--die-with-parent`` does the same inside the sandbox; unsandboxed commands need it here).
    """

    def apply() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        for which, soft, hard in limits:
            try:
                resource.setrlimit(which, (soft, hard))
            except (ValueError, OSError):
                # A hard limit below ours (set by the parent's environment) stays: it is stricter.
                pass

    return apply


class Sandbox:
    """Runs commands in bubblewrap with resource limits, a clean environment and no network."""

    def __init__(self, settings: SandboxSettings | None = None, *, home: Path | None = None) -> None:
        """`home` is the user's home directory whose credential entries are hidden (default: from passwd)."""
        self.settings = settings or SandboxSettings()
        if home is None:
            try:
                home = Path(pwd.getpwuid(os.getuid()).pw_dir)
            except KeyError:
                home = None
        self._home = home
        self._bwrap: str | None = None
        self._probed = False
        self._tmpfs_sized = False
        """bwrap takes ``--size`` (0.7 and later, not when it is setuid): the tmpfs get `tmp_mb`."""
        self._workspace_baselines: dict[Path, int] = {}
        self._bounded_usage: dict[Path, int] = {}
        """An extension's folder (`BoundedFolder`) -> at most the bytes it held after its last command: only
        commands write there, so the next one starts from it instead of walking the folder."""
        self._warned = False
        self._lock = threading.Lock()
        self._prctl = _load_prctl()
        self.extensions: list[SandboxExtension] = []
        """Applied to every sandboxed command after the workspace's mounts (`agent.netsandbox`)."""
        self._gateway: NetworkGateway | None = None
        self._reaper: _SetupReaper | None = None
        self._reaper_closer: weakref.finalize | None = None
        self._commands = 0

    # -- availability ------------------------------------------------------------------------------

    def bwrap_executable(self) -> str | None:
        """The bwrap executable that will be used, or None when there is none."""
        if self.settings.bwrap_path is not None:
            candidate = self.settings.bwrap_path
            return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
        return shutil.which("bwrap")

    @property
    def isolated(self) -> bool:
        """Whether commands will run under bubblewrap (raises `SandboxUnavailable` when they may not run)."""
        return self._prepare() is not None

    def _prepare(self) -> str | None:
        """The bwrap path to use, None to run unsandboxed, or `SandboxUnavailable`."""
        with self._lock:
            if not self.settings.enabled:
                self._warn_once("sandbox.enabled is false: agent commands run WITHOUT isolation")
                return None
            if self._probed:
                return self._bwrap
            bwrap = self.bwrap_executable()
            if bwrap is None:
                if not self.settings.allow_unsandboxed:
                    raise SandboxUnavailable(BWRAP_MISSING_MESSAGE)
                self._warn_once(
                    "bubblewrap (bwrap) is not installed; agent commands run WITHOUT isolation "
                    "(agent.sandbox.allow_unsandboxed = true)"
                )
                self._probed = True
                return None
            self._tmpfs_sized = _takes_tmpfs_size(bwrap)
            if not self._tmpfs_sized:
                log.warning(
                    "bubblewrap (%s) has no --size option (0.7 and later have it, when not setuid): the "
                    "sandbox's /tmp, /var/tmp and /dev/shm have no size limit (agent.sandbox.tmp_mb)",
                    bwrap,
                )
            problem = self._probe(bwrap)
            if problem is not None:
                if not self.settings.allow_unsandboxed:
                    raise SandboxUnavailable(
                        f"bubblewrap ({bwrap}) cannot create a sandbox here: {problem.rstrip('.')}. "
                        + _NO_USER_NAMESPACES_HINT
                    )
                self._warn_once(
                    f"bubblewrap cannot create a sandbox ({problem}); commands run WITHOUT isolation"
                )
                bwrap = None
            self._bwrap = bwrap
            self._probed = True
            return bwrap

    def _probe(self, bwrap: str) -> str | None:
        """Start one empty sandbox; the error text when that fails."""
        args = [bwrap, *self._isolation_args(), "--", "true"]
        try:
            proc = subprocess.run(
                args, capture_output=True, timeout=30, env=self._environment(None), check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if proc.returncode != 0:
            return proc.stderr.decode("utf-8", errors="replace").strip() or f"exit status {proc.returncode}"
        return None

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning(message)

    # -- building the command ----------------------------------------------------------------------

    def _isolation_args(
        self, venvs: Sequence[Path] = (), project: Path | None = None, tmp_dir: Path | None = None
    ) -> list[str]:
        """bwrap's arguments: namespaces, then the mounts (see the module docstring). `venvs`: folders
        bound into the sandbox that may be virtual environments; `project`: the workspace, whose kind
        says which per-user toolchain folders to mount; `tmp_dir`: a host folder shown as /tmp instead
        of a fresh tmpfs."""
        args = [
            "--die-with-parent",
            "--new-session",
            *(["--unshare-net"] if self.settings.network != "on" else []),
            "--unshare-pid",
            "--unshare-ipc",
            "--cap-drop",
            "ALL",
        ]
        mounted: list[Path] = []
        for name in _SYSTEM_DIRS:
            path = Path(name)
            if path.is_symlink():  # merged /usr: /bin -> usr/bin
                args += ["--symlink", os.readlink(path), name]
            elif path.is_dir():
                args += ["--ro-bind", name, name]
                mounted.append(path)
        size = ["--size", str(self.settings.tmp_mb * _MIB)] if self._tmpfs_sized else []
        tmp = ["--bind", str(tmp_dir), "/tmp"] if tmp_dir is not None else [*size, "--tmpfs", "/tmp"]
        args += ["--dev", "/dev", *size, "--tmpfs", "/dev/shm", "--proc", "/proc", *tmp, "--dir", "/tmp/home"]
        args += [*size, "--tmpfs", "/var/tmp"]
        # After the private /tmp: an interpreter or environment installed under /tmp stays visible.
        for path in _toolchain_roots(self.settings, venvs, project):
            if not any(path == m or m in path.parents for m in mounted):
                args += ["--ro-bind", str(path), str(path)]
                mounted.append(path)
        for secret in _hidden_paths(self._home, self.settings.hidden_home_entries):
            if any(m in secret.parents for m in mounted):
                if secret.is_dir():
                    args += ["--tmpfs", str(secret), "--remount-ro", str(secret)]
                else:
                    args += ["--ro-bind", "/dev/null", str(secret)]
        return args

    def _environment(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {
            "PATH": sandbox_path(self.settings),
            "HOME": "/tmp/home",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "PYTHONUNBUFFERED": "1",
            # Tools that ask a registry for their own newer version on every run (npm even for `npm test`):
            # under "registries" each ask is a request to record, or to put to the user, for nothing.
            "npm_config_update_notifier": "false",
            "NO_UPDATE_NOTIFIER": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        for name, value in (extra or {}).items():
            if _SECRET_ENV.search(name):
                log.debug("not passing %s into the sandbox: it looks like a credential", name)
                continue
            env[name] = value
        return env

    def _limits(self) -> list[tuple[int, int, int]]:
        s = self.settings
        memory = s.memory_mb * 1024 * 1024
        file_size = s.max_file_mb * 1024 * 1024
        nproc = _count_user_processes(os.getuid()) + s.max_processes
        return [
            # The hard CPU limit one second above the soft one: SIGXCPU first, then SIGKILL.
            (resource.RLIMIT_CPU, s.cpu_seconds, s.cpu_seconds + 1),
            (resource.RLIMIT_DATA, memory, memory),  # not RLIMIT_AS: see the module docstring
            (resource.RLIMIT_FSIZE, file_size, file_size),
            (resource.RLIMIT_NPROC, nproc, nproc),
            (resource.RLIMIT_CORE, 0, 0),
        ]

    # -- running -----------------------------------------------------------------------------------

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
        """Run `cmd` (a shell string for bash, or an argv) with `cwd_dir` as its writable working directory.

        `mount_at` is where `cwd_dir` appears inside the sandbox (default: its own path; it must exist on
        the host). `ro_binds` are (host source, sandbox destination) pairs bound read-only after it.
        Both are ignored when running unsandboxed. `tmp_dir` is a host folder that is the command's /tmp
        (unsandboxed: its TMPDIR, with HOME in it), so what commands leave there persists between them
        (the bash tool's session); by default each command gets a fresh one. `cwd_bytes` is what `cwd_dir`
        takes (allocated blocks) when the caller knows it, having just made it (the bash tool's copy): its
        first command then does not walk it for its size. Raises `SandboxUnavailable` (see the module doc).
        """
        bwrap = self._prepare()
        argv = self._argv(cmd)
        cwd_dir = Path(os.path.abspath(cwd_dir))
        inside = Path(os.path.abspath(mount_at)) if mount_at is not None else cwd_dir
        if bwrap is not None:
            venvs = [source for source, _ in ro_binds]
            isolation = self._isolation_args(venvs, cwd_dir, tmp_dir)
            full = [bwrap, *isolation, "--bind", str(cwd_dir), str(inside)]
            for source, destination in ro_binds:
                full += _read_only_bind(Path(source), Path(destination))
            for extension in self._extensions():
                full += extension.bwrap_args()
                argv = extension.wrap(argv)
            # Last of the mounts: the sandbox's root and /dev are tmpfs too, unbounded and writable by the
            # command (its user owns them); read-only, they hold nothing but mount points.
            full += ["--remount-ro", "/", "--remount-ro", "/dev"]
            full += ["--chdir", str(inside), "--", *argv]
            run_cwd = "/"
        else:
            full = argv
            run_cwd = str(cwd_dir)
        environment = self._environment(env)
        if bwrap is not None:
            for extension in self._extensions():
                environment.update(extension.environment())
        limit = self.settings.timeout_seconds if timeout is None else timeout
        folders = self._watched_folders(cwd_dir, tmp_dir, cwd_bytes)
        if bwrap is not None:
            gateway = self.network_gateway()
            paused = gateway.waiting_seconds if gateway is not None else None
            tmpfs = [p for p in _TMPFS_PLACES if p != "/tmp" or tmp_dir is None] if self._tmpfs_sized else []
            return self._execute(
                full,
                run_cwd,
                environment,
                limit,
                cancel,
                sandboxed=True,
                paused=paused,
                watch=(folders, tmpfs),
            )
        if tmp_dir is not None:
            (tmp_dir / "home").mkdir(parents=True, exist_ok=True)
            environment["HOME"] = str(tmp_dir / "home")
            environment["TMPDIR"] = str(tmp_dir)
            return self._execute(
                full, run_cwd, environment, limit, cancel, sandboxed=False, watch=(folders, [])
            )
        # Unsandboxed there is no private /tmp: give the command a throwaway HOME, outside the workspace
        # copy so that tools' dotfiles do not turn into proposed files.
        home = tempfile.mkdtemp(prefix="agentls-home-")
        environment["HOME"] = home
        environment.pop("TMPDIR", None)
        try:
            return self._execute(
                full, run_cwd, environment, limit, cancel, sandboxed=False, watch=(folders, [])
            )
        finally:
            remove_tree(home, "command's HOME folder")

    def _watched_folders(
        self, cwd_dir: Path, tmp_dir: Path | None, cwd_bytes: int | None = None
    ) -> list[_WatchedFolder]:
        """The host folders the command writes to, with their bounds: the working directory may grow by
        `workspace_mb` over its size at its first command (`cwd_bytes`, else a walk), a session /tmp may
        hold `tmp_mb`, an
        extension's folder (`BoundedFolder`: the run's package folder) its own limit."""
        s = self.settings
        baselines = self._workspace_baselines
        usage: int | None = None
        with self._lock:
            if cwd_dir not in baselines:
                for gone in [path for path in baselines if not path.exists()]:
                    del baselines[gone]
                baselines[cwd_dir] = usage = _disk_usage(cwd_dir) if cwd_bytes is None else cwd_bytes
            baseline = baselines[cwd_dir]
        setting = "agent.sandbox.workspace_mb"
        allowed = baseline + s.workspace_mb * _MIB
        copy = _WatchedFolder(WORKSPACE_COPY, cwd_dir, allowed, s.workspace_mb, setting, usage)
        copy.max_files = s.max_files
        folders = [copy]
        if tmp_dir is not None:
            tmp = _WatchedFolder("/tmp", tmp_dir, s.tmp_mb * _MIB, s.tmp_mb, "agent.sandbox.tmp_mb")
            tmp.max_files = s.max_files
            folders.append(tmp)
        for extension in self._extensions():
            bounded = extension.bounded_folder()
            if bounded is not None:
                mb, known = bounded.limit_mb, self._bounded_usage.get(bounded.path)
                watched = _WatchedFolder(bounded.place, bounded.path, mb * _MIB, mb, bounded.setting, known)
                watched.remember = True
                if bounded.max_files is not None:
                    watched.max_files, watched.files_setting = bounded.max_files, bounded.files_setting
                folders.append(watched)
        return folders

    def _remember(self, folders: Sequence[_WatchedFolder]) -> None:
        """Keep, for the extensions' folders, at most what each holds now: what it could hold at the
        command's start (or last walk) plus all the space its filesystem lost since (others' writes
        included, so never less than the truth; past the bound, the next command walks it again)."""
        for folder in folders:
            if not folder.remember or folder.free_at_start is None:
                continue
            space = _space(folder.path)
            if space is None:
                self._bounded_usage.pop(folder.path, None)
                continue
            grown = max(0, folder.free_at_start - space[0])
            with self._lock:
                self._bounded_usage[folder.path] = folder.allowed - folder.headroom + grown

    def network_gateway(self) -> NetworkGateway | None:
        """The proxy that is the sandbox's only way out under ``network = "registries"`` (started on
        first use, stopped by `close`); None under the other policies."""
        if self.settings.network != "registries":
            return None
        with self._lock:
            if self._gateway is None:
                from agent.netsandbox import NetworkGateway

                self._gateway = NetworkGateway(self.settings.allowed_hosts)
            return self._gateway

    def _extensions(self) -> list[SandboxExtension]:
        gateway = self.network_gateway()
        return [*self.extensions, *([gateway] if gateway is not None else [])]

    def close(self) -> None:
        """Stop the network gateway and the sandbox reaper, if they started."""
        with self._lock:
            gateway, self._gateway = self._gateway, None
            closer, self._reaper, self._reaper_closer = self._reaper_closer, None, None
        if gateway is not None:
            gateway.close()
        if closer is not None:
            closer()

    def _setup_reaper(self) -> tuple[_SetupReaper | None, str]:
        """This sandbox's `_SetupReaper` (started on first use, again if it died) and a key for one
        command; no reaper where it cannot start (logged)."""
        with self._lock:
            self._commands += 1
            key = str(self._commands)
            if self._reaper is not None and self._reaper.inherited and self._reaper_closer is not None:
                self._reaper_closer.detach()  # this process is a forked child: its parent's reaper
                self._reaper = self._reaper_closer = None
            if self._reaper is None:
                try:
                    self._reaper = _SetupReaper()
                except OSError as error:
                    log.warning(
                        "cannot start the sandbox reaper (%s): a sandbox whose agentls is killed while it "
                        "is set up may run its command on",
                        error,
                    )
                    return None, key
                # A sandbox dropped without `close` ends its reaper too.
                self._reaper_closer = weakref.finalize(self, self._reaper.close)
            return self._reaper, key

    def _reaper_lost(self, reaper: _SetupReaper) -> None:
        """`reaper` died (killed from outside): the next command starts another."""
        log.warning("the sandbox reaper died; starting another for the next command")
        with self._lock:
            if self._reaper is reaper and self._reaper_closer is not None:
                closer, self._reaper, self._reaper_closer = self._reaper_closer, None, None
            else:
                return
        closer()

    def _argv(self, cmd: str | Sequence[str]) -> list[str]:
        if isinstance(cmd, str):
            shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
            return [shell, "-c", cmd]
        argv = list(cmd)
        if not argv:
            raise ValueError("empty command")
        return argv

    def _execute(
        self,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        timeout: float,
        cancel: threading.Event | None,
        *,
        sandboxed: bool,
        paused: Callable[[], float] | None = None,
        watch: tuple[Sequence[_WatchedFolder], Sequence[str]] = ((), ()),
    ) -> CommandResult:
        """Run `argv` to its end, the `timeout` or `cancel`. `paused`: seconds the command has waited for
        the user so far (a network approval), added to its deadline. `watch`: the host folders and the
        sandbox's tmpfs whose limits `_SpaceGuard` watches (tmpfs only when `argv` is bwrap's)."""
        out = _Capture(self.settings.max_output_bytes)
        err = _Capture(self.settings.max_output_bytes)
        folders, tmpfs = watch
        guard = _SpaceGuard(folders, self.settings.max_files)
        child_fds: tuple[int, ...] = ()
        info_r = block_w = control_w = -1
        reaper: _SetupReaper | None = None
        command_key = ""
        if not sandboxed and self._prctl is not None:
            # Linux: the command runs under `agent.subreaper`, which ends every process of it, those that
            # left its process group too, when this end of its control pipe is written to or closed.
            control_r, control_w = os.pipe()
            child_fds = (control_r,)
            argv = [sys.executable, "-I", "-S", _SUBREAPER, str(os.getpid()), str(control_r), "--", *argv]
        if sandboxed:
            # bwrap names the sandbox's first process on info_fd and waits on block_fd before it starts the
            # command: `_start_sandbox` holds that process (so every kill reaches it) and the guard opens
            # the tmpfs before anything is written to them.
            info_r, info_w = os.pipe()
            block_r, block_w = os.pipe()
            child_fds = (info_w, block_r)
            argv = [argv[0], "--info-fd", str(info_w), "--block-fd", str(block_r), *argv[1:]]
            # The reaper holds the pipe's writing end too, so that bwrap keeps waiting if this process dies.
            reaper, command_key = self._setup_reaper()
            if reaper is not None and not reaper.send(f"block {command_key}", [block_w]):
                self._reaper_lost(reaper)
                reaper = None
        started = time.monotonic()
        deadline = started + timeout
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_limits_setter(self._limits(), self._prctl),  # see _FORK_SAFE_FOR_LANCE
                close_fds=True,
                pass_fds=child_fds,
            )
        except BaseException:
            for fd in (*child_fds, info_r, block_w, control_w):
                if fd >= 0:
                    os.close(fd)
            if reaper is not None:
                reaper.send(f"done {command_key}")
            raise
        for fd in child_fds:
            os.close(fd)
        assert proc.stdout is not None and proc.stderr is not None
        timed_out = cancelled = killed = False
        init: _SandboxInit | None = None
        control = [control_w] if control_w >= 0 else []

        def end() -> None:
            if control:
                # The subreaper kills the command's processes and then exits; a group kill now would end
                # it first and leave the processes that left the group running.
                try:
                    os.close(control.pop())
                except OSError:
                    pass
            elif control_w < 0:
                self._kill(proc.pid, init)

        selector = selectors.DefaultSelector()
        try:
            if sandboxed:

                def stop() -> bool:
                    return (cancel is not None and cancel.is_set()) or time.monotonic() >= deadline

                init = self._start_sandbox(proc, info_r, block_w, guard, tmpfs, stop, (reaper, command_key))
            captures = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
            for stream in (proc.stdout, proc.stderr):
                os.set_blocking(stream.fileno(), False)
                selector.register(stream, selectors.EVENT_READ)
            paused_before = paused() if paused is not None else 0.0
            exited_at: float | None = None
            while selector.get_map():
                if paused is not None:
                    deadline = started + timeout + paused() - paused_before
                now = time.monotonic()
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                    # Background jobs would hold the pipes open (and run on): end them.
                    end()
                if exited_at is not None and now - exited_at > _DRAIN_SECONDS:
                    break
                if exited_at is None and cancel is not None and cancel.is_set():
                    cancelled = killed = True
                    end()
                    exited_at = now
                elif exited_at is None and now >= deadline:
                    timed_out = killed = True
                    end()
                    exited_at = now
                elif exited_at is None and guard.poll() is not None:
                    killed = True
                    end()
                    exited_at = now
                wait = min(0.05, max(0.0, deadline - now)) if exited_at is None else 0.05
                for key, _ in selector.select(timeout=wait):
                    try:
                        data = os.read(key.fd, _READ_CHUNK)
                    except BlockingIOError:
                        continue
                    if data:
                        captures[key.fd].add(data)
                    else:
                        selector.unregister(key.fileobj)
        finally:
            selector.close()
            end()
            # Closed only now: bwrap reads end of file on block_fd as leave to go on.
            for fd in (info_r, block_w):
                if fd >= 0:
                    os.close(fd)
            if control_w >= 0:
                try:
                    proc.wait(_REAP_SECONDS)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "the subreaper of an unsandboxed command (pid %d) was still running %.0f s after it "
                        "was told to end the command; killing its process group",
                        proc.pid,
                        _REAP_SECONDS,
                    )
                    self._kill(proc.pid, None)
            if init is not None:
                if not init.wait(_REAP_SECONDS):
                    log.warning(
                        "the sandbox's processes were still running %.0f s after SIGKILL (its first process: "
                        "pid %d); returning without waiting for them",
                        _REAP_SECONDS,
                        init.pid,
                    )
                init.close()
            if reaper is not None:
                reaper.send(f"done {command_key}")
            exit_code = proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            space_limit = guard.finish()
            self._remember(watch[0])
        stderr = err.text()
        if space_limit is not None:
            log.warning("%s", space_limit.message)
            stderr = (stderr.rstrip("\n") + "\n" if stderr.strip() else "") + f"[{space_limit.message}]\n"
            exit_code = exit_code or 1
        return CommandResult(
            exit_code=exit_code,
            stdout=out.text(),
            stderr=stderr,
            timed_out=timed_out,
            truncated=out.truncated or err.truncated,
            duration=time.monotonic() - started,
            killed=killed,
            cancelled=cancelled,
            sandboxed=sandboxed,
            space_limit=space_limit,
        )

    def _start_sandbox(
        self,
        proc: subprocess.Popen[bytes],
        info_r: int,
        block_w: int,
        guard: _SpaceGuard,
        tmpfs: Sequence[str],
        stop: Callable[[], bool],
        reaper_key: tuple[_SetupReaper | None, str],
    ) -> _SandboxInit | None:
        """Hold the sandbox's first process (`_SandboxInit`), let the guard open the sandbox's `tmpfs`, then
        let bwrap start the command. Until then every process of bwrap's is in the command's process group,
        blocked before ``--new-session``: when `stop` says so first (cancel, timeout), bwrap stays blocked
        and the group kill reaches all of it. The first process is given to `reaper_key`'s reaper before
        it goes on. None when bwrap ended or never named the process."""
        # A stop waits a while for the name (bwrap writes it as soon as it has made the process), so that the
        # kill can wait for the sandbox's end too.
        give_up = time.monotonic() + _ATTACH_SECONDS
        pid = _read_child_pid(info_r, lambda: stop() and time.monotonic() >= give_up)
        if pid is None:
            return None  # bwrap ended, or it is stopped where it waits
        init = _SandboxInit.hold(pid, proc.pid)
        reaper, key = reaper_key
        if init is not None and reaper is not None and not reaper.send(*init.message(key)):
            self._reaper_lost(reaper)  # this command's first process is not held if this process dies now
        if stop():
            return init  # not let go: killed where it waits
        if tmpfs:
            guard.attach(pid, tmpfs, self.settings.tmp_mb, lambda: proc.poll() is None)
        try:
            os.write(block_w, b"x")
        except OSError:
            pass  # bwrap already ended
        return init

    @staticmethod
    def _kill(pgid: int, init: _SandboxInit | None) -> None:
        """SIGKILL to the command's process group and to the sandbox's first process, whose death ends every
        process of the sandbox (the kernel kills a PID namespace with its first process)."""
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if init is not None:
            init.kill()

"""The sandbox: isolation (network, filesystem, credentials, environment), limits, timeouts and kills.

These run real bubblewrap (installed on the project's machines, see shared notes). A loopback server the
test starts proves that the network is really cut inside while it works outside.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.installs import PackageLayer
from agent.sandbox import BWRAP_MISSING_MESSAGE, Sandbox, SandboxSettings, SandboxUnavailable

PY = sys.executable


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections until the test ends; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.sendall(b"hello\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(timeout=2)
    server.close()


def processes_with(marker: str) -> list[int]:
    """Host PIDs whose command line contains `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(name))
    return found


def start_owner(code: str) -> subprocess.Popen[bytes]:
    """A process of its own running `code` (with the repository importable), that a test can kill."""
    repo = str(Path(__file__).resolve().parents[2])
    return subprocess.Popen([sys.executable, "-c", code], cwd=repo, env={**os.environ, "PYTHONPATH": repo})


def wait_gone(marker: str, seconds: float = 3.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = processes_with(marker)
        if not left:
            return []
        time.sleep(0.05)
    return processes_with(marker)


def unique_sleep() -> tuple[str, str]:
    """A `sleep` argument no other process has, to find the process from the host."""
    seconds = f"{1000 + uuid.uuid4().int % 100000}.{uuid.uuid4().int % 1000:03d}"
    return f"sleep {seconds}", seconds


# -- isolation -----------------------------------------------------------------------------------


def test_network_is_cut_inside_but_works_outside(workdir: Path, loopback_server: int) -> None:
    probe = (
        f"import socket; print(socket.create_connection(('127.0.0.1', {loopback_server}), timeout=3).recv(6))"
    )
    outside = subprocess.run([PY, "-c", probe], capture_output=True, text=True, timeout=10)
    assert outside.returncode == 0 and "hello" in outside.stdout

    result = Sandbox().run([PY, "-c", probe], workdir)
    assert result.sandboxed
    assert result.exit_code != 0
    assert "ConnectionRefusedError" in result.stderr or "OSError" in result.stderr


def test_dns_does_not_resolve_inside(workdir: Path) -> None:
    result = Sandbox().run("getent hosts pypi.org", workdir)
    assert result.exit_code != 0
    assert result.stdout.strip() == ""


def test_workdir_is_writable_the_rest_is_not(workdir: Path, tmp_path: Path) -> None:
    real = tmp_path / "real_workspace"
    real.mkdir()
    (real / "file.py").write_text("original\n")
    # /work (the project's own checkout) lives on the read-only root: writing there must fail.
    target = Path(__file__).resolve().parent / f"sandbox-probe-{uuid.uuid4().hex}"
    result = Sandbox().run(
        f"echo made > made.txt && echo ok; echo x > {target}; echo rc=$?; touch /usr/probe; echo rc=$?",
        workdir,
    )
    assert (workdir / "made.txt").read_text() == "made\n"
    assert "ok" in result.stdout
    assert result.stdout.count("rc=1") == 2, result.stdout
    assert "Read-only file system" in result.stderr
    assert not target.exists()


def test_real_workspace_is_shadowed_by_the_copy(workdir: Path, tmp_path: Path) -> None:
    real = tmp_path / "real_workspace"
    real.mkdir()
    (real / "file.py").write_text("original\n")
    (workdir / "file.py").write_text("copy\n")
    result = Sandbox().run(f"cat {real}/file.py; echo changed > {real}/file.py; pwd", workdir, mount_at=real)
    assert result.stdout.splitlines() == ["copy", str(real)]
    assert (real / "file.py").read_text() == "original\n"
    assert (workdir / "file.py").read_text() == "changed\n"


def test_read_only_binds(workdir: Path, tmp_path: Path) -> None:
    source = tmp_path / "venv"
    source.mkdir()
    (source / "lib.py").write_text("lib\n")
    inside = workdir / ".venv"
    result = Sandbox().run(
        "cat .venv/lib.py; echo x > .venv/lib.py; echo rc=$?", workdir, ro_binds=[(source, inside)]
    )
    assert result.stdout.splitlines() == ["lib", "rc=1"]
    assert (source / "lib.py").read_text() == "lib\n"


def test_root_cannot_remount_the_system_writable(workdir: Path) -> None:
    # Without --cap-drop ALL a root process inside bwrap can do exactly this (checked on bwrap 0.8).
    result = Sandbox().run("mount -o remount,rw / && echo REMOUNTED", workdir)
    assert "REMOUNTED" not in result.stdout
    assert result.exit_code != 0


def test_environment_is_rebuilt_and_scrubbed(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-host")
    monkeypatch.setenv("SOME_HOST_VAR", "host")
    result = Sandbox().run(
        "env",
        workdir,
        env={"ANTHROPIC_API_KEY": "sk-ant-passed", "GITHUB_TOKEN": "ghp_x", "FOO": "bar"},
    )
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert env["FOO"] == "bar"
    assert "sk-ant" not in result.stdout and "ghp_x" not in result.stdout
    assert "SOME_HOST_VAR" not in env
    assert env["HOME"] == "/tmp/home" and env["LANG"] == "C.UTF-8"
    assert os.path.dirname(PY) in env["PATH"].split(":")


def test_credentials_in_home_are_hidden(workdir: Path) -> None:
    # Outside /tmp, which the sandbox replaces with its own: the home must be visible to mean anything.
    home = Path(tempfile.mkdtemp(prefix="agentls-home-", dir="/var/tmp"))
    try:
        (home / ".ssh").mkdir()
        (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
        (home / ".netrc").write_text("machine x password hunter2\n")
        (home / "notes.txt").write_text("visible\n")
        command = f"cat {home}/notes.txt; cat {home}/.ssh/id_ed25519; cat {home}/.netrc; ls -A {home}/.ssh"
        # The home is not mounted at all.
        absent = Sandbox(home=home).run(command, workdir)
        assert absent.stdout == "" and "No such file or directory" in absent.stderr
        # Mounted on purpose (sandbox.extra_ro_paths), its credentials are still hidden.
        mounted = SandboxSettings(extra_ro_paths=[str(home)])
        result = Sandbox(mounted, home=home).run(command, workdir)
        assert "visible" in result.stdout
        assert "PRIVATE KEY" not in result.stdout and "hunter2" not in result.stdout
        # Without hiding, the same command shows them (so the check above can fail).
        shown_settings = SandboxSettings(extra_ro_paths=[str(home)], hidden_home_entries=[])
        shown = Sandbox(shown_settings, home=home).run(command, workdir)
        assert "PRIVATE KEY" in shown.stdout and "hunter2" in shown.stdout
    finally:
        shutil.rmtree(home)


# -- limits --------------------------------------------------------------------------------------


def test_timeout_kills_the_command_and_its_children(workdir: Path) -> None:
    child, marker = unique_sleep()
    parent, parent_marker = unique_sleep()
    started = time.monotonic()
    result = Sandbox().run(f"{child} & {parent}", workdir, timeout=1.0)
    assert result.timed_out and result.killed
    assert time.monotonic() - started < 30  # the commands sleep over 1,000 s: killed at the 1 s timeout
    assert wait_gone(marker) == [] and wait_gone(parent_marker) == []


def test_background_jobs_do_not_outlive_the_command(workdir: Path) -> None:
    child, marker = unique_sleep()
    started = time.monotonic()
    result = Sandbox().run(f"{child} & echo started", workdir)
    assert result.stdout.strip() == "started" and result.exit_code == 0
    assert not result.timed_out
    assert time.monotonic() - started < 30  # the job sleeps over 1,000 s: the command did not wait for it
    assert wait_gone(marker) == []


def test_cancel_kills_the_command(workdir: Path) -> None:
    child, marker = unique_sleep()
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    result = Sandbox().run(f"{child}", workdir, cancel=cancel, timeout=30)
    assert result.cancelled and result.killed and not result.timed_out
    assert result.duration < 25  # killed at the cancel (0.3 s), not the 30 s timeout
    assert wait_gone(marker) == []


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "no-pidfd"])
def test_no_process_outlives_a_cancel_at_any_moment(
    workdir: Path, pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bwrap's --new-session moves the sandbox's first process (pid 1 of its PID namespace) out of the
    process group, and binds it to bwrap (--die-with-parent) only afterwards: a group kill in between left
    it and the command running for good, reparented to init (bubblewrap issue #633). Cancelled before the
    start or from another thread around it, no process of any command is left when `run` returns; without
    pidfds (Linux before 5.3) too."""
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    sandbox = Sandbox()
    markers: list[str] = []
    try:
        for attempt in range(30):
            command, marker = unique_sleep()
            markers.append(marker)
            cancel = threading.Event()
            if attempt % 2 == 0:
                cancel.set()
            else:
                threading.Timer(0.01 * attempt, cancel.set).start()
            result = sandbox.run(command, workdir, cancel=cancel, timeout=30)
            assert result.cancelled and result.killed, (attempt, result)
            assert processes_with(marker) == [], f"attempt {attempt}: left running after run returned"
    finally:
        for pid in [pid for marker in markers for pid in processes_with(marker)]:
            os.kill(pid, signal.SIGKILL)


def test_output_is_capped_keeping_head_and_tail(workdir: Path) -> None:
    sandbox = Sandbox(SandboxSettings(max_output_bytes=1000))
    result = sandbox.run(f"{PY} -c \"print('HEAD'); print('x' * 50000); print('TAIL')\"", workdir)
    assert result.truncated
    assert result.stdout.startswith("HEAD\n")
    assert result.stdout.rstrip().endswith("TAIL")
    assert "[... truncated " in result.stdout
    cut = int(result.stdout.split("[... truncated ")[1].split(" ")[0])
    assert cut == len("HEAD\n") + 50001 + len("TAIL\n") - 1000
    assert len(result.stdout) < 1100


def test_memory_limit(workdir: Path) -> None:
    sandbox = Sandbox(SandboxSettings(memory_mb=200))
    result = sandbox.run([PY, "-c", "x = bytearray(400 * 1024 * 1024); print('allocated')"], workdir)
    assert result.exit_code != 0
    assert "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


RESERVE = """
import mmap
reserved = mmap.mmap(-1, 8 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=0)  # PROT_NONE
print("reserved", len(reserved) >> 30, "GiB")
try:
    bytearray(600 << 20)
except MemoryError:
    print("600 MiB refused")
"""


def test_memory_limit_counts_memory_not_reserved_address_space(workdir: Path) -> None:
    """The JVM and V8 reserve gigabytes of address space they never touch (an 8 GiB PROT_NONE mapping
    here, as Java's class space and WebAssembly memories are): that starts, while using more memory
    than the limit is still refused."""
    sandbox = Sandbox(SandboxSettings(memory_mb=512))
    result = sandbox.run([PY, "-c", RESERVE], workdir)
    assert result.stdout.splitlines() == ["reserved 8 GiB", "600 MiB refused"], result.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_webassembly_runs_under_the_memory_limit(workdir: Path) -> None:
    """Node's own `fetch` (undici) parses HTTP with WebAssembly, whose memory reserves 10 GiB of address
    space: under the default limit a Node project's tests can use both."""
    script = "new WebAssembly.Memory({initial: 1}); console.log(typeof fetch, 'wasm ok')"
    result = Sandbox().run(["node", "-e", script], workdir)
    assert result.stdout.strip() == "function wasm ok", result.stderr


def test_cpu_limit(workdir: Path) -> None:
    sandbox = Sandbox(SandboxSettings(cpu_seconds=1))
    result = sandbox.run([PY, "-c", "while True: pass"], workdir, timeout=20)
    assert not result.timed_out
    assert result.exit_code != 0
    assert result.duration < 10


def test_limits_are_set_in_the_sandbox(workdir: Path) -> None:
    sandbox = Sandbox(SandboxSettings(cpu_seconds=7, memory_mb=512, max_file_mb=3, max_processes=50))
    result = sandbox.run("cat /proc/self/limits", workdir)
    limits = {line[:26].strip(): line[26:].split() for line in result.stdout.splitlines()[1:]}
    assert limits["Max cpu time"][:2] == ["7", "8"]
    assert limits["Max data size"][0] == str(512 * 1024 * 1024)
    assert limits["Max file size"][0] == str(3 * 1024 * 1024)
    # RLIMIT_NPROC counts all of the user's processes, so it is the current count plus the budget.
    assert int(limits["Max processes"][0]) >= 50


def test_file_size_limit(workdir: Path) -> None:
    sandbox = Sandbox(SandboxSettings(max_file_mb=1))
    result = sandbox.run("head -c 3000000 /dev/zero > big.bin; echo rc=$?", workdir)
    assert "rc=0" not in result.stdout
    assert (workdir / "big.bin").stat().st_size <= 1024 * 1024


# -- what commands may write (tmp_mb, workspace_mb) ----------------------------------------------


def test_tmp_var_tmp_and_dev_shm_are_bounded_and_a_full_one_is_named(workdir: Path) -> None:
    """Each of the sandbox's tmpfs holds `tmp_mb`: a command writing past it gets "No space left on
    device" from the kernel, fails, and its result names the place, the limit and the setting. The root
    and /dev (tmpfs too, writable by the command's user) are read-only."""
    sandbox = Sandbox(SandboxSettings(tmp_mb=2))
    for place in ("/tmp", "/var/tmp", "/dev/shm"):
        result = sandbox.run(f"head -c 3000000 /dev/zero > {place}/big; echo written", workdir)
        assert result.stdout == "written\n"  # the shell went on: the kernel refused only the writes
        assert result.exit_code == 1 and not result.killed
        assert result.space_limit is not None and result.space_limit.place == place
        assert result.stderr.splitlines() == [
            "head: error writing 'standard output': No space left on device",
            f"[the sandbox's {place} is full: 2 MiB limit, setting agent.sandbox.tmp_mb; "
            "writes past it failed (No space left on device)]",
        ]
    normal = sandbox.run("head -c 1000000 /dev/zero > /tmp/small && echo ok", workdir)
    assert (normal.exit_code, normal.stdout, normal.stderr, normal.space_limit) == (0, "ok\n", "", None)
    result = sandbox.run("touch /file; touch /dev/file", workdir)
    assert result.stderr.count("Read-only file system") == 2


def test_a_command_filling_the_workspace_copy_is_stopped(workdir: Path) -> None:
    """The workspace copy is a host folder (in /dev/shm by default): files each under the file-size limit
    could fill the host's memory. What commands add past `workspace_mb` stops the command."""
    (workdir / "existing.bin").write_bytes(b"x" * 3 * 1024 * 1024)  # the copy as made: not counted
    sandbox = Sandbox(SandboxSettings(workspace_mb=4, max_file_mb=1))
    fill = "for i in $(seq 1 200); do head -c 1000000 /dev/zero > f$i; done; echo finished"
    started = time.monotonic()
    result = sandbox.run(fill, workdir)
    assert time.monotonic() - started < 10
    assert result.killed and result.exit_code != 0 and "finished" not in result.stdout
    assert result.space_limit is not None and result.space_limit.stopped
    assert result.stderr.splitlines()[-1] == (
        "[the sandbox's workspace copy is full: 4 MiB limit on what commands add, "
        "setting agent.sandbox.workspace_mb; the command was stopped]"
    )
    assert len(list(workdir.glob("f*"))) < 40  # stopped soon after the limit, not at the end
    for extra in workdir.glob("f*"):
        extra.unlink()
    normal = sandbox.run("head -c 900000 /dev/zero > out.bin && echo ok", workdir)
    assert (normal.exit_code, normal.stdout, normal.space_limit) == (0, "ok\n", None)


def test_a_command_making_too_many_files_is_stopped(workdir: Path) -> None:
    """An empty file takes no space, so `tmp_mb` and `workspace_mb` never see a command making millions
    of them, each about 1 KiB of the host's RAM in tmpfs (bwrap 0.8 cannot set a tmpfs's inode count).
    Past `max_files`, in one of the sandbox's tmpfs or in the workspace copy, the command is stopped and
    its result names the place, the limit and the setting."""
    sandbox = Sandbox(SandboxSettings(max_files=1000))
    make = "mkdir -p {}/many && cd {}/many && seq 1 3000 | xargs touch; echo made; sleep 20; echo finished"
    for where, place in (("/tmp", "/tmp"), ("/dev/shm", "/dev/shm"), (".", "workspace copy")):
        started = time.monotonic()
        result = sandbox.run(make.format(where, where), workdir)
        assert time.monotonic() - started < 15, place
        assert result.killed and "finished" not in result.stdout, (place, result.stdout, result.stderr)
        assert result.space_limit is not None and result.space_limit.place == place
        assert result.stderr.splitlines()[-1] == (
            f"[the sandbox's {place} holds too many files: 1,000 limit, setting agent.sandbox.max_files; "
            "the command was stopped]"
        )
    shutil.rmtree(workdir / "many")
    normal = sandbox.run("mkdir few && cd few && seq 1 300 | xargs touch && echo ok", workdir)
    assert (normal.exit_code, normal.stdout, normal.space_limit) == (0, "ok\n", None)


def test_the_package_folder_is_walked_once_not_at_every_command(
    workdir: Path, disk_walks: list[Path]
) -> None:
    """The run's package folder (an extension's `BoundedFolder`) lies in the system's temp folder, whose
    filesystem holds far more than the folder's bound, so every command disk_walks it to learn its size
    (torch's 15,000 files: 0.7 s). Only commands write there: the sandbox keeps an upper bound of its size
    from one command to the next, and a command past the bound is still stopped."""
    layer = PackageLayer(limit_mb=128)
    try:
        (layer.path / "pkg").mkdir()
        for i in range(200):
            (layer.path / "pkg" / f"m{i}.py").write_text("x = 1\n")
        sandbox = Sandbox(SandboxSettings(max_file_mb=1))
        sandbox.extensions.append(layer)
        for _ in range(3):
            assert sandbox.run("ls $PYTHONPATH/pkg | wc -l", workdir).stdout == "200\n"
        assert disk_walks.count(layer.path) == 1, disk_walks
        fill = 'for i in $(seq 1 200); do head -c 1000000 /dev/zero > "$PYTHONPATH/f$i"; done; echo finished'
        result = sandbox.run(fill, workdir)
        assert result.killed and "finished" not in result.stdout
        assert result.stderr.splitlines()[-1] == (
            "[the sandbox's package folder is full: 128 MiB limit, setting agent.install.max_mb; "
            "the command was stopped]"
        )
    finally:
        layer.close()


def _used_mb(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize // (1024 * 1024)


def test_commands_walk_the_copy_only_for_its_size_while_its_filesystem_has_room(
    workdir: Path, tmp_path: Path, disk_walks: list[Path]
) -> None:
    """Adding up a copy's files costs a walk of it (a second or more on a kernel-sized copy): it is done
    once, for the copy's size at its first command. While everything on the filesystem is within the
    bounds, neither the copy nor the session's /tmp is disk_walks again when a command starts."""
    (workdir / "pkg").mkdir()
    (workdir / "pkg" / "mod.py").write_text("x = 1\n")
    session_tmp = tmp_path / "session-tmp"
    session_tmp.mkdir()
    room = _used_mb(workdir) + 65536  # more than the whole filesystem holds now
    sandbox = Sandbox(SandboxSettings(workspace_mb=room, tmp_mb=room))
    for _ in range(3):
        result = sandbox.run("echo x > out.txt; echo y > /tmp/t", workdir, tmp_dir=session_tmp)
        assert (result.exit_code, result.space_limit) == (0, None)
    assert disk_walks == [workdir]


def test_a_copy_not_walked_at_the_start_is_still_stopped_past_its_bound() -> None:
    """The bound holds without the walk at the start: the copy cannot take more than its filesystem's
    used space, so once that passes what the copy may hold the copy is walked and the command stopped."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or _used_mb(shm) > 64:
        pytest.skip("needs /dev/shm with at most 64 MiB used: the test writes 200 MiB past that into it")
    copy = Path(tempfile.mkdtemp(prefix="agentls-test-ws-", dir=shm))
    try:
        (copy / "kept.txt").write_text("kept\n")
        limit = _used_mb(shm) + 8  # the filesystem's used space is within the bound at the start
        sandbox = Sandbox(SandboxSettings(workspace_mb=limit, max_file_mb=1))
        files = limit + 200  # past the bound even if others free 100 MiB of /dev/shm meanwhile
        fill = f"for i in $(seq 1 {files}); do head -c 1000000 /dev/zero > f$i; done; echo finished"
        result = sandbox.run(fill, copy)
        assert result.killed and "finished" not in result.stdout
        assert result.space_limit is not None and result.space_limit.place == "workspace copy"
        assert len(list(copy.glob("f*"))) < files
    finally:
        shutil.rmtree(copy, ignore_errors=True)


# -- without bubblewrap --------------------------------------------------------------------------


def test_missing_bwrap_is_refused_with_the_install_hint(workdir: Path) -> None:
    sandbox = Sandbox(SandboxSettings(bwrap_path=str(workdir / "no-such-bwrap")))
    with pytest.raises(SandboxUnavailable) as info:
        sandbox.run("true", workdir)
    assert str(info.value) == BWRAP_MISSING_MESSAGE
    assert "sudo apt-get install bubblewrap" in str(info.value)
    assert "allow_unsandboxed" in str(info.value)


def test_bwrap_without_user_namespaces_says_what_to_do(workdir: Path, tmp_path: Path) -> None:
    """A bwrap that cannot make a namespace (Ubuntu's AppArmor restriction, a Debian sysctl, a container):
    the message has bwrap's reason once, and the settings to change, Ubuntu's included, by their names."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied.' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable) as info:
        Sandbox(SandboxSettings(bwrap_path=str(fake))).run("true", workdir)
    message = str(info.value)
    assert message.startswith(f"bubblewrap ({fake}) cannot create a sandbox here: bwrap: setting up uid map")
    assert ".." not in message
    assert "sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0" in message
    assert message.endswith("or set agent.sandbox.allow_unsandboxed = true to run commands without isolation")


def test_bwrap_missing_from_path(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        Sandbox().run("true", workdir)


def test_allow_unsandboxed_runs_with_limits_and_warns(
    workdir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-host")
    settings = SandboxSettings(
        bwrap_path=str(workdir / "no-such-bwrap"), allow_unsandboxed=True, memory_mb=300
    )
    sandbox = Sandbox(settings)
    with caplog.at_level(logging.WARNING, logger="agent.sandbox"):
        result = sandbox.run("pwd; env; grep 'Max data size' /proc/self/limits", workdir)
        sandbox.run("true", workdir)
    assert not result.sandboxed
    assert result.stdout.splitlines()[0] == str(workdir)
    home = next(line.split("=", 1)[1] for line in result.stdout.splitlines() if line.startswith("HOME="))
    assert not home.startswith(str(workdir)) and not Path(home).exists()
    assert "sk-ant" not in result.stdout
    assert str(300 * 1024 * 1024) in result.stdout
    warnings = [r for r in caplog.records if "WITHOUT isolation" in r.getMessage()]
    assert len(warnings) == 1


def test_unsandboxed_timeout_kills_the_group(workdir: Path) -> None:
    child, marker = unique_sleep()
    sandbox = Sandbox(SandboxSettings(enabled=False))
    result = sandbox.run(f"{child} & {child}", workdir, timeout=0.5)
    assert result.timed_out and not result.sandboxed
    assert wait_gone(marker) == []


def test_unsandboxed_cancel_kills_a_child_that_left_the_group(workdir: Path) -> None:
    """`setsid` moves the child out of the command's process group (and session): the group kill alone
    missed it, and it ran on, reparented to init. The subreaper adopts and kills it."""
    child, marker = unique_sleep()
    sandbox = Sandbox(SandboxSettings(enabled=False))
    cancel = threading.Event()
    started = workdir / "started"
    # The child writes its mark only once it runs in a session of its own, then sleeps.
    command = f"setsid sh -c 'touch {started}; exec {child}' & wait"
    timer = threading.Thread(target=lambda: (wait_for(started), cancel.set()), daemon=True)
    timer.start()
    try:
        result = sandbox.run(command, workdir, timeout=60, cancel=cancel)
        assert result.cancelled and not result.sandboxed and started.exists()
        assert wait_gone(marker) == []
    finally:
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
def test_an_owner_killed_with_sigkill_takes_its_commands_with_it(workdir: Path, sandboxed: bool) -> None:
    """agentls itself killed (`kill -9`, the OOM killer) while a command runs, one child of which left the
    command's session (`setsid`): nothing of the command may run on. Sandboxed, bwrap's parent-death signal
    ends its PID namespace; unsandboxed, the subreaper's parent-death signal makes it kill every descendant.
    The owner is a process of its own here, so that the test can kill it."""
    if sandboxed and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    child, marker = unique_sleep()
    started = workdir / "started"
    command = f"setsid sh -c 'touch {started}; exec {child}' & {child}"
    owner_code = (
        "from pathlib import Path\n"
        "from agent.sandbox import Sandbox, SandboxSettings\n"
        f"sandbox = Sandbox(SandboxSettings(enabled={sandboxed!r}))\n"
        f"sandbox.run({command!r}, Path({str(workdir)!r}), timeout=600)\n"
    )
    owner = start_owner(owner_code)
    try:
        wait_for(started)
        assert started.exists(), "the command did not start"
        assert len(processes_with(marker)) >= 2, "the command's two sleeps are not both running"
        owner.kill()
        owner.wait(10)
        assert wait_gone(marker, seconds=10) == []
    finally:
        owner.kill()
        owner.wait(10)
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("stop_in", ["hold", "attach"])
def test_an_owner_killed_while_bwrap_sets_up_leaves_nothing_running(workdir: Path, stop_in: str) -> None:
    """bubblewrap#633: bwrap's first process in the sandbox (pid 1 of its PID namespace) sets its own
    parent-death signal only after ``--new-session``; an owner killed before that left it, and then the
    command, running for good, reparented to init. The window is made to last here: the owner (a process of
    its own) stops for good while bwrap waits on ``--block-fd``, and is killed there: just after it learnt
    pid 1 (`hold`: the sandbox reaper holds only the pipe) or once the reaper holds pid 1 too (`attach`,
    where the tmpfs are opened). The command never starts and pid 1 is gone."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    child, marker = unique_sleep()
    started = workdir / "started"
    held = workdir.parent / "held"
    stop = {
        "hold": "def hold(pid, parent):\n    init = original(pid, parent)\n",
        "attach": "def attach(self, pid, *args):\n",
    }[stop_in]
    owner_code = (
        "import time\n"
        "from pathlib import Path\n"
        "import agent.sandbox as sandbox\n"
        f"cls = sandbox._SandboxInit if {stop_in!r} == 'hold' else sandbox._SpaceGuard\n"
        f"original = getattr(cls, {stop_in!r})\n"
        f"{stop}"
        f"    Path({str(held)!r}).write_text(str(pid))\n"
        "    time.sleep(600)\n"
        f"setattr(cls, {stop_in!r}, {stop_in})\n"
        f"sandbox.Sandbox().run({f'touch {started}; {child}'!r}, Path({str(workdir)!r}), timeout=600)\n"
    )
    owner = start_owner(owner_code)
    init, init_stat = 0, ""
    try:
        wait_for(held)
        assert held.exists(), "the owner did not get to hold the sandbox's first process"
        init = int(_written(held))
        init_stat = Path(f"/proc/{init}/stat").read_text()
        assert not _outlives_its_owner(owner, init, init_stat), "the first process outlived its owner"
        assert wait_gone(marker) == [] and not started.exists(), "the command ran without its owner"
    finally:
        owner.kill()
        owner.wait(10)
        if init and _same_process(init, init_stat):
            os.kill(init, signal.SIGKILL)
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


_SECCOMP_HOLD = (
    # In the owner: bwrap reads `--seccomp FD` to its end right after it has read its `--block-fd`, and only
    # then calls setsid and sets its parent-death signal. With the writing end held by the test, the
    # sandbox's first process stays in that window (bubblewrap#633's, after its release) for good.
    "import subprocess\n"
    "import agent.sandbox as sandbox\n"
    "popen = subprocess.Popen\n"
    "def with_seccomp(argv, **kwargs):\n"
    "    if '--block-fd' in argv:\n"
    "        argv = [argv[0], '--seccomp', str(SECCOMP), *argv[1:]]\n"
    "        kwargs['pass_fds'] = (*kwargs['pass_fds'], SECCOMP)\n"
    "    return popen(argv, **kwargs)\n"
    "sandbox.subprocess.Popen = with_seccomp\n"
)


def _released(init: int, outer: int) -> bool:
    """Whether the sandbox's first process `init` has read and closed its ``--block-fd`` (named in the
    command line of bwrap's outer process `outer`)."""
    argv = Path(f"/proc/{outer}/cmdline").read_bytes().split(b"\0")
    block_fd = argv[argv.index(b"--block-fd") + 1].decode()
    return not os.path.lexists(f"/proc/{init}/fd/{block_fd}")


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "no-pidfd"])
def test_an_owner_killed_after_bwrap_is_let_go_leaves_nothing_running(workdir: Path, pidfd: bool) -> None:
    """The rest of bubblewrap#633's window: the sandbox's first process, let go (it has read its
    ``--block-fd``, which it then closes), has not yet called setsid nor set its parent-death signal when the
    owner dies. No pipe holds it there any more: only the sandbox reaper's pidfd of it (without pidfds, its
    pid and start time) can end it. The test holds it in that window (a ``--seccomp`` descriptor that bwrap
    reads to its end there, whose writing end the test keeps), kills the owner, and the first process must
    die and the command never start."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    child, marker = unique_sleep()
    started = workdir / "started"
    held = workdir.parent / "held"
    seccomp_r, seccomp_w = os.pipe()
    owner_code = (
        "import os, time\n"
        "from pathlib import Path\n"
        f"SECCOMP = {seccomp_r}\n"
        + _SECCOMP_HOLD
        + ("" if pidfd else "del os.pidfd_open\n")
        + "hold = sandbox._SandboxInit.hold\n"
        "def holding(pid, parent):\n"
        "    init = hold(pid, parent)\n"
        f"    Path({str(held)!r}).write_text(f'{{pid}} {{parent}}')\n"
        "    return init\n"
        "sandbox._SandboxInit.hold = holding\n"
        f"sandbox.Sandbox().run({f'touch {started}; {child}'!r}, Path({str(workdir)!r}), timeout=600)\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_code],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": repo},
        pass_fds=(seccomp_r,),
    )
    os.close(seccomp_r)
    init, init_stat = 0, ""
    try:
        wait_for(held)
        assert held.exists(), "the owner did not get to hold the sandbox's first process"
        init, outer = (int(word) for word in _written(held).split())
        init_stat = Path(f"/proc/{init}/stat").read_text()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _released(init, outer):
            time.sleep(0.02)
        assert _released(init, outer), "bwrap's first process was never let go"
        assert not _outlives_its_owner(owner, init, init_stat), "the first process outlived its owner"
        assert wait_gone(marker) == [] and not started.exists(), "the command ran without its owner"
    finally:
        owner.kill()
        owner.wait(10)
        if init and _same_process(init, init_stat):
            os.kill(init, signal.SIGKILL)
        os.close(seccomp_w)
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_forked_child_of_the_owner_does_not_keep_its_sandboxes_alive(workdir: Path) -> None:
    """A child the owner forked without exec (a multiprocessing fork worker) shares the owner's
    descriptors; were the reaper's socket among them, the reaper would not see the owner's death until that
    child ends, and a sandbox being set up would run its command meanwhile. The owner forks such a child
    once its reaper runs, then stops for good while bwrap waits on ``--block-fd`` and is killed: with the
    child still alive, the sandbox's first process must end and the command never start. In the child, a
    sandbox starts a reaper of its own."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    child, marker = unique_sleep()
    started = workdir / "started"
    held = workdir.parent / "held"
    forked = workdir.parent / "forked"
    owner_code = (
        "import os, time\n"
        "from pathlib import Path\n"
        "import agent.sandbox as sandbox\n"
        f"work = Path({str(workdir)!r})\n"
        "box = sandbox.Sandbox()\n"
        "assert box.run('true', work).exit_code == 0\n"
        "worker = os.fork()\n"
        "if worker == 0:\n"
        "    result = box.run('echo in-child', work)\n"
        f"    Path({str(forked)!r}).write_text(result.stdout)\n"
        "    time.sleep(600)\n"
        "    os._exit(0)\n"
        "original = sandbox._SpaceGuard.attach\n"
        "def attach(self, pid, *args):\n"
        f"    Path({str(held)!r}).write_text(f'{{pid}} {{worker}}')\n"
        "    time.sleep(600)\n"
        "sandbox._SpaceGuard.attach = attach\n"
        f"box.run({f'touch {started}; {child}'!r}, work, timeout=600)\n"
    )
    owner = start_owner(owner_code)
    init, init_stat, worker = 0, "", 0
    try:
        wait_for(held)
        assert held.exists(), "the owner did not get to hold the sandbox's first process"
        init, worker = (int(word) for word in _written(held).split())
        init_stat = Path(f"/proc/{init}/stat").read_text()
        wait_for(forked)
        assert _written(forked) == "in-child\n"
        outlived = _outlives_its_owner(owner, init, init_stat)
        assert Path(f"/proc/{worker}").exists(), "the forked child ended: the test shows nothing"
        assert not outlived, "the sandbox's first process outlived its owner"
        # The forked child's command line is the owner's, which holds the marker.
        assert set(processes_with(marker)) == {worker} and not started.exists(), "the command ran"
    finally:
        owner.kill()
        owner.wait(10)
        for pid in (worker, init):
            if pid and Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def _reapers() -> list[int]:
    """This process's sandbox reapers (`agent.sandbox_reaper`) that are running."""
    found = []
    for pid in processes_with("sandbox_reaper.py"):
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        if int(stat[1]) == os.getpid() and stat[0] != "Z":
            found.append(pid)
    return found


def test_the_sandbox_reaper_starts_once_and_ends_with_its_sandbox(workdir: Path) -> None:
    """One reaper per sandbox, started by its first command; `close` ends it, and so does a sandbox
    dropped without `close` (the language server makes one per verification)."""
    gc.collect()  # other tests' sandboxes
    others = set(_reapers())
    sandbox = Sandbox()
    assert set(_reapers()) == others
    assert sandbox.run("true", workdir).exit_code == 0
    first = set(_reapers()) - others
    assert len(first) == 1
    assert sandbox.run("true", workdir).exit_code == 0
    assert set(_reapers()) - others == first
    sandbox.close()
    assert set(_reapers()) == others
    dropped = Sandbox()
    assert dropped.run("true", workdir).exit_code == 0
    assert len(set(_reapers()) - others) == 1
    del dropped
    gc.collect()
    assert set(_reapers()) == others


def test_a_killed_sandbox_reaper_is_started_again(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    sandbox = Sandbox()
    try:
        others = set(_reapers())
        assert sandbox.run("true", workdir).exit_code == 0
        (reaper,) = set(_reapers()) - others
        os.kill(reaper, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="agent.sandbox"):
            assert sandbox.run("echo ran", workdir).stdout == "ran\n"
        assert "the sandbox reaper died" in caplog.text
        assert sandbox.run("true", workdir).exit_code == 0
        (again,) = set(_reapers()) - others
        assert again != reaper
    finally:
        sandbox.close()


def _outlives_its_owner(owner: subprocess.Popen[bytes], init: int, init_stat: str) -> bool:
    """Kill `owner` (SIGKILL); whether the sandbox's first process `init` (whose /proc stat line was
    `init_stat`) is still running 10 s later."""
    owner.kill()
    owner.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _same_process(init, init_stat):
        time.sleep(0.05)
    return _same_process(init, init_stat)


def _same_process(pid: int, stat: str) -> bool:
    """Whether `pid` is still the living process whose /proc stat line was `stat` (same start time)."""
    try:
        now = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields, then = now.rpartition(")")[2].split(), stat.rpartition(")")[2].split()
    return fields[19] == then[19] and fields[0] != "Z"


def test_unsandboxed_command_keeps_its_exit_status_and_missing_program(workdir: Path) -> None:
    sandbox = Sandbox(SandboxSettings(enabled=False))
    assert sandbox.run("exit 3", workdir).exit_code == 3
    assert sandbox.run("kill -TERM $$", workdir).exit_code == -signal.SIGTERM
    missing = sandbox.run([str(workdir / "no-such-program")], workdir)
    assert missing.exit_code == 127 and "no-such-program" in missing.stderr


def test_an_unsandboxed_command_gets_no_ignored_signal_or_descriptor_of_its_subreaper(workdir: Path) -> None:
    """The subreaper forks and execs the command itself (not through subprocess): Python's ignored SIGPIPE
    and SIGXFSZ are back to their defaults (a closed pipe and the file size limit end the command), and
    the command holds none of the subreaper's descriptors (its control pipe, its wake-up pipe)."""
    sandbox = Sandbox(SandboxSettings(enabled=False, max_file_mb=1))
    ignored = sandbox.run("grep SigIgn /proc/self/status", workdir).stdout.split()[-1]
    mask = int(ignored, 16)
    assert not mask & (1 << (signal.SIGPIPE - 1)) and not mask & (1 << (signal.SIGXFSZ - 1)), ignored
    result = sandbox.run("ls /proc/self/fd", workdir)
    assert sorted(result.stdout.split(), key=int) == ["0", "1", "2", "3"]  # 3: ls's own listing
    piped = sandbox.run('yes | head -c 2; echo " ${PIPESTATUS[0]}"', workdir)
    assert piped.stdout == f"y\n {128 + signal.SIGPIPE}\n"


def _written(path: Path, seconds: float = 10.0) -> str:
    """The text of `path` once another process has written it (it may exist empty for a moment first)."""
    deadline = time.monotonic() + seconds
    text = path.read_text()
    while not text and time.monotonic() < deadline:
        time.sleep(0.01)
        text = path.read_text()
    return text


def wait_for(path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)

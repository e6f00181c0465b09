"""How the VS Code extension's end-to-end tests (tests/e2e/test_vscode*.py) run: code-server in Debian's
chromium, driven by Playwright.

Each test starts code-server (VS Code's workbench served to a browser; installed from the npm registry by
``editors/vscode/scripts/install-code-server.sh`` into ``$AGENTLS_CI_CACHE``) with the extension's
``.vsix`` installed, opens a copy of ``tests/workspaces/agent_py`` whose ``.vscode/settings.json`` points
``agentls.server.path`` at this Python and ``server.cli``, and clicks through the workbench as a user
would: the light bulb on the stub, "Implement `mean` with agentls", the status bar while the agent works
(against `FakeAnthropic`), the notification, the diff tab, Accept, VS Code's refactor preview. Then it
checks the files on disk. A screenshot of every step goes to
``tests/e2e/artifacts/vscode/<test>/`` (``AGENTLS_E2E_ARTIFACTS`` overrides the folder; git ignores it).

`NEEDS_CODE_SERVER` (each test module's ``pytestmark``) skips the tests, with the reason, when code-server,
Playwright, chromium or the built ``.vsix`` is missing (``.ci/run`` and ``editors/vscode/ci.sh`` provide
them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_server import (
    Reply,
    ScriptItem,
    respond,
    slow,
    text,
    tool_use,
    turn,
)

REPO = Path(__file__).resolve().parents[2]


EXTENSION = REPO / "editors" / "vscode"


WORKSPACE = REPO / "tests" / "workspaces" / "agent_py"


CI_CACHE = Path(os.environ.get("AGENTLS_CI_CACHE") or Path.home() / ".cache" / "agentls-ci")


CODE_SERVER_VERSION = os.environ.get("CODE_SERVER_VERSION", "4.100.3")


CODE_SERVER = (
    CI_CACHE
    / f"code-server-{CODE_SERVER_VERSION}"
    / "node_modules"
    / "code-server"
    / "out"
    / "node"
    / "entry.js"
)


CHROMIUM = os.environ.get("AGENTLS_TEST_CHROMIUM", "/usr/bin/chromium")


ARTIFACTS = Path(os.environ.get("AGENTLS_E2E_ARTIFACTS") or REPO / "tests" / "e2e" / "artifacts") / "vscode"


STATS = "mathx/stats.py"


NEW_TEST = "tests/test_mean_more.py"


EDITOR_TOOL = "str_replace_based_edit_tool"


STUB_BODY = "    raise NotImplementedError\n"


GOOD_BODY = (
    "    if not values:\n"
    '        raise ValueError("mean of no values")\n'
    "    return sum(values) / len(values)\n"
)


NEW_TEST_TEXT = (
    "from mathx.stats import mean\n\n\ndef test_mean_of_two_numbers():\n    assert mean([1, 3]) == 2\n"
)


SUMMARY = "Implemented `mean`: it averages the values and rejects an empty list; added a test."


ACTION = "Implement `mean` with agentls"


SETTINGS: dict[str, Any] = {
    "agentls.server.path": sys.executable,
    "agentls.server.args": ["-m", "server.cli", "serve", "--stdio"],
    "agentls.index.embedding.provider": "none",
    "agentls.agent.maxSteps": 10,
    "agentls.agent.maxReflections": 0,
    "agentls.agent.sandbox.timeoutSeconds": 30,
    # A quiet workbench: no welcome page, no trust prompt, no auto-save (edits must stay unsaved).
    "workbench.startupEditor": "none",
    "security.workspace.trust.enabled": False,
    "files.autoSave": "off",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
}


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _missing() -> str | None:
    """Why this machine cannot run the test, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[browser]' (.ci/run does)"
    if not Path(CHROMIUM).exists():
        return f"chromium is not at {CHROMIUM}: apt-get install chromium (or set AGENTLS_TEST_CHROMIUM)"
    if shutil.which("node") is None:
        return "Node.js is not installed: apt-get install nodejs npm"
    if not CODE_SERVER.exists() or not (CODE_SERVER.parents[4] / ".complete").exists():
        return (
            f"code-server {CODE_SERVER_VERSION} is not installed under {CI_CACHE}: "
            "bash editors/vscode/scripts/install-code-server.sh (.ci/run does)"
        )
    return None


NEEDS_CODE_SERVER = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def create(path: str, file_text: str) -> Reply:
    return tool_use(EDITOR_TOOL, {"command": "create", "path": path, "file_text": file_text})


def once(event: threading.Event, reply: ScriptItem) -> ScriptItem:
    """`reply`, sent once the test sets `event` (at most 120 s after the request arrived)."""

    def answer(_body: object) -> ScriptItem:
        event.wait(120)
        return reply

    return respond(answer)


def agent_script(first_delay: float = 0.0, first_after: threading.Event | None = None) -> list[ScriptItem]:
    """View the stub, replace its body, create a test file, finish; the first reply `first_delay` late, or
    once `first_after` is set (a model still thinking until the test has done what it does during the run)."""
    first: ScriptItem = turn(
        text("Spec: `mean` averages; [] raises ValueError.\nPlan: edit the stub, add a test."),
        tool_use(EDITOR_TOOL, {"command": "view", "path": STATS}),
    )
    if first_after is not None:
        first = once(first_after, first)
    return [
        slow(first_delay, first) if first_delay else first,
        tool_use(
            EDITOR_TOOL, {"command": "str_replace", "path": STATS, "old_str": STUB_BODY, "new_str": GOOD_BODY}
        ),
        create(NEW_TEST, NEW_TEST_TEXT),
        text(SUMMARY),
    ]


@pytest.fixture(scope="module")
def vsix() -> Path:
    """The extension's package: editors/vscode/ci.sh builds it (CI runs it before pytest); rebuilt here
    when a source file is newer and node_modules is there."""
    found = sorted(EXTENSION.glob("agentls-*.vsix"))
    sources = [*EXTENSION.glob("src/**/*.ts"), EXTENSION / "package.json"]
    newest = max(p.stat().st_mtime for p in sources)
    if (not found or found[-1].stat().st_mtime < newest) and (EXTENSION / "node_modules").is_dir():
        subprocess.run(
            "npm run compile && npm run package", shell=True, cwd=EXTENSION, check=True, capture_output=True
        )
        found = sorted(EXTENSION.glob("agentls-*.vsix"))
    if not found:
        pytest.skip("the extension is not built: bash editors/vscode/ci.sh (prints the .vsix path)")
    return found[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Workbench:
    """A code-server with the extension, one chromium page on the workspace, and the screenshot folder."""

    page: Any
    root: Path
    shots: Path
    log: Path
    steps: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        path = self.shots / f"{len(self.steps) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        self.steps.append(path.name)

    def wait(self, what: str, cond: Callable[[], Any], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                value = cond()
                if value:
                    return value
            if time.monotonic() > deadline:
                self.shot("timeout")
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; screenshots in {self.shots}; "
                    f"status bar: {self.status_bar()!r}; notifications: {self.notifications()}; "
                    f"code-server log tail:\n{self.log.read_text()[-2000:]}"
                )
            self.page.wait_for_timeout(250)

    def status_bar(self) -> str:
        return str(self.page.locator("#workbench\\.parts\\.statusbar").inner_text(timeout=2000))

    def notifications(self) -> list[str]:
        return [str(t) for t in self.page.locator(".notification-toast").all_inner_texts()]

    def open_file(self, rel: str) -> None:
        """Open `rel` from the Explorer, as a user clicks it."""
        rows = self.page.locator(".explorer-folders-view .monaco-list-row")
        parts = rel.split("/")
        for folder in parts[:-1]:
            row = rows.filter(has_text=re.compile(rf"^\s*{re.escape(folder)}\s*$"))
            if row.get_attribute("aria-expanded") != "true":
                row.click()
        rows.filter(has_text=re.compile(rf"^\s*{re.escape(parts[-1])}\s*$")).click()
        self.wait(
            f"the editor of {rel}",
            lambda: self.page.locator(f'.tab[data-resource-name="{parts[-1]}"]').count(),
        )
        self.page.locator(".monaco-editor .view-lines").first.click()

    def go_to_line(self, line: int) -> None:
        self.page.keyboard.press("Control+g")
        self.page.wait_for_selector(".quick-input-widget input")
        self.page.keyboard.type(str(line))
        self.page.keyboard.press("Enter")

    def editor_text(self) -> str:
        return str(self.page.locator(".monaco-editor .view-lines").first.inner_text()).replace("\u00a0", " ")

    def diff_text(self) -> str:
        return str(self.page.locator(".monaco-diff-editor").first.inner_text()).replace("\u00a0", " ")

    def light_bulb_action(self, title: str) -> str:
        """Open the light bulb on the cursor's line and pick `title`; returns how the menu was opened."""
        bulb = self.page.locator(".lightBulbWidget")
        how = "click on the light bulb"
        try:
            bulb.first.wait_for(state="visible", timeout=30000)
            bulb.first.click()
        except Exception:
            how = "ctrl+. (the light bulb did not show)"
            self.page.keyboard.press("Control+.")
        menu = self.page.locator(".action-widget")
        self.wait("the code action menu", lambda: menu.is_visible())
        self.wait(f"'{title}' in the menu", lambda: title in menu.inner_text(), timeout=30)
        self.shot("code-actions")
        for _ in range(20):
            focused = menu.locator(".monaco-list-row.focused").get_attribute("aria-label")
            if focused == title:
                self.page.keyboard.press("Enter")
                return how
            self.page.keyboard.press("ArrowDown")
        raise AssertionError(f"could not select {title!r} in {menu.inner_text()!r}")

    def toast_button(self, label: str) -> Any:
        return self.page.locator(".notification-toast .monaco-button", has_text=re.compile(f"^{label}$"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    dest = tmp_path / "agent_py"
    shutil.copytree(WORKSPACE, dest)
    (dest / ".vscode").mkdir()
    (dest / ".vscode" / "settings.json").write_text(json.dumps(SETTINGS, indent=2))
    return dest


@contextlib.contextmanager
def workbench(
    request: pytest.FixtureRequest, vsix: Path, root: Path, tmp_path: Path, env: dict[str, str]
) -> Iterator[Workbench]:
    from playwright.sync_api import sync_playwright

    shots = ARTIFACTS / request.node.name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    print(f"screenshots: {shots}")
    data, extensions = tmp_path / "data", tmp_path / "extensions"
    common = ["--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    install = subprocess.run(
        ["node", str(CODE_SERVER), *common, "--install-extension", str(vsix)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0 and "successfully installed" in install.stdout, (
        install.stdout + install.stderr
    )
    port = free_port()
    log = tmp_path / "code-server.log"
    (tmp_path / "config.yaml").write_text("auth: none\n")
    full_env = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "AGENTLS_CACHE_DIR": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "ANTHROPIC_AUTH_TOKEN": "",
    }
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [
                "node", str(CODE_SERVER), *common,
                "--config", str(tmp_path / "config.yaml"),
                "--auth", "none",
                "--bind-addr", f"127.0.0.1:{port}",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                str(root),
            ],
            env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "HTTP server listening" not in log.read_text():
            assert server.poll() is None, f"code-server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"code-server did not start:\n{log.read_text()}"
            time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_default_timeout(30000)
                page.goto(f"http://127.0.0.1:{port}/?folder={root}")
                page.wait_for_selector(".monaco-workbench .explorer-folders-view", timeout=90000)
                yield Workbench(page=page, root=root, shots=shots, log=log)
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def start_run(wb: Workbench) -> str:
    """Open the stub, put the cursor in `mean`, and pick "Implement `mean` with agentls" in the light bulb."""
    wb.open_file(STATS)
    lines = (wb.root / STATS).read_text().splitlines()
    wb.go_to_line(lines.index(STUB_BODY.rstrip("\n")) + 1)
    # On the code: VS Code shows no light bulb while the cursor is in a line's indentation (column 1, where
    # Go to Line puts it), so the menu was only ever opened by ctrl+. after the bulb's 30 s wait ran out.
    wb.page.keyboard.press("End")
    wb.shot("stub-open")
    return wb.light_bulb_action(ACTION)


def wait_for_proposal(wb: Workbench) -> None:
    """The status bar shows the run while it goes; then the notification offers Show Diff."""
    wb.wait("the run in the status bar", lambda: "Implement `mean`" in wb.status_bar(), timeout=60)
    wb.shot("run-in-status-bar")
    wb.wait("the proposal notification", lambda: wb.toast_button("Show Diff").is_visible(), timeout=180)
    toast = next(t for t in wb.notifications() if "Show Diff" in t)
    assert "mean" in toast, toast
    wb.shot("proposal-notification")


def show_diff(wb: Workbench) -> None:
    wb.toast_button("Show Diff").click()
    wb.wait("the diff tab", lambda: wb.page.locator(".monaco-diff-editor").first.is_visible())
    # One tab opens per file, in no fixed order: once both are open, bring the stub's diff to the front.
    tabs = wb.page.locator(".tabs-container .tab", has_text="agentls proposal")
    wb.wait("both diff tabs", lambda: tabs.count() == 2)
    stub_diff_in_front(wb)


def stub_diff_in_front(wb: Workbench) -> None:
    wb.page.locator(".tabs-container .tab", has_text="stats.py ↔").first.click()
    active = wb.page.locator(".tabs-container .tab.active")
    wb.wait("the stub's diff in front", lambda: "stats.py ↔" in active.first.inner_text())
    wb.wait("the proposal's text in the diff", lambda: "sum(values) / len(values)" in wb.diff_text())
    wb.shot("diff-tab")


def title_action(wb: Workbench, label: str) -> None:
    wb.page.locator(f'.editor-actions a[aria-label^="{label}"]').first.click()


def refactor_preview(wb: Workbench) -> Any:
    return wb.page.locator(".part.panel").filter(has_text="REFACTOR PREVIEW")


def confirm_refactor_preview(wb: Workbench) -> list[str]:
    """VS Code previews an edit whose annotations need confirmation: it lists the files; Apply.

    Returns the checkbox states of the preview's entries (`aria-checked` of each), as the user saw them.
    """
    panel = refactor_preview(wb)
    apply = panel.locator(".monaco-button", has_text=re.compile("^Apply$"))
    wb.wait("the refactor preview", lambda: apply.first.is_visible(), timeout=60)
    wb.wait("the files in the refactor preview", lambda: "stats.py" in panel.first.inner_text())
    (wb.shots / "refactor-preview.html").write_text(panel.first.inner_html())
    files = panel.locator('.monaco-list-row[aria-level="1"]')
    checked = [
        f"{f.get_attribute('aria-label')}: {f.locator('input.edit-checkbox').is_checked()}"
        for f in files.all()
    ]
    wb.shot("refactor-preview")
    # Edits that need confirmation come unticked: the user ticks each file, as VS Code asks, then Apply.
    for f in files.all():
        box = f.locator("input.edit-checkbox")
        if not box.is_checked():
            box.click()
    wb.wait(
        "every file ticked", lambda: all(f.locator("input.edit-checkbox").is_checked() for f in files.all())
    )
    wb.shot("refactor-preview-ticked")
    apply.first.click()
    return checked


def pytest_in(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip


OLD_DOC = '    """Limit `value` to the range [low, high]."""'


NEW_DOC = '    """Limit `value` to the range [low, high], both included."""'


def two_hunk_script() -> list[ScriptItem]:
    """One file, two hunks far apart: `clamp`'s docstring (line 7) and the stub's body (line 19)."""
    return [
        tool_use(EDITOR_TOOL, {"command": "view", "path": STATS}),
        tool_use(
            EDITOR_TOOL, {"command": "str_replace", "path": STATS, "old_str": STUB_BODY, "new_str": GOOD_BODY}
        ),
        tool_use(
            EDITOR_TOOL, {"command": "str_replace", "path": STATS, "old_str": OLD_DOC, "new_str": NEW_DOC}
        ),
        text(SUMMARY),
    ]


def palette_command(wb: Workbench, title: str) -> None:
    """Run a command from the palette by its title, as a user types it."""
    wb.page.keyboard.press("F1")
    box = wb.page.locator(".quick-input-widget input")
    wb.wait("the command palette", lambda: box.first.is_visible(), timeout=30)
    box.first.fill(f">{title}")
    # the row of exactly this command ("Accept Proposal" also matches "Accept and Commit Proposal…")
    label = wb.page.locator(".label-name", has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))
    row = wb.page.locator(".quick-input-widget .monaco-list-row").filter(has=label)
    wb.wait(f"'{title}' in the palette", lambda: row.count(), timeout=30)
    row.first.click()


def clear_notifications(wb: Workbench) -> None:
    palette_command(wb, "Notifications: Clear All Notifications")
    wb.wait("no notification", lambda: not wb.notifications(), timeout=10)


def toast_messages(wb: Workbench) -> list[str]:
    """The text of each notification shown, as the user reads it (without its source and buttons)."""
    rows = wb.page.locator(".notification-toast .notification-list-item-message")
    return [str(t).strip() for t in rows.all_inner_texts()]


def said_once(shown: list[str], what: str) -> str:
    """The one notification containing `what`, checked to say agentls and its proposal once each."""
    said = [t for t in shown if what in t]
    assert len(said) == 1, shown
    text = said[0]
    found = re.search(r"proposal (\S+?):? ", text)
    assert found is not None, text
    assert text.count(f"proposal {found.group(1)}") == 1, text  # "could not accept proposal X: ... X" no more
    assert text.count("agentls") == 1 and text.startswith("agentls"), text  # no "agentls: agentls did not"
    return text


def server_pids(cache: Path) -> set[int]:
    """The agentls servers code-server started for this test: found by the cache folder it gave them."""
    marker = f"AGENTLS_CACHE_DIR={cache}".encode()
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ and b"server.cli" in argv and b"serve" in argv:
            pids.add(int(proc.name))
    return pids

"""Shared pieces of the agent loop tests: a workspace copy, scripted replies, and an agent wired to the
fake Anthropic server through the real SDK, a real overlay, the real bubblewrap sandbox and (optionally)
a real index.

Settings are tuned for speed: tiny retry delays and short timeouts, so the whole set runs in under a
minute on a loaded two-core machine.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import AgentSettings, ModelSettings
from agent.loop import Agent, AgentEvent, RunResult
from agent.models.anthropic import AnthropicModel
from agent.overlay import Overlay
from agent.redaction import RedactingModel
from agent.roles import SOLO, Role
from agent.sandbox import Sandbox, SandboxSettings
from agent.task import Task
from agent.task_builders import implement_task
from agent.tools.ask import AskCallback
from agent.transcript import Transcript
from indexing.secrets import Redactor
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, Reply, text, tool_use

WORKSPACES = Path(__file__).resolve().parents[1] / "workspaces"
AGENT_PY = WORKSPACES / "agent_py"
EDITOR = "str_replace_based_edit_tool"
SECRET = "sk-live-SECRET-do-not-send-7f3a9c"
"""The value in the workspace's .env: it must never reach the model, the transcript or the network."""

FAST_MODEL = ModelSettings(
    max_tokens=1024,
    timeout=5.0,
    max_retries=3,
    retry_deadline_seconds=10.0,
    retry_base_delay=0.01,
    retry_max_delay=0.05,
)

STUB_BODY = "    raise NotImplementedError\n"
GOOD_BODY = "\n".join(
    [
        "    if not values:",
        '        raise ValueError("mean of no values")',
        "    return sum(values) / len(values)",
        "",
    ]
)
# Forgets the empty case: ZeroDivisionError instead of ValueError, so one test fails.
BAD_BODY = "    return sum(values) / len(values)\n"


def fast_settings(**overrides: Any) -> AgentSettings:
    """AgentSettings for tests: fast retries, short command timeouts."""
    values: dict[str, Any] = {
        "model": FAST_MODEL,
        "sandbox": SandboxSettings(timeout_seconds=15),
        "verify_timeout": 60,
    }
    values.update(overrides)
    return AgentSettings(**values)


def copy_workspace(dest: Path) -> Path:
    """A copy of tests/workspaces/agent_py with a secret .env beside the code."""
    shutil.copytree(AGENT_PY, dest)
    (dest / ".env").write_text(f"API_TOKEN={SECRET}\n")
    return dest


def mean_task(root: Path) -> Task:
    """Implement `mathx.stats.mean` (the stub with a docstring and a doctest)."""
    text_ = (root / "mathx" / "stats.py").read_text()
    line = text_.splitlines().index("def mean(values: list[float]) -> float:") + 1
    return implement_task(root, text_, "mathx/stats.py", line)


# -- scripted replies --------------------------------------------------------------------------------


def view(path: str = "mathx/stats.py", **extra: Any) -> Reply:
    return tool_use(EDITOR, {"command": "view", "path": path, **extra})


def replace(old: str, new: str, path: str = "mathx/stats.py") -> Reply:
    return tool_use(EDITOR, {"command": "str_replace", "path": path, "old_str": old, "new_str": new})


def bash(command: str) -> Reply:
    return tool_use("bash", {"command": command})


def done(summary: str = "Implemented `mean`: it averages the values and rejects an empty list.") -> Reply:
    return text(summary)


# -- the harness -------------------------------------------------------------------------------------


@dataclass
class Harness:
    """An agent factory bound to one fake server and one workspace."""

    fake: FakeAnthropic
    root: Path
    runs_dir: Path
    events: list[AgentEvent] = field(default_factory=list)
    index: Any = None

    def agent(
        self,
        settings: AgentSettings | None = None,
        *,
        ask: AskCallback | None = None,
        cancel: threading.Event | None = None,
        on_event: Callable[[AgentEvent], None] | None = None,
        api_key: str = FAKE_API_KEY,
        buffers: Mapping[str, tuple[str, int]] | None = None,
        role: Role = SOLO,
        secrets: Redactor | None = None,
    ) -> Agent:
        """With `secrets`, the model is wrapped in a `RedactingModel`, as in a real run."""
        settings = settings or fast_settings()
        model: Any = AnthropicModel(settings.model, api_key=api_key, base_url=self.fake.url)
        if secrets is not None:
            model = RedactingModel(model, secrets)

        def record(event: AgentEvent) -> None:
            self.events.append(event)
            if on_event is not None:
                on_event(event)

        return Agent(
            model,
            settings,
            root=self.root,
            overlay=Overlay(self.root, buffers),
            sandbox=Sandbox(settings.sandbox),
            index=self.index,
            ask=ask,
            on_event=record,
            cancel=cancel,
            transcript=Transcript(self.runs_dir, redact=[api_key]),
            role=role,
        )

    def run(
        self, task: Task | None = None, settings: AgentSettings | None = None, **kwargs: Any
    ) -> RunResult:
        return self.agent(settings, **kwargs).run(task or mean_task(self.root))

    def bodies_text(self) -> str:
        """Every request body the fake received, as one JSON string (to search for leaks)."""
        return "\n".join(json.dumps(dict(r.body), default=str) for r in self.fake.requests)

    def tool_results(self, request_index: int) -> list[Mapping[str, Any]]:
        """The tool_result blocks of the last user turn of one /v1/messages request."""
        body = self.fake.message_requests[request_index].body
        last = body["messages"][-1]
        assert last["role"] == "user"
        return [b for b in last["content"] if isinstance(b, Mapping) and b.get("type") == "tool_result"]

    def transcript_records(self, result: RunResult) -> list[dict[str, Any]]:
        assert result.transcript_path is not None
        return [json.loads(line) for line in result.transcript_path.read_text().splitlines()]


def result_text(block: Mapping[str, Any]) -> str:
    """The text of a tool_result block (a string, or text blocks)."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content or [])


@dataclass
class LoopbackListener:
    """A TCP server on 127.0.0.1 outside the sandbox, counting connections and bytes it receives."""

    port: int = 0
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)


@contextmanager
def loopback_listener() -> Iterator[LoopbackListener]:
    state = LoopbackListener()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    state.port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            state.connections += 1
            conn.settimeout(0.5)
            try:
                while chunk := conn.recv(65536):
                    state.received += chunk
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(2)
        server.close()

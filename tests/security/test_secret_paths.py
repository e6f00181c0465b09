"""Every path a secret value can take to the model, the transcript or the index, against the usual formats.

A workspace (a git repository) holds the cases: known key formats (AWS, GitHub, Anthropic, OpenAI, Slack, a
private key, a JSON web token), values given unquoted as ``.env`` files and ``env`` print them, values
base64, hex or percent-encoded, values split across lines, a key in a commit message and one in a file
name, a ``.env`` file. They are in a file of the working tree, in a file an older commit added and the
last one removed, and in a ticket of an MCP server. One agent run (the real sandbox, git, the MCP
tickets server, the fake Messages API) then reads them through each of its tools: the editor's view,
bash (``cat``, ``ls``, ``env``), run_tests (a test that prints them and fails), git_show, git_log with
patches, git_diff, the MCP tool's text, and an MCP screenshot whose PNG text chunk holds a key. The
user's own ANTHROPIC_API_KEY is in agentls' environment. Each value is looked for in what the model got
from each tool, in the transcript (its JSON lines and image files) and in the index.

`python -m pytest tests/security/test_secret_paths.py -n 0 -s` prints the table of cases x paths
(``-`` where a case does not take that path); BENCHMARKS.md (session 21) has it before and after.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from agent.config import AgentSettings
from agent.loop import Agent
from agent.mcp.trust import TRUST_FILE, McpTrust
from agent.models.anthropic import AnthropicModel
from agent.overlay import Overlay
from agent.redaction import RedactingModel
from agent.sandbox import Sandbox
from agent.task_builders import run_task
from agent.transcript import Transcript
from indexing.secrets import Redactor
from server.cli import main
from server.settings import load_settings
from tests.agent.agent_harness import EDITOR, fast_settings
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, text, tool_use

SERVER = Path(__file__).resolve().parents[1] / "fakes" / "mcp_tickets_server.py"

# Made-up values in each format (none is a real key); built from pieces so no scanner takes this file.
AKIA = "AKIA" + "Z4XQ7M2LPR5TWK3N"
AWS_SECRET = "Tq8vR2mXw9LpZ3nK7bY4" + "hJ6fD1sG5aQ0eC8uV2iO"
GITHUB = "ghp_" + "R8tYq2Lm4Xv9Nb3Kc7Jd1Hf6Gs5Ta0Wr2EyUi"
GITHUB_B64 = "ghp_" + "Mn4Bv7Cx2Zl9Kj5Hg3Fd8Sa1Qw6Er0Ty4UiOp"
ANTHROPIC = (
    "sk-ant-api03-" + "Xq9vR3mTz8LpW2nK7bY4hJ6fD1sG5aQ0eC8uV2iOxYz4bN7mK1pL3qR5tW9vZ2cF6hJ8kM0nP4sU7wY1aD3gAA"
)
OPENAI = (
    "sk-proj-" + "Aq9vR3mTz8LpW2nK7bY4hJ6fD1sG5aQ0eC8uV2iOxYz4bN7mK1pL3qR5T3BlbkFJtW9vZ2cF6hJ8kM0nP4sU7wY1"
)
OPENAI_OLD = "sk-" + "Bq9vR3mTz8LpW2nK7bY4" + "T3BlbkFJ" + "hJ6fD1sG5aQ0eC8uV2iO"
SLACK = "xoxb-" + "2384729384-2938475928374-Xq9vR3mTz8LpW2nK7bY4hJ6f"
SLACK_HOOK = "T02AB7D1234/B03EF5H5678/" + "Kp3vR8mTz2LqW7nK4bY9hJ1f"
PRIVATE_KEY = "MIIEowIBAAKCAQEAq9vR3mTz8LpW2nK7bY4hJ6fD1sG5aQ0eC8uV2iOxYz4bN7mK1pL3"
STRIPE_HEX = "sk_live_" + "51HxYzAbCdEfGhIjKlMnOpQr"
PASSWORD_PCT = "p4/Ss+w0rd/Zq8vR2mXw9LpZ"
SPLIT_SHELL = (
    "sk-ant-api03-" + "Sh3vR8mTz2LqW7nK4bY9hJ1fD6sG5aQ0eC8uV2iOxYz4bN7mK1pL3qR5tW9vZ2cF6hJ8kM0nP4sU7wY1aD3gAA"
)
SPLIT_PY = (
    "sk-ant-api03-" + "Py7vR8mTz2LqW7nK4bY9hJ1fD6sG5aQ0eC8uV2iOxYz4bN7mK1pL3qR5tW9vZ2cF6hJ8kM0nP4sU7wY1aD3gAA"
)
JWT = (
    "eyJhbGciOiJIUzI1NiJ9."
    + "eyJzdWIiOiJhZ2VudGxzLXRlc3QifQ."
    + "Xq9vR3mTz8LpW2nK7bY4hJ6fD1sG5aQ0eC8uV2iOxYz"
)
DB_PASSWORD = "Rt5vQ8mXz2Lp9Wn"
COMMIT_KEY = "ghp_" + "Cm7tYq2Lm4Xv9Nb3Kc7Jd1Hf6Gs5Ta0Wr2EyZz"
NAME_KEY = "AKIA" + "N4M3XQ7M2LPR5TWK"
DOTENV = "Dv9tR2mXw9LpZ3nK7bY4hJ6fD1sG5aQ0eC8u"
PNG_KEY = "ghp_" + "Pn9tYq2Lm4Xv9Nb3Kc7Jd1Hf6Gs5Ta0Wr2EyPn"
USER_KEY = (
    "sk-ant-api03-" + "Us3rR8mTz2LqW7nK4bY9hJ1fD6sG5aQ0eC8uV2iOxYz4bN7mK1pL3qR5tW9vZ2cF6hJ8kM0nP4sU7wY1aD3gAA"
)


@dataclass(frozen=True)
class Case:
    name: str
    needles: tuple[str, ...]
    """What must not appear: the value, its encoded form, each half of a split value."""
    paths: tuple[str, ...]


TEXT_PATHS = ("view", "bash", "run_tests", "git_show", "git_log -p", "git_diff", "mcp text", "index")

CASES_TEXT = "\n".join(
    [
        f"AWS_ACCESS_KEY_ID={AKIA}",
        f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
        f"GITHUB_TOKEN={GITHUB}",
        f"ANTHROPIC_API_KEY={ANTHROPIC}",
        f"OPENAI_API_KEY={OPENAI}",
        f"legacy key: {OPENAI_OLD}",
        f"slack bot {SLACK}",
        f"webhook https://hooks.slack.com/services/{SLACK_HOOK}",
        "-----BEGIN RSA PRIVATE KEY-----",
        PRIVATE_KEY,
        "-----END RSA PRIVATE KEY-----",
        "encoded: " + base64.b64encode(f"GH_TOKEN={GITHUB_B64}".encode()).decode(),
        "hex: " + STRIPE_HEX.encode().hex(),
        "query: https://api.example.org/v1/login?body="
        + quote(json.dumps({"password": PASSWORD_PCT}), safe=""),
        f"export ANTHROPIC_KEY={SPLIT_SHELL[:50]}\\",
        f"{SPLIT_SHELL[50:]}",
        f'KEY = ("{SPLIT_PY[:50]}"',
        f'       "{SPLIT_PY[50:]}")',
        f"Authorization: Bearer {JWT}",
        f"DATABASE_URL=postgres://app:{DB_PASSWORD}@db.internal:5432/app",
        "",
    ]
)

CASES = (
    Case("AWS key pair (unquoted)", (AKIA, AWS_SECRET), TEXT_PATHS),
    Case("GitHub token", (GITHUB,), TEXT_PATHS),
    Case("Anthropic key", (ANTHROPIC,), TEXT_PATHS),
    Case("OpenAI project key", (OPENAI,), TEXT_PATHS),
    Case("OpenAI older key", (OPENAI_OLD,), TEXT_PATHS),
    Case("Slack bot token", (SLACK,), TEXT_PATHS),
    Case("Slack webhook", (SLACK_HOOK[-24:],), TEXT_PATHS),
    Case("RSA private key", (PRIVATE_KEY,), TEXT_PATHS),
    Case(
        "base64 of a token",
        (GITHUB_B64, base64.b64encode(f"GH_TOKEN={GITHUB_B64}".encode()).decode()[20:44]),
        TEXT_PATHS,
    ),
    Case("hex of a Stripe key", (STRIPE_HEX, STRIPE_HEX.encode().hex()[16:48]), TEXT_PATHS),
    Case("percent-encoded password", (PASSWORD_PCT, quote(PASSWORD_PCT, safe="")), TEXT_PATHS),
    Case("split: shell backslash", (SPLIT_SHELL[:50], SPLIT_SHELL[50:]), TEXT_PATHS),
    Case("split: Python strings", (SPLIT_PY[:50], SPLIT_PY[50:]), TEXT_PATHS),
    Case("JWT bearer header", (JWT.rsplit(".", 1)[1],), TEXT_PATHS),
    Case("password in a URL", (DB_PASSWORD,), TEXT_PATHS),
    Case("key in a commit message", (COMMIT_KEY,), ("git_show", "git_log -p")),
    Case("key in a file name", (NAME_KEY,), ("bash", "git_show", "git_log -p", "git_diff", "index")),
    Case(".env file", (DOTENV,), ("view", "bash", "git_show", "git_log -p", "git_diff", "index")),
    Case("key in a PNG text chunk", (PNG_KEY,), ("mcp image",)),
    Case("user's ANTHROPIC_API_KEY", (USER_KEY,), ("bash",)),
)
PATHS = (*TEXT_PATHS, "mcp image", "transcript")
KNOWN = frozenset(
    {
        # The index's path columns keep a file's path (it is how the file is found again: the chunks,
        # symbols and files tables, the files-state and the walk's snapshot hold it; the name is on disk
        # anyway). The text made of the path is redacted: the searched text, what embedding and re-ranking
        # models read (indexing.secrets.redact_path, tests/indexing/test_secret_index.py).
        "key in a file name via index",
    }
)
"""Where a value is kept, on this machine only: printed as LEAK (known) in the table, not a failure."""

TEST_FILE = """\
from pathlib import Path


def test_prints_the_settings() -> None:
    print(Path(__file__).parent.parent.joinpath("cases.txt").read_text())
    assert False, "printed"
"""


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _workspace(root: Path, tickets: Path) -> Path:
    """The repository: commit 1 adds old_cases.txt, a .env, a key-named file (its message holds a key);
    commit 2 removes them; the working tree has cases.txt, a .env and a test that prints cases.txt."""
    (root / "tests").mkdir(parents=True)
    (root / "app.py").write_text('def greet(name: str) -> str:\n    return f"hello {name}"\n')
    (root / "tests" / "test_cases.py").write_text(TEST_FILE)
    (root / "agentls.toml").write_text(
        f'[mcp.servers.tickets]\ncommand = "{sys.executable}"\nargs = ["{SERVER}"]\n'
        f'env = {{ TICKETS_MEDIA = "1", TICKETS_FILE = "{tickets}" }}\n'
    )
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "start")
    (root / "old_cases.txt").write_text(CASES_TEXT)
    (root / ".env").write_text(f"SECRET_TOKEN={DOTENV}\n")
    (root / "keys").mkdir()
    (root / "keys" / f"{NAME_KEY}.txt").write_text("the deploy user's key\n")
    _git(root, "add", "-A", "-f")
    _git(root, "commit", "-q", "-m", f"add the deploy settings (token {COMMIT_KEY})")
    _git(root, "rm", "-q", "-r", "old_cases.txt", ".env")
    _git(root, "commit", "-q", "-m", "remove the settings from the repository")
    (root / "cases.txt").write_text(CASES_TEXT)
    (root / ".env").write_text(f"SECRET_TOKEN={DOTENV}\n")
    return root


CALLS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("view", EDITOR, {"command": "view", "path": "cases.txt"}),
    ("view", EDITOR, {"command": "view", "path": ".env"}),
    ("bash", "bash", {"command": "cat cases.txt; cat .env; ls -R keys; git log -p 2>&1 | head -5"}),
    (
        "bash",
        "bash",
        {"command": "env; tr '\\0' '\\n' < /proc/self/environ; tr '\\0' '\\n' < /proc/1/environ"},
    ),
    ("run_tests", "run_tests", {"path": "tests/test_cases.py"}),
    ("git_show", "git_show", {"rev": "HEAD~1"}),
    ("git_log -p", "git_log", {"patch": True, "max_count": 5}),
    ("git_diff", "git_diff", {"mode": "refs", "base": "HEAD~2", "head": "HEAD~1"}),
    ("mcp text", "mcp__tickets__lookup_ticket", {"ticket_id": "T-9"}),
    ("mcp image", "mcp__tickets__screenshot", {"width": 4, "height": 3, "comment": "T-png"}),
)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _leaks(case: Case, blob: str | bytes) -> bool:
    data = blob if isinstance(blob, bytes) else blob.encode("utf-8", "surrogatepass")
    return any(needle.encode() in data for needle in case.needles)


def _index(ws: Path, cache: Path, fake: FakeAnthropic) -> list[Path]:
    env = {"ANTHROPIC_API_KEY": FAKE_API_KEY, "ANTHROPIC_BASE_URL": fake.url, "AGENTLS_CACHE_DIR": str(cache)}
    done = CliRunner().invoke(main, ["index", str(ws)], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return [p for p in (cache / "index").rglob("*") if p.is_file()]


def _run(fake: FakeAnthropic, ws: Path, runs: Path) -> dict[str, list[Any]]:
    """The agent run; what each path gave the model (every tool_result block of its calls)."""
    loaded = load_settings(ws)
    mcp = loaded.settings.agent.mcp
    McpTrust(runs.parent / TRUST_FILE).remember(ws, "tickets", mcp.servers["tickets"])
    settings: AgentSettings = fast_settings(mcp=mcp, verify=False, max_steps=len(CALLS) + 2)
    secrets = Redactor(b"k" * 32)
    fake.enqueue(*(tool_use(name, input, id=f"toolu_{n}") for n, (_, name, input) in enumerate(CALLS)))
    fake.enqueue(text("Read them all."))
    model = RedactingModel(AnthropicModel(settings.model, api_key=FAKE_API_KEY, base_url=fake.url), secrets)
    agent = Agent(
        model,
        settings,
        root=ws,
        overlay=Overlay(ws),
        sandbox=Sandbox(settings.sandbox),
        transcript=Transcript(runs, redact=[FAKE_API_KEY, USER_KEY], secrets=secrets),
    )
    result = agent.run(run_task("Read the deployment settings", root=ws))
    assert result.status in ("no_changes", "proposed"), result.error
    given: dict[str, list[Any]] = {path: [] for path, _, _ in CALLS}
    for request in fake.message_requests:
        for message in request.body["messages"]:
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, Mapping) and block.get("type") == "tool_result":
                    n = int(str(block["tool_use_id"]).removeprefix("toolu_"))
                    given[CALLS[n][0]].append(block)
    assert all(given.values()), {path: len(blocks) for path, blocks in given.items()}
    return given


def _image_sent(blocks: list[Any]) -> bool:
    return any(
        isinstance(part, Mapping) and part.get("type") == "image"
        for block in blocks
        for part in (block["content"] if isinstance(block["content"], list) else [])
    )


def test_no_case_reaches_the_model_the_transcript_or_the_index_by_any_path(
    fake_anthropic: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = tmp_path / "tickets.json"
    tickets.write_text(
        json.dumps(
            {"T-9": "T-9: the deploy fails with these settings:\n" + CASES_TEXT, "T-png": f"token={PNG_KEY}"}
        )
    )
    ws = _workspace(tmp_path / "ws", tickets)
    monkeypatch.setenv("ANTHROPIC_API_KEY", USER_KEY)  # the user's own key, in agentls' environment
    monkeypatch.setenv("OPENAI_API_KEY", USER_KEY)
    started = time.monotonic()
    index_files = _index(ws, tmp_path / "cache", fake_anthropic)
    indexed = time.monotonic()
    given = _run(fake_anthropic, ws, tmp_path / "runs")
    ran = time.monotonic()
    transcript = "\n".join(
        "\n".join(_strings(json.loads(line)))
        for path in (tmp_path / "runs").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ).encode()
    transcript += b"".join(p.read_bytes() for p in (tmp_path / "runs").rglob("images/*"))
    index = b"".join(p.read_bytes() for p in index_files)

    table: dict[str, dict[str, str]] = {}
    leaked: list[str] = []
    known: list[str] = []
    for case in CASES:
        row: dict[str, str] = {}
        for path in PATHS:
            if path == "transcript":
                leak = _leaks(case, transcript)
            elif path not in case.paths:
                row[path] = "-"
                continue
            elif path == "index":
                leak = _leaks(case, index)
            elif path == "mcp image":
                leak = _image_sent(given[path]) or _leaks(case, "\n".join(_strings(given[path])))
            else:
                leak = _leaks(case, "\n".join(_strings(given[path])))
            where = f"{case.name} via {path}"
            row[path] = ("LEAK (known)" if where in KNOWN else "LEAK") if leak else "ok"
            if leak:
                (known if where in KNOWN else leaked).append(where)
        table[case.name] = row
    width = max(len(c.name) for c in CASES)
    print("\n" + "case".ljust(width) + " | " + " | ".join(PATHS))
    for name, row in table.items():
        print(name.ljust(width) + " | " + " | ".join(row[p].ljust(len(p)) for p in PATHS))
    print(f"{time.monotonic() - started:.1f} s: index {indexed - started:.1f} s, run {ran - indexed:.1f} s")
    assert not leaked, leaked
    # What holds no value still reaches the model: the test's output, the history, the ticket.
    assert "printed" in "\n".join(_strings(given["run_tests"]))
    assert "remove the settings from the repository" in "\n".join(_strings(given["git_log -p"]))
    assert "the deploy fails with these settings" in "\n".join(_strings(given["mcp text"]))


SHAPES = {
    "env output": (f"HOME=/root\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\nPATH=/usr/bin\n", AWS_SECRET),
    "aws credentials file": (f"[default]\naws_secret_access_key = {AWS_SECRET}\n", AWS_SECRET),
    "yaml": (f"db:\n  password: {DB_PASSWORD}9x\n", DB_PASSWORD),
    "OpenAI key bare": (f"using {OPENAI} now", OPENAI),
    "OpenAI older key bare": (f"using {OPENAI_OLD} now", OPENAI_OLD),
    "Slack webhook": (f"https://hooks.slack.com/services/{SLACK_HOOK}", SLACK_HOOK),
    "bearer": (f"curl -H 'Authorization: Bearer {JWT}'", JWT),
    "shell continuation": (f"export K={SPLIT_SHELL[:50]}\\\n{SPLIT_SHELL[50:]}\n", SPLIT_SHELL[50:]),
    "percent-encoded": ("?q=" + quote(json.dumps({"password": PASSWORD_PCT}), safe=""), PASSWORD_PCT),
}
"""Shapes the detectors missed before (each text, and a piece of the value that must not be left)."""

NOT_SECRETS = (
    'files = [{file = "requests-2.31.0.whl", hash = "sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f43"}]',
    'ID = "123e4567-e89b-12d3-a456-426614174000"\nrequest_id: 123e4567-e89b-12d3-a456-426614174000',
    'fake_key = "not-a-real-key"\napi_key = fake_key\ntoken = self.tokenizer_v2\n',
    "TOKENIZER=bert-base-uncased-v2\nSECRET_KEY_FALLBACKS=DjangoSecretKeyFallbacks2\n",
    "api_key = settings.OPENAI_API_KEY_FOR_TESTS\npassword: ${DB_PASSWORD}\n",
    "auth_token = get_token_v2(user)\n",
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nsecret_key = 0x00002B992DDFA232ULL\n",
    "commit 58cd2187c01e70e6e26505bca751777aa9f2ee0b\nAuthor: Ada <ada@example.org>\n",
    "author_token_count: Zamba2HybridDynamicCache\ncache_key: _mm512_xor_si512\n",
)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shapes_the_detectors_missed_are_withheld(name: str) -> None:
    text_, value = SHAPES[name]
    redacted = Redactor(b"k" * 32).redact(text_)
    assert value not in redacted and "<secret:" in redacted, redacted
    assert redacted.count("\n") == text_.count("\n")


def test_code_that_holds_no_secret_stays_as_it_is() -> None:
    for source in NOT_SECRETS:
        assert Redactor(b"k" * 32).redact(source) == source


def test_the_system_prompt_and_the_tools_descriptions_are_redacted(fake_anthropic: FakeAnthropic) -> None:
    """An instruction or an MCP server's tool description holding a key: the request carries its
    placeholder (before, only the messages were redacted), and the same bytes each time."""
    fake_anthropic.enqueue(text("one"), text("two"))
    model = RedactingModel(
        AnthropicModel(fast_settings().model, api_key=FAKE_API_KEY, base_url=fake_anthropic.url),
        Redactor(b"k" * 32),
    )
    tools = [
        {
            "name": "mcp__deploy__push",
            "description": f"Push a release. Uses the token {GITHUB}.",
            "input_schema": {"type": "object", "properties": {"tag": {"type": "string"}}},
        }
    ]
    for _ in range(2):
        model.complete(
            f"Project instructions: the key is {SLACK}.", tools, [{"role": "user", "content": "go"}]
        )
    bodies = [json.dumps(dict(r.body)) for r in fake_anthropic.message_requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert GITHUB not in bodies[0] and SLACK not in bodies[0] and bodies[0].count("<secret:") == 2
    assert "mcp__deploy__push" in bodies[0] and '"tag"' in bodies[0]


def test_an_images_compressed_text_is_read() -> None:
    """A PNG's zTXt chunk (compressed text) holding a key the run never saw, and a JPEG comment."""
    import struct
    import zlib

    from agent.images import metadata_text

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(f"token={PNG_KEY}".encode()))
        + chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x30"))
        + chunk(b"IEND", b"")
    )
    jpeg = b"\xff\xd8\xff\xfe\x00\x40" + f"key {SLACK}".encode() + b"\xff\xd9"
    for image in (png, jpeg):
        found = metadata_text(base64.b64encode(image).decode())
        assert PNG_KEY in found or SLACK in found
        assert "<secret:" in Redactor(b"k" * 32).redact(found)

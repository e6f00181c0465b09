"""Secret values written in source files never leave the machine (issue 17, item 1), end to end.

A workspace with an AWS key pair and a Stripe live key in ordinary source files is indexed and searched
through the CLI, then the agent runs against the fake Messages API (which records every request body):
it views the files, runs `cat` in the sandbox, tries to change a key (refused), and edits the line next to
the key. Nothing the model received, nothing on disk in the index, no search output and no transcript
holds a value; the applied edit keeps the real key. Values a command prints encoded (base64, hex,
reversed, percent-encoded, compressed then base64) show placeholders too.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from indexing.secrets import Redactor, SecretEditRefused, find_secrets, load_key, placeholder, redact_text
from server.cli import main
from tests.agent.agent_harness import EDITOR, result_text
from tests.fakes.anthropic_server import FAKE_API_KEY, FakeAnthropic, text, tool_use, turn
from tests.indexing.test_secret_encodings import leaks

AKIA = "AKIAIOSFODNN7Q2WXYZA"
WJALR = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8rT3vLmNK"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dcQ9xZ"
VALUES = (AKIA, WJALR, STRIPE)

SETTINGS = f'''"""Deployment settings."""
AWS_ACCESS_KEY_ID = "{AKIA}"
AWS_SECRET_ACCESS_KEY = "{WJALR}"


def region() -> str:
    return "eu-west-1"
'''

BILLING = f'''"""Charging customers."""
STRIPE_KEY = "{STRIPE}"


def charge(amount: int) -> dict[str, object]:
    """Charge `amount` cents with the live key."""
    return {{"key": STRIPE_KEY, "amount": amount}}
'''

AGENT_TOML = """\
[agent]
max_steps = 10
verify = false

[agent.model]
max_retries = 1
retry_base_delay = 0.01
retry_max_delay = 0.05
timeout = 10

[agent.sandbox]
timeout_seconds = 20
"""


def _workspace(root: Path) -> Path:
    root.mkdir()
    (root / "settings.py").write_text(SETTINGS)
    (root / "billing.py").write_text(BILLING)
    (root / "agentls.toml").write_text(AGENT_TOML)
    return root


def _invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def _env(fake: FakeAnthropic, cache: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "ANTHROPIC_BASE_URL": fake.url,
        "AGENTLS_CACHE_DIR": str(cache),
        "ANTHROPIC_AUTH_TOKEN": "",
    }


def _leaks(data: str | bytes) -> list[str]:
    blob = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    return [v for v in VALUES if v.encode() in blob or json.dumps(v)[1:-1].encode() in blob]


def test_detector_finds_the_usual_formats_and_leaves_code_alone() -> None:
    source = (
        SETTINGS
        + BILLING
        + 'GH = "ghp_'
        + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
        + '"\n'
        + 'SLACK = "xoxb-123456789012-1234567890123-'
        + "abcdefghijklmnopqrstuvwx"
        + '"\n'
        + 'password = "hunter2!"\n'
        + "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8s3sK2R3Q1x\n"
        + "-----END RSA PRIVATE KEY-----\n"
        + 'name = "getUserNameFromDatabase"\nuuid = "123e4567-e89b-12d3-a456-426614174000"\n'
    )
    values = {source[f.start : f.end] for f in find_secrets(source, "conf.py")}
    assert {AKIA, WJALR, STRIPE, "hunter2!", "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8s3sK2R3Q1x"} <= values
    assert any(v.startswith("ghp_") for v in values) and any(v.startswith("xoxb-") for v in values)
    assert "getUserNameFromDatabase" not in values
    assert not any("123e4567" in v for v in values)
    redacted, used = redact_text(source, b"k" * 32, "conf.py")
    assert not _leaks(redacted)
    assert redacted.count("\n") == source.count("\n")  # line numbers stay right
    assert "AWS_SECRET_ACCESS_KEY" in redacted and "def charge" in redacted  # names stay searchable
    assert set(used.values()) >= set(VALUES)


def test_a_value_that_is_its_own_name_is_a_stand_in_not_a_secret() -> None:
    # Django's tests/auth_tests/test_tokens.py: `p1.secret = "secret"`. Taking "secret" withheld the
    # attribute's name too (the indexed line no longer parsed, and its symbols depended on the random key),
    # and a run that learnt the value replaced the word wherever it was written, SECRET_KEY and `secrets`
    # included.
    source = (
        '    p1.secret = "secret"\n'
        '    config = {"api_key": "api_key", "db_password": "password"}\n'
        '    p2.secret = "n3wSecr3t-value"\n'
    )
    values = {source[f.start : f.end] for f in find_secrets(source, "test_tokens.py")}
    assert values == {"n3wSecr3t-value"}
    redactor = Redactor(b"k" * 32)
    redactor.learn(source, "test_tokens.py")
    code = "SECRET_KEY = settings.secret  # api_key, password, secrets.token_hex()\n"
    assert redactor.redact(code, "views.py") == code


def test_a_learnt_value_that_is_a_word_of_a_placeholder_leaves_placeholders_whole() -> None:
    """Django's tests log in with ``password="secret"``, which the keyword plugin takes (in 25 of its files):
    a run that learnt the value (it learns those of the files the index found values in) replaced the
    word everywhere, inside the placeholders already in a text too: a token came out as
    ``<<secret:ead256cc>:b975d26a>``, which neither the model nor `restore` could read back."""
    key = b"k" * 32
    redactor = Redactor(key)
    # A learnt plain word is no longer replaced everywhere (the test below); a configured one still is.
    redactor.learn_values(["secret"])
    token = "ghp_" + "Zq3Xv8Lm2Nb7Kc1Jd6Hf5Gs4Ta9Wr0Ey2Ui8"
    text = f'TOKEN = "{token}"  # the secret token\n'
    redacted = redactor.redact(text, "settings.py")
    assert redacted == f'TOKEN = "{placeholder(token, key)}"  # the {placeholder("secret", key)} token\n'
    assert redactor.restore(redacted) == text


def test_a_learnt_plain_word_is_withheld_in_its_context_not_wherever_the_word_is_written() -> None:
    """Django's tests log in with ``password="secret"`` and configure ``"PASSWORD": "changeme"``: a run
    that learnt them (from the files the index found values in) withheld the words "secret" and "changeme"
    in every later output, prose, names and code alike. A plain word met in a text is now withheld where
    the detectors find it; a value with a digit or a symbol, and a configured credential, everywhere."""
    key = b"k" * 32
    redactor = Redactor(key)
    redactor.learn(
        '        self.client.login(username="super", password="secret")\n'
        '        DATABASES = {"default": {"PASSWORD": "changeme"}}\n'
        '        api_password = "p4ssw0rd!"\n',
        "tests/test_admin.py",
    )
    redactor.learn_values(["configured"])
    prose = "Keep the secret key secret; changeme is the template's default.\n"
    assert redactor.redact(prose, "notes.md") == prose
    assert redactor.redact('login(password="secret")\n', "t.py") == (
        f'login(password="{placeholder("secret", key)}")\n'
    )
    assert redactor.redact("echo p4ssw0rd! configured\n") == (
        f"echo {placeholder('p4ssw0rd!', key)} {placeholder('configured', key)}\n"
    )
    # an edit next to a learnt word still puts it back
    assert redactor.restore(placeholder("secret", key)) == "secret"


def test_placeholders_are_stable_and_keyed() -> None:
    assert placeholder(STRIPE, b"a" * 32) == placeholder(STRIPE, b"a" * 32)
    assert placeholder(STRIPE, b"a" * 32) != placeholder(STRIPE, b"b" * 32)
    assert placeholder(STRIPE, b"a" * 32) != placeholder(AKIA, b"a" * 32)


def test_key_file_is_private(tmp_path: Path) -> None:
    key = load_key(tmp_path / "cache")
    assert load_key(tmp_path / "cache") == key and len(key) == 32
    assert (tmp_path / "cache" / "secret-key").stat().st_mode & 0o777 == 0o600


def test_restore_edit_keeps_values_and_refuses_changes() -> None:
    redactor = Redactor(b"k" * 32)
    view = redactor.redact(BILLING)
    marker = placeholder(STRIPE, b"k" * 32)
    assert marker in view and STRIPE not in view and redactor.withheld == 1

    def read(path: str) -> str | None:
        return BILLING if path == "billing.py" else None

    edit = {
        "command": "str_replace",
        "path": "billing.py",
        "old_str": f'STRIPE_KEY = "{marker}"\n',
        "new_str": f'STRIPE_KEY = "{marker}"\nCURRENCY = "eur"\n',
    }
    restored = redactor.restore_edit(EDITOR, edit, read)
    assert restored["old_str"] == f'STRIPE_KEY = "{STRIPE}"\n'
    assert restored["new_str"] == f'STRIPE_KEY = "{STRIPE}"\nCURRENCY = "eur"\n'
    changed = dict(edit, new_str='STRIPE_KEY = "sk_live_other"\n')
    with pytest.raises(SecretEditRefused, match="change or remove the secret value"):
        redactor.restore_edit(EDITOR, changed, read)
    copied = {"command": "create", "path": "leak.py", "file_text": f"print('{marker}')\n"}
    with pytest.raises(SecretEditRefused, match="copy the secret value"):
        redactor.restore_edit(EDITOR, copied, read)
    # A command is never given the value: placeholders stay text.
    command = {"command": f"echo {marker}"}
    assert redactor.restore_edit("bash", command, read) == command
    allowed = Redactor(b"k" * 32, allow_values=True)
    assert allowed.redact(BILLING) == BILLING


def test_no_secret_value_reaches_the_index_search_model_or_transcript(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    ws = _workspace(tmp_path / "ws")
    cache = tmp_path / "cache"
    env = _env(fake_anthropic, cache)
    indexed = _invoke(["index", str(ws)], env)
    assert indexed.exit_code == 0, indexed.output
    for query in ("AKIA", "sk_live", "AWS_SECRET_ACCESS_KEY", "charge live key"):
        found = _invoke(["search", query, "--path", str(ws), "--no-refresh", "-k", "10"], env)
        assert found.exit_code == 0, found.output
        assert not _leaks(found.output), (query, found.output)
    hits = _invoke(["search", "AWS_SECRET_ACCESS_KEY", "--path", str(ws), "--no-refresh", "--json"], env)
    assert "settings.py" in hits.output and "<secret:" in hits.output  # found by its name, value withheld
    index_files = [p for p in (cache / "index").rglob("*") if p.is_file()]
    assert index_files
    assert not [p for p in index_files if _leaks(p.read_bytes())]

    marker = placeholder(STRIPE, load_key(cache))
    fake_anthropic.enqueue(
        turn(
            text("Plan: add a currency next to the key."),
            tool_use(EDITOR, {"command": "view", "path": "billing.py"}),
        ),
        tool_use("bash", {"command": "grep -h KEY billing.py settings.py; echo done"}),
        tool_use(
            EDITOR,
            {
                "command": "str_replace",
                "path": "billing.py",
                "old_str": f'STRIPE_KEY = "{marker}"',
                "new_str": 'STRIPE_KEY = "sk_live_replaced"',
            },
        ),
        tool_use(
            EDITOR,
            {
                "command": "str_replace",
                "path": "billing.py",
                "old_str": f'STRIPE_KEY = "{marker}"\n',
                "new_str": f'STRIPE_KEY = "{marker}"\nCURRENCY = "eur"\n',
            },
        ),
        text("Added CURRENCY next to the key."),
    )
    ran = _invoke(
        ["run", "Add a CURRENCY constant to billing.py", "--path", str(ws), "--apply", "--yes", "--force"],
        env,
    )
    # Verification is off in this workspace: the change is applied only with --force, and the run exits 3
    # (proposed, not verified); what this test checks is what the edit did to the key.
    assert ran.exit_code == 3, ran.output
    # The progress lines on stderr hold no value; the diff on stdout is for the user, on this machine.
    assert not _leaks(ran.stderr), ran.stderr
    assert "withheld from the model" in ran.stderr

    bodies = [json.dumps(dict(r.body)) for r in fake_anthropic.message_requests]
    assert len(bodies) == 5
    assert not [b for b in bodies if _leaks(b)]
    last = bodies[-1]
    assert marker in last  # the model saw the placeholder in the view and in the command output
    assert "Refused: this edit would change or remove the secret value" in last
    transcripts = list((cache / "runs").glob("*.jsonl"))
    assert len(transcripts) == 1
    transcript = transcripts[0].read_text()
    assert not _leaks(transcript)
    records = [json.loads(line) for line in transcript.splitlines()]
    (end,) = [r for r in records if r["type"] == "run_end"]
    assert end["secrets_withheld"] >= 3
    # The --apply --force answer and its write come after the run's end, withheld alike (checked above).
    assert [r["type"] for r in records[records.index(end) + 1 :]] == ["approval", "decision"]

    # The applied edit kept the real key, next to the new line.
    assert (ws / "billing.py").read_text() == BILLING.replace(
        f'STRIPE_KEY = "{STRIPE}"\n', f'STRIPE_KEY = "{STRIPE}"\nCURRENCY = "eur"\n'
    )
    assert (ws / "settings.py").read_text() == SETTINGS


def test_a_command_printing_a_value_bare_from_a_file_never_opened_shows_its_placeholder(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """`print(settings.KEY)` prints the value with no context a detector could see; the run learnt the
    values of the files the index found secrets in before its first request, so it is still withheld, in
    the requests and in the transcript's network and tool records alike."""
    ws = _workspace(tmp_path / "ws")
    for n in range(12):  # what the task is about, so the first request's context is these files
        (ws / f"greetings_{n}.py").write_text(
            f'def greet_{n}(name: str) -> str:\n    return f"hello {{name}}"\n'
        )
    cache = tmp_path / "cache"
    env = _env(fake_anthropic, cache)
    assert _invoke(["index", str(ws)], env).exit_code == 0
    fake_anthropic.enqueue(
        tool_use(
            "bash",
            {"command": "python3 -c 'import settings, billing; print(settings.AWS_SECRET_ACCESS_KEY)'"},
        ),
        tool_use("bash", {"command": "cut -d'\"' -f2 billing.py | sed -n 2p"}),
        text("Printed the keys."),
    )
    ran = _invoke(["run", "Make greet_3 in greetings_3.py say hello name", "--path", str(ws)], env)
    assert ran.exit_code in (0, 3), ran.output
    bodies = [json.dumps(dict(r.body)) for r in fake_anthropic.message_requests]
    assert len(bodies) == 3
    assert "settings.py" not in bodies[0] and "billing.py" not in bodies[0]  # not in the task's context
    assert not [b for b in bodies if _leaks(b)]
    key = load_key(cache)
    assert placeholder(WJALR, key) in bodies[1] and placeholder(STRIPE, key) in bodies[2]
    transcript = next((cache / "runs").glob("*.jsonl")).read_text()
    assert not _leaks(transcript)


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value (so a check reads text as the model does, escapes undone)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


GITHUB = "ghp_Zq3Xv8Lm2Nb7Kc1J" + "d6Hf5Gs4Ta9Wr0Ey2Ui8"
"""Never in a file: the command builds it from two halves and prints it base64'd."""

ENCODING_COMMANDS = (
    "base64 settings.py; base64 -w0 billing.py; echo; tail -c +3 settings.py | base64 -w0; echo; "
    "basenc --base64url billing.py",
    "xxd -p settings.py; xxd -p -u billing.py; od -An -tx1 billing.py",
    "python3 -c \"print(open('settings.py').read()[::-1])\"; "
    "python3 -c \"import urllib.parse; print(urllib.parse.quote(open('billing.py').read(), safe=''))\"",
    "gzip -c billing.py | base64; xz -c settings.py | base64 -w0; echo",
    "python3 -c \"import base64; t = 'ghp_Zq3Xv8Lm2Nb7Kc1J' + 'd6Hf5Gs4Ta9Wr0Ey2Ui8'; "
    "print(base64.b64encode(('export GH_TOKEN=' + t).encode()).decode())\"",
)


def test_a_command_printing_values_encoded_shows_placeholders(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    """base64 (wrapped, unwrapped, shifted, URL-safe), hex (xxd -p, upper case, od), reversed,
    percent-encoded, gzip or xz then base64, and a token in no file base64'd: none of the values, in none
    of these forms, reaches a request or the transcript; the rest of the output does."""
    ws = _workspace(tmp_path / "ws")
    cache = tmp_path / "cache"
    env = _env(fake_anthropic, cache)
    assert _invoke(["index", str(ws)], env).exit_code == 0
    fake_anthropic.enqueue(
        *(tool_use("bash", {"command": command}) for command in ENCODING_COMMANDS),
        text("Printed the files encoded."),
    )
    ran = _invoke(["run", "Show settings.py and billing.py encoded", "--path", str(ws)], env)
    assert ran.exit_code in (0, 3), ran.output
    requests = [dict(r.body) for r in fake_anthropic.message_requests]
    assert len(requests) == len(ENCODING_COMMANDS) + 1
    outputs = [result_text(r["messages"][-1]["content"][-1]) for r in requests[1:]]
    assert all("<secret:" in output for output in outputs), outputs
    key = load_key(cache)
    assert placeholder(STRIPE, key) in outputs[0] and placeholder(GITHUB, key) in outputs[4]
    settings = SETTINGS.encode()
    assert base64.b64encode(settings).decode()[:32] in outputs[0]  # what holds no value stays
    assert settings.hex()[:32] in outputs[1] and "1-tsew-ue" in outputs[2]
    for request in requests:
        assert not leaks("\n".join(_strings(request)), (*VALUES, GITHUB))
    transcript = next((cache / "runs").glob("*.jsonl")).read_text()
    records = [json.loads(line) for line in transcript.splitlines()]
    assert not leaks("\n".join(_strings(records)), (*VALUES, GITHUB))

"""Credentials in the settings never reach the files a run leaves (`agent.credential_fields`).

End to end: a run started as the CLI and the language server start one (`agent.runner.start_run`), with a
real MCP stdio server (tests/fakes/mcp_tickets_server.py) whose ``env`` holds a token and which prints it
from a tool, the model provider's key, and a base URL with a password, against the fake Anthropic server.
The transcript, the saved run state and the requests the model got hold none of them; the transcript's
``run_start`` says which are set. Then the masking rules on every place of the settings tree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.credential_fields import args_without_credentials, credential_values, mask_settings, masked
from agent.mcp.trust import TRUST_FILE, McpTrust
from agent.resume import state_path
from agent.runner import Credentials, start_run
from server.settings import load_settings, validate_settings
from tests.agent.agent_harness import FAST_MODEL, copy_workspace, done, fast_settings, mean_task
from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use, turn

SERVER = Path(__file__).resolve().parents[1] / "fakes" / "mcp_tickets_server.py"
MCP_TOKEN = "tkt_live_4Qz8Lm2Xw9Rb7Vn3Kp6J"
PROVIDER_KEY = "sk-ant-api03-provider-key-9d8c7b6a5f4e"
URL_PASSWORD = "proxy-pass-77Hq2Wz"


def _workspace(tmp_path: Path) -> Path:
    root = copy_workspace(tmp_path / "ws")
    (root / "agentls.toml").write_text(
        f"""\
[mcp.servers.tickets]
command = "{sys.executable}"
args = ["{SERVER}"]
env = {{ TICKETS_USER = "ada", TICKETS_TOKEN = "{MCP_TOKEN}", TICKETS_ECHO_TOKEN = "1" }}
"""
    )
    return root


def _files_text(folder: Path) -> str:
    """Every file the run left under `folder` (transcripts, sub-agents', state, checkpoints), as text."""
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def test_a_run_leaves_no_credential_on_disk_nor_sends_one_to_the_model(
    fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    root = _workspace(tmp_path)
    loaded = load_settings(root)
    assert not loaded.messages, loaded.messages
    runs = tmp_path / "cache" / "runs"  # the trust file and the placeholder key live in the cache folder
    McpTrust(runs.parent / TRUST_FILE).remember(root, "tickets", loaded.settings.agent.mcp.servers["tickets"])
    base_url = fake_anthropic.url.replace("://", f"://agentls:{URL_PASSWORD}@", 1)
    settings = fast_settings(
        mcp=loaded.settings.agent.mcp,
        verify=False,
        model=FAST_MODEL.model_copy(update={"base_url": base_url}),
    )
    fake_anthropic.enqueue(
        turn(text("Let me check the tracker session."), tool_use("mcp__tickets__session", {})),
        done("The tracker session works; nothing to change."),
    )
    credentials = Credentials.from_env({"ANTHROPIC_API_KEY": PROVIDER_KEY}, settings.model)
    handle = start_run(mean_task(root), root=root, settings=settings, credentials=credentials, runs_dir=runs)
    result = handle.wait(120)
    assert result is not None and result.status == "no_changes", result and result.error

    # The model got the tool's answer with the token withheld.
    second = json.dumps(dict(fake_anthropic.message_requests[1].body), default=str)
    assert "logged in as ada with <secret:" in second
    assert MCP_TOKEN not in json.dumps([dict(r.body) for r in fake_anthropic.requests], default=str)

    assert state_path(runs, result.run_id).is_file()
    on_disk = _files_text(runs)
    for value in (MCP_TOKEN, PROVIDER_KEY, URL_PASSWORD):
        assert value not in on_disk, f"{value} is on disk"
    assert "logged in as ada with <secret:" in on_disk  # the tool result, in the transcript and the state
    start = next(json.loads(line) for line in on_disk.splitlines() if '"type": "run_start"' in line)
    env = start["settings"]["mcp"]["servers"]["tickets"]["env"]
    assert env == {
        "TICKETS_USER": "<set, 3 chars>",
        "TICKETS_TOKEN": f"<set, {len(MCP_TOKEN)} chars>",
        "TICKETS_ECHO_TOKEN": "<set, 1 char>",
    }
    assert start["settings"]["model"]["base_url"] == base_url.replace(f"agentls:{URL_PASSWORD}", "***")


SETTINGS = {
    "agent": {
        "model": {"base_url": "https://gw:gw-pass-123@llm.example.com/v1"},
        "roles": {"explore": {"model": {"base_url": "https://llm.example.com/v1?api_key=role-key-4567"}}},
        "install": {"index_url": "https://__token__:pypi-AgEIcHlwaS5vcmc@pypi.example.com/simple/"},
    },
    "mcp": {
        "servers": {
            "github": {
                "command": "docker",
                "args": [
                    "run",
                    "-e",
                    "GITHUB_TOKEN=ghp_arg0123456789abcdef",
                    "srv",
                    "--api-key",
                    "arg-key-98765",
                ],
                "env": {
                    "GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_env0123456789abcdef",
                    "LOG_DIR": "/tmp/mcp-logs",
                },
            },
            "docs": {
                "url": "https://docs.example.com/mcp?token=url-token-24680",
                "headers": {"Authorization": "Bearer hdr-token-13579", "Accept": "application/json"},
            },
        }
    },
    "index": {
        "embedding": {"provider": "openai", "base_url": "https://emb:emb-pass-555@emb.example.com/v1"},
        "rerank": {"provider": "api", "url": "https://rr.example.com/rerank?key=rerank-key-777"},
    },
}
SECRETS = [
    "gw-pass-123",
    "role-key-4567",
    "pypi-AgEIcHlwaS5vcmc",
    "ghp_arg0123456789abcdef",
    "arg-key-98765",
    "ghp_env0123456789abcdef",
    "url-token-24680",
    "hdr-token-13579",
    "emb-pass-555",
    "rerank-key-777",
]


def test_every_credential_of_the_settings_tree_is_masked_and_learnt() -> None:
    settings, messages = validate_settings(SETTINGS)
    assert not messages, messages
    dump = mask_settings(settings.model_dump(mode="json"))
    text_ = json.dumps(dump)
    for value in SECRETS:
        assert value not in text_, value
    github = dump["agent"]["mcp"]["servers"]["github"]
    assert github["env"] == {"GITHUB_PERSONAL_ACCESS_TOKEN": "<set, 23 chars>", "LOG_DIR": "<set, 13 chars>"}
    assert github["args"] == [
        "run",
        "-e",
        "GITHUB_TOKEN=<set, 23 chars>",
        "srv",
        "--api-key",
        "<set, 13 chars>",
    ]
    docs = dump["mcp"]["servers"]["docs"]
    assert docs["url"] == "https://docs.example.com/mcp?token=***"
    assert docs["headers"] == {"Authorization": masked("Bearer hdr-token-13579"), "Accept": "<set, 16 chars>"}
    assert dump["agent"]["model"]["base_url"] == "https://***@llm.example.com/v1"
    assert dump["agent"]["model"]["api_key_env"] is None and dump["agent"]["max_steps"] == 40  # the rest kept

    learnt = credential_values(settings.model_dump(mode="json"))
    assert set(SECRETS) <= set(learnt)
    # What is no credential stays readable for the model: a folder, a media type, the auth scheme.
    assert not {"/tmp/mcp-logs", "application/json", "Bearer"} & set(learnt)


def test_args_without_credentials_keep_the_rest_in_order_and_leave_no_option_without_its_value() -> None:
    """What a workspace's destination gets of the user's own MCP server's args
    (`server.settings_files.without_withheld`): the flag naming a credential goes with its value; an
    option right before a credential standing alone (docker's ``-e NAME=value``, a URL with a password)
    goes too, so it does not take the next arg as its value; the names said hold no value. Args that
    hold none (the rule `credential_values` applies) stay whole."""
    docker = [
        "run",
        "-i",
        "--rm",
        "-e",
        "GITHUB_PERSONAL_ACCESS_TOKEN=ghp_0123456789abcdef",
        "ghcr.io/gh/server",
    ]
    assert args_without_credentials(docker) == (
        ["run", "-i", "--rm", "ghcr.io/gh/server"],
        ["-e GITHUB_PERSONAL_ACCESS_TOKEN="],
    )
    npx = [
        "-y",
        "pkg",
        "--token",
        "t-0123456789",
        "--api-key=k-0123456789",
        "--mirror",
        "https://u:pw@m.example/x",
    ]
    assert args_without_credentials([*npx, "--root", "/p", 3]) == (
        ["-y", "pkg", "--root", "/p", 3],
        ["--token", "--api-key=", "--mirror https://***@m.example/x"],
    )
    for args in (npx, docker):
        kept, named = args_without_credentials(args)
        assert not credential_values({"args": kept}, learnt_only=False)
        assert not any(
            value in " ".join(named) for value in credential_values({"args": args}, learnt_only=False)
        )
    plain = ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/src"]
    assert args_without_credentials(plain) == (plain, []) and not credential_values({"args": plain})


def test_a_header_given_as_an_arg_is_a_credential_when_its_name_says_so() -> None:
    """``mcp-remote URL --header "Authorization: Bearer X"`` (an HTTP server reached through a local
    command): the header's value is masked (its scheme kept readable) and learnt, and a workspace's
    destination gets the args without it and its ``--header``. On f23531c none of that: the token was
    written as is wherever settings are (a transcript's ``run_start``), and went with the user's args. A
    header whose name says no credential (``Accept``) and a URL with a colon in its path stay as they are."""
    args = [
        "mcp-remote",
        "https://mcp.example/sse",
        "--header",
        "Authorization: Bearer hdr-arg-0123456789",
        "--header",
        "X-Api-Key:key-arg-0123456789",
        "--header",
        "Accept: application/json",
        "https://x.example/a:b",
    ]
    assert mask_settings({"args": args})["args"] == [
        *args[:3],
        "Authorization: Bearer <set, 18 chars>",
        "--header",
        "X-Api-Key:<set, 18 chars>",
        *args[6:],
    ]
    assert set(credential_values({"args": args})) == {"hdr-arg-0123456789", "key-arg-0123456789"}
    assert args_without_credentials(args) == (
        [
            "mcp-remote",
            "https://mcp.example/sse",
            "--header",
            "Accept: application/json",
            "https://x.example/a:b",
        ],
        ["--header Authorization: Bearer", "--header X-Api-Key:"],
    )


def test_a_header_given_in_one_arg_with_its_option_is_a_credential_too() -> None:
    """``--header=Authorization: Bearer X`` (one arg, as argparse-style and Go flag parsers take it) and
    ``-H=X-Api-Key: X``: masked with the option and scheme kept readable, learnt, and dropped whole from what
    a workspace's destination gets. Before session 26's fix only the two-arg form counted: these were
    written and sent as they are. ``--header=Accept: ...`` and an option whose value is a URL with a colon
    stay."""
    args = [
        "--header=Authorization: Bearer one-arg-0123456789",
        "-H=X-Api-Key: one-key-0123456789",
        "--header=Accept: application/json",
        "--url=https://x.example/a:b",
    ]
    assert mask_settings({"args": args})["args"] == [
        "--header=Authorization: Bearer <set, 18 chars>",
        "-H=X-Api-Key: <set, 18 chars>",
        *args[2:],
    ]
    assert set(credential_values({"args": args})) == {"one-arg-0123456789", "one-key-0123456789"}
    assert args_without_credentials(args) == (args[2:], ["--header=Authorization: Bearer", "-H=X-Api-Key:"])


BASIC = "dXNlcjpwYXNzd29yZA=="  # base64 of user:password, with its "=" padding


def test_an_options_value_given_in_one_arg_is_a_credential_as_when_given_alone() -> None:
    """Each credential given as an option's value in the arg after it, given in one arg with its option
    too (after ``=``, or glued to a short option as curl's ``-H`` and docker's ``-e`` take it): the same
    value masked (the option and the header's name and scheme kept readable), learnt, and dropped with its
    option. Before session 27: a header's value holding ``=`` (``Basic ...==``) was cut at its first ``=``
    and all but one character written as is, in every form; ``-HKey: X``, ``-eKEY=X``, ``--env=KEY=X``
    were no credential at all (``Key`` names one only as a whole word, and ``--env`` names none), though
    their spaced forms were."""
    forms = {
        BASIC: [
            ["-H", f"Authorization: Basic {BASIC}"],
            [f"-HAuthorization: Basic {BASIC}"],
            [f"--header=Authorization: Basic {BASIC}"],
        ],
        "hdr-key-0123456789": [["-H", "Key: hdr-key-0123456789"], ["-HKey: hdr-key-0123456789"]],
        "env-key-0123456789": [
            ["-e", "KEY=env-key-0123456789"],
            ["-eKEY=env-key-0123456789"],
            ["--env=KEY=env-key-0123456789"],
        ],
        "ghp_env0123456789": [
            ["--env", "GITHUB_TOKEN=ghp_env0123456789"],
            ["--env=GITHUB_TOKEN=ghp_env0123456789"],
        ],
        "bearer-0123456789": [
            ["-H", "Authorization: Bearer bearer-0123456789"],
            ["-HAuthorization: Bearer bearer-0123456789"],
        ],
    }
    for value, shapes in forms.items():
        for args in shapes:
            assert credential_values({"args": args}) == [value], args
            shown = mask_settings({"args": args})["args"]
            assert shown[-1] == args[-1].replace(value, masked(value)), shown
            assert shown[:-1] == args[:-1]
            kept, named = args_without_credentials(["srv", *args])
            assert kept == ["srv"] and len(named) == 1 and value not in named[0], (args, named)
            assert named[0] == " ".join(args).removesuffix(value).rstrip(), named
    plain = ["-HAccept: application/json", "-p8080:80", "-vvv", "-Dfile.encoding=UTF-8", "-H=Accept: */*"]
    assert mask_settings({"args": plain})["args"] == plain
    assert args_without_credentials(plain) == (plain, []) and credential_values({"args": plain}) == []


CURL_PASSWORD = "curl-pass-0123456789"


def test_the_password_of_curls_user_option_is_a_credential_in_each_form_curl_takes() -> None:
    """curl's ``-u user:password`` (``--user``, the proxy's ``-U``/``--proxy-user``; the value in the next
    arg, after ``=`` or glued, ``-uada:X``) in curl's args: the password masked with the user name kept
    readable (as a header keeps its name), learnt, and dropped with its option from what a workspace's
    destination gets. Before session 28 none of the four forms was a credential: the password was written
    as is wherever settings are, and went with the user's args. ``-u`` of another command (docker's
    ``-u 1000:1000``) stays as it is, and so does ``-u ada`` without a password."""
    forms = [
        ["-u", f"ada:{CURL_PASSWORD}"],
        ["--user", f"ada:{CURL_PASSWORD}"],
        [f"-uada:{CURL_PASSWORD}"],
        [f"--user=ada:{CURL_PASSWORD}"],
        ["-U", f"ada:{CURL_PASSWORD}"],
        [f"--proxy-user=ada:{CURL_PASSWORD}"],
    ]
    for args in forms:
        server = {"command": "/usr/bin/curl", "args": [*args, "https://api.example/v1"]}
        assert credential_values(server) == [CURL_PASSWORD], args
        shown = mask_settings({"mcp": {"servers": {"api": server}}})["mcp"]["servers"]["api"]["args"]
        hidden = args[-1].replace(CURL_PASSWORD, masked(CURL_PASSWORD))
        assert shown == [*args[:-1], hidden, server["args"][-1]]
        assert "ada:" in shown[-2]
        kept, named = args_without_credentials(server["args"], server["command"])
        assert kept == ["https://api.example/v1"] and named == [" ".join(args).removesuffix(CURL_PASSWORD)]
    # curl run by another command: only the args after curl's own name are curl's
    docker = ["run", "-u", "1000:1000", "img", "curl", "-u", f"ada:{CURL_PASSWORD}"]
    assert mask_settings({"command": "docker", "args": docker})["args"] == [
        *docker[:-1],
        f"ada:{masked(CURL_PASSWORD)}",
    ]
    assert args_without_credentials(docker, "docker") == (docker[:-2], ["-u ada:"])
    for command, args in (
        ("docker", ["run", "-u", "1000:1000", "--user=app:staff", "img"]),
        ("curl", ["-u", "ada", "https://api.example/v1"]),
    ):
        assert mask_settings({"command": command, "args": args})["args"] == args
        assert args_without_credentials(args, command) == (args, [])
        assert credential_values({"command": command, "args": args}, learnt_only=False) == []


def test_curls_user_option_among_combined_short_flags_is_a_credential_too() -> None:
    """``-sSu ada:X`` and ``-sSuada:X`` (curl's short flags written as one arg, ``-u`` last): the password is
    masked, learnt and dropped as for ``-u`` alone; before, only an arg that started with ``-u`` counted, so
    the commonest way of writing it (``curl -su user:pass``) went out as is. A short option that takes a
    value of its own before the ``u`` (``-HUser: u``) ends the flags: nothing there is a password."""
    for args in (
        ["-sSu", f"ada:{CURL_PASSWORD}"],
        [f"-sSuada:{CURL_PASSWORD}"],
        ["-fsLU", f"ada:{CURL_PASSWORD}"],
    ):
        server = {"command": "curl", "args": [*args, "https://api.example/v1"]}
        assert credential_values(server) == [CURL_PASSWORD], args
        shown = mask_settings({"mcp": {"servers": {"api": server}}})["mcp"]["servers"]["api"]["args"]
        assert shown[-2] == args[-1].replace(CURL_PASSWORD, masked(CURL_PASSWORD))
        assert args_without_credentials(server["args"], "curl") == (
            ["https://api.example/v1"],
            [" ".join(args).removesuffix(CURL_PASSWORD)],
        )
    for args in (["-HUser: u", "ada:x-y"], ["-sS", "-d", "ada:x-y"], ["-vd", "ada:x-y"]):
        server = {"command": "curl", "args": [*args, "https://api.example/v1"]}
        assert credential_values(server, learnt_only=False) == [], args
        assert mask_settings({"command": "curl", "args": server["args"]})["args"] == server["args"]


def test_a_workspaces_destination_gets_the_users_curl_args_without_the_password() -> None:
    """The user's own server runs ``curl -u ada:X URL``; a workspace's file that sets its command gets the
    user's args without ``-u ada:X`` (`server.settings_files.withheld_credentials` reads them as the user's
    own command's args, though the merged command is the workspace's), and the message names ``-u ada:``."""
    from server.settings_files import merge, withheld_credentials, without_withheld

    own = {
        "mcp": {"servers": {"api": {"command": "curl", "args": ["-u", f"ada:{CURL_PASSWORD}", "https://a"]}}}
    }
    workspace = {"mcp": {"servers": {"api": {"command": "./evil"}}}}
    withheld = withheld_credentials(own, workspace, {})
    assert [(item.server, item.fields) for item in withheld] == [("api", (("args", ("-u ada:",)),))]
    for layers in (merge(own, workspace), own):
        server = without_withheld(layers, withheld, workspace)["mcp"]["servers"]["api"]
        assert server["args"] == ["https://a"], server

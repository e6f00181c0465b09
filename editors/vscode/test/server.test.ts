/**
 * The extension's pure parts against the real server: `agentls serve --stdio` (from the repository, with
 * Python) driven over JSON-RPC by the same protocol library vscode-languageclient uses, answering
 * `workspace/configuration` and following `$/progress` the way the extension does.
 *
 * It checks what unit tests alone cannot: that the settings the extension sends are accepted under the
 * names it converts them to, that the indexing progress title is recognised as indexing, that the
 * server's code actions carry the command ids and argument shapes of `constants.ts` and `pure/args.ts`,
 * and that every command argument the extension builds passes the server's validation.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";

import {
  CodeActionRequest,
  ExecuteCommandRequest,
  ResponseError,
  type TextDocumentEdit,
  type TextEdit,
} from "vscode-languageserver-protocol/node";

import { CodeActionKind, Notification, Request, RUN_COMMANDS, ServerCommand } from "../src/constants";
import {
  acceptAndCommitCall,
  acceptCall,
  askCall,
  cancelCall,
  editCall,
  fixCall,
  implementCall,
  reindexCall,
  rejectCall,
  runCall,
  writeTestsCall,
  type CommandCall,
} from "../src/pure/args";
import { searchItems, searchParams } from "../src/pure/search";
import {
  acceptApplied,
  parseProposal,
  parseProposalReady,
  parseRuns,
  runIdOf,
  type ProposalReady,
} from "../src/pure/protocol";
import { sidesOf } from "../src/pure/proposal";
import { isIndexingTitle } from "../src/pure/status";
import { NO_REPO, runPython } from "./helpers";
import { eventually, FakeAnthropic, ServerUnderTest, tempWorkspace } from "./harness";

const INVALID_PARAMS = -32602;
const STUB = `import re


def parse_duration(text: str) -> int:
    """Parse a duration such as 1h30m into seconds."""
    raise NotImplementedError


def twice(x: int) -> int:
    return 2 * x
`;

/** What VS Code would hold: user settings in camelCase, the extension's own keys among them. */
const USER_SETTINGS = {
  server: { path: "/opt/agentls/bin/agentls", args: ["serve", "--stdio"], reindexOnSave: true },
  trace: { server: "verbose" },
  index: {
    embedding: { provider: "none" },
    maxFileBytes: 123456,
    rerank: { candidates: 30, apiKeyEnv: "RERANK_KEY" },
  },
  agent: { maxCostUsd: 0.25, sandbox: { timeoutSeconds: 30 } },
};
const FOLDER_SETTINGS = { agent: { maxSteps: 7 } };

interface Stats {
  settings: { agent: { max_cost_usd: number } };
}

/** `read()` until `done` holds of its value or `ms` pass; the last value read. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  return value;
}

describe("against agentls serve --stdio", { skip: NO_REPO, timeout: 120_000 }, () => {
  const ws = NO_REPO === false ? tempWorkspace() : { dir: "", remove: () => undefined };
  const fileUri = pathToFileURL(path.join(ws.dir, "durations.py")).toString();
  let server: ServerUnderTest;
  // Indexing began (a title the status bar counts as indexing) and no indexing progress is left.
  const indexed = (): Promise<void> =>
    eventually(
      () => server.titles.some(isIndexingTitle) && server.progress.indexing().length === 0,
      60_000,
      () =>
        `indexing to end (titles: ${JSON.stringify(server.titles)}; stderr: ${server.stderr.slice(-2000)})`,
    );

  before(async () => {
    writeFileSync(path.join(ws.dir, "durations.py"), STUB);
    server = new ServerUnderTest({
      workspace: ws.dir,
      userSettings: USER_SETTINGS,
      folderSettings: FOLDER_SETTINGS,
    });
    await server.initialize();
  });

  after(async () => {
    try {
      await server.stop();
    } finally {
      ws.remove();
    }
  });

  it("indexes with a progress the status bar counts as indexing", async () => {
    await indexed();
    assert.ok(
      server.titles.some((t) => t.includes("indexing")),
      JSON.stringify(server.titles),
    );
  });

  it("takes the settings under the names the extension sends, without a warning", async () => {
    const stats = await server.connection.sendRequest<{
      settings: {
        index: {
          max_file_bytes: number;
          embedding: { provider: string };
          rerank: { provider: string; candidates: number; api_key_env: string | null };
        };
        agent: { max_cost_usd: number; max_steps: number; sandbox: { timeout_seconds: number } };
      };
    }>(Request.serverStats, {});
    assert.equal(stats.settings.index.max_file_bytes, 123456);
    assert.equal(stats.settings.index.embedding.provider, "none");
    assert.equal(stats.settings.index.rerank.candidates, 30);
    assert.equal(stats.settings.index.rerank.api_key_env, "RERANK_KEY");
    assert.equal(stats.settings.index.rerank.provider, "none");
    assert.equal(stats.settings.agent.max_cost_usd, 0.25);
    assert.equal(stats.settings.agent.sandbox.timeout_seconds, 30);
    assert.equal(stats.settings.agent.max_steps, 7, "the folder's setting, from workspace/configuration");
    assert.deepEqual(
      server.messages.filter((m) => m.includes("settings")),
      [],
    );
  });

  it("applies a setting removed in VS Code at once, not after a restart", async () => {
    const maxCost = async (): Promise<number> =>
      (await server.connection.sendRequest<Stats>(Request.serverStats, {})).settings.agent.max_cost_usd;
    const fallback = Number(
      runPython("from server.settings import Settings; print(Settings().agent.max_cost_usd)").trim(),
    );
    assert.notEqual(fallback, USER_SETTINGS.agent.maxCostUsd);
    // The user resets agentls.agent.maxCostUsd (to let agentls.toml or the default decide).
    await server.changeSettings({ ...USER_SETTINGS, agent: { sandbox: USER_SETTINGS.agent.sandbox } });
    const cost = await until(maxCost, (c) => c === fallback, 20_000);
    assert.equal(cost, fallback, "the removed setting still holds after the server re-read the settings");
    await server.changeSettings(USER_SETTINGS);
    assert.equal(await until(maxCost, (c) => c === USER_SETTINGS.agent.maxCostUsd, 20_000), 0.25);
  });

  it("finds the stub with agentls/search", async () => {
    await indexed();
    const hits = await server.connection.sendRequest<{ path: string; symbol: string | null }[]>(
      Request.search,
      {
        query: "parse duration",
        limit: 5,
      },
    );
    assert.ok(
      hits.some((h) => h.path === "durations.py" && (h.symbol ?? "").includes("parse_duration")),
      JSON.stringify(hits),
    );
  });

  it("answers the search commands' requests, each file once for Search Files", async () => {
    await indexed();
    const code = searchItems(
      await server.connection.sendRequest(Request.search, searchParams("duration", false)),
    );
    const files = searchItems(
      await server.connection.sendRequest(Request.search, searchParams("duration", true)),
    );
    assert.ok(
      code.some((item) => item.description.startsWith("durations.py:")),
      JSON.stringify(code),
    );
    const paths = files.map((item) => item.description.split(":")[0]);
    assert.ok(paths.length > 0 && new Set(paths).size === paths.length, JSON.stringify(paths));
  });

  it("offers code actions with the command ids and argument shapes of the extension", async () => {
    await server.connection.sendNotification("textDocument/didOpen", {
      textDocument: { uri: fileUri, languageId: "python", version: 1, text: STUB },
    });
    const actions = (await server.connection.sendRequest(CodeActionRequest.type, {
      textDocument: { uri: fileUri },
      range: { start: { line: 5, character: 4 }, end: { line: 5, character: 4 } },
      context: { diagnostics: [] },
    })) as { kind?: string; command?: { command: string; arguments?: unknown[] } }[] | null;
    const implement = (actions ?? []).find((a) => a.kind === CodeActionKind.implement);
    assert.ok(implement, JSON.stringify(actions));
    assert.equal(implement.command?.command, ServerCommand.implement);
    const expected = implementCall(fileUri, { line: 5, character: 0 });
    assert.deepEqual(
      Object.keys(implement.command.arguments?.[0] as object).sort(),
      Object.keys(expected.arguments[0]).sort(),
    );
    const tests = (actions ?? []).find((a) => a.kind === CodeActionKind.tests);
    assert.equal(tests?.command?.command, ServerCommand.writeTests);
  });

  it("accepts every argument the extension builds", async () => {
    const range = { start: { line: 3, character: 0 }, end: { line: 5, character: 29 } };
    const diagnostic = { range, message: "`re` imported but unused", severity: 2, source: "ruff" };
    const calls: CommandCall[] = [
      implementCall(fileUri, { line: 5, character: 4 }),
      writeTestsCall(fileUri, { line: 9, character: 4 }),
      fixCall(fileUri, range, [diagnostic]),
      editCall(fileUri, range, "accept hours, minutes and seconds"),
      askCall("what calls twice?", fileUri, range),
      askCall("what is this project?"),
      acceptCall("no-such-proposal"),
      acceptCall("no-such-proposal", ["a.py#00000000"]),
      acceptAndCommitCall("no-such-proposal", "feat: x\n", ["a.py#00000000"]),
      runCall("add a vouchers module", "team", fileUri, range),
      runCall("rename twice to double", "solo", fileUri, range),
      runCall("add a changelog", "solo"),
      rejectCall("no-such-proposal"),
      cancelCall("no-such-run"),
      reindexCall(),
      // The code lens's command, which the extension intercepts; its argument is the lens's own.
      { command: ServerCommand.showDiff, arguments: [{ proposalId: "no-such-proposal" }] },
      { command: ServerCommand.acceptAndCommit, arguments: [{ proposalId: "no-such-proposal" }] },
      { command: ServerCommand.reverify, arguments: [{ proposalId: "no-such-proposal" }] },
      { command: ServerCommand.resume, arguments: [{ runId: "no-such-run" }] },
    ];
    assert.deepEqual(new Set(calls.map((c) => c.command)), new Set(Object.values(ServerCommand)));
    for (const call of calls) {
      try {
        const result: unknown = await server.connection.sendRequest(ExecuteCommandRequest.type, call);
        const runId = runIdOf(result);
        if (runId !== undefined) {
          assert.ok(RUN_COMMANDS.includes(call.command), `${call.command} answered a runId`);
          await server.connection.sendRequest(ExecuteCommandRequest.type, cancelCall(runId));
        }
      } catch (error) {
        // Refusing a bogus proposal id, or a command this server build does not run yet, is fine;
        // refusing the shape of the argument is not.
        assert.ok(error instanceof ResponseError, String(error));
        assert.notEqual(error.code, INVALID_PARAMS, `${call.command}: ${error.message}`);
      }
    }
    // The check has teeth: a misspelt field is refused.
    await assert.rejects(
      server.connection.sendRequest(ExecuteCommandRequest.type, {
        command: ServerCommand.implement,
        arguments: [{ uri: fileUri, pos: { line: 1, character: 0 } }],
      }),
      (error: unknown) => error instanceof ResponseError && error.code === INVALID_PARAMS,
    );
  });
});

const BODY = `    hours, minutes = re.fullmatch(r"(?:(\\d+)h)?(?:(\\d+)m)?", text).groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60
`;
const NEW_TEST = `from durations import parse_duration


def test_parse() -> None:
    assert parse_duration("1h30m") == 5400
`;

/** Apply LSP text edits (ASCII text, so UTF-16 columns are string indices). */
function applyEdits(text: string, edits: readonly TextEdit[]): string {
  const lines = text.split("\n");
  const offset = (line: number, character: number): number =>
    lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0) + character;
  const sorted = [...edits].sort(
    (a, b) =>
      offset(b.range.start.line, b.range.start.character) -
      offset(a.range.start.line, a.range.start.character),
  );
  return sorted.reduce(
    (acc, e) =>
      acc.slice(0, offset(e.range.start.line, e.range.start.character)) +
      e.newText +
      acc.slice(offset(e.range.end.line, e.range.end.character)),
    text,
  );
}

describe("a run end to end, on the fake Anthropic API", { skip: NO_REPO, timeout: 120_000 }, () => {
  const ws = NO_REPO === false ? tempWorkspace() : { dir: "", remove: () => undefined };
  const fileUri = pathToFileURL(path.join(ws.dir, "durations.py")).toString();
  const testUri = pathToFileURL(path.join(ws.dir, "tests", "test_durations.py")).toString();
  let fake: FakeAnthropic;
  let server: ServerUnderTest;

  before(async () => {
    writeFileSync(path.join(ws.dir, "durations.py"), STUB);
    fake = new FakeAnthropic(
      [
        `EDIT = "str_replace_based_edit_tool"`,
        `fake.enqueue(`,
        `    turn(text("Plan: parse hours and minutes."), tool_use(EDIT, {"command": "str_replace", "path": "durations.py", "old_str": "    raise NotImplementedError\\n", "new_str": ${JSON.stringify(BODY)}})),`,
        `    tool_use(EDIT, {"command": "create", "path": "tests/test_durations.py", "file_text": ${JSON.stringify(NEW_TEST)}}),`,
        `    text("Implemented parse_duration and added a test."),`,
        `)`,
      ].join("\n"),
    );
    server = new ServerUnderTest({
      workspace: ws.dir,
      userSettings: {
        index: { embedding: { provider: "none" } },
        server: { indexOnStart: false },
        agent: {
          verify: false,
          contextTokenBudget: 2000,
          model: {
            maxTokens: 1024,
            timeout: 10,
            maxRetries: 1,
            retryDeadlineSeconds: 5,
            retryBaseDelay: 0.01,
          },
        },
      },
      anthropicUrl: await fake.url,
    });
    await server.initialize();
  });

  after(async () => {
    try {
      await server.stop();
    } finally {
      fake.stop();
      ws.remove();
    }
  });

  it("shows the proposal as the diff that Accept then applies", async () => {
    const started: unknown = await server.connection.sendRequest(
      ExecuteCommandRequest.type,
      implementCall(fileUri, { line: 5, character: 4 }),
    );
    const runId = runIdOf(started);
    assert.ok(runId !== undefined, JSON.stringify(started));

    const ready: ProposalReady = parseProposalReady(
      await server.next(
        Notification.proposalReady,
        (p) => (p as { runId?: unknown }).runId === runId,
        60_000,
      ),
    );
    assert.equal(ready.summary, "Implemented parse_duration and added a test.");
    assert.deepEqual(ready.files.map((f) => [f.uri, f.kind]).sort(), [
      [fileUri, "modified"],
      [testUri, "created"],
    ]);
    assert.ok(
      server.progress.others().length === 0 && server.titles.some((t) => !isIndexingTitle(t)),
      `the run had a progress of its own, ended: ${JSON.stringify(server.titles)}`,
    );

    const runs = parseRuns(await server.connection.sendRequest(Request.runs, {}));
    const run = runs.find((r) => r.runId === runId);
    assert.ok(run, JSON.stringify(runs));
    assert.equal(run.status, "proposed");
    assert.ok(run.cost !== undefined && run.cost > 0, `cost ${String(run.cost)}`);

    // What Show Diff opens: the current text and the diff applied to it.
    const details = parseProposal(
      await server.connection.sendRequest(Request.proposal, { proposalId: ready.proposalId }),
    );
    const shown = new Map<string, string>();
    for (const file of details.files) {
      const onDisk =
        file.uri === fileUri ? readFileSync(path.join(ws.dir, "durations.py"), "utf8") : undefined;
      const sides = sidesOf(file, onDisk);
      assert.ok(sides.ok, sides.ok ? "" : sides.message);
      shown.set(file.uri, sides.after);
    }
    assert.equal(shown.get(fileUri), STUB.replace("    raise NotImplementedError\n", BODY));
    assert.equal(shown.get(testUri), NEW_TEST);

    // What Accept applies: the server's workspace/applyEdit, which must give the same texts.
    const accepted: unknown = await server.connection.sendRequest(
      ExecuteCommandRequest.type,
      acceptCall(ready.proposalId),
    );
    assert.equal(acceptApplied(accepted), true, JSON.stringify(accepted));
    assert.equal(server.edits.length, 1);
    const texts = new Map<string, string>([[fileUri, STUB]]);
    for (const change of server.edits[0]?.documentChanges ?? []) {
      if ("kind" in change) {
        if (change.kind === "create") {
          texts.set(change.uri, "");
        }
        continue;
      }
      const docEdit: TextDocumentEdit = change;
      const uri = docEdit.textDocument.uri;
      texts.set(uri, applyEdits(texts.get(uri) ?? "", docEdit.edits));
    }
    assert.deepEqual(texts, shown);
  });
});

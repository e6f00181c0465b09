/**
 * src/constants.ts against the server's source: command ids, code action kinds and method names must be
 * the same strings on both sides (design.md makes them a contract).
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

import { CodeActionKind, Notification, Request, ServerCommand } from "../src/constants";
import { NO_REPO, readRepoFile, REPO_ROOT } from "./helpers";

/** The string constants `NAME = "value"` of a Python module. */
function pythonConstants(source: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of source.matchAll(/^([A-Z_][A-Z0-9_]*)\s*(?::\s*\w+\s*)?=\s*"([^"]*)"\s*$/gm)) {
    const [, name, value] = match;
    if (name !== undefined && value !== undefined) {
      found.set(name, value);
    }
  }
  return found;
}

function pythonFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? pythonFiles(full) : entry.name.endsWith(".py") ? [full] : [];
  });
}

describe("constants mirror the server", { skip: NO_REPO }, () => {
  it("has the server's command ids", () => {
    const server = pythonConstants(readRepoFile("server/features/commands.py"));
    const ids = [...server.values()].filter((v) => v.startsWith("agentls."));
    assert.ok(ids.length >= 9, `found only ${String(ids.length)} command ids in commands.py`);
    assert.deepEqual(ids.sort(), Object.values(ServerCommand).sort());
  });

  it("has the server's code action kinds", () => {
    const server = pythonConstants(readRepoFile("server/features/code_actions.py"));
    const kinds = [...server.entries()].filter(([name]) => name.startsWith("KIND_")).map(([, v]) => v);
    assert.deepEqual(kinds.sort(), Object.values(CodeActionKind).sort());
  });

  it("knows every agentls/* method the server names", () => {
    const ours = new Set<string>([...Object.values(Request), ...Object.values(Notification)]);
    const theirs = new Set<string>();
    for (const file of pythonFiles(path.join(REPO_ROOT ?? "", "server"))) {
      const source = readRepoFile(path.relative(REPO_ROOT ?? "", file));
      for (const match of source.matchAll(/"(agentls\/[A-Za-z]+)"/g)) {
        if (match[1] !== undefined) {
          theirs.add(match[1]);
        }
      }
    }
    assert.ok(theirs.has(Request.search), "the server defines agentls/search");
    assert.deepEqual(
      [...theirs].filter((m) => !ours.has(m)),
      [],
      "methods the server has and constants.ts lacks",
    );
  });
});

describe("constants match design.md's contract", () => {
  // Copied from design.md (server/ section). The server may not define every one yet; the names are
  // fixed by the contract all the same, so a change here must be deliberate on both sides.
  it("names the requests and notifications as the contract does", () => {
    assert.deepEqual(
      { ...Request, ...Notification },
      {
        search: "agentls/search",
        proposal: "agentls/proposal",
        runs: "agentls/runs",
        serverStats: "agentls/serverStats",
        proposalReady: "agentls/proposalReady",
        runFailed: "agentls/runFailed",
        runEvent: "agentls/runEvent",
      },
    );
  });

  it("names the commands and code action kinds as the contract does", () => {
    // The first wave's agent actions, the second wave's resume, and the server's additions: showDiff (its
    // "Show diff" code lens), acceptAndCommit (the tool belt's commit path), reverify (per-hunk review) and
    // run (any run, team runs included).
    assert.deepEqual(Object.values(ServerCommand).sort(), [
      "agentls.accept",
      "agentls.acceptAndCommit",
      "agentls.ask",
      "agentls.cancel",
      "agentls.edit",
      "agentls.fix",
      "agentls.implement",
      "agentls.reindex",
      "agentls.reject",
      "agentls.resume",
      "agentls.reverify",
      "agentls.run",
      "agentls.showDiff",
      "agentls.writeTests",
    ]);
    assert.deepEqual(Object.values(CodeActionKind).sort(), [
      "quickfix.agentls.fix",
      "refactor.agentls.tests",
      "refactor.rewrite.agentls.implement",
    ]);
  });
});

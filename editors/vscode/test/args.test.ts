import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ServerCommand } from "../src/constants";
import {
  acceptCall,
  askCall,
  cancelCall,
  editCall,
  fixCall,
  implementCall,
  intersects,
  reindexCall,
  rejectCall,
  union,
  writeTestsCall,
  type Range,
} from "../src/pure/args";

const URI = "file:///w/app.py";
const at = (line: number, character: number) => ({ line, character });
const span = (a: number, b: number, c: number, d: number): Range => ({ start: at(a, b), end: at(c, d) });

describe("command arguments", () => {
  it("builds the one-object argument design.md gives each command", () => {
    assert.deepEqual(implementCall(URI, at(3, 4)), {
      command: "agentls.implement",
      arguments: [{ uri: URI, position: { line: 3, character: 4 } }],
    });
    assert.deepEqual(writeTestsCall(URI, at(0, 0)), {
      command: "agentls.writeTests",
      arguments: [{ uri: URI, position: { line: 0, character: 0 } }],
    });
    assert.deepEqual(acceptCall("p1"), { command: "agentls.accept", arguments: [{ proposalId: "p1" }] });
    assert.deepEqual(rejectCall("p1"), { command: "agentls.reject", arguments: [{ proposalId: "p1" }] });
    assert.deepEqual(cancelCall("r1"), { command: "agentls.cancel", arguments: [{ runId: "r1" }] });
    assert.deepEqual(reindexCall(), { command: "agentls.reindex", arguments: [{}] });
  });

  it("copies positions, so extra fields of editor objects are not sent", () => {
    const vscodeLike = { line: 1, character: 2, isBefore: () => true, translate: () => null };
    const call = implementCall(URI, vscodeLike);
    assert.deepEqual(JSON.parse(JSON.stringify(call.arguments[0])), {
      uri: URI,
      position: { line: 1, character: 2 },
    });
  });

  it("trims the instruction of an edit and refuses an empty one", () => {
    const call = editCall(URI, span(1, 0, 2, 5), "  use pathlib \n");
    assert.equal(call.command, ServerCommand.edit);
    assert.deepEqual(call.arguments[0], { uri: URI, range: span(1, 0, 2, 5), instruction: "use pathlib" });
    assert.throws(() => editCall(URI, span(0, 0, 0, 0), " \n\t"), /instruction is empty/);
  });

  it("asks about a selection, a file, or the workspace", () => {
    assert.deepEqual(askCall(" why? ").arguments[0], { question: "why?" });
    assert.deepEqual(askCall("why?", URI, span(2, 2, 2, 2)).arguments[0], { question: "why?", uri: URI });
    assert.deepEqual(askCall("why?", URI, span(2, 0, 4, 1)).arguments[0], {
      question: "why?",
      uri: URI,
      range: span(2, 0, 4, 1),
    });
    assert.throws(() => askCall(""), /question is empty/);
  });

  it("widens a fix's range to cover every diagnostic sent", () => {
    const diagnostics = [
      { range: span(5, 2, 5, 9), message: "undefined name" },
      { range: span(9, 0, 11, 3), message: "unused" },
    ];
    const call = fixCall(URI, span(6, 0, 6, 0), diagnostics);
    assert.equal(call.command, ServerCommand.fix);
    assert.deepEqual(call.arguments[0], { uri: URI, range: span(5, 2, 11, 3), diagnostics });
  });
});

describe("ranges", () => {
  it("unites and intersects, touching ends included", () => {
    assert.deepEqual(union(span(3, 4, 3, 8), span(1, 0, 3, 5)), span(1, 0, 3, 8));
    assert.equal(intersects(span(1, 0, 1, 5), span(1, 5, 2, 0)), true);
    assert.equal(intersects(span(1, 0, 1, 5), span(1, 6, 2, 0)), false);
    assert.equal(intersects(span(4, 0, 4, 80), span(0, 0, 3, 99)), false);
    assert.equal(intersects(span(0, 0, 9, 0), span(4, 1, 4, 2)), true);
  });
});

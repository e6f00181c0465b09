import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  acceptApplied,
  failureReasonOf,
  parseProposal,
  parseProposalReady,
  parseRunFailed,
  parseRuns,
  proposalIdOf,
  ProtocolError,
  runIdOf,
  statusKind,
} from "../src/pure/protocol";

describe("agentls/proposalReady", () => {
  it("reads files given as objects or as URIs", () => {
    const ready = parseProposalReady({
      proposalId: "p1",
      runId: "r1",
      summary: "Implemented parse",
      files: [{ uri: "file:///w/a.py", kind: "modify" }, "file:///w/b.py"],
      extra: 1,
    });
    assert.deepEqual(ready, {
      proposalId: "p1",
      runId: "r1",
      summary: "Implemented parse",
      files: [
        { uri: "file:///w/a.py", kind: "modify" },
        { uri: "file:///w/b.py", kind: undefined },
      ],
    });
  });

  it("names the missing field and the likely cause", () => {
    assert.throws(
      () => parseProposalReady({ runId: "r1", files: [] }),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message.includes("agentls/proposalReady: `proposalId` must be a string, got undefined") &&
        e.message.includes("different versions"),
    );
    assert.throws(
      () => parseProposalReady({ proposalId: "p", runId: "r", files: [{ kind: "x" }] }),
      /`files\[0\]\.uri`/,
    );
    assert.throws(() => parseProposalReady([]), /the params must be an object, got an array/);
  });
});

describe("agentls/runFailed", () => {
  it("reads the message, with a fallback when there is none", () => {
    assert.deepEqual(parseRunFailed({ runId: "r", message: "budget exceeded" }), {
      runId: "r",
      message: "budget exceeded",
    });
    assert.equal(parseRunFailed({ runId: "r" }).message, "the run failed without a message");
  });
});

describe("agentls/proposal", () => {
  it("reads files with optional texts and the cost from usage", () => {
    const details = parseProposal({
      proposalId: "p1",
      runId: "r1",
      summary: "s",
      diff: "d",
      files: [
        { uri: "file:///w/a.py", kind: "modify", diff: "x" },
        { uri: "file:///w/n.py", kind: "created", diff: "y", newText: "new\n", oldText: null },
        { uri: "file:///w/b.py", oldUri: "file:///w/old_b.py", kind: "renamed", diff: "" },
      ],
      usage: { input_tokens: 10, cost_usd: 0.125 },
    });
    assert.equal(details.cost, 0.125);
    assert.equal(details.files[2]?.oldUri, "file:///w/old_b.py");
    assert.equal(details.files[0]?.newText, undefined);
    assert.equal(details.files[1]?.newText, "new\n");
    assert.equal(details.files[1].oldText, undefined);
    assert.throws(
      () => parseProposal({ proposalId: "p", files: [{ uri: "u", diff: 3 }] }),
      /`files\[0\]\.diff` must be a string when present, got number/,
    );
  });
});

describe("agentls/runs", () => {
  it("reads each run and its cost", () => {
    assert.deepEqual(
      parseRuns([{ runId: "r1", task: "implement f", status: "running", cost: 0.5, usage: {} }]),
      [{ runId: "r1", task: "implement f", status: "running", cost: 0.5 }],
    );
    assert.equal(parseRuns([{ runId: "r1", usage: { costUsd: 0.25 } }])[0]?.cost, 0.25);
    assert.throws(() => parseRuns({}), /the result must be an array/);
  });

  it("tells runs that go on from runs that ended", () => {
    assert.equal(statusKind("running"), "active");
    assert.equal(statusKind("Verifying"), "active");
    assert.equal(statusKind("cancelled"), "ended");
    assert.equal(statusKind(" Done "), "ended");
    // The server's own statuses (server/features/runs.py, agent/loop.py).
    assert.equal(statusKind("running"), "active");
    for (const ended of ["proposed", "no_changes", "failed", "cancelled", "budget_exhausted"]) {
      assert.equal(statusKind(ended), "ended", ended);
    }
    assert.equal(statusKind(""), "unknown");
  });
});

describe("command results", () => {
  it("finds the runId of a run command's answer", () => {
    assert.equal(runIdOf({ runId: "r9" }), "r9");
    assert.equal(runIdOf({ runId: "" }), undefined);
    assert.equal(runIdOf({ folders: [] }), undefined);
    assert.equal(runIdOf(null), undefined);
    assert.equal(runIdOf("r9"), undefined);
  });
});

describe("accept and proposal arguments", () => {
  it("keeps a proposal the editor declined pending", () => {
    assert.equal(acceptApplied({ proposalId: "p", applied: true }), true);
    assert.equal(acceptApplied({ proposalId: "p", applied: false, failureReason: "declined" }), false);
    assert.equal(acceptApplied(null), true, "an answer without `applied` counts as applied");
    // why it was not applied: the answer's reason, said once by the extension
    assert.equal(failureReasonOf({ proposalId: "p", applied: false, failureReason: "declined" }), "declined");
    assert.equal(failureReasonOf({ proposalId: "p", applied: false }), undefined);
  });

  it("reads the proposalId of a command's argument", () => {
    assert.equal(proposalIdOf([{ proposalId: "p1", uri: "file:///x" }]), "p1");
    assert.equal(proposalIdOf([{ proposalId: "" }]), undefined);
    assert.equal(proposalIdOf(["p1"]), undefined);
    assert.equal(proposalIdOf([]), undefined);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ProposalStore, RunTracker, runTitle, taskName } from "../src/pure/state";
import { statusView } from "../src/pure/status";

const ready = (proposalId: string, runId = "r") => ({ proposalId, runId, summary: proposalId, files: [] });

describe("RunTracker", () => {
  it("adds runs from command answers and drops them when they end", () => {
    const runs = new RunTracker();
    runs.started("r1", "agentls.implement");
    runs.started("r2", "agentls.fix");
    assert.equal(runs.size, 2);
    assert.deepEqual(runs.finished("r1"), {
      runId: "r1",
      task: "implement",
      cost: undefined,
      command: "agentls.implement",
    });
    assert.equal(runs.finished("r1"), undefined);
    assert.deepEqual(runs.views(), [{ runId: "r2", task: "fix", cost: undefined }]);
  });

  it("does not revive a run whose end overtook its start or that a later poll still lists", () => {
    const runs = new RunTracker();
    runs.finished("r1");
    runs.started("r1", "agentls.implement");
    runs.merge([{ runId: "r1", task: "implement", status: "running", cost: 0.1 }]);
    assert.equal(runs.size, 0);
  });

  it("merges polls: costs and tasks of active runs, new active runs, and ends", () => {
    const runs = new RunTracker();
    runs.started("r1", "agentls.implement");
    runs.started("r2", "agentls.fix");
    runs.merge([
      { runId: "r1", task: "implement parse_args", status: "verifying", cost: 0.2 },
      { runId: "r2", task: "", status: "no_changes", cost: 0.3 },
      { runId: "r3", task: "write tests", status: "running", cost: undefined },
      { runId: "old", task: "ask", status: "", cost: 1 },
    ]);
    assert.deepEqual(runs.views(), [
      { runId: "r1", task: "implement parse_args", cost: 0.2 },
      { runId: "r3", task: "write tests", cost: undefined },
    ]);
    runs.merge([{ runId: "r1", task: "", status: "", cost: undefined }]);
    assert.deepEqual(
      runs.views()[0],
      { runId: "r1", task: "implement parse_args", cost: 0.2 },
      "an empty poll entry keeps what is known",
    );
  });

  it("remembers the command that started a run through polls, for what to do when it ends", () => {
    const runs = new RunTracker();
    runs.started("r1", "agentls.ask");
    runs.merge([{ runId: "r1", task: "Ask: what calls twice?", status: "running", cost: 0.01 }]);
    assert.deepEqual(runs.finished("r1"), {
      runId: "r1",
      task: "Ask: what calls twice?",
      cost: 0.01,
      command: "agentls.ask",
    });
  });

  it("names a run by what its command was asked from the start, until a poll brings the server's title", () => {
    const runs = new RunTracker();
    runs.started("r1", "agentls.run", [
      { instruction: "Add a --verbose flag\nand document it", mode: "solo" },
    ]);
    const shown = () =>
      statusView({ server: "running", indexing: [], runs: runs.views(), pendingProposals: 0 }).text;
    assert.equal(shown(), "$(hubot) Run: Add a --verbose flag");
    runs.merge([
      { runId: "r1", task: "Run: Add a --verbose flag and document it", status: "running", cost: 0 },
    ]);
    assert.equal(runs.views()[0]?.task, "Run: Add a --verbose flag and document it");
  });

  it("remembers which runs the user cancelled", () => {
    const runs = new RunTracker();
    runs.started("r1", "agentls.edit");
    runs.cancelling("r1");
    assert.equal(runs.wasCancelled("r1"), true);
    assert.equal(runs.wasCancelled("r2"), false);
    runs.clear();
    assert.equal(runs.wasCancelled("r1"), false);
  });
});

describe("ProposalStore", () => {
  it("lists newest first and moves a re-announced proposal to the front", () => {
    const store = new ProposalStore();
    store.add(ready("p1"));
    store.add(ready("p2"));
    store.add(ready("p3"));
    store.add(ready("p1"));
    assert.deepEqual(
      store.list().map((p) => p.proposalId),
      ["p1", "p3", "p2"],
    );
    assert.equal(store.remove("p3"), true);
    assert.equal(store.remove("p3"), false);
    assert.equal(store.size, 2);
    assert.equal(store.get("p2")?.summary, "p2");
  });
});

describe("taskName", () => {
  it("names a run by its command", () => {
    assert.equal(taskName("agentls.implement"), "implement");
    assert.equal(taskName("agentls.writeTests"), "write tests");
  });
});

describe("runTitle", () => {
  const file = "file:///home/me/shop/pricing%20rules.py";
  it("says what the command's arguments ask, as the server's titles do", () => {
    assert.equal(
      runTitle("agentls.run", [{ instruction: "  fix the flaky test  \r\nmore" }]),
      "Run: fix the flaky test",
    );
    assert.equal(
      runTitle("agentls.edit", [{ uri: file, instruction: "use f-strings" }]),
      "Edit: use f-strings",
    );
    assert.equal(runTitle("agentls.ask", [{ question: "what calls total()?" }]), "Ask: what calls total()?");
    const position = { line: 6, character: 4 };
    assert.equal(runTitle("agentls.implement", [{ uri: file, position }]), "Implement at pricing rules.py:7");
    assert.equal(
      runTitle("agentls.writeTests", [{ uri: file, position }]),
      "Write tests at pricing rules.py:7",
    );
    const range = { start: position, end: position };
    assert.equal(
      runTitle("agentls.fix", [{ uri: file, range, diagnostics: [{}, {}] }]),
      "Fix 2 problems in pricing rules.py",
    );
    assert.equal(runTitle("agentls.run", [{ instruction: "x".repeat(100) }]), `Run: ${"x".repeat(77)}...`);
  });

  it("falls back to the command's name when the arguments say nothing", () => {
    assert.equal(runTitle("agentls.run", []), "run");
    assert.equal(runTitle("agentls.implement", [null]), "implement");
    assert.equal(runTitle("agentls.writeTests", [{ uri: 3 }]), "write tests");
  });
});

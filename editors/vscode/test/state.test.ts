import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ProposalStore, RunTracker, taskName } from "../src/pure/state";

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

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ClientCommand } from "../src/constants";
import {
  clickCommand,
  formatCost,
  isIndexingTitle,
  ProgressTracker,
  runChoices,
  serverLostText,
  statusView,
  totalCost,
} from "../src/pure/status";

const idle = { server: "running" as const, indexing: [], runs: [], pendingProposals: 0 };

describe("formatCost", () => {
  it("shows cents, and a fraction of a cent as <$0.01", () => {
    assert.equal(formatCost(0.0412), "$0.04");
    assert.equal(formatCost(1.5), "$1.50");
    assert.equal(formatCost(0.003), "<$0.01");
    assert.equal(formatCost(0), "$0.00");
    assert.equal(formatCost(undefined), undefined);
    assert.equal(formatCost(Number.NaN), undefined);
  });

  it("sums only the costs that are known", () => {
    assert.equal(totalCost([{ runId: "a", task: "", cost: undefined }]), undefined);
    assert.equal(
      totalCost([
        { runId: "a", task: "", cost: 0.5 },
        { runId: "b", task: "", cost: undefined },
        { runId: "c", task: "", cost: 0.25 },
      ]),
      0.75,
    );
  });
});

describe("statusView", () => {
  it("says ready when nothing goes on", () => {
    assert.equal(statusView(idle).text, "$(sparkle) agentls");
  });

  it("shows the slowest folder's indexing percentage", () => {
    const view = statusView({
      ...idle,
      indexing: [
        { title: "agentls: indexing api", message: "120/400 files", percentage: 30 },
        { title: "agentls: indexing web", message: undefined, percentage: 80 },
      ],
    });
    assert.equal(view.text, "$(sync~spin) indexing 30%");
    assert.match(view.tooltip, /agentls: indexing api 30%: 120\/400 files/);
  });

  it("shows one run by its task, several by count, with the cost so far", () => {
    const one = statusView({ ...idle, runs: [{ runId: "r1", task: "implement", cost: 0.04 }] });
    assert.equal(one.text, "$(hubot) implement · $0.04");
    assert.match(one.tooltip, /Run r1: implement \(\$0\.04 so far\)/);
    const two = statusView({
      ...idle,
      indexing: [{ title: "agentls: indexing w", message: undefined, percentage: undefined }],
      runs: [
        { runId: "r1", task: "implement", cost: 0.04 },
        { runId: "r2", task: "fix", cost: 0.1 },
      ],
      pendingProposals: 1,
    });
    assert.equal(two.text, "$(sync~spin) indexing  $(hubot) 2 runs · $0.14  $(git-pull-request) 1 proposal");
  });

  it("says how to recover when the server is down", () => {
    const view = statusView({ ...idle, server: "failed", runs: [{ runId: "r", task: "x", cost: 1 }] });
    assert.equal(view.text, "$(error) agentls");
    assert.match(view.tooltip, /Click to restart/);
  });
});

describe("a click on the status bar", () => {
  const run = { runId: "r1", task: "Implement `mean` in stats.py", cost: 0.04 };

  it("never cancels a run at once: it lists the runs, to keep or cancel", () => {
    assert.equal(clickCommand({ ...idle, runs: [run] }), ClientCommand.showRuns);
    assert.equal(clickCommand({ ...idle, runs: [run], pendingProposals: 1 }), ClientCommand.showRuns);
    assert.equal(clickCommand({ ...idle, pendingProposals: 1 }), ClientCommand.showDiff);
    assert.equal(clickCommand(idle), ClientCommand.showOutput);
    assert.equal(clickCommand({ ...idle, server: "stopped", runs: [run] }), ClientCommand.restart);
    assert.match(statusView({ ...idle, runs: [run] }).tooltip, /Click to see the runs: keep them going/);
  });

  it("offers to keep running first (what Enter picks), then to cancel each run by its task", () => {
    const choices = runChoices([run, { runId: "r2", task: "", cost: undefined }], 0);
    assert.deepEqual(
      choices.map((c) => [c.label, c.description, c.detail, c.action]),
      [
        ["$(play) Keep them running", "close this list", undefined, { kind: "keep" }],
        [
          "$(debug-stop) Cancel run: Implement `mean` in stats.py",
          "$0.04 so far",
          "run r1",
          { kind: "cancel", runId: "r1" },
        ],
        ["$(debug-stop) Cancel run: agent run", "", "run r2", { kind: "cancel", runId: "r2" }],
        ["$(output) Show Output", "the agentls log", undefined, { kind: "output" }],
      ],
    );
    const one = runChoices([run], 2);
    assert.equal(one[0]?.label, "$(play) Keep running");
    assert.deepEqual(
      one.map((c) => c.action.kind),
      ["keep", "cancel", "proposals", "output"],
    );
    assert.equal(one[2]?.description, "2 proposals wait");
  });
});

describe("ProgressTracker", () => {
  it("follows begin, report and end per token and sorts indexing from runs", () => {
    const tracker = new ProgressTracker();
    assert.equal(tracker.update("t1", { kind: "begin", title: "agentls: indexing w", percentage: 0 }), true);
    assert.equal(tracker.update(7, { kind: "begin", title: "agentls: implement parse" }), true);
    tracker.update("t1", { kind: "report", message: "10 files", percentage: 40 });
    tracker.update("t1", { kind: "report", message: "12 files" });
    assert.deepEqual(tracker.indexing(), [
      { title: "agentls: indexing w", message: "12 files", percentage: 40 },
    ]);
    assert.deepEqual(
      tracker.others().map((p) => p.title),
      ["agentls: implement parse"],
    );
    assert.equal(tracker.update("t1", { kind: "end" }), true);
    assert.deepEqual(tracker.indexing(), []);
    assert.equal(
      tracker.update("t1", { kind: "report", percentage: 50 }),
      false,
      "a report after end is ignored",
    );
    assert.equal(tracker.update("7", { kind: "end" }), true, "numeric and string tokens are the same token");
    assert.deepEqual(tracker.others(), []);
  });

  it("recognises indexing titles", () => {
    assert.equal(isIndexingTitle("agentls: indexing agentls"), true);
    assert.equal(isIndexingTitle("Reindexing ws"), true);
    assert.equal(isIndexingTitle("agentls: implement index_of"), false);
    assert.equal(isIndexingTitle("agentls: Edit: add an index to the users table"), false);
    assert.equal(isIndexingTitle("agentls: Implement `reindex` in db.py"), false);
  });
});

describe("serverLostText", () => {
  it("says the server restarts and what went with it", () => {
    const text = serverLostText(true, [{ runId: "r1", task: "Implement `mean` in stats.py", cost: 0.1 }], 1);
    assert.match(text, /stopped unexpectedly and is restarting/);
    assert.match(text, /the run “Implement `mean` in stats.py” and 1 proposal waiting for review/);
    assert.match(text, /start them again/);
  });

  it("counts several runs, and says when nothing was lost", () => {
    const runs = [
      { runId: "r1", task: "a", cost: undefined },
      { runId: "r2", task: "", cost: undefined },
    ];
    assert.match(serverLostText(true, runs, 0), /Lost with it: 2 runs; start them again\.$/);
    assert.match(serverLostText(true, [], 2), /Lost with it: 2 proposals waiting for review; start them/);
    assert.match(
      serverLostText(true, [{ runId: "r9", task: "", cost: undefined }], 0),
      /the run “run r9”; start it/,
    );
    assert.match(serverLostText(true, [], 0), /No run was going and no proposal was waiting\.$/);
  });

  it("says when the server is not restarted, and how to restart it", () => {
    assert.match(serverLostText(false, [], 0), /was not restarted .*Restart Server/);
  });
});

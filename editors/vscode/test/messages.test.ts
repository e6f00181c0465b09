import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { failureText, notAppliedText } from "../src/pure/messages";

const ACCEPT = { doing: "could not accept", subject: "proposal p1" };
const COMMIT = { doing: "could not commit", subject: "proposal p1" };

/** How often `needle` occurs in `text`. */
function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

describe("failureText", () => {
  it("says the server's refusal of an accept or a commit as it is: one prefix, the proposal named once", () => {
    const accept = "agentls did not apply proposal p1: mathx/stats.py changed at lines 19-19";
    assert.equal(failureText(accept, ACCEPT), accept);
    const commit = "agentls did not commit proposal p1: the editor did not apply the change";
    assert.equal(failureText(commit, COMMIT), commit);
    // a code lens's refusal (no attempt of the extension's own)
    assert.equal(failureText(accept), accept);
    for (const text of [failureText(accept, ACCEPT), failureText(commit, COMMIT), failureText(accept)]) {
      assert.equal(count(text, "agentls"), 1, text);
      assert.equal(count(text, "proposal p1"), 1, text);
    }
  });

  it("puts agentls before an answer that names the proposal, without naming it again", () => {
    assert.equal(
      failureText("proposal p1 was already accepted; nothing was accepted again", ACCEPT),
      "agentls: proposal p1 was already accepted; nothing was accepted again",
    );
    assert.equal(
      failureText("there is no proposal p1 in this server", { doing: "cannot show", subject: "proposal p1" }),
      "agentls: there is no proposal p1 in this server",
    );
    assert.equal(
      failureText("there is no run r7 in this server; `agentls/runs` lists the runs", {
        doing: "could not cancel",
        subject: "run r7",
      }),
      "agentls: there is no run r7 in this server; `agentls/runs` lists the runs",
    );
  });

  it("says what the extension was doing when the answer does not", () => {
    assert.equal(
      failureText("the server stopped before it answered (the agentls output has its log)", ACCEPT),
      "agentls: could not accept proposal p1: the server stopped before it answered (the agentls output has its log)",
    );
    // another proposal's id is not this one's ("p10" is not "p1")
    assert.equal(
      failureText("proposal p10 is being applied; wait for the editor to finish", ACCEPT),
      "agentls: could not accept proposal p1: proposal p10 is being applied; wait for the editor to finish",
    );
    assert.equal(failureText("  ", ACCEPT), "agentls: could not accept proposal p1: no reason given");
    assert.equal(failureText("the index is busy"), "agentls: the index is busy");
  });
});

describe("notAppliedText", () => {
  it("words the server's generic reason for VS Code: the preview discarded or nothing ticked", () => {
    for (const reason of ["the editor declined the edit", "the editor declined the edit.", undefined]) {
      const text = notAppliedText("p1", reason);
      assert.match(text, /^agentls: proposal p1 was not applied: the Refactor Preview was discarded/);
      assert.match(text, /tick the files/);
    }
  });

  it("says any other reason of the answer as the server gave it, once", () => {
    const reason =
      "Edits on 'stats.py' require version 3. Your editor holds changes it has not sent to agentls yet " +
      "(it sends them after a pause in typing); wait a second, or save the file, and accept again. The " +
      "proposal is still pending.";
    assert.equal(notAppliedText("p1", reason), `agentls: proposal p1 was not applied: ${reason}`);
    assert.equal(notAppliedText("p1", "busy"), "agentls: proposal p1 was not applied: busy.");
  });
});

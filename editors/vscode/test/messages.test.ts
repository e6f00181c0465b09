import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MESSAGE_WINDOW_MS, notAppliedText, ServerMessages } from "../src/pure/messages";

/** A clock the test moves by hand. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

describe("ServerMessages", () => {
  it("shows the server's messages as they come, and knows which it showed", () => {
    const messages = new ServerMessages();
    const refused = "agentls did not apply proposal p1: mathx/stats.py changed at lines 19-19";
    assert.equal(messages.receive(refused), refused);
    // The error answer has the same text: the extension does not say it a second time.
    assert.equal(messages.said(refused), true);
    assert.equal(messages.said("agentls did not apply proposal p2: x"), false);
    assert.equal(messages.said(""), false);
  });

  it("words the server's generic refusal of the edit for VS Code, once", () => {
    const messages = new ServerMessages();
    const shown = messages.receive("proposal p1 was not applied: the editor declined the edit.");
    assert.equal(shown, notAppliedText("p1"));
    assert.match(shown, /Refactor Preview/);
    assert.match(shown, /tick the files/);
    assert.equal(messages.said("proposal p1 was not applied"), true);
    // A reason the server knows better (a buffer ahead of it) is its own text, hint and all.
    const version =
      "proposal p2 was not applied: version mismatch. Your editor holds changes it has not sent to agentls yet";
    assert.equal(messages.receive(version), version);
  });

  it("drops the one message the extension expects, and only within the window", () => {
    const time = clock();
    const messages = new ServerMessages(time.now);
    messages.expect((text) => text.includes("proposal p1 was not applied"));
    assert.equal(messages.receive("proposal p1 was not applied: the editor declined the edit."), undefined);
    // used up: the next one is shown
    assert.notEqual(
      messages.receive("proposal p1 was not applied: the editor declined the edit."),
      undefined,
    );
    const undo = messages.expect((text) => text.startsWith("agentls committed"));
    undo();
    assert.equal(messages.receive("agentls committed abc on main: x"), "agentls committed abc on main: x");
    messages.expect((text) => text === "late");
    time.advance(MESSAGE_WINDOW_MS + 1);
    assert.equal(messages.receive("late"), "late");
  });

  it("forgets what it showed after the window", () => {
    const time = clock();
    const messages = new ServerMessages(time.now);
    messages.receive("agentls did not commit proposal p1: the branch moved");
    time.advance(MESSAGE_WINDOW_MS + 1);
    assert.equal(messages.said("agentls did not commit proposal p1: the branch moved"), false);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NO_REPO, runPython } from "./helpers";

import { acceptAndCommitCall, acceptCall, runCall } from "../src/pure/args";
import {
  commitOf,
  parseProposal,
  parseRunEvent,
  pendingHunksOf,
  type ProposalFile,
} from "../src/pure/protocol";
import { sidesOf } from "../src/pure/proposal";
import {
  acceptPlan,
  hunkAtLine,
  hunksAsShown,
  joinMessage,
  runEventLines,
  splitMessage,
  verdictLines,
} from "../src/pure/review";

function file(uri: string, hunks: ProposalFile["hunks"]): ProposalFile {
  return {
    uri,
    oldUri: undefined,
    kind: "modified",
    diff: "",
    oldText: undefined,
    newText: undefined,
    hunks,
  };
}

// Lines 2 and 5 of a.py changed; line 8 deleted (nothing on the after side); b.py created.
const A = file("file:///w/a.py", [
  { id: "a#1", oldStart: 2, oldLines: 1, newStart: 2, newLines: 1 },
  { id: "a#2", oldStart: 5, oldLines: 1, newStart: 5, newLines: 2 },
  { id: "a#3", oldStart: 8, oldLines: 1, newStart: 9, newLines: 0 },
]);
const B = file("file:///w/b.py", [{ id: "b#1", oldStart: 1, oldLines: 0, newStart: 1, newLines: 3 }]);

describe("per-hunk review", () => {
  it("finds the hunk at a line of either side", () => {
    assert.equal(hunkAtLine(A.hunks, 1, "after")?.id, "a#1");
    assert.equal(hunkAtLine(A.hunks, 5, "after")?.id, "a#2"); // the second added line
    assert.equal(hunkAtLine(A.hunks, 2, "after"), undefined); // unchanged
    assert.equal(hunkAtLine(A.hunks, 7, "before")?.id, "a#3");
    assert.equal(hunkAtLine(A.hunks, 8, "after")?.id, "a#3"); // where the deletion was
    assert.equal(hunkAtLine(B.hunks, 2, "after")?.id, "b#1");
  });

  it("accepts what the user did not reject, and rejects when nothing is left", () => {
    assert.deepEqual(acceptPlan([A, B], new Set()), {
      action: "accept",
      hunks: ["a#1", "a#2", "a#3", "b#1"],
    });
    assert.deepEqual(acceptPlan([A, B], new Set(["b#1"])), {
      action: "partial",
      hunks: ["a#1", "a#2", "a#3"],
    });
    assert.deepEqual(acceptPlan([A, B], new Set(["a#1", "a#2", "a#3", "b#1"])), {
      action: "reject",
      hunks: [],
    });
  });

  it("sends hunks, the edited message and team runs in the contract's shape", () => {
    assert.deepEqual(acceptCall("p1", ["a#1"]).arguments, [{ proposalId: "p1", hunks: ["a#1"] }]);
    assert.deepEqual(acceptCall("p1").arguments, [{ proposalId: "p1" }]);
    assert.deepEqual(acceptAndCommitCall("p1", "feat: x\n", ["a#1"]), {
      command: "agentls.acceptAndCommit",
      arguments: [{ proposalId: "p1", message: "feat: x\n", hunks: ["a#1"] }],
    });
    assert.deepEqual(acceptAndCommitCall("p1", " ").arguments, [{ proposalId: "p1" }]);
    const sel = { start: { line: 1, character: 0 }, end: { line: 3, character: 2 } };
    assert.deepEqual(runCall(" add vouchers ", "team", "file:///w/a.py", sel), {
      command: "agentls.run",
      arguments: [{ instruction: "add vouchers", mode: "team", uri: "file:///w/a.py", range: sel }],
    });
    // A free-form task (solo): the workspace when no file is given.
    assert.deepEqual(runCall("add a changelog", "solo").arguments, [
      { instruction: "add a changelog", mode: "solo" },
    ]);
    assert.throws(() => runCall("  ", "team"), /instruction is empty/);
  });

  it("edits the subject of a commit message and keeps its body", () => {
    const { subject, body } = splitMessage("feat(x): add y\n\nWhy and how.\n\nTests pass.\n");
    assert.equal(subject, "feat(x): add y");
    assert.equal(
      joinMessage("feat(x): add y, edited", body),
      "feat(x): add y, edited\n\nWhy and how.\n\nTests pass.\n",
    );
    assert.equal(joinMessage("fix: z", ""), "fix: z\n");
  });

  it("reads hunks, the commit message, the team, pending hunks and the commit from the server", () => {
    const details = parseProposal({
      proposalId: "p1",
      files: [
        {
          uri: "file:///w/a.py",
          diff: "",
          hunks: [{ id: "a#1", oldStart: 2, oldLines: 1, newStart: 2, newLines: 1 }],
        },
      ],
      commitMessage: "feat: x\n",
      team: { review: { passed: true, criteria: [] } },
    });
    assert.equal(details.files[0]?.hunks[0]?.id, "a#1");
    assert.equal(details.commitMessage, "feat: x\n");
    assert.deepEqual(details.team, { review: { passed: true, criteria: [] } });
    assert.throws(
      () => parseProposal({ proposalId: "p", files: [{ uri: "u", hunks: [{ id: "h" }] }] }),
      /oldStart/,
    );
    assert.deepEqual(pendingHunksOf({ applied: true, pendingHunks: ["b#1"] }), ["b#1"]);
    assert.equal(pendingHunksOf({ applied: true }), undefined);
    assert.deepEqual(commitOf({ applied: true, commit: "abc", branch: "main" }), {
      commit: "abc",
      branch: "main",
    });
  });
});

describe("the hunk at the cursor of a diff tab shown on text the user changed", { skip: NO_REPO }, () => {
  // The server's own hunks and diffs (server/features/runs/proposals.py) of a proposal made on `base`,
  // shown on the user's text now (lines typed above and between the hunks while the agent worked), and
  // again after the first hunk was accepted (what is left is re-proposed on the new text).
  const script = `
import json
from agent.overlay import FileChange, unified_diff
from server.features.runs.proposals import file_hunks, prepare_changes, split_hunks
base = "".join(f"line {i}\\n" for i in range(1, 41))
new = base.replace("line 5\\n", "LINE 5\\n").replace("line 20\\n", "LINE 20\\nADDED 20b\\n")
new = new.replace("line 35\\n", "")
change = FileChange("f.py", "modified", None, base, new, None, unified_diff("f.py", "f.py", base, new))
current = "typed 1\\ntyped 2\\ntyped 3\\n" + base.replace("line 12\\n", "line 12\\ntyped 12b\\n")
def case(change, current):
    old, new = change.base_text.splitlines(), change.new_text.splitlines()
    hunks = [
        {"id": h.id, "oldStart": h.old_start, "oldLines": h.old_lines, "newStart": h.new_start,
         "newLines": h.new_lines, "old": old[h.old_start - 1:h.old_start - 1 + h.old_lines],
         "new": new[h.new_start - 1:h.new_start - 1 + h.new_lines]}
        for h in file_hunks(change)
    ]
    return {"diff": change.diff, "hunks": hunks, "current": current}
first = file_hunks(change)[0].id
chosen, rest = split_hunks([change], [first])
after_first = prepare_changes(chosen, lambda path: current)[0].new_text
print(json.dumps([case(change, current), case(rest[0], after_first)]))
`;
  interface Case {
    diff: string;
    current: string;
    hunks: (ProposalFile["hunks"][number] & { old: string[]; new: string[] })[];
  }
  const cases = NO_REPO === false ? (JSON.parse(runPython(script)) as Case[]) : [];

  for (const [name, index] of [
    ["as the run proposed it", 0],
    ["after its first hunk was accepted", 1],
  ] as const) {
    it(`is the hunk under it, ${name}`, () => {
      const c = cases[index];
      assert.ok(c);
      const shown: ProposalFile = { ...file("file:///w/f.py", c.hunks), diff: c.diff };
      const sides = sidesOf(shown, c.current);
      assert.ok(sides.ok, sides.ok ? "" : sides.message);
      const hunks = hunksAsShown(shown, sides.before);
      let checked = 0;
      for (const side of ["before", "after"] as const) {
        const lines: string[] = (side === "before" ? sides.before : sides.after).split("\n");
        for (const [at, text] of lines.entries()) {
          const owner: Case["hunks"][number] | undefined = c.hunks.find((h) =>
            (side === "before" ? h.old : h.new).includes(text),
          );
          const found = hunkAtLine(hunks, at, side);
          if (owner !== undefined) {
            assert.equal(found?.id, owner.id, `${side} line ${String(at + 1)}: ${text}`);
            checked += 1;
          } else if (text.startsWith("typed") || text === "line 10") {
            assert.equal(found, undefined, `${side} line ${String(at + 1)}: ${text}`);
          }
        }
      }
      assert.ok(checked >= (index === 0 ? 5 : 3), `only ${String(checked)} changed lines checked`);
    });
  }

  it("leaves the hunks where the server says when the tab shows its texts or the diff does not apply", () => {
    const c = cases[0];
    assert.ok(c);
    const shown: ProposalFile = { ...file("file:///w/f.py", c.hunks), diff: c.diff };
    assert.deepEqual(hunksAsShown(shown, "something else entirely\n"), shown.hunks);
    const withTexts: ProposalFile = { ...shown, oldText: "x\n", newText: "y\n" };
    assert.deepEqual(hunksAsShown(withTexts, c.current), shown.hunks);
  });
});

describe("team runs", () => {
  it("writes the plan, role changes and handoffs as they arrive", () => {
    const todo = parseRunEvent({
      runId: "r1",
      kind: "todo",
      items: [
        { id: "1", text: "spec", status: "done" },
        { id: "2", text: "code", status: "in_progress" },
        { id: "3", text: "review", status: "pending" },
      ],
    });
    assert.deepEqual(runEventLines(todo), ["Plan:", "  [x] spec", "  [~] code", "  [ ] review"]);
    const role = parseRunEvent({
      runId: "r1",
      kind: "role",
      role: "coder",
      node: "coder-1",
      state: "started",
    });
    assert.deepEqual(runEventLines(role), ["coder (coder-1): started"]);
    const handoff = parseRunEvent({
      runId: "r1",
      kind: "handoff",
      role: "architect",
      node: "architect",
      handoff: "Design",
      document: { summary: "s" },
      markdown: "**Design**\n- create a.py",
    });
    assert.deepEqual(runEventLines(handoff), ["## architect: Design", "**Design**", "- create a.py", ""]);
    assert.throws(() => parseRunEvent({ kind: "todo" }), /runId/);
  });

  it("writes a run's warning with its subject and message", () => {
    const warning = parseRunEvent({
      runId: "r1",
      kind: "warning",
      subject: "interpreter",
      message:
        "The sandbox could not run .venv/bin/python; tests run with the host's python3.\nSet agent.python.",
    });
    assert.deepEqual(runEventLines(warning), [
      "warning (interpreter): The sandbox could not run .venv/bin/python; tests run with the host's python3.",
      "  Set agent.python.",
    ]);
  });

  it("shows the QA verdict per criterion", () => {
    assert.deepEqual(
      verdictLines({
        review: { passed: false, criteria: [{ id: "AC1", verdict: "fail", evidence: "test_x fails" }] },
      }),
      ["QA verdict: FAILED", "  AC1 fail: test_x fails"],
    );
    assert.deepEqual(verdictLines(undefined), []);
  });
});

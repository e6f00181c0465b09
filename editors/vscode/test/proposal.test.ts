import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { ProposalFile } from "../src/pure/protocol";
import {
  baseName,
  decodeAddress,
  diffTitle,
  encodeAddress,
  isCreated,
  isDeleted,
  liveSidesOf,
  notificationText,
  patchShownText,
  sidesOf,
} from "../src/pure/proposal";

function file(over: Partial<ProposalFile>): ProposalFile {
  return {
    uri: "file:///w/a.py",
    oldUri: undefined,
    kind: "modified",
    diff: "",
    oldText: undefined,
    newText: undefined,
    hunks: [],
    ...over,
  };
}

const DIFF =
  "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n def f():\n-    pass\n+    return 1\n";

describe("sidesOf", () => {
  it("uses the server's texts when it sends them", () => {
    assert.deepEqual(sidesOf(file({ oldText: "o", newText: "n", diff: "garbage" }), "current"), {
      ok: true,
      before: "o",
      after: "n",
    });
    assert.deepEqual(sidesOf(file({ newText: "n" }), "current"), { ok: true, before: "current", after: "n" });
  });

  it("rebuilds the new text from the diff and the current text", () => {
    assert.deepEqual(sidesOf(file({ diff: DIFF }), "def f():\n    pass\n"), {
      ok: true,
      before: "def f():\n    pass\n",
      after: "def f():\n    return 1\n",
    });
  });

  it("starts a created file from nothing, and empties a deleted one", () => {
    const created = file({ kind: "create", diff: "--- /dev/null\n+++ b/a.py\n@@ -0,0 +1 @@\n+x = 1\n" });
    assert.deepEqual(sidesOf(created, undefined), { ok: true, before: "", after: "x = 1\n" });
    assert.deepEqual(sidesOf(file({ kind: "delete", diff: "whatever" }), "gone\n"), {
      ok: true,
      before: "gone\n",
      after: "",
    });
  });

  it("says why when the diff no longer applies or cannot be read", () => {
    const stale = sidesOf(file({ diff: DIFF }), "def f():\n    raise NotImplementedError\n");
    assert.equal(stale.ok, false);
    assert.match(stale.message, /changed since the proposal was made/);
    const broken = sidesOf(file({ diff: "--- a/a.py\n+++ b/a.py\n@@ -1,5 +1,5 @@\n x\n" }), "x\n");
    assert.match(broken.ok ? "" : broken.message, /cannot be read: the hunk .* is cut short/);
    const missing = sidesOf(file({ diff: DIFF }), undefined);
    assert.match(missing.ok ? "" : missing.message, /does not exist any more/);
  });

  it("keeps the text of a rename as it is", () => {
    const renamed = file({
      kind: "rename",
      diff: "diff --git a/a.py b/b.py\nrename from a.py\nrename to b.py\n",
    });
    assert.deepEqual(sidesOf(renamed, "same\n"), { ok: true, before: "same\n", after: "same\n" });
  });
});

describe("liveSidesOf: a diff tab at Show Diff and after the user edited the file", () => {
  const proposal = file({ diff: DIFF });
  const base = "def f():\n    pass\n";

  it("shows the proposal on the edited text, with a line typed above the hunk on both sides", () => {
    const typed = `# typed after the tab opened\n${base}`;
    assert.deepEqual(liveSidesOf(proposal, typed, true), {
      before: typed,
      after: "# typed after the tab opened\ndef f():\n    return 1\n",
      applies: true,
      problem: undefined,
      warning: undefined,
    });
  });

  it("shows a note and the patch once the diff stops applying, and warns only as it stops", () => {
    const edited = "def f():\n    raise NotImplementedError\n";
    const stopped = liveSidesOf(proposal, edited, true);
    assert.equal(stopped.applies, false);
    assert.equal(stopped.before, stopped.after);
    assert.match(
      stopped.after,
      /^agentls: the proposal's diff no longer applies to your text of a\.py:\nhunk 1 of 1 .* made\.\n/,
    );
    assert.match(stopped.after, /Undo your edit to see the side-by-side diff again/);
    assert.ok(stopped.after.endsWith(`\n\n${DIFF}`), stopped.after);
    const problem =
      "a.py: hunk 1 of 1 (@@ -1,2 +1,2 @@) does not match the current text: the file " +
      "changed since the proposal was made";
    assert.equal(stopped.problem, problem);
    assert.equal(stopped.warning, patchShownText([problem]));
    // Typing on while it does not apply: the same note, no new warning.
    const more = liveSidesOf(proposal, `${edited}# more\n`, false);
    assert.equal(more.applies, false);
    assert.equal(more.warning, undefined);
    // Undone: the side-by-side diff again, without a warning.
    assert.deepEqual(liveSidesOf(proposal, base, false), {
      before: base,
      after: "def f():\n    return 1\n",
      applies: true,
      problem: undefined,
      warning: undefined,
    });
    // Broken again after it came back: a new break, so a new warning.
    assert.equal(liveSidesOf(proposal, edited, true).warning, patchShownText([problem]));
  });
});

describe("file kinds", () => {
  it("reads the kind, else the diff's headers", () => {
    assert.equal(isCreated(file({ kind: "create" })), true);
    assert.equal(
      isCreated(file({ kind: undefined, diff: "diff --git a/n b/n\nnew file mode 100644\n" })),
      true,
    );
    assert.equal(isCreated(file({ kind: undefined, diff: DIFF })), false);
    assert.equal(isDeleted(file({ kind: undefined, diff: "--- a/x\n+++ /dev/null\n" })), true);
    assert.equal(isDeleted(file({ kind: "modify", diff: "+++ /dev/null\n" })), false);
  });
});

describe("proposal document addresses", () => {
  it("round-trip ids and URIs with characters that need escaping", () => {
    const address = { proposalId: "p 1&x=2", side: "after" as const, fileUri: "file:///w/a%20b/c.py?q#f" };
    assert.deepEqual(decodeAddress(encodeAddress(address)), address);
  });

  it("refuse queries that are not ours", () => {
    assert.equal(decodeAddress(""), undefined);
    assert.equal(decodeAddress("proposal=p&side=middle&file=f"), undefined);
    assert.equal(decodeAddress("side=after&file=f"), undefined);
  });
});

describe("titles and messages", () => {
  it("name the file and what happens to it", () => {
    assert.equal(baseName("file:///w/some%20dir/my%20file.py"), "my file.py");
    assert.equal(diffTitle(file({ uri: "file:///w/n.py", kind: "create" })), "n.py (new) · agentls proposal");
    assert.equal(diffTitle(file({})), "a.py ↔ agentls proposal");
  });

  it("shows the summary's first line and the file count", () => {
    assert.equal(
      notificationText("Implemented parse\n\nDetails...", 2),
      "agentls: Implemented parse (2 files)",
    );
    assert.equal(notificationText("  ", 1), "agentls: A proposal is ready (1 file)");
    const long = notificationText("x".repeat(400), 1);
    assert.ok(long.length < 200 && long.includes("..."), long);
  });
});

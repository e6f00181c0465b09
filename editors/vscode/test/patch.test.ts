import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { applyPatch, parsePatch, PatchError, splitLines, type FilePatch } from "../src/pure/patch";
import { NO_REPO, runPython } from "./helpers";

function only(diff: string): FilePatch {
  const patches = parsePatch(diff);
  assert.equal(patches.length, 1);
  const [patch] = patches;
  assert.ok(patch);
  return patch;
}

function apply(text: string, diff: string): string {
  const result = applyPatch(text, only(diff));
  assert.ok(result.ok, result.ok ? "" : result.message);
  return result.text;
}

// Diffs below are what agent/overlay.py's unified_diff printed for these texts.
const MODIFY =
  "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,4 @@\n x\n-y\n-z\n" +
  "\\ No newline at end of file\n+Y\n+z\n+w\n";

describe("splitLines", () => {
  it("keeps line ends and a last line without one", () => {
    assert.deepEqual(splitLines("a\nb\r\nc"), ["a\n", "b\r\n", "c"]);
    assert.deepEqual(splitLines("a\n"), ["a\n"]);
    assert.deepEqual(splitLines(""), []);
  });
});

describe("parsePatch", () => {
  it("reads git headers, names and hunks", () => {
    const patch = only(MODIFY);
    assert.equal(patch.oldPath, "a.py");
    assert.equal(patch.newPath, "a.py");
    assert.equal(patch.hunks.length, 1);
    const hunk = patch.hunks[0];
    assert.ok(hunk);
    assert.deepEqual([hunk.oldStart, hunk.oldLines, hunk.newStart, hunk.newLines], [1, 3, 1, 4]);
    assert.deepEqual(
      hunk.lines.map((l) => l.kind + l.text),
      [" x\n", "-y\n", "-z", "+Y\n", "+z\n", "+w\n"],
    );
  });

  it("marks created and deleted files with null paths, and reads omitted counts as 1", () => {
    const created = only(
      "diff --git a/n.py b/n.py\nnew file mode 100644\n--- /dev/null\n+++ b/n.py\n@@ -0,0 +1 @@\n+hello\n",
    );
    assert.equal(created.oldPath, null);
    assert.equal(created.newPath, "n.py");
    assert.equal(created.hunks[0]?.newLines, 1);
    const deleted = only(
      "diff --git a/d.py b/d.py\ndeleted file mode 100644\n--- a/d.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n",
    );
    assert.equal(deleted.oldPath, "d.py");
    assert.equal(deleted.newPath, null);
    assert.equal(deleted.hunks[0]?.oldLines, 1);
  });

  it("reads a rename without hunks", () => {
    const renamed = only("diff --git a/a.py b/b.py\nrename from a.py\nrename to b.py\n");
    assert.equal(renamed.oldPath, "a.py");
    assert.equal(renamed.newPath, "b.py");
    assert.equal(renamed.hunks.length, 0);
  });

  it("splits a multi-file diff, plain `diff -u` output included", () => {
    const two = parsePatch(
      `${MODIFY}--- old/b.txt\t2024-01-01\n+++ new/b.txt\t2024-01-02\n@@ -1 +1 @@\n-b\n+B\n`,
    );
    assert.deepEqual(
      two.map((p) => [p.oldPath, p.newPath]),
      [
        ["a.py", "a.py"],
        ["old/b.txt", "new/b.txt"],
      ],
    );
  });

  it("takes removed lines that look like headers as removed lines", () => {
    const patch = only("--- a/x\n+++ b/x\n@@ -1,2 +1 @@\n--- not a header\n-++ nor this\n+ok\n");
    assert.deepEqual(
      patch.hunks[0]?.lines.map((l) => l.kind + l.text),
      ["--- not a header\n", "-++ nor this\n", "+ok\n"],
    );
  });

  it("refuses malformed and cut-short hunks with a message that says where", () => {
    assert.throws(
      () => parsePatch("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n"),
      (e: unknown) => {
        assert.ok(e instanceof PatchError);
        assert.match(e.message, /cut short/);
        return true;
      },
    );
    assert.throws(
      () => parsePatch("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\nGARBAGE\n"),
      /line 5: the hunk .* ends early/,
    );
    assert.throws(() => parsePatch("--- a/x\n+++ b/x\n@@ -x +1 @@\n"), /malformed hunk header/);
    assert.throws(() => parsePatch("@@ -1 +1 @@\n-a\n+b\n"), /before any file header/);
  });
});

describe("applyPatch", () => {
  it("applies a change that adds a final newline", () => {
    assert.equal(apply("x\ny\nz", MODIFY), "x\nY\nz\nw\n");
  });

  it("creates and deletes", () => {
    assert.equal(apply("", "--- /dev/null\n+++ b/n.py\n@@ -0,0 +1,2 @@\n+hello\n+world"), "hello\nworld");
    assert.equal(apply("bye\n", "--- a/d.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"), "");
  });

  it("finds hunks moved by lines added above them, for every hunk after the first as well", () => {
    const base = Array.from({ length: 30 }, (_, i) => `line ${String(i + 1)}\n`).join("");
    const diff =
      "--- a/f\n+++ b/f\n" +
      "@@ -4,3 +4,3 @@\n line 4\n-line 5\n+LINE 5\n line 6\n" +
      "@@ -24,3 +24,3 @@\n line 24\n-line 25\n+LINE 25\n line 26\n";
    const moved = "new 1\nnew 2\n" + base;
    const out = apply(moved, diff);
    assert.equal(out, moved.replace("line 5\n", "LINE 5\n").replace("line 25\n", "LINE 25\n"));
  });

  it("keeps CRLF line ends", () => {
    const diff = "--- a/w\n+++ b/w\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+B\r\n";
    assert.equal(apply("a\r\nb\r\n", diff), "a\r\nB\r\n");
  });

  it("inserts after the named line when the old count is 0", () => {
    assert.equal(apply("a\nb\nc\n", "--- a/f\n+++ b/f\n@@ -2,0 +3 @@\n+new\n"), "a\nb\nnew\nc\n");
  });

  it("refuses, naming the hunk, when the lines it changes were edited", () => {
    const result = applyPatch("x\nEDITED\nz", only(MODIFY));
    assert.equal(result.ok, false);
    assert.match(result.message, /hunk 1 of 1 \(@@ -1,3 \+1,4 @@\) does not match/);
  });

  it("does not apply a hunk before the end of the one before it", () => {
    const diff = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+A\n@@ -2 +2 @@\n-a\n+A\n";
    assert.equal(apply("a\na\n", diff), "A\nA\n");
    assert.equal(applyPatch("a\n", only(diff)).ok, false);
  });
});

describe("applyPatch against the server's own diffs", { skip: NO_REPO }, () => {
  it("rebuilds the new text of 300 random edits from agent/overlay.py's unified_diff", () => {
    // Python makes random old/new texts (CRLF, missing final newlines, empty files, inserts at both ends)
    // and their diffs with the function the server uses; every one must apply back exactly.
    const script = `
import json, random
from agent.overlay import unified_diff
rng = random.Random(1234)
words = ["a", "b", "c", "", "def f():", "    return 1", "x = 2", "# note"]
def text():
    n = rng.randint(0, 25)
    eol = rng.choice(["\\n", "\\n", "\\r\\n"])
    body = eol.join(rng.choice(words) for _ in range(n))
    return body + (eol if n and rng.random() < 0.7 else "")
def mutate(t):
    lines = t.splitlines(keepends=True)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        i = rng.randint(0, len(lines))
        if op < 0.4:
            lines.insert(i, rng.choice(words) + "\\n")
        elif op < 0.7 and lines:
            del lines[min(i, len(lines) - 1)]
        elif lines:
            lines[min(i, len(lines) - 1)] = rng.choice(words) + rng.choice(["\\n", ""])
    return "".join(lines)
cases = []
for k in range(300):
    old = text()
    new = mutate(old)
    kind = rng.random()
    if kind < 0.05:
        cases.append({"old": "", "new": new, "diff": unified_diff(None, "f.py", "", new)})
    elif kind < 0.1:
        cases.append({"old": old, "new": "", "diff": unified_diff("f.py", None, old, "")})
    else:
        cases.append({"old": old, "new": new, "diff": unified_diff("f.py", "f.py", old, new, context=rng.choice([0, 1, 3]))})
print(json.dumps(cases))
`;
    const cases = JSON.parse(runPython(script)) as { old: string; new: string; diff: string }[];
    assert.equal(cases.length, 300);
    let changed = 0;
    for (const [i, c] of cases.entries()) {
      const patches = parsePatch(c.diff);
      const patch = patches[0];
      assert.ok(patch, `case ${String(i)}: no patch in ${JSON.stringify(c.diff)}`);
      const result = applyPatch(c.old, patch);
      assert.ok(result.ok, `case ${String(i)}: ${result.ok ? "" : result.message}`);
      assert.equal(result.text, c.new, `case ${String(i)}: ${JSON.stringify(c)}`);
      if (c.old !== c.new) {
        changed += 1;
      }
    }
    assert.ok(changed > 250, `only ${String(changed)} cases changed anything`);
  });
});

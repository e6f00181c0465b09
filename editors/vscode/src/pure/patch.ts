/**
 * Unified diffs: parse them, and apply one to a text to get the text after the change.
 *
 * The server's proposals carry git-style unified diffs (`agent/overlay.py: unified_diff`): `diff --git`
 * headers, `---`/`+++` names with `a/` and `b/` prefixes or `/dev/null`, hunks whose counts may be omitted
 * when they are 1, and `\ No newline at end of file` markers. To show a proposal as a side-by-side diff
 * the extension needs the text after the change; when the server does not send it, it is rebuilt here by
 * applying the diff to the text the user has now.
 *
 * Lines keep their end-of-line characters, so CRLF files round-trip and a missing final newline stays
 * missing. A hunk whose lines moved (the user added lines above it) is found at an offset, as `patch`
 * does; a hunk whose own lines changed does not apply, and the caller shows the patch itself instead.
 */

export type LineKind = " " | "-" | "+";

export interface HunkLine {
  readonly kind: LineKind;
  /** The line's text with its end-of-line characters (none on a last line without a newline). */
  readonly text: string;
}

export interface Hunk {
  readonly oldStart: number;
  readonly oldLines: number;
  readonly newStart: number;
  readonly newLines: number;
  readonly header: string;
  readonly lines: readonly HunkLine[];
}

export interface FilePatch {
  /** Path before the change without its `a/` prefix; null for a created file. */
  readonly oldPath: string | null;
  /** Path after the change without its `b/` prefix; null for a deleted file. */
  readonly newPath: string | null;
  readonly hunks: readonly Hunk[];
}

export class PatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PatchError";
  }
}

export type ApplyResult =
  | {
      readonly ok: true;
      readonly text: string;
      /** Per hunk, how many lines below where its header says it was found (above: negative). */
      readonly offsets: readonly number[];
    }
  | { readonly ok: false; readonly message: string };

const HUNK_HEADER = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

/** Split into lines that keep their `\n` (a last line without one is kept as it is). */
export function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const end = text.indexOf("\n", start);
    if (end === -1) {
      if (start < text.length) {
        lines.push(text.slice(start));
      }
      return lines;
    }
    lines.push(text.slice(start, end + 1));
    start = end + 1;
  }
}

function stripEol(line: string): string {
  return line.replace(/\r?\n$/, "");
}

function headerPath(rest: string, prefix: string): string | null {
  // "--- a/path\tdate" (difflib and GNU diff may add a tab and a timestamp).
  const name = stripEol(rest).split("\t")[0] ?? "";
  if (name === "/dev/null") {
    return null;
  }
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

interface Building {
  oldPath: string | null;
  newPath: string | null;
  hunks: Hunk[];
  sawNames: boolean;
}

function gitHeaderPaths(line: string): { oldPath: string; newPath: string } | undefined {
  const match = /^diff --git a\/(.*) b\/(.*)$/.exec(stripEol(line));
  if (match === null) {
    return undefined;
  }
  return { oldPath: match[1] ?? "", newPath: match[2] ?? "" };
}

/**
 * Every file patch in `text`. Header lines other than the file names (`index`, modes, similarity) are
 * skipped; a created file has `oldPath` null, a deleted one `newPath` null.
 */
export function parsePatch(text: string): FilePatch[] {
  const lines = splitLines(text);
  const files: FilePatch[] = [];
  let current: Building | undefined;
  const finish = (): void => {
    if (current !== undefined) {
      files.push({ oldPath: current.oldPath, newPath: current.newPath, hunks: current.hunks });
      current = undefined;
    }
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (line.startsWith("diff --git ")) {
      finish();
      const paths = gitHeaderPaths(line);
      current = {
        oldPath: paths?.oldPath ?? null,
        newPath: paths?.newPath ?? null,
        hunks: [],
        sawNames: false,
      };
      i += 1;
    } else if (line.startsWith("new file mode") && current !== undefined && !current.sawNames) {
      current.oldPath = null;
      i += 1;
    } else if (line.startsWith("deleted file mode") && current !== undefined && !current.sawNames) {
      current.newPath = null;
      i += 1;
    } else if (line.startsWith("--- ") && (lines[i + 1] ?? "").startsWith("+++ ")) {
      if (current === undefined || current.sawNames) {
        finish();
        current = { oldPath: null, newPath: null, hunks: [], sawNames: false };
      }
      current.oldPath = headerPath(line.slice(4), "a/");
      current.newPath = headerPath((lines[i + 1] ?? "").slice(4), "b/");
      current.sawNames = true;
      i += 2;
    } else if (line.startsWith("@@")) {
      if (current === undefined) {
        throw new PatchError(`line ${String(i + 1)}: a hunk before any file header`);
      }
      const [hunk, next] = parseHunk(lines, i);
      current.hunks.push(hunk);
      i = next;
    } else {
      i += 1; // index, mode, rename and similarity lines carry nothing the text needs
    }
  }
  finish();
  return files;
}

function parseHunk(lines: readonly string[], at: number): [Hunk, number] {
  const header = stripEol(lines[at] ?? "");
  const match = HUNK_HEADER.exec(header);
  if (match === null) {
    throw new PatchError(`line ${String(at + 1)}: a malformed hunk header: ${header}`);
  }
  const oldStart = Number(match[1]);
  const oldLines = match[2] === undefined ? 1 : Number(match[2]);
  const newStart = Number(match[3]);
  const newLines = match[4] === undefined ? 1 : Number(match[4]);
  const body: HunkLine[] = [];
  let oldSeen = 0;
  let newSeen = 0;
  let i = at + 1;
  while (i < lines.length && (oldSeen < oldLines || newSeen < newLines)) {
    const line = lines[i] ?? "";
    const marker = line[0];
    if (marker === "\\") {
      dropEol(body, i);
      i += 1;
      continue;
    }
    let kind: LineKind;
    let content: string;
    if (marker === " " || marker === "-" || marker === "+") {
      kind = marker;
      content = line.slice(1);
    } else if (line === "\n" || line === "\r\n") {
      kind = " "; // an empty context line whose leading space was trimmed by an editor or a mailer
      content = line;
    } else {
      throw new PatchError(
        `line ${String(i + 1)}: the hunk ${header} ends early: expected ${String(oldLines)} old and ` +
          `${String(newLines)} new lines, found ${String(oldSeen)} and ${String(newSeen)}`,
      );
    }
    if (kind !== "+") {
      oldSeen += 1;
    }
    if (kind !== "-") {
      newSeen += 1;
    }
    body.push({ kind, text: content });
    i += 1;
  }
  if (oldSeen !== oldLines || newSeen !== newLines) {
    throw new PatchError(`the hunk ${header} is cut short at the end of the diff`);
  }
  if ((lines[i] ?? "").startsWith("\\")) {
    dropEol(body, i);
    i += 1;
  }
  return [{ oldStart, oldLines, newStart, newLines, header, lines: body }, i];
}

function dropEol(body: HunkLine[], at: number): void {
  const last = body.pop();
  if (last === undefined) {
    throw new PatchError(`line ${String(at + 1)}: "\\ No newline at end of file" follows no line`);
  }
  body.push({ kind: last.kind, text: stripEol(last.text) });
}

function matchesAt(lines: readonly string[], at: number, expected: readonly string[]): boolean {
  if (at < 0 || at + expected.length > lines.length) {
    return false;
  }
  return expected.every((line, k) => lines[at + k] === line);
}

/**
 * Where `expected` occurs in `lines` at or after `from`, nearest to `want` (ties go to the earlier spot).
 * An empty `expected` (a pure insertion) goes exactly where the hunk says, if that is not before `from`.
 */
function locate(lines: readonly string[], expected: readonly string[], want: number, from: number): number {
  if (expected.length === 0) {
    return want >= from && want <= lines.length ? want : -1;
  }
  const last = lines.length - expected.length;
  for (let distance = 0; want - distance >= from || want + distance <= last; distance += 1) {
    const before = want - distance;
    if (before >= from && matchesAt(lines, before, expected)) {
      return before;
    }
    const after = want + distance;
    if (distance > 0 && after >= from && matchesAt(lines, after, expected)) {
      return after;
    }
  }
  return -1;
}

/** The text after `patch`, applied to `text`, or why it does not apply. */
export function applyPatch(text: string, patch: FilePatch): ApplyResult {
  const lines = splitLines(text);
  const out: string[] = [];
  let cursor = 0; // lines[..cursor] are consumed
  let offset = 0; // how far the hunks found so far sit from where their headers say
  const offsets: number[] = [];
  for (const [index, hunk] of patch.hunks.entries()) {
    const expected = hunk.lines.filter((l) => l.kind !== "+").map((l) => l.text);
    // With a count of 0 the start names the line *after which* to insert; otherwise the first line.
    const stated = hunk.oldLines === 0 ? hunk.oldStart : hunk.oldStart - 1;
    const at = locate(lines, expected, stated + offset, cursor);
    if (at === -1) {
      return {
        ok: false,
        message:
          `hunk ${String(index + 1)} of ${String(patch.hunks.length)} (${hunk.header}) does not match ` +
          "the current text: the file changed since the proposal was made",
      };
    }
    offset = at - stated;
    offsets.push(offset);
    out.push(...lines.slice(cursor, at));
    for (const line of hunk.lines) {
      if (line.kind !== "-") {
        out.push(line.text);
      }
    }
    cursor = at + expected.length;
  }
  out.push(...lines.slice(cursor));
  return { ok: true, text: fixJoins(out), offsets };
}

/**
 * Join lines, adding a newline where a line without one (the old last line) is followed by more lines:
 * that happens when a hunk appends after a last line that the diff context did not include.
 */
function fixJoins(lines: readonly string[]): string {
  let result = "";
  for (const [k, line] of lines.entries()) {
    result += line;
    if (k < lines.length - 1 && !line.endsWith("\n")) {
      result += "\n";
    }
  }
  return result;
}

/**
 * Per-hunk review, without VS Code: which hunk a line of a proposal's diff side is in, what to send for
 * the hunks the user accepted and rejected, and the team run's events as lines of text.
 *
 * The server's hunks are the changed blocks of each file (`agentls/proposal` files[].hunks); a partial
 * accept (`agentls.accept {hunks}`) applies those and leaves the rest pending. Rejecting a hunk is the
 * extension's own note until every hunk left is rejected (then the proposal is rejected) or the rest
 * is accepted (then only the hunks not rejected are sent, and the rejected rest is dropped).
 *
 * The server counts a hunk's lines in the text the proposal was made from; the diff tab shows the
 * proposal on the user's text as it is now (the tab follows the user's edits, `proposal.ts:
 * liveSidesOf`; lines typed above a hunk since the run began push it down, the server rebases it when it
 * is accepted). `hunksAsShown` moves the hunks to
 * where the tab shows them, so the hunk at the cursor is the one under it.
 */

import { applyPatch, parsePatch, PatchError } from "./patch";
import type { Hunk, ProposalFile, RunEvent } from "./protocol";
import { isCreated, isDeleted } from "./proposal";

/**
 * The hunks of `file` at the lines where its diff tab shows them, given the tab's `before` text (the
 * user's text the proposal's diff was applied to, `pure/proposal.ts: sidesOf`). Each hunk moves by the
 * offset at which its block of the diff was found in `before`, on both sides: the "after" side is
 * `before` with the diff applied, so the lines above a hunk are the same on both. Unmoved when the
 * sides are the server's own texts, a whole file, or when the diff does not apply to `before`.
 */
export function hunksAsShown(file: ProposalFile, before: string): readonly Hunk[] {
  if (file.oldText !== undefined || file.newText !== undefined || isCreated(file) || isDeleted(file)) {
    return file.hunks;
  }
  let blocks;
  try {
    blocks = parsePatch(file.diff)[0]?.hunks ?? [];
  } catch (error) {
    if (error instanceof PatchError) {
      return file.hunks;
    }
    throw error;
  }
  if (blocks.length === 0) {
    return file.hunks; // a rename or a change of mode: no line moves
  }
  const applied = applyPatch(before, { oldPath: null, newPath: null, hunks: blocks });
  if (!applied.ok) {
    return file.hunks; // the tab shows the patch itself
  }
  return file.hunks.map((hunk) => {
    // The block holding the hunk: the last one that starts at or above it (blocks are in order and
    // apart; the server's hunks are the changed lines inside them).
    let index = 0;
    blocks.forEach((block, i) => {
      if (block.oldStart <= hunk.oldStart) {
        index = i;
      }
    });
    const offset = applied.offsets[index] ?? 0;
    return { ...hunk, oldStart: hunk.oldStart + offset, newStart: hunk.newStart + offset };
  });
}

/** The hunk of `hunks` at `line` (zero-based) of their `before` or `after` side, if any. */
export function hunkAtLine(hunks: readonly Hunk[], line: number, side: "before" | "after"): Hunk | undefined {
  const at = line + 1;
  return hunks.find((h) => {
    const [start, count] = side === "after" ? [h.newStart, h.newLines] : [h.oldStart, h.oldLines];
    return count > 0 ? at >= start && at < start + count : at === Math.max(start, 1);
  });
}

export interface ReviewPlan {
  /** "accept": everything left; "partial": only `hunks`, the rest is dropped; "reject": nothing. */
  readonly action: "accept" | "partial" | "reject";
  readonly hunks: readonly string[];
}

/** What accepting the proposal means once the user rejected some of its hunks. */
export function acceptPlan(files: readonly ProposalFile[], rejected: ReadonlySet<string>): ReviewPlan {
  const all = files.flatMap((f) => f.hunks.map((h) => h.id));
  const kept = all.filter((id) => !rejected.has(id));
  if (kept.length === all.length) {
    return { action: "accept", hunks: all };
  }
  return kept.length === 0 ? { action: "reject", hunks: [] } : { action: "partial", hunks: kept };
}

const TODO_MARK: Readonly<Record<string, string>> = { done: "[x]", in_progress: "[~]", pending: "[ ]" };

/** One `agentls/runEvent` as lines for the team output. */
export function runEventLines(event: RunEvent): string[] {
  const where = event.node !== undefined && event.node !== event.role ? ` (${event.node})` : "";
  if (event.kind === "todo") {
    return ["Plan:", ...event.items.map((i) => `  ${TODO_MARK[i.status] ?? "[ ]"} ${i.text}`)];
  }
  if (event.kind === "role") {
    return [`${event.role ?? "?"}${where}: ${event.state ?? "?"}`];
  }
  if (event.kind === "handoff") {
    const body =
      event.markdown ?? (event.document === undefined ? "" : JSON.stringify(event.document, undefined, 2));
    return [`## ${event.role ?? "?"}: ${event.handoff ?? "handoff"}${where}`, ...body.split("\n"), ""];
  }
  // "warning", and any kind this extension does not know yet: its kind, subject and message.
  const about = event.subject === undefined ? "" : ` (${event.subject})`;
  const text = event.message ?? event.markdown;
  if (text === undefined) {
    return [`${event.kind}${about}`];
  }
  const [first = "", ...rest] = text.split("\n");
  return [`${event.kind}${about}: ${first}`, ...rest.map((line) => `  ${line}`)];
}

/** The QA verdict of a team proposal (`team.review`), a line per acceptance criterion. */
export function verdictLines(team: Readonly<Record<string, unknown>> | undefined): string[] {
  const review = team?.review;
  if (typeof review !== "object" || review === null) {
    return [];
  }
  const { passed, criteria } = review as { passed?: unknown; criteria?: unknown };
  const lines = [`QA verdict: ${passed === true ? "passed" : passed === false ? "FAILED" : "?"}`];
  const text = (value: unknown, missing: string): string =>
    typeof value === "string" || typeof value === "number" || typeof value === "boolean"
      ? String(value)
      : missing;
  for (const c of Array.isArray(criteria) ? (criteria as unknown[]) : []) {
    if (typeof c === "object" && c !== null) {
      const { id, verdict, evidence } = c as { id?: unknown; verdict?: unknown; evidence?: unknown };
      lines.push(`  ${text(id, "?")} ${text(verdict, "?")}: ${text(evidence, "")}`);
    }
  }
  return lines;
}

/** The subject line and the rest of a commit message, to edit the subject and keep the body. */
export function splitMessage(message: string): { subject: string; body: string } {
  const [subject = "", ...rest] = message.split("\n");
  return { subject, body: rest.join("\n").replace(/^\n+/, "") };
}

/** The commit message from an edited subject and the kept body. */
export function joinMessage(subject: string, body: string): string {
  const text = body.trim() === "" ? subject.trim() : `${subject.trim()}\n\n${body.trim()}`;
  return `${text}\n`;
}

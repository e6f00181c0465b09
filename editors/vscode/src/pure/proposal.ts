/**
 * The two sides of each file of a proposal, and the addresses of the read-only documents that show them.
 *
 * The diff view needs the text before and after the change. The server may send both (`oldText`,
 * `newText`); otherwise "before" is the text the user has now (an open buffer or the file on disk; empty
 * for a file the proposal creates) and "after" is the unified diff applied to it.
 *
 * What a file's diff tab shows is decided in one place, `liveSidesOf`, when Show Diff opens the tab and
 * again after each pause in typing in the file (the tab follows the user's text). While the diff does not
 * apply (the user edited those very lines since the run began), both sides show a note and the patch
 * instead (the same tab, so the user's typing is not interrupted by a new one); as soon as an edit makes
 * it apply again (an undo, the old text typed back), the tab is the side-by-side diff again. The warning
 * is said when the diff stops applying, not at every keystroke: once per break, so a break after the
 * diff came back warns again.
 */

import type { ProposalFile } from "./protocol";
import { applyPatch, parsePatch, PatchError } from "./patch";

export type Sides =
  | { readonly ok: true; readonly before: string; readonly after: string }
  | { readonly ok: false; readonly message: string };

export type Side = "before" | "after";

/** Whether the proposal creates the file (so there is no current text to start from). */
export function isCreated(file: ProposalFile): boolean {
  if (file.kind !== undefined) {
    return /^(create|created|add|added|new)$/i.test(file.kind);
  }
  return /^new file mode/m.test(file.diff) || /^--- \/dev\/null/m.test(file.diff);
}

/** Whether the proposal deletes the file. */
export function isDeleted(file: ProposalFile): boolean {
  if (file.kind !== undefined) {
    return /^(delete|deleted|remove|removed)$/i.test(file.kind);
  }
  return /^deleted file mode/m.test(file.diff) || /^\+\+\+ \/dev\/null/m.test(file.diff);
}

/**
 * Before and after texts of one file. `current` is the file's text now, or undefined when it does not
 * exist (a created file, or one deleted since).
 */
export function sidesOf(file: ProposalFile, current: string | undefined): Sides {
  const before = file.oldText ?? (isCreated(file) ? "" : current);
  if (before === undefined) {
    return { ok: false, message: `${file.uri} does not exist any more, so the change cannot be shown on it` };
  }
  if (file.newText !== undefined) {
    return { ok: true, before, after: file.newText };
  }
  if (isDeleted(file)) {
    return { ok: true, before, after: "" };
  }
  let patches;
  try {
    patches = parsePatch(file.diff);
  } catch (error) {
    if (error instanceof PatchError) {
      return { ok: false, message: `the diff of ${file.uri} cannot be read: ${error.message}` };
    }
    throw error;
  }
  const patch = patches[0];
  if (patch === undefined || patch.hunks.length === 0) {
    // A rename, or a change of mode only: the text is the same on both sides.
    return { ok: true, before, after: before };
  }
  const applied = applyPatch(before, patch);
  return applied.ok ? { ok: true, before, after: applied.text } : { ok: false, message: applied.message };
}

/** The warning said when a file's diff is shown as its patch (`problems`: "file: why" per file). */
export function patchShownText(problems: readonly string[]): string {
  return (
    `agentls: showing the patch instead of a side-by-side diff. ${problems.join("; ")}. ` +
    "Accept asks the server to rebase the change; it refuses rather than overwrite your edits."
  );
}

/** What a file's diff tab shows, on the user's text now. */
export interface LiveSides {
  readonly before: string;
  readonly after: string;
  /** Whether the diff applies to the user's text (else both sides hold the note and the patch). */
  readonly applies: boolean;
  /** Why it does not apply, as "file: why" (`patchShownText`'s problems); undefined when it applies. */
  readonly problem: string | undefined;
  /** The warning to say now: only when the diff just stopped applying. */
  readonly warning: string | undefined;
}

/**
 * The sides of `file`'s diff tab on the user's `current` text: the side-by-side diff whenever it applies,
 * else a note and the patch. `applied` is whether the tab's diff applied until now (true for a tab Show
 * Diff opens): the warning comes as it stops applying, once per break.
 */
export function liveSidesOf(file: ProposalFile, current: string | undefined, applied: boolean): LiveSides {
  const sides = sidesOf(file, current);
  if (sides.ok) {
    return {
      before: sides.before,
      after: sides.after,
      applies: true,
      problem: undefined,
      warning: undefined,
    };
  }
  const name = baseName(file.uri);
  const note =
    `agentls: the proposal's diff no longer applies to your text of ${name}:\n${sides.message}.\n` +
    "Accept asks the server to rebase the change; it refuses rather than overwrite your edits.\n" +
    "Undo your edit to see the side-by-side diff again. The proposal's patch:\n\n";
  const text = note + file.diff;
  const problem = `${name}: ${sides.message}`;
  const warning = applied ? patchShownText([problem]) : undefined;
  return { before: text, after: text, applies: false, problem, warning };
}

export interface VirtualAddress {
  readonly proposalId: string;
  readonly side: Side;
  /** The real file this document shows a side of. */
  readonly fileUri: string;
}

/** The query string of a proposal document's URI (its path is the real file's, for the language mode). */
export function encodeAddress(address: VirtualAddress): string {
  return new URLSearchParams({
    proposal: address.proposalId,
    side: address.side,
    file: address.fileUri,
  }).toString();
}

/** The address in a proposal document's query, or undefined when it is not one of ours. */
export function decodeAddress(query: string): VirtualAddress | undefined {
  const params = new URLSearchParams(query);
  const proposalId = params.get("proposal");
  const side = params.get("side");
  const fileUri = params.get("file");
  if (proposalId === null || proposalId === "" || fileUri === null) {
    return undefined;
  }
  if (side !== "before" && side !== "after") {
    return undefined;
  }
  return { proposalId, side, fileUri };
}

/** The last path segment of a URI, for titles. */
export function baseName(uri: string): string {
  const path = uri.replace(/[?#].*$/, "").replace(/\/+$/, "");
  const name = path.slice(path.lastIndexOf("/") + 1);
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** The title of a file's diff tab. */
export function diffTitle(file: ProposalFile): string {
  const name = baseName(file.uri);
  if (isCreated(file)) {
    return `${name} (new) · agentls proposal`;
  }
  if (isDeleted(file)) {
    return `${name} (deleted) · agentls proposal`;
  }
  return `${name} ↔ agentls proposal`;
}

/** One line for the notification: the summary's first line and what the change touches. */
export function notificationText(summary: string, fileCount: number): string {
  const first = summary.trim().split("\n")[0]?.trim() ?? "";
  const headline = first === "" ? "A proposal is ready" : first;
  const clipped = headline.length > 160 ? `${headline.slice(0, 157)}...` : headline;
  const files = fileCount === 1 ? "1 file" : `${String(fileCount)} files`;
  return `agentls: ${clipped} (${files})`;
}

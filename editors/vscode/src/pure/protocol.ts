/**
 * Typed views of what the server sends: notifications, request results and command results.
 *
 * JSON from another process is checked here once, so the rest of the extension works with typed, frozen
 * values. A payload that does not fit raises `ProtocolError`, whose message names the method and the field
 * (the usual cause is a server and an extension of different versions). Unknown extra fields are ignored,
 * and a few optional ones (`newText`, `oldText`, `cost`) are read when the server sends them.
 */

import { Notification, Request } from "../constants";

export class ProtocolError extends Error {
  constructor(method: string, problem: string) {
    super(
      `${method}: ${problem}. The agentls server and this extension may be of different versions: ` +
        "update both (pip install -U agentls, and the extension from its .vsix or the marketplace).",
    );
    this.name = "ProtocolError";
  }
}

/** One file a proposal changes, as `agentls/proposalReady` lists it. */
export interface FileRef {
  readonly uri: string;
  /** How the file changes (`create`, `modify`, `delete`, `rename`...), when the server says. */
  readonly kind: string | undefined;
}

export interface ProposalReady {
  readonly proposalId: string;
  readonly runId: string;
  readonly summary: string;
  readonly files: readonly FileRef[];
}

export interface RunFailed {
  readonly runId: string;
  readonly message: string;
}

/** One file of `agentls/proposal`: its unified diff, and its full texts when the server sends them. */
export interface ProposalFile {
  readonly uri: string;
  /** Where a renamed file was before (its current text is there). */
  readonly oldUri: string | undefined;
  readonly kind: string | undefined;
  readonly diff: string;
  readonly oldText: string | undefined;
  readonly newText: string | undefined;
  /** Its hunks, for accepting part of the proposal (`agentls.accept {hunks}`). */
  readonly hunks: readonly Hunk[];
}

/** A changed block of a file (1-based first line and count, before and after the change). */
export interface Hunk {
  readonly id: string;
  readonly oldStart: number;
  readonly oldLines: number;
  readonly newStart: number;
  readonly newLines: number;
}

export interface ProposalDetails {
  readonly proposalId: string;
  readonly runId: string;
  readonly summary: string;
  readonly diff: string;
  readonly files: readonly ProposalFile[];
  /** Cost in USD of the run that made the proposal, when the server reports it. */
  readonly cost: number | undefined;
  /** The message "Accept and Commit" offers for editing. */
  readonly commitMessage: string;
  /** A team run's handoffs (`{spec, design, review}`), when the proposal comes from one. */
  readonly team: Readonly<Record<string, unknown>> | undefined;
}

/** `agentls/runEvent`: what a team run did (a handoff, its todo list, a role starting or ending), or a
 * warning of any run (`message`, about `subject`). */
export interface RunEvent {
  readonly runId: string;
  readonly kind: string;
  readonly role: string | undefined;
  readonly node: string | undefined;
  readonly handoff: string | undefined;
  readonly markdown: string | undefined;
  readonly document: unknown;
  readonly items: readonly { readonly text: string; readonly status: string }[];
  readonly state: string | undefined;
  /** A warning's text (what happened and what to do). */
  readonly message: string | undefined;
  /** What a warning is about ("interpreter"). */
  readonly subject: string | undefined;
}

export interface RunInfo {
  readonly runId: string;
  readonly task: string;
  readonly status: string;
  readonly cost: number | undefined;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function object(method: string, value: unknown, where: string): Json {
  if (!isObject(value)) {
    throw new ProtocolError(method, `${where} must be an object, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) {
    return "null";
  }
  if (Array.isArray(value)) {
    return "an array";
  }
  return typeof value;
}

function requiredString(method: string, obj: Json, key: string, where = key): string {
  const value = obj[key];
  if (typeof value !== "string") {
    throw new ProtocolError(method, `\`${where}\` must be a string, got ${describe(value)}`);
  }
  return value;
}

function optionalString(method: string, obj: Json, key: string, where = key): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== "string") {
    throw new ProtocolError(method, `\`${where}\` must be a string when present, got ${describe(value)}`);
  }
  return value;
}

function array(method: string, obj: Json, key: string): unknown[] {
  const value = obj[key];
  if (value === undefined || value === null) {
    return [];
  }
  if (!Array.isArray(value)) {
    throw new ProtocolError(method, `\`${key}\` must be an array, got ${describe(value)}`);
  }
  return value;
}

/** A cost in USD: `cost` itself, or the usage's `costUsd` / `cost_usd` / `cost`. */
function costOf(obj: Json): number | undefined {
  const candidates: unknown[] = [obj.cost, obj.costUsd, obj.cost_usd];
  const usage = obj.usage;
  if (isObject(usage)) {
    candidates.push(usage.costUsd, usage.cost_usd, usage.cost);
  }
  for (const value of candidates) {
    if (typeof value === "number" && Number.isFinite(value)) {
      return value;
    }
  }
  return undefined;
}

export function parseProposalReady(params: unknown): ProposalReady {
  const method = Notification.proposalReady;
  const obj = object(method, params, "the params");
  const files = array(method, obj, "files").map((file, i): FileRef => {
    if (typeof file === "string") {
      return { uri: file, kind: undefined };
    }
    const entry = object(method, file, `files[${String(i)}]`);
    return {
      uri: requiredString(method, entry, "uri", `files[${String(i)}].uri`),
      kind: optionalString(method, entry, "kind", `files[${String(i)}].kind`),
    };
  });
  return {
    proposalId: requiredString(method, obj, "proposalId"),
    runId: requiredString(method, obj, "runId"),
    summary: optionalString(method, obj, "summary") ?? "",
    files,
  };
}

export function parseRunFailed(params: unknown): RunFailed {
  const method = Notification.runFailed;
  const obj = object(method, params, "the params");
  return {
    runId: requiredString(method, obj, "runId"),
    message: optionalString(method, obj, "message") ?? "the run failed without a message",
  };
}

export function parseProposal(result: unknown): ProposalDetails {
  const method = Request.proposal;
  const obj = object(method, result, "the result");
  const files = array(method, obj, "files").map((file, i): ProposalFile => {
    const where = `files[${String(i)}]`;
    const entry = object(method, file, where);
    return {
      uri: requiredString(method, entry, "uri", `${where}.uri`),
      oldUri: optionalString(method, entry, "oldUri", `${where}.oldUri`),
      kind: optionalString(method, entry, "kind", `${where}.kind`),
      diff: optionalString(method, entry, "diff", `${where}.diff`) ?? "",
      oldText: optionalString(method, entry, "oldText", `${where}.oldText`),
      newText: optionalString(method, entry, "newText", `${where}.newText`),
      hunks: array(method, entry, "hunks").map((hunk, j): Hunk => {
        const h = object(method, hunk, `${where}.hunks[${String(j)}]`);
        const num = (key: string): number => {
          const value = h[key];
          if (typeof value !== "number") {
            throw new ProtocolError(method, `\`${where}.hunks[${String(j)}].${key}\` must be a number`);
          }
          return value;
        };
        return {
          id: requiredString(method, h, "id", `${where}.hunks[${String(j)}].id`),
          oldStart: num("oldStart"),
          oldLines: num("oldLines"),
          newStart: num("newStart"),
          newLines: num("newLines"),
        };
      }),
    };
  });
  return {
    proposalId: requiredString(method, obj, "proposalId"),
    runId: optionalString(method, obj, "runId") ?? "",
    summary: optionalString(method, obj, "summary") ?? "",
    diff: optionalString(method, obj, "diff") ?? "",
    files,
    cost: costOf(obj),
    commitMessage: optionalString(method, obj, "commitMessage") ?? "",
    team: isObject(obj.team) ? obj.team : undefined,
  };
}

export function parseRunEvent(params: unknown): RunEvent {
  const method = Notification.runEvent;
  const obj = object(method, params, "the params");
  const items = array(method, obj, "items").map((item, i) => {
    const entry = object(method, item, `items[${String(i)}]`);
    return {
      text: optionalString(method, entry, "text", `items[${String(i)}].text`) ?? "",
      status: optionalString(method, entry, "status", `items[${String(i)}].status`) ?? "pending",
    };
  });
  return {
    runId: requiredString(method, obj, "runId"),
    kind: requiredString(method, obj, "kind"),
    role: optionalString(method, obj, "role"),
    node: optionalString(method, obj, "node"),
    handoff: optionalString(method, obj, "handoff"),
    markdown: optionalString(method, obj, "markdown"),
    document: obj.document,
    items,
    state: optionalString(method, obj, "state"),
    message: optionalString(method, obj, "message"),
    subject: optionalString(method, obj, "subject"),
  };
}

/** The hunks still pending after a partial accept (`pendingHunks`); undefined for a whole accept. */
export function pendingHunksOf(result: unknown): string[] | undefined {
  if (!isObject(result) || !Array.isArray(result.pendingHunks)) {
    return undefined;
  }
  return result.pendingHunks.filter((h): h is string => typeof h === "string");
}

/** The commit `agentls.acceptAndCommit` made: its id and branch, when it made one. */
export function commitOf(result: unknown): { commit: string; branch: string } | undefined {
  if (!isObject(result) || typeof result.commit !== "string") {
    return undefined;
  }
  return { commit: result.commit, branch: typeof result.branch === "string" ? result.branch : "?" };
}

export function parseRuns(result: unknown): RunInfo[] {
  const method = Request.runs;
  if (!Array.isArray(result)) {
    throw new ProtocolError(method, `the result must be an array, got ${describe(result)}`);
  }
  return result.map((run, i): RunInfo => {
    const entry = object(method, run, `[${String(i)}]`);
    return {
      runId: requiredString(method, entry, "runId", `[${String(i)}].runId`),
      task: optionalString(method, entry, "task", `[${String(i)}].task`) ?? "",
      status: optionalString(method, entry, "status", `[${String(i)}].status`) ?? "",
      cost: costOf(entry),
    };
  });
}

/** The `runId` a run command answers with, or undefined for commands that start no run. */
export function runIdOf(result: unknown): string | undefined {
  if (isObject(result) && typeof result.runId === "string" && result.runId !== "") {
    return result.runId;
  }
  return undefined;
}

/** Statuses of `agentls/runs` that mean the run is over. */
const ENDED_STATUSES: ReadonlySet<string> = new Set([
  "done",
  "complete",
  "completed",
  "finished",
  "succeeded",
  "success",
  "proposed",
  "no_changes",
  "budget_exhausted",
  "accepted",
  "rejected",
  "applied",
  "failed",
  "error",
  "errored",
  "cancelled",
  "canceled",
  "timeout",
  "timed_out",
]);

/**
 * Whether a run's status means it goes on. Any status that is not a known end ("running", "planning",
 * "verifying"...) counts as going on, so a server that names its phases needs no change here; an empty
 * status says nothing ("unknown").
 */
export function statusKind(status: string): "active" | "ended" | "unknown" {
  const normalized = status.trim().toLowerCase();
  if (normalized === "") {
    return "unknown";
  }
  return ENDED_STATUSES.has(normalized) ? "ended" : "active";
}

/**
 * Whether `agentls.accept` applied the proposal. The server answers `{applied: false, failureReason}` when
 * the editor declined the edit (the user cancelled VS Code's preview): the proposal then stays pending.
 */
export function acceptApplied(result: unknown): boolean {
  return !(isObject(result) && result.applied === false);
}

/** Why `agentls.accept` did not apply the proposal: its answer's `failureReason`, if it gave one. */
export function failureReasonOf(result: unknown): string | undefined {
  return isObject(result) && typeof result.failureReason === "string" ? result.failureReason : undefined;
}

/** The `proposalId` of a command's one object argument, if it has one. */
export function proposalIdOf(args: readonly unknown[]): string | undefined {
  const [first] = args;
  return isObject(first) && typeof first.proposalId === "string" && first.proposalId !== ""
    ? first.proposalId
    : undefined;
}

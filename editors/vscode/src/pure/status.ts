/**
 * What the status bar item says: the server's state, indexing progress, the agent runs going on with
 * their cost so far, and how many proposals wait for a decision.
 *
 * `ProgressTracker` follows the server's `$/progress` (begin, report, end per token) and tells indexing
 * from agent runs by the progress title; `statusView` turns a snapshot into the item's text and tooltip,
 * `clickCommand` says what a click on it does, and `runChoices` are the choices a click offers while runs
 * go on (a click never cancels a run by itself: one stray click would lose its work). Icons are VS Code's
 * `$(name)` syntax.
 */

import { ClientCommand, type ClientCommandId } from "../constants";

export type ServerState = "starting" | "running" | "stopped" | "failed";

export interface Progress {
  readonly title: string;
  readonly message: string | undefined;
  readonly percentage: number | undefined;
}

export interface RunView {
  readonly runId: string;
  readonly task: string;
  readonly cost: number | undefined;
}

export interface StatusSnapshot {
  readonly server: ServerState;
  readonly indexing: readonly Progress[];
  readonly runs: readonly RunView[];
  readonly pendingProposals: number;
}

export interface StatusView {
  readonly text: string;
  readonly tooltip: string;
}

/** "$0.04"; costs under a cent show as "<$0.01" rather than as a misleading "$0.00". */
export function formatCost(usd: number | undefined): string | undefined {
  if (usd === undefined || !Number.isFinite(usd) || usd < 0) {
    return undefined;
  }
  if (usd === 0) {
    return "$0.00";
  }
  return usd < 0.01 ? "<$0.01" : `$${usd.toFixed(2)}`;
}

function plural(n: number, one: string, many: string): string {
  return `${String(n)} ${n === 1 ? one : many}`;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Total cost of the runs that report one; undefined when none does. */
export function totalCost(runs: readonly RunView[]): number | undefined {
  const known = runs.map((r) => r.cost).filter((c): c is number => c !== undefined);
  return known.length === 0 ? undefined : known.reduce((a, b) => a + b, 0);
}

function indexingPart(indexing: readonly Progress[]): string {
  const percentages = indexing.map((p) => p.percentage).filter((p): p is number => p !== undefined);
  if (percentages.length === indexing.length && percentages.length > 0) {
    // Several folders: the slowest one says how far the whole is.
    return `indexing ${String(Math.round(Math.min(...percentages)))}%`;
  }
  return "indexing";
}

function runsPart(runs: readonly RunView[]): string {
  const cost = formatCost(totalCost(runs));
  const [only] = runs;
  const what =
    runs.length === 1 && only !== undefined && only.task !== ""
      ? clip(only.task, 40)
      : plural(runs.length, "run", "runs");
  return cost === undefined ? what : `${what} · ${cost}`;
}

export function statusView(s: StatusSnapshot): StatusView {
  const tooltip: string[] = [];
  if (s.server === "failed" || s.server === "stopped") {
    const text = s.server === "failed" ? "$(error) agentls" : "$(circle-slash) agentls";
    tooltip.push(
      s.server === "failed"
        ? "The agentls server is not running: see the agentls output. Click to restart it."
        : "The agentls server is stopped. Click to restart it.",
    );
    return { text, tooltip: tooltip.join("\n") };
  }
  const parts: string[] = [];
  if (s.server === "starting") {
    parts.push("$(loading~spin) agentls");
    tooltip.push("The agentls server is starting.");
  }
  if (s.indexing.length > 0) {
    parts.push(`$(sync~spin) ${indexingPart(s.indexing)}`);
    for (const p of s.indexing) {
      const pct = p.percentage === undefined ? "" : ` ${String(Math.round(p.percentage))}%`;
      tooltip.push(`${p.title}${pct}${p.message === undefined || p.message === "" ? "" : `: ${p.message}`}`);
    }
  }
  if (s.runs.length > 0) {
    parts.push(`$(hubot) ${runsPart(s.runs)}`);
    for (const r of s.runs) {
      const cost = formatCost(r.cost);
      tooltip.push(
        `Run ${r.runId}: ${r.task === "" ? "agent run" : r.task}${cost === undefined ? "" : ` (${cost} so far)`}`,
      );
    }
    tooltip.push("Click to see the runs: keep them going, or cancel one.");
  }
  if (s.pendingProposals > 0) {
    parts.push(`$(git-pull-request) ${plural(s.pendingProposals, "proposal", "proposals")}`);
    tooltip.push(`${plural(s.pendingProposals, "proposal waits", "proposals wait")} for Accept or Reject.`);
  }
  if (parts.length === 0) {
    parts.push("$(sparkle) agentls");
    tooltip.push("agentls is ready: index up to date, no run going.");
  }
  return { text: parts.join("  "), tooltip: tooltip.join("\n") };
}

/**
 * The command of a click on the status bar: restart a server that is not running; while runs go on, the
 * list of them (`runChoices`), never a cancel straight away; else the proposals waiting; else the output.
 */
export function clickCommand(s: Omit<StatusSnapshot, "indexing">): ClientCommandId {
  if (s.server === "failed" || s.server === "stopped") {
    return ClientCommand.restart;
  }
  if (s.runs.length > 0) {
    return ClientCommand.showRuns;
  }
  return s.pendingProposals > 0 ? ClientCommand.showDiff : ClientCommand.showOutput;
}

export type RunAction =
  | { readonly kind: "keep" }
  | { readonly kind: "cancel"; readonly runId: string }
  | { readonly kind: "proposals" }
  | { readonly kind: "output" };

/** An item of the list of runs (a Quick Pick item with what picking it does). */
export interface RunChoice {
  readonly label: string;
  readonly description: string;
  readonly detail?: string;
  readonly action: RunAction;
}

/**
 * The choices offered for the runs going on: first to keep them going (what Enter picks at once, as
 * Escape does), then to cancel each run by name, then the proposals waiting and the output.
 */
export function runChoices(runs: readonly RunView[], pendingProposals: number): RunChoice[] {
  const choices: RunChoice[] = [
    {
      label: runs.length === 1 ? "$(play) Keep running" : "$(play) Keep them running",
      description: "close this list",
      action: { kind: "keep" },
    },
    ...runs.map((r): RunChoice => ({
      label: `$(debug-stop) Cancel run: ${clip(r.task === "" ? "agent run" : r.task, 60)}`,
      description: formatCost(r.cost) === undefined ? "" : `${formatCost(r.cost) ?? ""} so far`,
      detail: `run ${r.runId}`,
      action: { kind: "cancel", runId: r.runId },
    })),
  ];
  if (pendingProposals > 0) {
    choices.push({
      label: "$(diff) Show Proposal Diff",
      description: plural(pendingProposals, "proposal waits", "proposals wait"),
      action: { kind: "proposals" },
    });
  }
  choices.push({
    label: "$(output) Show Output",
    description: "the agentls log",
    action: { kind: "output" },
  });
  return choices;
}

export type ProgressEvent =
  | {
      readonly kind: "begin";
      readonly title: string;
      readonly message?: string | undefined;
      readonly percentage?: number | undefined;
    }
  | {
      readonly kind: "report";
      readonly message?: string | undefined;
      readonly percentage?: number | undefined;
    }
  | { readonly kind: "end"; readonly message?: string | undefined };

/**
 * Whether a progress title belongs to indexing. The server titles it "agentls: indexing NAME" and runs
 * "agentls: TASK TITLE"; anchoring at the start keeps a run like "Edit: add an index" a run.
 */
export function isIndexingTitle(title: string): boolean {
  return /^(agentls: )?(re)?index(ing)?\b/i.test(title.trim());
}

/** The `$/progress` tokens in flight, each with its latest title, message and percentage. */
export class ProgressTracker {
  private readonly active = new Map<string, Progress>();

  /** Apply one `$/progress` value; returns whether anything changed. */
  update(token: string | number, event: ProgressEvent): boolean {
    const key = String(token);
    if (event.kind === "begin") {
      this.active.set(key, { title: event.title, message: event.message, percentage: event.percentage });
      return true;
    }
    const known = this.active.get(key);
    if (known === undefined) {
      return false; // a report or end for a token whose begin we never saw (or saw end already)
    }
    if (event.kind === "end") {
      this.active.delete(key);
      return true;
    }
    this.active.set(key, {
      title: known.title,
      message: event.message ?? known.message,
      percentage: event.percentage ?? known.percentage,
    });
    return true;
  }

  clear(): void {
    this.active.clear();
  }

  indexing(): Progress[] {
    return [...this.active.values()].filter((p) => isIndexingTitle(p.title));
  }

  /** Progress of everything that is not indexing: agent runs, as the server reports them. */
  others(): Progress[] {
    return [...this.active.values()].filter((p) => !isIndexingTitle(p.title));
  }
}

/**
 * What to tell the user when the server process ended without being asked to: that it did, whether it
 * comes back, and the work that went with it (a new process knows none of the old runs or proposals).
 */
export function serverLostText(restarting: boolean, runs: readonly RunView[], proposals: number): string {
  const head = restarting
    ? "agentls: the server stopped unexpectedly and is restarting (the agentls output has its log)."
    : "agentls: the server keeps stopping unexpectedly, so it was not restarted (the agentls output has " +
      "its log; Restart Server tries again).";
  const lost: string[] = [];
  const [only] = runs;
  if (runs.length === 1 && only !== undefined) {
    lost.push(`the run “${clip(only.task === "" ? `run ${only.runId}` : only.task, 60)}”`);
  } else if (runs.length > 1) {
    lost.push(plural(runs.length, "run", "runs"));
  }
  if (proposals > 0) {
    lost.push(`${plural(proposals, "proposal", "proposals")} waiting for review`);
  }
  if (lost.length === 0) {
    return `${head} No run was going and no proposal was waiting.`;
  }
  return `${head} Lost with it: ${lost.join(" and ")}; start ${runs.length + proposals === 1 ? "it" : "them"} again.`;
}

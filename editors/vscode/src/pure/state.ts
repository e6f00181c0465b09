/**
 * What the extension remembers between messages: the agent runs going on, and the proposals waiting for
 * Accept or Reject. Both are plain classes with no VS Code in them, so their rules are unit-tested.
 *
 * Runs are learned three ways: the `{runId}` answer of a run command (ours, or one a code action ran),
 * `agentls/runs` polled while runs go on (it also gives their cost so far), and their end:
 * `agentls/proposalReady` or `agentls/runFailed`.
 */

import { ServerCommand } from "../constants";
import { statusKind, type ProposalReady, type RunInfo } from "./protocol";
import type { RunView } from "./status";

interface RunEntry {
  task: string;
  cost: number | undefined;
  /** The server command that started the run, when the answer to it was seen. */
  command: string | undefined;
}

/** A run that ended, with the command that started it when known (an `agentls.ask` opens its answer). */
export interface EndedRun extends RunView {
  readonly command: string | undefined;
}

export class RunTracker {
  private readonly runs = new Map<string, RunEntry>();
  /** Runs that ended before `agentls/runs` stopped listing them as running: not to be revived by a poll. */
  private readonly ended = new Set<string>();
  private readonly cancelled = new Set<string>();

  /**
   * A run command answered `{runId}`; `args` are the command's arguments, which name the run
   * (`runTitle`) until a poll brings the server's own title.
   */
  started(runId: string, command: string, args: readonly unknown[] = []): void {
    if (this.ended.has(runId)) {
      return; // the end notification overtook the command's answer
    }
    const known = this.runs.get(runId);
    this.runs.set(runId, {
      task: known?.task !== undefined && known.task !== "" ? known.task : runTitle(command, args),
      cost: known?.cost,
      command,
    });
  }

  /** The run ended (proposal ready, failed or cancelled); returns it if it was known. */
  finished(runId: string): EndedRun | undefined {
    this.ended.add(runId);
    const known = this.runs.get(runId);
    this.runs.delete(runId);
    return known === undefined
      ? undefined
      : { runId, task: known.task, cost: known.cost, command: known.command };
  }

  /**
   * Merge a poll of `agentls/runs`: runs going on are added or updated, ended ones dropped; a run without
   * a status only has its cost updated.
   */
  merge(infos: readonly RunInfo[]): void {
    for (const info of infos) {
      const kind = statusKind(info.status);
      const known = this.runs.get(info.runId);
      if (kind === "ended" || this.ended.has(info.runId)) {
        if (known !== undefined) {
          this.runs.delete(info.runId);
          this.ended.add(info.runId);
        }
      } else if (kind === "active" || known !== undefined) {
        this.runs.set(info.runId, {
          task: info.task !== "" ? info.task : (known?.task ?? ""),
          cost: info.cost ?? known?.cost,
          command: known?.command,
        });
      }
    }
  }

  /** The user asked to cancel this run: its failure that follows is no error to report. */
  cancelling(runId: string): void {
    this.cancelled.add(runId);
  }

  wasCancelled(runId: string): boolean {
    return this.cancelled.has(runId);
  }

  clear(): void {
    this.runs.clear();
    this.ended.clear();
    this.cancelled.clear();
  }

  get size(): number {
    return this.runs.size;
  }

  views(): RunView[] {
    return [...this.runs.entries()].map(([runId, r]) => ({ runId, task: r.task, cost: r.cost }));
  }
}

/** Proposals that wait for a decision, oldest first. */
export class ProposalStore {
  private readonly pending = new Map<string, ProposalReady>();

  add(proposal: ProposalReady): void {
    this.pending.delete(proposal.proposalId); // re-announced: move it to the end (newest)
    this.pending.set(proposal.proposalId, proposal);
  }

  remove(proposalId: string): boolean {
    return this.pending.delete(proposalId);
  }

  get(proposalId: string): ProposalReady | undefined {
    return this.pending.get(proposalId);
  }

  /** Newest first, the order a picker shows them in. */
  list(): ProposalReady[] {
    return [...this.pending.values()].reverse();
  }

  clear(): void {
    this.pending.clear();
  }

  get size(): number {
    return this.pending.size;
  }
}

/** A short task name for a run command, e.g. "implement" for `agentls.implement`. */
export function taskName(command: string): string {
  const name = command.startsWith("agentls.") ? command.slice("agentls.".length) : command;
  return name === "writeTests" ? "write tests" : name;
}

function firstLine(text: unknown): string {
  const line = typeof text === "string" ? (text.trim().split(/\r?\n|\r/)[0] ?? "").trim() : "";
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/** "pricing.py:7" for a `{uri, position}` argument (the line 1-based, as editors show it). */
function placeOf(argument: Record<string, unknown>, withLine: boolean): string | undefined {
  const uri = argument.uri;
  if (typeof uri !== "string" || uri === "") {
    return undefined;
  }
  const name =
    decodeURIComponent(uri.replace(/[?#].*$/, "").replace(/\/+$/, ""))
      .split("/")
      .pop() ?? "";
  const position = argument.position;
  const line =
    typeof position === "object" && position !== null && "line" in position ? position.line : undefined;
  return withLine && typeof line === "number" ? `${name}:${String(line + 1)}` : name;
}

/**
 * A run's title from the command and arguments that started it, in the words of the server's titles
 * (`agent/task.py: Task.title`) as far as the arguments tell: "Run: add a CLI flag", "Edit: …",
 * "Ask: …", "Implement at pricing.py:7", "Write tests at pricing.py:7", "Fix 2 problems in
 * pricing.py". The status bar shows it from the start, until a poll of `agentls/runs` brings the
 * server's own (which names the function); `taskName` when the arguments say nothing more.
 */
export function runTitle(command: string, args: readonly unknown[]): string {
  const [first] = args;
  const argument = typeof first === "object" && first !== null ? (first as Record<string, unknown>) : {};
  const name = taskName(command);
  if (command === ServerCommand.run || command === ServerCommand.edit || command === ServerCommand.ask) {
    const text = firstLine(command === ServerCommand.ask ? argument.question : argument.instruction);
    return text === "" ? name : `${name.charAt(0).toUpperCase()}${name.slice(1)}: ${text}`;
  }
  if (command === ServerCommand.implement || command === ServerCommand.writeTests) {
    const place = placeOf(argument, true);
    const what = command === ServerCommand.implement ? "Implement" : "Write tests";
    return place === undefined ? name : `${what} at ${place}`;
  }
  if (command === ServerCommand.fix) {
    const place = placeOf(argument, false);
    const count = Array.isArray(argument.diagnostics) ? argument.diagnostics.length : 0;
    const problems = count === 0 ? "problems" : `${String(count)} problem${count === 1 ? "" : "s"}`;
    return place === undefined ? name : `Fix ${problems} in ${place}`;
  }
  return name;
}

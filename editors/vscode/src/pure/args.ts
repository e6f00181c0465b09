/**
 * The one-object argument of each server command, built from plain positions and ranges.
 *
 * Positions are LSP positions (zero-based line, UTF-16 character), the unit VS Code uses as well. The
 * server validates every argument (`server/features/commands.py`); these builders only give the shape,
 * so a typo in a field name is a compile error here rather than an `Invalid params` at run time.
 */

import { ServerCommand, type ServerCommandId } from "../constants";

export interface Position {
  readonly line: number;
  readonly character: number;
}

export interface Range {
  readonly start: Position;
  readonly end: Position;
}

export interface PositionArgs {
  readonly uri: string;
  readonly position: Position;
}

export interface FixArgs {
  readonly uri: string;
  readonly range: Range;
  readonly diagnostics: readonly unknown[];
}

export interface EditArgs {
  readonly uri: string;
  readonly range: Range;
  readonly instruction: string;
}

export interface AskArgs {
  readonly question: string;
  readonly uri?: string;
  readonly range?: Range;
}

export interface ProposalArgs {
  readonly proposalId: string;
}

export interface CancelArgs {
  readonly runId: string;
}

/** A server command with its argument, ready for `workspace/executeCommand`. */
export interface CommandCall {
  readonly command: ServerCommandId;
  readonly arguments: [object];
}

function position(p: Position): Position {
  return { line: p.line, character: p.character };
}

function range(r: Range): Range {
  return { start: position(r.start), end: position(r.end) };
}

export function implementCall(uri: string, at: Position): CommandCall {
  const args: PositionArgs = { uri, position: position(at) };
  return { command: ServerCommand.implement, arguments: [args] };
}

export function writeTestsCall(uri: string, at: Position): CommandCall {
  const args: PositionArgs = { uri, position: position(at) };
  return { command: ServerCommand.writeTests, arguments: [args] };
}

/**
 * Fix the given diagnostics (already in LSP form). The range covers the selection and every diagnostic,
 * so the agent sees all of what it is asked to fix.
 */
export function fixCall(
  uri: string,
  selection: Range,
  diagnostics: readonly { range: Range }[],
): CommandCall {
  const covered = diagnostics.reduce<Range>((acc, d) => union(acc, d.range), range(selection));
  const args: FixArgs = { uri, range: covered, diagnostics: [...diagnostics] };
  return { command: ServerCommand.fix, arguments: [args] };
}

/** Edit a range by an instruction; the instruction is trimmed and must not be empty. */
export function editCall(uri: string, selection: Range, instruction: string): CommandCall {
  const text = instruction.trim();
  if (text === "") {
    throw new Error("the instruction is empty: say what to change in the selection");
  }
  const args: EditArgs = { uri, range: range(selection), instruction: text };
  return { command: ServerCommand.edit, arguments: [args] };
}

/**
 * Ask a question, about a file or a selection when one is given. An empty selection sends the file only:
 * a cursor is not something to ask about.
 */
export function askCall(question: string, uri?: string, selection?: Range): CommandCall {
  const text = question.trim();
  if (text === "") {
    throw new Error("the question is empty");
  }
  const args: { question: string; uri?: string; range?: Range } = { question: text };
  if (uri !== undefined) {
    args.uri = uri;
    if (selection !== undefined && !isEmpty(selection)) {
      args.range = range(selection);
    }
  }
  const built: AskArgs = args;
  return { command: ServerCommand.ask, arguments: [built] };
}

/** Accept the proposal, or only the given hunks of it (ids from `agentls/proposal`). */
export function acceptCall(proposalId: string, hunks?: readonly string[]): CommandCall {
  const args: ProposalArgs & { hunks?: string[] } = { proposalId };
  if (hunks !== undefined) {
    args.hunks = [...hunks];
  }
  return { command: ServerCommand.accept, arguments: [args] };
}

/** Accept and commit with the user's message (the proposal's when absent), all of it or some hunks. */
export function acceptAndCommitCall(
  proposalId: string,
  message?: string,
  hunks?: readonly string[],
): CommandCall {
  const args: ProposalArgs & { message?: string; hunks?: string[] } = { proposalId };
  if (message !== undefined && message.trim() !== "") {
    args.message = message;
  }
  if (hunks !== undefined) {
    args.hunks = [...hunks];
  }
  return { command: ServerCommand.acceptAndCommit, arguments: [args] };
}

/** Start a run by an instruction, in a mode ("solo", "team", ...), about a file or a selection when given. */
export function runCall(instruction: string, mode: string, uri?: string, selection?: Range): CommandCall {
  const text = instruction.trim();
  if (text === "") {
    throw new Error("the instruction is empty: say what the agent should do");
  }
  const args: { instruction: string; mode: string; uri?: string; range?: Range } = {
    instruction: text,
    mode,
  };
  if (uri !== undefined) {
    args.uri = uri;
    if (selection !== undefined && !isEmpty(selection)) {
      args.range = range(selection);
    }
  }
  return { command: ServerCommand.run, arguments: [args] };
}

export function rejectCall(proposalId: string): CommandCall {
  const args: ProposalArgs = { proposalId };
  return { command: ServerCommand.reject, arguments: [args] };
}

export function cancelCall(runId: string): CommandCall {
  const args: CancelArgs = { runId };
  return { command: ServerCommand.cancel, arguments: [args] };
}

export function reindexCall(): CommandCall {
  return { command: ServerCommand.reindex, arguments: [{}] };
}

export function comparePositions(a: Position, b: Position): number {
  return a.line !== b.line ? a.line - b.line : a.character - b.character;
}

export function isEmpty(r: Range): boolean {
  return comparePositions(r.start, r.end) === 0;
}

/** The smallest range covering both. */
export function union(a: Range, b: Range): Range {
  const start = comparePositions(a.start, b.start) <= 0 ? a.start : b.start;
  const end = comparePositions(a.end, b.end) >= 0 ? a.end : b.end;
  return { start: position(start), end: position(end) };
}

/** Whether two ranges share a position (touching counts, as for a cursor at the end of a diagnostic). */
export function intersects(a: Range, b: Range): boolean {
  return comparePositions(a.start, b.end) <= 0 && comparePositions(b.start, a.end) <= 0;
}

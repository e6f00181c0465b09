/**
 * The palette commands: each reads the editor (cursor, selection, diagnostics) and, for instructions and
 * questions, an input box, builds the server command's argument (`pure/args.ts`) and sends it. Runs answer
 * `{runId}` at once; their end arrives as `agentls/proposalReady` or `agentls/runFailed`.
 */

import * as vscode from "vscode";

import type { AgentlsClient, FullLink } from "./client";
import { ClientCommand, Request } from "./constants";
import {
  askCall,
  cancelCall,
  editCall,
  fixCall,
  implementCall,
  intersects,
  reindexCall,
  runCall,
  writeTestsCall,
  type CommandCall,
  type Range,
} from "./pure/args";
import { failureText } from "./pure/messages";
import { runIdOf } from "./pure/protocol";
import { searchItems, searchParams, type SearchItem } from "./pure/search";
import type { RunTracker } from "./pure/state";
import { formatCost, runChoices } from "./pure/status";
import { messageOf, type Proposals } from "./proposals";

export interface CommandContext {
  readonly client: AgentlsClient;
  readonly proposals: Proposals;
  readonly runs: RunTracker;
  readonly output: vscode.OutputChannel;
  /** Where team runs' plans, handoffs and QA verdicts are written. */
  readonly team: vscode.OutputChannel;
  /** Called after a run starts or is cancelled, to refresh the status bar and start the cost poll. */
  readonly runsChanged: () => void;
}

/** The commands' own state beside what they are given. */
interface Context extends CommandContext {
  /** What the commands waiting for the server to start will do (`requireLink`). */
  readonly waiting: Set<string>;
}

function toRange(r: vscode.Range): Range {
  return {
    start: { line: r.start.line, character: r.start.character },
    end: { line: r.end.line, character: r.end.character },
  };
}

function where(editor: vscode.TextEditor): string {
  return `${vscode.workspace.asRelativePath(editor.document.uri)}:${String(editor.selection.active.line + 1)}`;
}

function requireEditor(what: string): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor?.document.uri.scheme !== "file") {
    void vscode.window.showInformationMessage(`agentls: open a file and put the cursor ${what} first.`);
    return undefined;
  }
  return editor;
}

/** How long a command given while the server starts waits for it. */
const START_WAIT_MS = 60_000;

/**
 * The running server. While it starts (the first seconds of a window, or after a restart) the command
 * waits for it rather than being refused; the same command again meanwhile (`what`: what it does) is
 * dropped with a message, so a key pressed twice does not start two runs.
 */
async function requireLink(ctx: Context, what: string): Promise<FullLink | undefined> {
  const now = ctx.client.link();
  if (now !== undefined) {
    return now;
  }
  if (ctx.client.starting()) {
    if (ctx.waiting.has(what)) {
      void vscode.window.showInformationMessage(`agentls: already waiting for the server to start: ${what}.`);
      return undefined;
    }
    ctx.waiting.add(what);
    let link: FullLink | undefined;
    try {
      link = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Window,
          title: `agentls: waiting for the server to start (${what})`,
        },
        () => ctx.client.whenRunning(START_WAIT_MS),
      );
    } finally {
      ctx.waiting.delete(what);
    }
    if (link === undefined && ctx.client.starting()) {
      void vscode.window
        .showErrorMessage(
          `agentls: the server did not finish starting within ${String(START_WAIT_MS / 1000)} s, so ${what} ` +
            "was not sent. The agentls output has its log.",
          "Show Output",
        )
        .then((choice) => {
          if (choice === "Show Output") {
            ctx.output.show();
          }
        });
    }
    // A server that failed to start has said so (with what to do) already.
    return link;
  }
  sayNotRunning(ctx);
  return undefined;
}

/** Whether the server is neither running nor starting (said, with the ways out). */
function serverDown(ctx: Context): boolean {
  if (ctx.client.link() !== undefined || ctx.client.starting()) {
    return false;
  }
  sayNotRunning(ctx);
  return true;
}

function sayNotRunning(ctx: Context): void {
  void vscode.window
    .showErrorMessage("agentls: the server is not running.", "Restart Server", "Show Output")
    .then((choice) => {
      if (choice === "Restart Server") {
        void ctx.client.restart();
      } else if (choice === "Show Output") {
        ctx.output.show();
      }
    });
}

/** Send a run command; the run is tracked from its `{runId}` by the client hook. */
async function startRun(link: FullLink, call: CommandCall, label: string): Promise<void> {
  try {
    const result = await link.execute(call);
    if (runIdOf(result) !== undefined) {
      vscode.window.setStatusBarMessage(`agentls: ${label} started`, 4000);
    }
  } catch (error) {
    void vscode.window.showErrorMessage(`agentls: ${label}: ${messageOf(error)}`);
  }
}

async function implement(ctx: Context): Promise<void> {
  const editor = requireEditor("in a function to implement");
  const label = editor === undefined ? "" : `implement at ${where(editor)}`;
  const at = editor?.selection.active; // where the command was given, should it wait for the server
  const link = editor === undefined ? undefined : await requireLink(ctx, label);
  if (editor === undefined || at === undefined || link === undefined) {
    return;
  }
  const call = implementCall(editor.document.uri.toString(), at);
  await startRun(link, call, label);
}

async function writeTests(ctx: Context): Promise<void> {
  const editor = requireEditor("in the function to test");
  const label = editor === undefined ? "" : `write tests at ${where(editor)}`;
  const at = editor?.selection.active; // where the command was given, should it wait for the server
  const link = editor === undefined ? undefined : await requireLink(ctx, label);
  if (editor === undefined || at === undefined || link === undefined) {
    return;
  }
  const call = writeTestsCall(editor.document.uri.toString(), at);
  await startRun(link, call, label);
}

async function edit(ctx: Context): Promise<void> {
  const editor = requireEditor("or a selection where the change goes");
  if (editor === undefined || serverDown(ctx)) {
    return;
  }
  const instruction = await vscode.window.showInputBox({
    title: "agentls: Edit Selection",
    prompt: editor.selection.isEmpty
      ? "What should agentls change here? (nothing is selected: the agent works from the cursor)"
      : "What should agentls change in the selection?",
    placeHolder: "e.g. handle an empty list and add a docstring",
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() === "" ? "Say what to change." : undefined),
  });
  const label = `edit at ${where(editor)}`;
  const link = instruction === undefined ? undefined : await requireLink(ctx, label);
  if (instruction === undefined || link === undefined) {
    return;
  }
  const call = editCall(editor.document.uri.toString(), toRange(editor.selection), instruction);
  await startRun(link, call, label);
}

async function ask(ctx: Context): Promise<void> {
  if (serverDown(ctx)) {
    return;
  }
  const editor = vscode.window.activeTextEditor;
  const inFile = editor?.document.uri.scheme === "file";
  const question = await vscode.window.showInputBox({
    title: "agentls: Ask a Question",
    prompt:
      inFile && !editor.selection.isEmpty
        ? "Ask about the selection (the agent can read the whole workspace)"
        : "Ask about this workspace",
    placeHolder: "e.g. where are retries configured, and what calls them?",
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() === "" ? "Type a question." : undefined),
  });
  const link = question === undefined ? undefined : await requireLink(ctx, `question: ${question.trim()}`);
  if (question === undefined || link === undefined) {
    return;
  }
  const call = inFile
    ? askCall(question, editor.document.uri.toString(), toRange(editor.selection))
    : askCall(question);
  await startRun(link, call, "question");
}

/** What a free-form run's instruction box says: its title, prompts (in a file, in the workspace) and more. */
interface RunBox {
  title: string;
  inFile: string;
  inWorkspace: string;
  placeHolder: string;
  empty: string;
}

/**
 * The instruction box of a free-form run, then `agentls.run {mode}` on the file or selection when in a file,
 * else on the workspace; undefined when the box was dismissed or the server is not there.
 */
async function askRun(
  ctx: Context,
  mode: "solo" | "team",
  box: RunBox,
): Promise<{ link: FullLink; call: CommandCall; instruction: string } | undefined> {
  if (serverDown(ctx)) {
    return undefined;
  }
  const editor = vscode.window.activeTextEditor;
  const inFile = editor?.document.uri.scheme === "file";
  const instruction = await vscode.window.showInputBox({
    title: box.title,
    prompt: inFile ? box.inFile : box.inWorkspace,
    placeHolder: box.placeHolder,
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() === "" ? box.empty : undefined),
  });
  const label = mode === "team" ? "team" : "task";
  const link =
    instruction === undefined ? undefined : await requireLink(ctx, `${label}: ${instruction.trim()}`);
  if (instruction === undefined || link === undefined) {
    return undefined;
  }
  const call = inFile
    ? runCall(instruction, mode, editor.document.uri.toString(), toRange(editor.selection))
    : runCall(instruction, mode);
  return { link, call, instruction };
}

/**
 * "Run agentls Task on…": `agentls.run {mode: "solo"}` (the single agent loop) on the file or selection,
 * else the workspace: a free-form task, as `agentls run INSTRUCTION`.
 */
async function runTask(ctx: Context): Promise<void> {
  const run = await askRun(ctx, "solo", {
    title: "agentls: Run agentls Task on…",
    inFile:
      "What should agentls do? It starts from this file or selection (and can change the whole workspace).",
    inWorkspace: "What should agentls do in this workspace?",
    placeHolder: "e.g. rename Cart.total to Cart.subtotal everywhere and update the tests",
    empty: "Say what to do.",
  });
  if (run !== undefined) {
    await startRun(run.link, run.call, "task");
  }
}

/** "Run agentls Team on…": `agentls.run {mode: "team"}` on the file/selection; its story goes to its output. */
async function runTeam(ctx: Context): Promise<void> {
  const run = await askRun(ctx, "team", {
    title: "agentls: Run agentls Team on…",
    inFile:
      "What should the team (planner, architect, coder, QA) build? It starts from this file or selection.",
    inWorkspace: "What should the team (planner, architect, coder, QA) build in this workspace?",
    placeHolder: "e.g. add fixed-amount vouchers to the checkout, with tests",
    empty: "Say what to build.",
  });
  if (run === undefined) {
    return;
  }
  ctx.team.appendLine(`# Team: ${run.instruction.trim()}`);
  ctx.team.show(true);
  await startRun(run.link, run.call, "team run");
}

/** The hunks of the active proposal diff at the cursor (`line`) or of its whole file. */
async function hunkCommand(
  ctx: CommandContext,
  arg: unknown,
  atCursor: boolean,
  act: (proposalId: string, hunks: string[]) => Promise<void>,
): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const uri = arg instanceof vscode.Uri ? arg : editor?.document.uri;
  if (uri === undefined) {
    void vscode.window.showInformationMessage("agentls: open a proposal's diff (Show Proposal Diff) first.");
    return;
  }
  const line = atCursor && editor !== undefined ? editor.selection.active.line : undefined;
  const found = await ctx.proposals.hunksAt(uri, line);
  if (found !== undefined) {
    await act(found.proposalId, found.hunks);
  }
}

async function fix(ctx: Context): Promise<void> {
  const editor = requireEditor("on a problem");
  const label = editor === undefined ? "" : `fix at ${where(editor)}`;
  const link = editor === undefined ? undefined : await requireLink(ctx, label);
  if (editor === undefined || link === undefined) {
    return;
  }
  // With no selection, the problems on the cursor's line: that is where people put the cursor to fix one.
  const scope = editor.selection.isEmpty
    ? editor.document.lineAt(editor.selection.active.line).range
    : editor.selection;
  const diagnostics = vscode.languages
    .getDiagnostics(editor.document.uri)
    .filter((d) => d.source !== "agentls" && intersects(toRange(d.range), toRange(scope)));
  if (diagnostics.length === 0) {
    void vscode.window.showInformationMessage(
      "agentls: no problem is reported on this line or in the selection; nothing to fix.",
    );
    return;
  }
  let converted: readonly { range: Range }[];
  try {
    converted = await link.toProtocolDiagnostics(diagnostics);
  } catch (error) {
    void vscode.window.showErrorMessage(`agentls: cannot read the problems: ${messageOf(error)}`);
    return;
  }
  const call = fixCall(editor.document.uri.toString(), toRange(scope), converted);
  await startRun(link, call, label);
}

async function reindex(ctx: Context): Promise<void> {
  const link = await requireLink(ctx, "reindex");
  if (link === undefined) {
    return;
  }
  try {
    await link.execute(reindexCall());
    vscode.window.setStatusBarMessage("agentls: re-indexing the workspace", 4000);
  } catch (error) {
    void vscode.window.showErrorMessage(`agentls: reindex: ${messageOf(error)}`);
  }
}

/** Search the index (`agentls/search`) and go to the hit the user picks; `files`: each file once. */
async function search(ctx: Context, files: boolean): Promise<void> {
  if (serverDown(ctx)) {
    return;
  }
  const title = files ? "agentls: Search Files" : "agentls: Search Code";
  const query = await vscode.window.showInputBox({
    title,
    prompt: files ? "Which files are about what?" : "What code are you looking for?",
    placeHolder: files ? "e.g. session cookies" : "e.g. parse a price",
    validateInput: (value) => (value.trim() === "" ? "Say what to look for." : undefined),
  });
  const link =
    query === undefined || query.trim() === ""
      ? undefined
      : await requireLink(ctx, `search: ${query.trim()}`);
  if (query === undefined || link === undefined) {
    return;
  }
  let items: SearchItem[];
  try {
    items = searchItems(await link.request(Request.search, searchParams(query, files)));
  } catch (error) {
    void vscode.window.showErrorMessage(`agentls: search: ${messageOf(error)}`);
    return;
  }
  if (items.length === 0) {
    void vscode.window.showInformationMessage(`agentls: no results for "${query.trim()}".`);
    return;
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: `${title}: ${query.trim()}`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (picked !== undefined) {
    const at = new vscode.Position(picked.line, 0);
    await vscode.window.showTextDocument(vscode.Uri.parse(picked.uri), {
      selection: new vscode.Range(at, at),
    });
  }
}

async function cancel(ctx: Context, arg: unknown): Promise<void> {
  let runId: string | undefined;
  if (typeof arg === "object" && arg !== null && "runId" in arg) {
    const id = arg.runId;
    runId = typeof id === "string" ? id : undefined;
  }
  if (runId === undefined) {
    const runs = ctx.runs.views();
    if (runs.length === 0) {
      void vscode.window.showInformationMessage("agentls: no agent run is going.");
      return;
    }
    const picked =
      runs.length === 1
        ? runs[0]
        : await vscode.window.showQuickPick(
            runs.map((r) => ({
              label: r.task === "" ? `run ${r.runId}` : r.task,
              description: formatCost(r.cost) ?? "",
              detail: `run ${r.runId}`,
              runId: r.runId,
              task: r.task,
              cost: r.cost,
            })),
            { placeHolder: "Cancel which run?" },
          );
    runId = picked?.runId;
  }
  const link = runId === undefined ? undefined : await requireLink(ctx, `cancel run ${runId}`);
  if (runId === undefined || link === undefined) {
    return;
  }
  ctx.runs.cancelling(runId);
  try {
    await link.execute(cancelCall(runId));
    vscode.window.setStatusBarMessage(`agentls: cancelling run ${runId}`, 4000);
  } catch (error) {
    void vscode.window.showErrorMessage(
      failureText(messageOf(error), { doing: "could not cancel", subject: `run ${runId}` }),
    );
  }
  ctx.runsChanged();
}

/**
 * The runs going on (what a click on the status bar opens while runs go on): keep them going, cancel
 * one by name, or open the proposals waiting or the output. Nothing is cancelled without a pick.
 */
async function showRuns(ctx: Context): Promise<void> {
  const runs = ctx.runs.views();
  if (runs.length === 0) {
    void vscode.window.showInformationMessage("agentls: no agent run is going.");
    return;
  }
  const picked = await vscode.window.showQuickPick(runChoices(runs, ctx.proposals.pendingCount), {
    title: `agentls: ${runs.length === 1 ? "1 run goes on" : `${String(runs.length)} runs go on`}`,
    placeHolder: "Keep running, or cancel a run (Escape keeps it running)",
  });
  const action = picked?.action;
  if (action?.kind === "cancel") {
    await cancel(ctx, { runId: action.runId });
  } else if (action?.kind === "proposals") {
    await proposalCommand(ctx, undefined, (id) => ctx.proposals.showDiff(id));
  } else if (action?.kind === "output") {
    ctx.output.show();
  }
}

async function proposalCommand(
  ctx: CommandContext,
  arg: unknown,
  act: (proposalId: string) => Promise<void>,
): Promise<void> {
  const proposalId = await ctx.proposals.resolve(arg);
  if (proposalId !== undefined) {
    await act(proposalId);
  }
}

/** Register every palette command. */
export function registerCommands(given: CommandContext): vscode.Disposable[] {
  const ctx: Context = { ...given, waiting: new Set<string>() };
  const register = (id: string, run: (arg: unknown) => Promise<void>): vscode.Disposable =>
    vscode.commands.registerCommand(id, (arg: unknown) => run(arg));
  return [
    register(ClientCommand.implement, () => implement(ctx)),
    register(ClientCommand.edit, () => edit(ctx)),
    register(ClientCommand.ask, () => ask(ctx)),
    register(ClientCommand.fix, () => fix(ctx)),
    register(ClientCommand.writeTests, () => writeTests(ctx)),
    register(ClientCommand.accept, (arg) => proposalCommand(ctx, arg, (id) => ctx.proposals.accept(id))),
    register(ClientCommand.reject, (arg) => proposalCommand(ctx, arg, (id) => ctx.proposals.reject(id))),
    register(ClientCommand.acceptAndCommit, (arg) =>
      proposalCommand(ctx, arg, (id) => ctx.proposals.acceptAndCommit(id)),
    ),
    register(ClientCommand.acceptFile, (arg) =>
      hunkCommand(ctx, arg, false, (id, hunks) => ctx.proposals.acceptHunks(id, hunks)),
    ),
    register(ClientCommand.rejectFile, (arg) =>
      hunkCommand(ctx, arg, false, (id, hunks) => ctx.proposals.rejectHunks(id, hunks)),
    ),
    register(ClientCommand.acceptHunk, (arg) =>
      hunkCommand(ctx, arg, true, (id, hunks) => ctx.proposals.acceptHunks(id, hunks)),
    ),
    register(ClientCommand.rejectHunk, (arg) =>
      hunkCommand(ctx, arg, true, (id, hunks) => ctx.proposals.rejectHunks(id, hunks)),
    ),
    register(ClientCommand.runTask, () => runTask(ctx)),
    register(ClientCommand.runTeam, () => runTeam(ctx)),
    register(ClientCommand.showDiff, (arg) => proposalCommand(ctx, arg, (id) => ctx.proposals.showDiff(id))),
    register(ClientCommand.reindex, () => reindex(ctx)),
    register(ClientCommand.searchCode, () => search(ctx, false)),
    register(ClientCommand.searchFiles, () => search(ctx, true)),
    register(ClientCommand.cancel, (arg) => cancel(ctx, arg)),
    register(ClientCommand.showRuns, () => showRuns(ctx)),
    register(ClientCommand.restart, () => ctx.client.restart()),
    register(ClientCommand.showOutput, () => {
      ctx.output.show();
      return Promise.resolve();
    }),
  ];
}

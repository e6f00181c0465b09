/**
 * Entry point of the agentls VS Code extension: wires the language client, the proposal views, the
 * status bar and the palette commands together.
 *
 * The extension is thin on purpose: the agent, the index and the edits live in the server
 * (`agentls serve --stdio`); this side starts it, turns editor state into command arguments, shows what
 * comes back, and relays Accept and Reject.
 */

import * as vscode from "vscode";

import { AgentlsClient } from "./client";
import { registerCommands } from "./commands";
import { ContextKey, Request, RUN_COMMANDS, ServerCommand } from "./constants";
import { Proposals, messageOf } from "./proposals";
import {
  acceptApplied,
  parseProposal,
  parseProposalReady,
  parseRunEvent,
  parseRunFailed,
  parseRuns,
  pendingHunksOf,
  type ProposalDetails,
  proposalIdOf,
  runIdOf,
} from "./pure/protocol";
import { failureText } from "./pure/messages";
import { runEventLines, verdictLines } from "./pure/review";
import { ProposalStore, RunTracker } from "./pure/state";
import { serverLostText } from "./pure/status";
import { StatusBar } from "./status";

/** The client of the active extension, for `deactivate` (VS Code gives it no context). */
let running: AgentlsClient | undefined;

/** How often `agentls/runs` is asked for the cost of the runs going on. */
const POLL_MS = 2000;
/** JSON-RPC's "method not found": a server without `agentls/runs` is not asked again. */
const METHOD_NOT_FOUND = -32601;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("agentls");
  const team = vscode.window.createOutputChannel("agentls team");
  const runs = new RunTracker();
  const store = new ProposalStore();
  const status = new StatusBar(runs, store);
  const poller = new CostPoller(runs, status, output);

  const storeChanged = (): void => {
    void vscode.commands.executeCommand("setContext", ContextKey.hasPendingProposal, store.size > 0);
    status.refresh();
  };
  // The client is declared below; the proposals only reach it through this closure, after activation.
  const proposals = new Proposals(store, () => client.link(), storeChanged);
  const client = new AgentlsClient(output, {
    onState: (state) => {
      status.setServerState(state);
      if (state !== "running") {
        runs.clear(); // a new server process knows none of the old runs or proposals
        proposals.reset();
        status.refresh();
      }
    },
    onShowDiff: (args) => {
      const proposalId = proposalIdOf(args);
      if (proposalId !== undefined) {
        void proposals.showDiff(proposalId);
      }
    },
    onProgress: (token, event) => {
      status.onProgress(token, event);
      if (event.kind === "begin") {
        poller.kick();
      }
    },
    onProposalReady: (params) => {
      handle(output, "proposalReady", () => {
        const ready = parseProposalReady(params);
        const run = runs.finished(ready.runId);
        status.refresh();
        // The server shows a run's answer as a message; a question asked here also opens it in full.
        void proposals.onReady(ready, run?.command === ServerCommand.ask);
        if (run?.command === ServerCommand.run) {
          void showVerdict(team, ready.proposalId, () => client.link());
        }
      });
    },
    onRunFailed: (params) => {
      handle(output, "runFailed", () => {
        const failed = parseRunFailed(params);
        runs.finished(failed.runId);
        status.refresh();
        // The server shows the failure itself (window/showMessage); the log keeps it too.
        output.appendLine(`agentls: run ${failed.runId} ended: ${failed.message}`);
        if (runs.wasCancelled(failed.runId)) {
          vscode.window.setStatusBarMessage(`agentls: run ${failed.runId} cancelled`, 4000);
        }
      });
    },
    onRunEvent: (params) => {
      handle(output, "runEvent", () => {
        const event = parseRunEvent(params);
        for (const line of runEventLines(event)) {
          team.appendLine(line);
        }
      });
    },
    onCommandResult: (command, args, result, fromEditor) => {
      const runId = runIdOf(result);
      if (runId !== undefined && RUN_COMMANDS.some((c) => c === command)) {
        runs.started(runId, command, args);
        status.refresh();
        poller.kick();
      }
      const proposalId = proposalIdOf(args);
      // A partial accept (`hunks`) keeps the proposal pending: the proposal view handles what is left.
      const settled =
        command === ServerCommand.reject ||
        (command === ServerCommand.accept && acceptApplied(result) && pendingHunksOf(result) === undefined);
      if (proposalId !== undefined && settled) {
        void proposals.settled(proposalId, command === ServerCommand.accept);
      }
      // An accept a code lens or code action ran that VS Code did not apply: the answer's reason (the
      // extension's own accepts say it themselves).
      if (
        fromEditor &&
        proposalId !== undefined &&
        command === ServerCommand.accept &&
        !acceptApplied(result)
      ) {
        proposals.sayNotApplied(proposalId, result);
      }
    },
    onCommandFailed: (_command, _args, error) => {
      // A code lens or light bulb command the server refused: its reason, once, in its words.
      void vscode.window.showErrorMessage(failureText(messageOf(error)));
    },
    onServerLost: (restarting) => {
      const text = serverLostText(restarting, runs.views(), store.size);
      output.appendLine(text);
      const actions = restarting ? ["Show Output"] : ["Restart Server", "Show Output"];
      const shown = restarting
        ? vscode.window.showWarningMessage(text, ...actions)
        : vscode.window.showErrorMessage(text, ...actions);
      void shown.then((choice) => {
        if (choice === "Show Output") {
          output.show();
        } else if (choice === "Restart Server") {
          void client.restart();
        }
      });
    },
  });
  poller.attach(() => client.link());
  storeChanged();

  context.subscriptions.push(
    output,
    team,
    status,
    poller,
    proposals,
    client,
    ...registerCommands({
      client,
      proposals,
      runs,
      output,
      team,
      runsChanged: () => {
        status.refresh();
        poller.kick();
      },
    }),
  );
  running = client;
  void client.start();
}

/**
 * Stop the server and wait for it: VS Code waits for the promise deactivate returns, but not for
 * disposables, so a server stopped only by `dispose` could be cut off mid-shutdown.
 */
export async function deactivate(): Promise<void> {
  await running?.stop();
  running = undefined;
}

/** A team proposal's QA verdict, in the team output with the proposal's id. */
async function showVerdict(
  team: vscode.OutputChannel,
  proposalId: string,
  link: () => ReturnType<AgentlsClient["link"]>,
): Promise<void> {
  let details: ProposalDetails;
  try {
    details = parseProposal(await link()?.request(Request.proposal, { proposalId }));
  } catch {
    return; // the proposal view says why when the user opens it
  }
  const lines = verdictLines(details.team);
  if (lines.length > 0) {
    team.appendLine(`Proposal ${proposalId}:`);
    lines.forEach((line) => {
      team.appendLine(line);
    });
    team.show(true);
  }
}

/** Run a notification handler; a payload that does not fit is logged and shown, never thrown away silently. */
function handle(output: vscode.OutputChannel, what: string, run: () => void): void {
  try {
    run();
  } catch (error) {
    output.appendLine(`agentls: ${what}: ${messageOf(error)}`);
    void vscode.window.showErrorMessage(`agentls: ${messageOf(error)}`);
  }
}

/** Asks `agentls/runs` every few seconds while runs go on, for their cost so far. */
class CostPoller implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private unsupported = false;
  private link: (() => ReturnType<AgentlsClient["link"]>) | undefined;

  constructor(
    private readonly runs: RunTracker,
    private readonly status: StatusBar,
    private readonly output: vscode.OutputChannel,
  ) {}

  attach(link: () => ReturnType<AgentlsClient["link"]>): void {
    this.link = link;
  }

  /** Start polling unless it is going on already or there is nothing to poll for. */
  kick(): void {
    if (this.timer === undefined && !this.unsupported) {
      this.timer = setTimeout(() => void this.tick(), POLL_MS);
    }
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    const link = this.link?.();
    if (link === undefined || (this.runs.size === 0 && !this.status.hasRunProgress())) {
      return;
    }
    try {
      this.runs.merge(parseRuns(await link.request(Request.runs, {})));
      this.status.refresh();
    } catch (error) {
      if (
        typeof error === "object" &&
        error !== null &&
        (error as { code?: unknown }).code === METHOD_NOT_FOUND
      ) {
        this.unsupported = true;
        this.output.appendLine("agentls: this server has no agentls/runs; the status bar shows no cost");
        return;
      }
      this.output.appendLine(`agentls: ${Request.runs}: ${messageOf(error)}`);
    }
    this.kick();
  }

  dispose(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

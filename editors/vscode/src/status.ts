/**
 * The status bar item: indexing progress and running agents with their cost so far.
 *
 * Progress comes from the server's `$/progress` (through the client middleware, see `extension.ts`);
 * runs and their cost from `RunTracker`, which `agentls/runs` polls keep fresh while runs go on. The
 * text itself, and what a click does, are made by `pure/status.ts`.
 */

import * as vscode from "vscode";

import { ContextKey } from "./constants";
import {
  clickCommand,
  ProgressTracker,
  statusView,
  type ProgressEvent,
  type ServerState,
} from "./pure/status";
import type { ProposalStore, RunTracker } from "./pure/state";

export class StatusBar implements vscode.Disposable {
  readonly progress = new ProgressTracker();
  private readonly item: vscode.StatusBarItem;
  private server: ServerState = "starting";

  constructor(
    private readonly runs: RunTracker,
    private readonly proposals: ProposalStore,
  ) {
    this.item = vscode.window.createStatusBarItem("agentls.status", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "agentls";
    this.refresh();
    this.item.show();
  }

  setServerState(state: ServerState): void {
    this.server = state;
    if (state !== "running") {
      this.progress.clear(); // a stopped server ends no progress of its own
    }
    this.refresh();
  }

  onProgress(token: string | number, event: ProgressEvent): void {
    if (this.progress.update(token, event)) {
      this.refresh();
    }
  }

  /** Whether the server reports work that is not indexing (agent runs), for the cost poller. */
  hasRunProgress(): boolean {
    return this.progress.others().length > 0;
  }

  refresh(): void {
    const view = statusView({
      server: this.server,
      indexing: this.progress.indexing(),
      runs: this.runs.views(),
      pendingProposals: this.proposals.size,
    });
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = clickCommand({
      server: this.server,
      runs: this.runs.views(),
      pendingProposals: this.proposals.size,
    });
    void vscode.commands.executeCommand("setContext", ContextKey.hasRunningAgent, this.runs.size > 0);
  }

  dispose(): void {
    this.item.dispose();
  }
}

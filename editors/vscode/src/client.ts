/**
 * The language client: finds and starts `agentls serve --stdio`, passes the settings through, and hands
 * the server's progress, notifications and command results to the rest of the extension.
 *
 * - The executable and its arguments are the settings `agentls.server.path` and `agentls.server.args`.
 *   It is looked up before starting, so a missing server gives install instructions, not `ENOENT`.
 * - Settings: the explicit `agentls` settings (see `pure/settings.ts`) go as the answer to
 *   `workspace/configuration` (per workspace folder), which the server asks again when
 *   `workspace/didChangeConfiguration` says they changed; not in `initializationOptions`, where a
 *   setting removed later would outlive its removal.
 * - Middleware sees every `$/progress` (status bar) and every `workspace/executeCommand`, including those
 *   that code actions and code lenses run, so runs started there are tracked too.
 */

import * as fs from "node:fs";
import * as os from "node:os";

import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  type CloseHandlerResult,
  type ErrorHandler,
  type LanguageClientOptions,
  type ServerOptions,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from "vscode-languageclient/node";

import { LANGUAGES, Notification, ServerCommand, SETTINGS_SECTION } from "./constants";
import type { CommandCall, Range } from "./pure/args";
import { findExecutable, notFoundMessage } from "./pure/launch";
import { explicitSettings, initializationOptions, toServerSettings, type JsonObject } from "./pure/settings";
import type { ProgressEvent, ServerState } from "./pure/status";
import { messageOf, type ServerLink } from "./proposals";

/** What the client reports to the rest of the extension. */
export interface ClientHooks {
  onState(state: ServerState): void;
  onProgress(token: string | number, event: ProgressEvent): void;
  /** The server's "Show diff" code lens was clicked (`agentls.showDiff` with its arguments). */
  onShowDiff(args: readonly unknown[]): void;
  onProposalReady(params: unknown): void;
  onRunFailed(params: unknown): void;
  /** `agentls/runEvent`: a team run's handoff, todo list or role change. */
  onRunEvent(params: unknown): void;
  /**
   * A server command answered: ours (`fromEditor` false), or one a code action or code lens ran (true;
   * ours say what they need of the answer themselves).
   */
  onCommandResult(command: string, args: readonly unknown[], result: unknown, fromEditor: boolean): void;
  /** A server command that a code action or code lens ran failed (ours say so themselves). */
  onCommandFailed(command: string, args: readonly unknown[], error: unknown): void;
  /**
   * The server process ended without being asked to (a crash, or killed); `restarting` when
   * vscode-languageclient starts it again. Called before the state changes, so what it lost is still known.
   */
  onServerLost(restarting: boolean): void;
}

export interface FullLink extends ServerLink {
  /** VS Code diagnostics in the LSP form the server reads. */
  toProtocolDiagnostics(diagnostics: vscode.Diagnostic[]): Promise<readonly { range: Range }[]>;
}

/** Settings whose change needs a restart of the server process. */
const RESTART_SETTINGS = ["agentls.server.path", "agentls.server.args"];

export class AgentlsClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly hooks: ClientHooks,
  ) {
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((e) => void this.onConfigChange(e)));
  }

  /** Start the server; shows what went wrong (and what to do) when it cannot. */
  async start(): Promise<void> {
    this.hooks.onState("starting");
    const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
    const command = config.get<string>("server.path", "agentls");
    const args = config.get<string[]>("server.args", ["serve", "--stdio"]);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const lookup = findExecutable(command, {
      path: process.env.PATH ?? "",
      pathExt: process.env.PATHEXT ?? ".EXE;.CMD;.BAT;.COM",
      platform: process.platform,
      home: os.homedir(),
      workspaceFolder: folder,
      isExecutable,
    });
    if (!lookup.found) {
      this.hooks.onState("failed");
      this.output.appendLine(
        `${notFoundMessage(command)}\nLooked in: ${lookup.searched.join(", ") || "(PATH is empty)"}`,
      );
      void this.offerSettings(notFoundMessage(command));
      return;
    }
    const serverOptions: ServerOptions = {
      // No `transport`: with TransportKind.stdio the client would append a second `--stdio` to the
      // user's arguments; without it, it speaks stdio all the same.
      command: lookup.path,
      args,
      options: folder === undefined ? {} : { cwd: folder },
    };
    let fallback: ErrorHandler | undefined;
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
      outputChannel: this.output,
      // vscode-languageclient restarts a crashed server only writing it in the output: the user would not
      // know that the runs going on and the proposals waiting went with it. The restart policy stays its
      // own; the hook says what happened and what was lost (in place of its message when it gives up).
      errorHandler: {
        error: (error, message, count) =>
          (fallback ??= client.createDefaultErrorHandler()).error(error, message, count),
        closed: async (): Promise<CloseHandlerResult> => {
          const decided = await (fallback ??= client.createDefaultErrorHandler()).closed();
          const restarting = decided.action === CloseAction.Restart;
          if (this.client === client) {
            this.hooks.onServerLost(restarting);
          }
          if (decided.message !== undefined) {
            this.output.appendLine(`agentls: ${decided.message}`);
          }
          return { ...decided, handled: true };
        },
      },
      // `agentlsClient`: this extension handles agentls/proposalReady, so the server asks no questions.
      // The settings go by workspace/configuration alone (see `initializationOptions`).
      initializationOptions,
      middleware: {
        handleWorkDoneProgress: (token, params, next) => {
          this.hooks.onProgress(token, progressEvent(params));
          next(token, params);
        },
        executeCommand: async (command, commandArgs) => {
          if (command === ServerCommand.showDiff) {
            // The server would write the patch to a file and open that; VS Code can do better.
            this.hooks.onShowDiff(commandArgs);
            return undefined;
          }
          // Sent here rather than through the middleware's `next`: on an error answer that shows only
          // "Request workspace/executeCommand failed." and leaves the server's reason in the output.
          let result: unknown;
          try {
            result = await client.sendRequest(ExecuteCommandRequest.type, {
              command,
              arguments: commandArgs,
            });
          } catch (error) {
            this.output.appendLine(`agentls: ${command} failed: ${messageOf(error)}`);
            this.hooks.onCommandFailed(command, commandArgs, error);
            return undefined;
          }
          this.hooks.onCommandResult(command, commandArgs, result, true);
          return result;
        },
        workspace: {
          configuration: async (params, token, next) => {
            const answers: unknown = await next(params, token);
            if (!Array.isArray(answers)) {
              return answers as ReturnType<typeof next>;
            }
            return params.items.map((item, i): unknown =>
              item.section === SETTINGS_SECTION
                ? serverSettings(item.scopeUri === undefined ? undefined : vscode.Uri.parse(item.scopeUri))
                : answers[i],
            );
          },
        },
      },
    };
    const client = new LanguageClient("agentls", "agentls", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (this.client === client) {
        this.hooks.onState(
          e.newState === State.Running ? "running" : e.newState === State.Starting ? "starting" : "failed",
        );
      }
    });
    client.onNotification(Notification.proposalReady, (params: unknown) => {
      this.hooks.onProposalReady(params);
    });
    client.onNotification(Notification.runFailed, (params: unknown) => {
      this.hooks.onRunFailed(params);
    });
    client.onNotification(Notification.runEvent, (params: unknown) => {
      this.hooks.onRunEvent(params);
    });
    try {
      await client.start();
    } catch (error) {
      this.hooks.onState("failed");
      const message = error instanceof Error ? error.message : String(error);
      this.output.appendLine(`agentls: the server failed to start: ${message}`);
      const choice = await vscode.window.showErrorMessage(
        `agentls: the server \`${lookup.path} ${args.join(" ")}\` failed to start (${message}). ` +
          "The agentls output has its log; check that `agentls serve --stdio` runs in a terminal.",
        "Show Output",
        "Open Settings",
      );
      if (choice === "Show Output") {
        this.output.show();
      } else if (choice === "Open Settings") {
        await openSettings();
      }
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      try {
        await client.dispose(); // shutdown and exit, then kills the process if it lingers
      } catch (error) {
        this.output.appendLine(`agentls: stopping the server: ${messageOf(error)}`);
      }
    }
    this.hooks.onState("stopped");
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Whether the server process is starting (not yet answering). */
  starting(): boolean {
    return this.client?.state === State.Starting;
  }

  /**
   * The running server once it is up: at once when it runs, after its start (or failure, or `ms`) while
   * it starts; undefined when it is not running then.
   */
  whenRunning(ms: number): Promise<FullLink | undefined> {
    const client = this.client;
    if (client?.state !== State.Starting) {
      return Promise.resolve(this.link());
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        listener.dispose();
        resolve(this.link());
      };
      const listener = client.onDidChangeState((e) => {
        if (e.newState !== State.Starting) {
          done();
        }
      });
      const timer = setTimeout(done, ms);
    });
  }

  /** The running server, or undefined. */
  link(): FullLink | undefined {
    const client = this.client;
    if (client?.state !== State.Running) {
      return undefined;
    }
    return {
      execute: async (call: CommandCall): Promise<unknown> => {
        const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
          command: call.command,
          arguments: call.arguments,
        });
        this.hooks.onCommandResult(call.command, call.arguments, result, false);
        return result;
      },
      request: (method: string, params: object): Promise<unknown> => client.sendRequest(method, params),
      toProtocolDiagnostics: (diagnostics) => client.code2ProtocolConverter.asDiagnostics(diagnostics),
    };
  }

  private async offerSettings(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
    if (choice === "Open Settings") {
      await openSettings();
    } else if (choice === "Show Output") {
      this.output.show();
    }
  }

  private async onConfigChange(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration(SETTINGS_SECTION)) {
      return;
    }
    if (RESTART_SETTINGS.some((key) => event.affectsConfiguration(key))) {
      const choice = await vscode.window.showInformationMessage(
        "agentls: the server executable or its arguments changed. Restart the server to use them?",
        "Restart",
      );
      if (choice === "Restart") {
        await this.restart();
      }
      return;
    }
    const client = this.client;
    if (client?.state === State.Running) {
      // The server re-reads every folder's settings with workspace/configuration when told.
      await client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [SETTINGS_SECTION]: serverSettings(undefined) },
      });
    }
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}

/** The explicit `agentls` settings of a scope (a folder URI, or none for the window) in the server's form. */
export function serverSettings(scope: vscode.Uri | undefined): JsonObject {
  const inspected = vscode.workspace.getConfiguration(undefined, scope).inspect<unknown>(SETTINGS_SECTION);
  return toServerSettings(
    explicitSettings([inspected?.globalValue, inspected?.workspaceValue, inspected?.workspaceFolderValue]),
  );
}

function progressEvent(
  params: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd,
): ProgressEvent {
  switch (params.kind) {
    case "begin":
      return { kind: "begin", title: params.title, message: params.message, percentage: params.percentage };
    case "report":
      return { kind: "report", message: params.message, percentage: params.percentage };
    case "end":
      return { kind: "end", message: params.message };
  }
}

function isExecutable(path: string): boolean {
  try {
    if (!fs.statSync(path).isFile()) {
      return false;
    }
    if (process.platform !== "win32") {
      fs.accessSync(path, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

async function openSettings(): Promise<void> {
  await vscode.commands.executeCommand("workbench.action.openSettings", "agentls.server");
}

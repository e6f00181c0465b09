/**
 * A real `agentls serve --stdio` for the tests, driven over JSON-RPC by vscode-languageserver-protocol
 * (the library under vscode-languageclient) and answering the server's requests the way the extension
 * and VS Code do: `initializationOptions` and `workspace/configuration` with `pure/settings.ts`,
 * `$/progress` into a `ProgressTracker`, `workspace/applyEdit` recorded and accepted, questions left
 * unanswered.
 */

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

import {
  ApplyWorkspaceEditRequest,
  ConfigurationRequest,
  createProtocolConnection,
  DidChangeConfigurationNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  RegistrationRequest,
  ShowMessageNotification,
  ShowMessageRequest,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
  type ProtocolConnection,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
  type WorkspaceEdit,
} from "vscode-languageserver-protocol/node";

import {
  explicitSettings,
  initializationOptions,
  toServerSettings,
  type JsonObject,
} from "../src/pure/settings";
import { ProgressTracker } from "../src/pure/status";
import { REPO_ROOT } from "./helpers";

export function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${String(ms)} ms waiting for ${what()}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/** Resolves once `predicate` holds (checked every 50 ms), or fails after `ms`. */
export function eventually(predicate: () => boolean, ms: number, what: () => string): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (predicate()) {
          resolve();
        } else {
          setTimeout(check, 50);
        }
      };
      check();
    }),
    ms,
    what,
  );
}

export interface ServerOptions {
  /** The workspace folder (the server's root). */
  readonly workspace: string;
  /** Settings as VS Code holds them (camelCase, the extension's own keys included). */
  readonly userSettings: JsonObject;
  /** Folder-scope settings, answered for `workspace/configuration` items with a scope. */
  readonly folderSettings?: JsonObject;
  /** ANTHROPIC_BASE_URL; the default is an address nobody serves, so nothing leaves the machine. */
  readonly anthropicUrl?: string;
}

type ProgressValue = WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;

export class ServerUnderTest {
  readonly connection: ProtocolConnection;
  readonly progress = new ProgressTracker();
  readonly titles: string[] = [];
  readonly messages: string[] = [];
  readonly edits: WorkspaceEdit[] = [];
  /** Every notification by method, in order of arrival. */
  readonly notifications = new Map<string, unknown[]>();
  stderr = "";
  /** The user's settings now (`changeSettings`). */
  private userSettings: JsonObject;
  private readonly process: ChildProcessWithoutNullStreams;
  private readonly cache: string;
  private readonly waiters: {
    method: string;
    test: (p: unknown) => boolean;
    resolve: (p: unknown) => void;
  }[] = [];

  constructor(private readonly options: ServerOptions) {
    this.userSettings = options.userSettings;
    this.cache = mkdtempSync(path.join(tmpdir(), "agentls-vscode-cache-"));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AGENTLS_CACHE_DIR: this.cache,
      HF_HUB_OFFLINE: "1",
      ANTHROPIC_API_KEY: "test-key-not-used",
      ANTHROPIC_BASE_URL: options.anthropicUrl ?? "http://127.0.0.1:9",
      PYTHONPATH: REPO_ROOT ?? "",
    };
    this.process = spawn(process.env.AGENTLS_PYTHON ?? "python3", ["-m", "server.cli", "serve", "--stdio"], {
      cwd: options.workspace,
      env,
    });
    this.process.stderr.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.connection = createProtocolConnection(
      new StreamMessageReader(this.process.stdout),
      new StreamMessageWriter(this.process.stdin),
    );
    this.wire();
  }

  private wire(): void {
    const c = this.connection;
    const { folderSettings } = this.options;
    c.onRequest(ConfigurationRequest.type, (params) =>
      params.items.map((item) =>
        // As client.ts does: the explicit settings of the scope, in the server's names.
        item.section === "agentls"
          ? toServerSettings(
              explicitSettings([this.userSettings, item.scopeUri === undefined ? undefined : folderSettings]),
            )
          : null,
      ),
    );
    c.onRequest(WorkDoneProgressCreateRequest.type, () => null);
    c.onRequest(RegistrationRequest.type, () => undefined);
    c.onRequest(ShowMessageRequest.type, () => null);
    c.onRequest("workspace/codeLens/refresh", () => null);
    c.onRequest(ApplyWorkspaceEditRequest.type, (params) => {
      this.edits.push(params.edit);
      return { applied: true };
    });
    c.onNotification(ShowMessageNotification.type, (params) => {
      this.messages.push(params.message);
    });
    c.onNotification("window/logMessage", () => undefined);
    c.onNotification("$/progress", (params: { token: string | number; value: ProgressValue }) => {
      const value = params.value;
      if (value.kind === "begin") {
        this.titles.push(value.title);
      }
      this.progress.update(params.token, value.kind === "begin" ? { ...value, kind: "begin" } : value);
      this.record("$/progress", params);
    });
    c.onUnhandledNotification((message) => {
      this.record(message.method, message.params);
    });
    c.listen();
  }

  private record(method: string, params: unknown): void {
    const list = this.notifications.get(method) ?? [];
    list.push(params);
    this.notifications.set(method, list);
    for (const waiter of [...this.waiters]) {
      if (waiter.method === method && waiter.test(params)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(params);
      }
    }
  }

  /** The first notification of `method` (already received or to come) that passes `test`. */
  next(method: string, test: (params: unknown) => boolean, ms: number): Promise<unknown> {
    const seen = (this.notifications.get(method) ?? []).find(test);
    if (seen !== undefined) {
      return Promise.resolve(seen);
    }
    const arrived = new Promise<unknown>((resolve) => {
      this.waiters.push({ method, test, resolve });
    });
    return withTimeout(arrived, ms, () => `${method} (stderr: ${this.stderr.slice(-3000)})`);
  }

  async initialize(): Promise<void> {
    const folder = pathToFileURL(this.options.workspace).toString();
    await withTimeout(
      this.connection.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- InitializeParams requires it; VS Code sends it
        rootUri: folder,
        workspaceFolders: [{ uri: folder, name: "ws" }],
        initializationOptions: initializationOptions(),
        capabilities: {
          workspace: {
            configuration: true,
            workspaceFolders: true,
            applyEdit: true,
            workspaceEdit: {
              documentChanges: true,
              resourceOperations: ["create", "rename", "delete"],
              changeAnnotationSupport: { groupsOnLabel: true },
            },
            codeLens: { refreshSupport: true },
          },
          window: {
            workDoneProgress: true,
            showMessage: { messageActionItem: { additionalPropertiesSupport: true } },
          },
          textDocument: {
            codeAction: {
              codeActionLiteralSupport: { codeActionKind: { valueSet: ["quickfix", "refactor"] } },
            },
          },
        },
      }),
      30_000,
      () => `initialize (stderr: ${this.stderr.slice(-3000)})`,
    );
    await this.connection.sendNotification(InitializedNotification.type, {});
  }

  /** The user changed their settings: as client.ts tells the server (which asks for them again). */
  async changeSettings(userSettings: JsonObject): Promise<void> {
    this.userSettings = userSettings;
    await this.connection.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { agentls: toServerSettings(explicitSettings([userSettings])) },
    });
  }

  async stop(): Promise<void> {
    const child = this.process;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve();
      } else {
        child.once("exit", () => {
          resolve();
        });
      }
    });
    try {
      await withTimeout(this.connection.sendRequest(ShutdownRequest.type), 10_000, () => "shutdown");
      await this.connection.sendNotification(ExitNotification.type);
      await withTimeout(exited, 10_000, () => "the server to exit after `exit`");
    } finally {
      this.connection.dispose();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill();
      }
      // Our ends of the pipes: left open, they keep the test process alive.
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      rmSync(this.cache, { recursive: true, force: true });
    }
  }
}

/** A scripted fake of the Anthropic API (tests/fakes/anthropic_server.py) in a Python process. */
export class FakeAnthropic {
  private readonly process: ChildProcessWithoutNullStreams;
  readonly url: Promise<string>;

  /** `script` is Python that calls `fake.enqueue(...)`; `text`, `tool_use` and `turn` are in scope. */
  constructor(script: string) {
    const code = [
      "import sys",
      "from tests.fakes.anthropic_server import FakeAnthropic, text, tool_use, turn",
      "with FakeAnthropic() as fake:",
      ...script.split("\n").map((line) => `    ${line}`),
      "    print(fake.url, flush=True)",
      "    sys.stdin.read()  # serve until the test closes stdin",
    ].join("\n");
    this.process = spawn(process.env.AGENTLS_PYTHON ?? "python3", ["-c", code], {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONPATH: REPO_ROOT ?? "" },
    });
    let stderr = "";
    this.process.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    this.url = withTimeout(
      new Promise<string>((resolve, reject) => {
        let out = "";
        this.process.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const line = out.split("\n")[0];
          if (out.includes("\n") && line !== undefined) {
            resolve(line.trim());
          }
        });
        this.process.once("exit", (code) => {
          reject(new Error(`the fake Anthropic server exited (${String(code)}): ${stderr}`));
        });
      }),
      20_000,
      () => `the fake Anthropic server to start (${stderr})`,
    );
  }

  stop(): void {
    this.process.stdin.end();
    this.process.stdout.destroy();
    this.process.stderr.destroy();
    if (this.process.exitCode === null) {
      this.process.kill();
    }
  }
}

/** A temporary workspace folder, removed by `remove`. */
export function tempWorkspace(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), "agentls-vscode-ws-"));
  return {
    dir,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

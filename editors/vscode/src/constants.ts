/**
 * Every name the extension shares with the agentls server, and the extension's own ids, in one place.
 *
 * The server's names mirror `server/features/commands.py`, `server/features/code_actions.py` and
 * `server/lsp.py` (the server's contract with every editor); `test/mirror.test.ts` reads those files and
 * fails when the two drift apart. This module imports nothing, so the unit tests can load it without VS Code.
 */

/** Commands the server executes (`workspace/executeCommand`); each takes one object argument. */
export const ServerCommand = {
  implement: "agentls.implement",
  fix: "agentls.fix",
  writeTests: "agentls.writeTests",
  edit: "agentls.edit",
  ask: "agentls.ask",
  /** Start any run (`{instruction, mode?: "solo" | "team" | graph, uri?, range?}`). */
  run: "agentls.run",
  accept: "agentls.accept",
  /** Accept, then commit the change on the current branch (`{proposalId, message?, hunks?}`). */
  acceptAndCommit: "agentls.acceptAndCommit",
  reject: "agentls.reject",
  /** Re-verify what is left of a partly accepted proposal (`{proposalId}`). */
  reverify: "agentls.reverify",
  /** Continue a stopped run from its saved state (`{runId}`). */
  resume: "agentls.resume",
  cancel: "agentls.cancel",
  reindex: "agentls.reindex",
  /**
   * Not one of the agent actions: what the server's "Show diff" code lens runs (`{proposalId, uri?}`). The
   * server would open the patch as a file; the extension intercepts it and opens its side-by-side diff.
   */
  showDiff: "agentls.showDiff",
} as const;
export type ServerCommandId = (typeof ServerCommand)[keyof typeof ServerCommand];

/** Server commands that start an agent run and answer `{runId}` at once. */
export const RUN_COMMANDS: readonly ServerCommandId[] = [
  ServerCommand.implement,
  ServerCommand.fix,
  ServerCommand.writeTests,
  ServerCommand.edit,
  ServerCommand.ask,
  ServerCommand.run,
];

/** Code action kinds the server offers (listing them never starts a run). */
export const CodeActionKind = {
  implement: "refactor.rewrite.agentls.implement",
  fix: "quickfix.agentls.fix",
  tests: "refactor.agentls.tests",
} as const;

/** Requests the client sends to the server. */
export const Request = {
  search: "agentls/search",
  proposal: "agentls/proposal",
  runs: "agentls/runs",
  serverStats: "agentls/serverStats",
} as const;

/** Notifications the server sends to the client. */
export const Notification = {
  proposalReady: "agentls/proposalReady",
  runFailed: "agentls/runFailed",
  /** A team run's handoff, todo list or role change (`{runId, kind, role?, ..., items?, state?}`). */
  runEvent: "agentls/runEvent",
} as const;

/**
 * The extension's own VS Code commands (palette, menus, keys).
 *
 * They must differ from the server's command ids: vscode-languageclient registers a VS Code command for
 * each command the server announces (so that code actions and code lenses can run them), and a second
 * registration of the same id fails.
 */
export const ClientCommand = {
  implement: "agentls.implementFunction",
  edit: "agentls.editSelection",
  ask: "agentls.askQuestion",
  fix: "agentls.fixProblems",
  writeTests: "agentls.writeTestsForFunction",
  accept: "agentls.acceptProposal",
  acceptAndCommit: "agentls.acceptAndCommitProposal",
  reject: "agentls.rejectProposal",
  acceptFile: "agentls.acceptFile",
  rejectFile: "agentls.rejectFile",
  acceptHunk: "agentls.acceptHunkAtCursor",
  rejectHunk: "agentls.rejectHunkAtCursor",
  runTask: "agentls.runTask",
  runTeam: "agentls.runTeam",
  showDiff: "agentls.showProposalDiff",
  reindex: "agentls.reindexWorkspace",
  searchCode: "agentls.searchCode",
  searchFiles: "agentls.searchFiles",
  cancel: "agentls.cancelRun",
  /** The runs going on, to keep or cancel (what a click on the status bar opens while runs go on). */
  showRuns: "agentls.showRuns",
  restart: "agentls.restartServer",
  showOutput: "agentls.showOutput",
} as const;
export type ClientCommandId = (typeof ClientCommand)[keyof typeof ClientCommand];

/** The settings section the server reads (`initializationOptions`, `workspace/configuration`). */
export const SETTINGS_SECTION = "agentls";

/** Settings that only the extension reads; they are never sent to the server (it rejects unknown keys). */
export const CLIENT_ONLY_SETTINGS: readonly string[] = ["server.path", "server.args", "trace"];

/** The scheme of the read-only documents that hold the two sides of a proposal's diff. */
export const PROPOSAL_SCHEME = "agentls-proposal";

/** Context keys used in `when` clauses of package.json. */
export const ContextKey = {
  /** True while at least one proposal waits for Accept or Reject. */
  hasPendingProposal: "agentls.hasPendingProposal",
  /** True while the active editor shows one side of a proposal's diff. */
  proposalDiffActive: "agentls.proposalDiffActive",
  /** True while at least one agent run is going. */
  hasRunningAgent: "agentls.hasRunningAgent",
} as const;

/** The languages the server indexes with tree-sitter chunk queries; the client attaches to these. */
export const LANGUAGES: readonly string[] = [
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "rust",
  "java",
  "c",
  "cpp",
  "csharp",
  "ruby",
  "php",
];

/**
 * Shared by the unit tests: where the extension and the agentls repository are, and a way to ask the
 * server's own Python code for facts (its settings defaults, its diffs) so the tests compare against the
 * real thing rather than a copy.
 */

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

/** editors/vscode (the tests run from out/tsc/test). */
export const EXTENSION_ROOT = path.resolve(__dirname, "..", "..", "..");

/** The agentls repository the extension lives in, or undefined when it is built on its own. */
export const REPO_ROOT: string | undefined = (() => {
  const root = path.resolve(EXTENSION_ROOT, "..", "..");
  return existsSync(path.join(root, "server", "features", "commands.py")) ? root : undefined;
})();

/** Why a test that needs the server's source is skipped (only outside the agentls repository). */
export const NO_REPO =
  REPO_ROOT === undefined ? "the agentls repository is not around editors/vscode" : false;

export function readRepoFile(relative: string): string {
  if (REPO_ROOT === undefined) {
    throw new Error("no agentls repository");
  }
  return readFileSync(path.join(REPO_ROOT, relative), "utf8");
}

/** Run Python code in the repository root (`$AGENTLS_PYTHON`, else python3) and return its stdout. */
export function runPython(code: string, input = ""): string {
  if (REPO_ROOT === undefined) {
    throw new Error("no agentls repository");
  }
  return execFileSync(process.env.AGENTLS_PYTHON ?? "python3", ["-c", code], {
    cwd: REPO_ROOT,
    input,
    encoding: "utf8",
    env: { ...process.env, PYTHONPATH: REPO_ROOT },
    maxBuffer: 64 * 1024 * 1024,
  });
}

export interface Manifest {
  main: string;
  engines: { vscode: string };
  activationEvents: string[];
  devDependencies: Record<string, string>;
  contributes: {
    commands: { command: string; title: string }[];
    menus: Record<string, { command?: string; submenu?: string; group?: string; when?: string }[]>;
    submenus: { id: string }[];
    keybindings: { command: string; key: string }[];
    configuration: { properties: Record<string, { default?: unknown; type: unknown; enum?: unknown[] }> };
  };
}

export function manifest(): Manifest {
  return JSON.parse(readFileSync(path.join(EXTENSION_ROOT, "package.json"), "utf8")) as Manifest;
}

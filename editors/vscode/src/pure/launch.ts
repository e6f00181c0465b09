/**
 * Finding the server executable before starting it, and saying what to do when it is not there.
 *
 * Spawning a missing program fails with a bare `ENOENT` deep in vscode-languageclient; looking the
 * command up first lets the extension tell the user how to install agentls or where to point
 * `agentls.server.path`. File-system access comes in as a function so the lookup is testable.
 */

export interface LookupEnv {
  /** The PATH variable. */
  readonly path: string;
  /** PATHEXT on Windows (".EXE;.CMD;..."); unused elsewhere. */
  readonly pathExt: string;
  readonly platform: string;
  readonly home: string;
  /** The first workspace folder's path, for `${workspaceFolder}`; undefined without a folder. */
  readonly workspaceFolder: string | undefined;
  /** Whether a path is an executable file. */
  readonly isExecutable: (path: string) => boolean;
}

export type Lookup =
  | { readonly found: true; readonly path: string }
  | { readonly found: false; readonly command: string; readonly searched: readonly string[] };

/** `~`, `${userHome}` and `${workspaceFolder}` expanded, as VS Code users write them in settings. */
export function expandVariables(command: string, env: LookupEnv): string {
  let out = command.trim();
  if (out === "~" || out.startsWith("~/") || out.startsWith("~\\")) {
    out = env.home + out.slice(1);
  }
  out = out.replace(/\$\{userHome\}/g, env.home);
  if (env.workspaceFolder !== undefined) {
    out = out.replace(/\$\{workspaceFolder\}/g, env.workspaceFolder);
  }
  return out;
}

function join(dir: string, name: string, windows: boolean): string {
  const sep = windows ? "\\" : "/";
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + name : dir + sep + name;
}

function isAbsolute(path: string, windows: boolean): boolean {
  return path.startsWith("/") || (windows && (/^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\")));
}

/**
 * Where `command` is: itself when it is a path (relative paths count from the workspace folder), else the
 * first match on PATH (with PATHEXT's extensions on Windows).
 */
export function findExecutable(command: string, env: LookupEnv): Lookup {
  const windows = env.platform === "win32";
  const expanded = expandVariables(command, env);
  const extensions = windows ? ["", ...env.pathExt.split(";").filter((e) => e !== "")] : [""];
  const hasSeparator = expanded.includes("/") || (windows && expanded.includes("\\"));
  let candidates: string[];
  if (hasSeparator) {
    const base =
      isAbsolute(expanded, windows) || env.workspaceFolder === undefined
        ? expanded
        : join(env.workspaceFolder, expanded, windows);
    candidates = extensions.map((ext) => base + ext);
  } else {
    const dirs = env.path.split(windows ? ";" : ":").filter((d) => d !== "");
    candidates = dirs.flatMap((dir) => extensions.map((ext) => join(dir, expanded + ext, windows)));
  }
  for (const candidate of candidates) {
    if (env.isExecutable(candidate)) {
      return { found: true, path: candidate };
    }
  }
  return { found: false, command: expanded, searched: candidates };
}

/** The message shown when the server is not found: what happened and the two ways out. */
export function notFoundMessage(command: string): string {
  return (
    `agentls: the language server \`${command}\` was not found. Install it with ` +
    "`pip install agentls` (or `pipx install agentls`), or set `agentls.server.path` to the `agentls` " +
    "executable, e.g. the one in your virtual environment (`.venv/bin/agentls`)."
  );
}

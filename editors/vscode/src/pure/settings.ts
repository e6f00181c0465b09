/**
 * The `agentls` settings as the server wants them: only what the user set, in the server's own names.
 *
 * - Only explicit values are sent (user, workspace and folder scopes, later ones winning). Sending VS
 *   Code's defaults would override the workspace's `agentls.toml`, which the server ranks below the
 *   editor's settings.
 * - Keys are turned from VS Code's camelCase (`maxFileBytes`) into the server's snake_case
 *   (`max_file_bytes`); keys already in snake_case pass unchanged, so settings copied from
 *   `agentls.toml` work too.
 * - Settings only the extension reads (`server.path`, `server.args`, `trace`) are left out: the server
 *   rejects keys it does not know (with a warning each).
 * - They reach the server through `workspace/configuration` only, never in `initializationOptions`
 *   (`initializationOptions`).
 */

import { CLIENT_ONLY_SETTINGS } from "../constants";

export type JsonObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `maxFileBytes` -> `max_file_bytes`; `baseURL` -> `base_url`; `max_steps` stays. */
export function camelToSnake(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase();
}

/** Deep merge, `over` winning; arrays and other values are replaced whole. Inputs are not changed. */
export function deepMerge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const existing = out[key];
    out[key] = isPlainObject(value) && isPlainObject(existing) ? deepMerge(existing, value) : clone(value);
  }
  return out;
}

function clone(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(clone);
  }
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clone(v)]));
  }
  return value;
}

/**
 * The explicit settings of a section from VS Code's `inspect()` scopes, least specific first
 * (global, workspace, workspace folder). Scopes that are not objects (unset) are skipped.
 */
export function explicitSettings(scopes: readonly unknown[]): JsonObject {
  return scopes.reduce<JsonObject>((acc, scope) => (isPlainObject(scope) ? deepMerge(acc, scope) : acc), {});
}

/**
 * Nested objects from dotted keys: VS Code normally nests `"agentls.index.uri"` itself, but a value set
 * programmatically or through an older API may arrive as `{"index.uri": ...}`.
 */
function nestDotted(obj: JsonObject): JsonObject {
  let out: JsonObject = {};
  for (const [key, value] of Object.entries(obj)) {
    const inner = isPlainObject(value) ? nestDotted(value) : clone(value);
    const parts = key.split(".").filter((p) => p !== "");
    const nested = parts.reduceRight<unknown>((acc, part) => ({ [part]: acc }), inner);
    out = isPlainObject(nested) ? deepMerge(out, nested) : out;
  }
  return out;
}

function without(obj: JsonObject, dotted: string): JsonObject {
  const [head, ...rest] = dotted.split(".");
  if (head === undefined || !(head in obj)) {
    return obj;
  }
  const others = Object.entries(obj).filter(([key]) => key !== head);
  const child = obj[head];
  if (rest.length === 0) {
    return Object.fromEntries(others);
  }
  if (!isPlainObject(child)) {
    return obj;
  }
  const trimmed = without(child, rest.join("."));
  // A section left empty goes too: `{"server": {}}` would say nothing but still be sent.
  return Object.keys(trimmed).length === 0
    ? Object.fromEntries(others)
    : { ...Object.fromEntries(others), [head]: trimmed };
}

function snakeKeys(obj: JsonObject): JsonObject {
  return Object.fromEntries(
    Object.entries(obj).map(([k, v]) => [camelToSnake(k), isPlainObject(v) ? snakeKeys(v) : clone(v)]),
  );
}

/** The server's view of an `agentls` settings object (see the module docstring). */
export function toServerSettings(section: unknown): JsonObject {
  if (!isPlainObject(section)) {
    return {};
  }
  let nested = nestDotted(section);
  for (const key of CLIENT_ONLY_SETTINGS) {
    nested = without(nested, key);
  }
  return snakeKeys(nested);
}

/**
 * The `initializationOptions` of the extension: that it handles agentls' notifications, and no settings.
 * The server keeps `initializationOptions` as a layer of its own under the answers to
 * `workspace/configuration`, for as long as it runs: a setting sent there and later removed in VS Code
 * (reset to its default, to let `agentls.toml` decide) would stay in force until a restart. VS Code
 * answers `workspace/configuration`, which the server asks before it indexes or runs anything.
 */
export function initializationOptions(): JsonObject {
  return { agentlsClient: true };
}

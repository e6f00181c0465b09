/**
 * `agentls/search` for the palette's search commands: the request's parameters, and its hits as Quick
 * Pick items (what each line shows, and where choosing it goes).
 */

import type { Range } from "./args";

/** Hits asked of the server per search: what a Quick Pick list shows without scrolling much. */
export const SEARCH_LIMIT = 30;

export interface SearchParams {
  readonly query: string;
  readonly limit: number;
  /** Each file once, at its best chunk. */
  readonly files: boolean;
}

/** One hit of `agentls/search` (the fields the commands use). */
export interface SearchHit {
  readonly path: string;
  readonly uri: string;
  readonly range: Range;
  readonly symbol?: string | null;
  readonly kind?: string | null;
  readonly text?: string | null;
}

export interface SearchItem {
  /** The symbol (or the chunk's first line when it has none). */
  readonly label: string;
  /** `path:line`, and the kind of chunk. */
  readonly description: string;
  /** The chunk's first non-blank line of code. */
  readonly detail: string;
  readonly uri: string;
  readonly line: number;
}

export function searchParams(query: string, files: boolean): SearchParams {
  return { query: query.trim(), limit: SEARCH_LIMIT, files };
}

function firstLine(text: string | null | undefined): string {
  const line = (text ?? "").split("\n").find((l) => l.trim() !== "") ?? "";
  return line.trim().slice(0, 200);
}

function isHit(value: unknown): value is SearchHit {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const { uri, path, range } = value as { uri?: unknown; path?: unknown; range?: unknown };
  const start =
    typeof range === "object" && range !== null ? (range as { start?: unknown }).start : undefined;
  const line = typeof start === "object" && start !== null ? (start as { line?: unknown }).line : undefined;
  return typeof uri === "string" && typeof path === "string" && typeof line === "number";
}

/** The Quick Pick items of a search's hits, in the server's order; answers that are not hits are left out. */
export function searchItems(hits: unknown): SearchItem[] {
  if (!Array.isArray(hits)) {
    return [];
  }
  const items: SearchItem[] = [];
  for (const hit of (hits as unknown[]).filter(isHit)) {
    const line = hit.range.start.line;
    const code = firstLine(hit.text);
    const symbol = typeof hit.symbol === "string" && hit.symbol !== "" ? hit.symbol : undefined;
    const kind = typeof hit.kind === "string" && hit.kind !== "" ? `  ${hit.kind}` : "";
    items.push({
      label: symbol ?? (code || hit.path),
      description: `${hit.path}:${String(line + 1)}${kind}`,
      detail: code,
      uri: hit.uri,
      line,
    });
  }
  return items;
}

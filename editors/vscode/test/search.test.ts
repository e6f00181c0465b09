import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { SEARCH_LIMIT, searchItems, searchParams } from "../src/pure/search";

const hit = (path: string, line: number, symbol: string | null, text: string) => ({
  path,
  uri: `file:///w/${path}`,
  range: { start: { line, character: 0 }, end: { line: line + 3, character: 0 } },
  symbol,
  kind: symbol === null ? "module" : "function",
  score: 1,
  text,
});

describe("search", () => {
  it("asks for the trimmed query, a screenful of hits and, for files, each file once", () => {
    assert.deepEqual(searchParams("  parse a price ", false), {
      query: "parse a price",
      limit: SEARCH_LIMIT,
      files: false,
    });
    assert.equal(searchParams("routes", true).files, true);
  });

  it("shows the symbol, where it is, and its first line of code; choosing it goes to its first line", () => {
    const items = searchItems([
      hit("shop/pricing.py", 26, "apply_discount", "\n    def apply_discount(price, percent):\n        ..."),
      hit("shop/__init__.py", 0, null, "from .cart import Cart\n"),
    ]);
    assert.deepEqual(items, [
      {
        label: "apply_discount",
        description: "shop/pricing.py:27  function",
        detail: "def apply_discount(price, percent):",
        uri: "file:///w/shop/pricing.py",
        line: 26,
      },
      {
        label: "from .cart import Cart",
        description: "shop/__init__.py:1  module",
        detail: "from .cart import Cart",
        uri: "file:///w/shop/__init__.py",
        line: 0,
      },
    ]);
  });

  it("leaves out what is not a hit", () => {
    assert.deepEqual(searchItems(null), []);
    assert.deepEqual(searchItems([{ path: "a.py" }, 3, hit("b.py", 1, "b", "def b(): pass")]).length, 1);
  });
});

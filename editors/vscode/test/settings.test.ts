import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { camelToSnake, deepMerge, explicitSettings, toServerSettings } from "../src/pure/settings";

describe("camelToSnake", () => {
  it("turns VS Code's keys into the server's", () => {
    assert.equal(camelToSnake("maxFileBytes"), "max_file_bytes");
    assert.equal(camelToSnake("maxCostUsd"), "max_cost_usd");
    assert.equal(camelToSnake("baseURL"), "base_url");
    assert.equal(camelToSnake("max_steps"), "max_steps");
    assert.equal(camelToSnake("model"), "model");
  });
});

describe("explicitSettings", () => {
  it("merges user, workspace and folder values, the most specific winning", () => {
    const merged = explicitSettings([
      { agent: { maxSteps: 10, model: { model: "a" } }, index: { exclude: ["x", "y"] } },
      undefined,
      { agent: { model: { model: "b" } }, index: { exclude: ["z"] } },
    ]);
    assert.deepEqual(merged, { agent: { maxSteps: 10, model: { model: "b" } }, index: { exclude: ["z"] } });
  });

  it("does not change its inputs", () => {
    const base = { a: { b: 1 } };
    deepMerge(base, { a: { c: 2 } });
    assert.deepEqual(base, { a: { b: 1 } });
  });
});

describe("toServerSettings", () => {
  it("leaves out the extension's own settings and converts the rest", () => {
    const out = toServerSettings({
      server: { path: "/venv/bin/agentls", args: ["serve", "--stdio"], reindexOnSave: false },
      trace: { server: "verbose" },
      agent: { maxCostUsd: null, sandbox: { allowUnsandboxed: true, path: "/usr/bin" } },
      index: { embedding: { baseUrl: "http://localhost:11434/v1" }, exclude: ["camelCase/**"] },
    });
    assert.deepEqual(out, {
      server: { reindex_on_save: false },
      agent: { max_cost_usd: null, sandbox: { allow_unsandboxed: true, path: "/usr/bin" } },
      index: { embedding: { base_url: "http://localhost:11434/v1" }, exclude: ["camelCase/**"] },
    });
  });

  it("drops a section the extension's settings leave empty, and nests dotted keys", () => {
    assert.deepEqual(toServerSettings({ server: { path: "agentls" }, "agent.maxSteps": 5 }), {
      agent: { max_steps: 5 },
    });
  });

  it("sends the server's own settings, like server.indexHomeOrRoot, in its names", () => {
    assert.deepEqual(toServerSettings({ server: { indexHomeOrRoot: true, logLevel: "debug" } }), {
      server: { index_home_or_root: true, log_level: "debug" },
    });
  });

  it("sends nothing for nothing", () => {
    assert.deepEqual(toServerSettings(undefined), {});
    assert.deepEqual(toServerSettings([1, 2]), {});
  });
});

/**
 * package.json against the code and the server: every command has a handler and vice versa, menus and
 * keys name real commands, and the mirrored settings exist in the server's settings tree with the same
 * defaults (asked of the server's own pydantic models).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ClientCommand, CLIENT_ONLY_SETTINGS, LANGUAGES, ServerCommand } from "../src/constants";
import { camelToSnake } from "../src/pure/settings";
import { manifest, NO_REPO, runPython } from "./helpers";

const pkg = manifest();
const contributed = new Set(pkg.contributes.commands.map((c) => c.command));

describe("package.json", () => {
  it("contributes exactly the extension's commands, none with a server command's id", () => {
    assert.deepEqual([...contributed].sort(), Object.values(ClientCommand).sort());
    const server = new Set<string>(Object.values(ServerCommand));
    assert.deepEqual(
      [...contributed].filter((c) => server.has(c)),
      [],
    );
  });

  it("names only contributed commands and submenus in menus and keys", () => {
    const submenus = new Set(pkg.contributes.submenus.map((s) => s.id));
    for (const [menu, entries] of Object.entries(pkg.contributes.menus)) {
      for (const entry of entries) {
        if (entry.command !== undefined) {
          assert.ok(contributed.has(entry.command), `${menu}: ${entry.command}`);
        } else {
          assert.ok(
            entry.submenu !== undefined && submenus.has(entry.submenu),
            `${menu}: ${String(entry.submenu)}`,
          );
        }
      }
    }
    for (const key of pkg.contributes.keybindings) {
      assert.ok(contributed.has(key.command), key.command);
    }
  });

  it("puts Accept, Reject, Accept and Commit and the per-file actions in the title of proposal diffs", () => {
    const title = pkg.contributes.menus["editor/title"] ?? [];
    assert.deepEqual(
      title.map((e) => e.command),
      [
        ClientCommand.accept,
        ClientCommand.reject,
        ClientCommand.acceptAndCommit,
        ClientCommand.acceptFile,
        ClientCommand.rejectFile,
      ],
    );
  });

  it("offers the free-form task and the team in the palette and the editor menu's run group", () => {
    const titles = new Map(pkg.contributes.commands.map((c) => [c.command, c.title]));
    assert.equal(titles.get(ClientCommand.runTask), "Run agentls Task on…");
    assert.equal(titles.get(ClientCommand.runTeam), "Run agentls Team on…");
    const runGroup = (pkg.contributes.menus["agentls.editorContext"] ?? [])
      .filter((e) => e.group?.startsWith("1_run@") === true)
      .map((e) => e.command);
    assert.ok(runGroup.includes(ClientCommand.runTask), String(runGroup));
    assert.ok(runGroup.includes(ClientCommand.runTeam), String(runGroup));
    // No `when` hides them from the palette: they work without an open file (on the workspace).
    const palette = pkg.contributes.menus.commandPalette ?? [];
    assert.deepEqual(
      palette.filter((e) => e.command === ClientCommand.runTask || e.command === ClientCommand.runTeam),
      [],
    );
  });

  it("activates on every language the client attaches to", () => {
    for (const language of LANGUAGES) {
      assert.ok(pkg.activationEvents.includes(`onLanguage:${language}`), language);
    }
  });

  it("starts the bundle, on a VS Code its types and its client library support", () => {
    assert.equal(pkg.main, "./out/extension.js");
    assert.equal(pkg.engines.vscode, "^1.90.0");
    assert.equal(pkg.devDependencies["@types/vscode"], "1.90.0", "vsce refuses types newer than the engine");
  });

  it("has the client's own settings with their documented defaults", () => {
    const props = pkg.contributes.configuration.properties;
    assert.equal(props["agentls.server.path"]?.default, "agentls");
    assert.deepEqual(props["agentls.server.args"]?.default, ["serve", "--stdio"]);
    assert.equal(props["agentls.trace.server"]?.default, "off");
  });
});

describe("mirrored settings", { skip: NO_REPO }, () => {
  const defaults = JSON.parse(
    runPython(
      "import json\nfrom server.settings import Settings\nprint(json.dumps(Settings().model_dump(mode='json')))",
    ),
  ) as Record<string, unknown>;
  const schema = JSON.parse(
    runPython(
      "import json\nfrom server.settings import Settings\nprint(json.dumps(Settings.model_json_schema()))",
    ),
  ) as {
    $defs: Record<
      string,
      { properties: Record<string, { enum?: unknown[]; anyOf?: { enum?: unknown[] }[] }> }
    >;
  };

  const mirrored = Object.entries(pkg.contributes.configuration.properties).filter(
    ([key]) => !CLIENT_ONLY_SETTINGS.some((c) => key === `agentls.${c}` || key.startsWith(`agentls.${c}.`)),
  );

  it("mirrors a good part of the server's settings", () => {
    assert.ok(mirrored.length >= 30, String(mirrored.length));
  });

  for (const [key, prop] of mirrored) {
    it(`${key} exists on the server with the same default`, () => {
      const path = key.split(".").slice(1).map(camelToSnake);
      let node: unknown = defaults;
      for (const part of path) {
        assert.ok(
          typeof node === "object" && node !== null && part in node,
          `the server has no setting ${path.join(".")}`,
        );
        node = (node as Record<string, unknown>)[part];
      }
      assert.deepEqual(prop.default ?? null, node, `default of ${key}`);
    });
  }

  it("declares the setting the server names when it holds back a home folder or /", () => {
    // The message tells VS Code users to set it "in the editor's agentls settings": it must be there.
    const message = runPython(
      "from pathlib import Path\nfrom server.workspace import held_message\n" +
        "print(held_message(Path.home(), 'your home folder'))",
    );
    const named = [...message.matchAll(/`([a-z_.]+) = true`/g)].map((m) => m[1]);
    assert.deepEqual(named, ["server.index_home_or_root"]);
    const declared = Object.entries(pkg.contributes.configuration.properties).find(
      ([key]) => key.split(".").slice(1).map(camelToSnake).join(".") === named[0],
    );
    assert.ok(declared !== undefined, `package.json declares no setting for ${String(named[0])}`);
    assert.equal(declared[0], "agentls.server.indexHomeOrRoot");
    assert.equal(declared[1].type, "boolean");
    assert.equal(declared[1].default, false);
  });

  it("offers the same choices as the server's enums", () => {
    const props = pkg.contributes.configuration.properties;
    const provider = schema.$defs.EmbeddingSettings?.properties.provider;
    const level = schema.$defs.ServerSettings?.properties.log_level;
    assert.deepEqual(props["agentls.index.embedding.provider"]?.enum, provider?.enum);
    const rerank = schema.$defs.RerankSettings?.properties.provider;
    assert.deepEqual(props["agentls.index.rerank.provider"]?.enum, rerank?.enum);
    assert.deepEqual(props["agentls.server.logLevel"]?.enum, level?.enum);
  });
});

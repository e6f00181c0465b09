import assert from "node:assert/strict";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
  accessSync,
  constants,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

import { expandVariables, findExecutable, notFoundMessage, type LookupEnv } from "../src/pure/launch";

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) {
      return false;
    }
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

describe("findExecutable on a real file system", () => {
  let root = "";
  let env: LookupEnv;
  before(() => {
    root = mkdtempSync(path.join(tmpdir(), "agentls-launch-"));
    for (const dir of ["bin1", "bin2", "ws/.venv/bin", "home/.local/bin"]) {
      mkdirSync(path.join(root, dir), { recursive: true });
    }
    const make = (rel: string, mode: number): void => {
      writeFileSync(path.join(root, rel), "#!/bin/sh\n");
      chmodSync(path.join(root, rel), mode);
    };
    make("bin1/agentls", 0o644); // not executable: skipped
    make("bin2/agentls", 0o755);
    make("ws/.venv/bin/agentls", 0o755);
    make("home/.local/bin/agentls", 0o755);
    mkdirSync(path.join(root, "bin1", "dironly"));
    env = {
      path: [path.join(root, "bin1"), "", path.join(root, "bin2")].join(":"),
      pathExt: "",
      platform: "linux",
      home: path.join(root, "home"),
      workspaceFolder: path.join(root, "ws"),
      isExecutable,
    };
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it("takes the first executable match on PATH", () => {
    assert.deepEqual(findExecutable("agentls", env), {
      found: true,
      path: path.join(root, "bin2", "agentls"),
    });
  });

  it("takes paths as they are, relative ones from the workspace folder", () => {
    assert.deepEqual(findExecutable(".venv/bin/agentls", env), {
      found: true,
      path: path.join(root, "ws/.venv/bin/agentls"),
    });
    assert.deepEqual(findExecutable("${workspaceFolder}/.venv/bin/agentls", env), {
      found: true,
      path: path.join(root, "ws/.venv/bin/agentls"),
    });
    assert.deepEqual(findExecutable("~/.local/bin/agentls", env), {
      found: true,
      path: path.join(root, "home/.local/bin/agentls"),
    });
  });

  it("reports where it looked when nothing fits", () => {
    const missing = findExecutable("agentls-nope", env);
    assert.equal(missing.found, false);
    assert.deepEqual(missing.searched, [
      path.join(root, "bin1", "agentls-nope"),
      path.join(root, "bin2", "agentls-nope"),
    ]);
    assert.equal(findExecutable("dironly", env).found, false, "a directory is not an executable");
  });
});

describe("findExecutable on Windows", () => {
  it("tries PATHEXT's extensions in each PATH folder", () => {
    const tried: string[] = [];
    const found = findExecutable("agentls", {
      path: "C:\\Python\\Scripts;D:\\tools",
      pathExt: ".EXE;.CMD",
      platform: "win32",
      home: "C:\\Users\\me",
      workspaceFolder: undefined,
      isExecutable: (p) => {
        tried.push(p);
        return p === "D:\\tools\\agentls.CMD";
      },
    });
    assert.deepEqual(found, { found: true, path: "D:\\tools\\agentls.CMD" });
    assert.deepEqual(tried, [
      "C:\\Python\\Scripts\\agentls",
      "C:\\Python\\Scripts\\agentls.EXE",
      "C:\\Python\\Scripts\\agentls.CMD",
      "D:\\tools\\agentls",
      "D:\\tools\\agentls.EXE",
      "D:\\tools\\agentls.CMD",
    ]);
  });
});

describe("messages", () => {
  it("expands variables users write", () => {
    const env: LookupEnv = {
      path: "",
      pathExt: "",
      platform: "linux",
      home: "/home/me",
      workspaceFolder: undefined,
      isExecutable: () => false,
    };
    assert.equal(expandVariables("${userHome}/x", env), "/home/me/x");
    assert.equal(
      expandVariables("${workspaceFolder}/x", env),
      "${workspaceFolder}/x",
      "left alone without a folder",
    );
  });

  it("tells how to install the server and where to point the setting", () => {
    const message = notFoundMessage("agentls");
    assert.match(message, /pip install agentls/);
    assert.match(message, /agentls\.server\.path/);
  });
});

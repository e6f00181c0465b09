// Bundles the extension and vscode-languageclient into out/extension.js, so the .vsix needs no
// node_modules. `vscode` is provided by the editor at run time and stays external.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { build } from "esbuild";

const require = createRequire(import.meta.url);
// `--production` (vsce's prepublish) minifies; names are kept so stack traces in the log stay readable.
const production = process.argv.includes("--production");

await build({
  entryPoints: ["src/extension.ts"],
  outfile: "out/extension.js",
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node18",
  external: ["vscode"],
  sourcemap: false,
  minify: production,
  keepNames: true,
  logLevel: "warning",
});

// vscode-languageclient kills a server that does not exit on stop with this script, which it looks up
// next to its own code: after bundling, that is out/.
const languageclient = dirname(require.resolve("vscode-languageclient/package.json"));
mkdirSync("out", { recursive: true });
copyFileSync(join(languageclient, "lib", "node", "terminateProcess.sh"), join("out", "terminateProcess.sh"));

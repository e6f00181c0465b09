#!/usr/bin/env bash
# Build, lint, test and package the VS Code extension from a clean checkout (no node_modules, no out/).
# Prints the path of the .vsix it made. Needs Node.js 20+ and npm; Python with agentls' dependencies is
# used by the tests that compare the extension with the server's own code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v npm >/dev/null || { echo "ci.sh: npm is not installed; install Node.js 20 or later" >&2; exit 1; }

rm -rf out ./*.vsix
# No install scripts: esbuild's binary comes as an optional dependency, and nothing else needs one.
npm ci --no-audit --no-fund --ignore-scripts
npm run compile
npm run lint
npm test
npm run package

vsix=$(ls -1 ./*.vsix)
# The package must hold the bundle and must not need node_modules (Python lists the zip: unzip may be
# missing on a fresh machine, Python is not).
listing=$("${AGENTLS_PYTHON:-python3}" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$vsix")
echo "$listing"
for needed in extension/package.json extension/out/extension.js extension/out/terminateProcess.sh \
  extension/readme.md extension/LICENSE.txt; do
  grep -qx "$needed" <<<"$listing" || { echo "ci.sh: $vsix lacks $needed" >&2; exit 1; }
done
if grep -q "extension/node_modules/" <<<"$listing"; then
  echo "ci.sh: $vsix carries node_modules; the bundle should hold its dependencies" >&2
  exit 1
fi
# The bundle must load with nothing but `vscode` (stubbed here: any member is a constructible function)
# and Node's built-ins, i.e. without node_modules beside it.
node -e '
const Module = require("module");
const stub = () => new Proxy(function () {}, {
  get: (target, key) => (key === "prototype" ? {} : key === Symbol.toPrimitive ? () => "" : stub()),
  construct: () => stub(),
  apply: () => stub(),
});
const realResolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === "vscode") return "vscode";
  if (!Module.isBuiltin(request) && !request.startsWith(".") && !request.startsWith("/")) {
    throw new Error("the bundle requires " + request + " from node_modules");
  }
  return realResolve.call(this, request, ...rest);
};
require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: stub() };
try {
  const ext = require(process.argv[1]);
  if (typeof ext.activate !== "function" || typeof ext.deactivate !== "function") {
    throw new Error("it exports no activate and deactivate");
  }
} catch (error) {
  console.error("ci.sh: out/extension.js does not load on its own: " + String(error.message).slice(0, 300));
  process.exit(1);
}
' "$(pwd)/out/extension.js"
echo "VSIX: $(pwd)/${vsix#./}"

#!/usr/bin/env bash
# Install code-server (VS Code's workbench served to a browser) from the npm registry into a cache folder,
# without its install scripts, which download from GitHub. Prints the path of its entry point
# (.../node_modules/code-server/out/node/entry.js). A second run with the install complete does nothing.
#
# What the skipped install scripts did, and what this does instead:
# - code-server's postinstall.sh runs `npm install` in lib/vscode and lib/vscode/extensions: run here with
#   --ignore-scripts (their own scripts fetch prebuilt binaries from GitHub);
# - native modules (node-pty, @vscode/spdlog, native-watchdog, argon2) are built with node-gyp against the
#   local Node headers (/usr/include/node, Debian's nodejs: --nodedir=/usr); @parcel/watcher comes
#   prebuilt as an optional npm dependency; kerberos, @vscode/deviceid and the Windows-only modules are
#   not built (nothing here needs them);
# - @vscode/ripgrep's binary (downloaded from GitHub) is Debian's ripgrep, /usr/bin/rg, linked in;
# - node_modules.asar is a link to node_modules, as postinstall.sh makes it.
#
# Environment: AGENTLS_CI_CACHE (default ~/.cache/agentls-ci), CODE_SERVER_VERSION (default 4.100.3: the
# last line that declares Node 20, this machine's; 4.10x and later want Node 22 or 24).
set -euo pipefail

version="${CODE_SERVER_VERSION:-4.100.3}"
cache="${AGENTLS_CI_CACHE:-$HOME/.cache/agentls-ci}"
dest="$cache/code-server-$version"
pkg="$dest/node_modules/code-server"
entry="$pkg/out/node/entry.js"

if [[ -f "$dest/.complete" && -f "$entry" ]]; then
  echo "$entry"
  exit 0
fi

for tool in node npm g++ make rg; do
  command -v "$tool" >/dev/null || {
    echo "install-code-server.sh: $tool is missing (apt-get install nodejs npm g++ make ripgrep)" >&2
    exit 1
  }
done
[[ -f /usr/include/node/node.h ]] || {
  echo "install-code-server.sh: Node's headers are missing (/usr/include/node: apt-get install libnode-dev)" >&2
  exit 1
}

node_gyp="$(dirname "$(realpath "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[[ -f "$node_gyp" ]] || node_gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
[[ -f "$node_gyp" ]] || { echo "install-code-server.sh: npm's node-gyp not found" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest"
cd "$dest"
echo '{"name": "agentls-code-server", "private": true}' >package.json
npm_install=(npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
{
  "${npm_install[@]}" "code-server@$version"
  (cd "$pkg/lib/vscode" && "${npm_install[@]}" --omit=dev)
  (cd "$pkg/lib/vscode/extensions" && "${npm_install[@]}" --omit=dev)

  for module in node-pty @vscode/spdlog native-watchdog; do
    (cd "$pkg/lib/vscode/node_modules/$module" && node "$node_gyp" rebuild --nodedir=/usr -j 2 --loglevel=error)
  done
  # argon2 finds its binary through node-pre-gyp (lib/binding/napi-v3/argon2.node).
  (cd "$dest/node_modules/argon2" && "$dest/node_modules/.bin/node-pre-gyp" rebuild --build-from-source \
    --nodedir=/usr --loglevel=error)

  mkdir -p "$pkg/lib/vscode/node_modules/@vscode/ripgrep/bin"
  ln -sf "$(command -v rg)" "$pkg/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
  ln -sfn node_modules "$pkg/lib/vscode/node_modules.asar"
} >&2

# Everything code-server loads at start-up must load.
(cd "$pkg" && node -e 'require("argon2"); require("./lib/vscode/node_modules/@vscode/spdlog");
  require("./lib/vscode/node_modules/node-pty"); require("./lib/vscode/node_modules/native-watchdog")') >&2
touch "$dest/.complete"
echo "$entry"

#!/usr/bin/env bash
# Installs the real VS Code the end-to-end tests drive: code-server (VS Code
# 1.100.3 served to a browser) into .vscode-test/ (gitignored), plus Debian's
# chromium and ripgrep. Nothing is downloaded but npm and Debian packages:
# code-server's native modules are built here against Node's own headers, and
# @vscode/ripgrep's download is answered from a cache seeded with Debian's rg.
# Skips everything when .vscode-test/ already holds a working code-server.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=4.100.3
dir=.vscode-test/code-server
bin="$dir/node_modules/.bin/code-server"

# (XDG_*: code-server writes a config file and logs on any start, even --version.)
export XDG_CONFIG_HOME="$PWD/.vscode-test/config" XDG_DATA_HOME="$PWD/.vscode-test/data"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^$version" \
  && [ -f "$dir/node_modules/code-server/lib/vscode/node_modules/node-pty/build/Release/pty.node" ]; then
  echo "code-server $version already installed in $dir"
  exit 0
fi

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v rg >/dev/null || need_apt+=(ripgrep)
command -v make >/dev/null && command -v g++ >/dev/null || need_apt+=(build-essential)
command -v python3 >/dev/null || need_apt+=(python3)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -f /usr/include/krb5.h ] || [ -f /usr/include/gssapi/gssapi.h ] || need_apt+=(libkrb5-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing: ${need_apt[*]}. Install them (apt-get install ${need_apt[*]}) and run this again." >&2
    exit 1
  fi
  echo "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# node-gyp builds against the headers of the Node that runs code-server, never downloads them.
nodedir=/usr
if [ ! -f /usr/include/node/node.h ]; then
  nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  [ -f "$nodedir/include/node/node.h" ] || { echo "No Node headers found (looked in /usr/include/node and $nodedir/include/node)." >&2; exit 1; }
fi

# @vscode/ripgrep's postinstall downloads rg unless this cache file exists.
tmp="${TMPDIR:-/tmp}"
cache="$tmp/vscode-ripgrep-cache-1.15.11"
mkdir -p "$cache"
rg_tar="$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
if [ ! -s "$rg_tar" ]; then
  staging="$(mktemp -d)"
  cp "$(command -v rg)" "$staging/rg"
  tar -czf "$rg_tar" -C "$staging" rg
  rm -rf "$staging"
fi

rm -rf "$dir"
mkdir -p "$dir"
cat > "$dir/package.json" <<JSON
{ "name": "sift-e2e-code-server", "private": true, "description": "The VS Code the end-to-end tests run (not shipped)." }
JSON

echo "npm install code-server@$version (builds node-pty, kerberos, ...; about 2-3 minutes)"
# code-server's postinstall runs npm install again inside lib/vscode; the
# settings below reach that nested install through the environment:
# install scripts must run (the native modules are built by them): this npm
# runs only those an allowScripts policy names unless told otherwise. As root,
# code-server's postinstall.sh insists on npm_config_unsafe_perm (npm itself
# no longer reads it and warns so).
(
  cd "$dir"
  env -u PORT \
    npm_config_nodedir="$nodedir" \
    npm_config_yes=true \
    npm_config_ignore_scripts=false \
    npm_config_dangerously_allow_all_scripts=true \
    npm_config_unsafe_perm=true \
    npm_config_audit=false npm_config_fund=false \
    npm install --no-save --foreground-scripts "code-server@$version" > install.log 2>&1
) || { tail -40 "$dir/install.log" >&2; exit 1; }

pty="$dir/node_modules/code-server/lib/vscode/node_modules/node-pty/build/Release/pty.node"
[ -f "$pty" ] || { echo "node-pty was not built ($pty missing); see $dir/install.log" >&2; exit 1; }
"$bin" --version

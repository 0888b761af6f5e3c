#!/usr/bin/env bash
# Installs what Whistle needs beside Go on a Debian machine: redis-server; with --browser also
# chromium and a Chinese font, for the web console's browser tests (pkg/testing/browser; the
# console speaks Chinese first, and its screenshots need the glyphs). Safe to run again.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${1:-}" = "--browser" ]; then
  [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
fi
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
  # The package starts a system-wide server; Whistle runs its own, so leave that one stopped.
  $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

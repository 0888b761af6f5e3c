#!/usr/bin/env bash
# Installs what Whistle needs beside Go on a Debian machine: redis-server. Safe to run again.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "setup: installing redis-server" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
# The package starts a system-wide server; Whistle runs its own, so leave that one stopped.
$sudo systemctl disable --now redis-server >/dev/null 2>&1 || true

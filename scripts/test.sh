#!/usr/bin/env bash
# Runs every test in the workspace against real servers (embedded NATS, redis-server children) and,
# for the web console, a real Chromium, after installing redis-server and chromium where they are
# missing. That includes the fault tests of the local cluster (a NATS node, a replica of each
# service and a Redis master killed under load).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" --browser
cd "$root"
go test -race -count=1 -timeout 20m work

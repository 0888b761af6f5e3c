#!/usr/bin/env bash
# Runs every test in the workspace against real servers (embedded NATS, redis-server children),
# after installing redis-server where it is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
go test -race -count=1 -timeout 20m work

#!/usr/bin/env bash
# Runs every test in the workspace against real servers (embedded NATS, redis-server children),
# after installing redis-server where it is missing. With --faults it also runs the fault tests of
# the local cluster (a NATS node, a replica of each service and a Redis master killed under load),
# which are off by default: a view sometimes misses events after a fault, and that is not fixed yet.
set -euo pipefail
if [ "${1:-}" = "--faults" ]; then
  export WHISTLE_FAULT_TESTS=1
fi
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
go test -race -count=1 -timeout 20m work

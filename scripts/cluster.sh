#!/usr/bin/env bash
# Runs Whistle on this machine as in production, each part a process of its own: three NATS nodes
# (the program's embedded server, clustered, streams at three replicas), a Redis Cluster of three
# masters each with a replica, and two processes of each service, each with its own NATS and Redis
# user. `scripts/cluster.sh up` starts it in the background and returns once it is ready;
# `scripts/cluster.sh down` stops it. Extra arguments go to `whistle cluster` (--dir, --base-port).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v redis-server >/dev/null 2>&1 || echo "cluster: installing redis-server (apt-get; asks for sudo where needed)" >&2
"$root/scripts/setup.sh"
cd "$root"
if [ "${1:-}" != "down" ]; then
  echo "cluster: building bin/whistle (the first build downloads modules and takes a few minutes)" >&2
  go build -o bin/whistle ./services/whistle
fi
exec bin/whistle cluster "$@"

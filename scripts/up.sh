#!/usr/bin/env bash
# Brings Whistle up on this machine with its embedded default: NATS JetStream in the process, a
# redis-server child, every service, gRPC on 127.0.0.1:7070 and HTTP on 127.0.0.1:7080.
# Extra arguments go to `whistle up` (for example --data DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
go build -o bin/whistle ./services/whistle
exec bin/whistle up "$@"

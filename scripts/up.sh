#!/usr/bin/env bash
# Brings Whistle up on this machine with its embedded default: NATS JetStream in the process, a
# redis-server child, every service, gRPC on 127.0.0.1:7070 and HTTP on 127.0.0.1:7080.
# Extra arguments go to `whistle up` (for example --data DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v redis-server >/dev/null 2>&1 || echo "up: installing redis-server (apt-get; asks for sudo where needed)" >&2
"$root/scripts/setup.sh"
cd "$root"
# The first build downloads every module and compiles them, which takes a few minutes on a small
# machine and prints nothing meanwhile; later builds take seconds.
echo "up: building bin/whistle (the first build downloads modules and takes a few minutes)" >&2
go build -o bin/whistle ./services/whistle
echo "up: starting whistle up $*" >&2
exec bin/whistle up "$@"

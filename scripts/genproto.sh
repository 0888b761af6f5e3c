#!/usr/bin/env bash
# Regenerates the Go code for the protobuf API with the generators pinned in tools/go.mod,
# after linting the contract. CI runs it and fails when the committed code differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/tools"
GOWORK=off go build -o "$root/bin/" github.com/bufbuild/buf/cmd/buf google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
cd "$root/proto"
"$root/bin/buf" lint
rm -rf gen
"$root/bin/buf" generate

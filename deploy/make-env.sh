#!/usr/bin/env bash
# Writes deploy/.env for deploy/compose.yaml: a password for each NATS user and each Redis user, the
# Grafana admin's password, and the token signing key every Whistle replica shares. It never
# overwrites a .env that exists, since the running cluster's data was made with its values.
set -euo pipefail
env_file="$(cd "$(dirname "$0")" && pwd)/.env"
if [ -e "$env_file" ]; then
  echo "make-env: $env_file exists; remove it to make new secrets" >&2
  exit 1
fi
secret() { od -An -vtx1 -N"$1" /dev/urandom | tr -d ' \n'; }
umask 077
{
  echo "# Secrets of deploy/compose.yaml, written by deploy/make-env.sh. Keep this file out of git."
  for user in TOOLS INTAKE ROUTING DEPARTMENT ESCALATION; do
    echo "WHISTLE_NATS_${user}_PASSWORD=$(secret 24)"
  done
  echo "WHISTLE_REDIS_PASSWORD=$(secret 24)"
  # The gateway has a Redis user of its own, and no NATS user.
  for user in INTAKE ROUTING DEPARTMENT ESCALATION GATEWAY; do
    echo "WHISTLE_REDIS_${user}_PASSWORD=$(secret 24)"
  done
  echo "GRAFANA_ADMIN_PASSWORD=$(secret 12)"
  # The token signing key, hex as whistle writes token.key: mint tokens and the console's sign-in
  # links with it as
  #   mkdir -p key && grep ^WHISTLE_TOKEN_KEY= deploy/.env | cut -d= -f2 > key/token.key
  #   whistle token --data key --role supervisor --scope city
  #   whistle login-link --data key --role supervisor --scope city --base http://127.0.0.1:8080
  echo "WHISTLE_TOKEN_KEY=$(secret 32)"
} > "$env_file"
echo "make-env: wrote $env_file" >&2

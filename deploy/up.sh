#!/usr/bin/env bash
# The README's first command: set up (idempotent), then run `lookout up` — the whole service on
# embedded defaults — inside a loopback-only network namespace (Ray listens on every interface).
# The API (and its dashboard) is forwarded to 127.0.0.1:<port> of this machine, so a browser here
# reaches it; other `lookout` commands run inside the namespace through deploy/lookout.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/deploy/bootstrap.sh"
cd "$ROOT"
mkdir -p .stack
rm -f .stack/netns.pid

port=8080  # the API's port inside the namespace: api.port, or `--port N`
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --port) port="${args[i + 1]:-$port}" ;;
    --port=*) port="${args[i]#--port=}" ;;
  esac
done

bash deploy/netns.sh bash -c 'echo $$ > .stack/netns.pid; exec .venv/bin/lookout up "$@"' up "$@" &
service=$!
until [ -s .stack/netns.pid ] || ! kill -0 "$service" 2>/dev/null; do sleep 0.1; done

forward=""
if [ -s .stack/netns.pid ]; then
  # Each connection to 127.0.0.1:$port here is relayed to 127.0.0.1:$port inside the namespace.
  netns="/proc/$(cat .stack/netns.pid)/ns/net"
  socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:nsenter --net=$netns socat STDIO TCP\:127.0.0.1\:$port" 2>.stack/forward.log &
  forward=$!
fi
stop() { [ -z "$forward" ] || kill "$forward" 2>/dev/null || true; }
trap stop EXIT
trap 'kill -INT "$service" 2>/dev/null || true' INT TERM
status=0
wait "$service" || status=$?
# Ctrl-C interrupts the first wait; the service is still shutting down cleanly.
while kill -0 "$service" 2>/dev/null; do wait "$service" || status=$?; done
exit "$status"

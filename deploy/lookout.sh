#!/usr/bin/env bash
# Run a `lookout` command; when `deploy/up.sh` is running, inside its network namespace, where its
# API listens on 127.0.0.1 (e.g. `bash deploy/lookout.sh subscribe QUERY_ID`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
pid="$(cat .stack/netns.pid 2>/dev/null || true)"
if [ -n "$pid" ] && [ -e "/proc/$pid/ns/net" ]; then
  exec nsenter --net="/proc/$pid/ns/net" .venv/bin/lookout "$@"
fi
exec .venv/bin/lookout "$@"

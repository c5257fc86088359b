#!/usr/bin/env bash
# The README's first command: set up (idempotent), then run `lookout up` — the whole service on
# embedded defaults — inside a loopback-only network namespace (Ray listens on every interface).
# Talk to it from another terminal with deploy/lookout.sh (it enters the same namespace).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/deploy/bootstrap.sh"
cd "$ROOT"
mkdir -p .stack
exec bash deploy/netns.sh bash -c 'echo $$ > .stack/netns.pid; exec .venv/bin/lookout up "$@"' up "$@"

#!/usr/bin/env bash
# The README's test command: set up (idempotent), then run the whole suite inside a loopback-only
# network namespace. The session fixtures start the real services (Redis, Tansu, pgstac, Ray) in
# there and stop them by PID. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/deploy/bootstrap.sh"
cd "$ROOT"
exec bash deploy/netns.sh .venv/bin/python -m pytest "$@"

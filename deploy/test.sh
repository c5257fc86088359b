#!/usr/bin/env bash
# The README's test command: set up (idempotent), lint (`ruff check .`, `ruff format --check .`), then
# run the whole suite inside a loopback-only network namespace. Any failing step fails the command.
# The session fixtures start the real services (Redis, Tansu, pgstac, Ray) in there and stop them by
# PID. pytest ends with the 15 slowest tests (--durations=15). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/deploy/bootstrap.sh"
cd "$ROOT"
echo "[test] ruff check ."
.venv/bin/ruff check .
echo "[test] ruff format --check ."
.venv/bin/ruff format --check .
echo "[test] pytest $*"
exec bash deploy/netns.sh .venv/bin/python -m pytest --durations=15 "$@"

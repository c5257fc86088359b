#!/usr/bin/env bash
# Run a command inside a fresh loopback-only network namespace (README "Development notes", network rule):
# Ray listens on all interfaces and talks to the machine's own address, so anything that starts Ray,
# and every service it needs, runs in here where only 127.0.0.1 exists.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  exec unshare --net -- bash -c 'ip link set lo up && exec "$@"' netns "$@"
fi
# Without root: a user namespace maps us to root inside it (services needing real root will refuse).
exec unshare --map-root-user --net -- bash -c 'ip link set lo up && exec "$@"' netns "$@"

#!/usr/bin/env bash
# Idempotent set-up used by both README commands: apt packages, the project venv (.venv) and the
# STAC API venv (.venv-stac). A second run only checks stamps and returns in about a second.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

# --- apt packages -------------------------------------------------------------------------------
# redis-server: embedded/test Redis. postgresql-15-postgis-3: PostgreSQL + PostGIS for pgstac (test
# STAC API). iproute2/util-linux: `ip` and `unshare` for the loopback-only network namespace.
# socat: forwards the API port of `deploy/up.sh` out of its namespace to this machine's 127.0.0.1.
# chromium: the browser the dashboard tests drive (Playwright never downloads one). gdal-bin: ogrinfo and
# ogr2ogr, whose OAPIF driver is the third-party OGC API - Features client the API is tested with. npm:
# installs the dashboard's front-end libraries (only when no npm is on PATH: a Node.js install may bring
# its own).
APT_PACKAGES=(redis-server postgresql-15 postgresql-15-postgis-3 iproute2 util-linux socat chromium gdal-bin)
command -v npm >/dev/null || APT_PACKAGES+=(npm)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # Debian's postinst would create and start a system cluster on :5432; we run our own, on loopback.
  $SUDO mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Package scripts may have started a system redis; the project starts its own on private ports.
  $SUDO pkill -x redis-server 2>/dev/null || true
fi

# pip prints a warning per local index folder it does not find; keep the install log readable.
pip_quiet() { "$@" 2>&1 | { grep -vE "is ignored: it is neither a file nor a directory" || true; }; }

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- project venv -------------------------------------------------------------------------------
want="$(stamp_of pyproject.toml deploy/constraints.txt deploy/requirements-nodeps.txt)"
if [ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]; then
  log "installing the project into .venv (first time: a few minutes, torch is large)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # solaris 0.4.0 (data only) has metadata that pip >= 24.1 rejects; keep a pip that accepts it.
  pip_quiet .venv/bin/python -m pip install -q 'pip>=23,<24.1'
  pip_quiet .venv/bin/pip install -q -c deploy/constraints.txt -e '.[dev]'
  pip_quiet .venv/bin/pip install -q --no-deps -r deploy/requirements-nodeps.txt
  echo "$want" > .venv/.stamp
fi

# --- STAC API venv (tests and benchmarks; production points at an external STAC API) -----------
want="$(stamp_of deploy/requirements-stac.txt)"
if [ "$(cat .venv-stac/.stamp 2>/dev/null)" != "$want" ]; then
  log "installing stac-fastapi-pgstac into .venv-stac"
  [ -x .venv-stac/bin/python ] || "$PY" -m venv .venv-stac
  pip_quiet .venv-stac/bin/pip install -q -r deploy/requirements-stac.txt
  echo "$want" > .venv-stac/.stamp
fi
# --- dashboard front-end libraries (npm registry; served by the API from node_modules) ------------
DASHBOARD=services/api/dashboard
want="$(stamp_of "$DASHBOARD/package.json" "$DASHBOARD/package-lock.json")"
if [ "$(cat "$DASHBOARD/node_modules/.stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the dashboard's front-end libraries (npm ci)"
  npm ci --prefix "$DASHBOARD" --no-audit --no-fund --loglevel=error
  echo "$want" > "$DASHBOARD/node_modules/.stamp"
fi
log "ready"

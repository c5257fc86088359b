"""An embedded STAC API: PostgreSQL 15 + PostGIS + pgstac, served by stac-fastapi-pgstac.

The API lives in its own virtual environment (``.venv-stac``, made by deploy/bootstrap.sh) because
its ``[server]`` extra pins an older uvicorn than ray[serve] accepts. The transactions extension is
on, so items POSTed while it runs are searchable at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx

from services.embedded.process import LOOPBACK, ManagedProcess, free_port

PG_VERSION = "15"
DATABASE = "pgstac"
# Trust auth on loopback only; libpq-based clients still insist on a password being set.
PG_USER = "postgres"
PG_PASSWORD = "postgres"
# pgstac: count matches on every search (numberMatched) and never cache those counts.
PGSTAC_SETTINGS_SQL = (
    "INSERT INTO pgstac.pgstac_settings (name, value) VALUES ('context', 'on'), ('context_stats_ttl', '0') "
    "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;"
)


def find_postgres_bin(configured: Path | None = None) -> Path:
    """PostgreSQL's server binary folder (Debian keeps it off PATH, under /usr/lib/postgresql/N/bin)."""
    candidates = [configured] if configured else [Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")]
    for folder in candidates:
        if folder is not None and (folder / "postgres").is_file():
            return folder
    raise FileNotFoundError(
        f"PostgreSQL {PG_VERSION} server binaries not found in {candidates}: run deploy/bootstrap.sh "
        "(apt packages postgresql-15 and postgresql-15-postgis-3) or set LOOKOUT_EMBEDDED__POSTGRES_BIN"
    )


def _run(argv: list[str], *, user: str | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, user=user, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


class PgStacApi:
    """PostgreSQL + pgstac + stac-fastapi-pgstac on free loopback ports, data in ``state_dir``."""

    def __init__(
        self, state_dir: Path, stac_venv: Path, *, postgres_bin: Path | None = None, port: int | None = None
    ) -> None:
        self.state_dir = state_dir
        self.stac_venv = stac_venv
        self.pg_bin = find_postgres_bin(postgres_bin)
        self.pg_port = free_port()
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.dsn = f"postgresql://{PG_USER}:{PG_PASSWORD}@{LOOPBACK}:{self.pg_port}/{DATABASE}"
        # initdb and postgres refuse to run as root; as root we run them as the postgres system user.
        self.pg_user = "postgres" if os.geteuid() == 0 else None
        self.postgres: ManagedProcess | None = None
        self.api: ManagedProcess | None = None
        for tool in ("uvicorn", "pypgstac"):
            if not (stac_venv / "bin" / tool).is_file():
                raise FileNotFoundError(f"{stac_venv / 'bin' / tool} missing: run deploy/bootstrap.sh")

    def _pg_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_"))}
        env |= {
            "PGHOST": LOOPBACK,
            "PGPORT": str(self.pg_port),
            "PGUSER": PG_USER,
            "PGPASSWORD": PG_PASSWORD,
            "PGDATABASE": DATABASE,
        }
        return env

    def start(self) -> PgStacApi:
        """initdb, start PostgreSQL, create and migrate the database, then start the API."""
        data_dir = self.state_dir / "pgdata"
        sock_dir = self.state_dir / "pgsock"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for folder in (data_dir, sock_dir):
            folder.mkdir(parents=True, exist_ok=True)
            if self.pg_user:
                shutil.chown(folder, user=self.pg_user, group=self.pg_user)
        initdb = [
            str(self.pg_bin / "initdb"),
            "-D",
            str(data_dir),
            "-A",
            "trust",
            "-U",
            PG_USER,
            "-E",
            "UTF8",
        ]
        _run([*initdb, "--no-sync"], user=self.pg_user)
        server_options = {
            "listen_addresses": LOOPBACK,
            "unix_socket_directories": str(sock_dir),
            # Throwaway test/demo data: durability off for speed.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv = [self.pg_bin / "postgres", "-D", data_dir, "-p", str(self.pg_port)]
        for name, value in server_options.items():
            argv += ["-c", f"{name}={value}"]
        self.postgres = ManagedProcess(
            "postgres", argv, self.state_dir / "postgres.log", ready=self._postgres_ready, user=self.pg_user
        )
        self.postgres.start(timeout_s=30)
        env = self._pg_env()
        _run(["psql", "-d", "postgres", "-q", "-c", f"CREATE DATABASE {DATABASE}"], env=env)
        _run([str(self.stac_venv / "bin" / "pypgstac"), "migrate", "--dsn", self.dsn], env=env)
        _run(["psql", "-q", "-c", PGSTAC_SETTINGS_SQL], env=env)
        app = "stac_fastapi.pgstac.app:create_app"
        uvicorn = self.stac_venv / "bin" / "uvicorn"
        api_argv = [
            uvicorn,
            app,
            "--factory",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self.api = ManagedProcess(
            "stac-fastapi-pgstac",
            api_argv,
            self.state_dir / "stac-api.log",
            ready=self._api_ready,
            env=env | {"ENABLE_TRANSACTIONS_EXTENSIONS": "TRUE"},
        )
        try:
            self.api.start(timeout_s=60)
        except Exception:
            self.postgres.stop()
            raise
        return self

    def _postgres_ready(self) -> bool:
        result = subprocess.run(
            [str(self.pg_bin / "pg_isready"), "-h", LOOPBACK, "-p", str(self.pg_port), "-q"], check=False
        )
        return result.returncode == 0

    def _api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/_mgmt/ping", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def pids(self) -> list[int]:
        """PIDs of the running processes (API, PostgreSQL)."""
        return [p.pid for p in (self.api, self.postgres) if p is not None and p.pid is not None]

    def stop(self) -> None:
        """Stop the API, then PostgreSQL (SIGTERM = PostgreSQL's smart shutdown), by PID."""
        if self.api is not None:
            self.api.stop()
        if self.postgres is not None:
            self.postgres.stop(grace_s=20)

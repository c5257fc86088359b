"""An embedded Redis server on 127.0.0.1 (ephemeral by default, like the embedded default's data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from services.embedded.process import LOOPBACK, ManagedProcess, free_port


def find_redis_server() -> str:
    """Path of a redis-server binary, or a clear error saying how to get one."""
    found = shutil.which("redis-server")
    if found is None:
        raise FileNotFoundError(
            "redis-server not found on PATH: run deploy/bootstrap.sh (installs the apt package redis-server)"
        )
    return found


class RedisServer:
    """A Redis server bound to 127.0.0.1 on a free port, data in ``state_dir``.

    ``durable`` turns on the append-only file with an fsync per write, as a production Redis behind
    Lookout should run: a restarted server then has every acknowledged write.
    """

    def __init__(self, state_dir: Path, port: int | None = None, *, durable: bool = False) -> None:
        self.port = port or free_port()
        self.state_dir = state_dir
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        state_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            find_redis_server(),
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "yes" if durable else "no",
            "--appendfsync", "always",
            "--dir", str(state_dir),
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = ManagedProcess("redis", argv, state_dir / "redis.log", ready=self._ping)

    def _ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> RedisServer:
        """Start and wait until it answers PING."""
        self.process.start(timeout_s=20)
        return self

    def stop(self) -> None:
        """Stop by PID."""
        self.process.stop()

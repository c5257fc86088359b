"""Start and stop a chosen set of embedded services as one unit."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from services.embedded.kafka_broker import TansuBroker
from services.embedded.redis_server import RedisServer
from services.embedded.stac_api import PgStacApi
from services.settings import LookoutSettings, load_settings

log = logging.getLogger(__name__)

SERVICES = ("redis", "kafka", "stac")


class LocalStack:
    """Redis, a Kafka-protocol broker and a STAC API on 127.0.0.1, in a temporary state folder.

    The folder (data and logs) is removed on a clean stop; it is kept, and its path logged, when a
    service failed or ``keep_logs`` is set.
    """

    def __init__(
        self,
        services: Iterable[str] = SERVICES,
        *,
        settings: LookoutSettings | None = None,
    ) -> None:
        self.services = tuple(services)
        unknown = sorted(set(self.services) - set(SERVICES))
        if unknown:
            raise ValueError(f"services: unknown {unknown}; choose from {list(SERVICES)}")
        self.settings = settings or load_settings()
        embedded = self.settings.embedded
        root = embedded.state_dir
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.state_dir = Path(tempfile.mkdtemp(prefix="lookout-stack-", dir=root))
        # mkdtemp makes a 0700 folder; PostgreSQL runs as its own user and must reach its sub-folder.
        self.state_dir.chmod(0o711)
        self.keep_logs = embedded.keep_logs
        self.failed = False
        self.redis: RedisServer | None = None
        self.kafka: TansuBroker | None = None
        self.stac: PgStacApi | None = None

    def start(self) -> LocalStack:
        """Start the requested services; on any failure stop what started and re-raise."""
        try:
            if "redis" in self.services:
                self.redis = RedisServer(self.state_dir / "redis").start()
            if "kafka" in self.services:
                self.kafka = TansuBroker(self.state_dir / "kafka").start()
            if "stac" in self.services:
                self.stac = PgStacApi(
                    self.state_dir / "stac",
                    self.settings.embedded.stac_venv,
                    postgres_bin=self.settings.embedded.postgres_bin,
                ).start()
        except BaseException:
            self.failed = True
            self.stop()
            raise
        return self

    def connected_settings(self) -> LookoutSettings:
        """Settings pointing every client at the running services."""
        update: dict[str, object] = {}
        if self.redis is not None:
            update["redis"] = self.settings.redis.model_copy(update={"url": self.redis.url})
        if self.kafka is not None:
            update["kafka"] = self.settings.kafka.model_copy(
                update={"bootstrap_servers": self.kafka.bootstrap_servers}
            )
        if self.stac is not None:
            update["stac"] = self.settings.stac.model_copy(update={"api_url": self.stac.url})
        return self.settings.model_copy(update=update)

    def environment(self) -> dict[str, str]:
        """``LOOKOUT_*`` variables that point a child process at the running services."""
        env: dict[str, str] = {}
        if self.redis is not None:
            env["LOOKOUT_REDIS__URL"] = self.redis.url
        if self.kafka is not None:
            env["LOOKOUT_KAFKA__BOOTSTRAP_SERVERS"] = self.kafka.bootstrap_servers
        if self.stac is not None:
            env["LOOKOUT_STAC__API_URL"] = self.stac.url
        return env

    @property
    def pids(self) -> list[int]:
        """PIDs of every process the stack runs."""
        pids = [s.process.pid for s in (self.redis, self.kafka) if s is not None and s.process.pid]
        if self.stac is not None:
            pids += self.stac.pids
        return pids

    def stop(self) -> None:
        """Stop every service by PID; remove the state folder unless logs must be kept."""
        for service in (self.stac, self.kafka, self.redis):
            if service is None:
                continue
            try:
                service.stop()
            except Exception:
                self.failed = True
                log.exception("stopping %s failed", type(service).__name__)
        self.redis = self.kafka = self.stac = None
        if self.failed or self.keep_logs:
            log.warning("embedded stack logs kept in %s", self.state_dir)
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.failed = True
        self.stop()

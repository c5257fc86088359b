"""One supervised child process: start, wait until healthy, stop by PID, keep its log."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class ServiceStartError(RuntimeError):
    """A service did not become healthy; the message carries the tail of its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll ``check`` until it returns True or ``timeout_s`` passes; return the last result."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file ('' when it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ManagedProcess:
    """A child process in its own session whose output goes to a log file.

    ``ready`` is a health check; ``start`` waits for it and raises :class:`ServiceStartError` with the
    log tail if the process exits or does not become ready in time. ``stop`` sends SIGTERM to the
    process group by PID, then SIGKILL after a grace period, so no grandchild is left behind.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.ready = ready
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running process, None before start / after stop."""
        return self.popen.pid if self.popen is not None else None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the process and wait until ``ready()`` holds."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                start_new_session=True,  # own process group: stop() reaches its children too
            )
        log.info("started %s (pid %s): %s", self.name, self.popen.pid, " ".join(self.argv))

        def healthy_or_dead() -> bool:
            return self.popen is None or self.popen.poll() is not None or self.ready()

        wait_until(healthy_or_dead, timeout_s)
        if self.popen.poll() is not None:
            code = self.popen.returncode
            self.popen = None
            raise ServiceStartError(
                f"{self.name} exited with code {code} during start-up; log {self.log_path}:\n"
                f"{log_tail(self.log_path)}"
            )
        if not self.ready():
            self.stop()
            raise ServiceStartError(
                f"{self.name} was not ready after {timeout_s:.0f} s; log {self.log_path}:\n"
                f"{log_tail(self.log_path)}"
            )

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the process group by PID: SIGTERM, then SIGKILL after ``grace_s``."""
        if self.popen is None:
            return
        popen, self.popen = self.popen, None
        if popen.poll() is None:
            self._signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %s) ignored SIGTERM; killing", self.name, popen.pid)
                self._signal_group(popen.pid, signal.SIGKILL)
                popen.wait(timeout=grace_s)
        # The leader may be gone while children it started still run in its group.
        self._signal_group(popen.pid, signal.SIGKILL)
        log.info("stopped %s (pid %s)", self.name, popen.pid)

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

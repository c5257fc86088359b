"""Serve an ASGI app with uvicorn on a background thread (``lookout api``, ``lookout up``, tests)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI
from sse_starlette.sse import AppStatus

STARTUP_TIMEOUT_S = 30.0
# Open event streams never finish on their own: after this grace uvicorn cancels them.
SHUTDOWN_GRACE_S = 2.0


class ApiServer:
    """uvicorn on ``host:port`` in a daemon thread; ``port=0`` picks a free port (see :attr:`url`)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="lookout-api", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket."""
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> ApiServer:
        """Start serving; returns once the socket listens (raises if uvicorn failed to start)."""
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            self.thread.join(0.02)
            if not self.thread.is_alive():
                raise RuntimeError("the API server stopped during start-up (see the uvicorn log)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start within {STARTUP_TIMEOUT_S:.0f} s")
        return self

    def stop(self) -> None:
        """Ask uvicorn to finish open requests and exit; wait for the thread."""
        self.server.should_exit = True
        # sse-starlette ends open event streams once told the process is exiting; uvicorn tells it only
        # from a signal handler, which a server on a thread does not install. Reset for later servers.
        AppStatus.should_exit = True
        try:
            self.thread.join()
        finally:
            AppStatus.should_exit = False

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

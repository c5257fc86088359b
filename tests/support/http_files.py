"""A folder served over HTTP with Range support (Starlette), as object stores serve COGs."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles


@contextmanager
def serve_folder(folder: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """Serve ``folder`` on 127.0.0.1; yields the base URL and live counters of responses and body bytes.

    ``python -m http.server`` has no Range support, which GDAL needs for windowed COG reads.
    """
    served = {"bytes": 0, "responses": 0}
    # Mounted in an app, so a missing file is a 404 (a bare StaticFiles answers it with a 500).
    files = Starlette(routes=[Mount("/", app=StaticFiles(directory=folder))])

    async def app(scope, receive, send) -> None:
        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                served["responses"] += 1
            elif message["type"] == "http.response.body":
                served["bytes"] += len(message.get("body", b""))
            await send(message)

        await files(scope, receive, counting_send)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="http-files", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the file server on port {port} did not start within 30 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", served
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""A real HTTP reverse proxy on 127.0.0.1 that can be switched to fail, in front of a real server.

Tests put it between a client (the watcher, GDAL) and a real upstream (the pgstac STAC API, a COG
folder) and switch faults on and off while the client runs:

- ``FaultMode.refuse``: the listening socket is closed, so connections are refused;
- ``FaultMode.error``: an HTTP error status (``status``, e.g. 500 or 503) with a small JSON body;
- ``FaultMode.invalid_json``: 200 with a JSON content type and a body cut in the middle;
- ``FaultMode.not_stac``: 200 with well-formed JSON that is no STAC document;
- ``FaultMode.slow``: the real answer, sent only after ``delay_s`` (longer than the client's timeout).

A fault applies to every request, or only to those ``match`` accepts (e.g. only the second page of a
search). The ``Host`` header is passed through, so links the upstream builds point at the proxy and a
client that follows them stays behind it. Every request is recorded with whether a fault hit it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import httpx

# Headers that describe one hop's connection, not the message (RFC 9110 §7.6.1), plus the ones the
# proxy recomputes for the body it sends.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)


class FaultMode(StrEnum):
    """What the proxy does to the requests a fault applies to."""

    none = "none"
    refuse = "refuse"
    error = "error"
    invalid_json = "invalid_json"
    not_stac = "not_stac"
    slow = "slow"


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy answered: method, path (with query string), body, and the fault applied."""

    method: str
    path: str
    body: bytes
    fault: FaultMode


class FaultyProxy:
    """Forwards HTTP requests to ``upstream`` unless a fault is switched on; see the module docstring."""

    def __init__(self, upstream: str, *, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = FaultMode.none
        self.status = 503
        self.delay_s = 0.0
        self.match: Callable[[str, str, bytes], bool] | None = None
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._released = threading.Event()  # set: slow answers stop waiting
        self._client = httpx.Client(timeout=30.0)
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self._listen()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def fail(
        self,
        mode: FaultMode,
        *,
        status: int = 503,
        delay_s: float = 10.0,
        match: Callable[[str, str, bytes], bool] | None = None,
    ) -> None:
        """Switch a fault on (for the requests ``match(method, path, body)`` accepts, or all)."""
        self.heal()
        with self._lock:
            self.mode, self.status, self.delay_s, self.match = mode, status, delay_s, match
            self._released.clear()
        if mode is FaultMode.refuse:
            self._close_listener()

    def heal(self) -> None:
        """Forward everything again; slow answers still waiting are sent at once."""
        with self._lock:
            self.mode, self.match = FaultMode.none, None
            self._released.set()
        if self._server is None:
            self._listen()

    def faulted(self) -> list[ProxiedRequest]:
        """The requests a fault was applied to (refused connections never reach the proxy)."""
        with self._lock:
            return [r for r in self.requests if r.fault is not FaultMode.none]

    def count(self) -> int:
        """How many requests reached the proxy so far."""
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        """Stop listening, release waiting answers and close the upstream client."""
        self._released.set()
        self._close_listener()
        self._client.close()

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listen(self) -> None:
        # The same port on every start: a client configured with the URL must find it again.
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="faulty-proxy", daemon=True)
        self._thread.start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _decide(self, method: str, path: str, body: bytes) -> tuple[FaultMode, int, float]:
        with self._lock:
            applies = self.match is None or self.match(method, path, body)
            mode = self.mode if applies else FaultMode.none
            self.requests.append(ProxiedRequest(method, path, body, mode))
            return mode, self.status, self.delay_s

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        return self._client.request(method, self.upstream + path, headers=headers, content=body)

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads ``proxy.requests`` instead."""

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                mode, status, delay_s = proxy._decide(self.command, self.path, body)
                if mode is FaultMode.error:
                    self._reply(status, b'{"code":"Injected","description":"injected fault"}')
                    return
                if mode is FaultMode.invalid_json:
                    self._reply(200, b'{"type": "FeatureCollection", "features": [{"id": "cut')
                    return
                if mode is FaultMode.not_stac:
                    self._reply(200, json.dumps({"hello": ["not", "a", "STAC", "document"]}).encode())
                    return
                if mode is FaultMode.slow:
                    proxy._released.wait(delay_s)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                try:
                    answer = proxy._forward(self.command, self.path, headers, body)
                except httpx.HTTPError as exc:
                    self._reply(502, json.dumps({"code": "BadGateway", "description": str(exc)}).encode())
                    return
                self._reply(answer.status_code, answer.content, answer.headers)

            def _reply(self, status: int, body: bytes, headers: httpx.Headers | None = None) -> None:
                # The client may have given up (timeout) while a slow answer waited.
                headers = headers or httpx.Headers({"content-type": "application/json"})
                # A HEAD answer has no body but the length of the body a GET would get.
                length = headers.get("content-length") if self.command == "HEAD" else None
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    skip = _HOP_HEADERS | {"content-length", "content-encoding", "date", "server"}
                    for name, value in headers.items():
                        if name.lower() not in skip:
                            self.send_header(name, value)
                    self.send_header("Content-Length", length or str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle

        return Handler


@contextlib.contextmanager
def faulty_proxy(upstream: str) -> Iterator[FaultyProxy]:
    """A FaultyProxy in front of ``upstream``, closed on exit."""
    proxy = FaultyProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()

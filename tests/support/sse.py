"""A Server-Sent Events subscriber running in a thread, as `lookout subscribe` or a dashboard reads."""

import json
import threading
import time

import httpx


class SseSubscriber:
    """Reads ``url`` (an SSE endpoint) in a background thread and keeps every event's id and data.

    Starts from the stream's first entry (``?from=0``) and reconnects with ``Last-Event-ID`` when the
    server ends the response or the read times out, so nothing written between two connections is
    missed (without either, the API starts after the newest entry at connection time).
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = {"Accept": "text/event-stream"} | (headers or {})
        self.events: list[tuple[str, dict]] = []
        self.arrivals: list[float] = []  # time.time() when each event was complete
        self.connections = 0
        self.last_id: str | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sse-subscriber", daemon=True)

    def start(self, timeout_s: float = 30.0) -> "SseSubscriber":
        """Start reading; returns once the first response has started."""
        self._thread.start()
        if not self._connected.wait(timeout_s):
            raise TimeoutError(f"{self.url}: no SSE response within {timeout_s} s")
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            headers = dict(self.headers)
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            try:
                with httpx.stream(
                    "GET",
                    self.url,
                    headers=headers,
                    params={"from": "0"},  # Last-Event-ID wins once an event has been seen
                    timeout=httpx.Timeout(10.0, read=2.0),
                ) as response:
                    response.raise_for_status()
                    self.connections += 1
                    self._connected.set()
                    self._read(response)
            except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ConnectError):
                time.sleep(0.1)  # keep-alives are rarer than the read timeout: reconnect and resume

    def _read(self, response: httpx.Response) -> None:
        event_id, data = None, []
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                self.arrivals.append(time.time())
                self.events.append((event_id or "", json.loads("\n".join(data))))
                self.last_id = event_id
                event_id, data = None, []

    def features(self) -> list[dict]:
        """The data of every event received so far (GeoJSON Features)."""
        return [data for _, data in list(self.events)]

    def wait_for(self, predicate, timeout_s: float, what: str) -> list[dict]:
        """Block until ``predicate(features)`` is true; fails naming ``what`` after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            features = self.features()
            if predicate(features):
                return features
            time.sleep(0.2)
        raise AssertionError(
            f"SSE {self.url}: {what} not seen within {timeout_s} s ({len(self.events)} events)"
        )

    def stop(self) -> None:
        """Stop reading (the thread ends at its next line or read timeout)."""
        self._stop.set()
        self._thread.join(timeout=10)

"""How much a caller may send: requests per tenant (429) and bytes per request body (413).

Rate limits use the ``limits`` library (what slowapi builds on) with its Redis storage, so every API
replica counts against the same windows; the moving-window strategy means "at most N requests in any
window of that length", with no burst at window edges. The counters live under
``RedisKeys.rate_limits()`` on the API's own Redis.

The body limit is a small ASGI middleware of ours rather than FastAPI's ``max_body_size``: that one
answers a too-large Content-Length with a plain-text "Content Too Large" from outside the app's error
handling, so the client is not told the limit; ours answers JSON naming ``api.max_body_bytes``, at once
for a declared length and as soon as a streamed (chunked) body passes the limit.
"""

from __future__ import annotations

import math
import time

import redis
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.contracts import RedisKeys


class RateLimitExceededError(Exception):
    """A tenant went over one of its limits; ``retry_after_s`` is when a request fits again."""

    def __init__(self, tenant: str, limit: str, retry_after_s: int) -> None:
        super().__init__(f"rate limit {limit} of tenant {tenant} exceeded; retry in {retry_after_s} s")
        self.tenant = tenant
        self.limit = limit
        self.retry_after_s = retry_after_s


class TenantRateLimiter:
    """Counts each tenant's requests against ``limit`` (e.g. ``"10/second;600/minute"``) in Redis."""

    def __init__(self, client: redis.Redis, url: str, limit: str, keys: RedisKeys) -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        # The app's connection pool: the limiter talks to the same Redis with the same timeouts.
        storage = RedisStorage(url, connection_pool=client.connection_pool, key_prefix=keys.rate_limits())
        self.limiter = MovingWindowRateLimiter(storage)

    def hit(self, tenant: str) -> None:
        """Count one request of ``tenant``; RateLimitExceededError when it does not fit."""
        for item in self.items:
            if not self.limiter.hit(item, tenant):
                reset_at = self.limiter.get_window_stats(item, tenant).reset_time
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise RateLimitExceededError(tenant, str(item), retry_after)


def body_too_large_message(max_bytes: int) -> str:
    """The 413 detail."""
    return f"request body larger than api.max_body_bytes ({max_bytes} bytes)"


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 ``{"detail": ...}`` (a pure ASGI middleware)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 for a declared oversize body; count a streamed one while the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = body_too_large_message(self.max_bytes)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body; the app's exception
                    # middleware turns it into the JSON 413.
                    raise HTTPException(413, message)
            return event

        await self.app(scope, counted_receive, send)

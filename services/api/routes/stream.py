"""Live detections as Server-Sent Events: ``/queries/{id}/stream``, backed by the query's Redis Stream.

Each event has ``id`` = the Redis Stream entry id, ``event: detection`` and ``data`` = the detection's
GeoJSON Feature. A reconnecting client sends ``Last-Event-ID`` and gets exactly the entries after it;
``?from=0`` replays the whole stream (``Last-Event-ID`` wins when both are given, so an EventSource
opened with ``?from=0`` resumes instead of replaying on reconnect). Without either, the stream starts
after the newest entry at connection time. Keep-alive comments go out every ``sse_keepalive_s``.
Each client reads with its own blocking XREAD (at most ``READ_BLOCK_S`` long) on its own connection.
sse-starlette cancels the read when the client disconnects; on server shutdown it sets the stream's
shutdown event, and the generator returns after its current read, so the response ends cleanly.
"""

# Annotations are evaluated eagerly (no __future__ import): FastAPI resolves the closure's Tenant alias.

import logging
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import pydantic
import redis
import redis.asyncio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.api.context import ApiContext
from services.api.errors import ERROR_RESPONSES
from services.api.filters import parse_stream_id
from services.api.metrics import ApiMetrics
from services.contracts import Detection
from services.settings import RedisSettings

log = logging.getLogger(__name__)

READ_COUNT = 100
READ_BLOCK_S = 1.0
EMPTY_STREAM_ID = "0-0"


def _reader(settings: RedisSettings, block_s: float) -> redis.asyncio.Redis:
    # The socket must outlast a blocking XREAD, hence the longer read timeout.
    return redis.asyncio.Redis.from_url(
        settings.url,
        socket_timeout=block_s + settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
    )


async def detection_events(
    settings: RedisSettings,
    stream: str,
    query_id: str,
    after: str,
    *,
    shutdown: anyio.Event,
    metrics: ApiMetrics,
    block_s: float = READ_BLOCK_S,
) -> AsyncIterator[ServerSentEvent]:
    """SSE events for the entries of ``stream`` after entry id ``after``, until cancelled or shutdown."""
    reader = _reader(settings, block_s)
    metrics.sse_clients.inc()
    log.info("SSE client of query %s reading %s after %s", query_id, stream, after)
    try:
        while not shutdown.is_set():
            try:
                answer = await reader.xread({stream: after}, count=READ_COUNT, block=int(block_s * 1000))
            except redis.RedisError as exc:
                # End the response cleanly: the client reconnects with Last-Event-ID and loses nothing.
                log.warning(
                    "SSE client of query %s: Redis error at %s, closing the stream: %s", query_id, after, exc
                )
                return
            for _stream, entries in answer:
                for raw_id, fields in entries:
                    after = raw_id.decode()
                    try:
                        detection = Detection.model_validate_json(fields[b"feature"])
                    except (KeyError, pydantic.ValidationError) as exc:
                        log.error(
                            "query %s: stream entry %s is not a detection, skipped: %s", query_id, after, exc
                        )
                        continue
                    metrics.detections_served.labels("stream").inc()
                    yield ServerSentEvent(data=detection.feature_json().decode(), id=after, event="detection")
    finally:
        metrics.sse_clients.dec()
        # Cancellation (client gone) ends the generator too: shield the close so the socket is released.
        with anyio.CancelScope(shield=True):
            await reader.aclose()
        log.info("SSE client of query %s left at %s", query_id, after)


def build_router(ctx: ApiContext) -> APIRouter:
    """The SSE route."""
    router = APIRouter(tags=["stream"], responses=ERROR_RESPONSES)
    Tenant = Annotated[str, Depends(ctx.tenant)]

    def newest_entry(stream: str) -> str:
        newest = ctx.redis.xrevrange(stream, count=1)
        return newest[0][0].decode() if newest else EMPTY_STREAM_ID

    events_doc = (
        "Server-Sent Events: `event: detection`, `id` = the Redis Stream entry id, `data` = the "
        "detection as a GeoJSON Feature (the DetectionFeature schema)"
    )

    @router.get(
        "/queries/{query_id}/stream",
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": events_doc}},
    )
    async def stream_detections(
        query_id: str,
        tenant: Tenant,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        from_: Annotated[
            str | None, Query(alias="from", description="Stream entry id to replay after; 0 = all")
        ] = None,
    ) -> EventSourceResponse:
        """Server-Sent Events of the query's detections (see the module docstring for positions)."""
        await run_in_threadpool(ctx.queries.get, query_id, tenant=tenant)
        stream = ctx.keys.detection_stream(query_id)
        if last_event_id is not None:
            after = parse_stream_id(last_event_id, "Last-Event-ID")
        elif from_ is not None:
            after = parse_stream_id(from_, "from")
        else:
            # Resolved before the response starts, so nothing written after the client connected is missed.
            after = await run_in_threadpool(newest_entry, stream)
        shutdown = anyio.Event()
        events = detection_events(
            ctx.redis_settings, stream, query_id, after, shutdown=shutdown, metrics=ctx.metrics
        )
        return EventSourceResponse(
            events,
            ping=ctx.settings.sse_keepalive_s,
            shutdown_event=shutdown,
            shutdown_grace_period=READ_BLOCK_S + 1.0,
        )

    return router

"""``/healthz`` (Redis ping + the component statuses given at app creation) and Prometheus ``/metrics``."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import APIRouter, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.api.context import ApiContext
from services.api.metrics import DeadLetterCounts
from services.api.responses import Health

log = logging.getLogger(__name__)


def build_router(ctx: ApiContext) -> APIRouter:
    """Health and metrics routes."""
    router = APIRouter(tags=["health"])
    # Read from Redis at each scrape; a registry of this router's own, so apps sharing ApiMetrics do not
    # register it twice.
    stored = CollectorRegistry()
    stored.register(DeadLetterCounts(ctx.skipped))

    def redis_status() -> dict[str, Any]:
        try:
            return {"ok": bool(ctx.redis.ping())}
        except redis.RedisError as exc:
            log.warning("health: Redis ping failed: %s", exc)
            return {"ok": False, "error": str(exc)}

    @router.get(
        "/healthz",
        response_model=Health,
        responses={503: {"model": Health, "description": "Redis or a component is not ok"}},
    )
    def healthz() -> JSONResponse:
        """200 when Redis answers and no component reports ``ok: false``; 503 otherwise."""
        components: dict[str, Any] = {"redis": redis_status()}
        for name, status in ctx.components.items():
            try:
                components[name] = dict(status())
            except Exception as exc:  # a broken status callback must not break the health route
                log.exception("health: component %s status failed", name)
                components[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        healthy = all(c.get("ok", True) is not False for c in components.values())
        body = Health(status="ok" if healthy else "unhealthy", components=jsonable_encoder(components))
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    def metrics() -> Response:
        """Prometheus text exposition of this app's registry and of the counts the dispatchers keep in
        Redis (dead-lettered scenes by code)."""
        body = generate_latest(ctx.metrics.registry) + generate_latest(stored)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router

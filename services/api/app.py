"""The FastAPI application factory.

Cross-cutting concerns arrive as data (stac-fastapi style): the tenant dependency (by default the one
``api.auth_mode`` asks for, behind the per-tenant rate limit), the error -> status rules, the component
status callbacks shown by ``/healthz``, the metrics registry and the Redis key layout. Request bodies
over ``api.max_body_bytes`` are refused with 413. Routers are built from one :class:`ApiContext`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import redis
from fastapi import FastAPI

from services.adapters.redis_client import make_redis
from services.api.api_keys import ApiKeyStore
from services.api.context import ApiContext, ComponentStatus
from services.api.errors import DEFAULT_ERROR_RULES, ErrorRule, add_error_handlers
from services.api.metrics import ApiMetrics, RequestMetricsMiddleware
from services.api.request_limits import BodySizeLimitMiddleware, TenantRateLimiter
from services.api.routes import dashboard, detections, health, ogc, queries, stream
from services.api.tenancy import TenantDependency, tenant_dependency
from services.contracts import RedisKeys
from services.scenes import SceneInputs
from services.settings import LookoutSettings
from services.store import DetectionStore, QueryStore, SkippedSceneStore


def settings_tenant(settings: LookoutSettings, client: redis.Redis, keys: RedisKeys) -> TenantDependency:
    """The tenant dependency ``settings.api`` asks for: its auth mode, behind its per-tenant rate limit."""
    api = settings.api
    key_store = None
    if api.auth_mode == "api_key" and api.key_pepper is not None:
        key_store = ApiKeyStore(client, keys, api.key_pepper.get_secret_value())
    limiter = None
    if api.rate_limit is not None:
        limiter = TenantRateLimiter(client, settings.redis.url, api.rate_limit, keys)
    return tenant_dependency(api, key_store=key_store, limiter=limiter)


def create_app(
    settings: LookoutSettings,
    *,
    redis_client: redis.Redis | None = None,
    keys: RedisKeys | None = None,
    tenant: TenantDependency | None = None,
    error_rules: Mapping[type[Exception], ErrorRule] = DEFAULT_ERROR_RULES,
    components: Mapping[str, ComponentStatus] | None = None,
    metrics: ApiMetrics | None = None,
) -> FastAPI:
    """The Lookout HTTP API over the query and detection stores.

    ``redis_client`` defaults to one made from ``settings.redis`` (closed when the app shuts down; an
    injected client stays the caller's). ``tenant`` is a FastAPI dependency returning the caller's
    tenant (default: :func:`settings_tenant`); ``components`` maps names to status callbacks (e.g. the
    watcher's ``status``) that ``/healthz`` reports; ``metrics`` can be shared with a
    :class:`WebhookDispatcher`.
    """
    owned = redis_client is None
    client = make_redis(settings.redis) if redis_client is None else redis_client
    layout = keys or settings.redis_keys()
    if tenant is None:
        tenant = settings_tenant(settings, client, layout)
    ctx = ApiContext(
        settings=settings.api,
        redis_settings=settings.redis,
        redis=client,
        keys=layout,
        queries=QueryStore(client, layout),
        detections=DetectionStore(client, layout),
        skipped=SkippedSceneStore(client, layout),
        metrics=metrics or ApiMetrics(),
        tenant=tenant,
        components=dict(components or {}),
        scenes=SceneInputs.from_settings(settings.dispatcher, settings.watcher.source_list()),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            client.close()

    app = FastAPI(
        title="Lookout",
        summary="Standing natural-language queries over a live satellite feed",
        lifespan=lifespan,
    )
    app.state.context = ctx
    add_error_handlers(app, error_rules)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=ctx.metrics)
    for module in (queries, detections, stream, ogc, health, dashboard):
        app.include_router(module.build_router(ctx))
    return app

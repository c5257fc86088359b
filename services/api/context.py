"""What every route needs, built once by ``create_app`` and handed to each router factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from services.api.metrics import ApiMetrics
from services.api.tenancy import TenantDependency
from services.contracts import RedisKeys
from services.scenes import SceneInputs
from services.settings import ApiSettings, RedisSettings
from services.store import DetectionStore, QueryStore, SkippedSceneStore

ComponentStatus = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class ApiContext:
    """Settings, stores, metrics and the injected cross-cutting pieces (tenant, component health)."""

    settings: ApiSettings
    redis_settings: RedisSettings
    redis: redis.Redis
    keys: RedisKeys
    queries: QueryStore
    detections: DetectionStore
    skipped: SkippedSceneStore  # scenes the dispatcher gave up on, per query; dead letters by code
    metrics: ApiMetrics
    tenant: TenantDependency
    components: Mapping[str, ComponentStatus]
    scenes: SceneInputs  # how quicklooks read scenes: the dispatcher's asset keys, allow-list, timeout

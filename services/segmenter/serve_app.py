"""The segmenter as a Ray Serve application: DANet replicas with dynamic batching and a text cache.

Each ``segment(tile, text)`` call is one request; ``@serve.batch`` gathers concurrent requests into one
forward pass (see :mod:`services.segmenter.batching`). Replica resources, replica count or autoscaling,
and the batch parameters come from :class:`services.settings.SegmenterSettings`; the batch parameters
travel as Serve ``user_config`` too, so a Serve config (KubeRay ``serveConfigV2``) can retune them in
place. Import path for Serve config files: ``services.segmenter.serve_app:app_builder``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import ray
import torch
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from services.adapters.redis_client import make_redis
from services.contracts import RedisKeys
from services.segmenter.batching import BatchSegmenter, check_request
from services.segmenter.model_loading import build_predictor, select_device
from services.segmenter.text_cache import TextEmbeddingCache
from services.settings import LookoutSettings, RedisSettings, SegmenterSettings, load_settings

log = logging.getLogger(__name__)

DEPLOYMENT_NAME = "Segmenter"
# One batch runs while the next one gathers, so a replica accepts two batches' worth of requests.
_ONGOING_BATCHES = 2


class BatchConfig(BaseModel):
    """The deployment's ``user_config``: dynamic-batching parameters, changeable without a restart."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(gt=0)
    batch_wait_timeout_s: float = Field(ge=0)


@serve.deployment(name=DEPLOYMENT_NAME)
class SegmenterDeployment:
    """DANet behind ``segment(tile, text)``; concurrent requests run as one batch."""

    def __init__(self, settings: SegmenterSettings, redis_settings: RedisSettings, keys: RedisKeys) -> None:
        self._runner: BatchSegmenter | None = None
        if select_device(settings).type == "cuda" and 0 < settings.num_gpus < 1:
            # Ray schedules GPU fractions but does not isolate memory: keep to this replica's share.
            torch.cuda.set_per_process_memory_fraction(settings.num_gpus)
        predictor, loaded = build_predictor(settings)
        cache = None
        if settings.text_cache.enabled:
            cache = TextEmbeddingCache(
                make_redis(redis_settings),
                keys,
                loaded.text_encoder_id,
                loaded.text_encoder_version,
                ttl_s=settings.text_cache.ttl_s,
                local_entries=settings.text_cache.local_entries,
            )
        self._info = {
            "model_name": loaded.model_name,
            "input_size": predictor.input_size,
            "input": predictor.contract.model_dump(mode="json"),
            "device": str(predictor.device),
        }
        self._text_encoder = f"{loaded.text_encoder_id}:{loaded.text_encoder_version}"
        self._batch_config = batch_config(settings)
        self.reconfigure({})
        self._runner = BatchSegmenter(predictor, cache)
        log.info("segmenter replica ready: %s, text encoder %s", self._info, self._text_encoder)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply new batch parameters (Serve calls this with the deployment's ``user_config``); keys left
        out keep their current values."""
        config = BatchConfig.model_validate(self._batch_config.model_dump() | dict(user_config))
        self._segment_batch.set_max_batch_size(config.max_batch_size)
        self._segment_batch.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self._batch_config = config

    async def segment(self, tile: np.ndarray, text: str) -> np.ndarray:
        """Foreground probability (S, S) float32 of a uint8 RGB tile (3, S, S) for ``text``; the tile is
        normalised with the model's input contract.

        Raises:
            ValueError: the tile has the wrong shape or dtype, or the text is empty.
        """
        checked = check_request(tile, text, self._info["input_size"])
        return await self._segment_batch(checked, text)

    @serve.batch
    async def _segment_batch(self, tiles: list[np.ndarray], texts: list[str]) -> list[np.ndarray]:
        # The forward pass runs in a worker thread so the event loop keeps gathering the next batch.
        return await asyncio.to_thread(self._runner.segment, tiles, texts)

    def model_info(self) -> dict[str, Any]:
        """``model_name``, ``input_size``, ``input`` (the model's input contract) and ``device`` of this
        replica."""
        return dict(self._info)

    def stats(self) -> dict[str, Any]:
        """This replica's actor name, batch sizes, batch parameters and text-cache counters."""
        # Outside Serve (a replica class built directly) there is no actor, and asking would start Ray.
        name = ray.get_runtime_context().get_actor_name() if ray.is_initialized() else None
        replica = {"replica": name, "text_encoder": self._text_encoder}
        return self._runner.stats() | replica | self._batch_config.model_dump()

    def check_health(self) -> None:
        """Serve's periodic health check: fails until the model is loaded."""
        if self._runner is None:
            raise RuntimeError("segmenter replica: the model is not loaded")


def batch_config(settings: SegmenterSettings) -> BatchConfig:
    """The batch parameters the settings ask for."""
    return BatchConfig(
        max_batch_size=settings.max_batch_size, batch_wait_timeout_s=settings.batch_wait_timeout_s
    )


def deployment_options(settings: SegmenterSettings) -> dict[str, Any]:
    """Serve ``.options(...)`` of the deployment: replica resources, replicas or autoscaling, batching."""
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": settings.num_cpus, "num_gpus": settings.num_gpus},
        # Fewer would keep a replica from ever holding a full batch.
        "max_ongoing_requests": _ONGOING_BATCHES * settings.max_batch_size,
        "user_config": batch_config(settings).model_dump(),
    }
    if settings.autoscaling is not None:
        options["autoscaling_config"] = settings.autoscaling.model_dump()
    else:
        options["num_replicas"] = settings.num_replicas or 1
    return options


def build_app(settings: LookoutSettings, *, keys: RedisKeys | None = None) -> Application:
    """The segmenter application for ``settings``; ``keys`` (default: ``settings.redis_keys()``, the
    ``namespace.redis_prefix``) lay out the text-embedding cache in Redis."""
    segmenter = settings.segmenter
    deployment = SegmenterDeployment.options(**deployment_options(segmenter))
    return deployment.bind(segmenter, settings.redis, keys or settings.redis_keys())


def app_builder(args: dict[str, Any]) -> Application:
    """Serve application builder: settings from the config file and environment, ``args`` overriding keys
    of the ``segmenter`` section (e.g. ``{"max_batch_size": 16}``)."""
    return build_app(load_settings(segmenter=dict(args)))

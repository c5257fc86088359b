"""What every benchmark that starts Ray needs: offline model loading and the loopback-only namespace."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from services.composition import ComponentThreads, Composition
from services.segmenter import Segmenter
from services.settings import LookoutSettings, load_settings


def offline_ray_environment() -> None:
    """Nothing may reach a model hub; Ray must not write an auth token into the home folder; Serve's
    router gets more than its default 0.1 s to hear a replica's queue length on a few busy CPUs (each
    miss costs a retry and a warning). Call before importing ray."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S", "1.0")


def require_loopback_namespace() -> None:
    """Refuse to start Ray where it could listen on a non-loopback interface."""
    others = [name for name in psutil.net_if_addrs() if name != "lo"]
    if others:
        sys.exit(f"interfaces {others} exist: run this inside deploy/netns.sh (Ray listens on all of them)")


def service_settings(preset: str | None) -> LookoutSettings:
    """The configured settings (configs/service.yaml + LOOKOUT_*), with the segmenter's model replaced
    by a preset's (random or pretrained towers, no checkpoint) when ``preset`` is given."""
    settings = load_settings()
    if preset is None:
        return settings
    model = {"checkpoint": None, "preset": preset}
    return settings.model_copy(update={"segmenter": settings.segmenter.model_copy(update=model)})


@contextmanager
def pipeline_running(settings: LookoutSettings, segmenter: Segmenter) -> Iterator[None]:
    """The watcher and the dispatcher of ``settings`` looping in threads, built and run as ``lookout up``
    runs them, until the block ends; then stopped, joined and closed."""
    composition = Composition(settings)
    threads = ComponentThreads(join_timeout_s=60)
    try:
        threads.start("watcher", composition.watcher())
        threads.start("dispatcher", composition.dispatcher(segmenter))
        yield
    finally:
        threads.stop()

"""The dispatcher: consumes new scenes, matches standing queries, segments only scene ∩ AOI through the
segmenter, stores detections idempotently, produces them to the detections topic, then commits.

Pure logic: `matching` (which queries a scene concerns), `planning` (which tiles, shared between
queries), `change` (new / persisting), `asset_policy` (which URLs may be read), `raster_checks`
(georeference, bands), `failures` (permanent or transient). I/O: `items` (the STAC item and its image
asset), `scene_processor` (windowed reads, segmenter calls, stitching, vectorizing, store), `publisher`
(detections topic), `dlq` and `attempts` (dead letters and the retry counter), `consumer` (the Kafka
loop).

The names below load on first use, so a process that only needs the torch-free parts (the API's
quicklooks use `asset_policy`) does not import the model stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.dispatcher.asset_policy import AssetPolicy
    from services.dispatcher.consumer import Dispatcher, Outcome, RecordOutcome
    from services.dispatcher.failures import PermanentSceneError, TransientSceneError
    from services.dispatcher.scene_processor import QueryResult, SceneProcessor, SceneReport

_EXPORTS = {
    "AssetPolicy": "asset_policy",
    "Dispatcher": "consumer",
    "Outcome": "consumer",
    "RecordOutcome": "consumer",
    "PermanentSceneError": "failures",
    "TransientSceneError": "failures",
    "QueryResult": "scene_processor",
    "SceneProcessor": "scene_processor",
    "SceneReport": "scene_processor",
}

__all__ = [
    "AssetPolicy",
    "Dispatcher",
    "Outcome",
    "PermanentSceneError",
    "QueryResult",
    "RecordOutcome",
    "SceneProcessor",
    "SceneReport",
    "TransientSceneError",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)

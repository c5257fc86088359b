"""Redis-backed stores of queries and detections (the only code that knows the key layout's meaning)."""

from services.store.detections import DetectionStore, SceneResult
from services.store.queries import QueryNotFoundError, QueryStore
from services.store.skipped import SkippedSceneStore

__all__ = ["DetectionStore", "QueryNotFoundError", "QueryStore", "SceneResult", "SkippedSceneStore"]

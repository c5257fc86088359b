"""The contracts every Lookout component shares: defined once, typed, versioned.

Query, SceneMessage and Detection are pydantic models; topic names and Redis key builders live here too,
so no component spells a topic or key by hand.
"""

from services.contracts.detection import (
    ChangeStatus,
    Detection,
    DetectionFeature,
    DetectionGeometry,
    DetectionProperties,
    detection_id,
)
from services.contracts.keys import RedisKeys, normalize_text
from services.contracts.query import Delivery, Query, QueryCreate, QueryFilters, QueryStatus, QueryUpdate
from services.contracts.scene import SceneMessage, item_time
from services.contracts.skipped import SkippedScene, SkippedScenes
from services.contracts.topics import Topics

__all__ = [
    "ChangeStatus",
    "Delivery",
    "Detection",
    "DetectionFeature",
    "DetectionGeometry",
    "DetectionProperties",
    "Query",
    "QueryCreate",
    "QueryFilters",
    "QueryStatus",
    "QueryUpdate",
    "RedisKeys",
    "SceneMessage",
    "SkippedScene",
    "SkippedScenes",
    "Topics",
    "detection_id",
    "item_time",
    "normalize_text",
]

"""The dispatcher: consumes new scenes, matches standing queries, segments only scene ∩ AOI through the
segmenter, stores detections idempotently, produces them to the detections topic, then commits.

Pure logic: `matching` (which queries a scene concerns), `planning` (which tiles, shared between
queries), `change` (new / persisting). I/O: `scene_processor` (windowed reads, segmenter calls,
stitching, vectorizing, store), `publisher` (detections topic), `dlq` and `attempts` (dead letters and
the retry counter), `consumer` (the Kafka loop). The scene's inputs (its STAC item, the image asset,
which URLs may be read, the checks on the image, permanent or transient failures) come from
`services.scenes`, which the API's quicklooks share.
"""

from services.dispatcher.consumer import Dispatcher, Outcome, RecordOutcome
from services.dispatcher.scene_processor import QueryResult, SceneProcessor, SceneReport

__all__ = [
    "Dispatcher",
    "Outcome",
    "QueryResult",
    "RecordOutcome",
    "SceneProcessor",
    "SceneReport",
]

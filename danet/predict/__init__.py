"""Prediction on images of any size: tiled, batched model inference blended into one probability map
per expression (`Predictor`; `predict_queries` runs many expressions over one image and is the path the
dispatcher shares), overlay pictures, and `predict_file` writing overlay PNG and CRS84 GeoJSON."""

from danet.predict.files import PredictionResult, predict_file
from danet.predict.multi_query import (
    MultiQueryPrediction,
    PredictionMap,
    QueryTilePlan,
    TilePair,
    TileSegment,
    batch_pairs,
    plan_query_tiles,
    predict_queries,
    tile_uint8,
)
from danet.predict.overlay import MAX_OVERLAY_SIDE, display_shape, read_display_image, render_overlay
from danet.predict.predictor import Predictor

__all__ = [
    "MAX_OVERLAY_SIDE",
    "MultiQueryPrediction",
    "PredictionMap",
    "PredictionResult",
    "Predictor",
    "QueryTilePlan",
    "TilePair",
    "TileSegment",
    "batch_pairs",
    "display_shape",
    "plan_query_tiles",
    "predict_file",
    "predict_queries",
    "read_display_image",
    "render_overlay",
    "tile_uint8",
]

"""Prediction on images of any size: tiled, batched model inference blended into one probability map
(`Predictor`), overlay pictures, and `predict_file` writing overlay PNG and CRS84 GeoJSON."""

from danet.predict.files import PredictionResult, predict_file
from danet.predict.overlay import MAX_OVERLAY_SIDE, display_shape, read_display_image, render_overlay
from danet.predict.predictor import PredictionMap, Predictor, normalize_rgb, tile_input

__all__ = [
    "MAX_OVERLAY_SIDE",
    "PredictionMap",
    "PredictionResult",
    "Predictor",
    "display_shape",
    "normalize_rgb",
    "predict_file",
    "read_display_image",
    "render_overlay",
    "tile_input",
]

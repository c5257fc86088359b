"""The segmenter: DANet behind one small interface, in process or on Ray Serve.

The Ray Serve parts (``serve_app.build_app``/``app_builder``, ``client.ServeSegmenter``) are imported
from their modules, so that importing this package does not load Ray Serve.
"""

from services.segmenter.model_loading import LoadedModel, build_local_segmenter, load_model
from services.segmenter.protocol import LocalSegmenter, Segmenter
from services.segmenter.text_cache import CacheStats, TextEmbedding, TextEmbeddingCache

__all__ = [
    "CacheStats",
    "LoadedModel",
    "LocalSegmenter",
    "Segmenter",
    "TextEmbedding",
    "TextEmbeddingCache",
    "build_local_segmenter",
    "load_model",
]

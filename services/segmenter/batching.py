"""One model batch from many single (tile, text) requests: the tiles are stacked, each unique text is
encoded once (or taken from the text-embedding cache), and the model runs once. No Ray here: the Serve
deployment gathers the requests, this module does the work.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from danet.predict import Predictor
from services.contracts import normalize_text
from services.segmenter.protocol import check_tiles
from services.segmenter.text_cache import TextEmbedding, TextEmbeddingCache, split_features, stack_features


@dataclass(frozen=True)
class TextPlan:
    """The unique normalized texts of a batch (first-seen order) and, per request, its text's position."""

    unique: list[str]
    index: list[int]


def plan_texts(texts: Sequence[str]) -> TextPlan:
    """Group a batch's texts: texts that normalize alike (case, spacing) are encoded once."""
    positions: dict[str, int] = {}
    index = [positions.setdefault(normalize_text(text), len(positions)) for text in texts]
    return TextPlan(unique=list(positions), index=index)


def check_request(tile: np.ndarray, text: str, input_size: int) -> np.ndarray:
    """A request's tile as contiguous uint8 RGB (3, S, S), the segmenter's wire format.

    Raises:
        ValueError: the tile has another dtype or shape, or the text is empty (the message names the field).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text: need a non-empty expression, got {text!r}")
    (checked,) = check_tiles(np.asarray(tile)[None], input_size)
    return np.ascontiguousarray(checked)


class BatchSegmenter:
    """Segments a batch of (tile, text) pairs with one forward pass and records the batch sizes it saw.

    One batch runs at a time (in a worker thread); ``stats`` may be read from another thread meanwhile.
    """

    def __init__(self, predictor: Predictor, cache: TextEmbeddingCache | None = None) -> None:
        self.predictor = predictor
        self.cache = cache
        self.batch_sizes: Counter[int] = Counter()
        self.texts_encoded = 0
        self.busy_s = 0.0
        self.text_s = 0.0
        self._stats_lock = threading.Lock()

    def segment(self, tiles: Sequence[np.ndarray], texts: Sequence[str]) -> list[np.ndarray]:
        """Foreground probabilities (S, S) float32, one per (checked, uint8) tile and text, in request order;
        the predictor normalises the tiles with its model's input contract."""
        if len(tiles) != len(texts):
            raise ValueError(f"texts: need one text per tile ({len(tiles)}), got {len(texts)}")
        if not tiles:
            return []
        start = time.perf_counter()
        plan = plan_texts(texts)
        if self.cache is not None:
            embeddings = self.cache.get_or_encode(plan.unique, self._encode)
        else:
            embeddings = self._encode(plan.unique)
        features = stack_features([embeddings[i] for i in plan.index])
        text_done = time.perf_counter()
        probabilities = self.predictor.predict_batch(np.stack(tiles), text_features=features).numpy()
        with self._stats_lock:
            self.batch_sizes[len(tiles)] += 1
            self.text_s += text_done - start
            self.busy_s += time.perf_counter() - start
        return list(probabilities)

    def stats(self) -> dict[str, object]:
        """Batches by size, requests, texts encoded, seconds spent in batches (``busy_s``) and on their
        text features (``text_s``), and the cache counters (None without a cache)."""
        with self._stats_lock:
            sizes = dict(sorted(self.batch_sizes.items()))
            busy_s, text_s = self.busy_s, self.text_s
        return {
            "batches": sum(sizes.values()),
            "requests": sum(size * count for size, count in sizes.items()),
            "batch_sizes": sizes,
            "texts_encoded": self.texts_encoded,
            "busy_s": busy_s,
            "text_s": text_s,
            "text_cache": self.cache.stats.as_dict() if self.cache is not None else None,
        }

    def _encode(self, texts: list[str]) -> list[TextEmbedding]:
        self.texts_encoded += len(texts)
        return split_features(self.predictor.text_features(texts))

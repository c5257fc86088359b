"""What the dispatcher needs from a segmenter, and the in-process implementation.

Tiles travel already normalized (float32, 3 x S x S, ImageNet mean/std), each paired with the text of
the query it is segmented for, so one batch can mix tiles of several scenes and queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from danet.predict import Predictor


@runtime_checkable
class Segmenter(Protocol):
    """Foreground probabilities for (tile, text) pairs."""

    @property
    def input_size(self) -> int:
        """Side S of the square tiles the model takes."""
        ...

    @property
    def model_name(self) -> str:
        """Model name and version, recorded in every detection (and part of its id)."""
        ...

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``tiles`` (B, 3, S, S) float32 normalized, one text per tile -> probabilities (B, S, S) float32."""
        ...


class LocalSegmenter:
    """Runs a :class:`danet.predict.Predictor` in this process (tests, single-process tools)."""

    def __init__(self, predictor: Predictor, model_name: str) -> None:
        self.predictor = predictor
        self._model_name = model_name

    @property
    def input_size(self) -> int:
        """Side S of the square tiles the model takes."""
        return self.predictor.input_size

    @property
    def model_name(self) -> str:
        """Model name and version."""
        return self._model_name

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Probabilities for (tile, text) pairs, in batches of the predictor's batch size."""
        if len(tiles) != len(texts):
            raise ValueError(f"texts: need one text per tile ({len(tiles)}), got {len(texts)}")
        out = []
        size = self.predictor.batch_size
        for start in range(0, len(tiles), size):
            batch = torch.from_numpy(np.ascontiguousarray(tiles[start : start + size]))
            out.append(self.predictor.predict_batch(batch, list(texts[start : start + size])).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.input_size, self.input_size), np.float32)

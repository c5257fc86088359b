"""What the dispatcher needs from a segmenter, and the in-process implementation.

Tiles travel as uint8 RGB (3 x S x S, one byte per channel, as the imagery stores them), each paired with
the text of the query it is segmented for, so one batch can mix tiles of several scenes and queries. The
segmenter normalises them with its model's own input contract (``DANetConfig.input``), which it also
tells callers: the tile size, the colour padding and nodata get, and the ground sample distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from danet.config import InputContract
from danet.predict import Predictor


@runtime_checkable
class Segmenter(Protocol):
    """Foreground probabilities for (tile, text) pairs."""

    @property
    def input_size(self) -> int:
        """Side S of the square tiles the model takes."""
        ...

    @property
    def input_contract(self) -> InputContract:
        """The model's input contract: normalisation, tile size (``size`` = ``input_size``) and GSD."""
        ...

    @property
    def model_name(self) -> str:
        """Model name and version, recorded in every detection (and part of its id)."""
        ...

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``tiles`` (B, 3, S, S) uint8 RGB, one text per tile -> probabilities (B, S, S) float32."""
        ...


def check_tiles(tiles: np.ndarray, input_size: int) -> np.ndarray:
    """``tiles`` as a uint8 (B, 3, S, S) array, the segmenter's wire format.

    Raises:
        ValueError: another dtype (e.g. tiles normalised by the caller) or shape; the message names both.
    """
    if len(tiles) == 0:
        return np.zeros((0, 3, input_size, input_size), np.uint8)
    tiles = np.asarray(tiles)
    if tiles.dtype != np.uint8:
        raise ValueError(
            f"tiles: expected uint8 RGB (the segmenter normalises with its model's input contract), "
            f"got dtype {tiles.dtype}"
        )
    if tiles.ndim != 4 or tiles.shape[1:] != (3, input_size, input_size):
        raise ValueError(f"tiles: expected shape (B, 3, {input_size}, {input_size}), got {tiles.shape}")
    return tiles


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
    def input_contract(self) -> InputContract:
        """The model's input contract, with the predictor's tile size."""
        return self.predictor.contract

    @property
    def model_name(self) -> str:
        """Model name and version."""
        return self._model_name

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Probabilities for (uint8 tile, text) pairs, in batches of the predictor's batch size."""
        return self.predictor.segment(check_tiles(tiles, self.input_size), texts)

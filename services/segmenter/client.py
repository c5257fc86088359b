"""The :class:`~services.segmenter.protocol.Segmenter` the dispatcher uses when DANet runs on Ray Serve."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle


class ServeSegmenter:
    """Sends each (tile, text) pair as its own request, all at once, so the replicas' dynamic batching
    groups them (with pairs from other callers); results come back in request order.

    ``timeout_s`` bounds the wait for each result (None waits for ever).
    """

    def __init__(self, handle: DeploymentHandle, *, timeout_s: float | None = 300.0) -> None:
        self.handle = handle
        self.timeout_s = timeout_s

    @classmethod
    def from_app(cls, app_name: str = "segmenter", *, timeout_s: float | None = 300.0) -> ServeSegmenter:
        """The segmenter of a running Serve application (this process must be connected to its Ray)."""
        return cls(serve.get_app_handle(app_name), timeout_s=timeout_s)

    @cached_property
    def model_info(self) -> dict[str, Any]:
        """``model_name``, ``input_size`` and ``device`` of the deployment (asked once)."""
        return self.handle.model_info.remote().result(timeout_s=self.timeout_s)

    @property
    def input_size(self) -> int:
        """Side S of the square tiles the model takes."""
        return int(self.model_info["input_size"])

    @property
    def model_name(self) -> str:
        """Model name and version."""
        return str(self.model_info["model_name"])

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``tiles`` (B, 3, S, S) float32 normalized, one text per tile -> probabilities (B, S, S) float32.

        Raises:
            ValueError: the tiles and texts do not pair up, or the deployment rejected a request.
        """
        if len(tiles) != len(texts):
            raise ValueError(f"texts: need one text per tile ({len(tiles)}), got {len(texts)}")
        if len(tiles) == 0:
            return np.zeros((0, self.input_size, self.input_size), np.float32)
        responses = [
            self.handle.segment.remote(np.ascontiguousarray(tile, dtype=np.float32), text)
            for tile, text in zip(tiles, texts, strict=True)
        ]
        return np.stack([response.result(timeout_s=self.timeout_s) for response in responses])

"""The :class:`~services.segmenter.protocol.Segmenter` the dispatcher uses when DANet runs on Ray Serve."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from danet.config import InputContract
from services.segmenter.protocol import check_tiles

log = logging.getLogger(__name__)


class ServeSegmenter:
    """Sends each (tile, text) pair as its own request, all at once, so the replicas' dynamic batching
    groups them (with pairs from other callers); results come back in request order.

    ``timeout_s`` bounds the wait for each result (None waits for ever). A request whose replica died
    (killed, out of memory, its node gone) is sent again, up to ``replica_retries`` times: Serve routes it
    to a live replica, or holds it until the controller has started a replacement. A request is pure
    (a tile and a text in, probabilities out), so sending it again is safe.
    """

    def __init__(
        self, handle: DeploymentHandle, *, timeout_s: float | None = 300.0, replica_retries: int = 2
    ) -> None:
        self.handle = handle
        self.timeout_s = timeout_s
        self.replica_retries = replica_retries
        self.resent = 0

    @classmethod
    def from_app(cls, app_name: str = "segmenter", *, timeout_s: float | None = 300.0) -> ServeSegmenter:
        """The segmenter of a running Serve application (this process must be connected to its Ray)."""
        return cls(serve.get_app_handle(app_name), timeout_s=timeout_s)

    def _result(self, response: DeploymentResponse, tile: np.ndarray, text: str) -> np.ndarray:
        resends = 0
        while True:
            try:
                return response.result(timeout_s=self.timeout_s)
            except RayActorError as exc:
                if resends == self.replica_retries:
                    raise
                resends += 1
                self.resent += 1
                log.warning("segmenter replica lost (%s); sending the request again", type(exc).__name__)
                response = self.handle.segment.remote(tile, text)

    @cached_property
    def model_info(self) -> dict[str, Any]:
        """``model_name``, ``input_size``, ``input`` and ``device`` of the deployment (asked once)."""
        return self.handle.model_info.remote().result(timeout_s=self.timeout_s)

    @property
    def input_size(self) -> int:
        """Side S of the square tiles the model takes."""
        return int(self.model_info["input_size"])

    @cached_property
    def input_contract(self) -> InputContract:
        """The deployed model's input contract: normalisation, tile size and GSD."""
        return InputContract.model_validate(self.model_info["input"])

    @property
    def model_name(self) -> str:
        """Model name and version."""
        return str(self.model_info["model_name"])

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """``tiles`` (B, 3, S, S) uint8 RGB, one text per tile -> probabilities (B, S, S) float32.

        Raises:
            ValueError: the tiles are not uint8 (B, 3, S, S), the tiles and texts do not pair up, or the
                deployment rejected a request.
        """
        if len(tiles) != len(texts):
            raise ValueError(f"texts: need one text per tile ({len(tiles)}), got {len(texts)}")
        if len(tiles) == 0:
            return np.zeros((0, self.input_size, self.input_size), np.float32)
        tiles = check_tiles(tiles, self.input_size)
        requests = [(np.ascontiguousarray(tile), text) for tile, text in zip(tiles, texts, strict=True)]
        responses = [self.handle.segment.remote(tile, text) for tile, text in requests]
        return np.stack(
            [self._result(response, *request) for response, request in zip(responses, requests, strict=True)]
        )

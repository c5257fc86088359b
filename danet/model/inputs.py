"""The model's input contract applied: uint8 RGB tiles in, the normalised float tensor DANet takes out.

Callers (the predictor, the segmenter service) hand over pixels as they are stored, one byte per channel;
only here do they become ``(x / 255 - mean) / std`` with the mean and std of the weights' own
:class:`~danet.config.InputContract`, so no caller keeps a copy of the statistics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from danet.config import InputContract

_CHANNELS = 3


def normalize_tiles(tiles: Tensor | np.ndarray, contract: InputContract) -> Tensor:
    """uint8 RGB tiles (B, 3, H, W) or (B, H, W, 3) -> float32 (B, 3, H, W) normalised with ``contract``.

    The result stays on the tiles' device, so tiles moved to a GPU first are normalised there.

    Raises:
        ValueError: the tiles are not uint8, or not a batch of 3-channel images (the message names both).
    """
    batch = torch.as_tensor(tiles)
    if batch.dtype != torch.uint8:
        raise ValueError(f"tiles: expected uint8 RGB, got {batch.dtype}")
    if batch.ndim != 4 or _CHANNELS not in (batch.shape[1], batch.shape[-1]):
        raise ValueError(f"tiles: expected shape (B, 3, H, W) or (B, H, W, 3), got {tuple(batch.shape)}")
    if batch.shape[1] != _CHANNELS:
        batch = batch.permute(0, 3, 1, 2)
    mean = torch.tensor(contract.mean, dtype=torch.float32, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(contract.std, dtype=torch.float32, device=batch.device).view(1, 3, 1, 1)
    # The same float32 operations as the datasets' to_unit_tensor + normalize: identical values.
    return ((batch.float() / 255.0 - mean) / std).contiguous()

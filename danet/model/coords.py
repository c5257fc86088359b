"""Pixel coordinates as features: what lets a convolutional network ground "left", "top", "center".

Referring expressions name places ("the ship on the left", "the tank in the upper right corner"). A CNN's
features are nearly translation-invariant, so early referring-segmentation models (e.g. Hu et al. 2016,
Liu et al. 2017) appended the normalised (x, y) of each pixel to the visual features; DANet's spatial words
need the same. Both the fusion (``fusion.coords``) and the decoder (``decoder.coords``) can use it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

COORD_FEATURES = 6


def coordinate_grid(height: int, width: int, *, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(H, W, 6): x, y in [-1, 1] at pixel centres, plus sin/cos(pi x) and sin/cos(pi y)."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width * 2 - 1
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack(
        [
            x,
            y,
            torch.sin(math.pi * x),
            torch.cos(math.pi * x),
            torch.sin(math.pi * y),
            torch.cos(math.pi * y),
        ],
        dim=-1,
    )


class CoordinateEmbedding(nn.Module):
    """A learnt linear map of :func:`coordinate_grid` to ``dim`` channels, as (1, H*W, dim) tokens."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(COORD_FEATURES, dim)
        nn.init.normal_(self.project.weight, std=0.02)  # start close to the pretrained features
        nn.init.zeros_(self.project.bias)

    def forward(self, height: int, width: int, like: Tensor) -> Tensor:
        """Embedding tokens for an H x W map, on ``like``'s device and dtype."""
        grid = coordinate_grid(height, width, device=like.device, dtype=like.dtype)
        return self.project(grid.reshape(1, height * width, COORD_FEATURES))


def coordinate_channels(like: Tensor) -> Tensor:
    """(B, 2, H, W) x and y channels in [-1, 1] for an NCHW map ``like``."""
    batch, _, height, width = like.shape
    grid = coordinate_grid(height, width, device=like.device, dtype=like.dtype)[..., :2]
    return grid.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1)

"""LAVT's SimpleDecoding: a light FPN-like head from four stage maps to 2-class logits at 1/4 resolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from danet.model.coords import coordinate_channels


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SimpleDecoder(nn.Module):
    """Coarse-to-fine: upsample, concatenate the next finer map, two conv3x3-BN-ReLU; then 1x1 to 2 logits.

    Sizes are taken from the inputs (bilinear, ``align_corners=True`` as LAVT), nothing is hard-coded.
    """

    def __init__(
        self, channels: Sequence[int], hidden: int, num_classes: int = 2, *, coords: bool = False
    ) -> None:
        super().__init__()
        self.coords = coords
        extra = 2 if coords else 0  # (x, y) channels appended to each step's input
        coarse_to_fine = list(channels)[::-1]
        in_channels = coarse_to_fine[0]
        steps = []
        for finer in coarse_to_fine[1:]:
            steps.append(
                nn.Sequential(
                    _conv_bn_relu(in_channels + finer + extra, hidden), _conv_bn_relu(hidden, hidden)
                )
            )
            in_channels = hidden
        self.steps = nn.ModuleList(steps)
        self.classifier = nn.Conv2d(hidden, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Four maps, finest first (strides 4..32) -> logits (B, 2, H/4, W/4)."""
        finest_first = list(features)
        x = finest_first[-1]
        for step, skip in zip(self.steps, finest_first[-2::-1], strict=True):
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
            parts = [x, skip, coordinate_channels(skip)] if self.coords else [x, skip]
            x = step(torch.cat(parts, dim=1))
        return self.classifier(x)

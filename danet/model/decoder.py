"""LAVT's SimpleDecoding: a light FPN-like head from four stage maps to 2-class logits at 1/4 resolution,
with an optional refinement step (ours, not LAVT's) that sharpens them at the backbone stem's resolution."""

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


class LogitRefinement(nn.Module):
    """Sharpen 1/4-resolution logits at the stem's finer resolution (ours; not in LAVT or DANet).

    At 1/4 resolution a 10-pixel vehicle is 2-3 cells, and upsampled logits make round blobs of it. This
    step upsamples the logits and a narrow projection of the decoder's last map to the stem's grid, adds
    the stem's edges, and predicts a *correction* to the upsampled logits. The correction's last layer
    starts at zero, so a decoder trained without this step keeps its output until the step learns.
    """

    def __init__(self, hidden: int, stem_channels: int, width: int, num_classes: int = 2) -> None:
        super().__init__()
        self.reduce = nn.Sequential(
            nn.Conv2d(hidden, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.fuse = _conv_bn_relu(width + stem_channels + num_classes, width)
        self.correction = nn.Conv2d(width, num_classes, 1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, hidden: Tensor, logits: Tensor, stem: Tensor) -> Tensor:
        """``hidden`` (B, C, h, w), ``logits`` (B, K, h, w) at 1/4, ``stem`` (B, Cs, H, W) -> (B, K, H, W)."""
        size = stem.shape[-2:]
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
        context = F.interpolate(self.reduce(hidden), size=size, mode="bilinear", align_corners=True)
        return logits + self.correction(self.fuse(torch.cat([context, stem, logits], dim=1)))


class SimpleDecoder(nn.Module):
    """Coarse-to-fine: upsample, concatenate the next finer map, two conv3x3-BN-ReLU; then 1x1 to 2 logits;
    then, with ``refine > 0``, a `LogitRefinement` at the stem's resolution.

    Sizes are taken from the inputs (bilinear, ``align_corners=True`` as LAVT), nothing is hard-coded.
    """

    def __init__(
        self,
        channels: Sequence[int],
        hidden: int,
        num_classes: int = 2,
        *,
        coords: bool = False,
        refine: int = 0,
        stem_channels: int = 0,
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
        self.refinement = LogitRefinement(hidden, stem_channels, refine, num_classes) if refine > 0 else None

    def forward(self, features: Sequence[Tensor], stem: Tensor | None = None) -> Tensor:
        """Four maps, finest first (strides 4..32) -> logits (B, 2, H/4, W/4); with the refinement step,
        the ``stem`` map is required and the logits come at its resolution."""
        finest_first = list(features)
        x = finest_first[-1]
        for step, skip in zip(self.steps, finest_first[-2::-1], strict=True):
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
            parts = [x, skip, coordinate_channels(skip)] if self.coords else [x, skip]
            x = step(torch.cat(parts, dim=1))
        logits = self.classifier(x)
        if self.refinement is None:
            return logits
        if stem is None:
            raise ValueError("stem: the decoder's refinement step needs the backbone stem's map")
        return self.refinement(x, logits, stem)

"""The common shape of a visual backbone: a stem followed by four stages at strides 4, 8, 16 and 32."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class VisualStages(nn.Module):
    """An image encoder cut into ``stem`` and four ``stages`` so that fusion can run after each stage.

    Attributes:
        channels: output width of each stage.
        stem_channels: output width of the stem.
        channels_last: True when the stages exchange (B, H, W, C) tensors (Swin), False for (B, C, H, W).
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[nn.Module],
        channels: Sequence[int],
        *,
        stem_channels: int,
        channels_last: bool,
    ) -> None:
        super().__init__()
        if len(stages) != len(channels):
            raise ValueError(f"{len(stages)} stages but {len(channels)} channel counts")
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.channels = tuple(channels)
        self.stem_channels = stem_channels
        self.channels_last = channels_last

"""timm EfficientNet-Lite0 cut into a stem and four stages at strides 4, 8, 16 and 32."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from danet.config import WeightsSource
from danet.model.backbones.stages import VisualStages
from danet.weights import load_efficientnet_lite0_weights, resolve_weights

# DANet datasets normalise images with ImageNet mean/std. The EfficientNet-Lite weights expect the TF-Lite
# preprocessing ((x - 127) / 128, i.e. mean = std = 0.5): on bundled photos it gives more confident correct
# ImageNet predictions than ImageNet mean/std (both rank the right class first).
DATA_MEAN, DATA_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LITE_MEAN, LITE_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
_STAGE_STRIDES = (4, 8, 16, 32)


class Renormalize(nn.Module):
    """Convert images normalised with one mean/std to another (a fixed per-channel affine map)."""

    def __init__(
        self,
        source: tuple[float, float, float],
        source_std: tuple[float, float, float],
        target: tuple[float, float, float],
        target_std: tuple[float, float, float],
    ) -> None:
        super().__init__()
        src_mean, src_std = torch.tensor(source), torch.tensor(source_std)
        dst_mean, dst_std = torch.tensor(target), torch.tensor(target_std)
        self.register_buffer("scale", (src_std / dst_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((src_mean - dst_mean) / dst_std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in the source normalisation -> the target normalisation."""
        return images * self.scale + self.shift


def build_efficientnet_lite0(weights: WeightsSource | None, *, pretrained: bool) -> nn.Module:
    """The full timm ``efficientnet_lite0`` classifier, with ImageNet weights loaded strictly if asked."""
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if pretrained and weights is not None:
        load_efficientnet_lite0_weights(model, resolve_weights(weights, "backbone.weights"))
    return model


def efficientnet_lite0_stages(weights: WeightsSource | None, *, pretrained: bool) -> VisualStages:
    """EfficientNet-Lite0 as stem + four stages ending at the last block of each stride 4/8/16/32.

    The stage boundaries come from timm's ``feature_info``; the classifier head (conv_head, pooling, fc)
    is dropped.
    """
    model = build_efficientnet_lite0(weights, pretrained=pretrained)
    by_stride = {info["reduction"]: info for info in model.feature_info}
    stages, start = [], 0
    for stride in _STAGE_STRIDES:
        end = int(by_stride[stride]["module"].split(".")[1]) + 1  # module names look like "blocks.4"
        stages.append(nn.Sequential(*model.blocks[start:end]))
        start = end
    channels = [by_stride[stride]["num_chs"] for stride in _STAGE_STRIDES]
    stem = nn.Sequential(Renormalize(DATA_MEAN, DATA_STD, LITE_MEAN, LITE_STD), model.conv_stem, model.bn1)
    stem_channels = model.conv_stem.out_channels
    return VisualStages(stem, stages, channels, stem_channels=stem_channels, channels_last=False)

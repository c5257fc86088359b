"""Language-aware visual encoders: a backbone driven stage by stage with LAVT fusion after each stage."""

from __future__ import annotations

from torch import Tensor, nn

from danet.config import BackboneConfig, FusionConfig
from danet.model.backbones.efficientnet import efficientnet_lite0_stages
from danet.model.backbones.stages import VisualStages
from danet.model.backbones.swin import swin_stages
from danet.model.coords import CoordinateEmbedding
from danet.model.fusion import StageFusion

__all__ = ["LanguageAwareEncoder", "VisualStages", "build_encoder", "build_visual_stages"]


class LanguageAwareEncoder(nn.Module):
    """Run each visual stage, then fuse it with the words (PWAM + gate); collect the decoder inputs.

    Returns the stem's map (B, C_stem, H_s, W_s), used by the decoder's optional refinement step, and the
    four decoder inputs ``LayerNorm(F_i)`` as (B, C_i, H_i, W_i) maps at strides 4-32. With
    ``cfg.coords`` PWAM attends from ``x + E_i(coords)`` (where the pixel is) while the stage output keeps
    the gated update on ``x`` itself.
    """

    def __init__(self, visual: VisualStages, text_dim: int, cfg: FusionConfig) -> None:
        super().__init__()
        self.visual = visual
        last = len(visual.channels) - 1
        self.fusions = nn.ModuleList(
            StageFusion(dim, text_dim, heads, cfg.dropout, feeds_next_stage=i < last)
            for i, (dim, heads) in enumerate(zip(visual.channels, cfg.pwam_heads, strict=True))
        )
        self.coords = (
            nn.ModuleList(CoordinateEmbedding(dim) for dim in visual.channels) if cfg.coords else None
        )

    @property
    def channels(self) -> tuple[int, ...]:
        """Width of each decoder input."""
        return self.visual.channels

    def forward(self, images: Tensor, words: Tensor, word_mask: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``images`` (B, 3, H, W), ``words`` (B, L, Ct), ``word_mask`` (B, L) -> (stem map, 4 NCHW maps)."""
        x = self.visual.stem(images)
        stem = x.permute(0, 3, 1, 2) if self.visual.channels_last else x
        outputs = []
        for i, (stage, fusion) in enumerate(zip(self.visual.stages, self.fusions, strict=True)):
            x = stage(x)
            tokens = x if self.visual.channels_last else x.permute(0, 2, 3, 1)
            batch, height, width, dim = tokens.shape
            pixels = tokens.reshape(batch, height * width, dim)
            position = None if self.coords is None else self.coords[i](height, width, pixels)
            updated, decoder_in = fusion(pixels, words, word_mask, position=position)
            if updated is not None:
                updated = updated.reshape(batch, height, width, dim)
                x = updated if self.visual.channels_last else updated.permute(0, 3, 1, 2)
            outputs.append(decoder_in.reshape(batch, height, width, dim).permute(0, 3, 1, 2).contiguous())
        return stem, outputs


def build_visual_stages(cfg: BackboneConfig, input_size: int, *, pretrained: bool) -> VisualStages:
    """The configured backbone as stem + four stages (pretrained weights loaded when asked)."""
    if cfg.kind == "swin":
        assert cfg.swin is not None  # guaranteed by BackboneConfig validation
        return swin_stages(cfg.swin, input_size, cfg.weights, pretrained=pretrained)
    return efficientnet_lite0_stages(cfg.weights, pretrained=pretrained)


def build_encoder(
    backbone: BackboneConfig, fusion: FusionConfig, text_dim: int, input_size: int, *, pretrained: bool
) -> LanguageAwareEncoder:
    """Backbone + per-stage fusion, ready to take images and word features."""
    visual = build_visual_stages(backbone, input_size, pretrained=pretrained)
    return LanguageAwareEncoder(visual, text_dim, fusion)

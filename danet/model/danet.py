"""DANet: LAVT skeleton (language-aware backbone + decoder) with the two reconstructed alignments."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from danet.config import DANetConfig
from danet.model.alignment import ExplicitAffinityAlignment, ReliableAgentAlignment
from danet.model.backbones import LanguageAwareEncoder, build_encoder
from danet.model.decoder import SimpleDecoder
from danet.model.text import TextEncoder, TextFeatures, build_text_encoder
from danet.weights import require_weights

_MIN_SIZE = 64  # the stride-32 map must have more than one pixel for the instance norms in PWAM


@dataclass
class DANetOutput:
    """``logits`` (B, 2, H, W) at input resolution; ``aux`` tensors for the alignment losses."""

    logits: Tensor
    aux: dict[str, Tensor] = field(default_factory=dict)


class DANet(nn.Module):
    """Referring segmentation: image + expression -> 2-class (background, target) logits.

    Data flow: text encoder -> words; backbone stages each followed by PWAM + language gate -> four
    normalised fused maps -> explicit affinity alignment (optional) -> reliable agent alignment on one
    stage (optional) -> SimpleDecoder (optionally refined with the stem's map) -> bilinear upsampling
    to the input size.
    """

    def __init__(
        self,
        cfg: DANetConfig,
        text: TextEncoder,
        encoder: LanguageAwareEncoder,
        affinity: ExplicitAffinityAlignment | None,
        agent: ReliableAgentAlignment | None,
        decoder: SimpleDecoder,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.text = text
        self.encoder = encoder
        self.affinity = affinity
        self.agent = agent
        self.decoder = decoder

    def frozen_modules(self) -> list[nn.Module]:
        """Modules that keep their pretrained weights and statistics: a frozen text tower, and the stem plus
        the first ``backbone.frozen_stages`` stages."""
        frozen: list[nn.Module] = [self.text] if self.cfg.text.freeze else []
        count = self.cfg.backbone.frozen_stages
        if count:
            frozen += [self.encoder.visual.stem, *self.encoder.visual.stages[:count]]
        return frozen

    def train(self, mode: bool = True) -> DANet:
        """Like ``nn.Module.train``, but frozen modules stay in eval mode (BatchNorm statistics and
        dropout as pretrained; cached text features stay valid)."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Expressions -> (input_ids, attention_mask), LongTensor (B, max_tokens), padded and truncated."""
        return self.text.tokenize(texts)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> TextFeatures:
        """Encode tokenised expressions; the features can be reused for any images (``forward_with_text``)."""
        return self.text(input_ids, attention_mask)

    def forward(self, images: Tensor, input_ids: Tensor, attention_mask: Tensor) -> DANetOutput:
        """Segment ``images`` (B, 3, H, W; H, W multiples of 32, at least 64) for the tokenised texts."""
        return self.forward_with_text(images, self.encode_text(input_ids, attention_mask))

    def forward_with_text(self, images: Tensor, text: TextFeatures) -> DANetOutput:
        """Segment ``images`` for already encoded texts (one row of ``text`` per image), e.g. cached ones."""
        height, width = images.shape[-2:]
        if height % 32 or width % 32 or min(height, width) < _MIN_SIZE:
            raise ValueError(
                f"images: spatial size {height}x{width} must be multiples of 32 and at least {_MIN_SIZE}"
            )
        stem, features = self.encoder(images, text.words, text.mask)
        aux: dict[str, Tensor] = {}
        if self.affinity is not None:
            features, affinity_aux = self.affinity(features, text.sentence)
            aux.update(affinity_aux)
        if self.agent is not None:
            stage = self.cfg.alignment.agent.stage
            features[stage], agent_aux = self.agent(features[stage], text.sentence)
            aux.update(agent_aux)
        logits = self.decoder(features, stem)
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=True)
        return DANetOutput(logits=logits, aux=aux)


def build_model(cfg: DANetConfig, *, pretrained: bool = True) -> DANet:
    """Build DANet from a config.

    Args:
        cfg: the model configuration (see :func:`danet.config.load_preset`).
        pretrained: load the pretrained weights the config names. ``False`` builds the architecture only
            (random weights), e.g. before loading a DANet checkpoint.

    Raises:
        MissingWeightsError: ``pretrained`` and configured weights are absent (never a silent fallback);
            the message lists every missing source with where to put it.
    """
    if pretrained:
        require_weights(
            {
                "backbone.weights": cfg.backbone.weights,
                "text.weights": cfg.text.weights,
                "text.tokenizer": cfg.text.tokenizer,
            }
        )
    text = build_text_encoder(cfg.text, pretrained=pretrained)
    encoder = build_encoder(cfg.backbone, cfg.fusion, text.dim, cfg.input_size, pretrained=pretrained)
    channels = encoder.channels
    align = cfg.alignment
    affinity = (
        ExplicitAffinityAlignment(channels, text.dim, align.affinity) if align.affinity.enabled else None
    )
    agent = (
        ReliableAgentAlignment(channels[align.agent.stage], text.dim, align.agent)
        if align.agent.enabled
        else None
    )
    decoder = SimpleDecoder(
        channels,
        cfg.decoder.hidden,
        coords=cfg.decoder.coords,
        refine=cfg.decoder.refine,
        stem_channels=encoder.visual.stem_channels,
    )
    model = DANet(cfg, text, encoder, affinity, agent, decoder)
    for module in model.frozen_modules():
        module.requires_grad_(False)
    return model

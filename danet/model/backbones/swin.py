"""timm Swin Transformer cut into a patch-embedding stem and four stages (LAVT's visual backbone)."""

from __future__ import annotations

from danet.config import SwinConfig, WeightsSource
from danet.model.backbones.stages import VisualStages
from danet.weights import load_swin_weights, resolve_weights


def swin_stages(
    cfg: SwinConfig, input_size: int, weights: WeightsSource | None, *, pretrained: bool
) -> VisualStages:
    """Build the Swin stages, loading the configured checkpoint when ``pretrained``.

    ``strict_img_size=False`` makes timm build the shifted-window attention masks for the actual input on
    each forward, so any input size that is a multiple of 32 works. ``input_size`` only sets the reference
    grid from which timm derives each stage's window (a window larger than a stage's map shrinks to it).

    Stage order: in timm, stage i>0 *starts* with PatchMerging (the official Swin code merges at the *end*
    of stage i-1). Calling ``stages[i]`` on the fused output of stage i-1 therefore runs
    "merge, then blocks", and fusing after each call reproduces LAVT's "blocks, fuse, then merge".

    Known difference: a map that is not a multiple of the window (the 15x15 last stage at 480 px) is
    padded by timm after the cyclic shift and by LAVT before it, a small numerical difference.
    """
    from timm.models.swin_transformer import SwinTransformer

    swin = SwinTransformer(
        img_size=input_size,
        patch_size=4,
        embed_dim=cfg.embed_dim,
        depths=cfg.depths,
        num_heads=cfg.num_heads,
        window_size=cfg.window_size,
        mlp_ratio=cfg.mlp_ratio,
        drop_path_rate=cfg.drop_path,
        strict_img_size=False,
        num_classes=0,
    )
    if pretrained and weights is not None:
        load_swin_weights(swin, resolve_weights(weights, "backbone.weights"))
    channels = [cfg.embed_dim * 2**i for i in range(len(cfg.depths))]
    # The final classifier norm is not used: LAVT normalises each stage's fused output instead.
    return VisualStages(
        swin.patch_embed, list(swin.layers), channels, stem_channels=cfg.embed_dim, channels_last=True
    )

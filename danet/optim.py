"""AdamW with LAVT's weight-decay exclusions and poly learning-rate decay per iteration."""

from __future__ import annotations

from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import PolynomialLR

from danet.config import OptimConfig

# Position tables: Swin's relative-position bias, BERT's position and token-type embeddings.
NO_DECAY_NAMES = (
    "relative_position_bias_table",
    "absolute_pos_embed",
    "position_embeddings",
    "token_type_embeddings",
)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed group and a group with weight decay 0.

    No decay for: parameters of normalisation layers, biases and other 1-d/scalar parameters (learnt
    temperatures), and position tables (:data:`NO_DECAY_NAMES`). Frozen parameters are left out.
    """
    norm_params = {
        id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        exempt = id(param) in norm_params or param.ndim <= 1 or any(n in name for n in NO_DECAY_NAMES)
        (no_decay if exempt else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> AdamW:
    """AdamW over :func:`param_groups` with ``cfg.lr``."""
    return AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)


def build_scheduler(optimizer: Optimizer, total_iters: int, power: float = 0.9) -> PolynomialLR:
    """``lr = base_lr * (1 - it / total_iters) ** power``, stepped once per iteration (LAVT), 0 at the end."""
    if total_iters <= 0:
        raise ValueError(f"total_iters must be positive, got {total_iters}")
    return PolynomialLR(optimizer, total_iters=total_iters, power=power)

"""DANet training loss: weighted cross-entropy (+ optional Dice) + weighted alignment losses.

The segmentation part follows LAVT/RMSIN (CE with class weights [0.9, 1.1]; RMSIN adds 0.1 Dice). The
alignment losses belong to the reconstructed alignment modules (see :mod:`danet.model.alignment`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from danet.config import DANetConfig
from danet.model.alignment import AFFINITY_PREFIX, AGENT_ATTENTION, AGENT_LOGITS
from danet.model.danet import DANetOutput

_EPS = 1e-6


def soft_dice_loss(probabilities: Tensor, targets: Tensor) -> Tensor:
    """Mean over samples and channels of ``1 - (2 I + eps) / (sum P + sum T + eps)``.

    ``probabilities`` and ``targets`` are (B, C, H, W). RMSIN sums instead of averaging over the batch;
    the mean keeps the loss scale independent of the batch size.
    """
    dims = (-2, -1)
    intersection = (probabilities * targets).sum(dims)
    total = probabilities.sum(dims) + targets.sum(dims)
    return (1.0 - (2.0 * intersection + _EPS) / (total + _EPS)).mean()


def _downsample_mask(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H, W) {0,1} mask -> (B, 1, h, w) foreground fraction of each cell."""
    return F.adaptive_avg_pool2d(masks.unsqueeze(1).float(), size)


def affinity_loss(logits: Tensor, masks: Tensor, *, dice: bool) -> Tensor:
    """BCE (+ Dice on the sigmoid) between an affinity map (B, 1, h, w) and the downsampled mask."""
    target = _downsample_mask(masks, tuple(logits.shape[-2:]))
    logits = logits.float()
    loss = F.binary_cross_entropy_with_logits(logits, target)
    if dice:
        loss = loss + soft_dice_loss(logits.sigmoid(), target)
    return loss


def reliable_agents(attention: Tensor, masks: Tensor, threshold: float) -> Tensor:
    """Which agents are reliable (reconstruction): bool (B, K).

    An agent is reliable when at least ``threshold`` of its aggregation attention (B, K, h, w) falls
    inside the ground-truth mask; in a sample with any foreground the highest-mass agent always counts,
    so every visible target has at least one agent to align.
    """
    cell_foreground = _downsample_mask(masks, tuple(attention.shape[-2:]))  # (B, 1, h, w)
    mass = (attention.float() * cell_foreground).sum(dim=(-2, -1))  # (B, K)
    reliable = mass >= threshold
    has_target = masks.flatten(1).any(dim=1)
    best = F.one_hot(mass.argmax(dim=1), mass.shape[1]).bool()
    return reliable | (best & has_target.unsqueeze(1))


def agent_alignment_loss(logits: Tensor, reliable: Tensor) -> Tensor:
    """Balanced BCE: pull reliable agents' text similarity up, push unreliable agents' down."""
    per_agent = F.binary_cross_entropy_with_logits(logits.float(), reliable.float(), reduction="none")
    terms = [per_agent[group].mean() for group in (reliable, ~reliable) if group.any()]
    return torch.stack(terms).mean()


class DANetLoss(nn.Module):
    """``ce_weight*CE + dice_weight*Dice + lambda_aff*L_affinity + lambda_agent*L_agent``.

    Calling it returns ``(total, parts)`` where ``parts`` holds each term (unweighted) and the total as
    floats for logging. Alignment terms appear only when the model produced their auxiliary outputs.
    """

    def __init__(self, cfg: DANetConfig) -> None:
        super().__init__()
        self.loss_cfg = cfg.loss
        self.affinity_cfg = cfg.alignment.affinity
        self.agent_cfg = cfg.alignment.agent
        self.register_buffer("class_weights", torch.tensor(cfg.loss.ce_class_weights), persistent=False)

    def forward(self, out: DANetOutput, masks: Tensor) -> tuple[Tensor, dict[str, float]]:
        """``out.logits`` (B, 2, H, W) vs ``masks`` LongTensor (B, H, W) in {0, 1}."""
        if out.logits.shape[-2:] != masks.shape[-2:]:
            raise ValueError(
                f"masks: size {tuple(masks.shape[-2:])} != logits {tuple(out.logits.shape[-2:])}"
            )
        logits = out.logits.float()
        terms: dict[str, tuple[float, Tensor]] = {
            "ce": (self.loss_cfg.ce_weight, F.cross_entropy(logits, masks, weight=self.class_weights))
        }
        if self.loss_cfg.dice_weight > 0:
            one_hot = F.one_hot(masks, logits.shape[1]).permute(0, 3, 1, 2).float()
            terms["dice"] = (self.loss_cfg.dice_weight, soft_dice_loss(logits.softmax(dim=1), one_hot))
        affinity = [v for k, v in out.aux.items() if k.startswith(AFFINITY_PREFIX)]
        if affinity:
            loss = torch.stack(
                [affinity_loss(a, masks, dice=self.affinity_cfg.dice) for a in affinity]
            ).mean()
            terms["affinity"] = (self.affinity_cfg.loss_weight, loss)
        if AGENT_LOGITS in out.aux:
            with torch.no_grad():
                reliable = reliable_agents(
                    out.aux[AGENT_ATTENTION], masks, self.agent_cfg.reliability_threshold
                )
            terms["agent"] = (
                self.agent_cfg.loss_weight,
                agent_alignment_loss(out.aux[AGENT_LOGITS], reliable),
            )
        total = torch.stack([weight * value for weight, value in terms.values()]).sum()
        parts = {name: float(value.detach()) for name, (_, value) in terms.items()}
        parts["total"] = float(total.detach())
        return total, parts

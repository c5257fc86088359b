"""DANet's two explicit vision-language alignments — RECONSTRUCTIONS.

The DANet paper (Pan et al., ACM MM 2024) names an "explicit affinity alignment" and a "reliable agent
alignment" but its internals are not public. Both modules below are reconstructions from the paper's
title and terms, CRIS-style pixel-text alignment and Agent Attention (Han et al., ECCV 2024); they are not
verified against the authors' code. Each is optional (``alignment.*.enabled``) for ablation.

Both act on the decoder inputs (the normalised fused stage features) and put what their losses need in
the auxiliary outputs; the losses themselves live in :mod:`danet.losses`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from danet.config import AffinityConfig, AgentConfig

AFFINITY_PREFIX = "affinity."
AGENT_ATTENTION = "agent.attention"
AGENT_LOGITS = "agent.logits"
_MAX_LOGIT_SCALE = 100.0  # as in CLIP: keeps a learnt temperature from collapsing


def _register_logit_scale(module: nn.Module, temperature: float, learnable: bool) -> None:
    value = torch.tensor(math.log(1.0 / temperature))
    if learnable:
        module.log_scale = nn.Parameter(value)
    else:
        module.register_buffer("log_scale", value)


class ExplicitAffinityAlignment(nn.Module):
    """Explicit affinity alignment (reconstruction).

    For each configured stage i: project the stage feature (1x1 conv) and the sentence embedding (linear)
    to a shared ``dim``; the affinity map is ``cos(P_v V_i, P_t s) / tau + b_i`` (B, 1, H_i, W_i), which
    the loss supervises with the mask downsampled to the stage (BCE, optionally + Dice). With ``reweight``
    the map also modulates the feature, ``V_i * (1 + sigmoid(A_i))``, so the alignment is used by the
    decoder and not only supervised.
    """

    def __init__(self, channels: Sequence[int], text_dim: int, cfg: AffinityConfig) -> None:
        super().__init__()
        self.stages = cfg.stages
        self.reweight = cfg.reweight
        self.visual = nn.ModuleList(nn.Conv2d(channels[i], cfg.dim, 1) for i in cfg.stages)
        self.text = nn.ModuleList(nn.Linear(text_dim, cfg.dim) for _ in cfg.stages)
        self.bias = nn.Parameter(torch.zeros(len(cfg.stages)))
        _register_logit_scale(self, cfg.temperature, cfg.learn_temperature)

    def forward(self, features: Sequence[Tensor], sentence: Tensor) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Return the (optionally re-weighted) features and ``{"affinity.<stage>": logits (B,1,H,W)}``."""
        features = list(features)
        scale = self.log_scale.exp().clamp(max=_MAX_LOGIT_SCALE)
        aux = {}
        for j, stage in enumerate(self.stages):
            pixels = F.normalize(self.visual[j](features[stage]), dim=1)
            text = F.normalize(self.text[j](sentence), dim=-1)
            logits = torch.einsum("bchw,bc->bhw", pixels, text).unsqueeze(1) * scale + self.bias[j]
            aux[f"{AFFINITY_PREFIX}{stage}"] = logits
            if self.reweight:
                features[stage] = features[stage] * (1.0 + logits.sigmoid())
        return features, aux


class ReliableAgentAlignment(nn.Module):
    """Reliable agent alignment (reconstruction).

    1. Agents: K = g*g agent tokens by adaptive average pooling of the pixel queries over a g x g grid
       (Agent Attention's pooled agents).
    2. Agent aggregation: each agent attends over all pixels, ``softmax(A K^T)``, and gathers their values.
    3. Reliability: each agent's similarity to the sentence, ``cos(agent, P_t s) / tau + b``, gives a
       reliability ``sigmoid(logit)`` used at inference and training alike. During training the loss
       labels an agent reliable when its aggregation attention mass inside the ground-truth mask is at
       least ``reliability_threshold`` (and the highest-mass agent of a non-empty mask always), aligns
       reliable agents to the text and pushes unreliable ones away.
    4. Agent broadcast: pixels attend over the agents, ``softmax(Q A^T)``, and receive their values
       weighted by reliability, so unreliable agents contribute little; the result is added to the feature
       (O(HW*K) global context before decoding).
    """

    def __init__(self, channels: int, text_dim: int, cfg: AgentConfig) -> None:
        super().__init__()
        self.grid = math.isqrt(cfg.num_agents)
        self.scale = cfg.dim**-0.5
        self.query = nn.Linear(channels, cfg.dim)
        self.key = nn.Linear(channels, cfg.dim)
        self.value = nn.Linear(channels, cfg.dim)
        self.text = nn.Linear(text_dim, cfg.dim)
        self.out = nn.Linear(cfg.dim, channels)
        self.bias = nn.Parameter(torch.zeros(()))
        _register_logit_scale(self, cfg.temperature, learnable=True)

    def forward(self, feature: Tensor, sentence: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(B, C, H, W) feature -> refined feature, aux attention (B, K, H, W) and agent logits (B, K)."""
        batch, channels, height, width = feature.shape
        tokens = feature.flatten(2).transpose(1, 2)  # (B, N, C)
        query, key, value = self.query(tokens), self.key(tokens), self.value(tokens)
        query_map = query.transpose(1, 2).reshape(batch, -1, height, width)
        agents = F.adaptive_avg_pool2d(query_map, self.grid).flatten(2).transpose(1, 2)  # (B, K, D)

        gather = (agents @ key.transpose(1, 2) * self.scale).softmax(dim=-1)  # (B, K, N)
        agent_values = gather @ value  # (B, K, D)
        text = self.text(sentence).unsqueeze(1)  # (B, 1, D)
        similarity = F.cosine_similarity(agent_values, text, dim=-1)  # (B, K)
        logits = similarity * self.log_scale.exp().clamp(max=_MAX_LOGIT_SCALE) + self.bias
        reliability = logits.sigmoid().unsqueeze(-1)

        spread = (query @ agents.transpose(1, 2) * self.scale).softmax(dim=-1)  # (B, N, K)
        update = self.out(spread @ (agent_values * reliability))  # (B, N, C)
        refined = feature + update.transpose(1, 2).reshape(batch, channels, height, width)
        aux = {AGENT_ATTENTION: gather.reshape(batch, -1, height, width), AGENT_LOGITS: logits}
        return refined, aux

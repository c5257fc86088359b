"""Loss terms against hand-computed values, agent reliability, optimizer groups and the poly schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from danet.config import LossConfig, OptimConfig, load_preset
from danet.losses import (
    DANetLoss,
    affinity_loss,
    agent_alignment_loss,
    reliable_agents,
    soft_dice_loss,
)
from danet.model import DANetOutput, build_model
from danet.optim import build_optimizer, build_scheduler, param_groups


def _seg_only(ce_weight: float = 1.0, dice_weight: float = 0.0):
    cfg = load_preset("tiny")
    return cfg.model_copy(update={"loss": LossConfig(ce_weight=ce_weight, dice_weight=dice_weight)})


def test_weighted_cross_entropy_matches_a_hand_computation():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # (B=1, 2 classes, H=1, W=2)
    masks = torch.tensor([[[0, 1]]])
    total, parts = DANetLoss(_seg_only())(DANetOutput(logits=logits), masks)
    # pixel 0: class 0 (weight 0.9), p = e^2 / (e^2 + 1); pixel 1: class 1 (weight 1.1), p = e / (1 + e)
    nll0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    nll1 = -math.log(math.e / (1 + math.e))
    expected = (0.9 * nll0 + 1.1 * nll1) / (0.9 + 1.1)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert set(parts) == {"ce", "total"}


def test_dice_is_zero_for_a_perfect_prediction_and_one_for_the_opposite():
    target = torch.zeros(1, 2, 4, 4)
    target[:, 1, :2] = 1
    target[:, 0, 2:] = 1
    assert soft_dice_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_dice_loss(1 - target, target).item() == pytest.approx(1.0, abs=1e-6)


def test_segmentation_terms_are_weighted():
    torch.manual_seed(0)
    logits, masks = torch.randn(2, 2, 8, 8), torch.randint(0, 2, (2, 8, 8))
    out = DANetOutput(logits=logits)
    total, parts = DANetLoss(_seg_only(0.9, 0.1))(out, masks)
    assert set(parts) == {"ce", "dice", "total"}
    assert total.item() == pytest.approx(0.9 * parts["ce"] + 0.1 * parts["dice"], rel=1e-6)


def test_affinity_loss_prefers_maps_that_agree_with_the_mask():
    masks = torch.zeros(1, 32, 32, dtype=torch.long)
    masks[:, :16] = 1  # top half at full resolution -> top row of a 2x2 map
    agree = torch.tensor([[[[6.0, 6.0], [-6.0, -6.0]]]])
    assert affinity_loss(agree, masks, dice=True) < 0.05
    assert affinity_loss(-agree, masks, dice=True) > 5.0


def test_reliable_agents_use_attention_mass_inside_the_mask():
    masks = torch.zeros(1, 4, 4, dtype=torch.long)
    masks[:, :, :2] = 1  # left half
    attention = torch.zeros(1, 3, 2, 2)  # three agents over a 2x2 map
    attention[0, 0, :, 0] = 0.5  # all mass on the left column
    attention[0, 1] = 0.25  # uniform: half inside
    attention[0, 2, :, 1] = 0.5  # all mass on the right column
    assert reliable_agents(attention, masks, 0.5).tolist() == [[True, True, False]]
    assert reliable_agents(attention, masks, 0.9).tolist() == [[True, False, False]]
    # the highest-mass agent counts even when none reaches the threshold; empty masks have none
    weak = torch.full((1, 2, 2, 2), 0.25)
    weak[0, 0, 0, 0], weak[0, 0, 1, 1] = 0.4, 0.1
    assert reliable_agents(weak, masks, 0.9).tolist() == [[True, False]]
    assert not reliable_agents(attention, torch.zeros_like(masks), 0.5).any()


def test_agent_loss_pulls_reliable_agents_up_and_pushes_the_others_down():
    reliable = torch.tensor([[True, False, False, False]])
    right = torch.tensor([[5.0, -5.0, -5.0, -5.0]])
    assert agent_alignment_loss(right, reliable) < 0.01
    assert agent_alignment_loss(-right, reliable) > 4.0
    # balanced: one reliable agent weighs as much as all unreliable ones together
    half = torch.tensor([[0.0, -5.0, -5.0, -5.0]])
    assert agent_alignment_loss(half, reliable).item() == pytest.approx(
        0.5 * (math.log(2) + F.softplus(torch.tensor(-5.0)).item()), rel=1e-5
    )


def test_mask_size_must_match_the_logits():
    with pytest.raises(ValueError, match="masks"):
        DANetLoss(_seg_only())(
            DANetOutput(logits=torch.zeros(1, 2, 8, 8)), torch.zeros(1, 4, 4, dtype=torch.long)
        )


@pytest.fixture(scope="module")
def tiny_model():
    return build_model(load_preset("tiny"))


def test_no_weight_decay_on_norms_biases_and_position_tables(tiny_model):
    tiny_model.text.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    try:
        decay, no_decay = param_groups(tiny_model, 0.01)
    finally:
        tiny_model.text.bert.embeddings.word_embeddings.weight.requires_grad_(True)
    assert decay["weight_decay"] == 0.01
    assert no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in tiny_model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert not decayed & exempt
    trainable = {n for n, p in tiny_model.named_parameters() if p.requires_grad}
    assert decayed | exempt == trainable - {"text.bert.embeddings.word_embeddings.weight"}
    params = dict(tiny_model.named_parameters())
    tables = ("relative_position_bias_table", "position_embeddings", "token_type_embeddings")
    for name in exempt:  # norms, biases and learnt scalars are 1-d; position tables are named
        assert params[name].ndim <= 1 or any(t in name for t in tables), name
    for name in decayed:
        assert params[name].ndim >= 2, name
        assert not any(t in name for t in tables), name
    assert any("relative_position_bias_table" in n for n in exempt)
    assert "text.bert.embeddings.position_embeddings.weight" in exempt
    assert any(n.startswith("decoder.") and ".1.weight" in n for n in exempt)  # BatchNorm scale
    assert "encoder.fusions.0.norm.weight" in exempt
    assert "encoder.fusions.0.pwam.visual.0.weight" in decayed
    assert "decoder.classifier.weight" in decayed
    assert "text.bert.encoder.layer.0.attention.self.query.weight" in decayed


def test_poly_schedule_follows_the_closed_form(tiny_model):
    cfg = OptimConfig(lr=1e-3, weight_decay=0.01, poly_power=0.9)
    optimizer = build_optimizer(tiny_model, cfg)
    total = 10
    scheduler = build_scheduler(optimizer, total, cfg.poly_power)
    seen = []
    for _ in range(total + 2):
        seen.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    expected = [1e-3 * (1 - min(it, total) / total) ** 0.9 for it in range(total + 2)]
    assert seen == pytest.approx(expected, abs=1e-12)
    assert all(group["lr"] == pytest.approx(0.0, abs=1e-12) for group in optimizer.param_groups)
    with pytest.raises(ValueError, match="total_iters"):
        build_scheduler(optimizer, 0)

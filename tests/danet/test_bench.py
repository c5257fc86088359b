"""Cost figures on the tiny preset: parameter groups, FLOP accounting and throughput measurement."""

from __future__ import annotations

import pytest
import torch

from danet.bench import MODULE_GROUPS, count_flops, count_params, measure_throughput
from danet.config import load_preset
from danet.model import build_model


@pytest.fixture(scope="module")
def tiny():
    return build_model(load_preset("tiny"))


def test_parameter_groups_partition_the_model(tiny):
    report = count_params(tiny)
    assert report.total == sum(p.numel() for p in tiny.parameters())
    assert set(report.groups) == set(MODULE_GROUPS)
    assert sum(g.total for g in report.groups.values()) == report.total
    assert report.groups["text_encoder"].total == sum(p.numel() for p in tiny.text.parameters())
    assert report.groups["fusion"].total == sum(p.numel() for p in tiny.encoder.fusions.parameters())
    tiny.text.requires_grad_(False)
    try:
        frozen = count_params(tiny)
    finally:
        tiny.text.requires_grad_(True)
    assert frozen.groups["text_encoder"].trainable == 0
    assert frozen.trainable == report.total - report.groups["text_encoder"].total
    assert report.as_dict()["groups"]["decoder"]["total"] == report.groups["decoder"].total


def test_flops_add_up_and_scale_with_the_batch(tiny):
    one = count_flops(tiny, 64)
    assert one.flops > 0
    assert one.macs * 2 == one.flops
    assert sum(one.groups.values()) == one.flops  # every counted op belongs to one group
    assert all(one.groups[name] > 0 for name in MODULE_GROUPS)
    two = count_flops(tiny, 64, batch_size=2)
    assert two.flops == 2 * one.flops
    summary = one.as_dict()
    assert summary["gmacs_per_image"] == pytest.approx(one.flops / 2e9)
    assert tiny.training  # the mode is restored


def test_decoder_classifier_flops_match_a_hand_count(tiny):
    """The 1x1 classifier at 1/4 resolution: 2 * H/4 * W/4 * C_in * 2 FLOPs (torch counts 2 per MAC)."""
    hidden = tiny.cfg.decoder.hidden
    report = count_flops(tiny, 64, 96)
    counter_total = report.groups["decoder"]
    classifier = 2 * (64 // 4) * (96 // 4) * hidden * 2
    steps = 0
    for step, (height, width) in zip(tiny.decoder.steps, [(4, 6), (8, 12), (16, 24)], strict=True):
        for block in step:
            conv = block[0]
            steps += 2 * height * width * conv.in_channels * conv.out_channels * 9
    assert counter_total == steps + classifier


def test_throughput_is_measured(tiny):
    report = measure_throughput(tiny, batch_size=2, height=64, warmup=1, iterations=2)
    assert report.images_per_s > 0
    assert report.ms_per_batch == pytest.approx(1000 * report.seconds / 2)
    assert report.images_per_s == pytest.approx(4 / report.seconds)
    assert (report.device, report.batch_size, report.height, report.width) == ("cpu", 2, 64, 64)
    assert tiny.training
    with pytest.raises(ValueError, match="iterations"):
        measure_throughput(tiny, batch_size=1, height=64, iterations=0)
    assert torch.is_grad_enabled()

"""LAVT metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from danet.metrics import ReferringMetrics, format_metrics_table, intersection_union, sample_iou


def _pair(intersection: int, union: int, size: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A (pred, gt) pair with the given I and U: pred covers U pixels, gt the first I of them."""
    pred = np.zeros((1, size), np.int64)
    gt = np.zeros((1, size), np.int64)
    pred[0, :union] = 1
    gt[0, :intersection] = 1
    return pred, gt


def test_intersection_union_by_hand():
    pred = np.array([[1, 1], [0, 0]])
    gt = np.array([[1, 0], [1, 0]])
    assert intersection_union(pred, gt) == (1, 3)
    assert intersection_union(torch.from_numpy(pred), torch.from_numpy(gt)) == (1, 3)
    assert intersection_union(np.zeros((2, 2)), np.zeros((2, 2))) == (0, 0)


def test_empty_union_scores_zero():
    assert sample_iou(0, 0) == 0.0
    metrics = ReferringMetrics()
    metrics.update(np.zeros((4, 4)), np.zeros((4, 4)))
    summary = metrics.summary()
    assert summary["mIoU"] == 0.0
    assert summary["oIoU"] == 0.0
    assert summary["Pr@0.5"] == 0.0


def test_summary_by_hand():
    metrics = ReferringMetrics()
    # IoUs 1/2, 3/5, 7/10, 0 (U = 0) and 4/4.
    for i, u in ((1, 2), (3, 5), (7, 10), (0, 0), (4, 4)):
        assert metrics.update(*_pair(i, u)) == (i, u)
    summary = metrics.summary()
    assert summary["n"] == 5
    assert summary["Pr@0.5"] == pytest.approx(4 / 5)
    assert summary["Pr@0.6"] == pytest.approx(3 / 5)
    assert summary["Pr@0.7"] == pytest.approx(2 / 5)
    assert summary["Pr@0.8"] == pytest.approx(1 / 5)
    assert summary["Pr@0.9"] == pytest.approx(1 / 5)
    assert summary["oIoU"] == pytest.approx((1 + 3 + 7 + 0 + 4) / (2 + 5 + 10 + 0 + 4))
    assert summary["mIoU"] == pytest.approx((0.5 + 0.6 + 0.7 + 0.0 + 1.0) / 5)


@pytest.mark.parametrize(
    ("intersection", "union", "threshold"),
    [
        (1, 2, "0.5"),
        (3, 5, "0.6"),
        (6, 10, "0.6"),
        (7, 10, "0.7"),
        (4, 5, "0.8"),
        (8, 10, "0.8"),
        (9, 10, "0.9"),
        (27, 30, "0.9"),
    ],
)
def test_iou_exactly_at_a_threshold_counts(intersection, union, threshold):
    metrics = ReferringMetrics()
    metrics.update(*_pair(intersection, union, size=30))
    summary = metrics.summary()
    assert summary[f"Pr@{threshold}"] == 1.0
    # ... and one pixel less does not.
    below = ReferringMetrics()
    below.update(*_pair(intersection - 1, union, size=30))
    assert below.summary()[f"Pr@{threshold}"] == 0.0


def test_batch_update_matches_per_sample_updates():
    generator = torch.Generator().manual_seed(0)
    preds = (torch.rand(4, 8, 8, generator=generator) > 0.5).long()
    gts = (torch.rand(4, 8, 8, generator=generator) > 0.5).long()
    batched, single = ReferringMetrics(), ReferringMetrics()
    batched.update_batch(preds, gts)
    for p, g in zip(preds, gts, strict=True):
        single.update(p.numpy(), g.numpy())
    assert batched.summary() == single.summary()
    np.testing.assert_allclose(batched.ious, single.ious)


def test_merge_equals_one_accumulator():
    a, b, both = ReferringMetrics(), ReferringMetrics(), ReferringMetrics()
    for i, u in ((1, 2), (3, 5)):
        a.update(*_pair(i, u))
        both.update(*_pair(i, u))
    for i, u in ((7, 10), (0, 3)):
        b.update(*_pair(i, u))
        both.update(*_pair(i, u))
    a.merge(b)
    assert a.summary() == both.summary()


def test_misuse_is_reported():
    metrics = ReferringMetrics()
    with pytest.raises(ValueError, match="no samples"):
        metrics.summary()
    with pytest.raises(ValueError, match="differs"):
        metrics.update(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        metrics.update_batch(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="list"):
        intersection_union([[1]], np.ones((1, 1)))


def test_table_formats():
    metrics = ReferringMetrics()
    for i, u in ((1, 2), (3, 5), (7, 10), (0, 0), (4, 4)):
        metrics.update(*_pair(i, u))
    summary = metrics.summary()
    markdown = format_metrics_table({"DANet": summary})
    header, rule, row = markdown.splitlines()
    assert header == "| Method | Pr@0.5 | Pr@0.6 | Pr@0.7 | Pr@0.8 | Pr@0.9 | oIoU | mIoU | n |"
    assert rule.startswith("|---|---:")
    assert row == "| DANet | 80.00 | 60.00 | 40.00 | 20.00 | 20.00 | 71.43 | 56.00 | 5 |"
    plain = format_metrics_table({"DANet": summary, "LAVT (paper)": summary}, style="plain").splitlines()
    assert len(plain) == 3
    assert len({len(line) for line in plain}) == 1  # aligned columns
    assert plain[2].startswith("LAVT (paper)")
    with pytest.raises(ValueError, match="style"):
        format_metrics_table({"x": summary}, style="html")
    with pytest.raises(ValueError, match="lacks"):
        format_metrics_table({"x": {"mIoU": 0.5}})

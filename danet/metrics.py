"""Referring-segmentation metrics with the exact LAVT `test.py` semantics.

Per sample (one sentence): I = |pred ∧ gt|, U = |pred ∨ gt| of the binary (argmax) prediction and the
ground truth; IoU = I / U, and 0 when U = 0 (both empty). Over a split:

- mIoU  = mean of the per-sample IoUs;
- oIoU  = ΣI / ΣU (overall, cumulative IoU);
- Pr@X  = share of samples with IoU ≥ X, X ∈ {0.5, 0.6, 0.7, 0.8, 0.9}.

Threshold tests use exact integer arithmetic (I·den ≥ num·U for X = num/den), so an IoU that equals a
threshold (I=3, U=5 at 0.6) counts, with no float rounding in the way. Values are shares in [0, 1];
the table formatter prints them as percentages like the papers.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import torch

PRECISION_THRESHOLDS = ("0.5", "0.6", "0.7", "0.8", "0.9")
SUMMARY_KEYS = (*(f"Pr@{t}" for t in PRECISION_THRESHOLDS), "oIoU", "mIoU")


def intersection_union(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray) -> tuple[int, int]:
    """Return (I, U) of one sample; non-zero values count as foreground. Shapes must match."""
    p, g = _as_bool(pred, "pred"), _as_bool(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(
            f"prediction shape {tuple(p.shape)} differs from ground-truth shape {tuple(g.shape)}"
        )
    return int(np.logical_and(p, g).sum()), int(np.logical_or(p, g).sum())


def sample_iou(intersection: int, union: int) -> float:
    """IoU of one sample, 0 when the union is empty (LAVT)."""
    return intersection / union if union else 0.0


class ReferringMetrics:
    """Accumulates per-sample I/U and summarises them as Pr@0.5..0.9, oIoU, mIoU.

    `update` takes one [H, W] prediction (argmax labels) and ground truth; `update_batch` takes [B, H, W].
    Accumulators from several workers combine with `merge`.
    """

    def __init__(self) -> None:
        self._intersections: list[int] = []
        self._unions: list[int] = []

    def __len__(self) -> int:
        return len(self._intersections)

    def update(self, pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray) -> tuple[int, int]:
        """Add one sample; returns its (I, U)."""
        if pred.ndim != 2:
            raise ValueError(f"update expects one [H, W] prediction, got shape {tuple(pred.shape)}")
        intersection, union = intersection_union(pred, gt)
        self._intersections.append(intersection)
        self._unions.append(union)
        return intersection, union

    def update_batch(self, preds: torch.Tensor | np.ndarray, gts: torch.Tensor | np.ndarray) -> None:
        """Add a batch of [B, H, W] predictions and ground truths, one sample per item."""
        if preds.ndim != 3 or gts.ndim != 3 or preds.shape[0] != gts.shape[0]:
            raise ValueError(
                f"update_batch expects [B, H, W] predictions and ground truths, got {tuple(preds.shape)} "
                f"and {tuple(gts.shape)}"
            )
        for pred, gt in zip(preds, gts, strict=True):
            self.update(pred, gt)

    def merge(self, other: ReferringMetrics) -> None:
        """Add all samples of another accumulator (e.g. from another data-parallel worker)."""
        self._intersections.extend(other._intersections)
        self._unions.extend(other._unions)

    @property
    def ious(self) -> np.ndarray:
        """Per-sample IoUs in update order."""
        return np.array([sample_iou(i, u) for i, u in zip(self._intersections, self._unions, strict=True)])

    def summary(self) -> dict[str, float]:
        """{"Pr@0.5".."Pr@0.9", "oIoU", "mIoU": shares in [0, 1], "n": sample count}."""
        n = len(self)
        if n == 0:
            raise ValueError("no samples: call update() before summary()")
        result: dict[str, float] = {}
        for threshold in PRECISION_THRESHOLDS:
            x = Fraction(threshold)
            hits = sum(
                1
                for i, u in zip(self._intersections, self._unions, strict=True)
                if u > 0 and i * x.denominator >= x.numerator * u
            )
            result[f"Pr@{threshold}"] = hits / n
        total_union = sum(self._unions)
        result["oIoU"] = sum(self._intersections) / total_union if total_union else 0.0
        result["mIoU"] = float(self.ious.mean())
        result["n"] = n
        return result


def format_metrics_table(rows: Mapping[str, Mapping[str, float]], *, style: str = "markdown") -> str:
    """Render summaries as the standard table (percentages, two decimals), one row per named summary.

    `style` is "markdown" (pipe table) or "plain" (aligned columns).
    """
    if not rows:
        raise ValueError("format_metrics_table needs at least one row")
    header = ["Method", *SUMMARY_KEYS, "n"]
    body = []
    for name, summary in rows.items():
        missing = [k for k in (*SUMMARY_KEYS, "n") if k not in summary]
        if missing:
            raise ValueError(f"summary {name!r} lacks {missing}")
        body.append([name, *(f"{100 * summary[k]:.2f}" for k in SUMMARY_KEYS), str(int(summary["n"]))])
    if style == "markdown":
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    if style == "plain":
        widths = [max(len(r[c]) for r in [header, *body]) for c in range(len(header))]
        return "\n".join(
            "  ".join(
                cell.ljust(w) if c == 0 else cell.rjust(w)
                for c, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in [header, *body]
        )
    raise ValueError(f"unknown table style {style!r}; expected 'markdown' or 'plain'")


def _as_bool(mask: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        return mask.detach().cpu().numpy() != 0
    if isinstance(mask, np.ndarray):
        return mask != 0
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(mask).__name__}")

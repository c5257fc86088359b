"""Score externally produced mask PNGs against a referring dataset (`danet score`).

Predictions are binary single-channel PNGs named `<sent_id>.png`, one per sentence of the split, at the
image's own resolution. Unlike `danet eval` (which follows LAVT and compares at the network input
size, e.g. 480x480), metrics here are computed at image resolution: the ground truth is decoded at the
size recorded in the annotations and never resized, so methods with different input sizes are compared
on equal terms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from danet.data.dataset import Layout, load_records
from danet.metrics import ReferringMetrics

# Single-band PIL modes a binary mask PNG can have.
_MASK_MODES = ("1", "L", "P", "I", "I;16")
_SHOWN_IDS = 5


def score_predictions(
    data_root: Path, split: str, predictions_dir: Path, *, layout: Layout = "auto"
) -> dict[str, float]:
    """Score `<predictions_dir>/<sent_id>.png` for every sentence of `split`; return the metrics summary.

    A non-zero pixel is foreground. Raises FileNotFoundError when predictions are missing (with how
    many and the first ids) and ValueError for a file of the wrong size, a multi-channel file, or one
    with more than two distinct values. Extra files in `predictions_dir` are ignored (it may hold
    predictions for other splits).
    """
    predictions_dir = Path(predictions_dir)
    if not predictions_dir.is_dir():
        raise FileNotFoundError(f"predictions folder {predictions_dir} does not exist")
    records = load_records(data_root, split, layout=layout, require_images=False)
    missing = [r.sent_id for r in records if not (predictions_dir / f"{r.sent_id}.png").is_file()]
    if missing:
        shown = ", ".join(str(i) for i in missing[:_SHOWN_IDS])
        raise FileNotFoundError(
            f"{len(missing)} of {len(records)} predictions missing in {predictions_dir} for split {split!r} "
            f"(expected <sent_id>.png); first sent_ids: {shown}"
        )
    metrics = ReferringMetrics()
    for record in records:
        path = predictions_dir / f"{record.sent_id}.png"
        metrics.update(read_binary_mask(path, (record.height, record.width)), record.decode_mask())
    return metrics.summary()


def read_binary_mask(path: Path, expected_hw: tuple[int, int]) -> np.ndarray:
    """Read a binary mask PNG as a bool array of shape `expected_hw`, validating size and values."""
    with Image.open(path) as image:
        if image.mode not in _MASK_MODES:
            raise ValueError(f"{path}: expected a single-channel binary mask PNG, got mode {image.mode}")
        if image.size != (expected_hw[1], expected_hw[0]):
            raise ValueError(
                f"{path}: size {image.width}x{image.height} but the image is "
                f"{expected_hw[1]}x{expected_hw[0]} (W x H); predictions must be at image resolution"
            )
        values = np.asarray(image)
    levels = np.unique(values)
    if len(levels) > 2 or (len(levels) == 2 and levels[0] != 0):
        shown = ", ".join(str(v) for v in levels[:6])
        raise ValueError(f"{path}: not a binary mask, found values {shown}{'...' if len(levels) > 6 else ''}")
    return values != 0

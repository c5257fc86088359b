"""Scoring external mask PNGs against the RRSIS-D-layout fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from danet.data import read_rrsisd
from danet.scoring import score_predictions

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "rrsisd_tiny"


def _write_predictions(folder: Path, split: str, predict) -> list:
    folder.mkdir(exist_ok=True)
    records = read_rrsisd(FIXTURE, split)
    for record in records:
        Image.fromarray(predict(record)).save(folder / f"{record.sent_id}.png")
    return records


def test_ground_truth_as_prediction_scores_perfectly(tmp_path):
    records = _write_predictions(tmp_path / "pred", "train", lambda r: r.decode_mask() * 255)
    summary = score_predictions(FIXTURE, "train", tmp_path / "pred")
    assert summary["n"] == len(records)
    assert all(summary[k] == 1.0 for k in ("Pr@0.5", "Pr@0.9", "oIoU", "mIoU"))


def test_scores_are_computed_at_image_resolution(tmp_path):
    records = read_rrsisd(FIXTURE, "train")
    first = records[0].sent_id

    def predict(record):
        mask = record.decode_mask()
        if record.sent_id == first:
            return mask  # values {0, 1} are fine too
        # Keep only the top half of the target: IoU = |top half| / |target|.
        half = mask.copy()
        half[record.height // 2 :] = 0
        return half * 255

    _write_predictions(tmp_path / "pred", "train", predict)
    ious = []
    i_sum = u_sum = 0
    for record in records:
        gt = record.decode_mask()
        if record.sent_id == first:
            i, u = gt.sum(), gt.sum()
        else:
            i, u = gt[: record.height // 2].sum(), gt.sum()
        ious.append(i / u)
        i_sum, u_sum = i_sum + i, u_sum + u
    summary = score_predictions(FIXTURE, "train", tmp_path / "pred")
    assert summary["mIoU"] == pytest.approx(np.mean(ious))
    assert summary["oIoU"] == pytest.approx(i_sum / u_sum)
    assert summary["Pr@0.5"] == pytest.approx(np.mean([v >= 0.5 for v in ious]))


def test_missing_predictions_are_counted_and_listed(tmp_path):
    records = _write_predictions(tmp_path / "pred", "train", lambda r: r.decode_mask())
    for record in records[:2]:
        (tmp_path / "pred" / f"{record.sent_id}.png").unlink()
    first_ids = f"{records[0].sent_id}, {records[1].sent_id}"
    expected = rf"2 of {len(records)} predictions missing .* first sent_ids: {first_ids}"
    with pytest.raises(FileNotFoundError, match=expected):
        score_predictions(FIXTURE, "train", tmp_path / "pred")


def test_wrong_size_names_file_and_sizes(tmp_path):
    records = _write_predictions(tmp_path / "pred", "val", lambda r: r.decode_mask())
    bad = tmp_path / "pred" / f"{records[0].sent_id}.png"
    Image.new("L", (48, 40)).save(bad)
    with pytest.raises(ValueError, match=rf"{bad.name}: size 48x40 but the image is 96x96"):
        score_predictions(FIXTURE, "val", tmp_path / "pred")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (Image.new("RGB", (96, 96)), "mode RGB"),
        (Image.fromarray(np.tile(np.array([0, 100, 255], np.uint8), (96, 32))), "values 0, 100, 255"),
    ],
)
def test_non_binary_predictions_are_refused(tmp_path, image, message):
    records = _write_predictions(tmp_path / "pred", "val", lambda r: r.decode_mask())
    image.save(tmp_path / "pred" / f"{records[0].sent_id}.png")
    with pytest.raises(ValueError, match=message):
        score_predictions(FIXTURE, "val", tmp_path / "pred")


def test_one_bit_pngs_and_annotation_only_datasets(tmp_path):
    # Scoring needs the annotations, not the JPEG images.
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE / "refs(unc).p", data)
    shutil.copy(FIXTURE / "instances.json", data)
    (tmp_path / "pred").mkdir()
    for record in read_rrsisd(FIXTURE, "test"):
        Image.fromarray(record.decode_mask().astype(bool)).save(tmp_path / "pred" / f"{record.sent_id}.png")
    assert score_predictions(data, "test", tmp_path / "pred")["mIoU"] == 1.0


def test_missing_predictions_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="predictions folder"):
        score_predictions(FIXTURE, "val", tmp_path / "nope")

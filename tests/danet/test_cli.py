"""The `danet` command line: predict on a real GeoTIFF, bench, synth and score, as a user runs them."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shapely.geometry import shape

from danet.checkpoint import save_checkpoint
from danet.cli import main
from danet.config import load_preset
from danet.data.dataset import load_records
from danet.geo import open_image
from danet.model.danet import build_model
from danet.packages import package_path

SOLARIS_DATA = package_path("solaris", "data")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    cfg = load_preset("tiny")
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", build_model(cfg), cfg)


def test_predict_on_the_spacenet_geotiff_writes_crs84_polygons_inside_the_footprint(
    tiny_checkpoint, tmp_path, capsys
):
    geotiff = SOLARIS_DATA / "sample_geotiff.tif"  # EPSG:32616, 0.5 m
    # Random weights: threshold 0 makes every valid pixel foreground, so polygons must exist.
    argv = ["predict", "--checkpoint", str(tiny_checkpoint), str(geotiff), "all buildings",
            "--out", str(tmp_path), "--threshold", "0"]  # fmt: skip
    assert main(argv) == 0
    assert "GeoJSON (CRS84)" in capsys.readouterr().out
    collection = json.loads((tmp_path / "sample_geotiff.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    assert "crs" not in collection
    with open_image(geotiff) as image:
        footprint = image.footprint().buffer(1e-7)
    assert collection["features"]
    for feature in collection["features"]:
        geometry = shape(feature["geometry"])
        assert footprint.contains(geometry)
        assert -180 <= geometry.bounds[0] <= 180
        assert -90 <= geometry.bounds[1] <= 90
        assert feature["properties"]["area_m2"] > 0
    with Image.open(tmp_path / "sample_geotiff.overlay.png") as overlay:
        assert overlay.width == 900


def test_bench_reports_params_flops_and_throughput(capsys):
    assert (
        main(["bench", "tiny", "--batch-sizes", "1", "2", "--iterations", "1", "--warmup", "0", "--json"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in rows] == [1, 2]
    assert all(r["preset"] == "tiny" and r["params_m"] > 0 and r["gmacs"] > 0 for r in rows)
    assert rows[0]["gflops_torch"] == pytest.approx(2 * rows[0]["gmacs"], rel=1e-3)
    assert all(r["images_per_s"] > 0 for r in rows)


def test_synth_then_score_ground_truth_masks_is_perfect(tmp_path, capsys):
    data = tmp_path / "synthetic"
    assert main(["synth", "--out", str(data), "--images", "6", "--size", "96", "--seed", "3"]) == 0
    records = load_records(data, "test")
    assert records
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for record in records:  # an external method that happens to be perfect
        Image.fromarray((record.decode_mask() > 0).astype(np.uint8) * 255).save(
            predictions / f"{record.sent_id}.png"
        )
    capsys.readouterr()
    assert (
        main(["score", "--data", str(data), "--split", "test", "--predictions", str(predictions), "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["mIoU"] == 1.0
    assert summary["Pr@0.9"] == 1.0
    assert summary["n"] == len(records)

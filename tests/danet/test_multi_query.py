"""The multi-query predictor (`danet.predict.predict_queries`), the one inference path of `danet predict`
and the dispatcher: each query gets what one-query prediction gives it, windows shared between queries are
read once, batches mix queries, and windows without valid pixels cost no model call (tiny preset, random
weights, so the maps mean nothing)."""

import numpy as np
import pytest
import torch
from PIL import Image

from danet.config import load_preset
from danet.geo import PixelRegion, TileWindow, WindowRead, open_image
from danet.model import build_model
from danet.predict import Predictor, plan_query_tiles, predict_queries, tile_uint8
from danet.predict.multi_query import TileSegment

SIZE, OVERLAP = 64, 16
FILL = (124, 116, 104)
SHIP, PLANES = "the small ship on the left", "all airplanes"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    # A batch of 5 pairs splits the pairs of one window between two forward passes now and then.
    return Predictor(build_model(load_preset("tiny"), pretrained=False), input_size=SIZE, batch_size=5)


def _ellipse(height: int, width: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return ((rows - height / 2) / (height / 2)) ** 2 + ((cols - width / 2) / (width / 2)) ** 2 <= 1


def test_each_query_gets_what_one_query_prediction_gives_it(predictor, tmp_path):
    rgba = np.random.default_rng(5).integers(0, 256, size=(150, 200, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[20:50, 120:170, 3] = 0  # nodata inside some tiles
    path = tmp_path / "scene.png"
    Image.fromarray(rgba, "RGBA").save(path)
    texts = [SHIP, PLANES, SHIP]
    regions = [None, PixelRegion(30, 70, 60, 90, mask=_ellipse(60, 90)), PixelRegion(10, 10, 50, 50)]
    with open_image(path) as image:
        maps = predictor.predict_queries(image, texts, regions, overlap=OVERLAP)
        alone = [
            predictor.predict_image(image, text, region=region, overlap=OVERLAP)
            for text, region in zip(texts, regions, strict=True)
        ]
    for together, single in zip(maps, alone, strict=True):
        assert (together.row_off, together.col_off, together.tile_count) == (
            single.row_off,
            single.col_off,
            single.tile_count,
        )
        np.testing.assert_array_equal(together.valid, single.valid)
        np.testing.assert_allclose(together.probability, single.probability, atol=1e-5, equal_nan=True)
    assert not maps[0].valid[20:50, 120:170].any()
    # The pairing reaches the output: the two texts differ where both queries predicted.
    both = maps[1].valid
    whole = maps[0].probability[30:90, 70:160]
    assert np.abs(whole[both] - maps[1].probability[both]).max() > 1e-4


def _read_all_valid(window: TileWindow) -> WindowRead:
    image = np.full((window.height, window.width, 3), 0.5, np.float32)
    return WindowRead(image, np.ones((window.height, window.width), bool))


class ConstantPerQuery:
    """A stand-in model: probability 0.2 + 0.3 * query index everywhere; records what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, list[int]]] = []

    def __call__(self, tiles: np.ndarray, queries) -> np.ndarray:
        self.calls.append((tiles, list(queries)))
        values = 0.2 + 0.3 * np.asarray(queries, np.float32)
        return np.broadcast_to(values[:, None, None], (len(queries), SIZE, SIZE)).copy()


def test_shared_windows_are_read_once_and_batches_mix_queries():
    plan = plan_query_tiles((150, 200), [None, None], SIZE, OVERLAP)
    assert plan.tiles[0] == plan.tiles[1]
    reads: list[TileWindow] = []

    def read(window: TileWindow) -> WindowRead:
        reads.append(window)
        return _read_all_valid(window)

    model = ConstantPerQuery()
    heard: list[int] = []
    done = predict_queries(plan, read, model, fill=FILL, max_pairs=5, on_pairs=heard.append)
    pairs = 2 * len(plan.windows)
    assert sorted(reads, key=plan.windows.index) == list(plan.windows)  # each window read once
    assert (done.windows_read, done.nodata_windows, done.pairs, done.calls) == (
        len(plan.windows),
        0,
        pairs,
        -(-pairs // 5),
    )
    assert sum(heard) == pairs
    for tiles, queries in model.calls:
        assert tiles.dtype == np.uint8
        assert tiles.shape == (len(queries), 3, SIZE, SIZE)
        assert len(queries) <= 5
    assert any(len(set(queries)) == 2 for _, queries in model.calls)
    for q, prediction in enumerate(done.maps):
        assert prediction.valid.all()
        np.testing.assert_allclose(prediction.probability, 0.2 + 0.3 * q, atol=1e-6)


def test_windows_without_valid_pixels_are_read_but_not_segmented():
    plan = plan_query_tiles((64, 200), [None, PixelRegion(0, 0, 64, 60)], SIZE, OVERLAP)

    def read(window: TileWindow) -> WindowRead:
        pixels = _read_all_valid(window)
        if window.col_off > 0:  # everything right of the first window is nodata
            return WindowRead(pixels.image * 0, np.zeros_like(pixels.valid))
        return pixels

    model = ConstantPerQuery()
    done = predict_queries(plan, read, model, fill=FILL, max_pairs=8)
    assert done.windows_read == len(plan.windows) > 1
    assert done.nodata_windows == len(plan.windows) - 1
    assert done.pairs == 2  # the first window, for each query
    assert done.calls == 1
    whole, region = done.maps
    assert whole.valid[:, :SIZE].all()
    assert not whole.valid[:, SIZE:].any()
    assert np.isnan(whole.probability[:, SIZE:]).all()
    assert region.valid.all()


def test_a_model_answering_another_shape_is_an_error():
    plan = plan_query_tiles((64, 64), [None], SIZE, OVERLAP)
    wrong: TileSegment = lambda tiles, queries: np.zeros((len(queries), SIZE, SIZE - 1), np.float32)  # noqa: E731
    with pytest.raises(RuntimeError, match=r"segment: returned shape \(1, 64, 63\) for 1 tiles of 64x64"):
        predict_queries(plan, _read_all_valid, wrong, fill=FILL, max_pairs=4)


def test_tile_uint8_keeps_uint8_pixels_exactly_and_fills_nodata_and_padding():
    raw = np.random.default_rng(1).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    valid = np.ones((40, 50), bool)
    valid[:5, :7] = False
    read = WindowRead(np.where(valid[..., None], raw.astype(np.float32) / 255, 0).astype(np.float32), valid)
    tile = tile_uint8(read, TileWindow(0, 0, 40, 50, pad_bottom=24, pad_right=14), FILL)
    assert (tile.dtype, tile.shape) == (np.uint8, (3, 64, 64))
    assert tile.flags.c_contiguous
    hwc = tile.transpose(1, 2, 0)
    np.testing.assert_array_equal(hwc[:40, :50][valid], raw[valid])
    assert (hwc[:5, :7] == FILL).all()
    assert (hwc[40:] == FILL).all()
    assert (hwc[:, 50:] == FILL).all()
    stretched = WindowRead(np.full((64, 64, 3), 0.3337, np.float32), np.ones((64, 64), bool))
    assert (tile_uint8(stretched, TileWindow(0, 0, 64, 64), FILL) == 85).all()  # nearest of 256 levels

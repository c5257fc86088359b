"""The v2 training data (stream, phrasing, moved expressions, real regions) and the streamed training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from danet.config import load_preset
from danet.datagen.expressions import (
    CATEGORIES,
    LOCATIONS,
    STRICT,
    Expression,
    ObjectFacts,
    denotation,
    moved,
    referent,
)
from danet.datagen.phrasing import NOUNS, PLACES, SIZE_WORDS, describe
from danet.datagen.real_regions import (
    NEON_HELDOUT_TILES,
    NEON_TRAIN_TILES,
    SPACENET_HELDOUT_COLUMNS,
    SPACENET_TRAIN_COLUMNS,
    heldout_regions,
    training_regions,
)
from danet.datagen.stream import ReferringStream, StreamMix, _dihedral
from danet.model.coords import coordinate_grid
from danet.model.danet import build_model
from danet.stream_training import StreamTrainOptions, TextFeatureCache, lr_factor, train_stream

SYMMETRIES = [(t, fx, fy) for t in (False, True) for fx in (False, True) for fy in (False, True)]


def _transform_point(x: float, y: float, transpose: bool, flip_x: bool, flip_y: bool) -> tuple[float, float]:
    if transpose:
        x, y = y, x
    return (1 - x if flip_x else x), (1 - y if flip_y else y)


@pytest.mark.parametrize(("transpose", "flip_x", "flip_y"), SYMMETRIES)
def test_moved_expressions_denote_the_moved_objects(transpose, flip_x, flip_y):
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        objects = [
            ObjectFacts(CATEGORIES[rng.integers(2)], int(rng.integers(20, 400)), *rng.uniform(0, 1, 2))
            for _ in range(rng.integers(2, 6))
        ]
        moved_objects = [
            ObjectFacts(o.category, o.area, *_transform_point(o.x, o.y, transpose, flip_x, flip_y))
            for o in objects
        ]
        for location in (None, *LOCATIONS):
            expression = Expression(objects[0].category, location=location)
            target = referent(expression, objects)
            after = moved(expression, transpose=transpose, flip_x=flip_x, flip_y=flip_y)
            assert referent(after, moved_objects) == target
            assert denotation(after, moved_objects, STRICT) == denotation(expression, objects, STRICT)
            checked += target is not None
    assert checked > 50  # the property was exercised on real referents, not only on empty ones


def test_moved_names_the_expected_places():
    e = Expression("ship", location="upper left")
    assert moved(e, transpose=False, flip_x=True, flip_y=False).location == "upper right"
    assert moved(e, transpose=False, flip_x=False, flip_y=True).location == "lower left"
    assert moved(
        Expression("ship", location="right"), transpose=True, flip_x=False, flip_y=False
    ).location == ("bottom")
    assert moved(
        Expression("ship", location="center"), transpose=True, flip_x=True, flip_y=True
    ).location == ("center")


def test_dihedral_moves_pixels_like_the_points():
    image = np.zeros((8, 8, 3), dtype=np.float32)
    mask = np.zeros((8, 8), dtype=bool)
    mask[1, 6] = True  # row 1 (top), column 6 (right)
    image[1, 6] = 1.0
    out_image, out_mask = _dihedral(image, mask, True, True, False)
    y, x = np.argwhere(out_mask)[0]
    ex, ey = _transform_point((6 + 0.5) / 8, (1 + 0.5) / 8, True, True, False)
    assert (x, y) == (int(ex * 8), int(ey * 8))
    assert out_image[y, x, 0] == 1.0


def test_paraphrases_keep_the_meaning_words():
    rng = np.random.default_rng(1)
    for _ in range(500):
        category = CATEGORIES[rng.integers(len(CATEGORIES))]
        plural = bool(rng.integers(2))
        size = None if plural else (None, "small", "large")[rng.integers(3)]
        location = (None, *LOCATIONS)[rng.integers(len(LOCATIONS) + 1)]
        text = describe(Expression(category, plural=plural, size=size, location=location), rng)
        assert any(noun in text for pair in NOUNS[category] for noun in pair), text
        for word_size, words in SIZE_WORDS.items():
            assert any(f" {w} " in f" {text} " for w in words) == (size == word_size), text
        if location is not None:
            assert any(text.endswith(p) for p in PLACES[location]), text
        else:
            assert not any(p in text for phrases in PLACES.values() for p in phrases), text


def test_stream_is_deterministic_and_well_formed():
    stream = ReferringStream(
        64, seed=5, mix=StreamMix(synthetic=1, buildings=0, trees=0, roads=0), regions={}
    )
    a, b = stream.sample(0, 3), stream.sample(0, 3)
    assert a["text"] == b["text"]
    assert torch.equal(a["image"], b["image"])
    assert torch.equal(a["mask"], b["mask"])
    assert a["image"].shape == (3, 64, 64)
    assert a["mask"].dtype == torch.int64
    assert a["mask"].sum() > 0
    assert stream.sample(1, 3)["text"] != a["text"] or not torch.equal(
        stream.sample(1, 3)["image"], a["image"]
    )


def test_real_training_regions_exclude_the_heldout_ones():
    columns = list(range(900))
    assert set(columns[SPACENET_TRAIN_COLUMNS]).isdisjoint(columns[SPACENET_HELDOUT_COLUMNS])
    assert set(NEON_TRAIN_TILES).isdisjoint(NEON_HELDOUT_TILES)
    train, heldout = training_regions(), heldout_regions()
    assert {r.name for rs in train.values() for r in rs}.isdisjoint(
        r.name for rs in heldout.values() for r in rs
    )
    (train_buildings,), (heldout_buildings,) = train["buildings"], heldout["buildings"]
    assert train_buildings.image.shape[1] + heldout_buildings.image.shape[1] == 900
    assert heldout_buildings.mask.any()  # the held-out block has buildings to score


def test_coordinate_grid_orientation():
    grid = coordinate_grid(4, 6, device=torch.device("cpu"), dtype=torch.float32)
    assert grid.shape == (4, 6, 6)
    assert grid[0, 0, 0] < grid[0, -1, 0]  # x grows to the right
    assert grid[0, 0, 1] < grid[-1, 0, 1]  # y grows downwards
    assert grid[..., :2].abs().max() < 1


def test_frozen_stages_stay_frozen_and_in_eval_mode():
    model = build_model(
        load_preset("tiny", ["backbone.frozen_stages=1", "fusion.coords=true"]), pretrained=False
    )
    model.train()
    stem, first, second = (
        model.encoder.visual.stem,
        model.encoder.visual.stages[0],
        model.encoder.visual.stages[1],
    )
    assert not any(p.requires_grad for p in (*stem.parameters(), *first.parameters()))
    assert all(p.requires_grad for p in second.parameters())
    assert not stem.training
    assert not first.training
    assert second.training


def test_text_feature_cache_matches_direct_encoding():
    model = build_model(load_preset("tiny", ["text.freeze=true"]), pretrained=False).eval()
    cache = TextFeatureCache(model)
    texts = ["the small ship on the left", "all airplanes", "the small ship on the left"]
    cached = cache(texts, torch.device("cpu"))
    ids, mask = model.tokenize(texts)
    direct = model.encode_text(ids, mask)
    assert torch.allclose(cached.words, direct.words, atol=1e-5)
    assert torch.allclose(cached.sentence, direct.sentence, atol=1e-5)
    assert cache.misses == 2
    assert cache.hits == 1


def test_lr_factor_warms_up_and_decays_to_zero():
    assert lr_factor(0, 0.0, 10, 0.9) < lr_factor(5, 0.0, 10, 0.9) < lr_factor(20, 0.0, 10, 0.9) == 1.0
    assert lr_factor(100, 0.5, 10, 0.9) > lr_factor(100, 0.9, 10, 0.9) > 0
    assert lr_factor(100, 1.0, 10, 0.9) == 0.0


@pytest.mark.slow
def test_streamed_training_resumes_where_it_stopped(tmp_path):
    cfg = load_preset("tiny")
    opts = StreamTrainOptions(
        out_dir=tmp_path, max_steps=3, batch_size=2, loader_workers=0, checkpoint_every=2, log_every=1,
        progress=False, warmup_steps=1,
    )  # fmt: skip
    assert train_stream(cfg, opts)["steps"] == 3
    opts.max_steps = 5
    assert train_stream(cfg, opts)["steps"] == 5
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    assert state["step"] == 5
    steps = [line for line in (tmp_path / "history.jsonl").read_text().splitlines() if '"train"' in line]
    assert len(steps) == 5  # one log line per step, none repeated after the resume

"""Batch assembly without Ray: unique texts and request order, request checks, cached text features that
give the same output as fresh ones, and one forward pass per batch (tiny preset, random weights)."""

import numpy as np
import pytest
import torch

from danet.predict import Predictor
from services.contracts import RedisKeys
from services.segmenter import LocalSegmenter, TextEmbedding, TextEmbeddingCache
from services.segmenter.batching import BatchSegmenter, check_request, plan_texts
from services.segmenter.model_loading import build_predictor
from services.segmenter.text_cache import split_features, stack_features
from services.settings import SegmenterSettings

SHIPS = "the ships in the harbour"
PLANES = "small airplanes"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    predictor, _ = build_predictor(SegmenterSettings(preset="tiny", device="cpu"))
    return predictor


def _tiles(count: int, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, size, size), dtype=np.uint8)


def test_plan_texts_encodes_each_normalized_text_once_and_keeps_request_order():
    plan = plan_texts([SHIPS, PLANES, "  The SHIPS in the   harbour ", PLANES, "tanks"])
    assert plan.unique == [SHIPS, PLANES, "tanks"]
    assert plan.index == [0, 1, 0, 1, 2]
    assert [plan.unique[i] for i in plan.index][2] == SHIPS


def test_check_request_names_the_bad_field():
    tile = _tiles(1)[0]
    checked = check_request(tile[:, ::-1], SHIPS, 64)
    assert checked.dtype == np.uint8
    assert checked.flags.c_contiguous
    with pytest.raises(ValueError, match=r"tiles: expected shape \(B, 3, 64, 64\)"):
        check_request(tile[:, :32], SHIPS, 64)
    with pytest.raises(ValueError, match=r"tiles: expected uint8 RGB .* got dtype float32"):
        check_request(tile.astype(np.float32), SHIPS, 64)
    with pytest.raises(ValueError, match="text: need a non-empty expression"):
        check_request(tile, "  ", 64)


def test_embedding_bytes_round_trip_and_garbage_is_rejected(predictor):
    (embedding,) = split_features(predictor.text_features([SHIPS]))
    restored = TextEmbedding.from_bytes(embedding.to_bytes())
    for name in ("words", "mask", "sentence"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(embedding, name))
        assert getattr(restored, name).dtype == getattr(embedding, name).dtype
    with pytest.raises(ValueError, match="pickled"):
        TextEmbedding.from_bytes(b"not an embedding")


def test_cached_text_features_give_identical_output(predictor):
    tiles = torch.from_numpy(_tiles(4))
    texts = [SHIPS, PLANES, PLANES, SHIPS]
    fresh = predictor.predict_batch(tiles, texts)
    stored = [TextEmbedding.from_bytes(e.to_bytes()) for e in split_features(predictor.text_features(texts))]
    cached = predictor.predict_batch(tiles, text_features=stack_features(stored))
    assert torch.equal(fresh, cached)
    # One row is shared by every tile, as with tokens.
    shared = predictor.predict_batch(tiles[:2], text_features=stack_features(stored[:1]))
    assert torch.equal(shared, predictor.predict_batch(tiles[:2], [SHIPS, SHIPS]))
    with pytest.raises(ValueError, match="text_features: need 1 or 4 rows"):
        predictor.predict_batch(tiles, text_features=stack_features(stored[:2]))
    with pytest.raises(ValueError, match="exactly one of texts or tokens or text_features"):
        predictor.predict_batch(tiles, texts, text_features=stack_features(stored))


def test_batch_runs_once_encodes_unique_texts_and_matches_the_local_segmenter(predictor):
    cache = TextEmbeddingCache(None, RedisKeys(prefix="unused:"), "enc", "v1")
    runner = BatchSegmenter(predictor, cache)
    tiles = _tiles(6, seed=1)
    texts = [SHIPS, PLANES] * 3
    out = runner.segment(list(tiles), texts)
    reference = LocalSegmenter(predictor, "tiny").segment(tiles, texts)
    # Encoding 2 unique texts instead of 6 may change float rounding in the text encoder's matmuls.
    np.testing.assert_allclose(np.stack(out), reference, atol=1e-5)
    assert runner.texts_encoded == 2
    again = runner.segment(list(tiles[:2]), ["The ships in the harbour", PLANES])
    np.testing.assert_allclose(np.stack(again), np.stack(out[:2]), atol=1e-5)
    stats = runner.stats()
    assert stats["batch_sizes"] == {2: 1, 6: 1}
    assert (stats["batches"], stats["requests"], stats["texts_encoded"]) == (2, 8, 2)
    assert stats["busy_s"] >= stats["text_s"] > 0
    assert stats["text_cache"] == {
        "local_hits": 2,
        "redis_hits": 0,
        "misses": 2,
        "redis_errors": 0,
        "hits": 2,
    }


def test_batch_without_cache_encodes_every_batch(predictor):
    runner = BatchSegmenter(predictor)
    runner.segment(list(_tiles(2)), [SHIPS, SHIPS])
    runner.segment(list(_tiles(2)), [SHIPS, PLANES])
    assert runner.texts_encoded == 3
    assert runner.stats()["text_cache"] is None
    with pytest.raises(ValueError, match="texts: need one text per tile"):
        runner.segment(list(_tiles(2)), [SHIPS])

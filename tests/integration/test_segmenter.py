"""The segmenter on real servers: the text-embedding cache against Redis, and the Ray Serve application
on a local Ray (dynamic batching, cache hits, same output as the in-process segmenter)."""

import logging
import socket

import numpy as np
import pytest
import torch
from ray import serve

from danet.checkpoint import save_checkpoint
from danet.config import load_preset
from danet.model import build_model
from services.adapters.redis_client import make_redis
from services.segmenter import Segmenter, TextEmbedding, TextEmbeddingCache, build_local_segmenter
from services.segmenter.client import ServeSegmenter
from services.segmenter.serve_app import build_app
from services.settings import RedisSettings, SegmenterSettings

SHIPS = "the ships in the harbour"
PLANES = "small airplanes"


class CountingEncoder:
    """A deterministic stand-in for the text encoder that records what it was asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[TextEmbedding]:
        self.calls.append(list(texts))
        return [self.embedding(text) for text in texts]

    @staticmethod
    def embedding(text: str) -> TextEmbedding:
        seed = sum(text.encode())
        words = np.random.default_rng(seed).standard_normal((20, 8)).astype(np.float32)
        mask = np.zeros(20, np.int64)
        mask[: len(text.split()) + 2] = 1
        return TextEmbedding(words=words, mask=mask, sentence=words.mean(0))


def _assert_same(a: TextEmbedding, b: TextEmbedding) -> None:
    for name in ("words", "mask", "sentence"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_a_miss_is_encoded_once_then_found_in_redis_by_another_replica(redis_client, keys):
    encoder = CountingEncoder()
    first = TextEmbeddingCache(redis_client, keys, "enc", "v1")
    ships, _, ships_again = first.get_or_encode(["The Ships", "tanks", "the  ships"], encoder)
    assert encoder.calls == [["the ships", "tanks"]]
    _assert_same(ships, ships_again)
    assert first.stats.as_dict() == {
        "local_hits": 0,
        "redis_hits": 0,
        "misses": 2,
        "redis_errors": 0,
        "hits": 0,
    }

    second = TextEmbeddingCache(redis_client, keys, "enc", "v1")  # a fresh process: empty in-process LRU
    (from_redis,) = second.get_or_encode(["the ships"], encoder)
    (from_memory,) = second.get_or_encode(["THE SHIPS"], encoder)
    assert len(encoder.calls) == 1
    _assert_same(from_redis, ships)
    _assert_same(from_memory, ships)
    assert (second.stats.redis_hits, second.stats.local_hits, second.stats.misses) == (1, 1, 0)


def test_the_key_changes_with_the_encoder_version(redis_client, keys):
    encoder = CountingEncoder()
    old = TextEmbeddingCache(redis_client, keys, "enc", "v1")
    new = TextEmbeddingCache(redis_client, keys, "enc", "v2")
    assert old.key("ships") != new.key("ships")
    old.get_or_encode(["ships"], encoder)
    new.get_or_encode(["ships"], encoder)
    assert encoder.calls == [["ships"], ["ships"]]
    assert redis_client.exists(old.key("ships"), new.key("ships")) == 2


def test_entries_expire_only_with_a_ttl(redis_client, keys):
    encoder = CountingEncoder()
    expiring = TextEmbeddingCache(redis_client, keys, "enc", "ttl", ttl_s=60)
    kept = TextEmbeddingCache(redis_client, keys, "enc", "kept")
    expiring.get_or_encode(["ships"], encoder)
    kept.get_or_encode(["ships"], encoder)
    assert 0 < redis_client.ttl(expiring.key("ships")) <= 60
    assert redis_client.ttl(kept.key("ships")) == -1  # no expiry


def test_an_unreadable_entry_is_encoded_again_and_replaced(redis_client, keys, caplog):
    encoder = CountingEncoder()
    cache = TextEmbeddingCache(redis_client, keys, "enc", "v1", local_entries=0)
    redis_client.set(cache.key("ships"), b"garbage")
    with caplog.at_level(logging.WARNING, logger="services.segmenter.text_cache"):
        (embedding,) = cache.get_or_encode(["ships"], encoder)
    assert "is unreadable" in caplog.text
    _assert_same(TextEmbedding.from_bytes(redis_client.get(cache.key("ships"))), embedding)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_without_redis_texts_are_still_encoded_and_a_warning_is_logged(keys, caplog):
    down = make_redis(RedisSettings(url=f"redis://127.0.0.1:{_closed_port()}/0", socket_timeout_s=1))
    encoder = CountingEncoder()
    cache = TextEmbeddingCache(down, keys, "enc", "v1")
    with caplog.at_level(logging.WARNING, logger="services.segmenter.text_cache"):
        (embedding,) = cache.get_or_encode(["ships"], encoder)
        (again,) = cache.get_or_encode(["ships"], encoder)  # served by the in-process LRU
        cache.get_or_encode(["tanks"], encoder)  # Redis is bypassed for a while: no new error
    _assert_same(embedding, CountingEncoder.embedding("ships"))
    _assert_same(again, embedding)
    assert encoder.calls == [["ships"], ["tanks"]]
    assert (cache.stats.redis_errors, cache.stats.local_hits, cache.stats.misses) == (1, 1, 2)
    assert "Redis failed (ConnectionError" in caplog.text
    down.close()


@pytest.mark.slow
def test_serve_app_batches_requests_caches_texts_and_matches_the_local_segmenter(
    ray_local, stack_settings, tmp_path, keys
):
    cfg = load_preset("tiny")
    torch.manual_seed(11)
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", build_model(cfg, pretrained=False), cfg)
    # A long batch wait makes the grouping of the 8 concurrent requests certain, not a matter of timing.
    segmenter = SegmenterSettings(
        checkpoint=checkpoint, device="cpu", max_batch_size=8, batch_wait_timeout_s=0.5
    )
    settings = stack_settings.model_copy(update={"segmenter": segmenter})
    # Only handles are used: no HTTP proxy actor (it also binds a port and can time out on a busy machine).
    serve.start(proxy_location="Disabled")
    handle = serve.run(build_app(settings, keys=keys), name="segmenter-test", route_prefix=None)
    try:
        remote = ServeSegmenter(handle, timeout_s=120)
        assert isinstance(remote, Segmenter)
        local = build_local_segmenter(segmenter)
        assert (remote.model_name, remote.input_size) == (local.model_name, 64)
        assert remote.model_info["device"] == "cpu"

        assert remote.input_contract == local.input_contract
        tiles = np.random.default_rng(0).integers(0, 256, (8, 3, 64, 64), dtype=np.uint8)
        texts = [SHIPS, PLANES] * 4
        first = remote.segment(tiles, texts)
        assert first.shape == (8, 64, 64)
        assert first.dtype == np.float32
        # The service encodes 2 unique texts, the local segmenter 8: matmul rounding may differ slightly.
        np.testing.assert_allclose(first, local.segment(tiles, texts), atol=1e-5)
        stats = handle.stats.remote().result()
        assert stats["requests"] == 8
        assert max(stats["batch_sizes"]) > 1, stats
        assert stats["text_cache"]["misses"] == 2

        second = remote.segment(tiles[::-1].copy(), texts[::-1])
        np.testing.assert_allclose(second, first[::-1], atol=1e-5)
        stats = handle.stats.remote().result()
        assert stats["text_cache"]["misses"] == 2
        assert stats["text_cache"]["hits"] >= 2
        assert stats["texts_encoded"] == 2
        redis_client = make_redis(settings.redis)
        assert len(list(redis_client.scan_iter(match=f"{keys.prefix}emb:*"))) == 2
        redis_client.close()

        # The deployment checks every request; the client refuses what it would refuse before sending.
        with pytest.raises(ValueError, match=r"tiles: expected shape \(B, 3, 64, 64\)"):
            handle.segment.remote(np.zeros((3, 32, 32), np.uint8), SHIPS).result()
        with pytest.raises(ValueError, match="tiles: expected uint8 RGB"):
            remote.segment(tiles.astype(np.float32), texts)
    finally:
        serve.shutdown()

"""Text-encoder outputs cached by (encoder, version, normalized text): a standing query's expression is
encoded once per model version, not once per scene.

Entries live in Redis under ``RedisKeys.text_embedding`` (no TTL by default: the key carries the encoder
version, so a new model never reads an old entry), with an in-process LRU in front. Values are float32
``.npz`` bytes — the features the model would compute, bit for bit, so cached and fresh outputs agree.
Redis is an optimisation only: when it fails, texts are encoded without it and a warning is logged.
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import redis
import torch

from danet.model.text import TextFeatures
from services.contracts import RedisKeys, normalize_text

log = logging.getLogger(__name__)

Encoder = Callable[[list[str]], list["TextEmbedding"]]


@dataclass(frozen=True)
class TextEmbedding:
    """One expression encoded: ``words`` (L, C) float32, ``mask`` (L,) int64, ``sentence`` (C,) float32."""

    words: np.ndarray
    mask: np.ndarray
    sentence: np.ndarray

    def to_bytes(self) -> bytes:
        """Serialized as an uncompressed ``.npz`` (dtype and shape travel with the data)."""
        buffer = io.BytesIO()
        np.savez(buffer, words=self.words, mask=self.mask, sentence=self.sentence)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextEmbedding:
        """Inverse of :meth:`to_bytes`.

        Raises:
            ValueError: ``data`` is not a serialized embedding.
        """
        try:
            loaded = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError(f"expected .npz data, got a single {type(loaded).__name__}")
            with loaded as arrays:
                return cls(words=arrays["words"], mask=arrays["mask"], sentence=arrays["sentence"])
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a serialized text embedding: {exc}") from exc


def split_features(features: TextFeatures) -> list[TextEmbedding]:
    """Per-expression float32 numpy rows of a batch of encoded texts."""
    words = features.words.detach().float().cpu().numpy()
    mask = features.mask.detach().long().cpu().numpy()
    sentence = features.sentence.detach().float().cpu().numpy()
    return [TextEmbedding(w, m, s) for w, m, s in zip(words, mask, sentence, strict=True)]


def stack_features(embeddings: Sequence[TextEmbedding]) -> TextFeatures:
    """One batch of text features (CPU tensors), row i from ``embeddings[i]``."""
    return TextFeatures(
        words=torch.from_numpy(np.stack([e.words for e in embeddings])),
        mask=torch.from_numpy(np.stack([e.mask for e in embeddings])),
        sentence=torch.from_numpy(np.stack([e.sentence for e in embeddings])),
    )


@dataclass
class CacheStats:
    """Lookups per unique text: found in process, found in Redis, or encoded; and Redis failures."""

    local_hits: int = 0
    redis_hits: int = 0
    misses: int = 0
    redis_errors: int = 0

    @property
    def hits(self) -> int:
        """Lookups that needed no encoding."""
        return self.local_hits + self.redis_hits

    def as_dict(self) -> dict[str, int]:
        """The counters, plus ``hits``."""
        return asdict(self) | {"hits": self.hits}


class TextEmbeddingCache:
    """Encoded texts for one (encoder, version): in-process LRU, then Redis, then the encoder.

    ``client=None`` keeps the cache in process only. After a Redis failure the cache bypasses Redis for
    ``redis_retry_s`` seconds, so an outage costs one warning and no per-request delay. Not thread-safe:
    the segmenter runs one batch at a time.
    """

    def __init__(
        self,
        client: redis.Redis | None,
        keys: RedisKeys,
        encoder_id: str,
        version: str,
        *,
        ttl_s: int | None = None,
        local_entries: int = 1024,
        redis_retry_s: float = 30.0,
    ) -> None:
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s: must be positive or None, got {ttl_s}")
        if local_entries < 0:
            raise ValueError(f"local_entries: must be 0 or more, got {local_entries}")
        self.client = client
        self.keys = keys
        self.encoder_id = encoder_id
        self.version = version
        self.ttl_s = ttl_s
        self.local_entries = local_entries
        self.redis_retry_s = redis_retry_s
        self.stats = CacheStats()
        self._local: OrderedDict[str, TextEmbedding] = OrderedDict()
        self._redis_retry_at = 0.0

    def key(self, text: str) -> str:
        """The Redis key of ``text`` (normalized inside the key builder)."""
        return self.keys.text_embedding(self.encoder_id, self.version, text)

    def get_or_encode(self, texts: Sequence[str], encode: Encoder) -> list[TextEmbedding]:
        """One embedding per text; ``encode`` gets the normalized texts found nowhere, each once.

        Texts that normalize alike (case, spacing) share one entry and are encoded in normalized form,
        so an entry depends only on its key.
        """
        normalized = [normalize_text(text) for text in texts]
        found: dict[str, TextEmbedding] = {}
        for text in dict.fromkeys(normalized):
            if text in self._local:
                self._local.move_to_end(text)
                found[text] = self._local[text]
                self.stats.local_hits += 1
        from_redis = self._redis_get([t for t in dict.fromkeys(normalized) if t not in found])
        self.stats.redis_hits += len(from_redis)
        found |= from_redis
        missing = [t for t in dict.fromkeys(normalized) if t not in found]
        if missing:
            encoded = encode(missing)
            if len(encoded) != len(missing):
                raise ValueError(f"encode: returned {len(encoded)} embeddings for {len(missing)} texts")
            fresh = dict(zip(missing, encoded, strict=True))
            self.stats.misses += len(fresh)
            self._redis_put(fresh)
            found |= fresh
        for text in list(from_redis) + missing:
            self._remember(text, found[text])
        return [found[text] for text in normalized]

    def _remember(self, text: str, embedding: TextEmbedding) -> None:
        if self.local_entries == 0:
            return
        self._local[text] = embedding
        self._local.move_to_end(text)
        while len(self._local) > self.local_entries:
            self._local.popitem(last=False)

    def _redis_usable(self) -> bool:
        return self.client is not None and time.monotonic() >= self._redis_retry_at

    def _redis_get(self, texts: list[str]) -> dict[str, TextEmbedding]:
        if not texts or not self._redis_usable():
            return {}
        keys = [self.key(text) for text in texts]
        try:
            values = self.client.mget(keys)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return {}
        found = {}
        for text, key, value in zip(texts, keys, values, strict=True):
            if value is None:
                continue
            try:
                found[text] = TextEmbedding.from_bytes(value)
            except ValueError as exc:
                log.warning("text cache: entry %s is unreadable (%s); encoding the text again", key, exc)
        return found

    def _redis_put(self, entries: dict[str, TextEmbedding]) -> None:
        if not self._redis_usable():
            return
        pipeline = self.client.pipeline(transaction=False)
        for text, embedding in entries.items():
            pipeline.set(self.key(text), embedding.to_bytes(), ex=self.ttl_s)
        try:
            pipeline.execute()
        except redis.RedisError as exc:
            self._redis_failed(exc)

    def _redis_failed(self, exc: redis.RedisError) -> None:
        self.stats.redis_errors += 1
        self._redis_retry_at = time.monotonic() + self.redis_retry_s
        log.warning(
            "text cache %s:%s: Redis failed (%s: %s); encoding without it for the next %.0f s",
            self.encoder_id,
            self.version,
            type(exc).__name__,
            exc,
            self.redis_retry_s,
        )

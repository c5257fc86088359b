"""Redis key builders: the only place key layouts are spelled."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass


def normalize_text(text: str) -> str:
    """The form a query text is cached under: Unicode NFC, whitespace collapsed, case-folded."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def text_digest(text: str) -> str:
    """SHA-256 of the normalized text."""
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()


@dataclass(frozen=True)
class RedisKeys:
    """Key layout under one ``prefix`` (default ``lookout:``)."""

    prefix: str = "lookout:"

    def query(self, query_id: str) -> str:
        """JSON of one Query."""
        return f"{self.prefix}query:{query_id}"

    def queries(self) -> str:
        """Set of every query id."""
        return f"{self.prefix}queries"

    def tenant_queries(self, tenant: str) -> str:
        """Set of one tenant's query ids."""
        return f"{self.prefix}tenant:{tenant}:queries"

    def api_key(self, key_id: str) -> str:
        """Hash of one API key: its tenant, HMAC digest, creation and revocation times (never the key)."""
        return f"{self.prefix}api-key:{key_id}"

    def api_keys(self) -> str:
        """Set of every API key id."""
        return f"{self.prefix}api-keys"

    def rate_limits(self) -> str:
        """Prefix of the per-tenant rate-limit windows (the keys the ``limits`` library writes)."""
        return f"{self.prefix}rate-limit"

    def text_embedding(self, encoder: str, version: str, text: str) -> str:
        """Cached text-encoder output for (encoder, version, normalized text)."""
        return f"{self.prefix}emb:{encoder}:{version}:{text_digest(text)}"

    def detection_stream(self, query_id: str) -> str:
        """Redis Stream of a query's delivered detections (SSE and subscribers read it)."""
        return f"{self.prefix}stream:{query_id}"

    def webhook_failures(self, query_id: str) -> str:
        """Redis Stream of a query's failed webhook deliveries (stream entry id, attempts, last error)."""
        return f"{self.prefix}webhook-failures:{query_id}"

    def detections(self, query_id: str) -> str:
        """Hash detection id -> Detection JSON (idempotent upserts)."""
        return f"{self.prefix}detections:{query_id}"

    def detection_times(self, query_id: str) -> str:
        """Sorted set detection id -> when it was stored (Unix seconds): what retention trims by."""
        return f"{self.prefix}detection-times:{query_id}"

    def result(self, query_id: str, query_version: int, collection: str, item_id: str, model: str) -> str:
        """Marker that (query version, scene, model) has been processed: its detection ids."""
        return f"{self.prefix}result:{query_id}:{query_version}:{collection}/{item_id}:{model}"

    def published(self, query_id: str, query_version: int, collection: str, item_id: str, model: str) -> str:
        """Marker that a processed scene's detections were produced to the detections topic."""
        return f"{self.prefix}published:{query_id}:{query_version}:{collection}/{item_id}:{model}"

    def dispatch_attempts(self, group: str, topic: str, partition: int, offset: int) -> str:
        """Hash of a dispatcher group's attempts at one scene record (count, last error)."""
        return f"{self.prefix}attempts:{group}:{topic}:{partition}:{offset}"

    def last_scene(self, query_id: str) -> str:
        """The previous scene's detection geometries of a query (for change status)."""
        return f"{self.prefix}last-scene:{query_id}"

    def seen_items(self, source: str, collection: str) -> str:
        """Sorted set of item ids the watcher published for (source, collection), scored by the latest
        time a search window can start at and still return the item (epoch seconds)."""
        return f"{self.prefix}seen:{source}:{collection}"

    def high_water_mark(self, source: str, collection: str) -> str:
        """Latest item datetime (acquisition) the watcher has seen for (source, collection)."""
        return f"{self.prefix}hwm:{source}:{collection}"

    def publication_mark(self, source: str, collection: str) -> str:
        """Latest publication time the watcher has seen for (source, collection), where it searches by one."""
        return f"{self.prefix}pubmark:{source}:{collection}"

    def quicklook(self, item_href: str, max_side_px: int) -> str:
        """Hash of a scene's rendered quicklook (PNG and bounds) at one size."""
        digest = hashlib.sha256(f"{max_side_px}:{item_href}".encode()).hexdigest()[:32]
        return f"{self.prefix}quicklook:{digest}"

    def skipped_scenes(self, query_id: str) -> str:
        """Hash of the scenes a query matched but the dispatcher gave up on: ``collection/item_id`` ->
        JSON of a SkippedScene (one entry per scene, so a redelivered scene is counted once)."""
        return f"{self.prefix}query:{query_id}:skipped"

    def dead_letter_counts(self) -> str:
        """Hash of dead-lettered scenes by error code (refusals and other permanent failures)."""
        return f"{self.prefix}dead-letters"

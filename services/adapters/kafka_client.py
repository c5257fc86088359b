"""Kafka producer/consumer/admin factories with settings that work against the broker.

Consumers never auto-commit: the dispatcher commits offsets only after its results are durably
written (at-least-once delivery with idempotent writes: see services.dispatcher.consumer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from services.settings import KafkaSettings


def make_producer(settings: KafkaSettings, **overrides: Any) -> KafkaProducer:
    """A producer that waits for the broker's acknowledgement of every record (``acks='all'``)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "acks": "all",
        "retries": 5,
        "linger_ms": 5,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    return KafkaProducer(**(options | overrides))


def make_consumer(settings: KafkaSettings, *topics: str, group_id: str, **overrides: Any) -> KafkaConsumer:
    """A consumer-group member with manual commits, reading from the earliest uncommitted offset."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "max_poll_records": settings.max_poll_records,
        "request_timeout_ms": max(settings.request_timeout_ms, settings.session_timeout_ms + 1000),
    }
    return KafkaConsumer(*topics, **(options | overrides))


def ensure_topics(settings: KafkaSettings, topics: Iterable[str], *, partitions: int = 1) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=settings.client_id)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name=name, num_partitions=partitions, replication_factor=settings.topic_replication_factor
            )
            for name in topics
            if name not in existing
        ]
        # Another member may create them concurrently: that is what we wanted.
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()

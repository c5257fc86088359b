"""The dead-letter topic of the scenes topic: records the dispatcher gives up on, with the reason.

The original key and value travel unchanged (the record can be replayed after a fix); headers say why
(``error`` a short code, ``reason`` the message), where it came from (``source_topic``,
``source_partition``, ``source_offset``) and after how many attempts (``attempt``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from kafka import KafkaProducer

from services.contracts import Topics

log = logging.getLogger(__name__)

# Kafka headers are small by convention; a traceback-length reason is cut, not dropped.
MAX_REASON_CHARS = 2000


class SourceRecord(Protocol):
    """The parts of a consumed record a dead letter keeps (kafka-python's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter_headers(
    record: SourceRecord, *, error: str, reason: str, attempt: int
) -> list[tuple[str, bytes]]:
    """The headers of a dead letter (pure)."""
    return [
        ("error", error.encode()),
        ("reason", reason[:MAX_REASON_CHARS].encode()),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
        ("attempt", str(attempt).encode()),
    ]


class DeadLetterPublisher:
    """Produces failed records to ``Topics.dead_letter(<source topic>)`` and waits for the broker."""

    def __init__(self, producer: KafkaProducer, *, timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.timeout_s = timeout_s

    def send(self, record: SourceRecord, *, error: str, reason: str, attempt: int) -> None:
        """Dead-letter `record`; returns once the broker acknowledged it (raises otherwise)."""
        topic = Topics.dead_letter(record.topic)
        future = self.producer.send(
            topic,
            key=record.key,
            value=record.value,
            headers=dead_letter_headers(record, error=error, reason=reason, attempt=attempt),
        )
        self.producer.flush(timeout=self.timeout_s)
        future.get(timeout=self.timeout_s)
        log.warning(
            "%s[%d]@%d -> %s after %d attempt(s): %s: %s",
            record.topic,
            record.partition,
            record.offset,
            topic,
            attempt,
            error,
            reason,
        )

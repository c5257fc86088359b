"""Reading a whole topic partition back in tests, without a consumer group."""

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


def topic_records(
    bootstrap_servers: str, topic: str, partition: int = 0, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Every record of one partition of ``topic``, from the beginning to its end offset now.

    Reads until a poll comes back empty at or past the end offset: Tansu can report an end offset one
    past the *first* record of the last batch, so stopping at the reported end may miss records. Fails
    if the end is not reached within ``timeout_s``.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    where = TopicPartition(topic, partition)
    try:
        consumer.assign([where])
        consumer.seek_to_beginning(where)
        end = consumer.end_offsets([where])[where]
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=1000)
            for batch in polled.values():
                records.extend(batch)
            if not polled and consumer.position(where) >= end:
                return records
        raise TimeoutError(
            f"{topic}[{partition}]: at offset {consumer.position(where)} of {end} after {timeout_s} s"
        )
    finally:
        consumer.close(autocommit=False)

"""The Kafka adapter against the real Kafka-protocol broker (Tansu)."""

import time
import uuid

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from services.adapters.kafka_client import ensure_topics, make_consumer, make_producer


def _poll_until(consumer, want: int, timeout_s: float = 30.0) -> list:
    records: list = []
    deadline = time.monotonic() + timeout_s
    while len(records) < want and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500, max_records=want - len(records)).values():
            records.extend(batch)
    return records


def test_produce_consume_commit_and_resume_from_committed_offset(stack_settings):
    kafka = stack_settings.kafka
    topic = f"test-{uuid.uuid4().hex[:8]}"
    group = f"group-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka, [topic])
    ensure_topics(kafka, [topic])  # idempotent

    producer = make_producer(kafka)
    for n in range(10):
        producer.send(topic, key=f"k{n}".encode(), value=f"v{n}".encode())
    producer.flush(timeout=30)
    producer.close()

    partition = TopicPartition(topic, 0)
    first = make_consumer(kafka, topic, group_id=group)
    got = _poll_until(first, 4)
    assert [r.value for r in got] == [f"v{n}".encode() for n in range(4)]
    # Commit after "processing" the first four only, then leave the group without committing more.
    first.commit({partition: OffsetAndMetadata(got[-1].offset + 1, "", -1)})
    assert first.committed(partition) == 4
    first.close(autocommit=False)

    second = make_consumer(kafka, topic, group_id=group)
    rest = _poll_until(second, 6)
    second.close(autocommit=False)
    assert [r.offset for r in rest] == list(range(4, 10))
    assert [r.key for r in rest] == [f"k{n}".encode() for n in range(4, 10)]

"""Running a real dispatcher loop in a test, and waiting for its consumer group's commits."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kafka import KafkaAdminClient, TopicPartition

from services.dispatcher import Dispatcher
from services.settings import KafkaSettings


@contextmanager
def running(dispatcher: Dispatcher) -> Iterator[list[BaseException]]:
    """``dispatcher.run`` in a thread until the block ends (then stopped, joined and closed); yields the
    list its error lands in, and fails the test if there is one."""
    stop, errors = threading.Event(), []

    def loop() -> None:
        try:
            dispatcher.run(stop)
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=loop, name="dispatcher", daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(timeout=60)
        dispatcher.close()
    assert not errors, errors


def committed_offset(kafka: KafkaSettings, group: str, topic: str, partition: int = 0) -> int:
    """The group's committed offset of one partition (0 before any commit)."""
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    where = TopicPartition(topic, partition)
    try:
        committed = admin.list_group_offsets({group: [where]}).get(group, {}).get(where)
    finally:
        admin.close()
    return 0 if committed is None or committed.offset < 0 else committed.offset


def wait_committed(
    kafka: KafkaSettings,
    group: str,
    topic: str,
    want: int,
    errors: list[BaseException],
    deadline_s: float = 180.0,
) -> None:
    """Block until ``group`` has committed offset ``want`` of partition 0 of ``topic``; fails the test
    with the dispatcher's error if it died, or after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not errors:
        if committed_offset(kafka, group, topic) >= want:
            return
        time.sleep(0.2)
    if errors:
        raise AssertionError(f"the dispatcher failed: {errors[0]!r}") from errors[0]
    pytest.fail(f"group {group} did not commit offset {want} of {topic} within {deadline_s} s")


def dispatcher_of(env, segmenter) -> Dispatcher:
    """A dispatcher over ``env`` (anything with ``settings``, ``redis``, ``keys`` and ``topics``)."""
    return Dispatcher(env.settings, segmenter, redis_client=env.redis, keys=env.keys, topics=env.topics)


def wait_scenes_committed(env, errors: list[BaseException], want: int) -> None:
    """Block until ``env``'s dispatcher group has committed offset ``want`` of its scenes topic."""
    wait_committed(env.settings.kafka, env.settings.dispatcher.group_id, env.topics.scenes, want, errors)

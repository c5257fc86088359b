"""The Redis adapter against a real Redis server."""

import uuid

from services.adapters.redis_client import make_redis


def test_set_get_and_stream_consumer_group_round_trip(stack_settings):
    client = make_redis(stack_settings.redis)
    key = f"test:{uuid.uuid4().hex}"
    assert client.set(key, b"value", nx=True)
    assert not client.set(key, b"other", nx=True)  # idempotent-write guard used for detection ids
    assert client.get(key) == b"value"

    stream = f"stream:{uuid.uuid4().hex}"
    ids = [client.xadd(stream, {"n": str(n)}) for n in range(3)]
    client.xgroup_create(stream, "subscribers", id="0")
    first = client.xreadgroup("subscribers", "c1", {stream: ">"}, count=2)
    assert [entry_id for entry_id, _ in first[0][1]] == ids[:2]
    client.xack(stream, "subscribers", ids[0])
    # A consumer that restarts sees its unacknowledged entry again, then the rest.
    pending = client.xreadgroup("subscribers", "c1", {stream: "0"})
    assert [entry_id for entry_id, _ in pending[0][1]] == [ids[1]]
    rest = client.xreadgroup("subscribers", "c1", {stream: ">"})
    assert [fields[b"n"] for _, fields in rest[0][1]] == [b"2"]
    client.close()

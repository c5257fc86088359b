"""Query and detection stores against a real Redis."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.contracts import Detection, QueryCreate, QueryStatus, QueryUpdate
from services.store import DetectionStore, QueryNotFoundError, QueryStore
from tests.support.detections import make_detection

SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}


def _body(text="small airplanes") -> QueryCreate:
    return QueryCreate(text=text, aoi=SQUARE, collections=["s2"])


def test_queries_are_scoped_by_tenant(redis_client, keys):
    store = QueryStore(redis_client, keys)
    a = store.create(_body("ships"), tenant="acme")
    b = store.create(_body("tanks"), tenant="globex")
    assert [q.id for q in store.list(tenant="acme")] == [a.id]
    assert {q.id for q in store.list()} == {a.id, b.id}
    with pytest.raises(QueryNotFoundError):
        store.get(a.id, tenant="globex")
    with pytest.raises(QueryNotFoundError):
        store.delete(a.id, tenant="globex")
    assert store.get(a.id, tenant="acme") == a


def test_update_pause_and_delete(redis_client, keys):
    store = QueryStore(redis_client, keys)
    query = store.create(_body())
    paused = store.update(query.id, QueryUpdate(status="paused"))
    assert paused.status == QueryStatus.paused
    assert store.active() == []
    bumped = store.update(query.id, QueryUpdate(status="active", threshold=0.7))
    assert (bumped.version, store.get(query.id).threshold) == (2, 0.7)
    store.delete(query.id)
    with pytest.raises(QueryNotFoundError):
        store.get(query.id)
    assert store.list() == []


def _detection(query, item_id, geometry, acquired) -> Detection:
    return make_detection(query, "s2", item_id, geometry, acquired=acquired, score=0.9, score_max=0.99)


def test_scene_results_are_written_once_and_streamed_once(redis_client, keys):
    query = QueryStore(redis_client, keys).create(_body())
    store = DetectionStore(redis_client, keys)
    geometry = {
        "type": "Polygon",
        "coordinates": [[[10.01, 50.01], [10.02, 50.01], [10.02, 50.02], [10.01, 50.01]]],
    }
    detections = [_detection(query, "item-1", geometry, datetime(2026, 11, 1, tzinfo=UTC))]
    first = store.write_scene(query, "s2", "item-1", "m", detections)
    again = store.write_scene(query, "s2", "item-1", "m", detections)  # a redelivered scene
    assert first.written
    assert not again.written
    assert first.detection_ids == again.detection_ids
    assert redis_client.xlen(keys.detection_stream(query.id)) == 1
    assert store.scene_detections(query, "s2", "item-1", "m") == detections
    assert store.previous_geometries(query.id) == [geometry]
    empty = store.write_scene(query, "s2", "item-2", "m", [])
    assert empty.written
    assert store.previous_geometries(query.id) == []
    assert [d.id for d in store.list(query.id)] == first.detection_ids
    assert store.list(query.id, bbox=(0, 0, 1, 1)) == []
    assert store.list(query.id, since=datetime(2026, 11, 2, tzinfo=UTC)) == []


def _square(lon: float) -> dict:
    ring = [[lon, 50.01], [lon + 0.01, 50.01], [lon + 0.01, 50.02], [lon, 50.02], [lon, 50.01]]
    return {"type": "Polygon", "coordinates": [ring]}


def _query_keys(keys, query_id: str) -> list[str]:
    return [
        keys.detections(query_id),
        keys.detection_times(query_id),
        keys.detection_stream(query_id),
        keys.last_scene(query_id),
    ]


def test_without_a_retention_nothing_expires(redis_client, keys):
    query = QueryStore(redis_client, keys).create(_body())
    store = DetectionStore(redis_client, keys)
    store.write_scene(
        query,
        "s2",
        "item-1",
        "m",
        [_detection(query, "item-1", _square(10.0), datetime(2026, 11, 1, tzinfo=UTC))],
    )
    marker = store.result_key(query, "s2", "item-1", "m")
    assert [redis_client.pttl(key) for key in [*_query_keys(keys, query.id), marker]] == [-1] * 5


def test_detections_older_than_the_retention_go_when_the_next_scene_is_stored(redis_client, keys):
    retention = timedelta(seconds=3)
    query = QueryStore(redis_client, keys).create(_body())
    store = DetectionStore(redis_client, keys, retention=retention)

    def write(item_id: str, lon: float) -> str:
        detection = _detection(query, item_id, _square(lon), datetime(2026, 11, 1, tzinfo=UTC))
        assert store.write_scene(query, "s2", item_id, "m", [detection]).written
        return detection.id

    old = write("item-old", 10.0)
    time.sleep(retention.total_seconds() / 2 + 0.1)
    kept = write("item-kept", 10.03)
    time.sleep(retention.total_seconds() / 2 + 0.1)
    new = write("item-new", 10.06)  # "item-old" is now older than the retention; "item-kept" is not

    assert {d.id for d in store.list(query.id)} == {kept, new}
    assert store.get(query.id, old) is None
    times = redis_client.zrange(keys.detection_times(query.id), 0, -1)
    assert {member.decode() for member in times} == {kept, new}
    streamed = redis_client.xrange(keys.detection_stream(query.id))
    assert [fields[b"id"].decode() for _, fields in streamed] == [kept, new]
    assert store.scene_detections(query, "s2", "item-old", "m") is None  # its marker expired
    assert [d.id for d in store.scene_detections(query, "s2", "item-kept", "m")] == [kept]
    # Every key of the query expires once no scene has come for the retention.
    markers = [store.result_key(query, "s2", item, "m") for item in ("item-kept", "item-new")]
    for key in [*_query_keys(keys, query.id), *markers]:
        assert 0 < redis_client.pttl(key) <= retention.total_seconds() * 1000, key


def test_a_retention_must_be_positive(redis_client, keys):
    with pytest.raises(ValueError, match="retention"):
        DetectionStore(redis_client, keys, retention=timedelta(0))

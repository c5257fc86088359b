"""Contracts: validation names the field and the reason; ids are deterministic; messages round-trip."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.contracts import (
    Delivery,
    Detection,
    Query,
    QueryCreate,
    QueryUpdate,
    RedisKeys,
    SceneMessage,
    Topics,
    detection_id,
    item_time,
    normalize_text,
)

SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}


def _query(**overrides) -> dict:
    return {
        "text": "small airplanes at the airport",
        "aoi": SQUARE,
        "collections": ["sentinel-2-l2a"],
    } | overrides


def _error_fields(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"text": "   "}, "text", "only whitespace"),
        ({"text": "x" * 10_000}, "text", "at most 500"),
        ({"threshold": 1.5}, "threshold", "less than or equal to 1"),
        ({"collections": []}, "collections", "at least 1"),
        ({"collections": ["bad id!"]}, "collections", "not a valid STAC collection id"),
        (
            {"aoi": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
            "aoi",
            "Self-intersection",
        ),
        (
            {"aoi": {"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [200, 1], [0, 0]]]}},
            "aoi",
            "outside lon",
        ),
        (
            {
                "aoi": {
                    "type": "Polygon",
                    "coordinates": [[[-60, -30], [60, -30], [60, 30], [-60, 30], [-60, -30]]],
                }
            },
            "aoi",
            "km²",
        ),
        ({"aoi": {"type": "Point", "coordinates": [0, 0]}}, "aoi", "does not match any of the expected tags"),
        ({"delivery": {"webhook_url": "https://example.org/hook"}}, "delivery", "webhook_secret is required"),
        (
            {"delivery": {"webhook_url": "https://example.org/hook", "webhook_secret": ""}},
            "delivery",
            "webhook_secret must not be empty",
        ),
        (
            {"delivery": {"webhook_url": "https://example.org/hook", "webhook_secret": "whsec_not base64!"}},
            "delivery",
            "a whsec_ secret must be base64",
        ),
        (
            {"delivery": {"webhook_url": "https://example.org/hook", "webhook_secret": "whsec_"}},
            "delivery",
            "holds no key bytes",
        ),
    ],
)
def test_bad_queries_are_refused_with_field_and_reason(overrides, field, reason):
    with pytest.raises(ValidationError) as excinfo:
        QueryCreate.model_validate(_query(**overrides))
    assert field in _error_fields(excinfo.value)
    assert reason in str(excinfo.value)


def test_update_bumps_version_only_when_detection_semantics_change():
    query = Query.model_validate(_query())
    assert query.apply(QueryUpdate(status="paused")).version == 1
    assert query.apply(QueryUpdate(threshold=0.8)).version == 2
    assert query.apply(QueryUpdate(threshold=query.threshold)).version == 1


def test_public_form_hides_the_webhook_secret_but_storage_keeps_it():
    query = Query.model_validate(
        _query(delivery={"webhook_url": "https://example.org/hook", "webhook_secret": "s3cret"})
    )
    public = json.loads(query.model_dump_json())  # what the API answers (its response model is Query)
    assert public["delivery"]["webhook_secret"] == "**********"
    assert "s3cret" not in query.model_dump_json()
    restored = Query.model_validate_json(query.stored())
    assert restored.delivery.webhook_secret.get_secret_value() == "s3cret"
    assert restored == query


@pytest.mark.parametrize(
    ("secret", "key"),
    [("s3cret", b"s3cret"), ("whsec_czNjcmV0", b"s3cret"), ("whsec_czNjcmV0ZQ", b"s3crete")],
)
def test_webhook_key_reads_the_standard_webhooks_form_and_plain_secrets(secret, key):
    delivery = Delivery(webhook_url="https://example.org/hook", webhook_secret=secret)
    assert delivery.webhook_key() == key


def test_detection_ids_are_deterministic_and_sensitive_to_every_input():
    geometry = {"type": "Polygon", "coordinates": [[[10, 50], [10.01, 50], [10.01, 50.01], [10, 50]]]}
    args = ("q1", 1, "s2", "item-1", "danet-lite@1", geometry)
    assert detection_id(*args) == detection_id(*args)
    assert len({detection_id(*args), detection_id("q2", *args[1:]), detection_id("q1", 2, *args[2:])}) == 3


def test_detection_feature_round_trip():
    detection = Detection(
        id="abc", query_id="q1", query_version=1, query_text="ships", collection="s2", item_id="i1",
        acquired=datetime(2026, 11, 1, tzinfo=UTC), detected_at=datetime(2026, 11, 2, tzinfo=UTC),
        model="danet-lite", score=0.8, score_max=0.95, area_m2=1200.0, pixel_count=12,
        geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
    )  # fmt: skip
    feature = detection.to_feature()
    assert feature["id"] == "abc"
    assert feature["properties"]["change"] == "new"
    assert Detection.from_feature(feature) == detection
    # The one wire form: the typed Feature, its dict and its JSON say the same.
    assert json.loads(detection.feature_json()) == feature == detection.feature().model_dump(mode="json")
    assert set(feature) == {"type", "id", "geometry", "properties"}  # no "bbox": null


def test_detection_geometry_is_a_typed_polygon_or_multipolygon():
    fields = {
        "id": "abc", "query_id": "q1", "query_version": 1, "query_text": "ships", "collection": "s2",
        "item_id": "i1", "acquired": None, "detected_at": datetime.now(UTC), "model": "m", "score": 0.5,
        "score_max": 0.9, "area_m2": 1.0, "pixel_count": 3,
    }  # fmt: skip
    ring = [[0, 0], [1, 0], [1, 1], [0, 0]]
    assert Detection(**fields, geometry={"type": "Polygon", "coordinates": [ring]}).geometry.type == "Polygon"
    multi = Detection(**fields, geometry={"type": "MultiPolygon", "coordinates": [[ring]]})
    assert multi.geometry.type == "MultiPolygon"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        Detection(**fields, geometry={"type": "Point", "coordinates": [0, 0]})
    with pytest.raises(ValidationError, match="same start and end"):
        Detection(**fields, geometry={"type": "Polygon", "coordinates": [[*ring[:-1], [2, 2]]]})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-06-01T12:00:00Z", datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("2024-06-01t12:00:00z", datetime(2024, 6, 1, 12, tzinfo=UTC)),  # RFC 3339 allows lower case
        ("2024-06-01T14:00:00+02:00", datetime(2024, 6, 1, 12, tzinfo=UTC)),
        ("2024-06-01T12:00:00.123456789Z", datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-06-01T12:00:00", datetime(2024, 6, 1, 12, tzinfo=UTC)),  # no offset: UTC, not local time
        (None, None),
    ],
)
def test_item_times_read_as_utc_by_the_one_parser(value, expected):
    parsed = item_time({"datetime": value}, "datetime")
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is UTC


def test_an_item_time_that_is_no_date_time_names_its_field():
    with pytest.raises(ValueError, match=r"properties\.start_datetime: 'soon' is not an RFC 3339 date-time"):
        item_time({"start_datetime": "soon"}, "start_datetime")


def test_scene_message_round_trip_and_refusals():
    message = SceneMessage(
        collection="s2", item_id="i1", item={"id": "i1", "type": "Feature"}, observed_at=datetime.now(UTC)
    )
    assert message.key == "s2/i1"
    assert SceneMessage.from_bytes(message.to_bytes()) == message
    with pytest.raises(ValidationError, match="needs the STAC item or an href"):
        SceneMessage(collection="s2", item_id="i1", observed_at=datetime.now(UTC))
    with pytest.raises(ValidationError, match="differs from item_id"):
        SceneMessage(collection="s2", item_id="i1", item={"id": "other"}, observed_at=datetime.now(UTC))
    with pytest.raises(ValidationError):
        SceneMessage.from_bytes(b"{not json")


def test_topics_and_keys():
    topics = Topics()
    assert topics.all() == ["scenes", "detections", "scenes.dlq"]
    keys = RedisKeys()
    assert normalize_text("  Small\tAirplanes ") == "small airplanes"
    assert keys.text_embedding("minilm", "1", "Small  airplanes") == keys.text_embedding(
        "minilm", "1", "small airplanes"
    )
    assert keys.text_embedding("minilm", "1", "ships") != keys.text_embedding("minilm", "2", "ships")

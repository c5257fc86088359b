"""The API's filter parameters: datetime intervals, bboxes, stream positions."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.api.errors import InvalidParameterError
from services.api.filters import TimeInterval, parse_bbox, parse_datetime_interval, parse_stream_id

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, TimeInterval()),
        ("2026-01-01T00:00:00Z", TimeInterval(JAN, JAN)),
        ("2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", TimeInterval(JAN, FEB)),
        ("2026-01-01T00:00:00Z/..", TimeInterval(JAN, None)),
        ("../2026-02-01T00:00:00Z", TimeInterval(None, FEB)),
        ("/2026-02-01T00:00:00Z", TimeInterval(None, FEB)),
        ("2026-01-01T01:00:00+01:00/", TimeInterval(JAN, None)),
    ],
)
def test_datetime_instants_and_intervals(text, expected):
    assert parse_datetime_interval(text) == expected


def test_offsets_are_kept():
    parsed = parse_datetime_interval("2026-01-01T05:30:00+05:30")
    assert parsed.start == JAN
    assert parsed.start.utcoffset() == timedelta(hours=5, minutes=30)
    assert parsed.start.tzinfo == timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("yesterday", "not an RFC 3339 date-time"),
        ("2026-01-01T00:00:00", "has no time zone"),
        ("2026-01-01T00:00:00Z/2026-02-01T00:00:00Z/..", "exactly one '/'"),
        ("../..", "both ends of the interval are open"),
        ("2026-02-01T00:00:00Z/2026-01-01T00:00:00Z", "the end is before the start"),
    ],
)
def test_bad_datetimes_name_the_field_and_reason(text, reason):
    with pytest.raises(InvalidParameterError, match=reason) as info:
        parse_datetime_interval(text)
    assert info.value.field == "datetime"


def test_bbox_plain_3d_and_across_the_antimeridian():
    assert parse_bbox(None) == []
    assert parse_bbox("10,50,10.1,50.1") == [(10.0, 50.0, 10.1, 50.1)]
    assert parse_bbox("10, 50, 0, 10.1, 50.1, 100") == [(10.0, 50.0, 10.1, 50.1)]
    assert parse_bbox("170,-10,-170,10") == [(170.0, -10.0, 180.0, 10.0), (-180.0, -10.0, -170.0, 10.0)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,2,3", "expected 4 numbers"),
        ("a,b,c,d", "comma-separated numbers"),
        ("0,0,nan,1", "finite"),
        ("0,0,181,1", "longitudes"),
        ("0,-91,1,1", "latitudes"),
        ("0,5,1,1", "miny is greater than maxy"),
    ],
)
def test_bad_bboxes_name_the_field_and_reason(text, reason):
    with pytest.raises(InvalidParameterError, match=reason) as info:
        parse_bbox(text)
    assert info.value.field == "bbox"


def test_stream_positions():
    assert parse_stream_id("0", "from") == "0"
    assert parse_stream_id(" 1767225600000-3 ", "Last-Event-ID") == "1767225600000-3"
    with pytest.raises(InvalidParameterError, match="not a stream position") as info:
        parse_stream_id("$", "Last-Event-ID")
    assert info.value.field == "Last-Event-ID"

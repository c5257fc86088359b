"""Parsing of the API's filter parameters (pure functions: strings in, typed values or an error out).

- ``datetime``: an RFC 3339 instant or an interval ``start/end`` whose open ends are ``..`` or empty
  (OGC API - Features and STAC API conventions).
- ``bbox``: ``minx,miny,maxx,maxy`` in CRS84 (a 6-number 3D bbox keeps its horizontal part); a
  ``minx`` greater than ``maxx`` crosses the antimeridian and is split into two boxes.
- stream positions (SSE ``Last-Event-ID`` / ``from``): Redis Stream entry ids.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from services.api.errors import InvalidParameterError

BBox = tuple[float, float, float, float]
OPEN_END = ("", "..")
_STREAM_ID = re.compile(r"^\d+(-\d+)?$")


@dataclass(frozen=True)
class TimeInterval:
    """A closed time interval; ``None`` marks an open end."""

    start: datetime | None = None
    end: datetime | None = None


def _instant(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameterError(field, f"{text!r} is not an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise InvalidParameterError(
            field, f"{text!r} has no time zone; RFC 3339 needs one, e.g. 2026-01-31T12:00:00Z"
        )
    return value


def parse_datetime_interval(text: str | None, field: str = "datetime") -> TimeInterval:
    """``None`` or ``"2026-01-01T00:00:00Z"`` or ``"a/b"`` with ``..`` (or nothing) for an open end."""
    if text is None:
        return TimeInterval()
    parts = text.split("/")
    if len(parts) == 1:
        instant = _instant(text.strip(), field)
        return TimeInterval(instant, instant)
    if len(parts) != 2:
        raise InvalidParameterError(field, f"{text!r}: an interval has exactly one '/' (start/end)")
    start_text, end_text = (p.strip() for p in parts)
    start = None if start_text in OPEN_END else _instant(start_text, field)
    end = None if end_text in OPEN_END else _instant(end_text, field)
    if start is None and end is None:
        raise InvalidParameterError(field, "both ends of the interval are open; omit the parameter instead")
    if start is not None and end is not None and end < start:
        raise InvalidParameterError(field, f"{text!r}: the end is before the start")
    return TimeInterval(start, end)


def parse_bbox(text: str | None, field: str = "bbox") -> list[BBox]:
    """The boxes (one, or two across the antimeridian) of a CRS84 ``bbox`` parameter; [] when absent."""
    if text is None:
        return []
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidParameterError(field, f"{text!r}: expected comma-separated numbers") from None
    if len(numbers) == 6:  # minx, miny, minz, maxx, maxy, maxz
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise InvalidParameterError(field, f"{text!r}: expected 4 numbers minx,miny,maxx,maxy (or 6 in 3D)")
    if not all(math.isfinite(n) for n in numbers):
        raise InvalidParameterError(field, f"{text!r}: numbers must be finite")
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise InvalidParameterError(field, f"{text!r}: longitudes must lie in [-180, 180] (CRS84 lon/lat)")
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InvalidParameterError(field, f"{text!r}: latitudes must lie in [-90, 90] (CRS84 lon/lat)")
    if miny > maxy:
        raise InvalidParameterError(field, f"{text!r}: miny is greater than maxy")
    if minx > maxx:
        return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
    return [(minx, miny, maxx, maxy)]


def parse_stream_id(text: str, field: str) -> str:
    """A Redis Stream entry id (``ms-seq``, or ``ms``/``0``) to read after."""
    value = text.strip()
    if not _STREAM_ID.match(value):
        raise InvalidParameterError(field, f"{text!r} is not a stream position (e.g. 0 or 1767225600000-0)")
    return value

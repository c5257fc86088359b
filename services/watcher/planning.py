"""What the watcher searches: pure functions from active queries and high-water marks to searches.

A search target is one (source, collection) pair with the union of the AOIs of every active query that
watches it. Its time window starts at the high-water mark minus an overlap (late-arriving items are
caught again and deduplicated), or, before any item was seen, at the earliest backfill start of its
queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from services.contracts import Query, item_time

# A search geometry travels in every request body; past this many vertices the union of the AOIs'
# bounding boxes is sent instead. It covers more ground, which is safe: the dispatcher matches each
# scene against the exact AOIs.
MAX_SEARCH_VERTICES = 2000


@dataclass(frozen=True)
class WatchTarget:
    """One (source, collection) to search, over the AOI union of the queries that watch it."""

    source: str
    collection: str
    aoi: BaseGeometry
    backfill_start: datetime
    query_ids: tuple[str, ...]

    def intersects(self) -> dict[str, Any]:
        """The AOI union as a GeoJSON geometry (CRS84), the STAC search ``intersects`` parameter."""
        return mapping(self.aoi)


def api_source_name(url: str) -> str:
    """The name a STAC API is known by (dedup and high-water keys, status): its URL without a trailing /."""
    return url.rstrip("/")


def sources_of(query: Query, default_sources: Sequence[str]) -> list[str]:
    """The sources a query watches: its own STAC API when set, else the service's default sources."""
    if query.stac_api is not None:
        return [api_source_name(str(query.stac_api))]
    return list(default_sources)


def search_geometry(aois: Sequence[BaseGeometry]) -> BaseGeometry:
    """The union of the AOIs, or of their bounding boxes when the exact union has too many vertices."""
    union = shapely.union_all(list(aois))
    if shapely.get_num_coordinates(union) <= MAX_SEARCH_VERTICES:
        return union
    return shapely.union_all([box(*aoi.bounds) for aoi in aois])


def plan_targets(
    queries: Iterable[Query], default_sources: Sequence[str], *, now: datetime, overlap: timedelta
) -> list[WatchTarget]:
    """One target per (source, collection) watched by the queries, in a stable order.

    A query without ``start`` wants scenes from now on; ``now - overlap`` gives it the same margin
    for late-arriving items as every later poll has.
    """
    aois: dict[tuple[str, str], list[BaseGeometry]] = defaultdict(list)
    starts: dict[tuple[str, str], datetime] = {}
    ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    for query in queries:
        start = query.start or now - overlap
        for source in sources_of(query, default_sources):
            for collection in query.collections:
                pair = (source, collection)
                aois[pair].append(query.geometry)
                starts[pair] = min(starts.get(pair, start), start)
                ids[pair].append(query.id)
    return [
        WatchTarget(pair[0], pair[1], search_geometry(aois[pair]), starts[pair], tuple(ids[pair]))
        for pair in sorted(aois)
    ]


def window_start(
    high_water: datetime | None, backfill_start: datetime, overlap: timedelta, cursor: datetime | None = None
) -> datetime:
    """Where a search starts.

    ``cursor`` is the datetime of the last item of a previous poll that hit the per-poll item cap:
    the next poll continues from there instead of re-reading the overlap (which could hold more items
    than the cap and never move forward). Without a high-water mark, the backfill start applies.
    """
    if cursor is not None:
        return cursor
    if high_water is None:
        return backfill_start
    return high_water - overlap


def datetime_interval(start: datetime) -> str:
    """An open-ended RFC 3339 interval ``<start>/..`` (UTC, ``Z``) for the STAC ``datetime`` parameter."""
    return f"{start.astimezone(UTC).isoformat().replace('+00:00', 'Z')}/.."


def item_datetime(item: dict[str, Any]) -> datetime:
    """An item's acquisition time: ``datetime``, or ``start_datetime`` for items that carry a range."""
    properties = item.get("properties") or {}
    acquired = item_time(properties, "datetime") or item_time(properties, "start_datetime")
    if acquired is None:
        raise ValueError(f"item {item.get('id')!r}: properties.datetime and start_datetime are both missing")
    return acquired


def advance_high_water(
    high_water: datetime | None, seen: Iterable[datetime], now: datetime
) -> datetime | None:
    """The new high-water mark: the latest item datetime seen so far, never later than ``now``.

    The cap keeps an item dated in the future (bad metadata) from pushing the window past items that
    are still to come; such an item is simply found again, and deduplicated, on later polls.
    """
    latest = max(seen, default=None)
    if latest is None:
        return high_water
    latest = min(latest, now)
    return latest if high_water is None else max(high_water, latest)


@dataclass(frozen=True)
class DatedItem:
    """A search result with its id and acquisition time parsed."""

    item_id: str
    acquired: datetime
    item: dict[str, Any]


def parse_items(items: Iterable[dict[str, Any]]) -> tuple[list[DatedItem], list[str]]:
    """Items with an id and a datetime, first occurrence of each id only (APIs can repeat an item
    across pages), oldest first; plus one message per item that was left out and why."""
    parsed: dict[str, DatedItem] = {}
    problems: list[str] = []
    for item in items:
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            problems.append(f"an item without an id was left out (bbox {item.get('bbox')})")
            continue
        try:
            acquired = item_datetime(item)
        except ValueError as error:
            problems.append(str(error))
            continue
        parsed.setdefault(item_id, DatedItem(item_id, acquired, item))
    return sorted(parsed.values(), key=lambda dated: dated.acquired), problems

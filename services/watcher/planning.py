"""What the watcher searches: pure functions from active queries and high-water marks to searches.

A search target is one (source, collection) pair with the union of the AOIs of every active query that
watches it. Each poll searches it by acquisition time and, where the API can filter items on a
publication time (``watcher.publication_field``, e.g. ``created``) and the items it finds carry one (or
no item was found yet), by publication time too:

- the acquisition window starts at the high-water mark (latest acquisition seen) minus the collection's
  overlap, or, before any item was seen, at the earliest backfill start of its queries. It finds items
  published at most that overlap after their acquisition, and items without a publication time;
- the publication window starts at the publication mark (latest publication seen) minus
  ``publication_overlap``. It finds items however long after their acquisition they were published.

Items found by both, or again by a later poll, are deduplicated by id; a dedup entry is kept until
neither window can return its item again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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


def collection_overlap(
    collection: str, overlap: timedelta, by_collection: Mapping[str, timedelta]
) -> timedelta:
    """The acquisition-window overlap of a collection: its own (``watcher.collection_overlap_s``) or the
    default (``watcher.overlap_s``)."""
    return by_collection.get(collection, overlap)


def plan_targets(
    queries: Iterable[Query],
    default_sources: Sequence[str],
    *,
    now: datetime,
    overlap: timedelta,
    by_collection: Mapping[str, timedelta] | None = None,
) -> list[WatchTarget]:
    """One target per (source, collection) watched by the queries, in a stable order.

    A query without ``start`` wants scenes from now on; ``now - overlap`` (the collection's overlap)
    gives it the same margin for late-arriving items as every later poll has.
    """
    aois: dict[tuple[str, str], list[BaseGeometry]] = defaultdict(list)
    starts: dict[tuple[str, str], datetime] = {}
    ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    for query in queries:
        for source in sources_of(query, default_sources):
            for collection in query.collections:
                pair = (source, collection)
                start = query.start or now - collection_overlap(collection, overlap, by_collection or {})
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
    """Where the acquisition-time search starts.

    ``cursor`` is the datetime of the last item of a previous poll that hit the per-poll item cap:
    the next poll continues from there instead of re-reading the overlap (which could hold more items
    than the cap and never move forward). Without a high-water mark, the backfill start applies.
    """
    if cursor is not None:
        return cursor
    if high_water is None:
        return backfill_start
    return high_water - overlap


def capped_cursor(times: Sequence[datetime], capped: bool) -> datetime | None:
    """Where the next search continues when this one was cut at ``max_items_per_poll``: its latest item
    (results come oldest first). Re-reading the window instead could hold more items than the cap and
    never move forward. None when the search was not cut."""
    return max(times) if capped and times else None


def publication_window_start(
    mark: datetime | None, now: datetime, overlap: timedelta, cursor: datetime | None = None
) -> datetime:
    """Where the publication-time search starts: the publication mark minus ``overlap`` (catalogs do not
    make items searchable in the exact order of their publication times), or the cursor of a previous
    capped poll.

    Before the first publication search (no mark) it starts at ``now - overlap``: items published
    earlier are the acquisition window's to find, backfill included.
    """
    if cursor is not None:
        return cursor
    return (now if mark is None else mark) - overlap


def sort_ascending(field: str) -> list[dict[str, str]]:
    """The STAC ``sortby`` of an item property, oldest first."""
    return [{"field": f"properties.{field}", "direction": "asc"}]


def datetime_interval(start: datetime) -> str:
    """An open-ended RFC 3339 interval ``<start>/..`` (UTC, ``Z``) for the STAC ``datetime`` parameter."""
    return f"{start.astimezone(UTC).isoformat().replace('+00:00', 'Z')}/.."


def item_datetime(item: dict[str, Any]) -> datetime:
    """An item's acquisition time: ``start_datetime`` for items that carry a range (with or without
    ``datetime``), else ``datetime``.

    The start, as pgstac sorts ranges by it: a capped poll's cursor then never passes an item the
    cap cut off.
    """
    properties = item.get("properties") or {}
    try:
        acquired = item_time(properties, "start_datetime") or item_time(properties, "datetime")
    except ValueError as error:
        raise ValueError(f"item {item.get('id')!r}: {error}") from None
    if acquired is None:
        raise ValueError(f"item {item.get('id')!r}: properties.datetime and start_datetime are both missing")
    return acquired


def item_acquired_until(item: dict[str, Any], acquired: datetime) -> datetime:
    """The end of an item's acquisition: ``end_datetime`` of a range, else its acquisition time.

    A STAC API's datetime search matches a range that merely overlaps the window, so the item comes
    back on every poll until the window starts after its end.
    """
    try:
        end = item_time(item.get("properties") or {}, "end_datetime")
    except ValueError as error:
        raise ValueError(f"item {item.get('id')!r}: {error}") from None
    return acquired if end is None else max(end, acquired)


def item_published(item: dict[str, Any], field: str | None) -> datetime | None:
    """When the catalog published an item (its ``field`` property, e.g. ``created``); None when the
    field is off, missing or not a date-time."""
    if field is None:
        return None
    try:
        return item_time(item.get("properties") or {}, field)
    except ValueError:
        return None


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
    """A search result with its id and times parsed."""

    item_id: str
    acquired: datetime
    acquired_until: datetime
    published: datetime | None
    item: dict[str, Any]

    @property
    def last_found(self) -> datetime:
        """The latest window start that can still return the item: the end of its acquisition or its
        publication, whichever is later. Its dedup entry must outlive every window that starts before."""
        return self.acquired_until if self.published is None else max(self.acquired_until, self.published)


def merge_found(*found: Iterable[DatedItem]) -> list[DatedItem]:
    """Items of several searches, the first occurrence of each id only, oldest first."""
    merged: dict[str, DatedItem] = {}
    for items in found:
        for item in items:
            merged.setdefault(item.item_id, item)
    return sorted(merged.values(), key=lambda dated: dated.acquired)


def parse_items(
    items: Iterable[dict[str, Any]], publication_field: str | None = None
) -> tuple[list[DatedItem], list[str]]:
    """Items with an id and a datetime, first occurrence of each id only (APIs can repeat an item
    across pages, and both searches can find it), oldest first; plus one message per item that was left
    out and why. Nothing else is required of an item here (no ``gsd``, no assets)."""
    parsed: dict[str, DatedItem] = {}
    problems: list[str] = []
    for item in items:
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            problems.append(f"an item without an id was left out (bbox {item.get('bbox')})")
            continue
        if item_id in parsed:
            continue
        try:
            acquired = item_datetime(item)
            until = item_acquired_until(item, acquired)
        except ValueError as error:
            problems.append(str(error))
            continue
        parsed[item_id] = DatedItem(item_id, acquired, until, item_published(item, publication_field), item)
    return sorted(parsed.values(), key=lambda dated: dated.acquired), problems

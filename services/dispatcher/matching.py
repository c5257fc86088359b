"""Which active standing queries a new scene concerns (pure: a STAC item and queries in, queries out).

A scene matches a query when the query is active, watches the scene's collection (and STAC API, when it
pins one), its AOI intersects the item footprint, the item's ``eo:cloud_cover`` is within the query's
``filters.max_cloud_cover`` (when both are present), the item's acquisition time lies within the query's
[start, end] (when set), and the query does not pin another model than the dispatcher's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from services.contracts import Query, QueryStatus, item_time


@dataclass(frozen=True)
class SceneFacts:
    """What matching needs to know about a scene, read once from its STAC item.

    `start`/`end` are the acquisition interval (equal for an item with a single ``datetime``);
    `footprint` is the item geometry in CRS84, None when the item has none.
    """

    collection: str
    footprint: BaseGeometry | None
    start: datetime | None
    end: datetime | None
    cloud_cover: float | None
    source: str = ""


def scene_facts(collection: str, item: Mapping[str, Any], source: str = "") -> SceneFacts:
    """Read the matching facts of a STAC item dict (raises ValueError naming a malformed field)."""
    props = item.get("properties") or {}
    geometry = item.get("geometry")
    try:
        footprint = shape(geometry) if geometry else None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"geometry: not a GeoJSON geometry: {exc}") from exc
    start = item_time(props, "datetime")
    end = start
    if start is None:
        start = item_time(props, "start_datetime")
        end = item_time(props, "end_datetime") or start
    cloud = props.get("eo:cloud_cover")
    try:
        cloud_cover = None if cloud is None else float(cloud)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"properties.eo:cloud_cover: {cloud!r} is not a number") from exc
    return SceneFacts(
        collection=collection,
        footprint=footprint,
        start=start,
        end=end,
        cloud_cover=cloud_cover,
        source=source,
    )


def mismatch(query: Query, facts: SceneFacts, model_name: str | None = None) -> str | None:
    """Why `query` does not concern the scene, or None when it matches."""
    if query.status != QueryStatus.active:
        return f"query is {query.status.value}"
    if facts.collection not in query.collections:
        return f"collection {facts.collection!r} is not watched"
    # A query that pins a STAC API only takes scenes from it (URLs compared without trailing slash).
    pinned = str(query.stac_api).rstrip("/") if query.stac_api is not None else None
    if pinned and facts.source and pinned != facts.source.rstrip("/"):
        return f"scene comes from {facts.source}, the query watches {query.stac_api}"
    if model_name is not None and query.model_version not in (None, model_name):
        return f"query pins model {query.model_version!r}, this dispatcher serves {model_name!r}"
    if facts.footprint is None:
        return "item has no geometry"
    if not query.geometry.intersects(facts.footprint):
        return "AOI does not intersect the item footprint"
    limit = query.filters.max_cloud_cover
    if limit is not None and facts.cloud_cover is not None and facts.cloud_cover > limit:
        return f"cloud cover {facts.cloud_cover}% is above {limit}%"
    if query.start is not None or query.end is not None:
        if facts.start is None:
            return "item has no acquisition time and the query has a time window"
        if query.start is not None and (facts.end or facts.start) < query.start:
            return f"acquired {facts.start.isoformat()}, before the query's start"
        if query.end is not None and facts.start > query.end:
            return f"acquired {facts.start.isoformat()}, after the query's end"
    return None


def matching_queries(
    queries: Sequence[Query], facts: SceneFacts, model_name: str | None = None
) -> list[Query]:
    """The queries the scene concerns, in the given order."""
    return [q for q in queries if mismatch(q, facts, model_name) is None]

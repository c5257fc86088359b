"""A query's detections as a GeoJSON FeatureCollection: ``/queries/{id}/detections``."""

# Annotations are evaluated eagerly (no __future__ import): FastAPI resolves the closure's Tenant alias.

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.api.context import ApiContext
from services.api.errors import GEOJSON_ROUTE_ERROR_RESPONSES
from services.api.filters import BBox, TimeInterval, parse_bbox, parse_datetime_interval
from services.api.geojson import GeoJSONResponse, feature_collection
from services.api.responses import DetectionCollection
from services.contracts import ChangeStatus, Detection
from services.store import DetectionStore

MAX_LIMIT = 10_000
DATETIME_HELP = "RFC 3339 instant or interval start/end; '..' for an open end"
BBOX_HELP = "minx,miny,maxx,maxy in CRS84 (lon/lat)"


def select_detections(
    store: DetectionStore,
    query_id: str,
    interval: TimeInterval,
    boxes: list[BBox],
    change: ChangeStatus | None = None,
) -> list[Detection]:
    """A query's detections, newest acquisition first, filtered by time, any of ``boxes`` and change."""
    if len(boxes) <= 1:
        return store.list(
            query_id,
            since=interval.start,
            until=interval.end,
            bbox=boxes[0] if boxes else None,
            change=change,
        )
    # A bbox across the antimeridian is two boxes: merge both answers, keeping the store's order.
    merged = {
        d.id: d
        for box in boxes
        for d in store.list(query_id, since=interval.start, until=interval.end, bbox=box, change=change)
    }
    return sorted(merged.values(), key=lambda d: (d.acquired or d.detected_at, d.id), reverse=True)


def build_router(ctx: ApiContext) -> APIRouter:
    """The detections listing route."""
    router = APIRouter(tags=["detections"], responses=GEOJSON_ROUTE_ERROR_RESPONSES)
    Tenant = Annotated[str, Depends(ctx.tenant)]

    @router.get(
        "/queries/{query_id}/detections",
        response_class=GeoJSONResponse,
        response_model=DetectionCollection,
    )
    def list_detections(
        query_id: str,
        tenant: Tenant,
        datetime: Annotated[str | None, Query(description=DATETIME_HELP)] = None,
        bbox: Annotated[str | None, Query(description=BBOX_HELP)] = None,
        change: ChangeStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> DetectionCollection:
        """Detections of one query, newest acquisition first (acquisition time, else detection time)."""
        ctx.queries.get(query_id, tenant=tenant)
        matched = select_detections(
            ctx.detections, query_id, parse_datetime_interval(datetime), parse_bbox(bbox), change
        )
        page = matched[:limit]
        ctx.metrics.detections_served.labels("detections").inc(len(page))
        return feature_collection(page, number_matched=len(matched))

    return router

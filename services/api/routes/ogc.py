"""OGC API - Features (Part 1: Core, GeoJSON): one collection per standing query of the tenant.

``/`` landing page, ``/conformance``, ``/collections``, ``/collections/{query_id}``,
``/collections/{query_id}/items`` (``bbox``, ``datetime``, ``limit``, ``offset``; ``next``/``prev``
links) and ``/collections/{query_id}/items/{detection_id}``. Links are absolute and typed, as QGIS's
OGC API - Features client expects. A ``limit`` above the advertised maximum is served as the maximum,
not refused (OGC API - Features Part 1, 17-069r4, the ``limit`` parameter): GDAL's OAPIF driver sends
its page size as it is.
"""

# Annotations are evaluated eagerly (no __future__ import): FastAPI resolves the closure's Tenant alias.

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.api.context import ApiContext
from services.api.errors import ERROR_RESPONSES, GEOJSON_ROUTE_ERROR_RESPONSES, DetectionNotFoundError
from services.api.filters import parse_bbox, parse_datetime_interval
from services.api.geojson import GEOJSON, GeoJSONResponse, feature_page
from services.api.links import api_url, link
from services.api.responses import (
    CollectionDocument,
    Collections,
    Conformance,
    DetectionItem,
    DetectionPage,
    Extent,
    LandingPage,
    SpatialExtent,
    TemporalExtent,
)
from services.api.routes.detections import BBOX_HELP, DATETIME_HELP, select_detections
from services.contracts import Query as StandingQuery

JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.1"
HTML = "text/html"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
LIMIT_HELP = (
    f"Page size; at most {MAX_LIMIT} features are returned per page (a larger limit is served as "
    f"{MAX_LIMIT}), follow the next link for more"
)


def collection_document(query: StandingQuery, url: str) -> CollectionDocument:
    """The OGC collection describing one standing query (``url`` = the collection's own URL)."""
    start = query.start.isoformat() if query.start else None
    end = query.end.isoformat() if query.end else None
    return CollectionDocument(
        id=query.id,
        title=query.text,
        description=f"Detections of the standing query {query.text!r} (version {query.version}, "
        f"{query.status}) over collections {', '.join(query.collections)}",
        crs=[CRS84],
        extent=Extent(
            spatial=SpatialExtent(bbox=[query.geometry.bounds], crs=CRS84),
            temporal=TemporalExtent(interval=[(start, end)], trs=GREGORIAN),
        ),
        links=[
            link(url, "self", JSON, "this collection"),
            link(f"{url}/items", "items", GEOJSON, "detections"),
        ],
    )


def build_router(ctx: ApiContext) -> APIRouter:
    """OGC API - Features routes."""
    router = APIRouter(tags=["OGC API - Features"])
    Tenant = Annotated[str, Depends(ctx.tenant)]

    def url(request: Request, path: str, params: dict[str, str] | None = None) -> str:
        return api_url(request, ctx.settings.base_url, path, params)

    @router.get("/", response_model=LandingPage, responses={303: {"description": "To the dashboard"}})
    def landing_page(request: Request) -> LandingPage | Response:
        """Links to the API definition, the conformance declaration and the collections; a browser
        (Accept: text/html first) is sent to the dashboard instead."""
        if request.headers.get("accept", "").startswith("text/html"):
            return RedirectResponse(url(request, "dashboard/"), status_code=303)
        return LandingPage(
            title="Lookout",
            description="Standing natural-language queries over a live satellite feed; "
            "each query's detections form one feature collection.",
            links=[
                link(url(request, ""), "self", JSON, "this document"),
                link(url(request, "openapi.json"), "service-desc", OPENAPI, "the API definition"),
                link(url(request, "docs"), "service-doc", HTML, "the API documentation"),
                link(url(request, "dashboard/"), "alternate", HTML, "the monitoring dashboard"),
                link(url(request, "conformance"), "conformance", JSON, "conformance classes"),
                link(url(request, "collections"), "data", JSON, "the standing queries as collections"),
            ],
        )

    @router.get("/conformance")
    def conformance() -> Conformance:
        """The conformance classes implemented: Core and GeoJSON."""
        return Conformance(conformsTo=CONFORMANCE)

    @router.get("/collections", responses=ERROR_RESPONSES)
    def collections(request: Request, tenant: Tenant) -> Collections:
        """One collection per standing query of the caller's tenant."""
        return Collections(
            links=[link(url(request, "collections"), "self", JSON, "this document")],
            collections=[
                collection_document(q, url(request, f"collections/{q.id}"))
                for q in ctx.queries.list(tenant=tenant)
            ],
        )

    @router.get("/collections/{query_id}", responses=ERROR_RESPONSES)
    def collection(query_id: str, request: Request, tenant: Tenant) -> CollectionDocument:
        """The collection of one standing query."""
        query = ctx.queries.get(query_id, tenant=tenant)
        return collection_document(query, url(request, f"collections/{query.id}"))

    @router.get(
        "/collections/{query_id}/items",
        response_class=GeoJSONResponse,
        response_model=DetectionPage,
        responses=GEOJSON_ROUTE_ERROR_RESPONSES,
    )
    def items(
        query_id: str,
        request: Request,
        tenant: Tenant,
        bbox: Annotated[str | None, Query(description=BBOX_HELP)] = None,
        datetime: Annotated[str | None, Query(description=DATETIME_HELP)] = None,
        # The maximum is advertised in the API definition (clients size their pages by it), not enforced.
        limit: Annotated[
            int, Query(ge=1, description=LIMIT_HELP, json_schema_extra={"maximum": MAX_LIMIT})
        ] = DEFAULT_LIMIT,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> DetectionPage:
        """A page of the query's detections, newest acquisition first, with next/prev links."""
        ctx.queries.get(query_id, tenant=tenant)
        limit = min(limit, MAX_LIMIT)
        matched = select_detections(
            ctx.detections, query_id, parse_datetime_interval(datetime), parse_bbox(bbox)
        )
        page = matched[offset : offset + limit]
        path = f"collections/{query_id}/items"
        params = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

        def page_url(at: int) -> str:
            return url(request, path, params | {"limit": str(limit), "offset": str(at)})

        links = [
            link(page_url(offset), "self", GEOJSON, "this page"),
            link(url(request, f"collections/{query_id}"), "collection", JSON, "the collection"),
        ]
        if offset + len(page) < len(matched):
            links.append(link(page_url(offset + limit), "next", GEOJSON, "next page"))
        if offset > 0:
            links.append(link(page_url(max(0, offset - limit)), "prev", GEOJSON, "previous page"))
        ctx.metrics.detections_served.labels("ogc").inc(len(page))
        return feature_page(page, number_matched=len(matched), links=links)

    @router.get(
        "/collections/{query_id}/items/{detection_id}",
        response_class=GeoJSONResponse,
        response_model=DetectionItem,
        responses=GEOJSON_ROUTE_ERROR_RESPONSES,
    )
    def item(query_id: str, detection_id: str, request: Request, tenant: Tenant) -> DetectionItem:
        """One detection as a GeoJSON Feature."""
        ctx.queries.get(query_id, tenant=tenant)
        detection = ctx.detections.get(query_id, detection_id)
        if detection is None:
            raise DetectionNotFoundError(query_id, detection_id)
        ctx.metrics.detections_served.labels("ogc").inc()
        links = [
            link(
                url(request, f"collections/{query_id}/items/{detection_id}"),
                "self",
                GEOJSON,
                "this detection",
            ),
            link(url(request, f"collections/{query_id}"), "collection", JSON, "the collection"),
        ]
        return DetectionItem(**dict(detection.feature()), links=links)

    return router

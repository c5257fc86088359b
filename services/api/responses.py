"""Typed bodies of the HTTP API's responses: the routes' ``response_model``s, so ``/openapi.json`` (and
``/docs``) describe every answer. Detections inside them are the contracts' one Feature form
(:class:`services.contracts.DetectionFeature`); errors keep FastAPI's ``{"detail": ...}`` envelope
(:mod:`services.api.errors`)."""

from __future__ import annotations

from typing import Any, Literal

from geojson_pydantic import FeatureCollection
from pydantic import BaseModel, Field

from services.contracts import DetectionFeature, Query, SkippedScenes


class Link(BaseModel):
    """One OGC/STAC-style link."""

    href: str
    rel: str
    type: str = Field(description="media type of the target")
    title: str


class ErrorMessage(BaseModel):
    """Every error but request validation: ``{"detail": "a sentence"}``."""

    detail: str


class FieldError(BaseModel):
    """One problem of a request: the dotted field (or parameter name) and why."""

    field: str = Field(description='dotted path inside the body, a parameter name, or "body"')
    message: str
    type: str = Field(description="pydantic's error type, e.g. value_error")


class FieldErrors(BaseModel):
    """A 422: one item per problem of the request."""

    detail: list[FieldError]


class QueryDetail(Query):
    """One query (webhook secret masked) with the scenes it matched that were not segmented."""

    skipped: SkippedScenes = Field(
        default_factory=SkippedScenes,
        description="scenes the query matched but the dispatcher refused (their input is not one the model "
        "can use: not_optical, gsd_out_of_range, no_image_asset) or gave up on, by code, with reasons",
    )


class QueryList(BaseModel):
    """The tenant's queries (webhook secrets masked)."""

    queries: list[Query]


class DetectionCollection(FeatureCollection[DetectionFeature]):
    """A query's detections as a GeoJSON FeatureCollection with OGC's match counts."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    numberMatched: int = Field(ge=0, description="detections that match the filters")
    numberReturned: int = Field(ge=0, description="detections in this response")


class DetectionPage(DetectionCollection):
    """One page of an OGC API - Features collection, with ``self``/``next``/``prev`` links."""

    links: list[Link]


class DetectionItem(DetectionFeature):
    """One detection as an OGC API - Features item, with links to itself and its collection."""

    links: list[Link]


class LandingPage(BaseModel):
    """The OGC API landing page."""

    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    """The OGC API conformance classes implemented."""

    conformsTo: list[str]


class SpatialExtent(BaseModel):
    """Bounding box of a query's AOI."""

    bbox: list[tuple[float, float, float, float]]
    crs: str


class TemporalExtent(BaseModel):
    """A query's time window (RFC 3339; null: open)."""

    interval: list[tuple[str | None, str | None]]
    trs: str


class Extent(BaseModel):
    """Where and when a collection's items may lie."""

    spatial: SpatialExtent
    temporal: TemporalExtent


class CollectionDocument(BaseModel):
    """One standing query as an OGC API - Features collection."""

    id: str
    title: str
    description: str
    itemType: Literal["feature"] = "feature"
    crs: list[str]
    extent: Extent
    links: list[Link]


class Collections(BaseModel):
    """The tenant's standing queries as collections."""

    links: list[Link]
    collections: list[CollectionDocument]


class Health(BaseModel):
    """``/healthz``: overall status and each component's own status object (``ok`` false: unhealthy)."""

    status: Literal["ok", "unhealthy"]
    components: dict[str, dict[str, Any]]


class QuicklookDocument(BaseModel):
    """Where a scene's quicklook lies on the map, and a ``preview`` link to its PNG."""

    collection: str
    item_id: str
    item_href: str | None
    crs: str
    bbox: tuple[float, float, float, float]
    coordinates: list[list[float]] = Field(
        description="top-left, top-right, bottom-right, bottom-left (lon, lat), as MapLibre takes them"
    )
    width: int
    height: int
    links: list[Link]

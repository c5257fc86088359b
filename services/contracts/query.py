"""Standing queries: what users register, validated so a bad one is refused with the field and reason."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import numpy as np
import shapely
from geojson_pydantic import MultiPolygon, Polygon
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator, model_validator
from pyproj import Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

QUERY_SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 500
MAX_AOI_VERTICES = 10_000
MAX_AOI_AREA_KM2 = 50_000.0
MAX_MODEL_VERSION_CHARS = 128
_COLLECTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Cylindrical equal-area on the WGS84 ellipsoid: meridians and parallels stay straight lines, as RFC 7946
# draws every AOI edge (straight in lon/lat). pyproj transformers are thread-safe (pyproj >= 3.1).
_EQUAL_AREA = Transformer.from_crs("EPSG:4326", "+proj=cea +datum=WGS84 +units=m", always_xy=True)
AREA_SEGMENT_DEG = 0.25
WEBHOOK_SECRET_PREFIX = "whsec_"  # the Standard Webhooks form of a secret: whsec_<base64 of the key>

AOI = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class QueryStatus(StrEnum):
    """Whether new scenes are matched against a query."""

    active = "active"
    paused = "paused"


class QueryFilters(BaseModel):
    """Scene filters applied before a scene is segmented."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_cloud_cover: float | None = Field(None, ge=0, le=100, description="eo:cloud_cover upper bound, %")


class Delivery(BaseModel):
    """Where detections go besides the per-query stream and collection."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: HttpUrl | None = None
    webhook_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks signing secret: `whsec_<base64>` (the key is the decoded bytes) "
        "or any other non-empty string (the key is its UTF-8 bytes)",
    )
    kafka: bool = True

    @model_validator(mode="after")
    def _secret_with_url(self) -> Delivery:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_secret is required with webhook_url (deliveries are HMAC-signed)")
        if self.webhook_secret is not None:
            self.webhook_key()  # a secret no key can be made of is refused here, not at delivery
        return self

    def webhook_key(self) -> bytes:
        """The HMAC-SHA256 key deliveries are signed with (Standard Webhooks).

        A secret in the Standard Webhooks form ``whsec_<base64>`` stands for the decoded bytes, as every
        Standard Webhooks library reads it (``standardwebhooks.Webhook(secret)``); any other secret's key
        is its UTF-8 bytes (``standardwebhooks.Webhook(secret.encode())``).
        """
        if self.webhook_secret is None:
            raise ValueError("no webhook_secret")
        secret = self.webhook_secret.get_secret_value()
        if not secret.startswith(WEBHOOK_SECRET_PREFIX):
            if not secret:
                raise ValueError("webhook_secret must not be empty")
            return secret.encode()
        encoded = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
        try:
            # Unpadded base64 is accepted, as the Standard Webhooks libraries accept it.
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error as exc:
            prefix = WEBHOOK_SECRET_PREFIX
            raise ValueError(f"webhook_secret: a {prefix} secret must be base64 ({exc})") from None
        if not key:
            raise ValueError(f"webhook_secret: the {WEBHOOK_SECRET_PREFIX} secret holds no key bytes")
        return key


def aoi_geometry(aoi: Polygon | MultiPolygon) -> BaseGeometry:
    """The AOI as a shapely geometry (CRS84 lon/lat)."""
    return shape(aoi.model_dump(exclude_none=True))


def aoi_area_km2(geometry: BaseGeometry) -> float:
    """Area of a CRS84 polygon as RFC 7946 draws it (straight edges in lon/lat), on WGS84, km².

    Edges are densified to ``AREA_SEGMENT_DEG`` and projected to an equal-area projection. A geodesic
    area would join the vertices by geodesics instead, which for wide polygons encloses something else
    entirely (a whole-world box encloses nothing, a 170°-wide band a fifteenth of its area) and would
    let huge AOIs past the area limit.
    """
    dense = shapely.segmentize(geometry, AREA_SEGMENT_DEG)
    projected = shapely.transform(
        dense, lambda xy: np.column_stack(_EQUAL_AREA.transform(xy[:, 0], xy[:, 1]))
    )
    return float(projected.area) / 1e6


class QueryCreate(BaseModel):
    """The body of ``POST /queries``."""

    # NaN and infinity (which Python's JSON parser accepts) are refused in every number of a query.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="The referring expression")
    aoi: AOI
    collections: list[str] = Field(min_length=1, max_length=20)
    stac_api: HttpUrl | None = Field(None, description="STAC API to watch (default: the service's sources)")
    filters: QueryFilters = QueryFilters()
    start: datetime | None = Field(None, description="Backfill scenes acquired from this time on")
    end: datetime | None = Field(None, description="Ignore scenes acquired after this time")
    threshold: float = Field(0.5, ge=0, le=1)
    min_area_m2: float = Field(0.0, ge=0)
    model_version: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_MODEL_VERSION_CHARS,
        description="Pin a model version (default: the deployed one)",
    )
    delivery: Delivery = Delivery()

    @field_validator("text")
    @classmethod
    def _text(cls, text: str) -> str:
        return clean_text(text)

    @field_validator("collections")
    @classmethod
    def _collections(cls, collections: list[str]) -> list[str]:
        return clean_collections(collections)

    @field_validator("aoi")
    @classmethod
    def _aoi_valid(cls, aoi: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
        return validate_aoi(aoi)

    @model_validator(mode="after")
    def _window(self) -> QueryCreate:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                setattr(self, name, value.replace(tzinfo=UTC))
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def clean_text(text: str) -> str:
    """Collapse whitespace; refuse text without words."""
    stripped = " ".join(text.split())
    if not stripped:
        raise ValueError("must contain words, not only whitespace")
    return stripped


def clean_collections(collections: list[str]) -> list[str]:
    """Check STAC collection ids; drop duplicates, keep order."""
    for name in collections:
        if not _COLLECTION_ID.match(name):
            raise ValueError(f"{name!r} is not a valid STAC collection id")
    return list(dict.fromkeys(collections))


def validate_aoi(aoi: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    """Coordinates in lon/lat range, valid (not self-intersecting), bounded vertex count and area."""
    polygons = aoi.coordinates if isinstance(aoi, MultiPolygon) else [aoi.coordinates]
    vertices = 0
    for polygon in polygons:
        for ring in polygon:
            vertices += len(ring)
            for position in ring:
                lon, lat = position[0], position[1]
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise ValueError(f"coordinate ({lon}, {lat}) is outside lon [-180, 180] / lat [-90, 90]")
    if vertices > MAX_AOI_VERTICES:
        raise ValueError(f"has {vertices} vertices; at most {MAX_AOI_VERTICES} are allowed")
    geometry = aoi_geometry(aoi)
    if not geometry.is_valid:
        raise ValueError(f"is not a valid polygon: {explain_validity(geometry)}")
    area = aoi_area_km2(geometry)
    if area <= 0:
        raise ValueError("has zero area")
    if area > MAX_AOI_AREA_KM2:
        raise ValueError(f"covers {area:,.0f} km²; at most {MAX_AOI_AREA_KM2:,.0f} km² are allowed")
    return aoi


class QueryUpdate(BaseModel):
    """The body of ``PATCH /queries/{id}``: any subset of the editable fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT_CHARS)
    aoi: AOI | None = None
    collections: list[str] | None = Field(None, min_length=1, max_length=20)
    filters: QueryFilters | None = None
    start: datetime | None = None
    end: datetime | None = None
    threshold: float | None = Field(None, ge=0, le=1)
    min_area_m2: float | None = Field(None, ge=0)
    status: QueryStatus | None = None
    delivery: Delivery | None = None

    @field_validator("text")
    @classmethod
    def _text(cls, text: str | None) -> str | None:
        return None if text is None else clean_text(text)

    @field_validator("collections")
    @classmethod
    def _collections(cls, collections: list[str] | None) -> list[str] | None:
        return None if collections is None else clean_collections(collections)

    @field_validator("aoi")
    @classmethod
    def _aoi_valid(cls, aoi: Polygon | MultiPolygon | None) -> Polygon | MultiPolygon | None:
        return None if aoi is None else validate_aoi(aoi)


# Changing these changes what a query detects: the version (part of every detection id) is bumped.
VERSIONED_FIELDS = ("text", "aoi", "collections", "filters", "start", "end", "threshold", "min_area_m2")


class Query(QueryCreate):
    """A registered standing query."""

    schema_version: int = QUERY_SCHEMA_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    tenant: str = "default"
    version: int = Field(1, ge=1)
    status: QueryStatus = QueryStatus.active
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def geometry(self) -> BaseGeometry:
        """The AOI as a shapely geometry (CRS84)."""
        return aoi_geometry(self.aoi)

    def apply(self, update: QueryUpdate) -> Query:
        """A new Query with the update applied; the version is bumped if what it detects changed."""
        changes: dict[str, Any] = update.model_dump(exclude_unset=True)
        if not changes:
            return self
        merged = self.model_dump() | changes
        bump = any(name in changes and changes[name] != getattr(self, name) for name in VERSIONED_FIELDS)
        merged["version"] = self.version + (1 if bump else 0)
        merged["updated"] = datetime.now(UTC)
        return Query.model_validate(merged)

    def stored(self) -> str:
        """JSON for storage (secrets included: the store is the service's own). Any other JSON of a query
        (``model_dump_json``, the API's responses) shows the webhook secret as ``**********``."""
        data = self.model_dump(mode="json")
        secret = self.delivery.webhook_secret
        data["delivery"]["webhook_secret"] = secret.get_secret_value() if secret else None
        return json.dumps(data, separators=(",", ":"))

"""Scene quicklooks for the dashboard: a small PNG of a scene's image, with its CRS84 corners.

A detection names its scene's STAC item (``item_href``, the item's self link); the item and its image
are read as the dispatcher reads them (`services.scenes`: the same asset keys, URL policy, GDAL settings
and band use, and the options of the source whose STAC API URL the item href lies under: signing, S3,
headers), so the quicklook shows the image that was segmented. The dashboard's map is Web Mercator
and places an image by its four corners, interpolating linearly in Mercator, so the quicklook is warped
to EPSG:3857 here: its corners are then exact in lon/lat.

Only a reduced-resolution version of the image is read: ``out_shape`` makes GDAL serve the read from
the COG's overviews (or decimate while reading a file without them), never the full-resolution scene.
Rendered quicklooks are cached in Redis with a TTL, keyed by the item href and the size, so page loads
and the PNG request that follows the JSON one do not read the image again.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from affine import Affine
from PIL import Image
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.transform import array_bounds
from rasterio.warp import reproject

from danet.geo import stretch_to_uint8
from services.contracts import RedisKeys
from services.scenes import (
    AssetPolicy,
    PermanentSceneError,
    SceneInputs,
    SourceAccess,
    TransientSceneError,
    classified_asset_errors,
    is_local,
    open_image,
)
from services.settings import QuicklookSettings

log = logging.getLogger(__name__)

WEB_MERCATOR = "EPSG:3857"
CRS84 = "OGC:CRS84"
COORDINATE_DECIMALS = 7
# Scene failure codes that mean "this scene has no quicklook" (404) rather than "could not be read now"
# (502): an href the URL policy refuses, no image asset, an image that cannot be placed or shown.
_NO_QUICKLOOK = frozenset(
    {"url_not_allowed", "item_refused", "no_usable_asset", "not_georeferenced", "unsupported_bands"}
)


class QuicklookUnavailableError(Exception):
    """No quicklook can be made for this scene (no item link, no usable asset, an href we refuse)."""


class SceneReadError(Exception):
    """The scene's STAC item or image could not be read."""


@contextmanager
def scene_failures(subject: str = "") -> Iterator[None]:
    """Turn the scene errors raised inside the block into QuicklookUnavailableError or SceneReadError,
    their message prefixed with `subject` (e.g. ``STAC item <href>: ``)."""
    try:
        yield
    except PermanentSceneError as exc:
        if exc.code in _NO_QUICKLOOK:
            raise QuicklookUnavailableError(f"{subject}{exc}") from exc
        raise SceneReadError(f"{subject}{exc}") from exc
    except TransientSceneError as exc:
        raise SceneReadError(f"{subject}{exc}") from exc


@dataclass(frozen=True)
class Quicklook:
    """A rendered quicklook: RGBA PNG bytes (transparent outside the image's valid pixels) and the
    image's extent in CRS84 (west, south, east, north)."""

    png: bytes
    bounds: tuple[float, float, float, float]
    width: int
    height: int

    @property
    def corners(self) -> list[list[float]]:
        """Top-left, top-right, bottom-right, bottom-left [lon, lat] (MapLibre image source order)."""
        west, south, east, north = self.bounds
        return [[west, north], [east, north], [east, south], [west, south]]


def reduced_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(rows, cols) of a read whose longer side is at most ``max_side`` pixels, aspect kept."""
    scale = max(height, width) / max_side
    if scale <= 1:
        return height, width
    return max(1, math.ceil(height / scale)), max(1, math.ceil(width / scale))


def encode_png(rgba: np.ndarray) -> bytes:
    """(4, H, W) uint8 -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba.transpose(1, 2, 0)), mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def mercator_grid(crs: Any, transform: Affine, rows: int, cols: int) -> tuple[Affine, int, int]:
    """(transform, cols, rows) of a Web Mercator grid covering a raster grid with about as many pixels
    along its longer side (square pixels, north up)."""
    to_mercator = Transformer.from_crs(crs, WEB_MERCATOR, always_xy=True)
    west, south, east, north = to_mercator.transform_bounds(
        *array_bounds(rows, cols, transform), densify_pts=21
    )
    pixel = max((east - west) / cols, (north - south) / rows)
    dst_cols, dst_rows = max(1, math.ceil((east - west) / pixel)), max(1, math.ceil((north - south) / pixel))
    return Affine(pixel, 0.0, west, 0.0, -pixel, north), dst_cols, dst_rows


def render_quicklook(
    href: str,
    max_side: int,
    *,
    timeout_s: float,
    policy: AssetPolicy,
    access: SourceAccess | None = None,
) -> Quicklook:
    """Read the image at ``href`` (allowed by ``policy``) as its source's ``access`` says, at reduced
    resolution (longer side <= ``max_side``), stretch its RGB (or grey) bands, warp it to Web Mercator and
    encode it as a PNG whose alpha marks the valid pixels. ``timeout_s`` bounds each HTTP request."""
    opened = open_image(href, timeout_s=timeout_s, policy=policy, access=access)
    with scene_failures(), opened as (dataset, band_use):
        indexes = list(band_use.indexes)
        rows, cols = reduced_shape(dataset.height, dataset.width, max_side)
        out_shape = (len(indexes), rows, cols)
        with classified_asset_errors(href, local=is_local(href)):
            bands = dataset.read(indexes, out_shape=out_shape, resampling=Resampling.average)
            valid = (dataset.read_masks(indexes, out_shape=out_shape) > 0).all(axis=0)
        src_crs = dataset.crs
        src_transform = dataset.transform @ Affine.scale(dataset.width / cols, dataset.height / rows)
    valid &= np.isfinite(bands).all(axis=0)
    rgb = bands if bands.dtype == np.uint8 else stretch_to_uint8(bands, valid)
    if rgb.shape[0] == 1:
        rgb = np.repeat(rgb, 3, axis=0)

    dst_transform, dst_cols, dst_rows = mercator_grid(src_crs, src_transform, rows, cols)
    rgba = np.zeros((4, dst_rows, dst_cols), dtype=np.uint8)
    common = {
        "src_transform": src_transform,
        "src_crs": src_crs,
        "dst_transform": dst_transform,
        "dst_crs": WEB_MERCATOR,
    }
    reproject(rgb, rgba[:3], resampling=Resampling.bilinear, **common)
    # Pixels outside the warped image stay 0 in alpha: transparent on the map.
    reproject(valid.astype(np.uint8) * 255, rgba[3], resampling=Resampling.nearest, **common)

    west_m, south_m, east_m, north_m = array_bounds(dst_rows, dst_cols, dst_transform)
    to_lonlat = Transformer.from_crs(WEB_MERCATOR, CRS84, always_xy=True)
    (west, east), (south, north) = to_lonlat.transform([west_m, east_m], [south_m, north_m])
    bounds = _bounds((west, south, east, north))
    return Quicklook(encode_png(rgba), bounds, width=dst_cols, height=dst_rows)


def _bounds(values: Any) -> tuple[float, float, float, float]:
    west, south, east, north = (round(float(v), COORDINATE_DECIMALS) for v in values)
    return west, south, east, north


class QuicklookCache:
    """Quicklooks by STAC item href: from Redis when rendered before (within the TTL), else rendered
    from the item's image and stored."""

    def __init__(
        self, client: redis.Redis, keys: RedisKeys, settings: QuicklookSettings, scenes: SceneInputs
    ) -> None:
        self.redis = client
        self.keys = keys
        self.settings = settings
        self.scenes = scenes

    def key(self, item_href: str) -> str:
        """Redis hash of one item's quicklook at the configured size."""
        return self.keys.quicklook(item_href, self.settings.max_side_px)

    def get(self, item_href: str) -> Quicklook:
        """The quicklook of the item at ``item_href``."""
        key = self.key(item_href)
        cached = self.redis.hgetall(key)
        if cached:
            return Quicklook(
                png=cached[b"png"],
                bounds=_bounds(json.loads(cached[b"bounds"])),
                width=int(cached[b"width"]),
                height=int(cached[b"height"]),
            )
        with scene_failures(f"STAC item {item_href}: "):
            item = self.scenes.read_item(item_href)
        with scene_failures():
            image = self.scenes.choose_image(item, base=item_href)
        log.info("quicklook of %s: %s (%s)", item_href, image.field, image.reason)
        quicklook = render_quicklook(
            image.href,
            self.settings.max_side_px,
            timeout_s=self.scenes.timeout_s,
            policy=self.scenes.policy,
            access=self.scenes.access(item_href=item_href),
        )
        with self.redis.pipeline() as pipe:
            pipe.hset(
                key,
                mapping={
                    "png": quicklook.png,
                    "bounds": json.dumps(quicklook.bounds),
                    "width": quicklook.width,
                    "height": quicklook.height,
                },
            )
            pipe.expire(key, self.settings.cache_ttl_s)
            pipe.execute()
        return quicklook

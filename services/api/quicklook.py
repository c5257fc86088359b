"""Scene quicklooks for the dashboard: a small PNG of a scene's image, with its CRS84 corners.

A detection names its scene's STAC item (``item_href``, the item's self link); the item names the image
(the first of the configured asset keys, as the dispatcher picks it). The dashboard's map is Web
Mercator and places an image by its four corners, interpolating linearly in Mercator, so the quicklook
is warped to EPSG:3857 here: its corners are then exact in lon/lat.

Only a reduced-resolution version of the image is read: ``out_shape`` makes GDAL serve the read from
the COG's overviews (or decimate while reading a file without them), never the full-resolution scene.
Rendered quicklooks are cached in Redis with a TTL, keyed by the item href and the size, so page loads
and the PNG request that follows the JSON one do not read the image again.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pystac
import rasterio
import redis
from affine import Affine
from PIL import Image
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import array_bounds
from rasterio.warp import reproject

from danet.geo import stretch_to_uint8
from services.contracts import RedisKeys
from services.dispatcher.asset_policy import AssetPolicy
from services.dispatcher.failures import PermanentSceneError, TransientSceneError
from services.dispatcher.items import read_text
from services.settings import QuicklookSettings

WEB_MERCATOR = "EPSG:3857"
CRS84 = "OGC:CRS84"
# Seconds to wait for a remote STAC item or image before the quicklook request fails.
READ_TIMEOUT_S = 30.0
# No directory listing on open: GDAL would otherwise probe a remote COG's folder for sidecar files.
GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_TIMEOUT": str(int(READ_TIMEOUT_S))}
COORDINATE_DECIMALS = 7
_REMOTE_SCHEMES = ("http", "https")
# Dispatcher failure codes that mean "not to be read" rather than "could not be read".
_REFUSED = frozenset({"url_not_allowed", "item_refused"})


class QuicklookUnavailableError(Exception):
    """No quicklook can be made for this scene (no item link, no usable asset, an href we refuse)."""


class SceneReadError(Exception):
    """The scene's STAC item or image could not be read."""


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


def readable_href(href: str, what: str) -> str:
    """``href`` as something read as a plain local file or over http(s): ``file://`` URLs become paths;
    other schemes (s3, ftp, ...), GDAL virtual paths (``/vsi...``) and relative paths are refused."""
    parsed = urlparse(href)
    if parsed.scheme in _REMOTE_SCHEMES:
        if not parsed.netloc:
            raise QuicklookUnavailableError(f"{what} {href!r} has no host")
        return href
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise QuicklookUnavailableError(f"{what} {href!r} names a remote host in a file URL")
        path = unquote(parsed.path)
    elif parsed.scheme == "":
        path = href
    else:
        raise QuicklookUnavailableError(
            f"{what} {href!r} uses scheme {parsed.scheme!r}; only local files and http(s) are read"
        )
    if not Path(path).is_absolute():
        raise QuicklookUnavailableError(f"{what} {href!r} is a relative path")
    if path.startswith("/vsi"):
        raise QuicklookUnavailableError(f"{what} {href!r} is a GDAL virtual path, not a file")
    return path


def load_item(item_href: str, policy: AssetPolicy) -> dict[str, Any]:
    """The STAC item JSON at ``item_href`` (a local file or an http(s) URL), read as the dispatcher
    reads items: only where ``policy`` allows, every redirect checked again."""
    readable_href(item_href, "STAC item href")  # absolute, and a file or http(s), as images must be
    try:
        item = json.loads(read_text(item_href, policy, timeout_s=READ_TIMEOUT_S))
    except PermanentSceneError as exc:
        if exc.code in _REFUSED:
            raise QuicklookUnavailableError(f"STAC item href {item_href!r}: {exc}") from exc
        raise SceneReadError(f"STAC item {item_href}: {exc}") from exc
    except (TransientSceneError, ValueError) as exc:
        raise SceneReadError(f"STAC item {item_href}: {exc}") from exc
    if not isinstance(item, dict):
        raise SceneReadError(f"STAC item {item_href}: not a JSON object")
    return item


def image_href(item: dict[str, Any], item_href: str, asset_keys: list[str]) -> str:
    """The readable href of the first of ``asset_keys`` the item has (relative hrefs resolved against
    the item's own location), as the dispatcher chooses the image it segments."""
    assets = item.get("assets") or {}
    if not isinstance(assets, dict):
        raise QuicklookUnavailableError(f"STAC item {item_href}: assets is not an object")
    for key in asset_keys:
        asset = assets.get(key)
        if isinstance(asset, dict) and asset.get("href"):
            href = pystac.utils.make_absolute_href(str(asset["href"]), item_href)
            return readable_href(href, f"assets.{key}.href")
    raise QuicklookUnavailableError(
        f"STAC item {item_href} has none of the asset keys {asset_keys} (it has {sorted(assets)})"
    )


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


def render_quicklook(href: str, max_side: int) -> Quicklook:
    """Read ``href`` at reduced resolution (longer side <= ``max_side``), stretch it to RGB, warp it to
    Web Mercator and encode it as a PNG whose alpha marks the valid pixels."""
    location = readable_href(href, "image href")
    try:
        with rasterio.Env(**GDAL_OPTIONS), rasterio.open(location) as dataset:
            if dataset.crs is None:
                raise QuicklookUnavailableError(f"image {href} has no CRS, so it has no place on the map")
            indexes = [1, 2, 3] if dataset.count >= 3 else [1]
            rows, cols = reduced_shape(dataset.height, dataset.width, max_side)
            out_shape = (len(indexes), rows, cols)
            bands = dataset.read(indexes, out_shape=out_shape, resampling=Resampling.average)
            valid = (dataset.read_masks(indexes, out_shape=out_shape) > 0).all(axis=0)
            src_crs = dataset.crs
            src_transform = dataset.transform @ Affine.scale(dataset.width / cols, dataset.height / rows)
    except RasterioError as exc:
        raise SceneReadError(f"image {href}: {exc}") from exc
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
        self, client: redis.Redis, keys: RedisKeys, settings: QuicklookSettings, policy: AssetPolicy
    ) -> None:
        self.redis = client
        self.keys = keys
        self.settings = settings
        self.policy = policy

    def _allowed(self, href: str, what: str) -> str:
        # The dispatcher's allow-list (dispatcher.asset_schemes/asset_hosts): the API reads no URL
        # that the dispatcher would refuse to read.
        reason = self.policy.refusal(href)
        if reason is not None:
            raise QuicklookUnavailableError(f"{what} {href!r}: {reason}")
        return href

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
        item = load_item(item_href, self.policy)
        image = self._allowed(image_href(item, item_href, self.settings.asset_keys), "image href")
        quicklook = render_quicklook(image, self.settings.max_side_px)
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

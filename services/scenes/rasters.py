"""Opening a scene's image: the GDAL settings of every read, the name GDAL is given, and the checks
made on open (georeference, bands; `services.scenes.raster_checks`), with GDAL's errors classified as
permanent or transient (`services.scenes.failures`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader

from services.scenes.failures import classified_asset_errors
from services.scenes.policy import is_local, local_path
from services.scenes.raster_checks import BandUse, bands_as_rgb, check_georeference


def gdal_options(timeout_s: float) -> dict[str, str]:
    """GDAL settings of every read of a scene's image.

    Remote COGs: no directory listing on open (GDAL would probe for sidecar files with extra requests),
    neighbouring byte ranges merged into one request, and a timeout per request. ``/vsicurl/`` content is
    not cached across opens of a file: GDAL otherwise remembers a failed request (an HTTP 503) for the
    life of the process, and every retry of the scene would fail without asking the server again. Within
    one open the cache still works (one dataset handle serves all of its windows).
    """
    seconds = str(max(1, round(timeout_s)))
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "GDAL_HTTP_MULTIPLEX": "YES",
        "GDAL_HTTP_TIMEOUT": seconds,
        "GDAL_HTTP_CONNECTTIMEOUT": seconds,
        "CPL_VSIL_CURL_NON_CACHED": "/vsicurl/",
    }


def gdal_name(href: str) -> str:
    """What GDAL is asked to open for `href`: a local file's path (``file:`` URLs decoded), else the URL."""
    return str(local_path(href)) if is_local(href) else href


@contextmanager
def open_image(href: str, *, timeout_s: float) -> Iterator[tuple[DatasetReader, BandUse]]:
    """The raster at `href` (already allowed by the `AssetPolicy`), open under `gdal_options`, with its
    georeference checked and its `BandUse`. Raises PermanentSceneError or TransientSceneError; reads
    inside the block should be wrapped in `classified_asset_errors` too."""
    with rasterio.Env(**gdal_options(timeout_s)):
        # No georeference is refused below with the asset named; GDAL's own warning adds nothing.
        with classified_asset_errors(href, local=is_local(href)), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(gdal_name(href))
        with dataset:
            check_georeference(href, dataset.crs, dataset.transform)
            yield dataset, bands_as_rgb(href, dataset.count, dataset.colorinterp)

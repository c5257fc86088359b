"""Opening a scene's image: the GDAL settings of every read and of its source (`image_reads`: signing,
S3 options, headers; `services.scenes.access`), the name GDAL is given, and the checks made on open
(georeference, bands; `services.scenes.raster_checks`), with GDAL's errors classified as permanent or
transient (`services.scenes.failures`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader

from services.scenes.access import SourceAccess
from services.scenes.failures import (
    PermanentSceneError,
    TransientSceneError,
    asset_read_failure,
    classified_asset_errors,
)
from services.scenes.policy import AssetPolicy, is_local, local_path, redact_text
from services.scenes.raster_checks import BandUse, bands_as_rgb, check_georeference


class RedactedUrlQueries(logging.Filter):
    """Hides the query strings of URLs in a log record's message (`redact_text`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; rewrite its message when it quotes a URL with a query string."""
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# GDAL's warnings quote the URL they are about, a signed one with its token; rasterio logs them (WARNING
# and below) on this logger.
logging.getLogger("rasterio._env").addFilter(RedactedUrlQueries())


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
def image_reads(href: str, policy: AssetPolicy, access: SourceAccess, *, timeout_s: float) -> Iterator[str]:
    """GDAL set up to read the image at `href` (already allowed by `policy`) from its source; yields the
    name to open. Inside: `gdal_options` and the source's own (`SourceAccess.gdal_options`: S3 options,
    headers). A signing source's href is signed here, right before the read, and the signed URL is
    checked by `policy` again. Scene errors and rasterio errors raised inside come out as scene errors
    about `href` that never show the signature.
    """
    signed = access.signed(href, timeout_s=timeout_s)
    if signed != href:
        policy.check(signed, "href (signed)")
    secret = urlsplit(signed).query if signed != href else ""
    try:
        with rasterio.Env(**(gdal_options(timeout_s) | access.gdal_options(href))):
            yield gdal_name(signed)
    except RasterioError as exc:
        raise _without(secret, asset_read_failure(href, exc, local=is_local(href))) from None
    except (PermanentSceneError, TransientSceneError) as exc:
        if not secret:
            raise
        raise _without(secret, exc) from None


def _without(secret: str, error: PermanentSceneError | TransientSceneError) -> Exception:
    """`error` again with `secret` and URL query strings redacted from its message (and no cause that
    could still show them)."""
    message = redact_text(str(error), secret)
    if isinstance(error, PermanentSceneError):
        return PermanentSceneError(error.code, message)
    return TransientSceneError(message)


@contextmanager
def open_image(
    href: str, *, timeout_s: float, policy: AssetPolicy, access: SourceAccess | None = None
) -> Iterator[tuple[DatasetReader, BandUse]]:
    """The raster at `href` (already allowed by `policy`), open under `image_reads` (`access`: its
    source's; default none), with its georeference checked and its `BandUse`. Raises PermanentSceneError
    or TransientSceneError; reads inside the block should be wrapped in `classified_asset_errors` too."""
    with image_reads(href, policy, access or SourceAccess(), timeout_s=timeout_s) as name:
        # No georeference is refused below with the asset named; GDAL's own warning adds nothing.
        with classified_asset_errors(href, local=is_local(href)), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(name)
        with dataset:
            check_georeference(href, dataset.crs, dataset.transform)
            yield dataset, bands_as_rgb(href, dataset.count, dataset.colorinterp)

"""Why a scene failed, and whether trying it again can help (the dispatcher dead-letters or retries; the
API's quicklooks answer 404 for a scene they should not or cannot show and 502 for one not read now).

- **Permanent** (`PermanentSceneError`, straight to the dead-letter topic): nothing changes on a
  retry: a malformed item, no usable asset, a URL outside the allow-list, HTTP 404/410/403, a file that
  is not a raster (or a local one that cannot be decoded), no georeference, unusable bands, over the
  pixel budget.
- **Transient** (`TransientSceneError`, or any other exception): the same read may succeed later:
  HTTP 5xx, 408, 425, 429, timeouts, refused or reset connections. The consumer retries with its attempt
  counter and dead-letters the scene when the attempts run out.

Unclassified failures count as transient: retrying a permanent one costs a few attempts, while
dead-lettering a transient one would drop a scene that a retry would have delivered.

GDAL reports a failed HTTP range request in the middle of a remote read as a decoding error, the
same as a truncated file ("TIFFFillTile: Read error ... got 0 bytes"): such errors on remote assets
are therefore transient; on local files they are permanent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from rasterio.errors import RasterioError

# HTTP statuses that say "try again later" although they are not 5xx.
RETRYABLE_HTTP_STATUSES = frozenset({408, 425, 429})
_HTTP_STATUS = re.compile(r"HTTP response code: (\d{3})")
# GDAL error classes (type names in rasterio's error chain) that no retry fixes.
_PERMANENT_GDAL_ERRORS = {
    "CPLE_AWSObjectNotFoundError": "asset_not_found",
    "CPLE_AWSBucketNotFoundError": "asset_not_found",
    "CPLE_AWSAccessDeniedError": "asset_refused",
}
_NOT_A_RASTER = ("not recognized as being in a supported file format", "not recognized as a supported")
_NO_SUCH_FILE = "No such file or directory"
_DECODE_ERRORS = ("TIFFFillTile", "TIFFReadEncoded", "IReadBlock failed", "Read failed", "TIFFRead")


class PermanentSceneError(Exception):
    """A scene that no retry can fix; `code` names the kind (dead-letter header ``error``)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class TransientSceneError(Exception):
    """A scene input that could not be read now but may be later (retried by the consumer)."""


def http_failure(
    subject: Literal["asset", "item"], href: str, status: int
) -> PermanentSceneError | TransientSceneError:
    """The failure an HTTP error status reading the scene's `subject` at `href` means."""
    what = f"{subject} {href}"
    if status >= 500 or status in RETRYABLE_HTTP_STATUSES:
        return TransientSceneError(f"{what}: HTTP {status} (retried)")
    kind = "not_found" if status in (404, 410) else "refused"
    return PermanentSceneError(f"{subject}_{kind}", f"{what}: HTTP {status}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def asset_read_failure(
    href: str, exc: RasterioError, *, local: bool
) -> PermanentSceneError | TransientSceneError:
    """Classify a rasterio/GDAL error opening or reading the image at `href` (see the module docstring)."""
    what = f"asset {href}"
    errors = list(_chain(exc))
    messages = [str(error) for error in errors]
    detail = "; ".join(dict.fromkeys(m for m in messages if m and not m.startswith("Read failed. See")))
    for error, message in zip(errors, messages, strict=True):
        status = _HTTP_STATUS.search(message)
        if status:
            return http_failure("asset", href, int(status.group(1)))
        if message.startswith("CURL error"):
            return TransientSceneError(f"{what}: {message} (retried)")
        code = _PERMANENT_GDAL_ERRORS.get(type(error).__name__)
        if code is not None:
            return PermanentSceneError(code, f"{what}: {message}")
    if any(marker in m for m in messages for marker in _NOT_A_RASTER):
        return PermanentSceneError("corrupt_asset", f"{what}: not a raster GDAL can read: {detail}")
    if local and any(_NO_SUCH_FILE in m for m in messages):
        return PermanentSceneError("asset_not_found", f"{what}: {detail}")
    if any(marker in m for m in messages for marker in _DECODE_ERRORS):
        if local:
            return PermanentSceneError("corrupt_asset", f"{what}: truncated or corrupt: {detail}")
        return TransientSceneError(
            f"{what}: read failed: {detail} (retried: over HTTP a failed range request and a truncated "
            "file look the same)"
        )
    return TransientSceneError(f"{what}: {type(exc).__name__}: {detail} (retried)")


@contextmanager
def classified_asset_errors(href: str, *, local: bool) -> Iterator[None]:
    """Turn rasterio errors raised inside the block into Permanent/TransientSceneError for `href`."""
    try:
        yield
    except RasterioError as exc:
        raise asset_read_failure(href, exc, local=local) from exc

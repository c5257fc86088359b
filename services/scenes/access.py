"""How a source's scene inputs are read (its entry in ``watcher.sources``, `SourceSettings`): URL signing,
GDAL's S3 configuration for ``s3://`` images, and HTTP headers whose values come from the environment;
and which source's options apply to a scene (by the scene's ``source``) or to an item (by its href).

Planetary Computer signing (``signing: planetary-computer``) uses the ``planetary-computer`` package right
before each read; its token cache fetches a new token a minute before the old one expires. Hrefs that go
onto a topic, into a detection or into a log stay unsigned: a signed href would leak its token, and could
not be signed again once the token expired (the package leaves a signed href unchanged). The package asks
its SAS endpoint without a timeout, so a signing is waited for at most the read timeout here (a hanging
endpoint becomes a retried failure).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import planetary_computer
import requests

from services.scenes.failures import RETRYABLE_HTTP_STATUSES, PermanentSceneError, TransientSceneError
from services.scenes.policy import redact
from services.settings import S3Settings, SourceSettings

_HTTP_SCHEMES = ("http", "https")


def source_name(url: str) -> str:
    """The name a source's scenes carry (``SceneMessage.source``), as the watcher names its sources: a
    STAC API's URL without a trailing slash, a static catalog's ``catalog.json`` as a file URL."""
    if urlsplit(url).scheme.lower() in _HTTP_SCHEMES:
        return url.rstrip("/")
    path = Path(url)
    return (path / "catalog.json" if path.is_dir() else path).resolve().as_uri()


def s3_gdal_options(s3: S3Settings) -> dict[str, str]:
    """GDAL's configuration of ``/vsis3/`` (what ``s3://`` hrefs are opened through) for these options.

    AWS_NO_SIGN_REQUEST is always set: NO leaves credentials to GDAL's own search (AWS_* variables, the
    AWS config files, a web identity token), and with it set rasterio does not look for them itself.
    """
    options = {"AWS_NO_SIGN_REQUEST": "YES" if s3.no_sign_request else "NO"}
    if s3.requester_pays:
        options["AWS_REQUEST_PAYER"] = "requester"
    if s3.region:
        options["AWS_REGION"] = s3.region
    if s3.endpoint:
        endpoint = urlsplit(s3.endpoint)
        options["AWS_S3_ENDPOINT"] = endpoint.netloc
        options["AWS_HTTPS"] = "YES" if endpoint.scheme == "https" else "NO"
        # S3-compatible stores (MinIO, Ceph) name buckets in the path, not in the host name.
        options["AWS_VIRTUAL_HOSTING"] = "FALSE"
    return options


def http_headers_option(headers: Mapping[str, str]) -> str:
    """GDAL_HTTP_HEADERS for `headers`: one ``Name: value`` per line. The closing line break makes GDAL
    split at line breaks only, so a value may hold commas."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


@dataclass(frozen=True)
class SourceAccess:
    """How one source's items and images are read. `name` is the source's name on scene messages (''
    for the default, used for sources without options). Header values are secrets: never in the repr."""

    name: str = ""
    signing: Literal["none", "planetary-computer"] = "none"
    s3: S3Settings = field(default_factory=S3Settings)
    api_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    asset_headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, source: SourceSettings) -> SourceAccess:
        """The access of a ``watcher.sources`` entry, header values read from the environment now (raises
        SettingsError naming the variable when one is missing)."""
        return cls(
            name=source_name(source.url),
            signing=source.signing,
            s3=source.s3,
            api_headers=source.api_headers(),
            asset_headers=source.asset_headers(),
        )

    def gdal_options(self, href: str) -> dict[str, str]:
        """This source's GDAL settings for reading the image at `href`: S3 options for ``s3://``, the
        asset headers for http(s); none for local files."""
        scheme = urlsplit(href).scheme.lower()
        if scheme == "s3":
            return s3_gdal_options(self.s3)
        if scheme in _HTTP_SCHEMES and self.asset_headers:
            return {"GDAL_HTTP_HEADERS": http_headers_option(self.asset_headers)}
        return {}

    def item_headers(self, href: str) -> dict[str, str]:
        """Headers of reading the item at `href`: the API headers when `href` lies under the source's URL
        (the API's own item links), else none (the credentials go to the API only)."""
        if self.api_headers and href.startswith(self.name + "/"):
            return dict(self.api_headers)
        return {}

    def signed(self, href: str, *, timeout_s: float) -> str:
        """`href` as the image is read: signed for a Planetary Computer source (only Azure Blob Storage
        URLs change), else as it is. Never show the result: it holds a token.

        Raises:
            TransientSceneError: no token within `timeout_s`, or the token endpoint failed in a way a
                retry may fix (5xx, 429, connection errors).
            PermanentSceneError: ``asset_refused``: the token endpoint refused (another 4xx).
        """
        if self.signing != "planetary-computer" or urlsplit(href).scheme.lower() not in _HTTP_SCHEMES:
            return href
        return _sign_within(href, timeout_s)


def _sign_within(href: str, timeout_s: float) -> str:
    """planetary_computer.sign_url in a daemon thread, waited for at most `timeout_s` (the package sets
    no timeout of its own; a thread still waiting for a hanging endpoint does not hold up the exit)."""
    outcome: dict[str, object] = {}
    done = threading.Event()

    def sign() -> None:
        try:
            outcome["href"] = planetary_computer.sign_url(href)
        except Exception as exc:  # handed to the waiting caller, which classifies it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=sign, name="sas-token", daemon=True).start()
    what = f"asset {redact(href)}"
    if not done.wait(timeout_s):
        raise TransientSceneError(f"{what}: no SAS token from the Planetary Computer within {timeout_s:g} s")
    error = outcome.get("error")
    if error is None:
        return str(outcome["href"])
    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        reason = f"{what}: the SAS token endpoint answered HTTP {status}"
        if status >= 500 or status in RETRYABLE_HTTP_STATUSES:
            raise TransientSceneError(f"{reason} (retried)") from None
        raise PermanentSceneError("asset_refused", reason) from None
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        raise TransientSceneError(f"{what}: SAS token endpoint unreachable: {error} (retried)") from None
    # Other errors (a malformed token answer) may quote the answer, token included: named, not quoted.
    raise TransientSceneError(f"{what}: no SAS token: {type(error).__name__} (retried)") from None


def source_access(
    accesses: Sequence[SourceAccess], *, source: str = "", item_href: str | None = None
) -> SourceAccess:
    """The access of the source named `source` (a scene's ``source``); else of the STAC API whose URL
    `item_href` lies under (the longest such URL; quicklooks know only the item); else the default
    (no signing, anonymous S3, no headers), as for a query's own ``stac_api``."""
    if source:
        for access in accesses:
            if access.name == source.rstrip("/"):
                return access
    if item_href:
        under = [a for a in accesses if a.name and item_href.startswith(a.name + "/")]
        if under:
            return max(under, key=lambda a: len(a.name))
    return SourceAccess()

"""Which URLs scene items and images may be read from, by the dispatcher and by the API's quicklooks
alike: an allow-list of schemes and hosts (pure, from ``dispatcher.asset_schemes`` and
``dispatcher.asset_hosts``).

Hrefs come from STAC items, which come from whatever catalogs are watched (a query may name its own
STAC API). Without an allow-list a crafted item could make a service open local files or probe
internal HTTP services through GDAL. Local paths count as scheme ``file``; a relative path is refused
(it would name a file relative to whichever process reads it; relative asset hrefs are resolved against
their item before they get here). GDAL's virtual file system paths (``/vsicurl/…``, ``/vsis3/…``) are
refused whatever the list says: through them a "local path" reads any URL. GDAL follows HTTP
redirects, so an allowed host that redirects elsewhere is trusted with that choice.

``s3://bucket/key`` hrefs (scheme ``s3``, allowed only when listed) name the bucket where a URL names
its host: ``asset_hosts`` lists buckets for them. Messages show hrefs through `redact`: a query string
(SAS tokens, signatures) or a password never appears in an error, a log or a dead-letter header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

from services.scenes.failures import PermanentSceneError
from services.settings import DispatcherSettings

LOCAL_SCHEME = "file"
_LOCAL_HOSTS = ("", "localhost")
REDACTED = "[redacted]"
# A URL's query string within a text: GDAL's messages quote the URLs they failed on.
_URL_QUERY = re.compile(r"\b((?:https?|s3)://[^\s'\"?#]+)\?[^\s'\"#]+")


def redact(href: str) -> str:
    """`href` as messages may show it: its query string and password replaced by ``[redacted]``."""
    parts = urlsplit(href)
    if not parts.password and not parts.query:
        return href
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1))
    if parts.query:
        parts = parts._replace(query=REDACTED)
    return urlunsplit(parts)


def redact_text(text: str, secret: str = "") -> str:
    """`text` with `secret` (a signed URL's query string) and the query strings of any URLs in it
    replaced by ``[redacted]``."""
    if secret:
        text = text.replace(secret, REDACTED)
    return _URL_QUERY.sub(rf"\1?{REDACTED}", text)


def is_local(href: str) -> bool:
    """Whether `href` names a local file (a path, or a ``file:`` URL)."""
    return urlsplit(href).scheme.lower() in ("", LOCAL_SCHEME)


def local_path(href: str) -> Path:
    """The file a local `href` names: a path as written, a ``file:`` URL decoded (GDAL and rasterio
    take neither its percent-escapes nor a ``localhost`` host)."""
    if urlsplit(href).scheme:
        return Path(url2pathname(urlsplit(href).path))
    return Path(href)


@dataclass(frozen=True)
class AssetPolicy:
    """Allowed URL schemes (``file`` for local paths) and hosts (empty: any; ``.example.com``: any
    subdomain of example.com)."""

    schemes: frozenset[str]
    hosts: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: DispatcherSettings) -> AssetPolicy:
        """The policy of ``dispatcher.asset_schemes`` and ``dispatcher.asset_hosts``."""
        return cls.allowing(settings.asset_schemes, settings.asset_hosts)

    @classmethod
    def allowing(cls, schemes: Iterable[str], hosts: Iterable[str] = ()) -> AssetPolicy:
        """A policy from scheme and host lists (case-insensitive)."""
        return cls(frozenset(s.lower() for s in schemes), tuple(h.lower() for h in hosts))

    def refusal(self, href: str) -> str | None:
        """Why reading `href` is not allowed, or None when it is."""
        if href.lstrip().lower().startswith("/vsi"):
            return "GDAL virtual file system paths are not accepted as hrefs"
        parts = urlsplit(href)
        if is_local(href):
            if LOCAL_SCHEME not in self.schemes:
                return f"local files are not allowed (dispatcher.asset_schemes is {sorted(self.schemes)})"
            if parts.scheme and (parts.hostname or "") not in _LOCAL_HOSTS:
                return f"file URL names a remote host {parts.hostname!r}"
            if not local_path(href).is_absolute():
                return "a relative path names no particular file"
            return None
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            return f"scheme {scheme!r} is not in dispatcher.asset_schemes {sorted(self.schemes)}"
        host = (parts.hostname or "").lower()
        if not host:
            return "the URL names no host"
        if self.hosts and not any(
            host == allowed or (allowed.startswith(".") and host.endswith(allowed)) for allowed in self.hosts
        ):
            return f"host {host!r} is not in dispatcher.asset_hosts {list(self.hosts)}"
        return None

    def check(self, href: str, field: str) -> None:
        """Raise PermanentSceneError (``url_not_allowed``) naming `field` when `href` is refused."""
        reason = self.refusal(href)
        if reason is not None:
            raise PermanentSceneError("url_not_allowed", f"{field} {redact(href)!r}: {reason}")

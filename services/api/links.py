"""Absolute URLs for response links, honouring the configured public base URL (reverse proxies)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from starlette.datastructures import URL

from services.api.responses import Link


def api_url(
    request: Request, base_url: str | None, path: str, params: Mapping[str, str] | None = None
) -> str:
    """``base_url`` (or the request's own base) + ``path`` + query ``params``."""
    base = URL(base_url.rstrip("/") + "/") if base_url else request.base_url
    url = URL(str(base).rstrip("/") + "/" + path.lstrip("/"))
    if params:
        url = url.replace_query_params(**params)
    return str(url)


def link(href: str, rel: str, media_type: str, title: str) -> Link:
    """One OGC/STAC-style link object."""
    return Link(href=href, rel=rel, type=media_type, title=title)

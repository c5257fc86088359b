"""A scene's STAC item: inline in the scene message, or read from its href (a local file or an http(s)
URL). Every href is checked against the `AssetPolicy` before anything is read, every HTTP redirect
again, and read failures are classified as permanent or transient (`services.scenes.failures`). A
source's API headers (`SourceAccess.item_headers`) go with the request, and with redirects that stay on
the same origin only; messages show hrefs without their query strings (`policy.redact`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from services.contracts import SceneMessage
from services.scenes.failures import PermanentSceneError, TransientSceneError, http_failure
from services.scenes.policy import AssetPolicy, is_local, local_path, redact

# Redirects are followed by hand so that every hop is checked against the allow-list.
MAX_REDIRECTS = 5


def load_item(
    scene: SceneMessage,
    policy: AssetPolicy,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The scene's STAC item: the one in the message, else read from its href (see `read_item`), which
    must hold the item the message names."""
    if scene.item is not None:
        return scene.item
    href = str(scene.href)
    item = read_item(href, policy, timeout_s=timeout_s, headers=headers)
    if item.get("id") != scene.item_id:
        raise PermanentSceneError(
            "invalid_item", f"item {href}: id {item.get('id')!r} differs from item_id {scene.item_id!r}"
        )
    return item


def read_item(
    href: str, policy: AssetPolicy, *, timeout_s: float, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The STAC item at `href` (see `read_text`); PermanentSceneError (``invalid_item``) unless it is
    JSON of a GeoJSON Feature."""
    text = read_text(href, policy, timeout_s=timeout_s, headers=headers)
    shown = redact(href)
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PermanentSceneError("invalid_item", f"item {shown}: not JSON: {exc}") from exc
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise PermanentSceneError("invalid_item", f"item {shown}: not a STAC item (a GeoJSON Feature)")
    return item


def read_text(
    href: str, policy: AssetPolicy, *, timeout_s: float, headers: Mapping[str, str] | None = None
) -> str:
    """The text at `href` (a local path, ``file:`` or http(s) URL), read only where `policy` allows,
    every HTTP redirect checked again; `headers` go to `href`'s origin only. Raises PermanentSceneError
    (``url_not_allowed``, ``item_refused``, ``item_not_found``, ``invalid_item``, or an HTTP status's
    code) or TransientSceneError."""
    policy.check(href, "href")
    return _read_local(href) if is_local(href) else _read_url(href, policy, timeout_s, headers or {})


def _read_local(href: str) -> str:
    try:
        return local_path(href).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PermanentSceneError("item_not_found", f"item {href}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise PermanentSceneError("invalid_item", f"item {href}: not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise TransientSceneError(f"item {href}: {exc} (retried)") from exc


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _read_url(href: str, policy: AssetPolicy, timeout_s: float, headers: Mapping[str, str]) -> str:
    if urlsplit(href).scheme.lower() not in ("http", "https"):
        raise PermanentSceneError(
            "item_refused", f"item {redact(href)}: only http(s) URLs and local files are read"
        )
    url = href
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            sent = headers if _origin(url) == _origin(href) else {}
            try:
                response = client.get(url, headers=sent)
            except httpx.HTTPError as exc:
                raise TransientSceneError(
                    f"item {redact(url)}: {type(exc).__name__}: {exc} (retried)"
                ) from exc
            if not response.is_redirect:
                if response.is_error:
                    raise http_failure("item", redact(url), response.status_code)
                return response.text
            url = urljoin(url, response.headers["location"])
            policy.check(url, "href (redirected)")
    raise PermanentSceneError("item_refused", f"item {redact(href)}: more than {MAX_REDIRECTS} redirects")

"""A scene's inputs: its STAC item (inline in the message, or read from its href) and the image asset
in it that is segmented. Every href is checked against the `AssetPolicy` before anything is read, and
read failures are classified as permanent or transient (`services.dispatcher.failures`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpx
import pystac

from services.contracts import SceneMessage
from services.dispatcher.asset_policy import AssetPolicy, is_local
from services.dispatcher.failures import PermanentSceneError, TransientSceneError, http_failure

# Redirects are followed by hand so that every hop is checked against the allow-list.
MAX_REDIRECTS = 5


def self_href(item: Mapping[str, Any]) -> str | None:
    """The item's ``self`` link, if any."""
    for link in item.get("links") or []:
        if link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    return None


def select_asset(item: Mapping[str, Any], asset_keys: Sequence[str]) -> tuple[str, str]:
    """(key, absolute href) of the first of `asset_keys` the item has; relative hrefs are resolved
    against the item's self link. Raises PermanentSceneError when none is usable."""
    assets = item.get("assets") or {}
    if not isinstance(assets, Mapping):
        raise PermanentSceneError("no_usable_asset", f"assets: not an object but {type(assets).__name__}")
    for key in asset_keys:
        asset = assets.get(key)
        if not isinstance(asset, Mapping) or not asset.get("href"):
            continue
        href = str(asset["href"])
        if pystac.utils.is_absolute_href(href):
            return key, href
        base = self_href(item)
        if base is None:
            raise PermanentSceneError(
                "no_usable_asset",
                f"assets.{key}.href {href!r} is relative and the item has no self link to resolve it",
            )
        return key, pystac.utils.make_absolute_href(href, base)
    raise PermanentSceneError(
        "no_usable_asset",
        f"item has none of the asset keys {list(asset_keys)} (it has {sorted(assets)})",
    )


def load_item(scene: SceneMessage, policy: AssetPolicy, *, timeout_s: float) -> dict[str, Any]:
    """The scene's STAC item: the one in the message, else read from its href (local path or URL)."""
    if scene.item is not None:
        return scene.item
    href = str(scene.href)
    text = read_text(href, policy, timeout_s=timeout_s)
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PermanentSceneError("invalid_item", f"item {href}: not JSON: {exc}") from exc
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise PermanentSceneError("invalid_item", f"item {href}: not a STAC item (a GeoJSON Feature)")
    if item.get("id") != scene.item_id:
        raise PermanentSceneError(
            "invalid_item", f"item {href}: id {item.get('id')!r} differs from item_id {scene.item_id!r}"
        )
    return item


def read_text(href: str, policy: AssetPolicy, *, timeout_s: float) -> str:
    """The text at `href` (a local path, ``file:`` or http(s) URL), read only where `policy` allows,
    every HTTP redirect checked again. Raises PermanentSceneError (``url_not_allowed``,
    ``item_refused``, ``item_not_found``, ``invalid_item``, or an HTTP status's code) or
    TransientSceneError."""
    policy.check(href, "href")
    return _read_local(href) if is_local(href) else _read_url(href, policy, timeout_s)


def _read_local(href: str) -> str:
    path = Path(url2pathname(urlsplit(href).path)) if href.lower().startswith("file:") else Path(href)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PermanentSceneError("item_not_found", f"item {href}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise PermanentSceneError("invalid_item", f"item {href}: not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise TransientSceneError(f"item {href}: {exc} (retried)") from exc


def _read_url(href: str, policy: AssetPolicy, timeout_s: float) -> str:
    if urlsplit(href).scheme.lower() not in ("http", "https"):
        raise PermanentSceneError("item_refused", f"item {href}: only http(s) URLs and local files are read")
    url = href
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                raise TransientSceneError(f"item {url}: {type(exc).__name__}: {exc} (retried)") from exc
            if not response.is_redirect:
                if response.is_error:
                    raise http_failure("item", url, response.status_code)
                return response.text
            url = urljoin(url, response.headers["location"])
            policy.check(url, "href (redirected)")
    raise PermanentSceneError("item_refused", f"item {href}: more than {MAX_REDIRECTS} redirects")

"""Which of a STAC item's assets is the scene's image (pure: the item in, a decision out).

Today the decision is the first of the configured asset keys (``dispatcher.asset_keys``) that the item
has; its href is made absolute against the item's location. The dispatcher segments that image and the
API's quicklooks show it. The decision is an `AssetChoice` that says why it was made, so that choices
on more of the item (roles, bands, media types, resolution) can extend it and still be reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pystac

from services.scenes.failures import PermanentSceneError


@dataclass(frozen=True)
class AssetChoice:
    """The asset whose image is read: its `key` in the item, its absolute `href`, and the `reason`
    for choosing it, in words."""

    key: str
    href: str
    reason: str

    @property
    def field(self) -> str:
        """Where the href came from, as error messages name it (``assets.visual.href``)."""
        return f"assets.{self.key}.href"


def self_href(item: Mapping[str, Any]) -> str | None:
    """The item's ``self`` link, if any."""
    for link in item.get("links") or []:
        if link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    return None


def choose_asset(item: Mapping[str, Any], asset_keys: Sequence[str], base: str | None = None) -> AssetChoice:
    """The first of `asset_keys` the item has. A relative href is resolved against `base` (where the
    item was read from), else the item's self link. Raises PermanentSceneError (``no_usable_asset``)
    when none is usable."""
    assets = item.get("assets") or {}
    if not isinstance(assets, Mapping):
        raise PermanentSceneError("no_usable_asset", f"assets: not an object but {type(assets).__name__}")
    for key in asset_keys:
        asset = assets.get(key)
        if not isinstance(asset, Mapping) or not asset.get("href"):
            continue
        reason = f"the first of the asset keys {list(asset_keys)} the item has"
        return AssetChoice(key, asset_href(item, key, base), reason)
    raise PermanentSceneError(
        "no_usable_asset",
        f"item has none of the asset keys {list(asset_keys)} (it has {sorted(assets)})",
    )


def asset_href(item: Mapping[str, Any], key: str, base: str | None = None) -> str:
    """The absolute href of asset `key`: a relative one resolved against `base` (where the item was read
    from), else the item's self link. Raises PermanentSceneError (``no_usable_asset``) when a relative
    href has nothing to resolve against."""
    href = str(item["assets"][key]["href"])
    if pystac.utils.is_absolute_href(href):
        return href
    location = base or self_href(item)
    if location is None:
        raise PermanentSceneError(
            "no_usable_asset",
            f"assets.{key}.href {href!r} is relative and the item has no self link to resolve it",
        )
    return pystac.utils.make_absolute_href(href, location)

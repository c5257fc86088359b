"""Where a scene's inputs come from, as one value built from the settings: the asset keys, the URL
policy and the read timeout (``dispatcher.asset_keys``, ``asset_schemes``, ``asset_hosts``,
``asset_timeout_s``). Whoever reads scenes outside the dispatcher (the API's quicklooks) takes it, so it
reads the same image under the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.scenes.assets import AssetChoice, choose_asset
from services.scenes.items import read_item
from services.scenes.policy import AssetPolicy
from services.settings import DispatcherSettings


@dataclass(frozen=True)
class SceneInputs:
    """Reads STAC items and chooses their images: `asset_keys` in order of preference, only what `policy`
    allows, `timeout_s` per HTTP request (items here, images in `open_image`)."""

    asset_keys: tuple[str, ...]
    policy: AssetPolicy
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: DispatcherSettings) -> SceneInputs:
        """The inputs that ``dispatcher.asset_keys``, ``asset_schemes``, ``asset_hosts`` and
        ``asset_timeout_s`` say."""
        policy = AssetPolicy.from_settings(settings)
        return cls(tuple(settings.asset_keys), policy, settings.asset_timeout_s)

    def read_item(self, href: str) -> dict[str, Any]:
        """The STAC item at `href` (`services.scenes.items.read_item`)."""
        return read_item(href, self.policy, timeout_s=self.timeout_s)

    def choose_image(self, item: Mapping[str, Any], base: str | None = None) -> AssetChoice:
        """The item's image (`choose_asset`, relative hrefs against `base`), refused (PermanentSceneError
        ``url_not_allowed``) when the policy does not allow its href."""
        choice = choose_asset(item, self.asset_keys, base)
        self.policy.check(choice.href, choice.field)
        return choice

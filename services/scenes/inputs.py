"""Where a scene's inputs come from, as one value built from the settings: the asset keys, the URL
policy and the read timeout (``dispatcher.asset_keys``, ``asset_schemes``, ``asset_hosts``,
``asset_timeout_s``), and how each source is read (``watcher.sources``: signing, S3 options, headers).
Whoever reads scenes outside the dispatcher (the API's quicklooks) takes it, so it reads the same image
under the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.scenes.access import SourceAccess, source_access
from services.scenes.assets import AssetChoice, choose_asset
from services.scenes.items import read_item
from services.scenes.policy import AssetPolicy
from services.settings import DispatcherSettings, SourceSettings


@dataclass(frozen=True)
class SceneInputs:
    """Reads STAC items and chooses their images: `asset_keys` in order of preference, only what `policy`
    allows, `timeout_s` per HTTP request (items here, images in `open_image`), each source as its
    `sources` entry says (others: `SourceAccess()`)."""

    asset_keys: tuple[str, ...]
    policy: AssetPolicy
    timeout_s: float
    sources: tuple[SourceAccess, ...] = ()

    @classmethod
    def from_settings(
        cls, settings: DispatcherSettings, sources: Sequence[SourceSettings] = ()
    ) -> SceneInputs:
        """The inputs that ``dispatcher.asset_keys``, ``asset_schemes``, ``asset_hosts`` and
        ``asset_timeout_s`` say, reading `sources` (``watcher.source_list()``) as they say. Header values
        are read from the environment now: SettingsError names a missing variable."""
        policy = AssetPolicy.from_settings(settings)
        accesses = tuple(SourceAccess.from_settings(source) for source in sources)
        return cls(tuple(settings.asset_keys), policy, settings.asset_timeout_s, accesses)

    def access(self, *, source: str = "", item_href: str | None = None) -> SourceAccess:
        """How a scene is read: by its ``source``, else by its item's href (`source_access`)."""
        return source_access(self.sources, source=source, item_href=item_href)

    def read_item(self, href: str) -> dict[str, Any]:
        """The STAC item at `href` (`services.scenes.items.read_item`), with its source's API headers."""
        headers = self.access(item_href=href).item_headers(href)
        return read_item(href, self.policy, timeout_s=self.timeout_s, headers=headers)

    def choose_image(self, item: Mapping[str, Any], base: str | None = None) -> AssetChoice:
        """The item's image (`choose_asset`, relative hrefs against `base`), refused (PermanentSceneError
        ``url_not_allowed``) when the policy does not allow its href."""
        choice = choose_asset(item, self.asset_keys, base)
        self.policy.check(choice.href, choice.field)
        return choice

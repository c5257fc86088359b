"""The STAC watcher: polls scene sources for new items over the active queries' AOIs and publishes one
SceneMessage per new item to the ``scenes`` topic (the README's data-flow diagram).

- ``planning``: which (source, collection) to search, over which AOI union, from which datetime (pure).
- ``health``: retry backoff and stale-feed tracking per source (pure).
- ``sources``: the ``SceneSource`` interface, STAC APIs (pystac-client) and static catalogs (pystac).
- ``highwater``: dedup sets and high-water marks in Redis.
- ``watcher``: the polling loop that ties them together.
"""

from services.watcher.sources import SceneSource, StacApiSource, StaticCatalogSource, open_source
from services.watcher.watcher import PollSummary, Watcher

__all__ = [
    "PollSummary",
    "SceneSource",
    "StacApiSource",
    "StaticCatalogSource",
    "Watcher",
    "open_source",
]

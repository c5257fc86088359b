"""The embedded default's scene source: real imagery republished as new scenes into a static catalog.

- ``imagery``: the real SpaceNet sample tile, stretched to RGB, its footprint in CRS84 (pure + reads).
- ``cog``: Cloud-Optimized GeoTIFF writing.
- ``catalog``: a self-contained static STAC catalog that items are appended to, one atomic write each.
- ``simulator``: ``SceneSimulator`` (one new scene per call or per interval) and ``sample_query_aoi``.
"""

from services.simulator.catalog import StaticCatalogWriter
from services.simulator.simulator import SIM_COLLECTION, SceneSimulator, sample_query_aoi

__all__ = ["SIM_COLLECTION", "SceneSimulator", "StaticCatalogWriter", "sample_query_aoi"]

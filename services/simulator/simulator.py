"""The scene simulator: the embedded default's live feed.

Every "new scene" is the real SpaceNet Atlanta tile again, with a new acquisition time and a slightly
different radiometry, written as a COG and appended as a STAC item (collection ``lookout-sim``) to a
local static catalog that the watcher polls. The imagery is real; only the repetition is simulated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension
from rasterio.errors import RasterioError

from services.settings import SimulatorSettings
from services.simulator.catalog import StaticCatalogWriter
from services.simulator.cog import write_rgb_cog
from services.simulator.imagery import (
    BaseScene,
    footprint_crs84,
    geojson_polygon,
    inner_aoi_crs84,
    load_scene,
    raster_georeference,
    spacenet_tile,
    vary_radiometry,
)

log = logging.getLogger(__name__)

SIM_COLLECTION = "lookout-sim"
ITEM_PREFIX = "spacenet-atlanta"
ASSET_KEY = "visual"
ASSET_FILE = "visual.tif"
LICENSE = "CC-BY-SA-4.0"
# The sample query's AOI keeps 10 % of the tile's width/height away from each edge: inside the
# footprint for sure, and still over most of the tile's buildings.
SAMPLE_AOI_MARGIN = 0.1


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _collection_template(scene: BaseScene) -> pystac.Collection:
    footprint = footprint_crs84(scene.bounds, scene.crs)
    return pystac.Collection(
        id=SIM_COLLECTION,
        title="Lookout simulated feed (SpaceNet Atlanta)",
        description=(
            "Simulated live feed of the embedded default: the real SpaceNet Atlanta sample tile "
            "(WorldView, 0.5 m panchromatic shown as RGB) republished with new acquisition times."
        ),
        extent=pystac.Extent(
            pystac.SpatialExtent([list(footprint.bounds)]), pystac.TemporalExtent([[None, None]])
        ),
        license=LICENSE,
        providers=[
            pystac.Provider("SpaceNet", roles=[pystac.ProviderRole.LICENSOR, pystac.ProviderRole.PRODUCER]),
            pystac.Provider("Lookout scene simulator", roles=[pystac.ProviderRole.PROCESSOR]),
        ],
    )


class SceneSimulator:
    """Publishes simulated scenes into a static catalog under ``catalog_dir``.

    Asset hrefs are absolute file paths, or ``<asset_base_url>/<path under catalog_dir>`` when the
    folder is served over HTTP (with Range support, which COG readers need).
    """

    def __init__(
        self,
        catalog_dir: Path,
        *,
        asset_base_url: str | None = None,
        imagery: Path | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.scene = load_scene(imagery or spacenet_tile())
        self.footprint = footprint_crs84(self.scene.bounds, self.scene.crs)
        self.asset_base_url = asset_base_url.rstrip("/") if asset_base_url else None
        self.clock = clock
        self.writer = StaticCatalogWriter(
            catalog_dir,
            _collection_template(self.scene),
            catalog_description="Lookout's local static STAC catalog, fed by the scene simulator.",
        )

    @classmethod
    def from_settings(cls, settings: SimulatorSettings, catalog_dir: Path | None = None) -> SceneSimulator:
        """A simulator writing to ``catalog_dir``, else ``settings.catalog_dir``."""
        folder = catalog_dir or settings.catalog_dir
        if folder is None:
            raise ValueError("simulator.catalog_dir: no folder for the static catalog was given")
        return cls(folder, asset_base_url=settings.asset_base_url)

    @property
    def catalog_path(self) -> Path:
        """The catalog's root file (what the watcher's StaticCatalogSource reads)."""
        return self.writer.catalog_path

    def _asset_href(self, path: Path) -> str:
        if self.asset_base_url is None:
            return str(path)
        return f"{self.asset_base_url}/{path.relative_to(self.writer.root).as_posix()}"

    def publish_next(self) -> pystac.Item:
        """Write one new scene (COG + item) and append it to the catalog."""
        number = self.writer.item_count() + 1
        item_id = f"{ITEM_PREFIX}-{number}"
        acquired = self.clock()
        cog = write_rgb_cog(
            self.writer.item_dir(item_id) / ASSET_FILE,
            vary_radiometry(self.scene.rgb, seed=number),
            self.scene.crs,
            self.scene.transform,
        )
        item = self._item(item_id, acquired, self._asset_href(cog))
        self.writer.append(item)
        log.info("simulator: published %s/%s acquired %s (%s)", SIM_COLLECTION, item_id, acquired, cog)
        return item

    def _item(self, item_id: str, acquired: datetime, href: str) -> pystac.Item:
        scene = self.scene
        item = pystac.Item(
            id=item_id,
            geometry=geojson_polygon(self.footprint),
            bbox=list(self.footprint.bounds),
            datetime=acquired,
            properties={"gsd": abs(scene.transform.a)},
            collection=SIM_COLLECTION,
        )
        item.common_metadata.description = (
            "Simulated scene: the SpaceNet Atlanta sample tile, new acquisition"
        )
        # The tile is cloud-free; the value is real, not simulated.
        EOExtension.ext(item, add_if_missing=True).cloud_cover = 0.0
        projection = ProjectionExtension.ext(item, add_if_missing=True)
        projection.code = f"EPSG:{scene.crs.to_epsg()}"
        projection.shape = [scene.height, scene.width]
        projection.transform = list(scene.transform)[:6]
        projection.bbox = list(scene.bounds)
        item.add_asset(
            ASSET_KEY,
            pystac.Asset(href=href, media_type=pystac.MediaType.COG, roles=["visual", "data"], title="RGB"),
        )
        return item

    def run(self, interval_s: float, stop: threading.Event) -> None:
        """Publish a scene now and then every ``interval_s`` until ``stop`` is set; a failed write is
        logged and the next one is tried at the next interval."""
        while not stop.is_set():
            try:
                self.publish_next()
            except (OSError, RasterioError, pystac.STACError) as error:
                log.error("simulator: publishing a scene failed: %r", error)
            stop.wait(interval_s)


def sample_query_aoi(imagery: Path | None = None) -> dict[str, Any]:
    """A CRS84 GeoJSON Polygon inside the SpaceNet tile's footprint (for the sample query
    "all buildings" of ``lookout up``)."""
    bounds, crs = raster_georeference(imagery or spacenet_tile())
    return geojson_polygon(inner_aoi_crs84(bounds, crs, SAMPLE_AOI_MARGIN))

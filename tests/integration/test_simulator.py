"""The scene simulator on the real SpaceNet tile: COGs, the static catalog, and reading it back."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.validation import validate_dict
from rasterio.enums import ColorInterp
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from danet.packages import package_path
from services.contracts import QueryCreate
from services.simulator import SIM_COLLECTION, SceneSimulator, sample_query_aoi
from services.watcher import StaticCatalogSource

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


class Clock:
    """Acquisition times one hour apart."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        moment, self.now = self.now, self.now + timedelta(hours=1)
        return moment


@pytest.fixture
def spacenet_tile() -> Path:
    return package_path("solaris", "data") / "sample_geotiff.tif"


@pytest.fixture
def simulator(tmp_path: Path) -> SceneSimulator:
    return SceneSimulator(tmp_path / "catalog", clock=Clock())


def test_each_scene_is_an_rgb_cog_of_the_real_tile_with_overviews(simulator, spacenet_tile):
    first, second = simulator.publish_next(), simulator.publish_next()
    paths = [Path(item.assets["visual"].href) for item in (first, second)]
    assert all(path.is_absolute() for path in paths)
    with rasterio.open(spacenet_tile) as source:
        bounds, crs = source.bounds, source.crs
    pixels = []
    for path in paths:
        with rasterio.open(path) as cog:
            assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert cog.profile["tiled"]
            assert cog.block_shapes == [(256, 256)] * 3
            assert cog.overviews(1) == [2, 4]
            assert (cog.count, cog.dtypes[0], cog.crs, cog.bounds) == (3, "uint8", crs, bounds)
            assert cog.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
            pixels.append(cog.read())
    for rgb in pixels:
        assert np.array_equal(rgb[0], rgb[1])  # the panchromatic band shown as gray RGB
        assert int(rgb.max()) - int(rgb.min()) > 200  # stretched over (nearly) the full range
    assert not np.array_equal(pixels[0], pixels[1])  # radiometry varies between acquisitions
    assert np.corrcoef(pixels[0][0].ravel(), pixels[1][0].ravel())[0, 1] > 0.99  # same place


def test_the_static_catalog_reads_and_validates_with_pystac(simulator):
    simulator.publish_next()
    simulator.publish_next()

    catalog = pystac.Catalog.from_file(str(simulator.catalog_path))
    assert catalog.catalog_type == pystac.CatalogType.SELF_CONTAINED
    collection = catalog.get_child(SIM_COLLECTION)
    items = list(collection.get_items())
    assert [i.id for i in items] == ["spacenet-atlanta-1", "spacenet-atlanta-2"]
    assert [i.datetime for i in items] == [T0, T0 + timedelta(hours=1)]
    assert collection.extent.temporal.intervals == [[T0, T0 + timedelta(hours=1)]]
    # Core schemas ship with pystac; extension schemas would be fetched from the network, so the
    # extension fields are checked through pystac's typed accessors instead.
    for path in simulator.catalog_path.parent.rglob("*.json"):
        validate_dict(json.loads(path.read_text()), extensions=[])
    item = items[-1]
    projection = ProjectionExtension.ext(item)
    assert (projection.code, projection.shape) == ("EPSG:32616", [900, 900])
    assert projection.transform == [0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0]
    assert EOExtension.ext(item).cloud_cover == 0.0
    asset = item.assets["visual"]
    assert asset.media_type == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert Path(asset.href).is_file()


def test_numbering_continues_when_a_simulator_reopens_the_catalog(simulator, tmp_path):
    simulator.publish_next()
    reopened = SceneSimulator(tmp_path / "catalog")
    assert reopened.publish_next().id == "spacenet-atlanta-2"
    collection = pystac.Catalog.from_file(str(reopened.catalog_path)).get_child(SIM_COLLECTION)
    assert len(list(collection.get_items())) == 2


def test_the_footprint_is_the_raster_bounds_reprojected_to_crs84(simulator, spacenet_tile):
    item = simulator.publish_next()
    with rasterio.open(spacenet_tile) as source:
        expected = shape(transform_geom(source.crs, "OGC:CRS84", mapping(box(*source.bounds))))
    footprint = shape(item.geometry)
    assert footprint.hausdorff_distance(expected) < 1e-6  # degrees: about 0.1 m
    assert footprint.exterior.is_ccw  # RFC 7946 right-hand rule
    assert item.bbox == list(footprint.bounds)

    aoi = sample_query_aoi()
    assert footprint.contains(shape(aoi))
    assert shape(aoi).area > 0.5 * footprint.area
    QueryCreate(text="all buildings", aoi=aoi, collections=[SIM_COLLECTION])  # a valid query AOI


def test_static_catalog_source_finds_new_items_in_the_aoi_and_window(simulator):
    source = StaticCatalogSource(simulator.catalog_path.parent)  # the folder works as well
    aoi = sample_query_aoi()
    assert source.search(SIM_COLLECTION, aoi, T0, 10) == []

    simulator.publish_next()
    simulator.publish_next()
    found = source.search(SIM_COLLECTION, aoi, T0, 10)
    assert [i["id"] for i in found] == ["spacenet-atlanta-1", "spacenet-atlanta-2"]
    assert Path(found[0]["assets"]["visual"]["href"]).is_file()
    assert [i["id"] for i in source.search(SIM_COLLECTION, aoi, T0 + timedelta(minutes=30), 10)] == [
        "spacenet-atlanta-2"
    ]
    assert [i["id"] for i in source.search(SIM_COLLECTION, aoi, T0, 1)] == ["spacenet-atlanta-1"]
    assert source.search(SIM_COLLECTION, mapping(box(10, 50, 10.1, 50.1)), T0, 10) == []
    assert source.search("another-collection", aoi, T0, 10) == []
    assert source.name == simulator.catalog_path.as_uri()


def test_asset_hrefs_can_point_at_an_http_server(tmp_path):
    simulator = SceneSimulator(tmp_path / "catalog", asset_base_url="http://127.0.0.1:8000/catalog/")
    item = simulator.publish_next()
    assert (
        item.assets["visual"].href
        == "http://127.0.0.1:8000/catalog/lookout-sim/spacenet-atlanta-1/visual.tif"
    )
    assert (tmp_path / "catalog" / "lookout-sim" / "spacenet-atlanta-1" / "visual.tif").is_file()

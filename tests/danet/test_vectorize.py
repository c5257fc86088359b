"""Vectorization: components and their statistics, RFC 7946 output in CRS84 with areas, on synthetic
GeoTIFFs (projected and geographic) and on the real SpaceNet sample shipped by `solaris`."""

import json
import re

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import LinearRing, Point, Polygon, shape

from danet.geo.blending import ProbabilityStitcher
from danet.geo.raster import open_image, raster_footprint_crs84
from danet.geo.tiling import TilePlanner, pad_tile
from danet.geo.vectorize import polygonize_components, vectorize_probability
from danet.packages import package_path
from tests.support.rasters import write_geotiff

UTM_CRS = "EPSG:32616"
UTM = Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)  # 0.5 m pixels, Atlanta (SpaceNet AOI)
GEO = Affine(1e-5, 0.0, -115.2, 0.0, -1e-5, 36.1)  # ~0.9 m x 1.1 m pixels, Las Vegas
# Coordinates are rounded to 7 decimals, so a vertex on an edge may move out by half of 1e-7 degree.
ROUNDING = 1e-7


def synthetic_probability() -> np.ndarray:
    """A 20x20 square with a gradient of scores, a 40x40 ring with a 10x10 hole, and a 2-px speck."""
    prob = np.zeros((300, 400), dtype=np.float32)
    prob[100:120, 200:220] = np.linspace(0.6, 0.99, 20, dtype=np.float32)[None, :]
    prob[30:70, 30:70] = 0.8
    prob[45:55, 45:55] = 0.1
    prob[250, 350:352] = 0.95
    return prob


def exteriors_and_holes(geometry: dict) -> tuple[list, list]:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [p[0] for p in polygons], [h for p in polygons for h in p[1:]]


def assert_rfc7946(collection: dict, footprint: Polygon) -> None:
    footprint = footprint.buffer(ROUNDING)
    text = json.dumps(collection)
    assert '"crs"' not in text
    for number in re.findall(r"-?\d+\.\d+", json.dumps([f["geometry"] for f in collection["features"]])):
        assert len(number.split(".")[1]) <= 7, number
    for feature in collection["features"]:
        exteriors, holes = exteriors_and_holes(feature["geometry"])
        assert all(LinearRing(ring).is_ccw for ring in exteriors), "exterior ring must be counter-clockwise"
        assert not any(LinearRing(ring).is_ccw for ring in holes), "holes must be clockwise"
        for ring in exteriors + holes:
            for lon, lat in ring:
                assert footprint.covers(Point(lon, lat)), (lon, lat)


def test_plain_image_components_and_statistics():
    prob = synthetic_probability()
    components = polygonize_components(prob, 0.5)
    assert len(components) == 3
    by_size = sorted(components, key=lambda c: c.pixel_count)
    speck, square, ring = by_size
    assert (speck.pixel_count, square.pixel_count, ring.pixel_count) == (2, 400, 1500)
    # Pixel-space polygons: area in px² equals the pixel count; the ring keeps its hole.
    assert [c.geometry.area for c in by_size] == [2.0, 400.0, 1500.0]
    assert len(ring.geometry.interiors) == 1
    assert ring.geometry.bounds == (30.0, 30.0, 70.0, 70.0)
    assert square.geometry.bounds == (200.0, 100.0, 220.0, 120.0)
    assert square.score == pytest.approx(float(prob[100:120, 200:220].mean()), rel=1e-6)
    assert square.score_max == pytest.approx(0.99, rel=1e-6)
    assert speck.score == pytest.approx(0.95)


def test_min_pixels_valid_mask_and_nan_background():
    prob = synthetic_probability()
    prob[0:5, 0:5] = np.nan
    assert {c.pixel_count for c in polygonize_components(prob, 0.5, min_pixels=3)} == {400, 1500}
    valid = np.ones(prob.shape, dtype=bool)
    valid[:, :100] = False
    assert {c.pixel_count for c in polygonize_components(prob, 0.5, valid=valid)} == {2, 400}
    assert polygonize_components(np.zeros((8, 8)), 0.5) == []


def test_simplify_reduces_vertices_of_a_staircase():
    rows, cols = np.mgrid[0:100, 0:100]
    prob = (cols < rows).astype(np.float32)  # a triangle with a 1-px staircase hypotenuse
    (raw,) = polygonize_components(prob, 0.5)
    (simple,) = polygonize_components(prob, 0.5, simplify_px=1.0)
    assert len(simple.geometry.exterior.coords) < len(raw.geometry.exterior.coords) / 10
    assert simple.geometry.area == pytest.approx(raw.geometry.area, rel=0.02)
    assert simple.pixel_count == raw.pixel_count


def test_projected_geotiff_to_crs84_geojson(tmp_path):
    path = write_geotiff(tmp_path / "prob_utm.tif", synthetic_probability(), UTM_CRS, UTM)
    with rasterio.open(path) as ds:
        prob, crs, transform, shp = ds.read(1), ds.crs, ds.transform, ds.shape
    collection = vectorize_probability(prob, crs, transform, threshold=0.5, min_pixels=3)
    assert collection["type"] == "FeatureCollection"
    features = sorted(collection["features"], key=lambda f: f["properties"]["pixel_count"])
    assert [f["properties"]["pixel_count"] for f in features] == [400, 1500]
    square, ring = features
    # 20x20 px at 0.5 m = 100 m²; the ring is (40² - 10²) px = 375 m².
    assert square["properties"]["area_m2"] == pytest.approx(100.0, rel=0.01)
    assert ring["properties"]["area_m2"] == pytest.approx(375.0, rel=0.01)
    assert len(ring["geometry"]["coordinates"]) == 2  # exterior + one hole
    assert_rfc7946(collection, raster_footprint_crs84(crs, transform, shp))
    # The square sits where its pixels are: centre of pixel block (200..220, 100..120).
    to_lonlat = Transformer.from_crs(UTM_CRS, "OGC:CRS84", always_xy=True)
    lon, lat = to_lonlat.transform(*(UTM @ (210, 110)))
    centroid = shape(square["geometry"]).centroid
    assert (centroid.x, centroid.y) == pytest.approx((lon, lat), abs=1e-6)
    assert square["properties"]["score_max"] == pytest.approx(0.99, rel=1e-6)
    assert len(collection["bbox"]) == 4


def test_geographic_geotiff_area_matches_an_equal_area_projection(tmp_path):
    path = write_geotiff(tmp_path / "prob_4326.tif", synthetic_probability(), "EPSG:4326", GEO)
    with rasterio.open(path) as ds:
        prob, crs, transform, shp = ds.read(1), ds.crs, ds.transform, ds.shape
    collection = vectorize_probability(prob, crs, transform, min_pixels=3)
    assert_rfc7946(collection, raster_footprint_crs84(crs, transform, shp))
    square = next(f for f in collection["features"] if f["properties"]["pixel_count"] == 400)
    # Independent reference: the same square in a Lambert azimuthal equal-area projection.
    laea = Transformer.from_crs(
        "EPSG:4326", "+proj=laea +lat_0=36.1 +lon_0=-115.2 +ellps=WGS84", always_xy=True
    )
    corners = [GEO @ (c, r) for c, r in [(200, 100), (220, 100), (220, 120), (200, 120)]]
    expected = Polygon([laea.transform(x, y) for x, y in corners]).area
    assert square["properties"]["area_m2"] == pytest.approx(expected, rel=0.01)


def test_aoi_clipping_and_min_area(tmp_path):
    prob = synthetic_probability()
    to_lonlat = Transformer.from_crs(UTM_CRS, "OGC:CRS84", always_xy=True)
    # AOI = left half of the square (pixel cols 190..210, rows 90..130), built in lon/lat.
    aoi = Polygon(
        [to_lonlat.transform(*(UTM @ (c, r))) for c, r in [(190, 90), (210, 90), (210, 130), (190, 130)]]
    )
    collection = vectorize_probability(prob, UTM_CRS, UTM, aoi=aoi)
    (clipped,) = collection["features"]
    assert clipped["properties"]["area_m2"] == pytest.approx(50.0, rel=0.01)
    assert shape(clipped["geometry"]).within(aoi.buffer(ROUNDING))
    assert_rfc7946(collection, aoi)
    big_only = vectorize_probability(prob, UTM_CRS, UTM, min_area_m2=200.0)
    assert [f["properties"]["pixel_count"] for f in big_only["features"]] == [1500]


def test_tiled_pipeline_matches_whole_image(tmp_path):
    """Plan -> windowed read -> (identity "model") -> stitch -> vectorize equals vectorizing at once."""
    prob = synthetic_probability()
    path = write_geotiff(tmp_path / "scene.tif", (prob * 255).astype(np.uint8), UTM_CRS, UTM)
    planner = TilePlanner(128, 32)
    with open_image(path) as image:
        stitcher = ProbabilityStitcher(image.shape, ramp=planner.overlap)
        for tile in planner.plan(image.shape):
            pixels = pad_tile(image.read_window(tile), tile)
            assert pixels.shape == (128, 128, 3)
            stitcher.add(tile, pixels[..., 0])
        stitched = stitcher.result()
        tiled = vectorize_probability(stitched.probability, image.crs, image.transform)
    whole = vectorize_probability((prob * 255).astype(np.uint8) / 255.0, UTM_CRS, UTM)
    assert [f["geometry"] for f in tiled["features"]] == [f["geometry"] for f in whole["features"]]
    for a, b in zip(tiled["features"], whole["features"], strict=True):
        assert a["properties"] == pytest.approx(b["properties"], rel=1e-5)


def test_spacenet_building_mask_polygons(tmp_path):
    data = package_path("solaris", "data")
    with rasterio.open(data / "sample_inst_mask.tif") as ds:
        mask = (ds.read() > 0).any(axis=0)  # 43 instance bands -> one building mask
        crs, transform = ds.crs, ds.transform
    with open_image(data / "sample_geotiff.tif") as scene:
        footprint = scene.footprint()
        assert scene.transform == transform
        assert scene.crs.to_epsg() == 32616
    collection = vectorize_probability(mask.astype(np.float32), crs, transform)
    assert len(collection["features"]) >= 30
    assert_rfc7946(collection, footprint)
    pixel_area = abs(transform.a * transform.e)  # 0.25 m²
    total = sum(f["properties"]["area_m2"] for f in collection["features"])
    assert total == pytest.approx(mask.sum() * pixel_area, rel=0.02)
    assert sum(f["properties"]["pixel_count"] for f in collection["features"]) == mask.sum()


def test_spacenet_road_mask_in_epsg4326():
    data = package_path("solaris", "data")
    with rasterio.open(data / "sample_road_raster_mask.tif") as ds:
        mask = ds.read(1) > 0
        crs, transform, shp = ds.crs, ds.transform, ds.shape
    assert crs.to_epsg() == 4326
    collection = vectorize_probability(mask.astype(np.float32), crs, transform)
    assert collection["features"]
    assert_rfc7946(collection, raster_footprint_crs84(crs, transform, shp))
    # Reference: per-row cell areas in an equal-area projection times the mask pixels in that row.
    lon0, lat0 = transform @ (shp[1] / 2, shp[0] / 2)
    laea = Transformer.from_crs(crs, f"+proj=laea +lat_0={lat0} +lon_0={lon0} +ellps=WGS84", always_xy=True)
    rows = np.arange(shp[0])
    cell_area = np.array(
        [
            Polygon(
                [laea.transform(*(transform @ (c, r + dr))) for c, dr in ((0, 0), (1, 0), (1, 1), (0, 1))]
            ).area
            for r in rows
        ]
    )
    expected = float((mask.sum(axis=1) * cell_area).sum())
    total = sum(f["properties"]["area_m2"] for f in collection["features"])
    assert total == pytest.approx(expected, rel=0.01)

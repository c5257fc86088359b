"""Geospatial pure logic for prediction on large images: tile planning, overlap blending of tile
probabilities, raster input, and vectorization of masks into RFC 7946 GeoJSON with areas."""

from danet.geo.blending import ProbabilityStitcher, StitchedProbability
from danet.geo.raster import (
    GeoRasterImage,
    PlainImage,
    PredictionImage,
    WindowRead,
    open_image,
    raster_footprint_crs84,
    stretch_to_uint8,
)
from danet.geo.tiling import PixelRegion, TilePlanner, TileWindow, aoi_pixel_region, pad_tile
from danet.geo.vectorize import (
    Component,
    components_to_feature_collection,
    geodesic_area_m2,
    polygonize_components,
    vectorize_probability,
)

__all__ = [
    "Component",
    "GeoRasterImage",
    "PixelRegion",
    "PlainImage",
    "PredictionImage",
    "ProbabilityStitcher",
    "StitchedProbability",
    "TilePlanner",
    "TileWindow",
    "WindowRead",
    "aoi_pixel_region",
    "components_to_feature_collection",
    "geodesic_area_m2",
    "open_image",
    "pad_tile",
    "polygonize_components",
    "raster_footprint_crs84",
    "stretch_to_uint8",
    "vectorize_probability",
]

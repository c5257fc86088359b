"""Which rasters the dispatcher segments: georeference and band counts (pure)."""

import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp as C

from services.scenes import PermanentSceneError, bands_as_rgb, check_georeference

UTM = Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)


@pytest.mark.parametrize(
    ("colorinterp", "use"),
    [
        ((C.red, C.green, C.blue), "RGB"),
        ((C.gray, C.undefined, C.undefined), "RGB"),  # GeoTIFFs written without photometric=RGB
        ((C.red, C.green, C.blue, C.undefined), "bands 1-3 of 4 as RGB (band 4 ignored)"),  # RGBN
        ((C.red, C.green, C.blue, C.alpha), "bands 1-3 of 4 as RGB (alpha as mask)"),
        ((C.gray,) * 6, "bands 1-3 of 6 as RGB (band 4 ignored, bands 5-6 ignored)"),
        ((C.gray,), "grey (band 1) replicated to RGB"),
        ((C.gray, C.alpha), "grey (band 1) replicated to RGB, alpha as mask"),
    ],
)
def test_band_counts_that_become_rgb(colorinterp, use):
    assert bands_as_rgb("a.tif", len(colorinterp), colorinterp).description == use
    indexes = bands_as_rgb("a.tif", len(colorinterp), colorinterp).indexes
    assert indexes == ((1,) if use.startswith("grey") else (1, 2, 3))


@pytest.mark.parametrize("colorinterp", [(C.gray, C.undefined), (C.undefined, C.undefined), ()])
def test_two_bands_that_are_no_grey_with_alpha_and_zero_bands_are_refused(colorinterp):
    with pytest.raises(PermanentSceneError, match=rf"a.tif has {len(colorinterp)} band\(s\)") as err:
        bands_as_rgb("a.tif", len(colorinterp), colorinterp)
    assert err.value.code == "unsupported_bands"


def test_georeference_needs_a_crs_and_a_geotransform():
    check_georeference("a.tif", CRS.from_epsg(32616), UTM)
    with pytest.raises(PermanentSceneError, match=r"a\.tif has no CRS") as err:
        check_georeference("a.tif", None, UTM)
    assert err.value.code == "not_georeferenced"
    with pytest.raises(PermanentSceneError, match=r"a\.tif has no geotransform"):
        check_georeference("a.tif", CRS.from_epsg(32616), Affine.identity())

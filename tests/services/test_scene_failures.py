"""Permanent or transient: HTTP statuses, and real GDAL errors on broken local files."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import RasterioError

from services.scenes import (
    PermanentSceneError,
    TransientSceneError,
    asset_read_failure,
    classified_asset_errors,
    http_failure,
)
from tests.support.rasters import write_geotiff


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "asset_not_found"), (410, "asset_not_found"), (403, "asset_refused"), (401, "asset_refused")],
)
def test_client_errors_are_permanent(status, code):
    failure = http_failure("asset", "https://cdn.example.com/a.tif", status)
    assert isinstance(failure, PermanentSceneError)
    assert failure.code == code
    assert str(failure) == f"asset https://cdn.example.com/a.tif: HTTP {status}"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 425, 429])
def test_server_errors_and_throttling_are_transient(status):
    failure = http_failure("item", "https://stac.example.com/items/x", status)
    assert isinstance(failure, TransientSceneError)
    assert f"HTTP {status} (retried)" in str(failure)


def _gdal_error(path: Path) -> RasterioError:
    with pytest.raises(RasterioError) as caught, rasterio.open(path) as dataset:
        dataset.read()
    return caught.value


@pytest.fixture
def cog(tmp_path) -> Path:
    pixels = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    return write_geotiff(tmp_path / "ok.tif", pixels, driver="COG", blocksize=64, compress="DEFLATE")


def test_a_missing_local_file_is_permanent(tmp_path):
    failure = asset_read_failure(str(tmp_path / "gone.tif"), _gdal_error(tmp_path / "gone.tif"), local=True)
    assert isinstance(failure, PermanentSceneError)
    assert failure.code == "asset_not_found"


def test_a_file_that_is_no_raster_is_permanent_local_or_remote(tmp_path):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"<html>access denied</html>" * 50)
    for local in (True, False):
        failure = asset_read_failure(str(garbage), _gdal_error(garbage), local=local)
        assert isinstance(failure, PermanentSceneError)
        assert failure.code == "corrupt_asset"
        assert "not a raster GDAL can read" in str(failure)


def test_a_truncated_cog_is_permanent_when_local_and_retried_when_remote(cog):
    truncated = cog.with_name("truncated.tif")
    truncated.write_bytes(cog.read_bytes()[: cog.stat().st_size // 2])  # header intact, tiles cut
    error = _gdal_error(truncated)

    local = asset_read_failure(str(truncated), error, local=True)
    assert isinstance(local, PermanentSceneError)
    assert local.code == "corrupt_asset"
    assert "truncated or corrupt" in str(local)
    assert "TIFFFillTile" in str(local)

    remote = asset_read_failure("https://cdn.example.com/truncated.tif", error, local=False)
    assert isinstance(remote, TransientSceneError)
    assert "a failed range request and a truncated file look the same" in str(remote)


def test_the_context_manager_converts_only_rasterio_errors(tmp_path):
    with pytest.raises(PermanentSceneError) as caught, classified_asset_errors("/x/gone.tif", local=True):
        rasterio.open(tmp_path / "gone.tif")
    assert isinstance(caught.value.__cause__, RasterioError)
    with pytest.raises(KeyError), classified_asset_errors("/x/a.tif", local=True):
        raise KeyError("not an asset error")

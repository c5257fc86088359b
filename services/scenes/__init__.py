"""Scene inputs, read the same way by the dispatcher (which segments them) and the API (which shows
their quicklooks): the STAC item, the image asset chosen in it, the URLs either may be read from, the
GDAL settings and checks of opening the image, and why a read failed.

Pure logic: `policy` (which URLs may be read), `assets` (which asset is the image), `raster_checks`
(georeference, which bands are RGB), `failures` (permanent or transient, and GDAL's errors classified).
I/O: `items` (the STAC item, from the message, a file or HTTP), `rasters` (opening the image under the
GDAL settings), `inputs` (`SceneInputs`: the keys, policy and timeout from the settings, in one value).
"""

from services.scenes.assets import AssetChoice, choose_asset, select_asset, self_href
from services.scenes.failures import (
    PermanentSceneError,
    TransientSceneError,
    asset_read_failure,
    classified_asset_errors,
    http_failure,
)
from services.scenes.inputs import SceneInputs
from services.scenes.items import load_item, read_item, read_text
from services.scenes.policy import AssetPolicy, is_local, local_path
from services.scenes.raster_checks import BandUse, band_use, bands_as_rgb, check_georeference
from services.scenes.rasters import gdal_name, gdal_options, open_image

__all__ = [
    "AssetChoice",
    "AssetPolicy",
    "BandUse",
    "PermanentSceneError",
    "SceneInputs",
    "TransientSceneError",
    "asset_read_failure",
    "band_use",
    "bands_as_rgb",
    "check_georeference",
    "choose_asset",
    "classified_asset_errors",
    "gdal_name",
    "gdal_options",
    "http_failure",
    "is_local",
    "load_item",
    "local_path",
    "open_image",
    "read_item",
    "read_text",
    "select_asset",
    "self_href",
]

"""Scene inputs, read the same way by the dispatcher (which segments them) and the API (which shows
their quicklooks): the STAC item, the image asset chosen in it, the URLs either may be read from, the
GDAL settings and checks of opening the image, and why a read failed.

Pure logic: `policy` (which URLs may be read), `selection` (which assets and bands the model sees, at
which GSD, or why none), `assets` (asset hrefs; the quicklooks' image), `raster_checks`
(georeference, which bands are RGB), `failures` (permanent or transient, and GDAL's errors classified).
I/O: `access` (how a source is read: signing, S3 options, headers from the environment), `items` (the
STAC item, from the message, a file or HTTP), `rasters` (opening the image under the GDAL settings of
the read and its source), `inputs` (`SceneInputs`: the keys, policy, timeout and sources from the
settings, in one value).
"""

from services.scenes.access import SourceAccess, source_access
from services.scenes.assets import AssetChoice, choose_asset, self_href
from services.scenes.failures import (
    PermanentSceneError,
    TransientSceneError,
    asset_read_failure,
    classified_asset_errors,
    http_failure,
)
from services.scenes.inputs import SceneInputs
from services.scenes.items import load_item, read_item, read_text
from services.scenes.policy import AssetPolicy, is_local, local_path, redact
from services.scenes.raster_checks import BandUse, bands_as_rgb, check_georeference
from services.scenes.rasters import gdal_name, gdal_options, image_reads, open_image

__all__ = [
    "AssetChoice",
    "AssetPolicy",
    "BandUse",
    "PermanentSceneError",
    "SceneInputs",
    "SourceAccess",
    "TransientSceneError",
    "asset_read_failure",
    "bands_as_rgb",
    "check_georeference",
    "choose_asset",
    "classified_asset_errors",
    "gdal_name",
    "gdal_options",
    "http_failure",
    "image_reads",
    "is_local",
    "load_item",
    "local_path",
    "open_image",
    "read_item",
    "read_text",
    "redact",
    "self_href",
    "source_access",
]

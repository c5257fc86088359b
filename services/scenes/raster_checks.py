"""Whether an opened raster can be used, and which of its bands are its RGB (pure: facts of the dataset
in, a decision out). The dispatcher segments what passes; the API's quicklooks show the same bands.

- **Georeference**: a CRS and a geotransform (GDAL reports the identity when a file has none). Without
  both, no AOI can be cut out of the pixels and no polygon placed on the Earth.
- **Bands**: the model sees RGB (danet's `GeoRasterImage` reads bands 1-3, or band 1 replicated).
  3 bands: RGB. 4 or more: the first three as RGB and the rest ignored; that fits RGBN imagery (red,
  green, blue, near-infrared) and RGBA (GDAL turns the alpha band into the valid-data mask), not band
  orders such as Sentinel-2's B1, B2, B3 (use a ``visual`` asset for those). 1 band: grey (panchromatic),
  replicated to three channels. 2 bands: grey + alpha is grey with a mask; any other pair (SAR VV/VH, a
  band ratio) is refused: it is no image the model was trained on, and its first band alone would be
  segmented as if it were one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from affine import Affine
from rasterio.enums import ColorInterp

from services.scenes.failures import PermanentSceneError

_RGB = (1, 2, 3)
_GREY = (1,)


@dataclass(frozen=True)
class BandUse:
    """The bands read (1-based): three as RGB, or one grey band replicated to RGB; and how, in words."""

    indexes: tuple[int, ...]
    description: str


def check_georeference(href: str, crs: object | None, transform: Affine) -> None:
    """Raise PermanentSceneError (``not_georeferenced``) unless the raster has a CRS and a geotransform."""
    if crs is None:
        raise PermanentSceneError("not_georeferenced", f"asset {href} has no CRS (projection)")
    if transform.is_identity:
        raise PermanentSceneError("not_georeferenced", f"asset {href} has no geotransform")


def bands_as_rgb(href: str, count: int, colorinterp: Sequence[ColorInterp]) -> BandUse:
    """How the raster's bands become RGB; raises PermanentSceneError (``unsupported_bands``)."""
    if count == 3:
        return BandUse(_RGB, "RGB")
    if count >= 4:
        extra = "alpha as mask" if colorinterp[3] == ColorInterp.alpha else "band 4 ignored"
        if count > 4:
            extra += f", bands 5-{count} ignored"
        return BandUse(_RGB, f"bands 1-3 of {count} as RGB ({extra})")
    if count == 1:
        return BandUse(_GREY, "grey (band 1) replicated to RGB")
    if count == 2 and colorinterp[1] == ColorInterp.alpha:
        return BandUse(_GREY, "grey (band 1) replicated to RGB, alpha as mask")
    names = ", ".join(c.name for c in colorinterp) or "none"
    raise PermanentSceneError(
        "unsupported_bands",
        f"asset {href} has {count} band(s) ({names}): the segmenter needs RGB (3 or more bands, the "
        "first three used) or one grey band (optionally with alpha)",
    )

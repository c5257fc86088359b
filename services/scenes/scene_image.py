"""A scene's image as the model sees it: the channels the input decision chose (`services.scenes.selection`)
read window by window on a grid at the model's ground sample distance.

- **Channels**: bands of one asset by index (NAIP's bands 1-3 of four, Maxar's red/green/blue of eight),
  one band of each of three single-band assets on the same grid (Landsat, Sentinel-2 composites), one
  grey band (replicated), or, for an asset without band metadata, the bands the raster itself says
  (`bands_as_rgb`).
- **Values**: uint8 data as it is; other data types get the band's ``scale``/``offset`` (raster:bands),
  then the per-band percentile stretch every non-uint8 input gets in danet (`danet.geo.stretch_to_uint8`),
  its limits estimated once per scene from a decimated read (served from the overviews).
- **Grid**: the scene's grid rescaled by ``resample`` (scene GSD / model GSD): each window of the model
  grid is read from the matching source window with ``out_shape`` (GDAL takes an overview when it
  shrinks), so the whole scene is never read at full resolution. Without a GSD in the metadata, a raster
  in a projected CRS in metres gives its own (`raster_gsd_m`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader
from rasterio.windows import Window

from danet.geo import PredictionImage, TileWindow, WindowRead
from danet.geo.raster import stretch_limits
from services.scenes.access import SourceAccess
from services.scenes.failures import PermanentSceneError, classified_asset_errors
from services.scenes.policy import AssetPolicy, is_local
from services.scenes.raster_checks import bands_as_rgb, check_georeference
from services.scenes.rasters import image_reads
from services.scenes.selection import Channel, ModelInput, SceneInputDecision

# Longest side of the decimated read that estimates a non-uint8 scene's stretch (as danet's).
STRETCH_SAMPLE_SIDE = 1024
# Resampling factors this close to 1 read the scene at its own grid (no interpolation for a rounding).
RESAMPLE_TOLERANCE = 0.02


@dataclass(frozen=True)
class ChannelSource:
    """One channel: band `band` of `dataset`, with the scale/offset to apply to non-uint8 values."""

    dataset: DatasetReader
    band: int
    scale: float | None = None
    offset: float | None = None


def raster_gsd_m(crs: Any, transform: Affine) -> float | None:
    """The raster's pixel size in metres when its CRS is projected in metres (the larger of the two
    axes), else None (degrees say nothing exact about metres)."""
    if crs is None:
        return None
    try:
        parsed = CRS.from_user_input(crs)
    except Exception:  # an unparsable CRS only means no GSD can be derived
        return None
    if not parsed.is_projected or not parsed.axis_info:
        return None
    factors = [axis.unit_conversion_factor for axis in parsed.axis_info[:2]]
    if any(abs(f - 1.0) > 1e-9 for f in factors):
        return None
    return max(abs(transform.a), abs(transform.e))


def check_gsd(gsd_m: float, model: ModelInput) -> None:
    """Refuse (PermanentSceneError ``gsd_out_of_range``) a GSD outside the model's range."""
    low, high = model.gsd_min_m, model.gsd_max_m
    if (low is not None and gsd_m < low) or (high is not None and gsd_m > high):
        raise PermanentSceneError(
            "gsd_out_of_range",
            f"ground sample distance {gsd_m:g} m (from the raster's grid) is outside the model's range "
            f"{model.describe_range()}",
        )


class SceneImage(PredictionImage):
    """The chosen channels of a scene on the model's grid (see the module docstring).

    `shape`, `transform` and `crs` are those of the model grid; `source_shape` the scene's own.
    """

    def __init__(
        self, path: str, channels: Sequence[ChannelSource], *, resample: float | None = None
    ) -> None:
        first = channels[0].dataset
        self.path = path
        self.channels = tuple(channels)
        self.crs = CRS.from_user_input(first.crs)
        self.source_shape = (first.height, first.width)
        factor = resample if resample is not None and abs(resample - 1.0) > RESAMPLE_TOLERANCE else 1.0
        self.resample = factor
        height = max(1, round(first.height * factor))
        width = max(1, round(first.width * factor))
        self.shape = (height, width)
        self._row_step = first.height / height  # source pixels per model pixel
        self._col_step = first.width / width
        self.transform = first.transform @ Affine.scale(self._col_step, self._row_step)
        dtypes = {c.dataset.dtypes[c.band - 1] for c in self.channels}
        self.stretch = None if dtypes == {"uint8"} else self._estimate_stretch()

    def _source_window(self, window: TileWindow) -> Window:
        return Window(
            window.col_off * self._col_step,
            window.row_off * self._row_step,
            window.width * self._col_step,
            window.height * self._row_step,
        )

    def _read(self, window: Window | None, out_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(channels, h, w) float64 values (scale/offset applied) and the valid mask, on `out_shape`."""
        values = np.empty((len(self.channels), *out_shape), dtype=np.float64)
        valid = np.ones(out_shape, dtype=bool)
        same_grid = out_shape == (
            self.source_shape if window is None else (round(window.height), round(window.width))
        )
        resampling = Resampling.nearest if same_grid else Resampling.bilinear
        for i, channel in enumerate(self.channels):
            ds = channel.dataset
            band = ds.read(channel.band, window=window, out_shape=out_shape, resampling=resampling)
            mask = ds.read_masks(
                channel.band, window=window, out_shape=out_shape, resampling=Resampling.nearest
            )
            data = band.astype(np.float64)
            if ds.dtypes[channel.band - 1] != "uint8":
                data = data * (1.0 if channel.scale is None else channel.scale) + (channel.offset or 0.0)
            values[i] = data
            valid &= mask > 0
        return values, valid & np.isfinite(values).all(axis=0)

    def _estimate_stretch(self) -> np.ndarray:
        height, width = self.source_shape
        scale = max(height, width) / STRETCH_SAMPLE_SIDE
        out_shape = (
            (max(1, math.ceil(height / scale)), max(1, math.ceil(width / scale)))
            if scale > 1
            else (height, width)
        )
        values, valid = self._read(None, out_shape)
        return stretch_limits(np.asarray(values, dtype=np.float64), valid)

    def read(self, window: TileWindow | None = None) -> WindowRead:
        """Pixels (float32 RGB in 0..1) and valid mask of `window` of the model grid."""
        window = self._check_window(window)
        values, valid = self._read(self._source_window(window), (window.height, window.width))
        if self.stretch is None:
            data = values / 255.0
        else:
            low, high = self.stretch[:, 0, None, None], self.stretch[:, 1, None, None]
            data = np.clip((values - low) / (high - low), 0.0, 1.0)
        if data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        image = np.where(valid[None], data, 0.0).transpose(1, 2, 0)
        return WindowRead(np.ascontiguousarray(image, dtype=np.float32), valid)

    def close(self) -> None:
        """Nothing here: the datasets belong to `open_scene_image`, which closes them."""


@dataclass(frozen=True)
class OpenedScene:
    """A scene open for reading: its image on the model grid, how its bands are used (words), its GSD."""

    image: SceneImage
    bands: str
    gsd_m: float | None


def _describe(decision: SceneInputDecision) -> str:
    names = ", ".join(f"{c.asset}:{c.band} ({c.name})" for c in decision.channels)
    return f"{names} as {'RGB' if len(decision.channels) == 3 else 'grey'}"


@contextmanager
def open_scene_image(
    decision: SceneInputDecision,
    hrefs: Mapping[str, str],
    model: ModelInput,
    *,
    policy: AssetPolicy,
    access: SourceAccess,
    timeout_s: float,
) -> Iterator[OpenedScene]:
    """The accepted `decision`'s image on the model grid; `hrefs` are its assets' absolute hrefs (already
    allowed by `policy`), each opened under `image_reads` (signing, S3 options, headers of `access`).

    Raises PermanentSceneError (``not_georeferenced``, ``unsupported_bands``, ``grid_mismatch``,
    ``gsd_out_of_range`` for a GSD derived from the grid) or TransientSceneError.
    """
    with ExitStack() as stack:
        datasets: dict[str, DatasetReader] = {}
        for key in decision.assets:
            href = hrefs[key]
            name = stack.enter_context(image_reads(href, policy, access, timeout_s=timeout_s))
            # No georeference is refused below with the asset named; GDAL's own warning adds nothing.
            with classified_asset_errors(href, local=is_local(href)), warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                dataset = stack.enter_context(rasterio.open(name))
            check_georeference(href, dataset.crs, dataset.transform)
            datasets[key] = dataset
        first_key = decision.assets[0]
        first = datasets[first_key]
        for key, dataset in datasets.items():
            if (dataset.crs, dataset.transform, dataset.shape) != (first.crs, first.transform, first.shape):
                raise PermanentSceneError(
                    "grid_mismatch",
                    f"assets {first_key!r} and {key!r} are not on one grid (CRS, transform, size differ): "
                    "their bands cannot be composed pixel by pixel",
                )
        if decision.from_raster:
            use = bands_as_rgb(hrefs[first_key], first.count, first.colorinterp)
            channels = [ChannelSource(first, band) for band in use.indexes]
            bands = use.description
        else:
            channels = []
            for channel in decision.channels:
                dataset = datasets[channel.asset]
                if channel.band > dataset.count:
                    raise PermanentSceneError(
                        "unsupported_bands",
                        f"asset {hrefs[channel.asset]} has {dataset.count} band(s); the metadata names "
                        f"band {channel.band} as {channel.name}",
                    )
                channels.append(_channel_source(dataset, channel))
            bands = _describe(decision)
        gsd, resample = decision.gsd_m, decision.resample
        if gsd is None and model.gsd_m is not None:
            gsd = raster_gsd_m(first.crs, first.transform)
            if gsd is not None:
                check_gsd(gsd, model)
                resample = gsd / model.gsd_m
        image = SceneImage(hrefs[first_key], channels, resample=resample)
        if image.resample != 1.0:
            bands += f"; resampled x{image.resample:.3g} to {model.gsd_m:g} m"
        yield OpenedScene(image, bands, gsd)


def _channel_source(dataset: DatasetReader, channel: Channel) -> ChannelSource:
    return ChannelSource(dataset, channel.band, channel.scale, channel.offset)

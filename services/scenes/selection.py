"""Which pixels of a STAC item the model sees, chosen from the item's metadata (pure: item in, decision out).

Catalogs name assets as they like (``visual``, ``image``, ``B04``, ``red``, ``ms_analytic``), so the
choice reads what the STAC extensions say about each asset instead of its key:

- **roles** and **media type**: only GeoTIFF/COG or JPEG 2000 images that are data or a visual
  rendering; thumbnails, overviews, metadata, masks (cloud, snow, water, data) and tiles are not;
- **band names** (``eo:bands`` / STAC 1.1 ``bands``, ``common_name`` first): red, green and blue of one
  asset (a visual RGB, NAIP's RGB + NIR, Maxar's eight-band multispectral), else red, green and blue
  composed from three single-band assets (Landsat, Sentinel-2 bands), else a panchromatic band as grey;
- **raster:bands**: the data type and the scale/offset (16-bit reflectance is scaled, then stretched);
- **ground sample distance**: the asset's ``gsd``, its bands' ``spatial_resolution``, or the item's
  ``gsd``. A scene outside the range the model supports is refused; inside it, the image is resampled to
  the model's GSD (``resample`` > 1 enlarges the image).

Items that are not optical imagery are refused with a reason a user can act on: SAR (``sar:``
properties), elevation and other physical quantities (floating-point data without band names), thermal
bands, and items with no image asset at all. Assets without any band metadata under one of the
configured keys (``dispatcher.asset_keys``) are taken as before: the raster's own bands decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

IMAGE_MEDIA_TYPES = ("image/tiff", "image/jp2", "image/vnd.stac.geotiff")
IMAGE_SUFFIXES = (".tif", ".tiff", ".jp2")
# Roles of assets that are never the scene's image.
NOT_IMAGE_ROLES = frozenset(
    {
        "thumbnail",
        "overview",
        "metadata",
        "tiles",
        "data-mask",
        "cloud",
        "cloud-shadow",
        "snow-ice",
        "water-mask",
        "land-water",
        "saturation",
        "temperature",
        "emissivity",
        "iso-19139",
        "iso-19115",
    }
)
RGB = ("red", "green", "blue")
PAN_NAMES = frozenset({"pan", "panchromatic", "band_p", "p"})
_FLOAT_TYPES = frozenset({"float16", "float32", "float64", "cfloat32", "cfloat64"})


@dataclass(frozen=True)
class ModelInput:
    """What the model was trained on: its ground sample distance (m) and the range it accepts.

    ``gsd_m`` None: the model states no GSD; scenes are read at their own resolution and never refused
    for it.
    """

    gsd_m: float | None = None
    gsd_min_m: float | None = None
    gsd_max_m: float | None = None

    @classmethod
    def from_contract(cls, contract: Any) -> ModelInput:
        """From a DANet input contract (``DANetConfig.input``: ``gsd_m``, ``gsd_range_m``)."""
        low, high = contract.gsd_range_m or (None, None)
        return cls(contract.gsd_m, low, high)

    def describe_range(self) -> str:
        """The accepted range in words (for refusal reasons)."""
        low = "0" if self.gsd_min_m is None else f"{self.gsd_min_m:g}"
        high = "any" if self.gsd_max_m is None else f"{self.gsd_max_m:g}"
        trained = "" if self.gsd_m is None else f" (trained at {self.gsd_m:g} m)"
        return f"{low}-{high} m{trained}"


@dataclass(frozen=True)
class Channel:
    """One channel the model sees: band ``band`` (1-based) of asset ``asset``; ``name`` is the band's
    common name (or ``band N`` when the metadata names none); ``scale``/``offset`` from raster:bands."""

    asset: str
    band: int
    name: str
    data_type: str | None = None
    scale: float | None = None
    offset: float | None = None


@dataclass(frozen=True)
class SceneInputDecision:
    """What the dispatcher does with an item for the configured model, and why.

    ``code`` names a refusal for machines (``not_optical``, ``gsd_out_of_range``, ``no_image_asset``);
    ``channels`` are 3 (RGB) or 1 (grey); empty with ``from_raster`` when an asset without band metadata
    is taken and the raster's own bands decide.
    """

    decision: Literal["accept", "refuse"]
    reason: str
    code: str | None = None
    channels: tuple[Channel, ...] = ()
    from_raster: bool = False
    gsd_m: float | None = None
    resample: float | None = None
    assets: tuple[str, ...] = field(default=())

    @property
    def accepted(self) -> bool:
        """True when the scene is segmented."""
        return self.decision == "accept"

    @property
    def asset(self) -> str | None:
        """The one asset all channels come from, None for a composite (or a refusal)."""
        return self.assets[0] if len(self.assets) == 1 else None

    def as_json(self) -> dict[str, Any]:
        """The decision as ``lookout explain`` prints it."""
        return {
            "decision": self.decision,
            "reason": self.reason,
            "code": self.code,
            "asset": self.asset,
            "assets": list(self.assets),
            "bands": [f"{c.asset}:{c.band} ({c.name})" for c in self.channels],
            "gsd_m": self.gsd_m,
            "resample": self.resample,
        }


def refuse(code: str, reason: str, *, gsd_m: float | None = None) -> SceneInputDecision:
    """A refusal with its machine code and its reason in words."""
    return SceneInputDecision("refuse", reason, code=code, gsd_m=gsd_m)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bands(asset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    bands = asset.get("eo:bands") or asset.get("bands") or []
    return [b for b in bands if isinstance(b, Mapping)] if isinstance(bands, list) else []


def _band_name(band: Mapping[str, Any]) -> str | None:
    for key in ("common_name", "eo:common_name", "name"):
        value = band.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return None


def _raster_bands(asset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    bands = asset.get("raster:bands") or []
    if not bands:  # STAC 1.1 puts the raster fields on the bands themselves
        bands = _bands(asset)
    return [b for b in bands if isinstance(b, Mapping)] if isinstance(bands, list) else []


def _is_image(asset: Mapping[str, Any]) -> bool:
    roles = {str(r).lower() for r in asset.get("roles") or []}
    if roles & NOT_IMAGE_ROLES:
        return False
    media = str(asset.get("type") or "").lower()
    if media:
        return media.startswith(IMAGE_MEDIA_TYPES)
    return str(asset.get("href") or "").lower().split("?")[0].endswith(IMAGE_SUFFIXES)


def _gsd(asset: Mapping[str, Any], channels: Sequence[int], item_gsd: float | None) -> float | None:
    own = _number(asset.get("gsd"))
    if own is not None:
        return own
    raster = _raster_bands(asset)
    resolutions = [_number(raster[i - 1].get("spatial_resolution")) for i in channels if i <= len(raster)]
    known = [r for r in resolutions if r is not None]
    return max(known) if known else item_gsd


def _channel(key: str, asset: Mapping[str, Any], index: int, name: str) -> Channel:
    raster = _raster_bands(asset)
    info = raster[index - 1] if index <= len(raster) else {}
    data_type = info.get("data_type")
    return Channel(
        key,
        index,
        name,
        data_type=str(data_type) if data_type else None,
        scale=_number(info.get("scale")),
        offset=_number(info.get("offset")),
    )


def _named(bands: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Band common name -> 1-based index (first occurrence)."""
    named: dict[str, int] = {}
    for i, band in enumerate(bands, start=1):
        name = _band_name(band)
        if name is not None:
            named.setdefault(name, i)
    return named


@dataclass(frozen=True)
class _Candidate:
    channels: tuple[Channel, ...]
    assets: tuple[str, ...]
    gsd: float | None
    how: str
    from_raster: bool = False


def _candidates(item: Mapping[str, Any], asset_keys: Sequence[str]) -> tuple[list[_Candidate], list[str]]:
    """Usable inputs in order of preference, and notes on the assets passed over (for the reason)."""
    assets = item.get("assets") or {}
    if not isinstance(assets, Mapping):
        return [], [f"assets is not an object but {type(assets).__name__}"]
    item_gsd = _number((item.get("properties") or {}).get("gsd"))
    images = {k: a for k, a in assets.items() if isinstance(a, Mapping) and a.get("href") and _is_image(a)}
    passed_over = [k for k in assets if k not in images]
    found: list[_Candidate] = []
    singles: dict[str, tuple[str, Mapping[str, Any]]] = {}
    # Visual renderings first, then other multi-band assets, each in the item's order.
    ordered = sorted(images.items(), key=lambda kv: "visual" not in (kv[1].get("roles") or []))
    for key, asset in ordered:
        bands = _bands(asset)
        named = _named(bands)
        if all(c in named for c in RGB):
            channels = tuple(_channel(key, asset, named[c], c) for c in RGB)
            how = "its red, green and blue bands" if len(bands) > 3 else "its RGB bands"
            found.append(_Candidate(channels, (key,), _gsd(asset, [named[c] for c in RGB], item_gsd), how))
        elif len(bands) == 1 and _band_name(bands[0]) is not None:
            singles.setdefault(_band_name(bands[0]) or "", (key, asset))
        elif not bands and "visual" in (asset.get("roles") or []):
            found.append(_Candidate((), (key,), _gsd(asset, [1, 2, 3], item_gsd), "a visual rendering", True))
    if all(c in singles for c in RGB):
        channels = tuple(_channel(singles[c][0], singles[c][1], 1, c) for c in RGB)
        gsds = [_gsd(singles[c][1], [1], item_gsd) for c in RGB]
        known = [g for g in gsds if g is not None]
        found.append(
            _Candidate(
                channels,
                tuple(singles[c][0] for c in RGB),
                max(known) if known else None,
                "red, green and blue composed from three single-band assets",
            )
        )
    for name in sorted(PAN_NAMES & set(singles)):
        key, asset = singles[name]
        channel = _channel(key, asset, 1, "pan")
        found.append(
            _Candidate((channel,), (key,), _gsd(asset, [1], item_gsd), "its panchromatic band as grey")
        )
    for key in asset_keys:  # legacy: a configured key whose asset carries no band metadata
        asset = images.get(key)
        if asset is not None and not _bands(asset) and not _is_float_data(asset):
            found.append(
                _Candidate((), (key,), _gsd(asset, [1], item_gsd), f"asset {key!r} (no band metadata)", True)
            )
    return found, passed_over


def _is_float_data(asset: Mapping[str, Any]) -> bool:
    types = {str(b.get("data_type") or "").lower() for b in _raster_bands(asset)}
    return bool(types) and types <= _FLOAT_TYPES


def _not_optical(item: Mapping[str, Any]) -> str | None:
    properties = item.get("properties") or {}
    extensions = " ".join(str(e) for e in item.get("stac_extensions") or [])
    if any(str(k).startswith("sar:") for k in properties) or "/sar/" in extensions:
        mode = properties.get("sar:instrument_mode")
        return f"SAR backscatter{f' ({mode})' if mode else ''} is not optical imagery"
    return None


def _no_image_reason(item: Mapping[str, Any], passed_over: Sequence[str]) -> tuple[str, str]:
    assets = item.get("assets") or {}
    images = [a for a in assets.values() if isinstance(a, Mapping) and _is_image(a)]
    if images and all(_is_float_data(a) and not _bands(a) for a in images):
        return "not_optical", (
            "its image assets hold floating-point data without band names (elevation or another "
            "physical quantity), not optical imagery"
        )
    thermal = [
        k for k, a in assets.items() if isinstance(a, Mapping) and "temperature" in (a.get("roles") or [])
    ]
    if thermal and not images:
        return "not_optical", f"only thermal bands ({', '.join(thermal)}), no optical image"
    if not images:
        listed = ", ".join(sorted(str(k) for k in assets)) or "none"
        return "no_image_asset", f"no GeoTIFF/COG or JPEG 2000 image asset (assets: {listed})"
    usable = ", ".join(sorted(str(k) for k in assets if k not in passed_over))
    return "no_image_asset", (
        "no asset with red, green and blue bands, no panchromatic band and none of the configured asset "
        f"keys without band metadata (image assets: {usable})"
    )


def choose_scene_input(
    item: Mapping[str, Any], model: ModelInput, asset_keys: Sequence[str] = ()
) -> SceneInputDecision:
    """Decide which bands of which assets the model sees, at which resampling, or why none (see the
    module docstring for the rules, in order)."""
    not_optical = _not_optical(item)
    if not_optical is not None:
        return refuse("not_optical", not_optical)
    candidates, passed_over = _candidates(item, asset_keys)
    if not candidates:
        return refuse(*_no_image_reason(item, passed_over))
    best = candidates[0]
    gsd = best.gsd
    if gsd is not None and model.gsd_m is not None:
        low, high = model.gsd_min_m, model.gsd_max_m
        if (low is not None and gsd < low) or (high is not None and gsd > high):
            return refuse(
                "gsd_out_of_range",
                f"ground sample distance {gsd:g} m is outside the model's range {model.describe_range()}",
                gsd_m=gsd,
            )
    resample = None if gsd is None or model.gsd_m is None else round(gsd / model.gsd_m, 4)
    where = f"asset {best.assets[0]!r}" if len(best.assets) == 1 else f"assets {list(best.assets)}"
    gsd_words = (
        "GSD not in the metadata (read at the raster's own resolution)" if gsd is None else f"GSD {gsd:g} m"
    )
    return SceneInputDecision(
        "accept",
        f"{where}: {best.how}; {gsd_words}",
        channels=best.channels,
        from_raster=best.from_raster,
        gsd_m=gsd,
        resample=resample,
        assets=best.assets,
    )

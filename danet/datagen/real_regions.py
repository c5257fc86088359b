"""Real imagery with real masks, split *spatially* into training regions and held-out regions.

The v1 benchmark spread crops of one scene over its splits; for DANet-lite v2 whole areas are kept out
of training instead, so the held-out numbers say how the model does on ground it has never seen:

- buildings: SpaceNet Atlanta (solaris ``sample_geotiff.tif``, 0.5 m, 43 instance masks). Training:
  columns 0-599; held out: the block of columns 600-899 (the right third of the tile).
- trees: NEON 0.1 m RGB tiles of deepforest with tree boxes (boxes as masks). Training: ``OSBS_029``
  and ``2019_YELL_2_541000_4977000_image_crop``; held out: the whole ``SOAP_061`` and
  ``2019_YELL_2_528000_4978000_image_crop2`` tiles.
- roads: SpaceNet ``road_mask_input.tif`` with its road raster (training only; no held-out goal).

`write_real_heldout` writes the held-out regions as a small benchmark (RRSIS-D layout + subsets.json)
that `danet eval` reads. Every expression is GENERATED ("all buildings", "all trees").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from danet.data.corpus import CorpusImage, ReferringCorpus, write_image
from danet.data.transforms import resize_pair
from danet.datagen.benchmark import (
    BENCHMARK_CATEGORIES,
    add_ref,
    add_sentences,
    require_empty_folder,
    write_layouts,
)
from danet.datagen.real import NEON_TILES, read_rgb_uint8, read_voc_boxes
from danet.packages import package_path

SPACENET_TRAIN_COLUMNS = slice(0, 600)
SPACENET_HELDOUT_COLUMNS = slice(600, 900)
NEON_TRAIN_TILES = (NEON_TILES[0], NEON_TILES[2])
NEON_HELDOUT_TILES = (NEON_TILES[1], NEON_TILES[3])
# Crop side relative to the output size: real crops are shown near their native scale (0.5 m SpaceNet at
# about 0.5 m, NEON 0.1 m zoomed out up to 2x), as the dispatcher reads them.
CROP_SCALES = {"buildings": (0.6, 1.4), "trees": (0.8, 2.0), "roads": (0.7, 1.5)}
HELDOUT_CROP = {"buildings": 256, "trees": 320}
HELDOUT_SUBSETS = {"buildings": "spacenet-buildings/all-heldout", "trees": "neon-trees/all-heldout"}


@dataclass(frozen=True)
class RealRegion:
    """An area of a real image with the mask of everything of one category in it."""

    name: str
    category: str  # "building", "tree" or "road"
    image: np.ndarray  # uint8 (H, W, 3)
    mask: np.ndarray  # bool (H, W)
    kind: str  # "buildings", "trees" or "roads"

    def crop(
        self, rng: np.random.Generator, size: int, *, scale: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random square crop (side ``size * scale``, within the region) resized to ``size``."""
        lo, hi = scale or CROP_SCALES[self.kind]
        height, width = self.mask.shape
        side = int(min(size * rng.uniform(lo, hi), height, width))
        y = int(rng.integers(0, height - side + 1))
        x = int(rng.integers(0, width - side + 1))
        window = (slice(y, y + side), slice(x, x + side))
        pixels, target = resize_pair(Image.fromarray(self.image[window]), self.mask[window], size)
        return np.asarray(pixels), target.astype(bool)


def spacenet_buildings() -> tuple[np.ndarray, np.ndarray]:
    """The SpaceNet Atlanta tile (RGB uint8, the stretch `danet predict` uses) and its building mask."""
    folder = package_path("solaris", "data")
    image = read_rgb_uint8(folder / "sample_geotiff.tif")
    with rasterio.open(folder / "sample_inst_mask.tif") as ds:
        mask = (ds.read() > 0).any(axis=0)
    return image, mask


def neon_trees(tile: str) -> tuple[np.ndarray, np.ndarray]:
    """A NEON tile and the union of its tree boxes as a mask."""
    folder = package_path("deepforest", "data")
    image = read_rgb_uint8(folder / tile)
    mask = np.zeros(image.shape[:2], dtype=bool)
    for xmin, ymin, xmax, ymax in read_voc_boxes(folder / Path(tile).with_suffix(".xml")):
        mask[ymin:ymax, xmin:xmax] = True
    return image, mask


def spacenet_roads() -> tuple[np.ndarray, np.ndarray]:
    """The SpaceNet road tile and its road raster mask."""
    folder = package_path("solaris", "data")
    image = read_rgb_uint8(folder / "road_mask_input.tif")
    with rasterio.open(folder / "sample_road_raster_mask.tif") as ds:
        mask = ds.read(1) > 0
    return image, mask


def training_regions() -> dict[str, list[RealRegion]]:
    """The real training regions by kind (nothing of the held-out regions)."""
    image, mask = spacenet_buildings()
    cols = SPACENET_TRAIN_COLUMNS
    regions = {
        "buildings": [
            RealRegion("spacenet-atlanta-train", "building", image[:, cols], mask[:, cols], "buildings")
        ],
        "trees": [RealRegion(Path(t).stem, "tree", *neon_trees(t), "trees") for t in NEON_TRAIN_TILES],
        "roads": [RealRegion("spacenet-roads", "road", *spacenet_roads(), "roads")],
    }
    return regions


def heldout_regions() -> dict[str, list[RealRegion]]:
    """The held-out real regions by kind (buildings and trees)."""
    image, mask = spacenet_buildings()
    cols = SPACENET_HELDOUT_COLUMNS
    return {
        "buildings": [
            RealRegion("spacenet-atlanta-heldout", "building", image[:, cols], mask[:, cols], "buildings")
        ],
        "trees": [RealRegion(Path(t).stem, "tree", *neon_trees(t), "trees") for t in NEON_HELDOUT_TILES],
    }


def heldout_crops(region: RealRegion) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Non-overlapping crops of ``HELDOUT_CROP[kind]`` px covering the region (the last row/column is
    shifted inwards to reach the edge), as (name, image, mask)."""
    side = HELDOUT_CROP[region.kind]
    height, width = region.mask.shape
    side = min(side, height, width)
    ys = sorted({*range(0, height - side + 1, side), height - side})
    xs = sorted({*range(0, width - side + 1, side), width - side})
    return [
        (
            f"{region.name}-y{y}-x{x}",
            region.image[y : y + side, x : x + side],
            region.mask[y : y + side, x : x + side],
        )
        for y, x in itertools.product(ys, xs)
    ]


def write_real_heldout(out_dir: Path) -> dict[str, int]:
    """Write the held-out regions' crops with "all buildings" / "all trees" as a test-split benchmark.

    Returns the number of sentences per subset. Crops without any target pixel are left out.
    """
    out_dir = require_empty_folder(out_dir, "output folder")
    corpus = ReferringCorpus(categories=dict(BENCHMARK_CATEGORIES))
    subsets: dict[int, tuple[str, ...]] = {}
    ids = itertools.count(1)
    counts: dict[str, int] = {}
    for kind, regions in heldout_regions().items():
        plural = {"buildings": "all buildings", "trees": "all trees"}[kind]
        for region in regions:
            for name, image, mask in heldout_crops(region):
                if not mask.any():
                    continue
                image_id = next(ids)
                write_image(out_dir, f"{name}.jpg", image)
                corpus.images.append(CorpusImage(image_id, f"{name}.jpg", image.shape[1], image.shape[0]))
                add_ref(corpus, subsets, image_id, image_id, region.category, mask.astype(np.uint8), "test")
                add_sentences(
                    corpus, subsets, [plural], [("real-heldout", HELDOUT_SUBSETS[kind])], [image_id]
                )
                counts[HELDOUT_SUBSETS[kind]] = counts.get(HELDOUT_SUBSETS[kind], 0) + 1
    write_layouts(corpus, subsets, out_dir)
    return counts

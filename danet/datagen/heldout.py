"""A second, independent scene renderer, used ONLY for held-out evaluation (never for training).

The training scenes (`danet.datagen.synthetic`) have one look: noise-textured grass/soil/desert with crop
rectangles, a straight-ish coast, straight roads, flat-coloured objects. A model can score well on
them by learning that look. This module draws the same *task* with different pixels, so a score here
says how well the model transfers to scenes from a renderer it has never seen:

- grounds ("biomes"): Voronoi patchwork fields with hedgerows, a city street grid with blocks, lawns
  and parking lots, sand dunes with rock outcrops, snow with conifers and tracks, an airfield apron
  with a runway; water as a lake, a river or a harbour quay, dark navy/teal/olive with a foam line;
- objects, each its own drawing: airliners with swept wings, engines and a tail plane, or delta jets;
  storage tanks with a rim ring and a fixed (lit dome) or floating (shaded) roof; ships with a
  pointed bow, a stern superstructure and container/tanker/bulk/yacht decks, with wakes; cars, vans
  and trucks with windows; rectangular, L- and U-shaped buildings with gable, hip or flat roofs;
- shadows cast away from a random sun, then a random sensor: white balance, gamma, haze, blur, noise.

Object sizes (longest side as a fraction of the image side) follow `SIZE_FRACTIONS`. Every scene has
a focus category with 1-3 objects that differ in size and position, plus 1-4 objects of other
categories; ships lie wholly on water, the rest wholly on land; masks never overlap and are exactly
each object's drawn body (shadows and wakes are outside).

Referring expressions are the structured ones of `danet.datagen.expressions` (same meaning and the same
unambiguity check as the training data). Each ref gets two sentences: the canonical `render` and a
paraphrase from this module's own phrasing (`paraphrase`), with other sentence shapes and words
("the aircraft located in the top-left corner", "which vessel is the biggest one", "every car shown
in the right half", "the only tank in the image"). The paraphrases are GENERATED from templates too.

`write_heldout_dataset` writes a benchmark in the layout `danet.datagen.benchmark` writes (RRSIS-D +
JSONL + subsets.json + DATASET.md), every ref in split "test".

No drawing code comes from the training renderer (`danet.datagen.synthetic`, `objects`, `terrain`):
the tests check this module never imports them. From `danet.datagen.benchmark` it takes only the
subset and card helpers, so both benchmarks are read the same way.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tqdm import tqdm

from danet.data.corpus import (
    CorpusImage,
    ReferringCorpus,
    write_image,
)
from danet.datagen.benchmark import (
    CARD_FILE,
    BuiltBenchmark,
    add_ref,
    add_sentences,
    count_table,
    require_empty_folder,
    subset_counts,
    write_layouts,
)
from danet.datagen.expressions import (
    CATEGORIES,
    Expression,
    ObjectFacts,
    parse,
    render,
    render_variants,
    unambiguous_expressions,
)

# The same ids as the training data, so per-category tooling reads both alike.
CATEGORY_IDS = {name: i + 1 for i, name in enumerate(CATEGORIES)}
# Longest side of an object as a fraction of the image side (min, max); a pixel floor for small images.
SIZE_FRACTIONS = {
    "vehicle": (0.03, 0.07),
    "storage tank": (0.05, 0.14),
    "building": (0.06, 0.18),
    "ship": (0.09, 0.26),
    "airplane": (0.11, 0.30),
}
MIN_LENGTH_PX = {"vehicle": 5.0, "storage tank": 5.0, "building": 7.0, "ship": 9.0, "airplane": 10.0}
BIOMES = ("patchwork", "city", "desert", "snow", "airfield")
SUBSETS = ("heldout", "heldout-paraphrased", "heldout-distractor", "heldout-paraphrased-distractor")
SPLIT = "test"

# A spawn key of its own: a held-out scene never shares a random stream with a training scene.
_STREAM = 0x48454C44  # "HELD"
_SCENE_ATTEMPTS = 25
_PLACEMENT_TRIES = 70
_GAP_PX = 2
_PLURAL_PROBABILITY = 0.2

RGB = tuple[float, float, float]


# --- scene data -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldoutObject:
    """A drawn object: category, exact body mask, and pose (centre x, y and length in px, heading)."""

    category: str
    mask: np.ndarray
    x: float
    y: float
    length: float
    angle: float


@dataclass(frozen=True, slots=True)
class HeldoutRef:
    """One referred target: its object indices, structured expression, both sentences and the mask."""

    objects: tuple[int, ...]
    expression: Expression
    canonical: str
    paraphrase: str
    mask: np.ndarray

    @property
    def sentences(self) -> tuple[str, str]:
        """(canonical, paraphrase)."""
        return (self.canonical, self.paraphrase)


@dataclass(frozen=True, slots=True)
class HeldoutScene:
    """A held-out scene: RGB uint8 image, objects, refs, and what was drawn (biome, focus, water)."""

    image: np.ndarray
    objects: tuple[HeldoutObject, ...]
    refs: tuple[HeldoutRef, ...]
    biome: str
    focus: str
    water: np.ndarray

    def has_distractor(self, ref: HeldoutRef) -> bool:
        """Whether the image holds another object of the ref's class outside the ref's target."""
        return any(
            o.category == ref.expression.category and i not in ref.objects for i, o in enumerate(self.objects)
        )


def object_facts(objects: Sequence[HeldoutObject], size: int) -> list[ObjectFacts]:
    """Category, pixel area and normalized mask centroid of each object (what expressions talk about)."""
    facts = []
    for obj in objects:
        ys, xs = np.nonzero(obj.mask)
        facts.append(ObjectFacts(obj.category, len(xs), (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size))
    return facts


def render_heldout_scene(seed: int, index: int, size: int = 256) -> HeldoutScene:
    """Held-out scene `index` of `seed` at `size` x `size` px; the same arguments give the same scene."""
    if size < 64:
        raise ValueError(f"held-out scenes need size >= 64 px to fit their objects, got {size}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM, index)))
    for _ in range(_SCENE_ATTEMPTS):
        scene = _attempt(rng, size)
        if scene is not None:
            return scene
    raise RuntimeError(f"could not draw held-out scene {index} (seed {seed}) in {_SCENE_ATTEMPTS} attempts")


# --- raster helpers ---------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, size: int, cells: int, stretch: int = 1) -> np.ndarray:
    """Smooth zero-mean noise with features about size/cells wide (`stretch` elongates them along x)."""
    rows = max(2, min(cells, size))
    cols = max(2, min(size, rows // max(1, stretch)))
    grid = rng.standard_normal((rows, cols)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC))


def _fill(size: int, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Union of pixel-coordinate polygons as a bool mask (PIL rasterisation, boundary included)."""
    canvas = Image.new("1", (size, size))
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        draw.polygon([(float(x), float(y)) for x, y in polygon], fill=1)
    return np.asarray(canvas, dtype=bool)


def _blur(values: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a [0, 1] float (or bool) map, as float32."""
    image = Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by a (2 `pixels` + 1)-square, as two 1-D passes (much cheaper than a PIL MaxFilter)."""
    out = mask.copy()
    for k in range(1, pixels + 1):
        out[:, k:] |= mask[:, :-k]
        out[:, :-k] |= mask[:, k:]
    rows = out.copy()
    for k in range(1, pixels + 1):
        out[k:] |= rows[:-k]
        out[:-k] |= rows[k:]
    return out


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """`mask` moved by (dx, dy) px, with empty pixels shifted in (no wrap-around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _paint(
    image: np.ndarray, mask: np.ndarray, color: RGB | np.ndarray, grain: np.ndarray | None = None
) -> None:
    values = np.broadcast_to(np.asarray(color, np.float32), (int(mask.sum()), 3)).copy()
    if grain is not None:
        values += grain[mask][:, None]
    image[mask] = np.clip(values, 0, 1)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def _scaled(color: RGB, factor: float) -> RGB:
    return (color[0] * factor, color[1] * factor, color[2] * factor)


def _jitter(rng: np.random.Generator, color: RGB, amount: float = 0.04) -> RGB:
    r, g, b = np.clip(np.asarray(color) + rng.uniform(-amount, amount, 3), 0, 1)
    return (float(r), float(g), float(b))


# --- grounds ----------------------------------------------------------------------------------------

_FIELD_COLORS: tuple[RGB, ...] = (
    (0.80, 0.72, 0.24),  # canola in flower
    (0.34, 0.56, 0.20),  # young wheat
    (0.52, 0.37, 0.24),  # ploughed
    (0.79, 0.71, 0.50),  # stubble
    (0.22, 0.35, 0.17),  # maize
    (0.60, 0.44, 0.38),  # red earth
    (0.55, 0.60, 0.46),  # sage pasture
    (0.50, 0.42, 0.55),  # lavender
)
_HEDGE = (0.13, 0.21, 0.11)
_TRACK = (0.72, 0.64, 0.50)
_CITY_ASPHALT = (0.19, 0.20, 0.23)
_SIDEWALK = (0.74, 0.72, 0.68)
_BLOCKS: tuple[RGB, ...] = ((0.62, 0.60, 0.56), (0.36, 0.50, 0.29), (0.29, 0.29, 0.31), (0.56, 0.52, 0.45))
_SANDS: tuple[RGB, ...] = ((0.80, 0.58, 0.40), (0.86, 0.78, 0.61), (0.62, 0.55, 0.46))
_ROCK = (0.40, 0.33, 0.28)
_SNOW = (0.91, 0.93, 0.97)
_CONIFER = (0.13, 0.25, 0.16)
_DRY_GRASS = (0.63, 0.62, 0.42)
_APRON = (0.71, 0.71, 0.69)
_RUNWAY = (0.26, 0.26, 0.28)
_WATERS: tuple[RGB, ...] = ((0.04, 0.08, 0.14), (0.05, 0.15, 0.17), (0.15, 0.20, 0.15), (0.08, 0.11, 0.20))
_FOAM = (0.84, 0.87, 0.86)


@dataclass(slots=True)
class _Ground:
    """A background and its surfaces: water, paved traffic surfaces, and lanes vehicles may follow."""

    image: np.ndarray  # float32 [H, W, 3] in [0, 1]
    water: np.ndarray  # bool [H, W]
    paved: np.ndarray  # bool [H, W]: streets, tracks, runways (no buildings, tanks or airplanes)
    lanes: list[tuple[np.ndarray, float]]  # (flat pixel indices of a street, its heading) for vehicles
    grid_angle: float | None = None  # street grid orientation: city buildings are aligned to it
    flow_angle: float | None = None  # river direction: ships there mostly follow it


def _render_ground(
    rng: np.random.Generator, size: int, biome: str, water: bool, to_sun: np.ndarray
) -> _Ground:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    builders: dict[str, Callable[[np.random.Generator, int, np.ndarray, np.ndarray, np.ndarray], _Ground]] = {
        "patchwork": _patchwork,
        "city": _city,
        "desert": _desert,
        "snow": _snow,
        "airfield": _airfield,
    }
    ground = builders[biome](rng, size, xs, ys, to_sun)
    if water:
        _add_water(rng, ground, biome, xs, ys)
    return ground


def _empty_ground(image: np.ndarray) -> _Ground:
    size = image.shape[0]
    return _Ground(image, np.zeros((size, size), bool), np.zeros((size, size), bool), [])


def _patchwork(
    rng: np.random.Generator, size: int, xs: np.ndarray, ys: np.ndarray, _sun: np.ndarray
) -> _Ground:
    """Voronoi fields (warped edges) with row textures, dark hedgerows and the odd farm track."""
    count = int(rng.integers(6, 16))
    seeds = rng.uniform(-0.1, 1.1, size=(count, 2)) * size
    warp = size * 0.025
    wx, wy = xs + warp * _noise(rng, size, 6), ys + warp * _noise(rng, size, 6)
    dist = np.hypot(wx[None] - seeds[:, 0, None, None], wy[None] - seeds[:, 1, None, None])
    order = np.argsort(dist, axis=0)[:2]
    label = order[0]
    nearest = np.take_along_axis(dist, order[:1], 0)[0]
    second = np.take_along_axis(dist, order[1:2], 0)[0]
    grain = 0.05 * _noise(rng, size, 48) + 0.03 * _noise(rng, size, 128)
    image = np.empty((size, size, 3), np.float32)
    for i in range(count):
        cell = label == i
        if not cell.any():
            continue
        color = _jitter(rng, _FIELD_COLORS[rng.integers(len(_FIELD_COLORS))], 0.05)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(2.5, 6.0) * size / 256
        rows = rng.uniform(0.0, 0.05) * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period)
        _paint(image, cell, color, grain + rows)
    edge = (second - nearest) < rng.uniform(1.0, 2.2) * size / 256
    hedge = edge & (_noise(rng, size, 10) > -0.6)
    _paint(image, hedge, _HEDGE, 0.05 * _noise(rng, size, 96))
    ground = _empty_ground(image)
    if rng.random() < 0.6:
        _add_track(rng, ground, xs, ys, _TRACK, width=rng.uniform(2.5, 4.0) * size / 256)
    return ground


def _add_track(
    rng: np.random.Generator, ground: _Ground, xs: np.ndarray, ys: np.ndarray, color: RGB, width: float
) -> None:
    """A gently curving unpaved track across the image (a lane vehicles may drive on)."""
    size = xs.shape[0]
    angle = rng.uniform(0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    point = rng.uniform(0.25, 0.75, 2) * size
    across = (xs - point[0]) * -direction[1] + (ys - point[1]) * direction[0]
    along = (xs - point[0]) * direction[0] + (ys - point[1]) * direction[1]
    bend = rng.uniform(-0.25, 0.25) * size * np.sin(along / size * rng.uniform(1.5, 3.5) + rng.uniform(0, 6))
    mask = np.abs(across - bend) < width / 2
    _paint(ground.image, mask, color, 0.04 * _noise(rng, size, 64))
    ground.paved |= mask
    ground.lanes.append((np.flatnonzero(mask), float(angle)))


def _city(rng: np.random.Generator, size: int, xs: np.ndarray, ys: np.ndarray, _sun: np.ndarray) -> _Ground:
    """A rotated street grid: asphalt streets with centre dashes, sidewalks, blocks of several kinds."""
    theta = rng.uniform(0, np.pi / 2) if rng.random() < 0.6 else rng.choice([0.0, np.pi / 2])
    u = xs * np.cos(theta) + ys * np.sin(theta)
    v = -xs * np.sin(theta) + ys * np.cos(theta)
    block = rng.uniform(0.2, 0.34, 2) * size
    width = max(4.0, rng.uniform(0.025, 0.04) * size)
    walk = max(1.0, width * 0.25)
    ou, ov = rng.uniform(0, block[0]), rng.uniform(0, block[1])
    pu, pv = (u + ou) % block[0], (v + ov) % block[1]
    street_u, street_v = pu < width, pv < width
    near_u = (pu < width + walk) | (pu > block[0] - walk)
    near_v = (pv < width + walk) | (pv > block[1] - walk)
    ids = np.floor((u + ou) / block[0]) * 1000 + np.floor((v + ov) / block[1])
    image = np.empty((size, size, 3), np.float32)
    grain = 0.04 * _noise(rng, size, 64) + 0.025 * _noise(rng, size, 160)
    for block_id in np.unique(ids):
        cell = ids == block_id
        kind = int(rng.choice(len(_BLOCKS), p=[0.35, 0.25, 0.2, 0.2]))
        _paint(image, cell, _jitter(rng, _BLOCKS[kind], 0.03), grain)
        if kind == 2:  # parking lot: pale stall lines across the block
            stalls = cell & ((pu % rng.uniform(4, 6)) < 0.8) & ((pv % block[1]) > block[1] * 0.45)
            _paint(image, stalls, (0.78, 0.78, 0.74))
    _paint(image, (near_u | near_v) & ~(street_u | street_v), _SIDEWALK, grain * 0.5)
    streets = street_u | street_v
    _paint(image, streets, _CITY_ASPHALT, grain * 0.6)
    dash_u = street_u & ~street_v & (np.abs(pu - width / 2) < 0.5) & ((v % 12) < 6)
    dash_v = street_v & ~street_u & (np.abs(pv - width / 2) < 0.5) & ((u % 12) < 6)
    _paint(image, dash_u | dash_v, (0.86, 0.80, 0.45))
    ground = _empty_ground(image)
    ground.paved |= streets
    ground.grid_angle = float(theta)
    # Streets of constant u run along v, i.e. along heading theta + 90 degrees, and vice versa.
    ground.lanes += [(np.flatnonzero(street_u & ~street_v), float(theta + np.pi / 2))]
    ground.lanes += [(np.flatnonzero(street_v & ~street_u), float(theta))]
    return ground


def _desert(rng: np.random.Generator, size: int, xs: np.ndarray, ys: np.ndarray, _sun: np.ndarray) -> _Ground:
    """Sand with wind ripples and dunes, dark rock outcrops and scattered stones."""
    base = _jitter(rng, _SANDS[rng.integers(len(_SANDS))], 0.03)
    angle = rng.uniform(0, np.pi)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    warp = 6.0 * _noise(rng, size, 5)
    ripples = 0.025 * np.sin(2 * np.pi * (along + 1.5 * warp) / (rng.uniform(5, 9) * size / 256))
    dunes = 0.07 * np.sin(2 * np.pi * (along + 10 * warp) / (rng.uniform(40, 90) * size / 256))
    image = np.empty((size, size, 3), np.float32)
    _paint(image, np.ones((size, size), bool), base, ripples + dunes + 0.03 * _noise(rng, size, 24))
    rock = _noise(rng, size, 7) + 0.35 * _noise(rng, size, 30) > rng.uniform(1.0, 1.6)
    _paint(image, rock, _jitter(rng, _ROCK, 0.04), 0.06 * _noise(rng, size, 90))
    stones = _noise(rng, size, 200) > 2.1
    _paint(image, stones, _scaled(base, 0.6))
    ground = _empty_ground(image)
    if rng.random() < 0.4:
        _add_track(rng, ground, xs, ys, _scaled(base, 1.1), width=rng.uniform(2.5, 4.0) * size / 256)
    return ground


def _snow(rng: np.random.Generator, size: int, xs: np.ndarray, ys: np.ndarray, to_sun: np.ndarray) -> _Ground:
    """Snow with blue-grey drift streaks, conifers with long shadows, and a ploughed track."""
    streaks = _noise(rng, size, 40, stretch=8)
    if rng.random() < 0.5:
        streaks = streaks.T
    image = np.empty((size, size, 3), np.float32)
    shade = 0.04 * _noise(rng, size, 4) + 0.025 * streaks
    _paint(image, np.ones((size, size), bool), _SNOW, shade)
    image *= np.array([1.0, 1.0, 1.02], np.float32) - 0.05 * np.clip(-_noise(rng, size, 6), 0, 2)[..., None]
    ground = _empty_ground(np.clip(image, 0, 1))
    if rng.random() < 0.7:
        _add_track(rng, ground, xs, ys, (0.62, 0.62, 0.64), width=rng.uniform(3.0, 5.0) * size / 256)
    # Conifers: small dark crowns in clumps (where a coarse noise field is high).
    clumps = _noise(rng, size, 6)
    points = rng.uniform(0, size - 1, (int(rng.uniform(40, 400) * (size / 256) ** 2), 2))
    points = points[clumps[points[:, 1].astype(int), points[:, 0].astype(int)] > rng.uniform(-0.3, 0.8)]
    canvas = Image.new("1", (size, size))
    draw = ImageDraw.Draw(canvas)
    for x, y in points:
        r = rng.uniform(1.0, 2.2) * size / 256
        draw.ellipse([x - r, y - r, x + r, y + r], fill=1)
    trees = np.asarray(canvas, dtype=bool) & ~ground.paved
    # Conifers read as trees by their long shadows, cast away from the scene's sun.
    reach = -to_sun * 2.5 * size / 256
    _paint(ground.image, _shift(trees, round(reach[0]), round(reach[1])) & ~trees, (0.62, 0.66, 0.74))
    _paint(ground.image, trees, _CONIFER, 0.04 * _noise(rng, size, 200))
    return ground


def _airfield(
    rng: np.random.Generator, size: int, xs: np.ndarray, ys: np.ndarray, _sun: np.ndarray
) -> _Ground:
    """Dry grass, a concrete apron with joint lines and yellow taxi lines, and a runway."""
    image = np.empty((size, size, 3), np.float32)
    _paint(image, np.ones((size, size), bool), _jitter(rng, _DRY_GRASS, 0.04), 0.04 * _noise(rng, size, 30))
    theta = rng.uniform(0, np.pi)
    u = xs * np.cos(theta) + ys * np.sin(theta)
    v = -xs * np.sin(theta) + ys * np.cos(theta)
    center = rng.uniform(0.35, 0.65, 2) * size
    cu = center[0] * np.cos(theta) + center[1] * np.sin(theta)
    cv = -center[0] * np.sin(theta) + center[1] * np.cos(theta)
    half = rng.uniform(0.3, 0.45, 2) * size
    apron = (np.abs(u - cu) < half[0]) & (np.abs(v - cv) < half[1])
    joint = rng.uniform(10, 16) * size / 256
    joints = ((u % joint) < 0.7) | ((v % joint) < 0.7)
    _paint(image, apron, _jitter(rng, _APRON, 0.03), 0.025 * _noise(rng, size, 50) - 0.04 * joints)
    taxi = apron & (np.abs(((v - cv) % (half[1] * 0.7)) - 1) < 0.6)
    _paint(image, taxi, (0.86, 0.72, 0.18))
    runway_v = cv + rng.choice([-1, 1]) * (half[1] + rng.uniform(0.06, 0.12) * size)
    runway = np.abs(v - runway_v) < rng.uniform(0.05, 0.08) * size
    _paint(image, runway, _RUNWAY, 0.02 * _noise(rng, size, 80))
    centreline = runway & (np.abs(v - runway_v) < 0.6) & ((u % 20) < 10)
    _paint(image, centreline, (0.92, 0.92, 0.9))
    ground = _empty_ground(image)
    ground.paved |= runway
    ground.grid_angle = float(theta)
    return ground


def _add_water(rng: np.random.Generator, ground: _Ground, biome: str, xs: np.ndarray, ys: np.ndarray) -> None:
    """A lake, a river or (in the city) a harbour quay: 30-55 % of the image under dark water."""
    size = xs.shape[0]
    kind = "harbour" if biome == "city" else str(rng.choice(["lake", "river"]))
    if kind == "lake":
        corner = rng.uniform(-0.1, 1.1, 2) * size
        angle = np.arctan2(ys - corner[1], xs - corner[0])
        wobble = (
            1 + 0.12 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.05 * np.sin(7 * angle + rng.uniform(0, 6))
        )
        radius = np.hypot(xs - corner[0], ys - corner[1]) / wobble + 0.04 * size * _noise(rng, size, 8)
        water = radius < np.quantile(radius, rng.uniform(0.32, 0.55))
    elif kind == "river":
        flow = rng.uniform(0, np.pi)
        d = np.array([np.cos(flow), np.sin(flow)])
        across = (xs - size / 2) * -d[1] + (ys - size / 2) * d[0]
        along = (xs - size / 2) * d[0] + (ys - size / 2) * d[1]
        meander = rng.uniform(0.04, 0.1) * size * np.sin(along / size * rng.uniform(2, 4) + rng.uniform(0, 6))
        offset = rng.uniform(-0.15, 0.15) * size
        water = np.abs(across - meander - offset) < rng.uniform(0.2, 0.27) * size
        ground.flow_angle = float(flow)
    else:
        normal = (ground.grid_angle or 0.0) + rng.integers(4) * np.pi / 2
        side = (xs - size / 2) * np.cos(normal) + (ys - size / 2) * np.sin(normal)
        water = side > np.quantile(side, 1 - rng.uniform(0.35, 0.5))
    depth = _blur(water, 6 * size / 256)
    color = _jitter(rng, _WATERS[rng.integers(len(_WATERS))], 0.015)
    ripples = 0.012 * _noise(rng, size, 120) + 0.01 * _noise(rng, size, 30)
    _paint(ground.image, water, color, ripples - 0.05 * (depth - 0.5))
    shore = _dilate(water, max(1, round(size / 128))) & ~water
    if kind == "harbour":
        _paint(ground.image, shore, (0.45, 0.44, 0.42))  # quay wall
    else:
        beach = _dilate(water, max(2, round(3 * size / 256))) & ~water
        land = (0.85, 0.86, 0.9) if biome == "snow" else (0.74, 0.68, 0.55)
        _paint(ground.image, beach & ~shore, land, 0.03 * _noise(rng, size, 60))
    foam = water & _dilate(~water, 1)
    ground.image[foam] = 0.5 * ground.image[foam] + 0.5 * np.asarray(_FOAM, np.float32)
    ground.water = water
    ground.paved &= ~water
    ground.lanes = [(idx[~water.reshape(-1)[idx]], heading) for idx, heading in ground.lanes]


# --- objects ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layer:
    """A detail painted over the body and clipped to it (local units: length 1, heading along +u).

    `facing` is the outward normal of a sloped roof face (lit when it faces the sun); `dome` is the
    strength of a light gradient across the layer towards the sun (positive: a lit dome; negative: a
    roof shaded by its own rim).
    """

    polygons: tuple[np.ndarray, ...]
    color: RGB
    facing: tuple[float, float] | None = None
    dome: float = 0.0


@dataclass(frozen=True, slots=True)
class _Design:
    """How to draw one object: body polygons (their union is the mask), detail layers, shadow height."""

    category: str
    body: tuple[np.ndarray, ...]
    color: RGB
    layers: tuple[_Layer, ...]
    height: float
    wake: float = 0.0  # wake length behind a ship, in lengths (0: moored)

    @property
    def extent(self) -> float:
        """Radius of the body around its centre, in lengths."""
        return float(max(np.linalg.norm(p, axis=1).max() for p in self.body))


def _to_pixels(local: np.ndarray, x: float, y: float, length: float, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.stack(
        [x + length * (local[:, 0] * c - local[:, 1] * s), y + length * (local[:, 0] * s + local[:, 1] * c)],
        axis=1,
    )


def _rect(u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=np.float64)


def _ellipse(cu: float, cv: float, ru: float, rv: float, vertices: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    return np.stack([cu + ru * np.cos(t), cv + rv * np.sin(t)], axis=1)


def _rounded(u0: float, u1: float, v0: float, v1: float, r: float) -> np.ndarray:
    """A rectangle with rounded corners of radius `r`."""
    points = []
    for cu, cv, start in (
        (u1 - r, v1 - r, 0.0),
        (u0 + r, v1 - r, 0.5),
        (u0 + r, v0 + r, 1.0),
        (u1 - r, v0 + r, 1.5),
    ):
        for t in np.linspace(start * np.pi, (start + 0.5) * np.pi, 4):
            points.append((cu + r * np.cos(t), cv + r * np.sin(t)))
    return np.array(points)


def _mirror(half: Sequence[tuple[float, float]]) -> np.ndarray:
    """A polygon symmetric about the u axis from its v >= 0 half, listed nose to tail, axis to axis."""
    upper = np.array(half, dtype=np.float64)
    return np.concatenate([upper, upper[-2:0:-1] * [1, -1]])


def _flip(polygon: np.ndarray) -> np.ndarray:
    return polygon * [1, -1]


_LIVERIES: tuple[RGB, ...] = ((0.75, 0.1, 0.12), (0.1, 0.25, 0.6), (0.05, 0.5, 0.45), (0.9, 0.55, 0.1))
_TANK_COLORS: tuple[RGB, ...] = ((0.9, 0.9, 0.88), (0.78, 0.78, 0.78), (0.84, 0.8, 0.7), (0.7, 0.78, 0.68))
_HULLS: tuple[RGB, ...] = ((0.12, 0.12, 0.14), (0.12, 0.16, 0.3), (0.45, 0.12, 0.1), (0.88, 0.88, 0.86))
_DECKS: tuple[RGB, ...] = ((0.45, 0.16, 0.13), (0.2, 0.34, 0.25), (0.5, 0.5, 0.5), (0.5, 0.36, 0.26))
_CONTAINERS: tuple[RGB, ...] = (
    (0.65, 0.2, 0.15),
    (0.15, 0.3, 0.6),
    (0.2, 0.5, 0.3),
    (0.85, 0.5, 0.15),
    (0.85, 0.85, 0.82),
    (0.55, 0.55, 0.58),
)
_CARS: tuple[RGB, ...] = (
    (0.92, 0.92, 0.92),
    (0.7, 0.72, 0.74),
    (0.1, 0.1, 0.11),
    (0.72, 0.1, 0.08),
    (0.12, 0.22, 0.55),
    (0.88, 0.72, 0.12),
    (0.15, 0.4, 0.25),
)
_GLASS = (0.1, 0.12, 0.16)
_PITCHED_ROOFS: tuple[RGB, ...] = (
    (0.66, 0.3, 0.2),
    (0.28, 0.3, 0.33),
    (0.45, 0.32, 0.25),
    (0.38, 0.45, 0.4),
    (0.55, 0.2, 0.18),
    (0.45, 0.52, 0.58),
)
_FLAT_ROOFS: tuple[RGB, ...] = ((0.75, 0.74, 0.7), (0.88, 0.88, 0.86), (0.4, 0.4, 0.42), (0.7, 0.64, 0.52))


def _design(category: str, rng: np.random.Generator) -> _Design:
    builders = {
        "airplane": _airplane,
        "storage tank": _tank,
        "ship": _ship,
        "vehicle": _vehicle,
        "building": _building,
    }
    return builders[category](rng)


def _airplane(rng: np.random.Generator) -> _Design:
    """An airliner (swept wings, engines ahead of the wing, tail plane) or, sometimes, a delta jet."""
    if rng.random() < 0.3:
        span = rng.uniform(0.28, 0.36)
        outline = _mirror(
            [(0.5, 0), (0.4, 0.028), (0.15, 0.045), (-0.28, span), (-0.36, span), (-0.36, 0.07),
             (-0.42, 0.07), (-0.47, 0.15), (-0.5, 0.15), (-0.5, 0)]
        )  # fmt: skip
        grey = rng.uniform(0.42, 0.6)
        color = (grey, grey * 1.02, grey * 1.08)
        layers = (
            _Layer((_ellipse(0.0, 0.0, 0.3, 0.035),), _scaled(color, 1.12), dome=0.2),
            _Layer((_ellipse(0.28, 0.0, 0.08, 0.022),), (0.14, 0.18, 0.22)),
            _Layer((_rect(-0.5, -0.45, -0.03, 0.03),), (0.2, 0.2, 0.22)),
        )
        return _Design("airplane", (outline,), color, layers, height=rng.uniform(0.04, 0.07))
    w = rng.uniform(0.04, 0.055)
    nose = [(0.5 - 0.1 * (1 - np.cos(t)), w * np.sin(t)) for t in np.linspace(0, np.pi / 2, 6)]
    fuselage = _mirror([*nose, (-0.3, w), (-0.46, 0.4 * w), (-0.5, 0.2 * w), (-0.5, 0.0)])
    span, sweep = rng.uniform(0.42, 0.52), rng.uniform(0.12, 0.26)
    le, root, tip = rng.uniform(0.08, 0.16), rng.uniform(0.18, 0.24), rng.uniform(0.05, 0.08)
    wing = np.array([(le, 0.5 * w), (le - sweep, span), (le - sweep - tip, span), (le - root, 0.5 * w)])
    t_span = rng.uniform(0.14, 0.2)
    tail = np.array([(-0.33, 0.5 * w), (-0.43, t_span), (-0.47, t_span), (-0.45, 0.3 * w)])
    engines = []
    for f in (0.36,) if rng.random() < 0.7 else (0.3, 0.62):
        cu, cv = le - sweep * f + 0.025, span * f
        engines += [_ellipse(cu, cv, 0.05, 0.022, 14), _ellipse(cu, -cv, 0.05, 0.022, 14)]
    white = rng.uniform(0.86, 0.96)
    wing_color = _scaled((white, white, white * 1.01), rng.uniform(0.78, 0.88))
    layers = [
        _Layer((fuselage,), (white, white, white), dome=0.12),
        _Layer(tuple(engines), (0.52, 0.53, 0.55)),
        _Layer((np.array([(0.47, 0.5 * w), (0.44, 0.7 * w), (0.44, -0.7 * w), (0.47, -0.5 * w)]),), _GLASS),
    ]
    if rng.random() < 0.7:
        livery = _LIVERIES[rng.integers(len(_LIVERIES))]
        layers.append(_Layer((_rect(-0.5, -0.33, -0.2 * w, 0.2 * w),), livery))
    body = (fuselage, wing, _flip(wing), tail, _flip(tail), *engines)
    return _Design("airplane", body, wing_color, tuple(layers), height=rng.uniform(0.05, 0.09))


def _tank(rng: np.random.Generator) -> _Design:
    """A cylinder from above: rim ring, then a lit domed roof or a dark floating roof shaded by the rim."""
    color = _jitter(rng, _TANK_COLORS[rng.integers(len(_TANK_COLORS))], 0.03)
    rim = _Layer((_ellipse(0, 0, 0.5, 0.5, 40),), _scaled(color, 0.78))
    if rng.random() < 0.6:
        layers = (
            rim,
            _Layer((_ellipse(0, 0, 0.44, 0.44, 40),), color, dome=0.28),
            _Layer((_rect(0.0, 0.44, -0.02, 0.02),), _scaled(color, 0.7)),
            _Layer((_ellipse(0, 0, 0.06, 0.06, 12),), _scaled(color, 0.55)),
        )
    else:
        roof = _scaled((0.62, 0.62, 0.6), rng.uniform(0.75, 1.0))
        layers = (
            rim,
            _Layer((_ellipse(0, 0, 0.43, 0.43, 40),), roof, dome=-0.45),
            _Layer((_ellipse(0, 0, 0.3, 0.3, 32),), _scaled(roof, 1.06), dome=-0.2),
        )
    return _Design(
        "storage tank", (_ellipse(0, 0, 0.5, 0.5, 40),), color, layers, height=rng.uniform(0.3, 0.55)
    )


def _ship(rng: np.random.Generator) -> _Design:
    """A hull with a pointed bow and a stern superstructure; container, tanker, bulk or yacht deck."""
    kind = rng.choice(["container", "tanker", "bulk", "yacht"], p=[0.35, 0.3, 0.2, 0.15])
    b = rng.uniform(0.11, 0.15) if kind == "yacht" else rng.uniform(0.055, 0.085)
    bow = rng.uniform(0.12, 0.3)
    curve = [(bow + (0.5 - bow) * t, b * (1 - t**2)) for t in np.linspace(1, 0, 8)]
    hull = _mirror([*curve, (-0.47, b), (-0.5, 0.75 * b), (-0.5, 0.0)])
    deck_curve = [(bow + (0.45 - bow) * t, 0.78 * b * (1 - t**2)) for t in np.linspace(1, 0, 8)]
    deck = _mirror([*deck_curve, (-0.46, 0.78 * b), (-0.46, 0.0)])
    hull_color = _HULLS[rng.integers(len(_HULLS))]
    layers: list[_Layer] = []
    if kind == "yacht":
        layers += [
            _Layer((deck,), (0.9, 0.9, 0.88)),
            _Layer((_rect(-0.44, -0.2, -0.6 * b, 0.6 * b),), (0.62, 0.47, 0.32)),
            _Layer((_rounded(-0.15, 0.18, -0.62 * b, 0.62 * b, 0.25 * b),), (0.95, 0.95, 0.95), dome=0.15),
            _Layer((_rect(0.12, 0.17, -0.5 * b, 0.5 * b),), _GLASS),
        ]
        hull_color = (0.92, 0.92, 0.92)
    else:
        layers.append(_Layer((deck,), _jitter(rng, _DECKS[rng.integers(len(_DECKS))], 0.03)))
        if kind == "container":
            count = int(rng.integers(5, 9))
            edges = np.linspace(-0.27, bow, count + 1)
            for u0, u1 in itertools.pairwise(edges):
                color = _CONTAINERS[rng.integers(len(_CONTAINERS))]
                layers.append(_Layer((_rect(u0 + 0.006, u1 - 0.006, -0.7 * b, 0.7 * b),), color))
        elif kind == "tanker":
            layers.append(_Layer((_rect(-0.28, bow + 0.05, -0.07 * b, 0.07 * b),), (0.78, 0.78, 0.74)))
            for u in np.linspace(-0.22, bow, 4):
                layers.append(_Layer((_ellipse(u, 0.35 * b, 0.02, 0.02, 8),), (0.75, 0.74, 0.7)))
        else:
            count = int(rng.integers(5, 8))
            for u0, u1 in itertools.pairwise(np.linspace(-0.26, bow, count + 1)):
                layers.append(
                    _Layer((_rect(u0 + 0.015, u1 - 0.015, -0.55 * b, 0.55 * b),), (0.25, 0.3, 0.28))
                )
        layers += [
            _Layer((_rect(-0.45, -0.3, -0.85 * b, 0.85 * b),), (0.93, 0.92, 0.88), dome=0.1),
            _Layer((_rect(-0.33, -0.3, -0.95 * b, 0.95 * b),), (0.8, 0.8, 0.78)),
            _Layer((_rect(-0.43, -0.39, -0.22 * b, 0.22 * b),), _LIVERIES[rng.integers(len(_LIVERIES))]),
        ]
    wake = rng.uniform(0.4, 1.0) if rng.random() < 0.6 else 0.0
    return _Design("ship", (hull,), hull_color, tuple(layers), height=rng.uniform(0.04, 0.07), wake=wake)


def _vehicle(rng: np.random.Generator) -> _Design:
    """A car, van or truck from above: rounded body, glass, roof highlight."""
    color = _CARS[rng.integers(len(_CARS))]
    kind = rng.choice(["car", "van", "truck"], p=[0.7, 0.15, 0.15])
    hw = rng.uniform(0.2, 0.24)
    body = _rounded(-0.5, 0.5, -hw, hw, 0.1)
    if kind == "car":
        layers = (
            _Layer(
                (np.array([(0.12, 0.85 * hw), (0.26, 0.7 * hw), (0.26, -0.7 * hw), (0.12, -0.85 * hw)]),),
                _GLASS,
            ),
            _Layer((_rect(-0.36, -0.26, -0.78 * hw, 0.78 * hw),), _GLASS),
            _Layer((_rect(-0.26, 0.12, -0.75 * hw, 0.75 * hw),), _mix(color, (1, 1, 1), 0.12)),
        )
    elif kind == "van":
        layers = (
            _Layer((_rect(0.3, 0.4, -0.8 * hw, 0.8 * hw),), _GLASS),
            _Layer((_rect(-0.46, 0.3, -0.8 * hw, 0.8 * hw),), _mix(color, (1, 1, 1), 0.15)),
        )
    else:
        box = _CARS[rng.integers(len(_CARS))]
        layers = (
            _Layer((_rect(-0.5, 0.24, -hw, hw),), box),
            _Layer((_rect(0.24, 0.29, -hw, hw),), (0.15, 0.15, 0.16)),
            _Layer((_rect(0.4, 0.46, -0.8 * hw, 0.8 * hw),), _GLASS),
        )
    return _Design("vehicle", (body,), color, layers, height=rng.uniform(0.12, 0.2))


def _building(rng: np.random.Generator) -> _Design:
    """A rectangular, L- or U-shaped building with a gable, hip or flat roof (parapet, units, panels)."""
    shape = rng.choice(["rect", "L", "U"], p=[0.45, 0.3, 0.25])
    if shape == "rect":
        d = rng.uniform(0.2, 0.45)
        wings = [(_rect(-0.5, 0.5, -d, d), "u")]
    else:
        h = rng.uniform(0.6, 1.0) / 2
        arm = rng.uniform(0.22, 0.32)
        wings = [(_rect(-0.5, 0.5, -h, -h + arm), "u"), (_rect(-0.5, -0.5 + arm, -h, h), "v")]
        if shape == "U":
            wings.append((_rect(0.5 - arm, 0.5, -h, h), "v"))
    style = rng.choice(["gable", "hip", "flat"], p=[0.45, 0.25, 0.3]) if shape == "rect" else (
        rng.choice(["gable", "flat"], p=[0.55, 0.45])
    )  # fmt: skip
    layers: list[_Layer] = []
    if style == "flat":
        color = _jitter(rng, _FLAT_ROOFS[rng.integers(len(_FLAT_ROOFS))], 0.03)
        parapet, margin = _scaled(color, 0.72), 0.03
        inner = tuple(
            _rect(p[0, 0] + margin, p[1, 0] - margin, p[0, 1] + margin, p[2, 1] - margin) for p, _ in wings
        )
        layers.append(_Layer(inner, _mix(color, (1, 1, 1), 0.06)))
        first = wings[0][0]
        if rng.random() < 0.3:
            for u in np.arange(first[0, 0] + 0.06, first[1, 0] - 0.08, 0.07):
                layers.append(
                    _Layer((_rect(u, u + 0.05, first[0, 1] + 0.05, first[2, 1] - 0.05),), (0.12, 0.16, 0.3))
                )
        else:
            for _ in range(int(rng.integers(1, 4))):
                cu = rng.uniform(first[0, 0] + 0.1, first[1, 0] - 0.1)
                cv = rng.uniform(first[0, 1] + 0.08, first[2, 1] - 0.08)
                layers.append(_Layer((_rect(cu - 0.04, cu + 0.04, cv - 0.03, cv + 0.03),), (0.82, 0.82, 0.8)))
        return _Design("building", tuple(p for p, _ in wings), parapet, tuple(layers), rng.uniform(0.15, 0.4))
    color = _jitter(rng, _PITCHED_ROOFS[rng.integers(len(_PITCHED_ROOFS))], 0.03)
    ridge_color = _scaled(color, 0.62)
    if style == "hip":
        rect = wings[0][0]
        d = rect[2, 1]
        faces = (
            (np.array([(-0.5, d), (0.5, d), (0.5 - d, 0), (-0.5 + d, 0)]), (0.0, 1.0)),
            (np.array([(-0.5, -d), (0.5, -d), (0.5 - d, 0), (-0.5 + d, 0)]), (0.0, -1.0)),
            (np.array([(-0.5, -d), (-0.5, d), (-0.5 + d, 0)]), (-1.0, 0.0)),
            (np.array([(0.5, -d), (0.5, d), (0.5 - d, 0)]), (1.0, 0.0)),
        )
        layers += [_Layer((face,), color, facing=normal) for face, normal in faces]
        layers.append(_Layer((_rect(-0.5 + d, 0.5 - d, -0.012, 0.012),), ridge_color))
    else:
        for rect, axis in wings:
            (u0, v0), (u1, v1) = rect[0], rect[2]
            if axis == "u":
                mid = (v0 + v1) / 2
                layers += [
                    _Layer((_rect(u0, u1, v0, mid),), color, facing=(0.0, -1.0)),
                    _Layer((_rect(u0, u1, mid, v1),), color, facing=(0.0, 1.0)),
                    _Layer((_rect(u0, u1, mid - 0.012, mid + 0.012),), ridge_color),
                ]
            else:
                mid = (u0 + u1) / 2
                layers += [
                    _Layer((_rect(u0, mid, v0, v1),), color, facing=(-1.0, 0.0)),
                    _Layer((_rect(mid, u1, v0, v1),), color, facing=(1.0, 0.0)),
                    _Layer((_rect(mid - 0.012, mid + 0.012, v0, v1),), ridge_color),
                ]
    return _Design("building", tuple(p for p, _ in wings), color, tuple(layers), rng.uniform(0.15, 0.45))


@dataclass(frozen=True, slots=True)
class _Placed:
    design: _Design
    obj: HeldoutObject


def _focus_lengths(rng: np.random.Generator, category: str, count: int, size: int) -> list[float]:
    """Lengths of the focus group: usually one object clearly smaller or larger than the others."""
    if count >= 2 and rng.random() < 0.75:
        if rng.random() < 0.5:
            positions = [rng.uniform(0.0, 0.12), *rng.uniform(0.55, 1.0, count - 1)]
        else:
            positions = [rng.uniform(0.88, 1.0), *rng.uniform(0.0, 0.45, count - 1)]
    else:
        positions = list(rng.uniform(0.0, 1.0, count))
    return [_length(u, category, size) for u in positions]


def _length(u: float, category: str, size: int) -> float:
    lo, hi = SIZE_FRACTIONS[category]
    return max(MIN_LENGTH_PX[category], size * lo * (hi / lo) ** u)


def _place(
    rng: np.random.Generator,
    category: str,
    length: float,
    ground: _Ground,
    placed: list[_Placed],
    blocked: np.ndarray,
) -> np.ndarray:
    """Place one object by rejection sampling (exact masks, a gap to the others); return `blocked`."""
    size = ground.image.shape[0]
    design = _design(category, rng)
    radius = length * design.extent
    if 2 * radius + 2 >= size:
        return blocked
    lanes = [(idx, h) for idx, h in ground.lanes if len(idx)] if category == "vehicle" else []
    for attempt in range(_PLACEMENT_TRIES):
        if lanes and attempt < _PLACEMENT_TRIES // 2 and rng.random() < 0.7:
            indices, heading = lanes[rng.integers(len(lanes))]
            flat = indices[rng.integers(len(indices))]
            y, x = divmod(int(flat), size)
            x, y = x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5)
            angle = heading + np.pi * rng.integers(2)
        else:
            x, y = rng.uniform(radius + 1, size - radius - 1, 2)
            angle = rng.uniform(0, 2 * np.pi)
            if category == "building" and ground.grid_angle is not None:
                angle = ground.grid_angle + rng.integers(4) * np.pi / 2 + rng.normal(0, 0.03)
            elif category == "ship" and ground.flow_angle is not None and rng.random() < 0.8:
                angle = ground.flow_angle + np.pi * rng.integers(2) + rng.normal(0, 0.15)
        if not (radius + 1 <= x <= size - radius - 1 and radius + 1 <= y <= size - radius - 1):
            continue
        mask = _fill(size, [_to_pixels(p, x, y, length, angle) for p in design.body])
        if mask.sum() < 6 or (mask & blocked).any():
            continue
        if category == "ship":
            fits = bool(ground.water[mask].all())
        else:
            fits = not ground.water[mask].any()
            if category != "vehicle":
                fits = fits and not ground.paved[mask].any()
        if fits:
            placed.append(
                _Placed(design, HeldoutObject(category, mask, float(x), float(y), length, float(angle)))
            )
            return blocked | _dilate(mask, _GAP_PX)
    return blocked


def _draw(
    rng: np.random.Generator,
    image: np.ndarray,
    placed: Sequence[_Placed],
    water: np.ndarray,
    to_sun: np.ndarray,
) -> None:
    """Wakes and shadows first (never on an object), then every body with its layers."""
    size = image.shape[0]
    occupied = np.zeros((size, size), bool)
    for p in placed:
        occupied |= p.obj.mask
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    darkness = rng.uniform(0.42, 0.62)
    shadow_tint = np.array([darkness, darkness * 1.02, darkness * 1.12], np.float32)
    for p in placed:
        o, d = p.obj, p.design
        if d.wake > 0:
            _paint_wake(image, o, d, water & ~occupied, xs, ys)
        offset = -to_sun * d.height * o.length
        steps = max(1, int(np.ceil(np.abs(offset).max())))
        shadow = np.zeros_like(occupied)
        for t in np.linspace(0, 1, steps + 1)[1:]:
            shadow |= _shift(o.mask, round(offset[0] * t), round(offset[1] * t))
        shadow &= ~occupied
        image[shadow] *= shadow_tint
    for p in placed:
        o, d = p.obj, p.design
        count = int(o.mask.sum())
        image[o.mask] = np.clip(np.asarray(d.color, np.float32) + rng.normal(0, 0.012, (count, 3)), 0, 1)
        sun_local = np.array(
            [to_sun[0] * np.cos(o.angle) + to_sun[1] * np.sin(o.angle),
             -to_sun[0] * np.sin(o.angle) + to_sun[1] * np.cos(o.angle)]
        )  # fmt: skip
        for layer in d.layers:
            region = (
                _fill(size, [_to_pixels(q, o.x, o.y, o.length, o.angle) for q in layer.polygons]) & o.mask
            )
            if not region.any():
                continue
            color = np.asarray(layer.color, np.float32)
            if layer.facing is not None:
                color = color * (1 + 0.22 * float(np.dot(layer.facing, sun_local)))
            if layer.dome:
                lu, lv = _local(o, xs[region], ys[region])
                light = (lu * sun_local[0] + lv * sun_local[1]) / max(d.extent, 1e-6)
                image[region] = np.clip(color[None] * (1 + layer.dome * light[:, None]), 0, 1)
            else:
                image[region] = np.clip(color, 0, 1)


def _local(obj: HeldoutObject, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in the object's local units (u along its heading, v across)."""
    du, dv = xs - obj.x, ys - obj.y
    c, s = np.cos(obj.angle), np.sin(obj.angle)
    return (du * c + dv * s) / obj.length, (-du * s + dv * c) / obj.length


def _paint_wake(
    image: np.ndarray,
    obj: HeldoutObject,
    design: _Design,
    allowed: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
) -> None:
    """A fading V of foam behind the stern: bright outer arms and a turbulent trail on the centre line."""
    beam = float(np.abs(np.concatenate(design.body)[:, 1]).max())
    lu, lv = _local(obj, xs, ys)
    behind = -0.5 - lu
    spread = beam + 0.3 * np.maximum(behind, 0)
    inside = (behind > 0) & (behind < design.wake) & (np.abs(lv) < spread) & allowed
    fade = 1 - behind[inside] / design.wake
    arms = (np.abs(lv[inside]) / spread[inside]) ** 6
    trail = np.exp(-((lv[inside] / (0.8 * beam)) ** 2))
    alpha = np.clip(fade * (0.45 * arms + 0.35 * trail), 0, 0.6)[:, None]
    image[inside] = (1 - alpha) * image[inside] + alpha * np.asarray(_FOAM, np.float32)


def _sensor(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A random sensor: white balance, gamma, haze, blur and noise; returns uint8 pixels."""
    size = image.shape[0]
    out = np.clip(image * rng.uniform(0.93, 1.07, 3).astype(np.float32), 0, 1) ** rng.uniform(0.88, 1.12)
    haze = rng.uniform(0.0, 0.12)
    out = (1 - haze) * out + haze * np.array([0.76, 0.79, 0.83], np.float32)
    pixels = Image.fromarray(np.round(np.clip(out, 0, 1) * 255).astype(np.uint8))
    pixels = pixels.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.85) * size / 256))
    noisy = np.asarray(pixels, np.float32) + rng.normal(0, rng.uniform(1.5, 4.5), (size, size, 3))
    return np.round(np.clip(noisy, 0, 255)).astype(np.uint8)


_BIOME_WEIGHTS = {
    "airplane": (0.15, 0.1, 0.15, 0.1, 0.5),
    "storage tank": (0.3, 0.15, 0.3, 0.15, 0.1),
    "ship": (0.3, 0.3, 0.15, 0.2, 0.05),
    "vehicle": (0.2, 0.4, 0.15, 0.2, 0.05),
    "building": (0.25, 0.35, 0.15, 0.2, 0.05),
}


def _attempt(rng: np.random.Generator, size: int) -> HeldoutScene | None:
    focus = CATEGORIES[rng.integers(len(CATEGORIES))]
    biome = BIOMES[rng.choice(len(BIOMES), p=_BIOME_WEIGHTS[focus])]
    if focus == "ship" and biome == "airfield":
        biome = "patchwork"  # an airfield has no water to float a ship on
    water = focus == "ship" or (biome != "airfield" and rng.random() < 0.4)
    sun = rng.uniform(0, 2 * np.pi)
    to_sun = np.array([np.cos(sun), np.sin(sun)])
    ground = _render_ground(rng, size, biome, water, to_sun)
    placed: list[_Placed] = []
    blocked = np.zeros((size, size), bool)
    for length in _focus_lengths(rng, focus, int(rng.integers(1, 4)), size):
        blocked = _place(rng, focus, length, ground, placed, blocked)
    if not placed:
        return None
    others = [c for c in CATEGORIES if c != focus and (water or c != "ship")]
    for _ in range(int(rng.integers(1, 5))):
        category = others[rng.integers(len(others))]
        blocked = _place(rng, category, _length(rng.random(), category, size), ground, placed, blocked)
    objects = [p.obj for p in placed]
    facts = object_facts(objects, size)
    chosen = _choose(rng, unambiguous_expressions(facts), facts, focus)
    if chosen is None:
        return None
    target, expression = chosen
    indices = tuple(sorted(target))
    mask = np.zeros((size, size), bool)
    for i in indices:
        mask |= objects[i].mask
    canonical = render(expression, int(rng.integers(render_variants(expression))))
    same_class = sum(o.category == expression.category for o in objects)
    text = paraphrase(expression, rng, members=len(indices), same_class=same_class)
    ref = HeldoutRef(indices, expression, canonical, text, mask)
    image = ground.image.copy()
    _draw(rng, image, placed, ground.water, to_sun)
    return HeldoutScene(_sensor(rng, image), tuple(objects), (ref,), biome, focus, ground.water)


def _choose(
    rng: np.random.Generator,
    grouped: dict[frozenset[int], list[Expression]],
    facts: Sequence[ObjectFacts],
    focus: str,
) -> tuple[frozenset[int], Expression] | None:
    """A target (preferring the focus category) and one of its expressions (favouring modifiers)."""
    if not grouped:
        return None
    pool = list(grouped)
    preferred = [g for g in pool if facts[min(g)].category == focus] or pool
    plural = [g for g in preferred if len(g) > 1]
    singular = [g for g in preferred if len(g) == 1]
    choices = plural if plural and (not singular or rng.random() < _PLURAL_PROBABILITY) else singular
    target = choices[rng.integers(len(choices))]
    expressions = grouped[target]
    # Size and location words are what the distractors test; favour them as the training data does.
    weights = np.array([1.0 + e.modifiers for e in expressions])
    return target, expressions[rng.choice(len(expressions), p=weights / weights.sum())]


# --- held-out phrasing ------------------------------------------------------------------------------

NOUNS = {
    "airplane": (("airplane", "airplanes"), ("plane", "planes"), ("aircraft", "aircraft"), ("jet", "jets")),
    "storage tank": (("storage tank", "storage tanks"), ("tank", "tanks"), ("oil tank", "oil tanks")),
    "ship": (("ship", "ships"), ("boat", "boats"), ("vessel", "vessels")),
    "vehicle": (("vehicle", "vehicles"), ("car", "cars")),
    "building": (("building", "buildings"), ("house", "houses")),
}
# Positive size adjectives (grammar's "small"/"large": relative to the same class) and superlatives.
SMALL_WORDS = ("small", "little", "tiny")
LARGE_WORDS = ("large", "big")
SMALLEST_WORDS = ("smallest", "tiniest")
LARGEST_WORDS = ("largest", "biggest")
# Prepositional phrases for each location; they name the same halves, corners and centre.
WHERE = {
    "left": ("on the left", "in the left half", "on the left-hand side", "in the left part of the picture"),
    "right": (
        "on the right",
        "in the right half",
        "on the right-hand side",
        "in the right part of the picture",
    ),
    "top": ("at the top", "in the upper half", "near the top of the image", "in the top part of the picture"),
    "bottom": (
        "at the bottom",
        "in the lower half",
        "near the bottom of the image",
        "in the bottom part of the picture",
    ),
    "upper left": (
        "in the top left",
        "in the top-left corner",
        "in the upper-left part of the image",
        "at the upper left",
    ),
    "upper right": (
        "in the top right",
        "in the top-right corner",
        "in the upper-right part of the image",
        "at the upper right",
    ),
    "lower left": (
        "in the bottom left",
        "in the bottom-left corner",
        "in the lower-left part of the image",
        "at the lower left",
    ),
    "lower right": (
        "in the bottom right",
        "in the bottom-right corner",
        "in the lower-right part of the image",
        "at the lower right",
    ),
    "center": (
        "in the centre",
        "in the middle of the image",
        "near the middle",
        "at the center of the picture",
    ),
}
# Adjectives for corners and the centre, used before the noun ("the top-left tank").
WHERE_ADJECTIVES = {
    "upper left": ("top-left", "upper-left"),
    "upper right": ("top-right", "upper-right"),
    "lower left": ("bottom-left", "lower-left"),
    "lower right": ("bottom-right", "lower-right"),
    "center": ("central",),
}
# Extremes: true of the only object of its class in a half (or the centre) because the unambiguity
# check keeps every other one outside the loose region, i.e. further from that side than the referent.
EXTREMES = {
    "left": ("the leftmost {n}", "the {n} on the far left", "the {n} furthest to the left"),
    "right": ("the rightmost {n}", "the {n} on the far right", "the {n} furthest to the right"),
    "top": ("the topmost {n}", "the {n} at the very top of the image", "the {n} nearest the top edge"),
    "bottom": (
        "the bottom-most {n}",
        "{n} at the very bottom of the image",
        "the {n} nearest the bottom edge",
    ),
    "center": ("the most central {n}", "the {n} closest to the centre", "the {n} nearest the middle"),
}
NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def paraphrase(expression: Expression, rng: np.random.Generator, *, members: int, same_class: int) -> str:
    """A held-out wording of `expression`, meaning exactly what it means for its scene.

    `members`: how many objects the expression refers to; `same_class`: how many objects of its
    category the scene holds. Both are needed for wordings like "the two ships" and "the only tank".
    The result is never a sentence of the canonical grammar (`expressions.parse` rejects it).
    """
    for _ in range(20):
        text = " ".join(_paraphrase_once(expression, rng, members, same_class).split())
        try:
            parse(text)
        except ValueError:
            return text
    # Rare: every draw landed on a canonical sentence; a leading verb is outside the canonical grammar.
    return f"find {render(expression)}"


def _paraphrase_once(expression: Expression, rng: np.random.Generator, members: int, same_class: int) -> str:
    singular, plural = NOUNS[expression.category][int(rng.integers(len(NOUNS[expression.category])))]
    where = _pick(WHERE[expression.location], rng) if expression.location else ""
    if expression.plural:
        return _plural(rng, singular, plural, where, members)
    if expression.size is None and expression.location is None:
        # Unambiguous without modifiers: the scene holds exactly one object of the class.
        lone = ("the only {n} in the image", "the single {n}", "the lone {n} in this scene",
                "the one and only {n}", "find the {n}", "the {n} shown in the picture")  # fmt: skip
        return _pick(lone, rng).format(n=singular)
    if expression.location is None:
        return _size_only(rng, expression.size or "small", singular, plural, same_class)
    if expression.size is None and expression.location in EXTREMES and rng.random() < 0.3:
        return _pick(EXTREMES[expression.location], rng).format(n=singular)
    adjective = ""
    if expression.size is not None:
        adjective = _pick(SMALL_WORDS if expression.size == "small" else LARGE_WORDS, rng) + " "
    if expression.location in WHERE_ADJECTIVES and rng.random() < 0.2:
        return f"the {adjective}{_pick(WHERE_ADJECTIVES[expression.location], rng)} {singular}"
    template = _pick(
        ("the {a}{n} located {w}", "the {a}{n} that is {w}", "which {a}{n} is {w}", "{a}{n} {w}",
         "find the {a}{n} {w}", "{w}, the {a}{n}", "the {a}{n} you can see {w}", "the {a}{n} positioned {w}",
         "the {a}{n} {w}"),
        rng,
    )  # fmt: skip
    return template.format(a=adjective, n=singular, w=where)


def _size_only(rng: np.random.Generator, size: str, singular: str, plural: str, same_class: int) -> str:
    """An unambiguous size word alone: the referent is the smallest (largest) object of its class."""
    small = size == "small"
    most = _pick(SMALLEST_WORDS if small else LARGEST_WORDS, rng)
    positive = _pick(SMALL_WORDS if small else LARGE_WORDS, rng)
    comparative = "smaller" if small else "larger"
    others = "the other one" if same_class == 2 else "the others"
    options = [
        f"the {most} {singular}",
        f"the {most} {singular} in the image",
        f"which {singular} is the {most} one",
        f"the {singular} that is {comparative} than {others}",
        f"the {positive} {singular}",
        f"find the {most} {singular}",
        f"the {singular} with the {most} footprint",
    ]
    if same_class == 2:
        options.append(f"the {comparative} of the two {plural}")
    return _pick(options, rng)


def _plural(rng: np.random.Generator, singular: str, plural: str, where: str, members: int) -> str:
    """ "All X [where]" as every/each/all of/the N/both; `members` >= 2 objects are meant."""
    options = [
        "all the {p} {w}",
        "every {s} {w}",
        "each of the {p} {w}",
        "all of the {p} {w}",
        "the {p} {w}" if where else "all {p} in the image",
    ]
    if where:
        options += ["every {s} shown {w}", "all {p} located {w}", "every {s} that is {w}", "{w}, all the {p}"]
    else:
        options += ["every {s} in the scene", "every single {s}", "all {p}"]
    if members in NUMBERS:
        options.append(f"the {NUMBERS[members]} {{p}} {{w}}")
    if members == 2:
        options.append("both {p} {w}")
    return _pick(options, rng).format(s=singular, p=plural, w=where)


# --- the dataset ------------------------------------------------------------------------------------


def write_heldout_dataset(
    out_dir: Path, num_images: int = 400, seed: int = 12345, size: int = 256, progress: bool = True
) -> BuiltBenchmark:
    """Write `num_images` held-out scenes as a benchmark into `out_dir` (missing or empty), split "test".

    Layout as `danet.datagen.benchmark` writes it: ``JPEGImages/``, ``refs(unc).p`` + ``instances.json``,
    ``refs_test.jsonl``, ``subsets.json`` and ``DATASET.md``. Each ref has one annotation (its target
    mask as RLE) and two sentences: the canonical one (subset "heldout", plus "heldout-distractor"
    when the image holds another object of the target's class) and the paraphrase
    ("heldout-paraphrased", plus "heldout-paraphrased-distractor").
    """
    out_dir = require_empty_folder(out_dir, "held-out output folder")
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    corpus = ReferringCorpus(categories={i: name for name, i in CATEGORY_IDS.items()})
    subsets: dict[int, tuple[str, ...]] = {}
    ids = itertools.count(1)
    sent_ids = itertools.count(1)
    for index in tqdm(range(num_images), desc="held-out scenes", disable=not progress):
        scene = render_heldout_scene(seed, index, size)
        image_id = index + 1
        file_name = f"{image_id:05d}.jpg"
        write_image(out_dir, file_name, scene.image)
        corpus.images.append(CorpusImage(image_id, file_name, size, size))
        for ref in scene.refs:
            distractor = scene.has_distractor(ref)
            names = (
                ("heldout", "heldout-distractor") if distractor else ("heldout",),
                ("heldout-paraphrased", "heldout-paraphrased-distractor")
                if distractor
                else ("heldout-paraphrased",),
            )
            add_ref(corpus, subsets, image_id, next(ids), ref.expression.category, ref.mask, SPLIT)
            add_sentences(corpus, subsets, ref.sentences, names, sent_ids)
    write_layouts(corpus, subsets, out_dir)
    counts = subset_counts(corpus, subsets)
    (out_dir / CARD_FILE).write_text(
        heldout_card(counts, seed=seed, num_images=num_images, size=size), encoding="utf-8"
    )
    return BuiltBenchmark(root=out_dir, corpus=corpus, subsets=subsets, counts=counts)


def heldout_card(
    counts: dict[str, dict[str, dict[str, int]]], *, seed: int, num_images: int, size: int
) -> str:
    """The DATASET.md text of a held-out dataset: provenance, rules, counts."""
    table = count_table(counts)
    sizes = ", ".join(f"{c} {lo:.0%}-{hi:.0%}" for c, (lo, hi) in SIZE_FRACTIONS.items())
    return f"""# Lookout held-out renderer benchmark

Written by `danet heldout-data --images {num_images} --seed {seed} --size {size}`
(`danet.datagen.heldout.write_heldout_dataset`); the same command writes the same annotations.

**This is GENERATED data from the held-out renderer (`danet.datagen.heldout`), never used in training.**
Images, masks and sentences are all generated. The renderer shares no drawing code with the training
renderer (`danet.datagen.synthetic`): its grounds, objects, shadows and sensor are its own, so scores
here measure transfer to scenes of an unseen look. Do not train or tune on it.

## Layout

RRSIS-D layout (`refs(unc).p`, `instances.json`, `JPEGImages/`) and JSONL (`refs_test.jsonl`), read by
`danet.data.dataset.load_records`; every ref is in split `test`. `subsets.json` maps each sent_id to its
subsets (`danet.data.subsets.subset_sent_ids`), e.g.
`danet eval --checkpoint CKPT --data DIR --split test --subset heldout --subset heldout-paraphrased`.

## What is drawn

{num_images} scenes, {size}x{size} px, seed {seed}. Grounds: {", ".join(BIOMES)}; water (lake, river,
harbour) when ships are the focus or by chance. Objects (longest side as a share of the image side):
{sizes}. Each scene has a focus class with 1-3 objects that differ in size and position plus 1-4
other objects; ships lie on water, the rest on land, masks never overlap and are exactly the drawn
bodies (shadows and wakes excluded). Random sun direction, white balance, gamma, haze, blur and noise.

## Sentences

Expressions are the structured ones of `danet.datagen.expressions` (class, optional size word, optional
location, or plural "all X"), each checked to be unambiguous for its scene. Every ref has two
sentences:

- `heldout`: the canonical sentence (`expressions.render`), the grammar the training data uses;
- `heldout-paraphrased`: a paraphrase from the held-out phrasing (`danet.datagen.heldout.paraphrase`):
  other sentence shapes ("the aircraft located in the top-left corner", "which vessel is the biggest
  one", "every car shown in the right half", "the only tank in the image", "the two ships at the top")
  and synonyms, with the same meaning; never a canonical sentence;
- `heldout-distractor` / `heldout-paraphrased-distractor`: those of the two whose image holds another
  object of the target's class outside the target.

## Counts (images / refs / sentences)

{table}

## Known limits

- Generated, not human-written: the paraphrases come from templates, and synonyms overlap with the
  training phrasing (`danet.datagen.phrasing`); the sentence shapes and several words do not.
- One ref per image; the look is different from the training renderer but still simple (flat-shaded
  polygons), so it is no substitute for real imagery.
"""


# --- contact sheet ----------------------------------------------------------------------------------


def render_contact_sheet(
    path: Path, *, seed: int = 12345, count: int = 12, columns: int = 4, size: int = 256
) -> Path:
    """A PNG grid of held-out scenes with target outlines (red), other objects (cyan) and both sentences."""
    font = ImageFont.load_default(size=11)
    text_height = 70
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * size, rows * (size + text_height)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index in range(count):
        scene = render_heldout_scene(seed, index, size)
        tile = scene.image.copy()
        ref = scene.refs[0]
        for i, obj in enumerate(scene.objects):
            edge = obj.mask & ~_erode(obj.mask)
            tile[edge] = (255, 40, 40) if i in ref.objects else (60, 220, 255)
        left, top = (index % columns) * size, (index // columns) * (size + text_height)
        sheet.paste(Image.fromarray(tile), (left, top))
        lines = [f"#{index} {scene.biome}", *textwrap.wrap(f"C: {ref.canonical}", 44)]
        lines += textwrap.wrap(f"P: {ref.paraphrase}", 44)
        for k, line in enumerate(lines[:5]):
            draw.text((left + 4, top + size + 2 + 13 * k), line, fill=(0, 0, 0), font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the sheet small enough to commit (noisy photos compress badly in PNG).
    sheet.quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def _erode(mask: np.ndarray) -> np.ndarray:
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.filter(ImageFilter.MinFilter(3))) > 0

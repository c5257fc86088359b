"""Top-down object shapes of the synthetic scenes and how they are painted.

Each category has a shape model in local units (length 1, nose along +x): an outline polygon (the
instance mask), detail parts painted inside the outline, a relative height for the cast shadow and,
for ships, a wake. An object's mask is the pycocotools rasterisation of its outline with coordinates
rounded to 0.01 px, so the polygon written to `instances.json` decodes to exactly the painted pixels.
Shadows and wakes fall outside the mask, as in real annotations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as coco_mask

from danet.data.records import decode_rle

# Object length as a fraction of the image side (min, max), and a floor in pixels for small images.
SIZE_RANGES = {
    "airplane": (0.11, 0.30),
    "storage tank": (0.045, 0.14),
    "ship": (0.09, 0.26),
    "vehicle": (0.03, 0.065),
    "building": (0.06, 0.18),
}
MIN_LENGTH_PX = {"airplane": 10.0, "storage tank": 5.0, "ship": 9.0, "vehicle": 5.0, "building": 7.0}

_SHADOW_DARKENING = 0.55
_VEHICLE_COLORS = ((0.9, 0.9, 0.9), (0.1, 0.1, 0.12), (0.65, 0.1, 0.1), (0.15, 0.25, 0.6), (0.7, 0.7, 0.72))
_ROOF_COLORS = (
    (0.6, 0.6, 0.62),
    (0.62, 0.32, 0.24),
    (0.35, 0.35, 0.38),
    (0.55, 0.6, 0.65),
    (0.8, 0.78, 0.74),
)
_HULL_COLORS = ((0.55, 0.55, 0.57), (0.75, 0.75, 0.77), (0.45, 0.2, 0.18), (0.2, 0.25, 0.35))


@dataclass(frozen=True, slots=True)
class Part:
    """A detail painted inside an object's outline (local units)."""

    polygon: np.ndarray
    color: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class ShapeModel:
    """An object's geometry and colours in local units (length 1, pointing along +x)."""

    category: str
    outline: np.ndarray
    color: tuple[float, float, float]
    parts: tuple[Part, ...]
    height: float
    wake: np.ndarray | None = None

    @property
    def extent(self) -> float:
        """Radius of the outline around the origin, in lengths."""
        return float(np.linalg.norm(self.outline, axis=1).max())


@dataclass(frozen=True, slots=True)
class Pose:
    """Where an object is: centre (x, y) in pixels, length in pixels, heading in radians."""

    x: float
    y: float
    length: float
    angle: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Local units -> pixel coordinates, rounded to 0.01 px (what the annotation files store)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        rotated = points @ np.array([[c, s], [-s, c]]) * self.length
        return np.round(rotated + np.array([self.x, self.y]), 2)


@dataclass(frozen=True, slots=True)
class PlacedObject:
    """A shape model at a pose, with its exact instance mask."""

    model: ShapeModel
    pose: Pose
    polygon: np.ndarray  # (N, 2) pixel coordinates
    mask: np.ndarray  # bool [H, W]

    @property
    def category(self) -> str:
        """The object's category name."""
        return self.model.category

    @property
    def radius(self) -> float:
        """Radius that holds the object and its shadow, in pixels (used to keep objects apart)."""
        return self.pose.length * (self.model.extent + self.model.height)

    def flat_polygon(self) -> list[float]:
        """The outline as a COCO polygon [x0, y0, x1, y1, ...]."""
        return [float(v) for v in self.polygon.reshape(-1)]


def shape_model(category: str, rng: np.random.Generator) -> ShapeModel:
    """A randomised shape model of a category (see `SIZE_RANGES` for the categories)."""
    builders = {
        "airplane": _airplane,
        "storage tank": _storage_tank,
        "ship": _ship,
        "vehicle": _vehicle,
        "building": _building,
    }
    if category not in builders:
        raise ValueError(f"unknown object category {category!r}; expected one of {sorted(builders)}")
    return builders[category](rng)


def place(model: ShapeModel, pose: Pose, size: int) -> PlacedObject:
    """Put a model at a pose on a `size` x `size` image and rasterise its mask."""
    polygon = pose.apply(model.outline)
    return PlacedObject(model=model, pose=pose, polygon=polygon, mask=rasterize([polygon], size))


def rasterize(polygons: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Union of polygons ((N, 2) pixel coordinates) as a bool mask, rasterised by pycocotools."""
    rles = coco_mask.frPyObjects([[float(v) for v in p.reshape(-1)] for p in polygons], size, size)
    return decode_rle(coco_mask.merge(rles)).astype(bool)


def paint(
    image: np.ndarray, objects: Sequence[PlacedObject], sun: np.ndarray, rng: np.random.Generator
) -> None:
    """Paint wakes, shadows, then bodies and details of `objects` onto a float [H, W, 3] image in place."""
    size = image.shape[0]
    occupied = np.zeros(image.shape[:2], dtype=bool)
    for obj in objects:
        occupied |= obj.mask
    for obj in objects:
        if obj.model.wake is not None:
            wake = rasterize([obj.pose.apply(obj.model.wake)], size) & ~occupied
            image[wake] = 0.75 * image[wake] + 0.25 * np.array([0.85, 0.88, 0.9])
    for obj in objects:
        offset = sun * obj.model.height * obj.pose.length
        shadow = rasterize([obj.polygon + offset], size) & ~occupied
        image[shadow] *= _SHADOW_DARKENING
    for obj in objects:
        count = int(obj.mask.sum())
        image[obj.mask] = np.clip(np.array(obj.model.color) + rng.normal(0, 0.015, size=(count, 3)), 0, 1)
        for part in obj.model.parts:
            region = rasterize([obj.pose.apply(part.polygon)], size) & obj.mask
            image[region] = part.color


def _gray(value: float) -> tuple[float, float, float]:
    return (value, value, value)


def _rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _circle(radius: float, vertices: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    return radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def _mirrored(upper: list[tuple[float, float]]) -> np.ndarray:
    """Close a symmetric outline from its y >= 0 half, which runs nose to tail from axis to axis."""
    half = np.array(upper)
    return np.concatenate([half, half[-2:0:-1] * [1, -1]])


def _airplane(rng: np.random.Generator) -> ShapeModel:
    sweep = rng.uniform(0.12, 0.25)
    span = rng.uniform(0.42, 0.5)
    outline = _mirrored(
        [
            (0.5, 0.0),
            (0.44, 0.045),
            (0.1, 0.05),
            (0.1 - sweep, span),
            (0.02 - sweep, span),
            (-0.08, 0.05),
            (-0.36, 0.04),
            (-0.46, 0.19),
            (-0.5, 0.19),
            (-0.5, 0.0),
        ]
    )
    body = rng.uniform(0.82, 0.95)
    engine_x = 0.06 - 0.45 * sweep
    parts = [
        Part(_rect(engine_x - 0.06, engine_x + 0.04, 0.17, 0.22), _gray(0.3)),
        Part(_rect(engine_x - 0.06, engine_x + 0.04, -0.22, -0.17), _gray(0.3)),
    ]
    if rng.random() < 0.5:
        livery = tuple(float(v) for v in rng.uniform(0.1, 0.7, size=3))
        parts.append(Part(_rect(-0.5, -0.38, -0.02, 0.02), livery))
    return ShapeModel("airplane", outline, _gray(body), tuple(parts), height=rng.uniform(0.06, 0.1))


def _storage_tank(rng: np.random.Generator) -> ShapeModel:
    body = rng.uniform(0.78, 0.92)
    parts = (Part(_circle(0.42), _gray(body - 0.1)), Part(_circle(0.06, 12), _gray(0.5 * body)))
    return ShapeModel("storage tank", _circle(0.5), _gray(body), parts, height=rng.uniform(0.25, 0.4))


def _ship(rng: np.random.Generator) -> ShapeModel:
    beam = rng.uniform(0.085, 0.13)
    outline = np.array([(0.5, 0.0), (0.3, beam), (-0.5, beam), (-0.5, -beam), (0.3, -beam)])
    hull = _HULL_COLORS[rng.integers(len(_HULL_COLORS))]
    parts = [Part(_rect(-0.44, -0.22, -0.65 * beam, 0.65 * beam), _gray(0.92))]
    if rng.random() < 0.5:
        for x0 in (-0.15, 0.0, 0.15):
            color = tuple(float(v) for v in rng.uniform(0.2, 0.8, size=3))
            parts.append(Part(_rect(x0, x0 + 0.12, -0.6 * beam, 0.6 * beam), color))
    wake = np.array([(-0.5, 0.8 * beam), (-0.95, 1.6 * beam), (-0.95, -1.6 * beam), (-0.5, -0.8 * beam)])
    return ShapeModel("ship", outline, hull, tuple(parts), height=0.05, wake=wake)


def _vehicle(rng: np.random.Generator) -> ShapeModel:
    color = _VEHICLE_COLORS[rng.integers(len(_VEHICLE_COLORS))]
    parts = (
        Part(_rect(0.12, 0.28, -0.17, 0.17), _gray(0.13)),
        Part(_rect(-0.38, -0.3, -0.16, 0.16), _gray(0.18)),
    )
    return ShapeModel("vehicle", _rect(-0.5, 0.5, -0.22, 0.22), color, parts, height=0.15)


def _building(rng: np.random.Generator) -> ShapeModel:
    depth = rng.uniform(0.45, 1.0) / 2
    roof = _ROOF_COLORS[rng.integers(len(_ROOF_COLORS))]
    if rng.random() < 0.5:
        # Gable roof: the half facing away from the sun is darker, with a ridge line.
        shade = tuple(0.78 * c for c in roof)
        ridge = tuple(0.6 * c for c in roof)
        parts = (Part(_rect(-0.5, 0.5, 0.0, depth), shade), Part(_rect(-0.5, 0.5, -0.015, 0.015), ridge))
    else:
        # Flat roof with rooftop units.
        parts = tuple(
            Part(_rect(x, x + 0.1, y, y + 0.1 * 2 * depth), _gray(0.75))
            for x, y in rng.uniform([-0.4, -0.8 * depth], [0.3, 0.5 * depth], size=(rng.integers(1, 4), 2))
        )
    return ShapeModel(
        "building", _rect(-0.5, 0.5, -depth, depth), roof, parts, height=rng.uniform(0.15, 0.35)
    )

"""Aerial-looking synthetic backgrounds: textured ground, crop fields, a coast with water, roads.

Everything is numpy + PIL: multi-octave smooth noise (bicubic upsampling of random grids) for texture,
PIL polygons for fields and roads. Colours are RGB floats in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_GROUND = {
    "grass": (0.36, 0.45, 0.26),
    "dry soil": (0.57, 0.52, 0.40),
    "desert": (0.73, 0.66, 0.50),
    "urban": (0.55, 0.54, 0.52),
}
_FIELDS = ((0.30, 0.45, 0.20), (0.62, 0.56, 0.33), (0.45, 0.36, 0.26), (0.40, 0.50, 0.28))
_WATER = (0.11, 0.21, 0.27)
_SAND = (0.72, 0.67, 0.53)
_ASPHALT = (0.33, 0.33, 0.34)


@dataclass(frozen=True, slots=True)
class Road:
    """A straight road: a point on its centre line, unit direction, width in pixels."""

    point: tuple[float, float]
    direction: tuple[float, float]
    width: float


@dataclass(slots=True)
class Terrain:
    """A background image with the surfaces objects are placed on."""

    image: np.ndarray  # float32 [H, W, 3] in [0, 1]
    water: np.ndarray  # bool [H, W]
    roads: np.ndarray  # bool [H, W], only on land
    road_lines: list[Road]


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, roughly unit-variance noise of `size` x `size` with features about size/cells wide."""
    cells = max(2, min(cells, size))
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC))


def fractal_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Three octaves of smooth noise: large patches, mid-scale texture, fine grain."""
    return (
        0.55 * smooth_noise(rng, size, 4)
        + 0.30 * smooth_noise(rng, size, 16)
        + 0.15 * smooth_noise(rng, size, 64)
    )


@dataclass(frozen=True, slots=True)
class _Texture:
    """Noise fields shared by every surface of a scene (one set of fields keeps drawing cheap)."""

    luminance: np.ndarray  # [H, W] multi-octave
    tint: np.ndarray  # [H, W] low-frequency colour variation
    fine: np.ndarray  # [H, W] fine grain (water ripples, asphalt)
    xs: np.ndarray  # [H, W] pixel x coordinates
    ys: np.ndarray  # [H, W] pixel y coordinates

    def surface(
        self, rng: np.random.Generator, color: tuple[float, ...], amount: float, mask: np.ndarray
    ) -> np.ndarray:
        """Textured colour values for the pixels of `mask`, shape [mask.sum(), 3]."""
        jitter = rng.uniform(-0.04, 0.04, size=3).astype(np.float32)
        tint = 0.15 * self.tint[mask][:, None] * np.array([1.0, -0.5, -0.5], dtype=np.float32)
        grain = amount * (self.luminance[mask] + 0.5 * self.fine[mask])[:, None]
        return np.clip(np.asarray(color, np.float32) + jitter + grain + amount * tint, 0.0, 1.0)


def render_terrain(rng: np.random.Generator, size: int, *, water: bool, roads: int) -> Terrain:
    """Draw ground (with fields), optionally a water body with a sandy shore, and `roads` roads on land."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    texture = _Texture(
        fractal_noise(rng, size), smooth_noise(rng, size, 8), smooth_noise(rng, size, 96), xs, ys
    )
    everywhere = np.ones((size, size), dtype=bool)
    image = texture.surface(rng, _GROUND[rng.choice(list(_GROUND))], 0.07, everywhere).reshape(size, size, 3)
    for _ in range(rng.integers(0, 5)):
        _draw_field(rng, image, texture)
    water_mask = _water_mask(rng, texture) if water else np.zeros((size, size), dtype=bool)
    if water:
        shore = (_blur(water_mask, max(1.0, size / 128)) > 0.02) & ~water_mask
        image[shore] = texture.surface(rng, _SAND, 0.04, shore)
        image[water_mask] = texture.surface(rng, _WATER, 0.025, water_mask)
    road_mask = np.zeros((size, size), dtype=bool)
    lines = []
    for _ in range(roads):
        road, mask = _draw_road(rng, image, water_mask, texture)
        road_mask |= mask
        lines.append(road)
    return Terrain(image=image, water=water_mask, roads=road_mask, road_lines=lines)


def _draw_field(rng: np.random.Generator, image: np.ndarray, texture: _Texture) -> None:
    """A rotated rectangular crop field with plough stripes."""
    size = image.shape[0]
    center = rng.uniform(0, size, size=2)
    half = rng.uniform(0.1, 0.25, size=2) * size
    angle = rng.uniform(0, np.pi)
    axis = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-axis[1], axis[0]])
    corners = [
        center + sx * half[0] * axis + sy * half[1] * normal
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    mask = _polygon_mask(size, corners)
    period = rng.uniform(3, 7) * max(1.0, size / 256)
    along = (texture.xs[mask] - center[0]) * axis[0] + (texture.ys[mask] - center[1]) * axis[1]
    stripes = 0.035 * np.sin(2 * np.pi * along / period)[:, None]
    color = _FIELDS[rng.integers(len(_FIELDS))]
    image[mask] = np.clip(texture.surface(rng, color, 0.05, mask) + stripes, 0, 1)


def _water_mask(rng: np.random.Generator, texture: _Texture) -> np.ndarray:
    """A coast: one side of the image under water, with a wavy shoreline; 30-50 % of the area."""
    size = texture.xs.shape[0]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (texture.xs / size - 0.5) * np.cos(angle) + (texture.ys / size - 0.5) * np.sin(angle)
    ramp = ramp + 0.12 * smooth_noise(rng, size, 5)
    return ramp > np.quantile(ramp, 1 - rng.uniform(0.3, 0.5))


def _draw_road(
    rng: np.random.Generator, image: np.ndarray, water: np.ndarray, texture: _Texture
) -> tuple[Road, np.ndarray]:
    size = image.shape[0]
    point = rng.uniform(0.2, 0.8, size=2) * size
    angle = rng.uniform(0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    width = max(3.0, rng.uniform(5, 9) * size / 256)
    far = 2 * size * direction
    corners = [point - far - normal * width / 2, point + far - normal * width / 2]
    corners += [point + far + normal * width / 2, point - far + normal * width / 2]
    mask = _polygon_mask(size, corners) & ~water
    image[mask] = texture.surface(rng, _ASPHALT, 0.03, mask)
    if width >= 6:
        # Dashed centre line: what makes a grey band read as a road from above.
        dash = Image.new("L", (size, size))
        draw = ImageDraw.Draw(dash)
        step = 5 * width
        for t in np.arange(-2 * size, 2 * size, step):
            a, b = point + t * direction, point + (t + step / 2) * direction
            draw.line([tuple(a), tuple(b)], fill=255, width=1)
        marks = (np.asarray(dash) > 0) & mask
        image[marks] = (0.85, 0.85, 0.80)
    road = Road(
        point=(float(point[0]), float(point[1])),
        direction=(float(direction[0]), float(direction[1])),
        width=width,
    )
    return road, mask


def _polygon_mask(size: int, corners: list[np.ndarray]) -> np.ndarray:
    canvas = Image.new("L", (size, size))
    ImageDraw.Draw(canvas).polygon([tuple(map(float, c)) for c in corners], fill=255)
    return np.asarray(canvas) > 0


def _blur(mask: np.ndarray, radius: float) -> np.ndarray:
    image = Image.fromarray((mask * 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0

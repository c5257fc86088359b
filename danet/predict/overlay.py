"""Overlay pictures of a prediction: the image (downscaled for display when large), the predicted mask
tinted semi-transparent, component outlines, and the expression as a caption strip below the image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry import MultiPolygon, Polygon

from danet.geo.raster import PredictionImage
from danet.geo.tiling import TileWindow
from danet.predict.multi_query import PredictionMap

# Longest side of an overlay picture: readable on a screen, small enough to open anywhere.
MAX_OVERLAY_SIDE = 2048
TINT_RGB = (255, 32, 96)
TINT_ALPHA = 0.45
OUTLINE_RGB = (255, 220, 0)
CAPTION_BACKGROUND = (24, 24, 24)
CAPTION_TEXT = (255, 255, 255)
CAPTION_DETAIL = (190, 190, 190)
# Source pixels read per strip while downscaling: bounds memory for very large scenes (~200 MB floats).
_STRIP_SOURCE_PIXELS = 1 << 24


def display_shape(shape: tuple[int, int], max_side: int = MAX_OVERLAY_SIDE) -> tuple[int, int]:
    """(rows, cols) of the displayed image: `shape` scaled down so its longest side is <= `max_side`."""
    if max_side <= 0:
        raise ValueError(f"max_side: must be positive, got {max_side}")
    scale = min(1.0, max_side / max(shape))
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def read_display_image(image: PredictionImage, size: tuple[int, int]) -> Image.Image:
    """The image as 8-bit RGB of `size` (rows, cols), area-averaged, read in horizontal strips so a
    large scene never sits in memory at full resolution. Nodata pixels are black."""
    height, width = image.shape
    rows, cols = size
    if (rows, cols) == (height, width):
        return Image.fromarray(_to_uint8(image.read().image))
    step = height / rows
    strip_rows = max(1, math.floor(_STRIP_SOURCE_PIXELS / width / step))
    out = Image.new("RGB", (cols, rows))
    for d0 in range(0, rows, strip_rows):
        d1 = min(d0 + strip_rows, rows)
        y0, y1 = d0 * step, d1 * step
        r0, r1 = math.floor(y0), min(math.ceil(y1), height)
        strip = Image.fromarray(_to_uint8(image.read(TileWindow(r0, 0, r1 - r0, width)).image))
        box = (0, y0 - r0, width, y1 - r0)
        out.paste(strip.resize((cols, d1 - d0), Image.Resampling.BOX, box=box), (0, d0))
    return out


def display_foreground(
    prediction: PredictionMap, threshold: float, image_shape: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """Boolean (rows, cols) mask of the display: a display pixel is foreground when at least half of
    the image pixels under it are valid and have probability >= `threshold`."""
    rows, cols = size
    sy, sx = rows / image_shape[0], cols / image_shape[1]
    canvas_h, canvas_w = prediction.probability.shape
    r0, c0 = round(prediction.row_off * sy), round(prediction.col_off * sx)
    r1, c1 = round((prediction.row_off + canvas_h) * sy), round((prediction.col_off + canvas_w) * sx)
    out = np.zeros(size, dtype=bool)
    if r1 <= r0 or c1 <= c0:
        return out
    with np.errstate(invalid="ignore"):
        foreground = (prediction.probability >= threshold) & prediction.valid
    if (r1 - r0, c1 - c0) == foreground.shape:
        out[r0:r1, c0:c1] = foreground
        return out
    share = Image.fromarray(foreground.astype(np.float32)).resize((c1 - c0, r1 - r0), Image.Resampling.BOX)
    out[r0:r1, c0:c1] = np.asarray(share) >= 0.5
    return out


def _rings(geometry: Polygon | MultiPolygon) -> list[list[tuple[float, float]]]:
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    return [list(ring.coords) for p in polygons for ring in (p.exterior, *p.interiors)]


def _wrap(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy word wrap to `width` pixels (a single word longer than the width keeps its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def render_overlay(
    base: Image.Image,
    foreground: np.ndarray,
    outlines: Sequence[Polygon | MultiPolygon],
    caption: str,
    details: str = "",
) -> Image.Image:
    """Tint `foreground` (bool, base's rows x cols) on `base`, draw `outlines` (display pixel
    coordinates, x = column), and add a caption strip with `caption` and a smaller `details` line."""
    if foreground.shape != (base.height, base.width):
        size = (base.height, base.width)
        raise ValueError(f"foreground: shape {foreground.shape} differs from the image {size}")
    rgb = np.asarray(base.convert("RGB"), dtype=np.float32)
    alpha = foreground[..., None] * np.float32(TINT_ALPHA)
    tinted = rgb * (1.0 - alpha) + np.asarray(TINT_RGB, dtype=np.float32) * alpha
    picture = Image.fromarray(np.clip(np.rint(tinted), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    line_width = 2 if max(base.size) >= 512 else 1
    for geometry in outlines:
        for ring in _rings(geometry):
            draw.line(ring, fill=OUTLINE_RGB, width=line_width)
    return _with_caption(picture, caption, details)


def _with_caption(picture: Image.Image, caption: str, details: str) -> Image.Image:
    """`picture` with a dark strip below it holding the wrapped caption and details lines."""
    size = int(np.clip(picture.width / 40, 12, 36))
    font = ImageFont.load_default(size=size)
    small = ImageFont.load_default(size=max(10, round(size * 0.7)))
    margin = max(4, size // 3)
    usable = picture.width - 2 * margin
    lines = [(line, font, CAPTION_TEXT) for line in _wrap(caption, font, usable)]
    if details:
        lines += [(line, small, CAPTION_DETAIL) for line in _wrap(details, small, usable)]
    heights = [f.getbbox("Ag")[3] + margin // 2 for _, f, _ in lines]
    strip = Image.new("RGB", (picture.width, sum(heights) + 2 * margin), CAPTION_BACKGROUND)
    draw = ImageDraw.Draw(strip)
    y = margin
    for (line, line_font, colour), height in zip(lines, heights, strict=True):
        draw.text((margin, y), line, font=line_font, fill=colour)
        y += height
    out = Image.new("RGB", (picture.width, picture.height + strip.height))
    out.paste(picture, (0, 0))
    out.paste(strip, (0, picture.height))
    return out

"""An unbounded, seeded stream of referring samples drawn on the fly: the DANet-lite v2 training data.

Each sample is one of:

- **synthetic** (share ``mix.synthetic`` of the draws): a scene of the training renderer
  with same-class distractors, then *domain randomisation* so that the model learns the concepts rather
  than one renderer's look: background textures (procedural palettes and real image patches blended
  under the objects), per-object recolouring, one of the eight flips/quarter turns of the square with the
  expression moved to stay true (`expressions.moved`), then global colour, grey (panchromatic), haze,
  blur, sensor noise and JPEG artefacts. The expression is drawn from the training phrasing
  (`danet.datagen.phrasing`: synonyms, paraphrases, "all/every").
- **real** (shares ``mix.buildings``, ``mix.trees``, ``mix.roads``): a random crop of real imagery with
  real masks (`danet.datagen.real_regions`, training regions only), any flip or quarter turn (the plural
  expressions used here, "all buildings", "every tree", "the roads", hold under all of them), resized.

Sample ``i`` of worker ``w`` depends only on (seed, w, i): a resumed run asks for another ``offset``.
Samples follow the dataset contract of `danet.data.dataset` (normalized image, {0,1} mask, text).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import IterableDataset, get_worker_info

from danet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from danet.datagen.expressions import moved
from danet.datagen.phrasing import describe, describe_all
from danet.datagen.real_regions import RealRegion, training_regions
from danet.datagen.synthetic import SceneSpec, generate_scene
from danet.datagen.terrain import fractal_noise

_MIN_TARGET_PX = 6  # a real crop whose target is smaller than this (after resizing) is redrawn
_SHUFFLE_BUFFER = 24


@dataclass(frozen=True)
class StreamMix:
    """Shares of each kind of draw (normalised to sum to 1). A synthetic draw gives up to
    ``refs_per_scene`` samples, a real one gives one: these defaults make about a quarter of the samples
    real."""

    synthetic: float = 0.55
    buildings: float = 0.2
    trees: float = 0.17
    roads: float = 0.08

    def probabilities(self) -> np.ndarray:
        """The shares as probabilities, in the order synthetic, buildings, trees, roads."""
        shares = np.array([self.synthetic, self.buildings, self.trees, self.roads], dtype=float)
        if (shares < 0).any() or shares.sum() <= 0:
            raise ValueError(f"stream mix shares must be >= 0 and not all 0, got {self}")
        return shares / shares.sum()


@dataclass(frozen=True)
class Appearance:
    """Strength of the domain randomisation (probabilities and ranges)."""

    texture: float = 0.45
    recolor_object: float = 0.35
    grey: float = 0.15
    haze: float = 0.25
    blur: float = 0.35
    jpeg: float = 0.5
    noise_sigma: tuple[float, float] = (0.0, 0.04)


class ReferringStream(IterableDataset):
    """Endless referring samples (see the module docstring); each DataLoader worker draws its own."""

    def __init__(
        self,
        size: int = 256,
        *,
        seed: int = 0,
        offset: int = 0,
        mix: StreamMix | None = None,
        appearance: Appearance | None = None,
        regions: dict[str, list[RealRegion]] | None = None,
        refs_per_scene: int = 3,
    ) -> None:
        super().__init__()
        self.refs_per_scene = refs_per_scene
        self.size, self.seed, self.offset = size, seed, offset
        self.mix = mix or StreamMix()
        self.appearance = appearance or Appearance()
        self._probabilities = self.mix.probabilities()
        self._regions = regions

    def regions(self) -> dict[str, list[RealRegion]]:
        """Real training regions by kind (read once per process, on first use)."""
        if self._regions is None:
            self._regions = training_regions()
        return self._regions

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        index = self.offset
        # A small shuffle buffer keeps the samples of one scene (several refs) out of one batch.
        buffer: list[dict[str, Any]] = []
        order = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(worker, index, 1)))
        while True:
            while len(buffer) < _SHUFFLE_BUFFER:
                buffer.extend(self.samples(worker, index))
                index += 1
            yield buffer.pop(int(order.integers(len(buffer))))

    def sample(self, worker: int, index: int) -> dict[str, Any]:
        """The first sample of draw ``index`` of ``worker`` (deterministic)."""
        return self.samples(worker, index)[0]

    def samples(self, worker: int, index: int) -> list[dict[str, Any]]:
        """Draw ``index`` of ``worker`` (deterministic): one real crop, or up to ``refs_per_scene``
        referents of one synthetic scene, each with its own flip/turn and wording (drawing a scene costs
        far more than re-using it, and one image with several expressions makes the text matter)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(worker, index)))
        kind = ("synthetic", "buildings", "trees", "roads")[rng.choice(4, p=self._probabilities)]
        drawn = self._synthetic(rng) if kind == "synthetic" else [self._real(kind, rng)]
        return [_as_sample(image, mask, text, kind) for image, mask, text in drawn]

    def _synthetic(self, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, str]]:
        spec = SceneSpec(
            image_size=self.size,
            seed=int(rng.integers(2**31)),
            sentences_per_ref=1,
            refs_per_image=self.refs_per_scene,
        )
        scene = generate_scene(spec, 0)
        objects = np.zeros(scene.image.shape[:2], dtype=bool)
        for obj in scene.objects:
            objects |= obj.mask
        image = scene.image.astype(np.float32) / 255.0
        if rng.random() < self.appearance.texture:
            image = _blend_texture(image, objects, self._texture(rng), rng)
        if rng.random() < self.appearance.recolor_object:
            for obj in scene.objects:
                if rng.random() < 0.5:
                    image[obj.mask] = _recolor(image[obj.mask], rng)
        drawn = []
        for referent in scene.referents:
            transpose, flip_x, flip_y = (bool(b) for b in rng.integers(0, 2, size=3))
            moved_image, mask = _dihedral(image, referent.mask, transpose, flip_x, flip_y)
            expression = moved(referent.expressions[0], transpose=transpose, flip_x=flip_x, flip_y=flip_y)
            drawn.append((self._degrade(moved_image, rng), mask, describe(expression, rng)))
        return drawn

    def _texture(self, rng: np.random.Generator) -> np.ndarray:
        """A background texture: a random-palette fractal noise, or a patch of real imagery."""
        trees = self.regions().get("trees", [])
        if trees and rng.random() < 0.4:
            # Real vegetation/soil texture (NEON tiles: trees here are background, not named).
            region = trees[int(rng.integers(len(trees)))]
            patch, _ = region.crop(rng, self.size, scale=(1.0, 2.5))
            return patch.astype(np.float32) / 255.0
        low, high = rng.uniform(0.05, 0.9, size=3), rng.uniform(0.05, 0.9, size=3)
        t = (fractal_noise(rng, self.size) * 0.5 + 0.5).clip(0, 1)[..., None]
        return (low * (1 - t) + high * t).astype(np.float32)

    def _real(self, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
        regions = self.regions().get(kind)
        if not regions:
            raise ValueError(f"no real training regions of kind {kind!r}; set its StreamMix share to 0")
        for _ in range(20):
            region = regions[int(rng.integers(len(regions)))]
            image, mask = region.crop(rng, self.size)
            if mask.sum() >= _MIN_TARGET_PX:
                break
        transpose, flip_x, flip_y = (bool(b) for b in rng.integers(0, 2, size=3))
        image, mask = _dihedral(image.astype(np.float32) / 255.0, mask, transpose, flip_x, flip_y)
        return self._degrade(image, rng, mild=True), mask, describe_all(region.category, rng)

    def _degrade(self, image: np.ndarray, rng: np.random.Generator, *, mild: bool = False) -> np.ndarray:
        """Colour, grey, haze, noise, gamma, blur, JPEG: float [0, 1] HxWx3 -> uint8.

        The colour steps are all affine in RGB, so they are folded into one 3x3 matrix and offset (one
        pass over the pixels); gamma is a lookup table on the uint8 result.
        """
        a = self.appearance
        strength = 0.5 if mild else 1.0
        matrix, offset = _color_transform(rng, strength, float(image.mean()))
        if not mild and rng.random() < a.grey:
            matrix = matrix @ np.repeat(np.array([[0.299], [0.587], [0.114]], dtype=np.float32), 3, axis=1)
            offset = offset.mean() * np.ones(3, dtype=np.float32)
        if rng.random() < a.haze * strength:
            haze = rng.uniform(0.05, 0.35)
            matrix, offset = matrix * (1 - haze), offset * (1 - haze) + haze * rng.uniform(0.7, 0.95)
        out = image.reshape(-1, 3) @ matrix + offset
        sigma = rng.uniform(*a.noise_sigma) * strength
        if sigma > 0:
            out += rng.standard_normal(out.shape, dtype=np.float32) * sigma
        pixels = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8).reshape(image.shape)
        gamma = rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength)
        pixels = _gamma_table(gamma)[pixels]
        picture = Image.fromarray(pixels)
        if rng.random() < a.blur * strength:
            picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
        if rng.random() < a.jpeg:
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=int(rng.integers(30, 90)))
            picture = Image.open(buffer).convert("RGB")
        return np.asarray(picture)


def _as_sample(image: np.ndarray, mask: np.ndarray, text: str, kind: str) -> dict[str, Any]:
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0
    return {
        "image": normalize(pixels, IMAGENET_MEAN, IMAGENET_STD),
        "mask": torch.from_numpy(mask.astype(np.int64)),
        "text": text,
        "kind": kind,
    }


def _dihedral(
    image: np.ndarray, mask: np.ndarray, transpose: bool, flip_x: bool, flip_y: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Transpose, then mirror left-right and/or top-bottom (the convention of `expressions.moved`)."""
    if transpose:
        image, mask = image.transpose(1, 0, 2), mask.T
    if flip_x:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if flip_y:
        image, mask = image[::-1], mask[::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def _blend_texture(
    image: np.ndarray, objects: np.ndarray, texture: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Mix a texture into the background (shadows and roads stay partly visible); objects stay whole."""
    alpha = rng.uniform(0.4, 0.9)
    out = image * (1 - alpha) + texture * alpha
    out[objects] = image[objects]
    return out


def _recolor(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random channel gains and offset of an object's (N, 3) pixels: a new paint colour, same shading."""
    gains = rng.uniform(0.5, 1.6, size=3)
    return np.clip(pixels * gains + rng.uniform(-0.15, 0.15, size=3), 0, 1)


def _color_transform(rng: np.random.Generator, strength: float, mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Saturation, a small channel mix, contrast and brightness as ``x @ M + b`` (row-vector pixels)."""
    s = strength
    saturation = rng.uniform(1 - 0.6 * s, 1 + 0.4 * s)
    matrix = saturation * np.eye(3) + (1 - saturation) / 3 * np.ones((3, 3))
    matrix = matrix @ (np.eye(3) + rng.normal(0, 0.06 * s, size=(3, 3)))
    contrast = rng.uniform(1 - 0.35 * s, 1 + 0.35 * s)
    brightness = rng.uniform(1 - 0.3 * s, 1 + 0.3 * s)
    offset = np.full(3, mean * (brightness - contrast))
    return (matrix * contrast).astype(np.float32), offset.astype(np.float32)


def _gamma_table(gamma: float) -> np.ndarray:
    """uint8 -> uint8 lookup table of ``255 * (x / 255) ** gamma``."""
    return np.round(255 * (np.arange(256) / 255) ** gamma).astype(np.uint8)

"""Seeded synthetic referring scenes in the RRSIS-D (and JSONL) layout.

A scene is an aerial-looking background (`danet.datagen.terrain`) with objects (`danet.datagen.objects`):
a *focus* category with same-class distractors that differ in size and position, plus objects of
other categories. Ships sit on water, vehicles mostly on roads, everything else on land; objects
never overlap, so every instance mask is exact. Referring expressions come from the grammar in
`danet.datagen.expressions` and are used only when unambiguous for the scene (checked programmatically);
a plural expression's mask is the union of its objects.

Scene `i` of a spec depends only on (seed, i), so growing a dataset keeps earlier scenes. Splits are by
image. These are synthetic data, not RRSIS-D: the layout is the same, the content is generated.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tqdm import tqdm

from danet.data.corpus import (
    CorpusAnnotation,
    CorpusImage,
    CorpusRef,
    CorpusSentence,
    ReferringCorpus,
    write_image,
)
from danet.data.jsonl import write_jsonl
from danet.data.records import Segmentation, encode_mask, segmentation_area_bbox
from danet.data.rrsisd import write_rrsisd
from danet.datagen.expressions import (
    CATEGORIES,
    Expression,
    ObjectFacts,
    render,
    render_variants,
    unambiguous_expressions,
)
from danet.datagen.objects import MIN_LENGTH_PX, SIZE_RANGES, PlacedObject, Pose, paint, place, shape_model
from danet.datagen.terrain import Terrain, render_terrain

CATEGORY_IDS = {name: i + 1 for i, name in enumerate(CATEGORIES)}
_SCENE_ATTEMPTS = 20
_PLACEMENT_TRIES = 60
_GAP_PX = 2.0
_SENSOR_NOISE = 0.012


class SceneSpec(BaseModel):
    """How synthetic scenes are drawn. Ranges are inclusive (min, max)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int = Field(256, ge=48, description="square image side in pixels")
    seed: int = Field(0, ge=0)
    categories: tuple[str, ...] = CATEGORIES
    same_class: tuple[int, int] = Field(
        (1, 3), description="objects of the focus category (target + distractors)"
    )
    other_objects: tuple[int, int] = Field((1, 4), description="objects of other categories")
    water_probability: float = Field(
        0.5, ge=0, le=1, description="chance of a coast when ships are not the focus"
    )
    plural_probability: float = Field(0.2, ge=0, le=1, description="chance a ref is plural when one is valid")
    refs_per_image: int = Field(1, ge=1)
    sentences_per_ref: int = Field(2, ge=1)
    annotation_format: Literal["polygon", "rle", "mixed"] = Field(
        "mixed", description="mixed: odd ann_ids as polygons, even ones as compressed RLE"
    )

    @model_validator(mode="after")
    def _check(self) -> SceneSpec:
        unknown = [c for c in self.categories if c not in CATEGORY_IDS]
        if not self.categories or unknown:
            raise ValueError(f"categories must be a non-empty subset of {CATEGORIES}, got unknown {unknown}")
        for name, (lo, hi), floor in (
            ("same_class", self.same_class, 1),
            ("other_objects", self.other_objects, 0),
        ):
            if not floor <= lo <= hi:
                raise ValueError(f"{name} must satisfy {floor} <= min <= max, got ({lo}, {hi})")
        return self


@dataclass(frozen=True, slots=True)
class Referent:
    """What one ref points at: object indices, the expressions used, their sentences and the mask."""

    objects: tuple[int, ...]
    expressions: tuple[Expression, ...]
    sentences: tuple[str, ...]
    mask: np.ndarray


@dataclass(frozen=True, slots=True)
class SyntheticScene:
    """A rendered scene: RGB uint8 image, placed objects, refs, and the water surface."""

    image: np.ndarray
    objects: tuple[PlacedObject, ...]
    referents: tuple[Referent, ...]
    water: np.ndarray


def object_facts(objects: Sequence[PlacedObject], size: int) -> list[ObjectFacts]:
    """Category, area and normalized mask centroid of each object (what expressions talk about)."""
    facts = []
    for obj in objects:
        ys, xs = np.nonzero(obj.mask)
        facts.append(ObjectFacts(obj.category, len(xs), (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size))
    return facts


def generate_scene(spec: SceneSpec, index: int) -> SyntheticScene:
    """Scene `index` of `spec`; the same (spec, index) always gives the same scene."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0, index)))
    for _ in range(_SCENE_ATTEMPTS):
        scene = _attempt(spec, rng)
        if scene is not None:
            return scene
    raise RuntimeError(
        f"could not draw scene {index} with an unambiguous expression in {_SCENE_ATTEMPTS} attempts; "
        f"the image may be too small for the object counts of {spec}"
    )


def split_by_image(num_images: int, val_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """Assign each image to train/val/test (seeded); val and test get at least one image each when n >= 3."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must leave a train split"
        )
    n_val = round(num_images * val_fraction)
    n_test = round(num_images * test_fraction)
    if num_images >= 3:
        n_val, n_test = max(n_val, 1 if val_fraction else 0), max(n_test, 1 if test_fraction else 0)
    splits = ["val"] * n_val + ["test"] * n_test + ["train"] * (num_images - n_val - n_test)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,))).permutation(num_images)
    return [splits[i] for i in order]


def write_synthetic_dataset(
    root: Path,
    spec: SceneSpec,
    num_images: int,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    layouts: Sequence[str] = ("rrsisd", "jsonl"),
    progress: bool = False,
) -> ReferringCorpus:
    """Generate `num_images` scenes into `root`: `JPEGImages/` plus the requested layouts' index files.

    Layouts: "rrsisd" (`refs(unc).p`, `instances.json`) and "jsonl" (`refs_<split>.jsonl`). Default
    fractions mirror RRSIS-D's 70/10/20 split. Every object gets an annotation; a plural ref gets an
    extra annotation holding the union of its objects.
    """
    unknown = set(layouts) - {"rrsisd", "jsonl"}
    if num_images < 1 or unknown or not layouts:
        raise ValueError(
            f"need num_images >= 1 and layouts from ('rrsisd', 'jsonl'); got {num_images}, {layouts}"
        )
    root = Path(root)
    splits = split_by_image(num_images, val_fraction, test_fraction, spec.seed)
    corpus = ReferringCorpus(categories={i: name for name, i in CATEGORY_IDS.items()})
    size = spec.image_size
    sent_ids = itertools.count(1)
    for index in tqdm(range(num_images), desc="synthetic scenes", disable=not progress):
        scene = generate_scene(spec, index)
        image_id = index + 1
        file_name = f"{image_id:05d}.jpg"
        write_image(root, file_name, scene.image)
        corpus.images.append(CorpusImage(image_id=image_id, file_name=file_name, width=size, height=size))
        object_ann_ids = []
        for obj in scene.objects:
            object_ann_ids.append(_add_annotation(corpus, spec, image_id, obj.category, [obj], obj.mask))
        for referent in scene.referents:
            members = [scene.objects[i] for i in referent.objects]
            if len(members) == 1:
                ann_id = object_ann_ids[referent.objects[0]]
            else:
                ann_id = _add_annotation(corpus, spec, image_id, members[0].category, members, referent.mask)
            corpus.refs.append(
                CorpusRef(
                    ref_id=len(corpus.refs) + 1,
                    ann_id=ann_id,
                    image_id=image_id,
                    category_id=CATEGORY_IDS[members[0].category],
                    split=splits[index],
                    sentences=tuple(
                        CorpusSentence(sent_id=next(sent_ids), text=text) for text in referent.sentences
                    ),
                )
            )
    if "rrsisd" in layouts:
        write_rrsisd(corpus, root)
    if "jsonl" in layouts:
        write_jsonl(corpus, root)
    return corpus


def _add_annotation(
    corpus: ReferringCorpus,
    spec: SceneSpec,
    image_id: int,
    category: str,
    members: Sequence[PlacedObject],
    mask: np.ndarray,
) -> int:
    ann_id = len(corpus.annotations) + 1
    as_polygon = spec.annotation_format == "polygon" or (
        spec.annotation_format == "mixed" and ann_id % 2 == 1
    )
    segmentation: Segmentation = [m.flat_polygon() for m in members] if as_polygon else encode_mask(mask)
    area, bbox = segmentation_area_bbox(segmentation, spec.image_size, spec.image_size)
    corpus.annotations.append(
        CorpusAnnotation(
            ann_id=ann_id,
            image_id=image_id,
            category_id=CATEGORY_IDS[category],
            segmentation=segmentation,
            area=area,
            bbox=(bbox[0], bbox[1], bbox[2], bbox[3]),
        )
    )
    return ann_id


def _attempt(spec: SceneSpec, rng: np.random.Generator) -> SyntheticScene | None:
    size = spec.image_size
    focus = spec.categories[rng.integers(len(spec.categories))]
    water = focus == "ship" or ("ship" in spec.categories and rng.random() < spec.water_probability)
    roads = int(rng.integers(0, 3)) + (1 if focus == "vehicle" else 0)
    terrain = render_terrain(rng, size, water=water, roads=roads)

    placed: list[PlacedObject] = []
    for length in _group_lengths(
        rng, focus, int(rng.integers(spec.same_class[0], spec.same_class[1] + 1)), size
    ):
        _try_place(rng, focus, length, terrain, placed)
    if not placed:
        return None
    others = [c for c in spec.categories if c != focus and (water or c != "ship")]
    if others:
        for _ in range(rng.integers(spec.other_objects[0], spec.other_objects[1] + 1)):
            category = others[rng.integers(len(others))]
            _try_place(rng, category, _length(rng.random(), category, size), terrain, placed)

    facts = object_facts(placed, size)
    grouped = unambiguous_expressions(facts)
    referents = _choose_referents(rng, grouped, facts, focus, spec, placed)
    if not referents:
        return None
    image = terrain.image.copy()
    sun_angle = rng.uniform(0, 2 * np.pi)
    paint(image, placed, np.array([np.cos(sun_angle), np.sin(sun_angle)]), rng)
    image += rng.normal(0, _SENSOR_NOISE, size=image.shape).astype(np.float32)
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return SyntheticScene(
        image=pixels, objects=tuple(placed), referents=tuple(referents), water=terrain.water
    )


def _length(u: float, category: str, size: int) -> float:
    lo, hi = SIZE_RANGES[category]
    return max(MIN_LENGTH_PX[category], size * lo * (hi / lo) ** u)


def _group_lengths(rng: np.random.Generator, category: str, count: int, size: int) -> list[float]:
    """Lengths of the focus group; usually one object clearly smaller or larger than the rest."""
    if count >= 2 and rng.random() < 0.7:
        small_one = rng.random() < 0.5
        first = rng.uniform(0.0, 0.15) if small_one else rng.uniform(0.85, 1.0)
        rest = rng.uniform(0.6, 1.0, count - 1) if small_one else rng.uniform(0.0, 0.4, count - 1)
        positions = [first, *rest]
    else:
        positions = list(rng.uniform(0.0, 1.0, count))
    return [_length(u, category, size) for u in positions]


def _try_place(
    rng: np.random.Generator, category: str, length: float, terrain: Terrain, placed: list[PlacedObject]
) -> None:
    """Place one object by rejection sampling on its surface, away from the others; give up quietly."""
    size = terrain.image.shape[0]
    model = shape_model(category, rng)
    radius = length * (model.extent + model.height)
    if 2 * radius + 2 >= size:
        return
    for attempt in range(_PLACEMENT_TRIES):
        on_road = category == "vehicle" and terrain.road_lines and attempt < _PLACEMENT_TRIES // 2
        if on_road:
            road = terrain.road_lines[rng.integers(len(terrain.road_lines))]
            t = rng.uniform(-size, size)
            across = rng.uniform(-0.2, 0.2) * road.width
            x = road.point[0] + t * road.direction[0] - across * road.direction[1]
            y = road.point[1] + t * road.direction[1] + across * road.direction[0]
            angle = float(np.arctan2(road.direction[1], road.direction[0]) + np.pi * rng.integers(2))
        else:
            x, y = rng.uniform(radius + 1, size - radius - 1, size=2)
            angle = rng.uniform(0, 2 * np.pi)
        if not (radius + 1 <= x <= size - radius - 1 and radius + 1 <= y <= size - radius - 1):
            continue
        if any(np.hypot(x - o.pose.x, y - o.pose.y) < radius + o.radius + _GAP_PX for o in placed):
            continue
        obj = place(model, Pose(float(x), float(y), length, angle), size)
        if obj.mask.sum() < 4:
            return
        if category == "ship":
            fits = bool(terrain.water[obj.mask].all())
        else:
            fits = not terrain.water[obj.mask].any()
            if category != "vehicle":
                fits = fits and not terrain.roads[obj.mask].any()
        if fits:
            placed.append(obj)
            return


def _choose_referents(
    rng: np.random.Generator,
    grouped: dict[frozenset[int], list[Expression]],
    facts: Sequence[ObjectFacts],
    focus: str,
    spec: SceneSpec,
    placed: Sequence[PlacedObject],
) -> list[Referent]:
    """Pick refs (preferring the focus category) and up to `sentences_per_ref` expressions for each."""
    referents: list[Referent] = []
    pool = list(grouped)
    for _ in range(spec.refs_per_image):
        if not pool:
            break
        preferred = [g for g in pool if facts[min(g)].category == focus] or pool
        plural = [g for g in preferred if len(g) > 1]
        singular = [g for g in preferred if len(g) == 1]
        choices = plural if plural and (not singular or rng.random() < spec.plural_probability) else singular
        target = choices[rng.integers(len(choices))]
        pool.remove(target)
        expressions = grouped[target]
        # Favour expressions that use size/location words: they are the point of the distractors.
        weights = np.array([1.0 + e.modifiers for e in expressions])
        count = min(spec.sentences_per_ref, len(expressions))
        picked = rng.choice(len(expressions), size=count, replace=False, p=weights / weights.sum())
        chosen = tuple(expressions[i] for i in sorted(picked))
        sentences = tuple(render(e, int(rng.integers(render_variants(e)))) for e in chosen)
        indices = tuple(sorted(target))
        mask = np.zeros_like(placed[0].mask)
        for i in indices:
            mask |= placed[i].mask
        referents.append(Referent(objects=indices, expressions=chosen, sentences=sentences, mask=mask))
    return referents

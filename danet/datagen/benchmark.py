"""The referring benchmark: synthetic distractor scenes plus real crops, one dataset in the RRSIS-D layout.

`build_benchmark` writes, under one root:

- ``JPEGImages/``: synthetic scenes (``NNNNN.jpg``, `size` px square) and real crops at native size
  (``<source>-...-r<row>-c<col>.jpg``; the dataset loader resizes);
- ``refs(unc).p`` + ``instances.json`` (RRSIS-D layout) and ``refs_<split>.jsonl`` (JSONL layout);
- ``subsets.json``: sent_id -> names of the subsets the sentence belongs to (`danet.data.subsets` reads it);
- ``DATASET.md``: the dataset card (sources, licences, counts, how expressions were generated).

Every split is by image. Synthetic scenes use RRSIS-D's 70/10/20 split; the crops of each real source
are split 60/10/30 (at least one val and one test crop per source), so every source has test refs.
Synthetic ids start at 1; real image/annotation/ref/sentence ids start at `REAL_ID_START`.
Each ref has one annotation: its target mask (an object, or the union of a plural ref's objects),
stored as compressed RLE.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
from danet.data.records import encode_mask, segmentation_area_bbox
from danet.data.rrsisd import write_rrsisd
from danet.data.subsets import write_subsets
from danet.datagen.real import CROP_SIZES, LARGEST_RATIO, MIN_ROAD_FRACTION, SOURCES, load_real_crops
from danet.datagen.synthetic import CATEGORY_IDS, SceneSpec, generate_scene, split_by_image

CARD_FILE = "DATASET.md"
REAL_ID_START = 10_000_001
BENCHMARK_CATEGORIES = {**{i: name for name, i in CATEGORY_IDS.items()}, 6: "road", 7: "tree"}
SPLITS = ("train", "val", "test")
SYNTHETIC_FRACTIONS = (0.1, 0.2)  # val, test
REAL_FRACTIONS = (0.1, 0.3)  # val, test


@dataclass(frozen=True, slots=True)
class BuiltBenchmark:
    """What `build_benchmark` wrote: the corpus, each sentence's subsets, and sentence/image counts.

    `counts[subset][split]` = {"images": n, "refs": n, "sentences": n}.
    """

    root: Path
    corpus: ReferringCorpus
    subsets: dict[int, tuple[str, ...]]
    counts: dict[str, dict[str, dict[str, int]]]


def build_benchmark(
    out_dir: Path,
    *,
    seed: int = 0,
    synthetic_images: int = 1200,
    size: int = 256,
    sources: Sequence[str] = SOURCES,
    progress: bool = True,
) -> BuiltBenchmark:
    """Write the benchmark into `out_dir` (which must be missing or empty); see the module docstring.

    The same (seed, synthetic_images, size, sources) always writes the same annotations.
    """
    out_dir = require_empty_folder(out_dir, "benchmark output folder")
    if synthetic_images < 1:
        raise ValueError(f"synthetic_images must be >= 1, got {synthetic_images}")
    corpus = ReferringCorpus(categories=dict(BENCHMARK_CATEGORIES))
    subsets: dict[int, tuple[str, ...]] = {}
    _add_synthetic(
        corpus, subsets, out_dir, SceneSpec(image_size=size, seed=seed), synthetic_images, progress
    )
    if corpus.images[-1].image_id >= REAL_ID_START or corpus.refs[-1].sentences[-1].sent_id >= REAL_ID_START:
        raise ValueError(f"too many synthetic images ({synthetic_images}): ids would reach {REAL_ID_START}")
    _add_real(corpus, subsets, out_dir, sources, seed)
    write_layouts(corpus, subsets, out_dir)
    counts = subset_counts(corpus, subsets)
    (out_dir / CARD_FILE).write_text(
        dataset_card(counts, seed=seed, synthetic_images=synthetic_images, size=size), encoding="utf-8"
    )
    return BuiltBenchmark(root=out_dir, corpus=corpus, subsets=subsets, counts=counts)


def require_empty_folder(out_dir: Path, what: str) -> Path:
    """``out_dir`` as a Path; FileExistsError when it exists and holds anything (nothing is overwritten)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{what} {out_dir} is not empty; choose a new or empty folder")
    return out_dir


def write_layouts(corpus: ReferringCorpus, subsets: dict[int, tuple[str, ...]], out_dir: Path) -> None:
    """Write a corpus in both layouts (RRSIS-D and JSONL) and its ``subsets.json``."""
    write_rrsisd(corpus, out_dir)
    write_jsonl(corpus, out_dir)
    write_subsets(subsets, out_dir)


def count_table(counts: dict[str, dict[str, dict[str, int]]]) -> str:
    """The Markdown table of images / refs / sentences per subset and split of a dataset card."""
    rows = [
        f"| {name} | "
        + " | ".join(f"{c[s]['images']} / {c[s]['refs']} / {c[s]['sentences']}" for s in SPLITS)
        + " |"
        for name, c in counts.items()
    ]
    return "\n".join(["| subset | train | val | test |", "|---|---:|---:|---:|", *rows])


def subset_counts(
    corpus: ReferringCorpus, subsets: dict[int, tuple[str, ...]]
) -> dict[str, dict[str, dict[str, int]]]:
    """Images, refs and sentences per subset and split (plus an "all" subset)."""
    images: dict[tuple[str, str], set[int]] = {}
    refs: dict[tuple[str, str], set[int]] = {}
    sentences: Counter[tuple[str, str]] = Counter()
    for ref in corpus.refs:
        for sentence in ref.sentences:
            for name in ("all", *subsets[sentence.sent_id]):
                key = (name, ref.split)
                images.setdefault(key, set()).add(ref.image_id)
                refs.setdefault(key, set()).add(ref.ref_id)
                sentences[key] += 1
    names = list(dict.fromkeys(name for name, _ in images))
    return {
        name: {
            split: {
                "images": len(images.get((name, split), ())),
                "refs": len(refs.get((name, split), ())),
                "sentences": sentences[(name, split)],
            }
            for split in SPLITS
        }
        for name in names
    }


def split_crops(count: int, seed: int, source_index: int) -> list[str]:
    """Seeded 60/10/30 train/val/test assignment of one real source's crops (>= 1 val and test if n >= 3)."""
    val_fraction, test_fraction = REAL_FRACTIONS
    n_val = max(1, round(count * val_fraction)) if count >= 3 else 0
    n_test = max(1, round(count * test_fraction)) if count >= 2 else count
    splits = ["test"] * n_test + ["val"] * n_val + ["train"] * (count - n_val - n_test)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7, source_index)))
    return [splits[i] for i in rng.permutation(count)]


def _add_synthetic(
    corpus: ReferringCorpus,
    subsets: dict[int, tuple[str, ...]],
    root: Path,
    spec: SceneSpec,
    num_images: int,
    progress: bool,
) -> None:
    splits = split_by_image(num_images, *SYNTHETIC_FRACTIONS, spec.seed)
    ids = itertools.count(1)
    sent_ids = itertools.count(1)
    for index in tqdm(range(num_images), desc="synthetic scenes", disable=not progress):
        scene = generate_scene(spec, index)
        image_id = index + 1
        file_name = f"{image_id:05d}.jpg"
        write_image(root, file_name, scene.image)
        corpus.images.append(CorpusImage(image_id, file_name, spec.image_size, spec.image_size))
        for referent in scene.referents:
            category = scene.objects[referent.objects[0]].category
            # A distractor ref: the image has another object of the target's class outside the target.
            distractor = any(
                obj.category == category and i not in referent.objects for i, obj in enumerate(scene.objects)
            )
            names = ("synthetic", "synthetic-distractor") if distractor else ("synthetic",)
            ann_id = next(ids)
            add_ref(corpus, subsets, image_id, ann_id, category, referent.mask, splits[index])
            add_sentences(corpus, subsets, referent.sentences, [names] * len(referent.sentences), sent_ids)


def _add_real(
    corpus: ReferringCorpus,
    subsets: dict[int, tuple[str, ...]],
    root: Path,
    sources: Sequence[str],
    seed: int,
) -> None:
    image_ids = itertools.count(REAL_ID_START)
    ann_ids = itertools.count(REAL_ID_START)
    sent_ids = itertools.count(REAL_ID_START)
    for source in sources:
        crops = load_real_crops([source])
        if not crops:
            raise ValueError(f"real source {source!r} produced no crops with unambiguous expressions")
        splits = split_crops(len(crops), seed, SOURCES.index(source))
        for crop, split in zip(crops, splits, strict=True):
            image_id = next(image_ids)
            file_name = f"{crop.name}.jpg"
            write_image(root, file_name, crop.image)
            height, width = crop.image.shape[:2]
            corpus.images.append(CorpusImage(image_id, file_name, width, height))
            for ref in crop.refs:
                add_ref(corpus, subsets, image_id, next(ann_ids), ref.category, ref.mask, split)
                names = [("real", source, f"{source}/{kind}") for kind in ref.kinds]
                add_sentences(corpus, subsets, ref.sentences, names, sent_ids)


def add_ref(
    corpus: ReferringCorpus,
    subsets: dict[int, tuple[str, ...]],
    image_id: int,
    ann_id: int,
    category: str,
    mask: np.ndarray,
    split: str,
) -> None:
    """Append the target annotation and an (as yet sentence-less) ref; `add_sentences` completes it."""
    category_id = next(k for k, v in BENCHMARK_CATEGORIES.items() if v == category)
    segmentation = encode_mask(mask)
    area, bbox = segmentation_area_bbox(segmentation, *mask.shape)
    if area == 0:
        raise ValueError(f"empty target mask for ann_id {ann_id} on image_id {image_id}")
    corpus.annotations.append(
        CorpusAnnotation(
            ann_id, image_id, category_id, segmentation, area, (bbox[0], bbox[1], bbox[2], bbox[3])
        )
    )
    corpus.refs.append(CorpusRef(ann_id, ann_id, image_id, category_id, split, ()))


def add_sentences(
    corpus: ReferringCorpus,
    subsets: dict[int, tuple[str, ...]],
    texts: Sequence[str],
    names: Sequence[Iterable[str]],
    sent_ids: Iterable[int],
) -> None:
    """Give the last ref its sentences and record each sentence's subsets."""
    ids = iter(sent_ids)
    sentences = []
    for text, sentence_names in zip(texts, names, strict=True):
        sentence = CorpusSentence(next(ids), text)
        sentences.append(sentence)
        subsets[sentence.sent_id] = tuple(sentence_names)
    last = corpus.refs[-1]
    corpus.refs[-1] = CorpusRef(
        last.ref_id, last.ann_id, last.image_id, last.category_id, last.split, tuple(sentences)
    )


def dataset_card(
    counts: dict[str, dict[str, dict[str, int]]], *, seed: int, synthetic_images: int, size: int
) -> str:
    """The DATASET.md text: provenance, licences, generation rules, and the count table."""
    b, r, n = (CROP_SIZES[s] for s in ("spacenet-buildings", "spacenet-roads", "neon-trees"))
    table = count_table(counts)
    return f"""# Lookout referring benchmark

Written by `danet benchmark-data --seed {seed} --synthetic-images {synthetic_images} --size {size}`
(`danet.datagen.benchmark.build_benchmark`); the same command writes the same annotations.

**All expressions are GENERATED from geometry, not human-written.** Synthetic images are generated
too. Real images come with real masks (trees: boxes as masks), but their sentences are produced by
rules from those masks.

## Layout

RRSIS-D layout (`refs(unc).p`, `instances.json`, `JPEGImages/`) and the JSONL layout
(`refs_<split>.jsonl`), read by `danet.data.dataset.load_records`. `subsets.json` maps each sent_id to
its subsets (`danet.data.subsets.subset_sent_ids`). Splits are by image: no image is in two splits.
Synthetic ids start at 1, real image/annotation/ref/sentence ids at {REAL_ID_START}.

## Sources and licences

- **synthetic** ({synthetic_images} scenes, {size}x{size}, `danet.datagen.synthetic`, seed {seed}):
  airplanes, storage tanks, ships, vehicles and buildings with same-class distractors; expressions
  over {{small, large}} x {{left, right, top, bottom, upper left, upper right, lower left, lower right,
  center}} and plural "all X", each checked to be unambiguous for its scene. Licence: generated by
  this project.
- **spacenet-buildings**: solaris 0.4.0 `sample_geotiff.tif` (SpaceNet, 900x900, 0.5 m WorldView
  panchromatic, EPSG:32616; the band replicated to RGB with the 2-98 % stretch `danet predict` uses)
  and `sample_inst_mask.tif` (43 building instance masks); {b}x{b} crops.
  Licence: SpaceNet, CC BY-SA 4.0.
- **spacenet-roads**: solaris `road_mask_input.tif` (SpaceNet, 1300x1300, EPSG:4326, 11-bit single
  band, same stretch) and `sample_road_raster_mask.tif`; {r}x{r} crops with at least
  {MIN_ROAD_FRACTION:.0%} road pixels. Licence: SpaceNet, CC BY-SA 4.0.
- **neon-trees**: deepforest 2.1.0 NEON 0.1 m RGB tiles `OSBS_029`, `SOAP_061`,
  `2019_YELL_2_541000_4977000_image_crop` and `2019_YELL_2_528000_4978000_image_crop2` with their
  Pascal VOC tree boxes; {n}x{n} crops; **boxes as masks**. Licence: shipped in the
  deepforest package, whose stated licence is MIT; the imagery is NEON AOP data, under NEON's data
  usage policy.

## How real expressions are generated

- "all buildings" / "all trees": union of the visible parts of every instance in the crop (two or more).
- "the building": the only building in the crop, wholly inside it.
- "the largest building" / "the largest tree": only if the instance with the largest visible area lies
  wholly inside the crop and is at least {LARGEST_RATIO}x the visible area of the next largest.
- "the building on the left / in the upper left corner / ... / in the center": only if exactly one
  building's visible-part centroid satisfies the location under both strict and loose thresholds
  (the synthetic grammar's unambiguity check, `danet.datagen.expressions.referent`) and that building
  lies wholly inside the crop.
- "the roads" / "all roads": the crop's road mask.

Sentences with the same target form one ref. Crops are non-overlapping; the remainder at a source's
right/bottom edge is dropped; crops without any unambiguous expression are left out.

## Counts (images / refs / sentences)

Subsets: `synthetic`, `synthetic-distractor` (the image holds another object of the target's class
outside the target), `real`, one per real source, and `<source>/<rule>` (rule: all, largest,
location, single).

{table}

## Known limits

- The real part is small (one SpaceNet building scene, one road scene, four NEON tiles), so real-subset
  numbers have wide uncertainty; crops of one scene appear in different splits (no pixel is shared,
  but the scene is).
- Tree masks are axis-aligned boxes, not crowns. Road masks are SpaceNet's rasterised, buffered centre
  lines: narrower than the paved surface in places.
- Real sentences come from a handful of templates; synthetic sentences from a small grammar. Neither
  measures understanding of free-form human language.
"""

"""The referring benchmark builder: splits, subsets, and masks that match their generated sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from danet.data.dataset import load_records, open_dataset
from danet.data.records import ReferringRecord
from danet.data.subsets import read_subsets, subset_sent_ids
from danet.datagen.benchmark import CARD_FILE, REAL_ID_START, build_benchmark, split_crops
from danet.datagen.expressions import parse
from danet.datagen.real import LARGEST_RATIO, SOURCES, RealCrop, load_real_crops
from danet.datagen.synthetic import SceneSpec, generate_scene

SYNTHETIC_IMAGES = 12
SIZE = 96


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "data"
    build_benchmark(out, seed=3, synthetic_images=SYNTHETIC_IMAGES, size=SIZE, progress=False)
    return out


@pytest.fixture(scope="module")
def records(root: Path) -> dict[str, list[ReferringRecord]]:
    return {split: load_records(root, split) for split in ("train", "val", "test")}


@pytest.fixture(scope="module")
def crops() -> dict[str, RealCrop]:
    return {crop.name: crop for crop in load_real_crops()}


def test_splits_are_disjoint_by_image(records: dict[str, list[ReferringRecord]]) -> None:
    images = {split: {r.image_id for r in recs} for split, recs in records.items()}
    files = {split: {r.image_path.name for r in recs} for split, recs in records.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not images[a] & images[b]
        assert not files[a] & files[b]
    assert all(images.values())


def test_every_source_has_test_refs(root: Path, records: dict[str, list[ReferringRecord]]) -> None:
    test_ids = {r.sent_id for r in records["test"]}
    for name in ("synthetic", "synthetic-distractor", *SOURCES, "spacenet-buildings/all"):
        assert subset_sent_ids(root, name) & test_ids, name


def test_subsets_cover_every_sentence_and_id_ranges_are_distinct(
    root: Path, records: dict[str, list[ReferringRecord]]
) -> None:
    everything = [r for recs in records.values() for r in recs]
    subsets = read_subsets(root)
    assert set(subsets) == {r.sent_id for r in everything}
    real = subset_sent_ids(root, "real")
    assert real == set().union(*(subset_sent_ids(root, s) for s in SOURCES))
    assert not real & subset_sent_ids(root, "synthetic")
    assert subset_sent_ids(root, "synthetic-distractor") <= subset_sent_ids(root, "synthetic")
    for record in everything:
        is_real = record.sent_id in real
        assert (record.image_id >= REAL_ID_START) == is_real
        assert (record.ann_id >= REAL_ID_START) == is_real
    with pytest.raises(KeyError, match="no subset"):
        subset_sent_ids(root, "no-such-subset")
    assert "GENERATED from geometry, not human-written" in (root / CARD_FILE).read_text()


def test_masks_are_non_empty_and_sized_like_their_images(records: dict[str, list[ReferringRecord]]) -> None:
    for record in (r for recs in records.values() for r in recs):
        mask = record.decode_mask()
        assert mask.sum() > 0, record.sentence
        with Image.open(record.image_path) as image:
            assert image.size == (record.width, record.height)


def test_real_masks_match_their_sentences(
    root: Path, records: dict[str, list[ReferringRecord]], crops: dict[str, RealCrop]
) -> None:
    real = subset_sent_ids(root, "real")
    checked = set()
    for record in (r for recs in records.values() for r in recs if r.sent_id in real):
        crop = crops[record.image_path.stem]
        mask = record.decode_mask().astype(bool)
        instances = [m.astype(bool) for m in crop.instances]
        sentence = record.sentence
        if sentence in ("all buildings", "all trees", "the roads", "all roads"):
            assert np.array_equal(mask, np.logical_or.reduce(instances))
        elif sentence.startswith("the largest"):
            areas = sorted((int(m.sum()), i) for i, m in enumerate(instances))
            (_, best), (second_area, _) = areas[-1], areas[-2]
            assert np.array_equal(mask, instances[best])
            assert not crop.cut[best]
            assert mask.sum() >= LARGEST_RATIO * second_area
        else:
            _check_location(parse(sentence).location, mask, crop)
        checked.add(sentence.split()[1])
    assert {"largest", "buildings", "trees", "roads", "building"} <= checked


def _check_location(location: str | None, mask: np.ndarray, crop: RealCrop) -> None:
    """The target is one whole instance inside the strict region; no other is in the loose one."""
    instances = [m.astype(bool) for m in crop.instances]
    matches = [i for i, m in enumerate(instances) if np.array_equal(m, mask)]
    assert len(matches) == 1
    for i, instance in enumerate(instances):
        ys, xs = np.nonzero(instance)
        x, y = (xs.mean() + 0.5) / mask.shape[1], (ys.mean() + 0.5) / mask.shape[0]
        if i == matches[0]:
            assert not crop.cut[i]
            assert _in_region(location, x, y, side=0.40, center=0.15)
        else:
            assert not _in_region(location, x, y, side=0.55, center=0.25)


def _in_region(location: str | None, x: float, y: float, side: float, center: float) -> bool:
    if location is None:
        return True
    if location == "center":
        return max(abs(x - 0.5), abs(y - 0.5)) < center
    tests = {"left": x < side, "right": x > 1 - side, "top": y < side, "bottom": y > 1 - side}
    words = location.replace("upper", "top").replace("lower", "bottom").split()
    return all(tests[w] for w in words)


def test_synthetic_masks_and_distractor_flags_match_the_scenes(
    root: Path, records: dict[str, list[ReferringRecord]]
) -> None:
    distractor = subset_sent_ids(root, "synthetic-distractor")
    spec = SceneSpec(image_size=SIZE, seed=3)
    synthetic = [r for recs in records.values() for r in recs if r.image_id < REAL_ID_START]
    assert len({r.image_id for r in synthetic}) == SYNTHETIC_IMAGES
    for record in synthetic:
        scene = generate_scene(spec, record.image_id - 1)
        mask = record.decode_mask().astype(bool)
        targets = [i for i, o in enumerate(scene.objects) if (o.mask & mask).any()]
        assert np.array_equal(mask, np.logical_or.reduce([scene.objects[i].mask for i in targets]))
        category = scene.objects[targets[0]].category
        assert parse(record.sentence).category == category
        others = [o for i, o in enumerate(scene.objects) if i not in targets and o.category == category]
        assert (record.sent_id in distractor) == bool(others)


def test_layouts_agree_and_the_dataset_loads(root: Path, records: dict[str, list[ReferringRecord]]) -> None:
    jsonl = load_records(root, "test", layout="jsonl")
    assert {r.sent_id for r in jsonl} == {r.sent_id for r in records["test"]}
    dataset = open_dataset(root, "test", 64)
    sample = dataset[len(dataset) - 1]
    assert sample["image"].shape == (3, 64, 64)
    assert sample["mask"].shape == (64, 64)
    assert int(sample["mask"].sum()) > 0


def test_build_is_deterministic_and_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    a = build_benchmark(
        tmp_path / "a", seed=1, synthetic_images=3, size=64, sources=("spacenet-roads",), progress=False
    )
    b = build_benchmark(
        tmp_path / "b", seed=1, synthetic_images=3, size=64, sources=("spacenet-roads",), progress=False
    )
    for name in ("instances.json", "refs(unc).p", "subsets.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.counts == b.counts
    with pytest.raises(FileExistsError, match="not empty"):
        build_benchmark(tmp_path / "a", synthetic_images=3, size=64, progress=False)


def test_split_crops_gives_every_source_val_and_test() -> None:
    for count in (3, 9, 10, 145):
        splits = split_crops(count, seed=0, source_index=0)
        assert len(splits) == count
        assert {"train", "val", "test"} <= set(splits)
        assert splits.count("test") == max(1, round(0.3 * count))

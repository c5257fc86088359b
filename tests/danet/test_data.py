"""Data loaders: COCO mask decoding, the RRSIS-D and JSONL layouts, the torch dataset, the fixture."""

from __future__ import annotations

import ast
import importlib.util
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import danet.data
from danet.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PhotometricJitter,
    ReferringDataset,
    decode_segmentation,
    detect_layout,
    encode_mask,
    load_records,
    open_dataset,
    read_jsonl,
    read_rrsisd,
)

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "rrsisd_tiny"
SPLITS = ("train", "val", "test")


def _copy_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "rrsisd"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("generate.py", "__pycache__"))
    return root


# --- mask decoding ---------------------------------------------------------------------------------


def test_polygon_square_decodes_to_its_pixels():
    mask = decode_segmentation([[0, 0, 4, 0, 4, 4, 0, 4]], 5, 5)
    expected = np.zeros((5, 5), np.uint8)
    expected[:4, :4] = 1
    np.testing.assert_array_equal(mask, expected)


def test_uncompressed_rle_counts_are_column_major():
    # Column-major runs: 3 zeros (column 0), 2 ones (rows 0-1 of column 1), 4 zeros.
    mask = decode_segmentation({"size": [3, 3], "counts": [3, 2, 4]}, 3, 3)
    expected = np.zeros((3, 3), np.uint8)
    expected[0:2, 1] = 1
    np.testing.assert_array_equal(mask, expected)


def test_compressed_rle_round_trip_with_string_counts():
    rng = np.random.default_rng(0)
    mask = (rng.random((17, 23)) > 0.6).astype(np.uint8)
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str)
    assert rle["size"] == [17, 23]
    np.testing.assert_array_equal(decode_segmentation(json.loads(json.dumps(rle)), 17, 23), mask)


def test_several_parts_are_merged_by_union():
    a = np.zeros((6, 6), np.uint8)
    a[0:3, 0:3] = 1
    b = np.zeros((6, 6), np.uint8)
    b[2:5, 2:5] = 1  # overlaps a at (2, 2)
    np.testing.assert_array_equal(decode_segmentation([encode_mask(a), encode_mask(b)], 6, 6), a | b)
    polygons = [[0, 0, 3, 0, 3, 3, 0, 3], [2, 2, 5, 2, 5, 5, 2, 5]]
    np.testing.assert_array_equal(decode_segmentation(polygons, 6, 6), a | b)


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        ([[0, 0, 4, 4]], "polygon 0"),
        ([], "non-empty"),
        ({"size": [4, 4], "counts": "0"}, r"size \[4, 4\] but the image is \[5, 5\]"),
        ({"size": [5, 5], "counts": [3, 2]}, "sum to 5, expected 25"),
        ({"counts": [25]}, "needs 'size' and 'counts'"),
    ],
)
def test_bad_segmentations_are_rejected_with_a_reason(segmentation, message):
    with pytest.raises(ValueError, match=message):
        decode_segmentation(segmentation, 5, 5, context="ann_id 7")


# --- RRSIS-D layout (the fixture is read with the real-dataset loader) -----------------------------


def test_fixture_splits_are_disjoint_by_image_and_cover_all_three():
    records = {split: read_rrsisd(FIXTURE, split) for split in SPLITS}
    assert all(records[split] for split in SPLITS)
    images = {split: {r.image_id for r in recs} for split, recs in records.items()}
    assert not images["train"] & images["val"]
    assert not images["train"] & images["test"]
    assert not images["val"] & images["test"]
    sent_ids = [r.sent_id for recs in records.values() for r in recs]
    assert len(sent_ids) == len(set(sent_ids))


def test_fixture_records_have_masks_matching_their_images():
    kinds = set()
    for split in SPLITS:
        for record in read_rrsisd(FIXTURE, split):
            mask = record.decode_mask()
            with Image.open(record.image_path) as image:
                assert image.size == (record.width, record.height)
            assert mask.shape == (record.height, record.width)
            assert set(np.unique(mask)) == {0, 1}
            assert record.sentence
            assert record.category
            kinds.add(type(record.segmentation).__name__)
    # The fixture exercises both annotation encodings of instances.json.
    assert kinds == {"list", "dict"}


def test_refs_pickle_has_refer_fields():
    with open(FIXTURE / "refs(unc).p", "rb") as f:
        refs = pickle.load(f)
    ref = refs[0]
    assert {"ref_id", "ann_id", "image_id", "split", "category_id", "sentences", "sent_ids"} <= set(ref)
    sentence = ref["sentences"][0]
    assert {"sent_id", "raw", "sent", "tokens"} <= set(sentence)
    assert sentence["tokens"] == sentence["sent"].split()
    assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]


def test_rmsin_repository_layout_is_found(tmp_path):
    root = tmp_path / "refer" / "data"
    (root / "rrsisd").mkdir(parents=True)
    shutil.copy(FIXTURE / "refs(unc).p", root / "rrsisd")
    shutil.copy(FIXTURE / "instances.json", root / "rrsisd")
    shutil.copytree(FIXTURE / "JPEGImages", root / "images" / "rrsisd" / "JPEGImages")
    flat = read_rrsisd(FIXTURE, "train")
    nested = read_rrsisd(root, "train")
    assert [(r.sent_id, r.sentence, r.image_path.name) for r in nested] == [
        (r.sent_id, r.sentence, r.image_path.name) for r in flat
    ]
    assert all(r.image_path.is_file() for r in nested)


def test_missing_instances_file_is_named(tmp_path):
    root = _copy_fixture(tmp_path)
    (root / "instances.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"instances\.json"):
        read_rrsisd(root, "train")


def test_missing_refs_file_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"refs\(unc\)\.p"):
        read_rrsisd(tmp_path / "empty", "train")


def test_ref_pointing_at_missing_annotation_names_ids(tmp_path):
    root = _copy_fixture(tmp_path)
    with open(root / "refs(unc).p", "rb") as f:
        refs = pickle.load(f)
    target = next(r for r in refs if r["split"] == "val")
    target["ann_id"] = 999
    with open(root / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f)
    with pytest.raises(ValueError, match=rf"ref_id {target['ref_id']} points at ann_id 999"):
        read_rrsisd(root, "val")


def test_ref_pointing_at_missing_image_names_ids(tmp_path):
    root = _copy_fixture(tmp_path)
    instances = json.loads((root / "instances.json").read_text())
    with open(root / "refs(unc).p", "rb") as f:
        target = next(r for r in pickle.load(f) if r["split"] == "test")
    instances["images"] = [i for i in instances["images"] if i["id"] != target["image_id"]]
    (root / "instances.json").write_text(json.dumps(instances))
    with pytest.raises(ValueError, match=rf"image_id {target['image_id']}, not in"):
        read_rrsisd(root, "test")


def test_missing_image_file_is_named(tmp_path):
    root = _copy_fixture(tmp_path)
    record = read_rrsisd(root, "val")[0]
    record.image_path.unlink()
    with pytest.raises(FileNotFoundError, match=record.image_path.name):
        read_rrsisd(root, "val")
    # Annotation-only work (scoring) does not need the images.
    assert read_rrsisd(root, "val", require_images=False)


def test_unknown_split_lists_available_ones():
    with pytest.raises(ValueError, match=r"split 'testA'.*\['test', 'train', 'val'\]"):
        read_rrsisd(FIXTURE, "testA")


def test_refs_pickle_with_objects_is_refused(tmp_path):
    root = _copy_fixture(tmp_path)
    with open(root / "refs(unc).p", "wb") as f:
        pickle.dump([{"ref_id": 1, "when": Path("x")}], f)
    with pytest.raises(pickle.UnpicklingError, match="only lists, dicts"):
        read_rrsisd(root, "train")


# --- JSONL variant ---------------------------------------------------------------------------------


def test_jsonl_and_rrsisd_layouts_give_the_same_records():
    for split in SPLITS:
        pickled = read_rrsisd(FIXTURE, split)
        lines = read_jsonl(FIXTURE, split)
        assert [(r.sent_id, r.ref_id, r.ann_id, r.image_id, r.sentence, r.category) for r in lines] == [
            (r.sent_id, r.ref_id, r.ann_id, r.image_id, r.sentence, r.category) for r in pickled
        ]
        for a, b in zip(lines, pickled, strict=True):
            assert a.image_path == b.image_path
            np.testing.assert_array_equal(a.decode_mask(), b.decode_mask())


def test_public_style_jsonl_line_without_sent_id(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "JPEGImages" / "00110.jpg")
    mask = np.zeros((6, 8), np.uint8)
    mask[1:3, 2:5] = 1
    line = {
        "split": "val",
        "image_id": 110,
        "sent": "The green and brown baseball field",
        "file_name": "00110.jpg",
        "category_id": 4,
        "category_name": "baseballfield",
        "ann_id": 110,
        "bbox": [2, 1, 5, 3],
        "segmentation": [encode_mask(mask)],
        "area": 6,
    }
    other = {**line, "split": "train", "image_id": 111}
    (tmp_path / "rrsisd_val.jsonl").write_text(json.dumps(other) + "\n" + json.dumps(line) + "\n")
    (record,) = read_jsonl(tmp_path, "val")
    assert record.sent_id == 1  # second line read: keyed by line position
    assert (record.ref_id, record.ann_id, record.image_id) == (110, 110, 110)
    assert record.category == "baseballfield"
    assert (record.height, record.width) == (6, 8)
    np.testing.assert_array_equal(record.decode_mask(), mask)


def test_jsonl_errors_name_file_and_line(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "bad.jsonl").write_text('{"split": "val", "image_id": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: missing \['file_name', 'segmentation', 'sent'\]"):
        read_jsonl(tmp_path, "val")


# --- layout detection and the torch dataset --------------------------------------------------------


def test_detect_layout(tmp_path):
    assert detect_layout(FIXTURE) == "rrsisd"
    jsonl_only = tmp_path / "jsonl"
    jsonl_only.mkdir()
    shutil.copy(FIXTURE / "refs_val.jsonl", jsonl_only)
    assert detect_layout(jsonl_only) == "jsonl"
    assert detect_layout(jsonl_only / "refs_val.jsonl") == "jsonl"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither"):
        detect_layout(tmp_path / "empty")


def test_dataset_sample_follows_the_contract():
    dataset = open_dataset(FIXTURE, "train", 64)
    record = dataset.records[0]
    sample = dataset[0]
    assert set(sample) == {"image", "mask", "text", "sent_id", "image_id"}
    assert sample["image"].dtype == torch.float32
    assert sample["image"].shape == (3, 64, 64)
    assert sample["mask"].dtype == torch.int64
    assert sample["mask"].shape == (64, 64)
    assert set(sample["mask"].unique().tolist()) == {0, 1}
    assert (sample["text"], sample["sent_id"], sample["image_id"]) == (
        record.sentence,
        record.sent_id,
        record.image_id,
    )
    # Bilinear image resize then ImageNet normalization, as LAVT.
    with Image.open(record.image_path) as image:
        resized = (
            np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), np.float32) / 255
        )
    expected = (resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(sample["image"].permute(1, 2, 0).numpy(), expected, atol=1e-5)
    # Nearest mask resize: same as PIL nearest on the decoded mask.
    nearest = Image.fromarray(record.decode_mask()).resize((64, 64), Image.Resampling.NEAREST)
    np.testing.assert_array_equal(sample["mask"].numpy(), np.asarray(nearest))


def test_default_collate_batches_texts_as_a_list():
    loader = DataLoader(open_dataset(FIXTURE, "train", 32, mean=(0.5,) * 3, std=(0.5,) * 3), batch_size=3)
    batch = next(iter(loader))
    assert batch["image"].shape == (3, 3, 32, 32)
    assert batch["mask"].shape == (3, 32, 32)
    assert isinstance(batch["text"], list)
    assert len(batch["text"]) == 3
    assert batch["image"].min() >= -1.0
    assert batch["image"].max() <= 1.0


def test_jsonl_layout_through_open_dataset_matches():
    a = open_dataset(FIXTURE, "val", 32, layout="jsonl")[0]
    b = open_dataset(FIXTURE, "val", 32, layout="rrsisd")[0]
    assert a["text"] == b["text"]
    assert torch.equal(a["image"], b["image"])
    assert torch.equal(a["mask"], b["mask"])


def test_photometric_jitter_changes_colours_only():
    records = load_records(FIXTURE, "train")
    plain = ReferringDataset(records, 48)[0]
    torch.manual_seed(0)
    jittered = ReferringDataset(records, 48, augment=PhotometricJitter(0.3, 0.3, 0.3))[0]
    assert torch.equal(plain["mask"], jittered["mask"])
    assert not torch.allclose(plain["image"], jittered["image"])
    still = ReferringDataset(records, 48, augment=PhotometricJitter(0.0, 0.0, 0.0))[0]
    torch.testing.assert_close(still["image"], plain["image"])


def test_photometric_jitter_never_moves_pixels():
    # Jitter commutes with any rearrangement of pixels (here a left-right flip), so it cannot change
    # where anything is, and "left"/"right" stay true.
    image = torch.rand(3, 16, 16)
    jitter = PhotometricJitter(0.3, 0.3, 0.3)
    torch.manual_seed(1)
    a = jitter(image).flip(-1)
    torch.manual_seed(1)
    b = jitter(image.flip(-1))
    torch.testing.assert_close(a, b)


def test_image_and_annotation_size_mismatch_is_reported(tmp_path):
    root = _copy_fixture(tmp_path)
    record = read_rrsisd(root, "val")[0]
    Image.new("RGB", (10, 12)).save(record.image_path)
    with pytest.raises(ValueError, match=r"is 10x12 but the mask .* is 96x96"):
        open_dataset(root, "val", 32)[0]


# --- the fixture is reproducible from its checked-in generator -------------------------------------


def test_fixture_generator_reproduces_checked_in_files(tmp_path):
    spec = importlib.util.spec_from_file_location("rrsisd_tiny_generate", FIXTURE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp_path)

    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    checked_in = sorted(
        p.relative_to(FIXTURE) for p in FIXTURE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
    )
    assert generated == checked_in
    assert json.loads((tmp_path / "instances.json").read_text()) == json.loads(
        (FIXTURE / "instances.json").read_text()
    )
    with open(tmp_path / "refs(unc).p", "rb") as a, open(FIXTURE / "refs(unc).p", "rb") as b:
        assert pickle.load(a) == pickle.load(b)
    for path in FIXTURE.glob("*.jsonl"):
        assert (tmp_path / path.name).read_text() == path.read_text()
    for path in (FIXTURE / "JPEGImages").iterdir():
        # Compare decoded pixels, not bytes: another libjpeg build may encode the same scene a little
        # differently, which is not a change of the fixture.
        with Image.open(tmp_path / "JPEGImages" / path.name) as a, Image.open(path) as b:
            new, old = np.asarray(a, np.int16), np.asarray(b, np.int16)
        assert new.shape == old.shape
        assert np.abs(new - old).max() <= 3


# --- package boundary --------------------------------------------------------------------------------


def test_readers_never_import_the_generators():
    # danet.datagen writes datasets through danet.data; the readers must not depend on the generators.
    for path in Path(danet.data.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        modules |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert not [m for m in modules if m.split(".")[:2] == ["danet", "datagen"]], path.name

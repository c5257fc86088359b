"""Synthetic referring scenes: determinism, exact masks, unambiguous expressions, dataset output."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from pydantic import ValidationError

from danet.data import read_jsonl, read_rrsisd
from danet.datagen.expressions import (
    CATEGORIES,
    LOCATIONS,
    SIZES,
    Expression,
    ObjectFacts,
    parse,
    referent,
    render,
    render_variants,
    unambiguous_expressions,
)
from danet.datagen.synthetic import (
    SceneSpec,
    generate_scene,
    object_facts,
    split_by_image,
    write_synthetic_dataset,
)

SMALL = SceneSpec(image_size=128, seed=7)


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(SMALL, i) for i in range(30)]


# --- expression grammar and meaning ---------------------------------------------------------------


def _all_expressions():
    for category in CATEGORIES:
        for location in (None, *LOCATIONS):
            yield Expression(category, plural=True, location=location)
            for size in (None, *SIZES):
                yield Expression(category, size=size, location=location)


def test_every_expression_renders_and_parses_back():
    texts = set()
    for expression in _all_expressions():
        for variant in range(render_variants(expression)):
            text = render(expression, variant)
            assert parse(text) == expression
            texts.add(text)
    assert "the small storage tank on the right" in texts
    assert "all ships" in texts
    assert "the large airplane in the upper left corner" in texts


@pytest.mark.parametrize("text", ["the red ship", "all small ships", "ship on the left", "the ship above"])
def test_sentences_outside_the_grammar_are_rejected(text):
    with pytest.raises(ValueError, match="not a synthetic referring expression"):
        parse(text)


def test_small_storage_tank_on_the_right_needs_exactly_one_match():
    tanks = [
        ObjectFacts("storage tank", 100, 0.85, 0.2),  # small, right
        ObjectFacts("storage tank", 400, 0.80, 0.8),  # large, right
        ObjectFacts("storage tank", 120, 0.15, 0.5),  # small, left
        ObjectFacts("ship", 300, 0.5, 0.5),
    ]
    assert referent(parse("the small storage tank on the right"), tanks) == {0}
    assert referent(parse("the large storage tank"), tanks) == {1}
    assert referent(parse("the storage tank on the right"), tanks) is None  # two on the right
    assert referent(parse("the small storage tank"), tanks) is None  # two small ones
    assert referent(parse("all storage tanks on the right"), tanks) == {0, 1}
    assert referent(parse("all storage tanks"), tanks) == {0, 1, 2}
    assert referent(parse("the ship"), tanks) == {3}
    assert referent(parse("the ship in the middle"), tanks) == {3}
    assert referent(parse("all ships"), tanks) is None  # a plural needs two or more
    assert referent(parse("the small ship"), tanks) is None  # a lone object is neither small nor large


def test_objects_near_a_boundary_make_an_expression_ambiguous():
    # x = 0.5 is not clearly "left", but not clearly outside it either: the expression is not used.
    objects = [ObjectFacts("vehicle", 50, 0.2, 0.5), ObjectFacts("vehicle", 50, 0.5, 0.5)]
    assert referent(parse("the vehicle on the left"), objects) is None
    objects[1] = ObjectFacts("vehicle", 50, 0.7, 0.5)
    assert referent(parse("the vehicle on the left"), objects) == {0}
    # Areas 100 and 160 are too close for "small"/"large"; 100 and 300 are not.
    assert (
        referent(
            parse("the small ship"), [ObjectFacts("ship", 100, 0.2, 0.2), ObjectFacts("ship", 160, 0.8, 0.8)]
        )
        is None
    )
    assert referent(
        parse("the small ship"), [ObjectFacts("ship", 100, 0.2, 0.2), ObjectFacts("ship", 300, 0.8, 0.8)]
    ) == {0}


def test_unambiguous_expressions_are_grouped_by_referent():
    objects = [ObjectFacts("building", 200, 0.2, 0.2), ObjectFacts("building", 600, 0.8, 0.8)]
    grouped = unambiguous_expressions(objects)
    assert set(grouped) == {frozenset({0}), frozenset({1}), frozenset({0, 1})}
    assert Expression("building", size="small") in grouped[frozenset({0})]
    assert Expression("building", location="lower right") in grouped[frozenset({1})]
    assert Expression("building", plural=True) in grouped[frozenset({0, 1})]


# --- scenes ---------------------------------------------------------------------------------------


def test_scene_is_deterministic_per_seed_and_index():
    a, b = generate_scene(SMALL, 3), generate_scene(SMALL, 3)
    np.testing.assert_array_equal(a.image, b.image)
    assert [r.sentences for r in a.referents] == [r.sentences for r in b.referents]
    other_seed = generate_scene(SMALL.model_copy(update={"seed": 8}), 3)
    assert not np.array_equal(a.image, other_seed.image)
    assert not np.array_equal(a.image, generate_scene(SMALL, 4).image)


def test_every_sentence_denotes_exactly_its_mask(scenes):
    for scene in scenes:
        facts = object_facts(scene.objects, SMALL.image_size)
        for ref in scene.referents:
            assert ref.sentences
            for sentence in ref.sentences:
                assert referent(parse(sentence), facts) == set(ref.objects), sentence
            union = np.zeros_like(ref.mask)
            for i in ref.objects:
                union |= scene.objects[i].mask
            np.testing.assert_array_equal(ref.mask, union)
            assert ref.mask.any()


def test_objects_are_separate_and_on_their_surface(scenes):
    for scene in scenes:
        assert scene.image.shape == (128, 128, 3)
        assert scene.image.dtype == np.uint8
        for a, b in combinations(scene.objects, 2):
            assert not (a.mask & b.mask).any()
        for obj in scene.objects:
            assert obj.mask.sum() >= 4
            if obj.category == "ship":
                assert scene.water[obj.mask].all()
            else:
                assert not scene.water[obj.mask].any()


def test_same_class_distractors_are_told_apart_by_size_or_position(scenes):
    with_distractors = 0
    for scene in scenes:
        for ref in scene.referents:
            if len(ref.objects) != 1:
                continue
            category = scene.objects[ref.objects[0]].category
            if sum(o.category == category for o in scene.objects) > 1:
                with_distractors += 1
                assert all(e.size or e.location for e in ref.expressions)
    assert with_distractors >= 10


def test_plural_refs_are_unions_of_several_objects():
    spec = SceneSpec(image_size=128, seed=3, same_class=(2, 3), plural_probability=1.0)
    plural = [r for i in range(10) for r in generate_scene(spec, i).referents if len(r.objects) > 1]
    assert plural
    assert all(all(s.startswith("all ") for s in r.sentences) for r in plural)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"categories": ("ship", "submarine")}, "submarine"),
        ({"same_class": (3, 1)}, "same_class"),
        ({"image_size": 16}, "image_size"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_scene_spec_rejects_bad_settings(update, message):
    with pytest.raises(ValidationError, match=message):
        SceneSpec(**update)


# --- dataset output -------------------------------------------------------------------------------


def test_split_by_image_covers_every_split():
    splits = split_by_image(20, 0.1, 0.2, seed=0)
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (14, 2, 4)
    assert split_by_image(20, 0.1, 0.2, seed=0) == splits
    assert sorted(set(split_by_image(3, 0.1, 0.2, seed=0))) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="train split"):
        split_by_image(10, 0.5, 0.5, seed=0)


def test_written_dataset_reads_back_in_both_layouts(tmp_path):
    spec = SceneSpec(image_size=64, seed=11, refs_per_image=2)
    corpus = write_synthetic_dataset(tmp_path, spec, 10)
    image_splits: dict[int, str] = {}
    total = 0
    for split in ("train", "val", "test"):
        records = read_rrsisd(tmp_path, split)
        jsonl = read_jsonl(tmp_path, split)
        assert [(r.sent_id, r.sentence) for r in records] == [(r.sent_id, r.sentence) for r in jsonl]
        for record in records:
            assert image_splits.setdefault(record.image_id, split) == split
            assert record.decode_mask().any()
            parse(record.sentence)
        total += len(records)
    assert total == sum(len(r.sentences) for r in corpus.refs)
    assert len(image_splits) == 10
    formats = {type(a.segmentation).__name__ for a in corpus.annotations}
    assert formats == {"list", "dict"}

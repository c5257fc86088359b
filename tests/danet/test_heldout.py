"""The held-out renderer: determinism, exact masks, unambiguous refs, held-out phrasing, dataset output."""

from __future__ import annotations

import ast
import re
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import danet.datagen.heldout as heldout_module
from danet.cli import main
from danet.data.dataset import load_records
from danet.data.subsets import subset_sent_ids
from danet.datagen.benchmark import CARD_FILE
from danet.datagen.expressions import CATEGORIES, LOCATIONS, SIZES, Expression, parse, referent
from danet.datagen.heldout import (
    NOUNS,
    SIZE_FRACTIONS,
    HeldoutScene,
    object_facts,
    paraphrase,
    render_heldout_scene,
    write_heldout_dataset,
)

SIZE = 128
SEED = 5


@pytest.fixture(scope="module")
def scenes() -> list[HeldoutScene]:
    return [render_heldout_scene(SEED, i, SIZE) for i in range(12)]


# --- scenes -----------------------------------------------------------------------------------------


def test_same_seed_and_index_give_the_same_scene() -> None:
    a, b = render_heldout_scene(11, 3, SIZE), render_heldout_scene(11, 3, SIZE)
    assert np.array_equal(a.image, b.image)
    assert [o.category for o in a.objects] == [o.category for o in b.objects]
    assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a.objects, b.objects, strict=True))
    assert [(r.objects, r.expression, r.sentences) for r in a.refs] == [
        (r.objects, r.expression, r.sentences) for r in b.refs
    ]
    assert not np.array_equal(a.image, render_heldout_scene(11, 4, SIZE).image)
    assert not np.array_equal(a.image, render_heldout_scene(12, 3, SIZE).image)


def test_images_and_masks(scenes: list[HeldoutScene]) -> None:
    for scene in scenes:
        assert scene.image.dtype == np.uint8
        assert scene.image.shape == (SIZE, SIZE, 3)
        assert scene.objects
        for obj in scene.objects:
            assert obj.category in CATEGORIES
            assert obj.mask.shape == (SIZE, SIZE)
            assert obj.mask.dtype == bool
            assert obj.mask.any()
            # Ships float, everything else stands on land.
            on_water = scene.water[obj.mask]
            assert on_water.all() if obj.category == "ship" else not on_water.any()
        for a, b in combinations(scene.objects, 2):
            assert not (a.mask & b.mask).any()


def test_scene_composition(scenes: list[HeldoutScene]) -> None:
    for scene in scenes:
        focus = [o for o in scene.objects if o.category == scene.focus]
        assert 1 <= len(focus) <= 3
        assert len(scene.objects) - len(focus) <= 4
    # Twelve scenes are enough to see several grounds and a same-class distractor.
    assert len({s.biome for s in scenes}) >= 3
    assert any(s.has_distractor(r) for s in scenes for r in s.refs)


def test_object_sizes_are_plausible(scenes: list[HeldoutScene]) -> None:
    for scene in scenes:
        for obj in scene.objects:
            lo, hi = SIZE_FRACTIONS[obj.category]
            floor = heldout_module.MIN_LENGTH_PX[obj.category]
            assert max(lo * SIZE, floor) - 1e-9 <= obj.length <= max(hi * SIZE, floor) + 1e-9
            # `length` is the longest side; a rotated L/U building or swept wings reach at most the diagonal.
            ys, xs = np.nonzero(obj.mask)
            assert max(np.ptp(xs), np.ptp(ys)) + 1 <= 1.5 * obj.length + 2


def test_refs_are_unambiguous_and_masks_are_unions(scenes: list[HeldoutScene]) -> None:
    for scene in scenes:
        facts = object_facts(scene.objects, SIZE)
        assert scene.refs
        for ref in scene.refs:
            assert referent(ref.expression, facts) == frozenset(ref.objects)
            union = np.zeros((SIZE, SIZE), bool)
            for i in ref.objects:
                union |= scene.objects[i].mask
            assert np.array_equal(ref.mask, union)
            assert parse(ref.canonical) == ref.expression
            assert ref.paraphrase != ref.canonical
            with pytest.raises(ValueError, match="not a synthetic referring expression"):
                parse(ref.paraphrase)


def test_renderer_shares_no_code_with_the_training_renderer() -> None:
    tree = ast.parse(Path(heldout_module.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    forbidden = {
        "danet.datagen.synthetic",
        "danet.datagen.objects",
        "danet.datagen.terrain",
        "danet.datagen.phrasing",
    }
    assert not imported & forbidden


# --- phrasing ---------------------------------------------------------------------------------------

_SIZE_WORDS = {
    "small": {"small", "little", "tiny", "smallest", "tiniest", "smaller"},
    "large": {"large", "big", "largest", "biggest", "larger"},
}
_PLACE_WORDS = {
    "left": {"left", "leftmost"},
    "right": {"right", "rightmost"},
    "top": {"top", "upper", "topmost"},
    "bottom": {"bottom", "lower", "lowest"},
    "center": {"center", "centre", "middle", "central"},
}
_QUANTIFIERS = {"all", "every", "each", "both", "two", "three", "four"}


def _expressions() -> list[Expression]:
    out = []
    for category in CATEGORIES:
        for location in (None, *LOCATIONS):
            out.append(Expression(category, plural=True, location=location))
            for size in (None, *SIZES):
                out.append(Expression(category, size=size, location=location))
    return out


@pytest.mark.parametrize("expression", _expressions(), ids=str)
def test_paraphrases_keep_the_meaning(expression: Expression) -> None:
    rng = np.random.default_rng(0)
    members = 2 if expression.plural else 1
    for same_class in (2, 3):
        for _ in range(12):
            text = paraphrase(expression, rng, members=members, same_class=same_class)
            words = set(re.findall(r"[a-z]+", text))
            nouns = {w for pair in NOUNS[expression.category] for noun in pair for w in noun.split()}
            assert words & nouns, text
            for size, size_words in _SIZE_WORDS.items():
                assert bool(words & size_words) == (expression.size == size), text
            wanted = set(expression.location.split()) if expression.location else set()
            wanted = {"top" if w == "upper" else "bottom" if w == "lower" else w for w in wanted}
            for place, place_words in _PLACE_WORDS.items():
                assert bool(words & place_words) == (place in wanted), text
            if expression.plural:
                assert words & _QUANTIFIERS or any(p in text for _, p in NOUNS[expression.category]), text
            else:
                assert not words & {"all", "every", "each", "both"}, text
            with pytest.raises(ValueError, match="not a synthetic referring expression"):
                parse(text)


def test_paraphrases_vary() -> None:
    rng = np.random.default_rng(1)
    expression = Expression("airplane", size="small", location="upper left")
    texts = {paraphrase(expression, rng, members=1, same_class=3) for _ in range(40)}
    assert len(texts) >= 10


# --- dataset ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("heldout") / "data"
    write_heldout_dataset(out, 6, seed=SEED, size=SIZE, progress=False)
    return out


def test_dataset_loads_with_its_subsets(root: Path) -> None:
    records = load_records(root, "test")
    assert len(records) == 12  # one ref per image, two sentences per ref
    by_id = {r.sent_id: r for r in records}
    canonical = subset_sent_ids(root, "heldout")
    paraphrased = subset_sent_ids(root, "heldout-paraphrased")
    distractor = subset_sent_ids(root, "heldout-distractor")
    assert len(canonical) == len(paraphrased) == 6
    assert not canonical & paraphrased
    assert distractor <= canonical
    assert canonical | paraphrased == set(by_id)
    for sent_id in canonical:
        parse(by_id[sent_id].sentence)
    for sent_id in paraphrased:
        with pytest.raises(ValueError, match="not a synthetic referring expression"):
            parse(by_id[sent_id].sentence)
    card = (root / CARD_FILE).read_text(encoding="utf-8")
    assert "GENERATED" in card
    assert "never used in training" in card


def test_dataset_masks_and_images_match_the_scenes(root: Path) -> None:
    records = sorted(load_records(root, "test"), key=lambda r: r.sent_id)
    for record in records:
        scene = render_heldout_scene(SEED, record.image_id - 1, SIZE)
        (ref,) = scene.refs
        assert record.sentence in ref.sentences
        assert np.array_equal(record.decode_mask().astype(bool), ref.mask)
        with Image.open(record.image_path) as image:
            assert image.size == (SIZE, SIZE)


def test_dataset_refuses_a_non_empty_folder(root: Path) -> None:
    with pytest.raises(FileExistsError, match="not empty"):
        write_heldout_dataset(root, 1, size=SIZE, progress=False)


def test_cli_writes_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "heldout"
    assert main(["heldout-data", "--out", str(out), "--images", "2", "--seed", "9", "--size", str(SIZE)]) == 0
    assert "heldout-paraphrased" in capsys.readouterr().out
    assert len(load_records(out, "test")) == 4

"""Training paraphrases of the structured referring expressions: synonyms and several sentence shapes.

`danet.datagen.expressions.render` writes one canonical sentence per expression ("the small ship on the
left"). Users write "the little boat at the left", "the smallest vessel", "every plane", "aircraft in
the top-left corner". `describe` draws one of many wordings with the *same meaning* (checked by the
tests against `expressions.denotation`'s rules):

- a size word on a singular expression is only used when the expression is unambiguous, so the object
  that is "small" is also the smallest of its class: "small", "smaller", "smallest", "little" all fit;
- location phrases name the same image halves, corners and centre;
- plurals: "all X", "every X", "all the X", "each X".

These wordings are GENERATED. The held-out renderer (`danet.datagen.heldout`) has its own phrasing, which
training never sees.
"""

from __future__ import annotations

import numpy as np

from danet.datagen.expressions import Expression, render, render_variants

NOUNS = {
    "airplane": (("airplane", "airplanes"), ("plane", "planes"), ("aircraft", "aircraft")),
    "storage tank": (("storage tank", "storage tanks"), ("tank", "tanks"), ("oil tank", "oil tanks")),
    "ship": (("ship", "ships"), ("boat", "boats"), ("vessel", "vessels")),
    "vehicle": (("vehicle", "vehicles"), ("car", "cars")),
    "building": (("building", "buildings"), ("house", "houses")),
    "tree": (("tree", "trees"),),
    "road": (("road", "roads"), ("street", "streets")),
}
SIZE_WORDS = {
    "small": ("small", "smaller", "smallest", "little"),
    "large": ("large", "larger", "largest", "big", "bigger", "biggest"),
}
PLACES = {
    "left": ("on the left", "on the left side", "at the left", "in the left part of the image"),
    "right": ("on the right", "on the right side", "at the right", "in the right part of the image"),
    "top": ("at the top", "near the top", "in the upper part", "at the top of the image"),
    "bottom": ("at the bottom", "near the bottom", "in the lower part", "at the bottom of the image"),
    "upper left": (
        "in the upper left", "in the upper left corner", "at the top left", "in the top-left corner",
    ),
    "upper right": (
        "in the upper right", "in the upper right corner", "at the top right", "in the top-right corner",
    ),
    "lower left": (
        "in the lower left", "in the lower left corner", "at the bottom left", "in the bottom-left corner",
    ),
    "lower right": (
        "in the lower right", "in the lower right corner", "at the bottom right",
        "in the bottom-right corner",
    ),
    "center": ("in the center", "in the middle", "at the centre", "in the middle of the image"),
}  # fmt: skip
# Share of sentences written exactly as `render` writes them (the benchmark's canonical grammar).
CANONICAL_SHARE = 0.3


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def describe(expression: Expression, rng: np.random.Generator) -> str:
    """One wording of ``expression``, drawn with ``rng`` (canonical with probability ``CANONICAL_SHARE``)."""
    if rng.random() < CANONICAL_SHARE:
        return render(expression, int(rng.integers(render_variants(expression))))
    singular, _ = _noun(expression.category, rng)
    place = _pick(PLACES[expression.location], rng) if expression.location else ""
    if expression.plural:
        words = describe_all(expression.category, rng)
    elif expression.size is not None:
        words = f"the {_pick(SIZE_WORDS[expression.size], rng)} {singular}"
    else:
        words = f"the {singular}"
    return f"{words} {place}".strip()


def describe_all(category: str, rng: np.random.Generator) -> str:
    """ "all X" in one of several wordings, for any category of ``NOUNS`` (real data: trees, roads)."""
    singular, plural = _noun(category, rng)
    head = _pick(("all {p}", "every {s}", "all the {p}", "each {s}", "all of the {p}", "the {p}"), rng)
    return head.format(p=plural, s=singular)


def _noun(category: str, rng: np.random.Generator) -> tuple[str, str]:
    if category not in NOUNS:
        raise ValueError(f"no wording for category {category!r}; expected one of {sorted(NOUNS)}")
    options = NOUNS[category]
    return options[int(rng.integers(len(options)))]

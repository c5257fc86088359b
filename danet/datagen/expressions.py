"""Referring expressions of the synthetic scenes: grammar, meaning, and the unambiguity check.

Grammar (`render` writes it, `parse` reads it back):

    singular:  "the [small|large] <category> [<location phrase>]"
    plural:    "all <categories> [<location phrase>]"

Meaning over the objects of a scene (`denotation`), with object centroids in [0, 1] image coordinates:

- location: left/right/top/bottom are the image halves (x < s, x > 1 - s, ...); the corners are the
  conjunctions ("upper left" = left and top); center is max(|x - .5|, |y - .5|) < c;
- size is relative to the objects of the same category: "small" = area ≤ r · the largest one's area,
  "large" = area ≥ the smallest one's area / r (so a lone object is neither).

An expression is used only if it is unambiguous, robustly: its denotation under STRICT thresholds
(s=0.40, c=0.15, r=0.5) must equal its denotation under LOOSE ones (s=0.55, c=0.25, r=0.7), and be
exactly one object (singular) or at least two (plural). An object near a boundary therefore can
neither be the referent of a word that only barely applies nor be silently excluded by it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

CATEGORIES = ("airplane", "storage tank", "ship", "vehicle", "building")
PLURALS = {
    "airplane": "airplanes",
    "storage tank": "storage tanks",
    "ship": "ships",
    "vehicle": "vehicles",
    "building": "buildings",
}
SIZES = ("small", "large")
LOCATION_PHRASES = {
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "top": ("at the top", "near the top"),
    "bottom": ("at the bottom", "near the bottom"),
    "upper left": ("in the upper left", "in the upper left corner"),
    "upper right": ("in the upper right", "in the upper right corner"),
    "lower left": ("in the lower left", "in the lower left corner"),
    "lower right": ("in the lower right", "in the lower right corner"),
    "center": ("in the center", "in the middle"),
}
LOCATIONS = tuple(LOCATION_PHRASES)


@dataclass(frozen=True, slots=True)
class ObjectFacts:
    """What expressions can talk about: category, pixel area and centroid (x, y in [0, 1])."""

    category: str
    area: int
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Thresholds of the location and size words (see the module docstring)."""

    side: float
    center: float
    size_ratio: float


STRICT = Tolerance(side=0.40, center=0.15, size_ratio=0.5)
LOOSE = Tolerance(side=0.55, center=0.25, size_ratio=0.7)


@dataclass(frozen=True, slots=True)
class Expression:
    """A structured referring expression."""

    category: str
    plural: bool = False
    size: str | None = None
    location: str | None = None

    def __post_init__(self) -> None:
        if self.category not in PLURALS:
            raise ValueError(f"unknown category {self.category!r}; expected one of {CATEGORIES}")
        if self.size is not None and (self.plural or self.size not in SIZES):
            raise ValueError(f"size {self.size!r} is allowed only on singular expressions, as one of {SIZES}")
        if self.location is not None and self.location not in LOCATION_PHRASES:
            raise ValueError(f"unknown location {self.location!r}; expected one of {LOCATIONS}")

    @property
    def modifiers(self) -> int:
        """How many words narrow the category down (size, location)."""
        return (self.size is not None) + (self.location is not None)


def render(expression: Expression, variant: int = 0) -> str:
    """The sentence for an expression; `variant` picks among paraphrases of the location phrase."""
    words = ["all", PLURALS[expression.category]] if expression.plural else ["the", expression.category]
    if expression.size is not None:
        words.insert(1, expression.size)
    if expression.location is not None:
        phrases = LOCATION_PHRASES[expression.location]
        words.append(phrases[variant % len(phrases)])
    return " ".join(words)


def render_variants(expression: Expression) -> int:
    """Number of distinct paraphrases `render` produces for an expression."""
    return len(LOCATION_PHRASES[expression.location]) if expression.location is not None else 1


_PHRASE_TO_LOCATION = {p: loc for loc, phrases in LOCATION_PHRASES.items() for p in phrases}
_SINGULAR_TO_CATEGORY = {c: c for c in CATEGORIES}
_PLURAL_TO_CATEGORY = {p: c for c, p in PLURALS.items()}


def _alternatives(words: Sequence[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_PATTERN = re.compile(
    rf"^(?:the (?:(?P<size>{_alternatives(SIZES)}) )?(?P<singular>{_alternatives(CATEGORIES)})"
    rf"|all (?P<plural>{_alternatives(PLURALS.values())}))"
    rf"(?: (?P<location>{_alternatives(list(_PHRASE_TO_LOCATION))}))?$"
)


def parse(text: str) -> Expression:
    """Inverse of `render`; raises ValueError for a sentence outside the grammar."""
    match = _PATTERN.match(" ".join(text.lower().split()))
    if match is None:
        raise ValueError(f"not a synthetic referring expression: {text!r}")
    location = _PHRASE_TO_LOCATION[match["location"]] if match["location"] else None
    if match["plural"]:
        return Expression(_PLURAL_TO_CATEGORY[match["plural"]], plural=True, location=location)
    return Expression(_SINGULAR_TO_CATEGORY[match["singular"]], size=match["size"], location=location)


def denotation(
    expression: Expression, objects: Sequence[ObjectFacts], tolerance: Tolerance
) -> frozenset[int]:
    """Indices of the objects the expression is true of under the given thresholds."""
    same = [o for o in objects if o.category == expression.category]
    largest = max((o.area for o in same), default=0)
    smallest = min((o.area for o in same), default=0)
    result = set()
    for i, obj in enumerate(objects):
        if obj.category != expression.category:
            continue
        if expression.size == "small" and not (len(same) > 1 and obj.area <= tolerance.size_ratio * largest):
            continue
        if expression.size == "large" and not (len(same) > 1 and obj.area * tolerance.size_ratio >= smallest):
            continue
        if expression.location is not None and not _at(expression.location, obj, tolerance):
            continue
        result.add(i)
    return frozenset(result)


def referent(expression: Expression, objects: Sequence[ObjectFacts]) -> frozenset[int] | None:
    """The objects an expression unambiguously refers to, or None if it is ambiguous or empty."""
    strict = denotation(expression, objects, STRICT)
    if strict != denotation(expression, objects, LOOSE):
        return None
    if (expression.plural and len(strict) >= 2) or (not expression.plural and len(strict) == 1):
        return strict
    return None


def unambiguous_expressions(objects: Sequence[ObjectFacts]) -> dict[frozenset[int], list[Expression]]:
    """All grammar expressions that unambiguously refer to something, grouped by their referent.

    Order is deterministic (category order of the scene, then the grammar's enumeration order).
    """
    grouped: dict[frozenset[int], list[Expression]] = {}
    categories = list(dict.fromkeys(o.category for o in objects))
    for category in categories:
        candidates = [
            Expression(category, size=size, location=location)
            for size, location in product((None, *SIZES), (None, *LOCATIONS))
        ] + [Expression(category, plural=True, location=location) for location in (None, *LOCATIONS)]
        for expression in candidates:
            target = referent(expression, objects)
            if target is not None:
                grouped.setdefault(target, []).append(expression)
    return grouped


def _at(location: str, obj: ObjectFacts, tol: Tolerance) -> bool:
    if location == "center":
        return max(abs(obj.x - 0.5), abs(obj.y - 0.5)) < tol.center
    sides = {
        "left": obj.x < tol.side,
        "right": obj.x > 1 - tol.side,
        "top": obj.y < tol.side,
        "bottom": obj.y > 1 - tol.side,
    }
    vertical = {"upper": "top", "lower": "bottom"}
    words = location.split()
    if len(words) == 2:
        return sides[vertical[words[0]]] and sides[words[1]]
    return sides[location]


_SIDE_SWAPS = {"flip_x": {"left": "right", "right": "left"}, "flip_y": {"top": "bottom", "bottom": "top"}}
_TRANSPOSE = {"left": "top", "top": "left", "right": "bottom", "bottom": "right"}
_CORNER_WORDS = {"upper": "top", "lower": "bottom", "top": "upper", "bottom": "lower"}


def moved(expression: Expression, *, transpose: bool, flip_x: bool, flip_y: bool) -> Expression:
    """The expression that stays true after a symmetry of the square image.

    The image is first transposed (``image.transpose(1, 0, 2)``: x and y swap), then mirrored left-right
    (``flip_x``) and/or top-bottom (``flip_y``): all eight flips and quarter turns. Class, size and
    plurality do not change; "center" stays; sides and corners move with the pixels. The thresholds of
    `denotation` are symmetric, so an unambiguous expression stays unambiguous.
    """
    if expression.location is None or expression.location == "center":
        return expression
    words = expression.location.split()
    sides = [_CORNER_WORDS.get(words[0], words[0]), *words[1:]] if len(words) == 2 else words
    if transpose:
        sides = [_TRANSPOSE[s] for s in sides]
    for flag, swaps in _SIDE_SWAPS.items():
        if {"flip_x": flip_x, "flip_y": flip_y}[flag]:
            sides = [swaps.get(s, s) for s in sides]
    if len(sides) == 1:
        location = sides[0]
    else:
        vertical = next(s for s in sides if s in ("top", "bottom"))
        horizontal = next(s for s in sides if s in ("left", "right"))
        location = f"{_CORNER_WORDS[vertical]} {horizontal}"
    return Expression(expression.category, plural=expression.plural, size=expression.size, location=location)

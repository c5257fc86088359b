"""The referring-segmentation record and COCO mask decoding.

A `ReferringRecord` is one (image, sentence, mask) sample, the unit that LAVT evaluates: one record
per sentence of a referring expression ("ref"). Every reader (RRSIS-D pickle, JSONL) produces these
records, and every consumer (datasets, scoring) only uses them, so the on-disk layout never leaks
further than the reader.

Masks are stored the way the annotation files store them (a COCO segmentation: polygons or RLE) and
decoded on demand with pycocotools, so a split of the real dataset costs little memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

# A COCO segmentation as found in annotation files: a list of flat polygons [x0, y0, x1, y1, ...],
# an RLE dict {"size": [h, w], "counts": str | bytes | list[int]}, or a list of RLE dicts
# (the JSONL variant of RRSIS-D wraps its single RLE in a list).
Segmentation = list[list[float]] | dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ReferringRecord:
    """One referring sample: a sentence, the image it refers to and the target's segmentation.

    `height`/`width` are the image size the segmentation is defined at (COCO `images` entry or RLE
    size); `decode_mask()` returns the binary target mask at that size.
    """

    sent_id: int
    ref_id: int
    ann_id: int
    image_id: int
    image_path: Path
    sentence: str
    split: str
    category: str
    segmentation: Segmentation
    height: int
    width: int

    def decode_mask(self) -> np.ndarray:
        """Return the target mask as a uint8 array of shape (height, width) with values in {0, 1}."""
        return decode_segmentation(
            self.segmentation,
            self.height,
            self.width,
            context=f"ann_id {self.ann_id} (sent_id {self.sent_id})",
        )


def check_unique_sent_ids(records: Sequence[ReferringRecord], source: str) -> None:
    """Raise ValueError if two records share a sent_id (predictions and results are keyed by it)."""
    seen: set[int] = set()
    for record in records:
        if record.sent_id in seen:
            raise ValueError(f"{source}: sent_id {record.sent_id} occurs more than once")
        seen.add(record.sent_id)


def decode_segmentation(
    segmentation: Segmentation, height: int, width: int, *, context: str = ""
) -> np.ndarray:
    """Decode a COCO segmentation (polygons, compressed or uncompressed RLE) into a {0,1} uint8 mask.

    Several polygons or RLE parts are merged by union. (LAVT's `getMask` sums the parts and keeps
    pixels equal to 1, which only differs where parts of one object overlap; a union is what such an
    annotation means.) `context` names the annotation in error messages.
    """
    where = f" in {context}" if context else ""
    rles = _to_rles(segmentation, height, width, where)
    return decode_rle(rles[0] if len(rles) == 1 else coco_mask.merge(rles))


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """pycocotools `decode` of one compressed RLE, as a C-contiguous {0,1} uint8 array."""
    # pycocotools 2.0.11 (the latest; unmaintained) builds its result through an `__array__` without
    # the `copy` keyword, which numpy 2 reports as a DeprecationWarning on every call. The result is
    # correct; silence only that message, only here.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="__array__ implementation doesn't accept a copy keyword",
            category=DeprecationWarning,
        )
        mask = coco_mask.decode(rle)
    return np.ascontiguousarray(mask, dtype=np.uint8)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D binary mask as compressed COCO RLE with JSON-ready counts (an ASCII string)."""
    if mask.ndim != 2:
        raise ValueError(f"encode_mask expects a 2-D mask, got shape {mask.shape}")
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def segmentation_area_bbox(segmentation: Segmentation, height: int, width: int) -> tuple[int, list[float]]:
    """Return (pixel area, COCO bbox [x, y, w, h]) of a segmentation, computed by pycocotools."""
    rles = _to_rles(segmentation, height, width, "")
    rle = rles[0] if len(rles) == 1 else coco_mask.merge(rles)
    return int(coco_mask.area(rle)), [float(v) for v in coco_mask.toBbox(rle)]


def to_rle(segmentation: Segmentation, height: int, width: int) -> dict[str, Any]:
    """Convert any supported segmentation to one compressed RLE dict with string counts."""
    return encode_mask(decode_segmentation(segmentation, height, width))


def _to_rles(segmentation: Segmentation, height: int, width: int, where: str) -> list[dict[str, Any]]:
    if height <= 0 or width <= 0:
        raise ValueError(f"mask size must be positive{where}, got height={height} width={width}")
    if isinstance(segmentation, Mapping):
        return [_rle_from_dict(segmentation, height, width, where)]
    if not isinstance(segmentation, Sequence) or isinstance(segmentation, str | bytes) or not segmentation:
        raise ValueError(f"segmentation{where} must be a non-empty list of polygons or an RLE dict")
    if all(isinstance(part, Mapping) for part in segmentation):
        return [_rle_from_dict(part, height, width, where) for part in segmentation]
    polygons = []
    for i, polygon in enumerate(segmentation):
        # pycocotools reads a 4-number list as a bounding box, so shorter polygons must be rejected here.
        if isinstance(polygon, Mapping) or len(polygon) < 6 or len(polygon) % 2:
            raise ValueError(
                f"segmentation{where}: polygon {i} must be a flat list of at least 3 (x, y) pairs, "
                f"got {type(polygon).__name__} of length {len(polygon)}"
            )
        polygons.append([float(v) for v in polygon])
    return coco_mask.frPyObjects(polygons, height, width)


def _rle_from_dict(rle: Mapping[str, Any], height: int, width: int, where: str) -> dict[str, Any]:
    if "size" not in rle or "counts" not in rle:
        raise ValueError(f"RLE segmentation{where} needs 'size' and 'counts', got keys {sorted(rle)}")
    size = [int(v) for v in rle["size"]]
    if size != [height, width]:
        raise ValueError(
            f"RLE segmentation{where} has size {size} but the image is [{height}, {width}] (h, w)"
        )
    counts = rle["counts"]
    if isinstance(counts, list):
        # Uncompressed counts (COCO "iscrowd" style): pycocotools compresses them.
        if sum(counts) != height * width:
            raise ValueError(
                f"uncompressed RLE{where}: counts sum to {sum(counts)}, expected {height * width} = h*w"
            )
        return coco_mask.frPyObjects({"size": size, "counts": counts}, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    if not isinstance(counts, bytes):
        raise ValueError(f"RLE segmentation{where}: 'counts' must be a string or a list of ints")
    return {"size": size, "counts": counts}

"""In-memory referring corpus: the metadata that the layout writers serialise.

A `ReferringCorpus` mirrors the refer/COCO data model (images, categories, annotations, refs with
sentences) without pixels: images are written to disk as they are produced (`write_image`), so a
corpus of thousands of scenes only holds ids, sizes and segmentations.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from danet.data.records import Segmentation

# Folder that holds the images in every layout this package writes (the RRSIS-D name).
IMAGE_DIR_NAME = "JPEGImages"
# Where readers look for images, relative to a dataset root: the flat layout this package writes, and
# the RMSIN/LAVT repository layout (root = `refer/data`, images in `images/rrsisd/JPEGImages`).
IMAGE_DIR_CANDIDATES = (Path(IMAGE_DIR_NAME), Path("images") / "rrsisd" / IMAGE_DIR_NAME)
JPEG_QUALITY = 92


@dataclass(frozen=True, slots=True)
class CorpusImage:
    """An image entry (COCO `images`)."""

    image_id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class CorpusAnnotation:
    """An instance mask (COCO `annotations`); `bbox` is COCO [x, y, w, h]."""

    ann_id: int
    image_id: int
    category_id: int
    segmentation: Segmentation
    area: int
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class CorpusSentence:
    """One expression of a ref."""

    sent_id: int
    text: str


@dataclass(frozen=True, slots=True)
class CorpusRef:
    """A referred target (one annotation) with its expressions (refer `refs`)."""

    ref_id: int
    ann_id: int
    image_id: int
    category_id: int
    split: str
    sentences: tuple[CorpusSentence, ...]


@dataclass
class ReferringCorpus:
    """Images, categories, annotations and refs of a referring dataset."""

    categories: dict[int, str]
    images: list[CorpusImage] = field(default_factory=list)
    annotations: list[CorpusAnnotation] = field(default_factory=list)
    refs: list[CorpusRef] = field(default_factory=list)

    def validate(self) -> None:
        """Check ids are unique and every reference resolves; raise ValueError naming the first problem."""
        for name, ids in (
            ("image_id", [i.image_id for i in self.images]),
            ("ann_id", [a.ann_id for a in self.annotations]),
            ("ref_id", [r.ref_id for r in self.refs]),
            ("sent_id", [s.sent_id for r in self.refs for s in r.sentences]),
        ):
            duplicates = [k for k, n in Counter(ids).items() if n > 1]
            if duplicates:
                raise ValueError(f"duplicate {name} in corpus: {duplicates[:5]}")
        images = {i.image_id for i in self.images}
        annotations = {a.ann_id: a for a in self.annotations}
        for ann in self.annotations:
            if ann.image_id not in images:
                raise ValueError(f"annotation {ann.ann_id} points at missing image_id {ann.image_id}")
            if ann.category_id not in self.categories:
                raise ValueError(f"annotation {ann.ann_id} has unknown category_id {ann.category_id}")
        image_split: dict[int, str] = {}
        for ref in self.refs:
            ann = annotations.get(ref.ann_id)
            if ann is None:
                raise ValueError(f"ref {ref.ref_id} points at missing ann_id {ref.ann_id}")
            if ann.image_id != ref.image_id:
                raise ValueError(
                    f"ref {ref.ref_id} is on image {ref.image_id} but ann {ann.ann_id} on {ann.image_id}"
                )
            if not ref.sentences:
                raise ValueError(f"ref {ref.ref_id} has no sentences")
            # Splits are by image: an image in two splits would leak test content into training.
            if image_split.setdefault(ref.image_id, ref.split) != ref.split:
                raise ValueError(
                    f"image {ref.image_id} appears in splits {image_split[ref.image_id]!r} and {ref.split!r}"
                )

    def splits(self) -> list[str]:
        """Split names used by the refs, in first-seen order."""
        return list(dict.fromkeys(r.split for r in self.refs))


def image_dir(root: Path) -> Path:
    """The image folder of a dataset written by this package."""
    return Path(root) / IMAGE_DIR_NAME


def find_image_dir(root: Path, *, required: bool = True) -> Path:
    """Return the image folder of a dataset root.

    If none exists: FileNotFoundError listing where it looked, or with `required=False` the default
    location (for work that needs only annotations, such as scoring).
    """
    candidates = [Path(root) / c for c in IMAGE_DIR_CANDIDATES]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    if not required:
        return candidates[0]
    raise FileNotFoundError(f"no image folder under {root}: looked for {', '.join(map(str, candidates))}")


def write_image(root: Path, file_name: str, pixels: np.ndarray) -> Path:
    """Save an RGB uint8 array as `<root>/JPEGImages/<file_name>` and return the path.

    The format follows the file suffix; RRSIS-D ships JPEG (`NNNNN.jpg`).
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"write_image expects an HxWx3 uint8 array, got {pixels.dtype} {pixels.shape}")
    path = image_dir(root) / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    # Fixed quality and no optimisation pass keep the bytes reproducible for a given Pillow build.
    Image.fromarray(pixels).save(path, quality=JPEG_QUALITY)
    return path

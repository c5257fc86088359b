"""Torch dataset over referring records, and layout detection.

Samples follow the shared contract: {"image": FloatTensor[3, S, S] (normalized), "mask":
LongTensor[S, S] in {0, 1}, "text": str, "sent_id": int, "image_id": int}; the default collate
batches them (texts become a list of str).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch.utils.data import Dataset

from danet.data.jsonl import read_jsonl
from danet.data.records import ReferringRecord
from danet.data.rrsisd import is_rrsisd, read_rrsisd
from danet.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PhotometricJitter,
    normalize,
    resize_pair,
    to_unit_tensor,
)

Layout = Literal["auto", "rrsisd", "jsonl"]


class ReferringDataset(Dataset):
    """Resized, normalized (image, mask, sentence) samples from a list of records.

    The image is resized bilinearly and the mask by nearest neighbour to `size` x `size` (LAVT).
    `augment`, if given, is applied to the [0, 1] image before normalization; it must not move pixels
    (see `danet.data.transforms`).
    """

    def __init__(
        self,
        records: Sequence[ReferringRecord],
        size: int,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        augment: PhotometricJitter | None = None,
    ) -> None:
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.records = list(records)
        self.size = size
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        with Image.open(record.image_path) as opened:
            image = opened.convert("RGB")
        if image.size != (record.width, record.height):
            raise ValueError(
                f"{record.image_path} is {image.width}x{image.height} but the mask of ann_id {record.ann_id} "
                f"is {record.width}x{record.height} (W x H)"
            )
        image, mask = resize_pair(image, record.decode_mask(), self.size)
        pixels = to_unit_tensor(image)
        if self.augment is not None:
            pixels = self.augment(pixels)
        return {
            "image": normalize(pixels, self.mean, self.std),
            "mask": torch.from_numpy(mask.astype("int64")),
            "text": record.sentence,
            "sent_id": record.sent_id,
            "image_id": record.image_id,
        }


def detect_layout(root: Path) -> Literal["rrsisd", "jsonl"]:
    """'rrsisd' if `root` holds `refs(unc).p`, 'jsonl' if it is or holds `*.jsonl`, else FileNotFoundError."""
    root = Path(root)
    if root.is_dir() and is_rrsisd(root):
        return "rrsisd"
    if (root.is_file() and root.suffix == ".jsonl") or (root.is_dir() and any(root.glob("*.jsonl"))):
        return "jsonl"
    raise FileNotFoundError(f"{root} holds neither an RRSIS-D refs(unc).p nor *.jsonl files")


def load_records(
    root: Path, split: str, *, layout: Layout = "auto", require_images: bool = True
) -> list[ReferringRecord]:
    """Read one split of a dataset in the RRSIS-D or JSONL layout (auto-detected by default)."""
    kind = detect_layout(root) if layout == "auto" else layout
    if kind == "rrsisd":
        return read_rrsisd(root, split, require_images=require_images)
    if kind == "jsonl":
        return read_jsonl(root, split, require_images=require_images)
    raise ValueError(f"unknown layout {layout!r}; expected 'auto', 'rrsisd' or 'jsonl'")


def open_dataset(
    root: Path,
    split: str,
    size: int,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    augment: bool = False,
    layout: Layout = "auto",
) -> ReferringDataset:
    """A `ReferringDataset` over one split of the dataset at `root`.

    `augment=True` adds photometric jitter (meant for training); `mean`/`std` default to ImageNet's
    (the lite backbone may want 0.5/0.5).
    """
    records = load_records(root, split, layout=layout)
    return ReferringDataset(
        records, size, mean=mean, std=std, augment=PhotometricJitter() if augment else None
    )

"""Referring-segmentation data: records, the RRSIS-D and JSONL layouts, datasets and transforms.

This package reads and writes datasets; it never generates them. The generators (synthetic scenes,
the held-out renderer, the training stream, the benchmark builders) live in `danet.datagen`, which
depends on this package and never the other way round.
"""

from danet.data.corpus import ReferringCorpus, write_image
from danet.data.dataset import ReferringDataset, detect_layout, load_records, open_dataset
from danet.data.jsonl import read_jsonl, write_jsonl
from danet.data.records import ReferringRecord, decode_segmentation, encode_mask
from danet.data.rrsisd import locate_rrsisd, read_rrsisd, write_rrsisd
from danet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PhotometricJitter

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PhotometricJitter",
    "ReferringCorpus",
    "ReferringDataset",
    "ReferringRecord",
    "decode_segmentation",
    "detect_layout",
    "encode_mask",
    "load_records",
    "locate_rrsisd",
    "open_dataset",
    "read_jsonl",
    "read_rrsisd",
    "write_image",
    "write_jsonl",
    "write_rrsisd",
]

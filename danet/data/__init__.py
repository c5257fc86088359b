"""Referring-segmentation data: records, RRSIS-D and JSONL layouts, datasets, synthetic scenes."""

from danet.data.corpus import ReferringCorpus, write_image
from danet.data.dataset import ReferringDataset, detect_layout, load_records, open_dataset
from danet.data.jsonl import read_jsonl, write_jsonl
from danet.data.records import ReferringRecord, decode_segmentation, encode_mask
from danet.data.rrsisd import locate_rrsisd, read_rrsisd, write_rrsisd
from danet.data.synthetic import SceneSpec, generate_scene, write_synthetic_dataset
from danet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PhotometricJitter

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PhotometricJitter",
    "ReferringCorpus",
    "ReferringDataset",
    "ReferringRecord",
    "SceneSpec",
    "decode_segmentation",
    "detect_layout",
    "encode_mask",
    "generate_scene",
    "load_records",
    "locate_rrsisd",
    "open_dataset",
    "read_jsonl",
    "read_rrsisd",
    "write_image",
    "write_jsonl",
    "write_rrsisd",
    "write_synthetic_dataset",
]

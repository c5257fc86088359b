"""The JSONL + RLE variant of RRSIS-D: reader and writer.

One JSON object per line, as in the public `rrsisd_{split}.jsonl` files (DiCoR `datainfo/`):

    {"split": "val", "image_id": 110, "ann_id": 110, "sent": "The green baseball field",
     "file_name": "00110.jpg", "category_id": 4, "category_name": "baseballfield",
     "bbox": [x1, y1, x2, y2], "segmentation": [{"size": [h, w], "counts": "..."}], "area": ...}

This package also writes `sent_id` and `ref_id`. Reading accepts `sent` (one sentence) or `sentences`
(a list of {"sent_id", "sent"}), `segmentation` as one RLE dict or a list of RLE dicts (merged), or
polygons when the line gives `height` and `width`. A line without `sent_id` gets its 0-based position
among the lines read (files in name order), so predictions for such files are keyed by line number.

Images live in `<root>/JPEGImages/` (or `<root>/images/rrsisd/JPEGImages/`) under `file_name`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from danet.data.corpus import ReferringCorpus, find_image_dir
from danet.data.records import ReferringRecord, check_unique_sent_ids, to_rle


def jsonl_files(root: Path) -> list[Path]:
    """The JSONL files of a dataset: `root` itself if it is a file, else `root/*.jsonl` in name order."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(root.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no *.jsonl files in {root}")
    return files


def read_jsonl(root: Path, split: str, *, require_images: bool = True) -> list[ReferringRecord]:
    """Read the records (one per sentence) of one split from JSONL files.

    `root` is a folder of `*.jsonl` files (all are read and filtered by their `split` field) or one file.
    Errors name the file and line.
    """
    root = Path(root)
    files = jsonl_files(root)
    data_root = root.parent if root.is_file() else root
    images = find_image_dir(data_root, required=require_images)
    records: list[ReferringRecord] = []
    splits: set[str] = set()
    ordinal = 0
    checked: set[Path] = set()
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{where}: not valid JSON ({e.msg})") from e
                line_records = _parse_line(entry, where, images, ordinal)
                ordinal += 1
                splits.add(line_records[0].split)
                if line_records[0].split != split:
                    continue
                image_path = line_records[0].image_path
                if require_images and image_path not in checked:
                    if not image_path.is_file():
                        raise FileNotFoundError(f"{where}: image {image_path} is missing")
                    checked.add(image_path)
                records.extend(line_records)
    if split not in splits:
        raise ValueError(f"split {split!r} not in {root}; available splits: {sorted(splits)}")
    check_unique_sent_ids(records, str(root))
    return records


def write_jsonl(corpus: ReferringCorpus, root: Path, *, name: str = "refs") -> list[Path]:
    """Write `<root>/<name>_<split>.jsonl` for every split of the corpus, one line per sentence.

    Segmentations are written as compressed RLE (polygons are rasterised by pycocotools); `bbox` is
    [x1, y1, x2, y2] as in the public files. Images are expected in `<root>/JPEGImages`.
    """
    corpus.validate()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    images = {i.image_id: i for i in corpus.images}
    annotations = {a.ann_id: a for a in corpus.annotations}
    lines: dict[str, list[str]] = {split: [] for split in corpus.splits()}
    for ref in corpus.refs:
        ann, image = annotations[ref.ann_id], images[ref.image_id]
        rle = to_rle(ann.segmentation, image.height, image.width)
        x, y, w, h = ann.bbox
        for sentence in ref.sentences:
            entry = {
                "split": ref.split,
                "image_id": ref.image_id,
                "ref_id": ref.ref_id,
                "ann_id": ref.ann_id,
                "sent_id": sentence.sent_id,
                "sent": sentence.text,
                "file_name": image.file_name,
                "category_id": ref.category_id,
                "category_name": corpus.categories[ref.category_id],
                "bbox": [x, y, x + w, y + h],
                "segmentation": [rle],
                "area": ann.area,
            }
            lines[ref.split].append(json.dumps(entry))
    paths = []
    for split, split_lines in lines.items():
        path = root / f"{name}_{split}.jsonl"
        path.write_text("\n".join(split_lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _parse_line(entry: Any, where: str, images: Path, ordinal: int) -> list[ReferringRecord]:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    missing = [k for k in ("split", "image_id", "file_name", "segmentation") if k not in entry]
    if "sent" not in entry and "sentences" not in entry:
        missing.append("sent")
    if missing:
        raise ValueError(f"{where}: missing {missing}")
    segmentation = entry["segmentation"]
    height, width = _mask_size(entry, segmentation, where)
    image_id = int(entry["image_id"])
    ann_id = int(entry.get("ann_id", image_id))
    if "sentences" in entry:
        sentences = entry["sentences"]
        if not isinstance(sentences, list) or not sentences:
            raise ValueError(f"{where}: 'sentences' must be a non-empty list of {{sent_id, sent}}")
        try:
            pairs = [(int(s["sent_id"]), str(s["sent"])) for s in sentences]
        except (KeyError, TypeError) as e:
            raise ValueError(f"{where}: each of 'sentences' needs 'sent_id' and 'sent' ({e!r})") from e
    else:
        pairs = [(int(entry.get("sent_id", ordinal)), str(entry["sent"]))]
    return [
        ReferringRecord(
            sent_id=sent_id,
            ref_id=int(entry.get("ref_id", ann_id)),
            ann_id=ann_id,
            image_id=image_id,
            image_path=images / str(entry["file_name"]),
            sentence=text,
            split=str(entry["split"]),
            category=str(entry.get("category_name", "")),
            segmentation=segmentation,
            height=height,
            width=width,
        )
        for sent_id, text in pairs
    ]


def _mask_size(entry: Mapping[str, Any], segmentation: Any, where: str) -> tuple[int, int]:
    if "height" in entry and "width" in entry:
        return int(entry["height"]), int(entry["width"])
    rle = segmentation[0] if isinstance(segmentation, list) and segmentation else segmentation
    if isinstance(rle, Mapping) and "size" in rle:
        return int(rle["size"][0]), int(rle["size"][1])
    raise ValueError(f"{where}: segmentation is not RLE with a 'size'; polygons need 'height' and 'width'")

"""RRSIS-D in its published layout: reader and writer.

Layout (RMSIN README; refer API with `dataset=rrsisd`, `splitBy=unc`):

    <root>/refs(unc).p       pickled list of refer dicts: ref_id, ann_id, image_id, split,
                             category_id, sentences [{sent_id, raw, sent, tokens}], sent_ids
    <root>/instances.json    COCO: images, annotations (polygon or RLE segmentation), categories
    <root>/JPEGImages/       the images, named by `images[].file_name`

The RMSIN repository layout (`<root>/rrsisd/refs(unc).p`, `<root>/rrsisd/instances.json`,
`<root>/images/rrsisd/JPEGImages/`, i.e. root = `refer/data`) is found too.

Records follow LAVT: one record per sentence; the sentence text is the `raw` field (what LAVT feeds to
BERT), falling back to `sent`.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from danet.data.corpus import ReferringCorpus, find_image_dir, image_dir
from danet.data.records import ReferringRecord, check_unique_sent_ids

REFS_FILE = "refs(unc).p"
INSTANCES_FILE = "instances.json"
# Annotation folders relative to a root: flat layout first, then the RMSIN repository layout.
_ANNOTATION_DIR_CANDIDATES = (Path(), Path("rrsisd"))
_REQUIRED_REF_KEYS = ("ref_id", "ann_id", "image_id", "split", "sentences")


@dataclass(frozen=True, slots=True)
class RRSISDLayout:
    """Resolved paths of an RRSIS-D dataset."""

    refs: Path
    instances: Path
    images: Path


def is_rrsisd(root: Path) -> bool:
    """Whether `root` holds an RRSIS-D `refs(unc).p` (flat or RMSIN layout)."""
    return any((Path(root) / d / REFS_FILE).is_file() for d in _ANNOTATION_DIR_CANDIDATES)


def locate_rrsisd(root: Path, *, require_images: bool = True) -> RRSISDLayout:
    """Find the annotation files and image folder of an RRSIS-D dataset under `root`.

    Raises FileNotFoundError naming the missing file and the places searched. With
    `require_images=False` a missing image folder is tolerated (scoring needs only the annotations).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"RRSIS-D root {root} is not a directory")
    for sub in _ANNOTATION_DIR_CANDIDATES:
        refs = root / sub / REFS_FILE
        if refs.is_file():
            instances = root / sub / INSTANCES_FILE
            if not instances.is_file():
                raise FileNotFoundError(f"RRSIS-D: {instances} is missing (it belongs next to {refs})")
            images = find_image_dir(root, required=require_images)
            return RRSISDLayout(refs=refs, instances=instances, images=images)
    searched = ", ".join(str(root / d / REFS_FILE) for d in _ANNOTATION_DIR_CANDIDATES)
    raise FileNotFoundError(f"RRSIS-D: no {REFS_FILE} under {root} (looked for {searched})")


def read_refs(path: Path) -> list[dict[str, Any]]:
    """Load a refer-style `refs(*).p` pickle.

    Only plain data (lists, dicts, strings, numbers) is accepted: unpickling arbitrary classes would run
    code from the file. Python 2 pickles of the refer toolkit load too (byte strings decoded as UTF-8).
    """
    with open(path, "rb") as f:
        refs = _PlainDataUnpickler(f, encoding="utf-8").load()
    if not isinstance(refs, list):
        raise ValueError(f"{path}: expected a pickled list of refs, got {type(refs).__name__}")
    return refs


def read_rrsisd(root: Path, split: str, *, require_images: bool = True) -> list[ReferringRecord]:
    """Read the records (one per sentence) of one split of an RRSIS-D dataset.

    Raises FileNotFoundError for missing files (including an image of the split when
    `require_images`), ValueError for a ref pointing at a missing annotation/image or an unknown split.
    """
    layout = locate_rrsisd(root, require_images=require_images)
    refs = read_refs(layout.refs)
    with open(layout.instances, encoding="utf-8") as f:
        instances = json.load(f)
    images, annotations, categories = _index_instances(instances, layout.instances)

    for i, ref in enumerate(refs):
        missing = [k for k in _REQUIRED_REF_KEYS if not isinstance(ref, dict) or k not in ref]
        if missing:
            raise ValueError(f"{layout.refs}: ref #{i} lacks {missing}")
    available = sorted({str(ref["split"]) for ref in refs})
    if split not in available:
        raise ValueError(f"split {split!r} not in {layout.refs}; available splits: {available}")

    records: list[ReferringRecord] = []
    checked_images: set[int] = set()
    for ref in refs:
        if ref["split"] != split:
            continue
        ref_id, ann_id, image_id = int(ref["ref_id"]), int(ref["ann_id"]), int(ref["image_id"])
        ann = annotations.get(ann_id)
        if ann is None:
            raise ValueError(
                f"{layout.refs}: ref_id {ref_id} points at ann_id {ann_id}, not in {layout.instances}"
            )
        image = images.get(image_id)
        if image is None:
            raise ValueError(
                f"{layout.refs}: ref_id {ref_id} points at image_id {image_id}, not in {layout.instances}"
            )
        if int(ann["image_id"]) != image_id:
            raise ValueError(
                f"{layout.refs}: ref_id {ref_id} is on image_id {image_id} but its ann_id {ann_id} "
                f"is on image_id {ann['image_id']} in {layout.instances}"
            )
        category_id = int(ref.get("category_id", ann["category_id"]))
        if category_id not in categories:
            raise ValueError(
                f"{layout.refs}: ref_id {ref_id} has category_id {category_id}, unknown in instances"
            )
        image_path = layout.images / image["file_name"]
        if require_images and image_id not in checked_images:
            if not image_path.is_file():
                raise FileNotFoundError(
                    f"RRSIS-D: image {image_path} (image_id {image_id}, ref_id {ref_id}) is missing"
                )
            checked_images.add(image_id)
        if not ref["sentences"]:
            raise ValueError(f"{layout.refs}: ref_id {ref_id} has no sentences")
        for sentence in ref["sentences"]:
            if not isinstance(sentence, dict) or "sent_id" not in sentence:
                raise ValueError(f"{layout.refs}: ref_id {ref_id} has a sentence without 'sent_id'")
            records.append(
                ReferringRecord(
                    sent_id=int(sentence["sent_id"]),
                    ref_id=ref_id,
                    ann_id=ann_id,
                    image_id=image_id,
                    image_path=image_path,
                    sentence=str(sentence.get("raw", sentence.get("sent", ""))),
                    split=split,
                    category=categories[category_id],
                    segmentation=ann["segmentation"],
                    height=int(image["height"]),
                    width=int(image["width"]),
                )
            )
    check_unique_sent_ids(records, str(layout.refs))
    return records


def write_rrsisd(corpus: ReferringCorpus, root: Path) -> RRSISDLayout:
    """Write `refs(unc).p` and `instances.json` for a corpus whose images are in `<root>/JPEGImages`.

    The images must already be there (see `danet.data.corpus.write_image`); a missing one raises
    FileNotFoundError so the layout is never left incomplete.
    """
    corpus.validate()
    root = Path(root)
    images = image_dir(root)
    for image in corpus.images:
        if not (images / image.file_name).is_file():
            raise FileNotFoundError(
                f"write_rrsisd: image {images / image.file_name} (image_id {image.image_id}) missing"
            )
    file_names = {i.image_id: i.file_name for i in corpus.images}
    instances = {
        "info": {"description": "referring segmentation dataset in the RRSIS-D layout"},
        "images": [
            {"id": i.image_id, "file_name": i.file_name, "width": i.width, "height": i.height}
            for i in corpus.images
        ],
        "annotations": [
            {
                "id": a.ann_id,
                "image_id": a.image_id,
                "category_id": a.category_id,
                "segmentation": a.segmentation,
                "area": a.area,
                "bbox": list(a.bbox),
                "iscrowd": 0,
            }
            for a in corpus.annotations
        ],
        "categories": [
            {"id": k, "name": v, "supercategory": v} for k, v in sorted(corpus.categories.items())
        ],
    }
    refs = [
        {
            "ref_id": r.ref_id,
            "ann_id": r.ann_id,
            "image_id": r.image_id,
            "split": r.split,
            "category_id": r.category_id,
            "file_name": file_names[r.image_id],
            "sent_ids": [s.sent_id for s in r.sentences],
            "sentences": [
                {
                    "sent_id": s.sent_id,
                    "raw": s.text,
                    "sent": " ".join(_tokens(s.text)),
                    "tokens": _tokens(s.text),
                }
                for s in r.sentences
            ],
        }
        for r in corpus.refs
    ]
    root.mkdir(parents=True, exist_ok=True)
    layout = RRSISDLayout(refs=root / REFS_FILE, instances=root / INSTANCES_FILE, images=images)
    with open(layout.instances, "w", encoding="utf-8") as f:
        json.dump(instances, f)
    with open(layout.refs, "wb") as f:
        pickle.dump(refs, f, protocol=4)
    return layout


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refs file contains a pickled {module}.{name}; "
            "only lists, dicts, strings and numbers are accepted"
        )


def _index_instances(
    instances: Any,
    path: Path,
) -> tuple[dict[int, dict], dict[int, dict], dict[int, str]]:
    if not isinstance(instances, dict):
        raise ValueError(f"{path}: expected a COCO object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if key not in instances:
            raise ValueError(f"{path}: missing {key!r}")
    required = {
        "images": ("id", "file_name", "height", "width"),
        "annotations": ("id", "image_id", "category_id", "segmentation"),
        "categories": ("id", "name"),
    }
    for key, fields in required.items():
        for i, entry in enumerate(instances[key]):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise ValueError(f"{path}: {key}[{i}] lacks {missing}")
    images = {int(i["id"]): i for i in instances["images"]}
    annotations = {int(a["id"]): a for a in instances["annotations"]}
    categories = {int(c["id"]): str(c["name"]) for c in instances["categories"]}
    return images, annotations, categories


def _tokens(text: str) -> list[str]:
    """refer-style tokens: lower-case words and numbers."""
    return re.findall(r"[a-z0-9]+", text.lower())

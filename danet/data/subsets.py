"""``subsets.json``: the named subsets of a generated dataset, by sentence (writer and reader).

The benchmark builders of `danet.datagen` write, next to the RRSIS-D and JSONL layouts, one JSON object
mapping each ``sent_id`` to the names of the subsets its sentence belongs to (e.g. "synthetic-distractor",
"spacenet-buildings/all", "heldout-paraphrased"); `danet eval --subset` reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

SUBSETS_FILE = "subsets.json"


def write_subsets(subsets: Mapping[int, Sequence[str]], out_dir: Path) -> None:
    """Write ``<out_dir>/subsets.json`` (sent_ids in ascending order)."""
    (Path(out_dir) / SUBSETS_FILE).write_text(
        json.dumps({str(k): list(v) for k, v in sorted(subsets.items())}), encoding="utf-8"
    )


def read_subsets(root: Path) -> dict[int, list[str]]:
    """sent_id -> subset names, from `<root>/subsets.json`."""
    path = Path(root) / SUBSETS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the dataset at {root} was not written by a danet.datagen builder"
        )
    return {int(k): list(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def subset_sent_ids(root: Path, name: str) -> set[int]:
    """The sent_ids of subset `name` (e.g. "synthetic-distractor", "spacenet-buildings/all")."""
    subsets = read_subsets(root)
    ids = {sent_id for sent_id, names in subsets.items() if name in names}
    if not ids:
        known = sorted({n for names in subsets.values() for n in names})
        raise KeyError(f"no subset {name!r} in {Path(root) / SUBSETS_FILE}; known subsets: {known}")
    return ids

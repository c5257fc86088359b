#!/usr/bin/env python3
"""Write the tiny RRSIS-D-layout fixture in this folder (TorchGeo style: seeded and checked in).

    python tests/data/rrsisd_tiny/generate.py [--out DIR]

Six synthetic 96x96 scenes (4 train / 1 val / 1 test) from `danet.datagen.synthetic`, written by the same
writer as any synthetic dataset: `JPEGImages/`, `instances.json` (odd ann_ids as polygons, even ones
as compressed RLE), `refs(unc).p`, and the JSONL variant `refs_<split>.jsonl`. The tests read it with
the loaders used for the real RRSIS-D and check that rerunning this script reproduces it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from danet.datagen.synthetic import SceneSpec, write_synthetic_dataset

SPEC = SceneSpec(
    image_size=96,
    seed=2028,
    same_class=(2, 3),
    other_objects=(1, 2),
    plural_probability=0.2,
    sentences_per_ref=2,
    annotation_format="mixed",
)
NUM_IMAGES = 6
VAL_FRACTION = 1 / 6
TEST_FRACTION = 1 / 6


def generate(out_dir: Path) -> None:
    """Write the fixture into `out_dir`."""
    write_synthetic_dataset(
        out_dir,
        SPEC,
        NUM_IMAGES,
        val_fraction=VAL_FRACTION,
        test_fraction=TEST_FRACTION,
        layouts=("rrsisd", "jsonl"),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    generate(parser.parse_args().out)

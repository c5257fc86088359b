"""A contact sheet of a checkpoint's predictions on an evaluation set: look at them, not only at numbers.

Each cell: the image, the ground truth outlined in green, the prediction tinted magenta, and below it the
expression with the sample's IoU (LAVT semantics: argmax at the network resolution). Samples are taken
evenly over the chosen subset, so two checkpoints drawn with the same arguments show the same samples.

    .venv/bin/python -m benchmarks.danet_gallery --checkpoint danet/checkpoints/danet-lite-v3.pt \
        --data data/heldout --subset heldout-distractor --count 24 --out gallery.jpg
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from danet.checkpoint import load_checkpoint
from danet.data.dataset import ReferringDataset, load_records
from danet.data.subsets import subset_sent_ids
from danet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

CELL = 256
CAPTION_PX = 34
COLUMNS = 6
TRUTH_RGB = (40, 230, 90)
PREDICTION_RGB = (255, 40, 200)


def _picture(image: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (image * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
    return (rgb * 255).round().astype(np.uint8)


def _outline(mask: np.ndarray) -> np.ndarray:
    region = Image.fromarray(mask.astype(np.uint8) * 255)
    grown = np.asarray(region.filter(ImageFilter.MaxFilter(3))) > 0
    return grown & ~mask.astype(bool)


def draw_cell(
    image: torch.Tensor, truth: np.ndarray, predicted: np.ndarray, text: str, iou: float
) -> Image.Image:
    """One sample as a picture: tinted prediction, outlined truth, caption."""
    rgb = _picture(image).astype(np.float32)
    tint = np.array(PREDICTION_RGB, dtype=np.float32)
    rgb[predicted] = 0.55 * rgb[predicted] + 0.45 * tint
    rgb[_outline(truth)] = TRUTH_RGB
    cell = Image.fromarray(rgb.round().astype(np.uint8)).resize((CELL, CELL), Image.NEAREST)
    out = Image.new("RGB", (CELL, CELL + CAPTION_PX), (24, 24, 24))
    out.paste(cell, (0, 0))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    lines = [*textwrap.wrap(text, 42)[:1], f"IoU {iou:.2f}"]
    for i, line in enumerate(lines):
        draw.text((4, CELL + 2 + 15 * i), line, fill=(235, 235, 235), font=font)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--subset", default="all")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    model, info = load_checkpoint(args.checkpoint)
    model.eval()
    records = load_records(args.data, args.split)
    if args.subset != "all":
        wanted = subset_sent_ids(args.data, args.subset)
        records = [r for r in records if r.sent_id in wanted]
    if not records:
        raise SystemExit(f"--subset {args.subset}: no {args.split} sentences in {args.data}")
    picks = np.linspace(0, len(records) - 1, min(args.count, len(records))).round().astype(int)
    dataset = ReferringDataset([records[i] for i in sorted(set(picks))], info.config.input_size)
    cells, ious = [], []
    with torch.no_grad():
        for sample in dataset:
            ids, mask = model.tokenize([sample["text"]])
            logits = model(sample["image"][None], ids, mask).logits
            predicted = logits.argmax(1)[0].numpy().astype(bool)
            truth = sample["mask"].numpy().astype(bool)
            union = (predicted | truth).sum()
            iou = float((predicted & truth).sum() / union) if union else 0.0
            ious.append(iou)
            cells.append(draw_cell(sample["image"], truth, predicted, sample["text"], iou))
    rows = -(-len(cells) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * CELL, rows * (CELL + CAPTION_PX)), (0, 0, 0))
    for i, cell in enumerate(cells):
        sheet.paste(cell, ((i % COLUMNS) * CELL, (i // COLUMNS) * (CELL + CAPTION_PX)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85)
    hits = sum(iou >= 0.5 for iou in ious)
    print(
        f"{args.checkpoint} on {args.data} {args.split}/{args.subset}: {len(ious)} samples drawn, "
        f"mean IoU {np.mean(ious):.3f}, IoU >= 0.5 in {hits}; picture: {args.out}"
    )


if __name__ == "__main__":
    main()

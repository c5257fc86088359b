"""Evaluation with the exact LAVT semantics: argmax prediction vs GT at the network resolution."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from danet.metrics import ReferringMetrics
from danet.model.danet import DANet


@torch.inference_mode()
def evaluate(
    model: DANet, loader: DataLoader, *, device: torch.device | str = "cpu", progress: bool = True
) -> ReferringMetrics:
    """Run ``model`` over ``loader`` and accumulate per-sample intersections and unions."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    metrics = ReferringMetrics()
    for batch in tqdm(loader, desc="evaluating", disable=not progress, leave=False):
        input_ids, attention_mask = model.tokenize(list(batch["text"]))
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
        with autocast:
            out = model(batch["image"].to(device), input_ids.to(device), attention_mask.to(device))
        metrics.update_batch(out.logits.argmax(dim=1).cpu(), batch["mask"])
    model.train(was_training)
    return metrics

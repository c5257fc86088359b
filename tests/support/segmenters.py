"""A small real segmenter for tests and benchmarks that exercise everything around the model."""

import torch

from danet.config import load_preset
from danet.model import build_model
from danet.predict import Predictor
from services.segmenter import LocalSegmenter

TINY_INPUT = 64  # the tiny preset's input side, pixels


def tiny_segmenter(model_name: str, *, seed: int = 0, batch_size: int = 8) -> LocalSegmenter:
    """The ``tiny`` preset with seeded random weights, in-process. With threshold 0 every covered valid
    pixel is foreground, so a detection is the AOI itself (clipped): a sharp geometric check."""
    torch.manual_seed(seed)
    model = build_model(load_preset("tiny"), pretrained=False)
    return LocalSegmenter(
        Predictor(model, input_size=TINY_INPUT, batch_size=batch_size), model_name=model_name
    )

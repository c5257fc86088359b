"""The DANet model: one module per concern (text, backbones, fusion, alignment, decoder)."""

from danet.model.danet import DANet, DANetOutput, build_model
from danet.model.inputs import normalize_tiles

__all__ = ["DANet", "DANetOutput", "build_model", "normalize_tiles"]

"""The DANet model: one module per concern (text, backbones, fusion, alignment, decoder)."""

from danet.model.danet import DANet, DANetOutput, build_model

__all__ = ["DANet", "DANetOutput", "build_model"]

"""Image/mask transforms of the referring pipeline (LAVT: resize + normalize, nothing else).

Augmentation must keep the expression true. Geometric transforms change what the words mean: a
horizontal flip swaps "left"/"right", a vertical flip swaps "top"/"bottom", rotations and crops move
objects between image regions and may cut the target out. So the only augmentation offered here is
photometric (brightness, contrast, saturation), which leaves every referring word valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_pair(image: Image.Image, mask: np.ndarray, size: int) -> tuple[Image.Image, np.ndarray]:
    """Resize an image (bilinear) and its mask (nearest) to `size` x `size`, as LAVT does."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    resized = image.resize((size, size), Image.Resampling.BILINEAR)
    resized_mask = Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    return resized, np.asarray(resized_mask)


def to_unit_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float tensor [3, H, W] in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel (x - mean) / std of a [3, H, W] tensor."""
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values each, got {len(mean)} and {len(std)}")
    if min(std) <= 0:
        raise ValueError(f"std values must be positive, got {tuple(std)}")
    m = torch.tensor(mean, dtype=image.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(3, 1, 1)
    return (image - m) / s


class PhotometricJitter:
    """Random brightness, contrast and saturation scaling of a [3, H, W] tensor in [0, 1].

    Each factor is drawn uniformly from [1 - strength, 1 + strength] with the global torch RNG (the
    DataLoader seeds it per worker). No geometric change: see the module docstring.
    """

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2) -> None:
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= value < 1:
                raise ValueError(f"PhotometricJitter {name} must be in [0, 1), got {value}")
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Return a jittered copy of `image`, clamped to [0, 1]."""
        out = image * self._factor(self.brightness)
        gray = _luma(out)
        out = (out - gray.mean()) * self._factor(self.contrast) + gray.mean()
        gray = _luma(out)
        out = (out - gray) * self._factor(self.saturation) + gray
        return out.clamp(0.0, 1.0)

    @staticmethod
    def _factor(strength: float) -> float:
        return 1.0 + (2.0 * torch.rand(()).item() - 1.0) * strength


def _luma(image: torch.Tensor) -> torch.Tensor:
    r, g, b = image.unbind(0)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(0)

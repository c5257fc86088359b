"""Run a DANet model over images of any size: the expression is encoded once, the image is covered by
overlapping tiles of the model's input size, tiles run in batches, and their foreground probabilities
are blended into one map.

Images (or image sides) smaller than the input size are padded, never upsampled: upsampling would
change the apparent size of objects, and the model was trained at a fixed ground sampling distance.
Padding and nodata pixels are filled with the normalization mean (0 after normalization), the most
neutral input the model has seen, and never count in the blended result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from affine import Affine
from torch import Tensor, nn
from tqdm.auto import tqdm

from danet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from danet.geo.blending import ProbabilityStitcher
from danet.geo.raster import PredictionImage, WindowRead
from danet.geo.tiling import PixelRegion, TilePlanner, TileWindow, pad_tile
from danet.model.text import TextFeatures

# The backbone's coarsest stage has stride 32, so the model accepts only multiples of 32.
_SIZE_MULTIPLE = 32
# Default overlap as a share of the tile size: a quarter keeps every pixel at least an eighth of a
# tile away from the border of some tile, where the context is poorer, at ~1.8x the tiles of no overlap.
_DEFAULT_OVERLAP_DIVISOR = 4

Tokens = tuple[Tensor, Tensor]


def normalize_rgb(
    image: np.ndarray,
    valid: np.ndarray | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """(h, w, 3) RGB in 0..1 -> normalized (h, w, 3) float32; pixels where `valid` is False -> 0."""
    mean_arr = np.asarray(mean, dtype=np.float32)
    std_arr = np.asarray(std, dtype=np.float32)
    out = (np.asarray(image, dtype=np.float32) - mean_arr) / std_arr
    if valid is not None:
        out = np.where(valid[..., None], out, np.float32(0.0))
    return out


def tile_input(
    read: WindowRead,
    tile: TileWindow,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """One normalized model input (3, S, S) from the pixels read for `tile`: nodata and padding are 0
    (the mean colour). Shared by `Predictor` and callers that send tiles to a model elsewhere."""
    padded = pad_tile(normalize_rgb(read.image, read.valid, mean, std), tile)
    return np.ascontiguousarray(padded.transpose(2, 0, 1))


@dataclass(frozen=True)
class PredictionMap:
    """Blended foreground probability of a canvas whose top-left pixel is (`row_off`, `col_off`) of the
    image: the whole image, or the bounding window of the region that was predicted.

    `probability` is float32 (h, w) with NaN wherever `valid` is False (nodata, outside the region).
    """

    probability: np.ndarray
    valid: np.ndarray
    row_off: int
    col_off: int
    tile_count: int

    def canvas_transform(self, image_transform: Affine) -> Affine:
        """The pixel-to-CRS transform of this canvas, given the transform of the whole image."""
        return image_transform @ Affine.translation(self.col_off, self.row_off)


class Predictor:
    """A DANet model ready for inference: eval mode, on `device`, with its input size and normalization.

    `input_size` defaults to the model config's `input_size`; `bf16` (default: on for CUDA) runs the
    forward pass under bfloat16 autocast, with the softmax in float32. The model is moved to `device`
    and put in eval mode in place.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        input_size: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        bf16: bool | None = None,
        model_name: str | None = None,
    ) -> None:
        cfg = getattr(model, "cfg", None)
        size = input_size if input_size is not None else getattr(cfg, "input_size", None)
        if size is None:
            raise ValueError("input_size: the model has no cfg.input_size, so it must be given")
        if size <= 0 or size % _SIZE_MULTIPLE:
            raise ValueError(f"input_size: must be a positive multiple of {_SIZE_MULTIPLE}, got {size}")
        if batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {batch_size}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean/std: need 3 values each and positive std, got {mean} and {std}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.input_size = int(size)
        self.batch_size = batch_size
        self.bf16 = self.device.type == "cuda" if bf16 is None else bf16
        self.model_name = model_name or getattr(cfg, "name", None) or type(model).__name__
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @property
    def default_overlap(self) -> int:
        """The tile overlap used when none is given: a quarter of the input size."""
        return self.input_size // _DEFAULT_OVERLAP_DIVISOR

    def encode_text(self, texts: Sequence[str]) -> Tokens:
        """Tokenize expressions once: (input_ids, attention_mask) on the predictor's device."""
        if not texts or any(not t.strip() for t in texts):
            raise ValueError("texts: need one or more non-empty expressions")
        input_ids, attention_mask = self.model.tokenize(list(texts))
        return input_ids.to(self.device), attention_mask.to(self.device)

    def normalize(self, image: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(h, w, 3) RGB in 0..1 -> normalized (3, h, w) float32; pixels where `valid` is False -> 0."""
        return np.ascontiguousarray(normalize_rgb(image, valid, self.mean, self.std).transpose(2, 0, 1))

    @torch.inference_mode()
    def text_features(self, texts: Sequence[str]) -> TextFeatures:
        """Encode expressions once, on the predictor's device and under its autocast: the features serve
        any tiles through ``predict_batch(..., text_features=)``, and can be cached."""
        input_ids, attention_mask = self.encode_text(texts)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model.encode_text(input_ids, attention_mask)

    @torch.inference_mode()
    def predict_batch(
        self,
        tiles: Tensor,
        texts: Sequence[str] | None = None,
        *,
        tokens: Tokens | None = None,
        text_features: TextFeatures | None = None,
    ) -> Tensor:
        """Foreground probability (B, H, W), float32 on the CPU, of normalized `tiles` (B, 3, H, W).

        Tile i is paired with expression i: pass exactly one of `texts` (B strings), precomputed
        `tokens` from `encode_text`, or encoded `text_features` from `text_features`; tokens and
        features have B rows, or one row shared by all tiles. H and W must be multiples of 32
        (normally both are `input_size`).
        """
        if tiles.ndim != 4 or tiles.shape[1] != 3:
            raise ValueError(f"tiles: expected shape (B, 3, H, W), got {tuple(tiles.shape)}")
        batch, _, height, width = tiles.shape
        if height % _SIZE_MULTIPLE or width % _SIZE_MULTIPLE:
            raise ValueError(
                f"tiles: height and width must be multiples of {_SIZE_MULTIPLE}, got {height}x{width}"
            )
        if sum(given is not None for given in (texts, tokens, text_features)) != 1:
            raise ValueError("predict_batch: pass exactly one of texts or tokens or text_features")
        features = None
        if texts is not None:
            if len(texts) != batch:
                raise ValueError(f"texts: need one expression per tile ({batch}), got {len(texts)}")
            input_ids, attention_mask = self.encode_text(texts)
        elif tokens is not None:
            input_ids, attention_mask = self._per_tile(tokens, batch, "tokens")
        else:
            words, mask, sentence = self._per_tile(
                (text_features.words, text_features.mask, text_features.sentence), batch, "text_features"
            )
            features = TextFeatures(words=words, mask=mask, sentence=sentence)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if features is None:
                logits = self.model(tiles.to(self.device), input_ids, attention_mask).logits
            else:
                logits = self.model.forward_with_text(tiles.to(self.device), features).logits
        return logits.float().softmax(dim=1)[:, 1].cpu()

    def _per_tile(self, tensors: Sequence[Tensor], batch: int, field: str) -> list[Tensor]:
        """Tensors with one row per tile on the device; a single row is shared by every tile."""
        rows = tensors[0].shape[0]
        if rows not in (1, batch):
            raise ValueError(f"{field}: need 1 or {batch} rows (one per tile), got {rows}")
        moved = [t.to(self.device) for t in tensors]
        return [t.expand(batch, *t.shape[1:]) for t in moved] if rows == 1 else moved

    def predict_image(
        self,
        image: PredictionImage,
        text: str,
        *,
        region: PixelRegion | None = None,
        overlap: int | None = None,
        progress: bool = False,
    ) -> PredictionMap:
        """Blended foreground probability of `text` over `image`, or only over `region` of it.

        Tiles of `input_size` overlap by at least `overlap` pixels (default `default_overlap`), and
        the blend ramps each tile's weight over that many pixels from its inner edges. With a region
        the canvas is the region's bounding window and pixels outside its mask are not valid.
        """
        overlap = self.default_overlap if overlap is None else overlap
        tiles = TilePlanner(self.input_size, overlap).plan(image.shape, region)
        if not tiles:
            raise ValueError(f"region: {region} does not intersect image {image.path} of shape {image.shape}")
        stitcher = (
            ProbabilityStitcher.for_region(region, ramp=overlap)
            if region is not None
            else ProbabilityStitcher(image.shape, ramp=overlap)
        )
        tokens = self.encode_text([text])
        with tqdm(total=len(tiles), unit="tile", desc="predict", disable=not progress) as bar:
            for start in range(0, len(tiles), self.batch_size):
                chunk = tiles[start : start + self.batch_size]
                reads = [image.read(tile) for tile in chunk]
                inputs = [tile_input(r, t, self.mean, self.std) for t, r in zip(chunk, reads, strict=True)]
                batch = torch.from_numpy(np.stack(inputs))
                probabilities = self.predict_batch(batch, tokens=tokens).numpy()
                for tile, read, probability in zip(chunk, reads, probabilities, strict=True):
                    stitcher.add(tile, probability, valid=read.valid)
                bar.update(len(chunk))
        stitched = stitcher.result()
        valid = stitched.covered
        if region is not None and region.mask is not None:
            valid = valid & region.mask
        probability = np.where(valid, stitched.probability, np.float32(np.nan))
        return PredictionMap(probability, valid, stitched.row_off, stitched.col_off, len(tiles))

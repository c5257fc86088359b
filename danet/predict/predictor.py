"""Run a DANet model over images of any size: each expression is encoded once, the image is covered by
overlapping tiles of the model's input size, tiles run in batches, and their foreground probabilities
are blended into one map per expression (`danet.predict.multi_query`, the path the dispatcher uses too).

Images (or image sides) smaller than the input size are padded, never upsampled: upsampling would
change the apparent size of objects, and the model was trained at a fixed ground sampling distance.
Tiles are uint8 RGB; padding and nodata pixels get the mean colour of the model's input contract (about 0
after normalization), the most neutral input the model has seen, and never count in the blended result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from danet.config import InputContract
from danet.geo.raster import PredictionImage
from danet.geo.tiling import PixelRegion
from danet.model.inputs import normalize_tiles
from danet.model.text import TextFeatures
from danet.predict.multi_query import PredictionMap, plan_query_tiles, predict_queries

# The backbone's coarsest stage has stride 32, so the model accepts only multiples of 32.
_SIZE_MULTIPLE = 32
# Default overlap as a share of the tile size: a quarter keeps every pixel at least an eighth of a
# tile away from the border of some tile, where the context is poorer, at ~1.8x the tiles of no overlap.
_DEFAULT_OVERLAP_DIVISOR = 4

Tokens = tuple[Tensor, Tensor]


class Predictor:
    """A DANet model ready for inference: eval mode, on `device`, with its input contract.

    `contract` defaults to the model config's `input` (`DANetConfig.input`); `input_size` overrides its
    tile size (default: the contract's, normally the config's `input_size`). `bf16` (default: on for
    CUDA) runs the forward pass under bfloat16 autocast, with the softmax in float32. The model is moved
    to `device` and put in eval mode in place.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        input_size: int | None = None,
        contract: InputContract | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        bf16: bool | None = None,
        model_name: str | None = None,
    ) -> None:
        cfg = getattr(model, "cfg", None)
        contract = contract or getattr(cfg, "input", None) or InputContract()
        size = input_size if input_size is not None else contract.size
        if size is None:
            raise ValueError("input_size: the model has no cfg.input.size, so it must be given")
        if size <= 0 or size % _SIZE_MULTIPLE:
            raise ValueError(f"input_size: must be a positive multiple of {_SIZE_MULTIPLE}, got {size}")
        if batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.contract = contract.model_copy(update={"size": int(size)})
        self.input_size = int(size)
        self.batch_size = batch_size
        self.bf16 = self.device.type == "cuda" if bf16 is None else bf16
        self.model_name = model_name or getattr(cfg, "name", None) or type(model).__name__

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
        tiles: Tensor | np.ndarray,
        texts: Sequence[str] | None = None,
        *,
        tokens: Tokens | None = None,
        text_features: TextFeatures | None = None,
    ) -> Tensor:
        """Foreground probability (B, H, W), float32 on the CPU, of `tiles` (B, 3, H, W).

        uint8 tiles are RGB as stored and are normalised with the predictor's input contract; float
        tiles are taken as already normalised model input (as the datasets produce it). Tile i is paired
        with expression i: pass exactly one of `texts` (B strings), precomputed `tokens` from
        `encode_text`, or encoded `text_features` from `text_features`; tokens and features have B rows,
        or one row shared by all tiles. H and W must be multiples of 32 (normally both are `input_size`).
        """
        if isinstance(tiles, np.ndarray):
            # torch refuses to share read-only memory (arrays Ray deserialised in place): copy those.
            tiles = torch.from_numpy(tiles if tiles.flags.writeable else tiles.copy())
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
        images = tiles.to(self.device)
        if images.dtype == torch.uint8:
            images = normalize_tiles(images, self.contract)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if features is None:
                logits = self.model(images, input_ids, attention_mask).logits
            else:
                logits = self.model.forward_with_text(images, features).logits
        return logits.float().softmax(dim=1)[:, 1].cpu()

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (B, S, S) float32 of uint8 `tiles` (B, 3, S, S), one text per tile, in batches of
        `batch_size`."""
        if len(tiles) != len(texts):
            raise ValueError(f"texts: need one text per tile ({len(tiles)}), got {len(texts)}")
        step = self.batch_size
        out = [
            self.predict_batch(tiles[start : start + step], list(texts[start : start + step])).numpy()
            for start in range(0, len(tiles), step)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.input_size, self.input_size), np.float32)

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
        (prediction,) = self.predict_queries(image, [text], [region], overlap=overlap, progress=progress)
        return prediction

    def predict_queries(
        self,
        image: PredictionImage,
        texts: Sequence[str],
        regions: Sequence[PixelRegion | None] | None = None,
        *,
        overlap: int | None = None,
        progress: bool = False,
    ) -> list[PredictionMap]:
        """One blended map per expression in `texts` over `image` (or over `regions[i]` for text i), in one
        pass: each text is encoded once, windows several queries need are read once, and a forward pass
        takes up to `batch_size` (window, query) pairs. Each map equals `predict_image` of its text alone.

        Raises:
            ValueError: no texts, an empty text, `regions` of another length, or a region off the image.
        """
        regions = [None] * len(texts) if regions is None else list(regions)
        if len(regions) != len(texts):
            raise ValueError(f"regions: need one per text ({len(texts)}), got {len(regions)}")
        overlap = self.default_overlap if overlap is None else overlap
        plan = plan_query_tiles(image.shape, regions, self.input_size, overlap)
        for region, tiles in zip(regions, plan.tiles, strict=True):
            if not tiles:
                raise ValueError(
                    f"region: {region} does not intersect image {image.path} of shape {image.shape}"
                )
        features = self.text_features(texts)

        def segment(tiles: np.ndarray, queries: Sequence[int]) -> np.ndarray:
            rows = torch.as_tensor(list(queries), device=features.words.device)
            paired = TextFeatures(
                words=features.words[rows], mask=features.mask[rows], sentence=features.sentence[rows]
            )
            return self.predict_batch(tiles, text_features=paired).numpy()

        total = sum(len(tiles) for tiles in plan.tiles)
        with tqdm(total=total, unit="tile", desc="predict", disable=not progress) as bar:
            done = predict_queries(
                plan,
                image.read,
                segment,
                fill=self.contract.fill_uint8,
                max_pairs=self.batch_size,
                on_pairs=bar.update,
            )
        return list(done.maps)

"""BERT-family text encoder and its tokenizer (transformers): at most ``max_tokens`` tokens, padding mask.

The encoder returns per-word features, the word mask, and a sentence embedding (masked mean of the word
features), which the alignment modules use.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor, nn

from danet.config import TextConfig
from danet.weights import load_bert, resolve_weights

if TYPE_CHECKING:
    from transformers import BertModel, PreTrainedTokenizerBase

_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Whole-word entries for words common in referring expressions over aerial images (RRSIS-D classes and
# spatial/size/colour words); single characters and "##" continuations let any other ASCII word be
# spelled out, so the generated tokenizer rarely needs [UNK].
_WORD_LIST = (
    "the a an of on in at to and or with near next by from all two three four five several many left "
    "right top bottom upper lower middle center centre corner side edge north south east west "
    "northern southern eastern western above below behind front between beside closest nearest "
    "farthest first second third last small smaller smallest large larger largest big bigger biggest "
    "long longer longest short tiny white black gray grey red blue green yellow dark light round "
    "square rectangular airplane airplanes plane planes airport ship ships boat boats harbor harbour "
    "vehicle vehicles car cars storage tank tanks building buildings bridge bridges dam chimney "
    "chimneys stadium windmill windmills baseball basketball tennis golf ground track field fields "
    "court courts train station overpass expressway service area toll road roads river lake tree "
    "trees"
)
_GENERATED_WORDS = tuple(_WORD_LIST.split())


def generated_vocab() -> dict[str, int]:
    """The deterministic word-piece vocabulary used by randomly initialised (test) encoders."""
    pieces = [*_SPECIAL_TOKENS, *_GENERATED_WORDS]
    symbols = string.ascii_lowercase + string.digits
    pieces += list(symbols) + [f"##{c}" for c in symbols] + list(string.punctuation)
    return {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}


@dataclass
class TextFeatures:
    """Encoded text: ``words`` (B, L, C), ``mask`` (B, L) with 1 on real tokens, ``sentence`` (B, C)."""

    words: Tensor
    mask: Tensor
    sentence: Tensor


class TextEncoder(nn.Module):
    """A ``BertModel`` without pooler, plus the tokenizer that matches it (created on first use)."""

    def __init__(self, bert: BertModel, cfg: TextConfig) -> None:
        super().__init__()
        self.bert = bert
        self.cfg = cfg
        self._tokenizer: PreTrainedTokenizerBase | None = None

    @property
    def dim(self) -> int:
        """Width of the word features."""
        return self.cfg.hidden

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer, loaded lazily so that building a model for a checkpoint needs no vocab files."""
        if self._tokenizer is None:
            self._tokenizer = build_tokenizer(self.cfg)
        return self._tokenizer

    def tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Token ids and attention mask, both LongTensor (B, max_tokens), truncated and zero-padded."""
        encoded = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.cfg.max_tokens,
            return_tensors="pt",
        )
        return encoded["input_ids"], encoded["attention_mask"]

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> TextFeatures:
        """Encode token ids; the sentence embedding is the mean of the real (unmasked) word features."""
        words = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.to(words.dtype).unsqueeze(-1)
        sentence = (words * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return TextFeatures(words=words, mask=attention_mask, sentence=sentence)


def build_tokenizer(cfg: TextConfig) -> PreTrainedTokenizerBase:
    """The tokenizer from ``cfg.tokenizer``, else the ``cfg.weights`` folder, else the generated vocab."""
    from transformers import AutoTokenizer, BertTokenizerFast

    source, field = (
        (cfg.tokenizer, "text.tokenizer") if cfg.tokenizer is not None else (cfg.weights, "text.weights")
    )
    if source is None:
        return BertTokenizerFast(vocab=generated_vocab(), do_lower_case=True)
    tokenizer = AutoTokenizer.from_pretrained(resolve_weights(source, field), local_files_only=True)
    if len(tokenizer) != cfg.vocab_size:
        raise ValueError(
            f"text.vocab_size={cfg.vocab_size} but the tokenizer of {field} has {len(tokenizer)}"
        )
    return tokenizer


def build_text_encoder(cfg: TextConfig, *, pretrained: bool) -> TextEncoder:
    """Build the text encoder: pretrained from ``cfg.weights`` when asked and configured, else random.

    Raises:
        MissingWeightsError: ``pretrained`` and ``cfg.weights`` names weights that are not present.
    """
    from transformers import BertConfig, BertModel

    if pretrained and cfg.weights is not None:
        bert = load_bert(resolve_weights(cfg.weights, "text.weights"), cfg, "text.weights")
    else:
        vocab_size = cfg.vocab_size if cfg.vocab_size is not None else len(generated_vocab())
        bert_cfg = BertConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.hidden,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            intermediate_size=cfg.intermediate,
            max_position_embeddings=cfg.max_position_embeddings,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
        )
        bert = BertModel(bert_cfg, add_pooling_layer=False)
    if cfg.freeze:
        bert.requires_grad_(False)
    elif cfg.freeze_embeddings:
        bert.embeddings.requires_grad_(False)
    return TextEncoder(bert, cfg)

"""LAVT pixel-word fusion: the pixel-word attention module (PWAM) and the tanh language gate.

Behaviour follows LAVT (``lib/backbone.py``): 1x1 convolutions over tokens are written as ``nn.Linear``
on (B, N, C) tensors, which is the same computation.
"""

from __future__ import annotations

from torch import Tensor, nn


class _TokenInstanceNorm(nn.Module):
    """``InstanceNorm1d`` (no affine, like LAVT) over the token axis of a (B, N, C) tensor."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm1d(channels)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each channel over the tokens of each sample."""
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class SpatialImageLanguageAttention(nn.Module):
    """Each pixel attends over the words (LAVT): queries from pixels, keys/values from words.

    Padded words are masked by adding -1e4 before the softmax; the similarity is scaled by the total key
    width ``key_dim ** -0.5`` as in LAVT (not per head).
    """

    def __init__(self, visual_dim: int, text_dim: int, key_dim: int, value_dim: int, num_heads: int) -> None:
        super().__init__()
        if key_dim % num_heads or value_dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide key_dim={key_dim} and value_dim={value_dim}")
        self.num_heads = num_heads
        self.scale = key_dim**-0.5
        self.query = nn.Sequential(nn.Linear(visual_dim, key_dim), _TokenInstanceNorm(key_dim))
        self.key = nn.Linear(text_dim, key_dim)
        self.value = nn.Linear(text_dim, value_dim)
        self.out = nn.Sequential(nn.Linear(value_dim, value_dim), _TokenInstanceNorm(value_dim))

    def forward(self, pixels: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
        """``pixels`` (B, N, Cv), ``words`` (B, L, Ct), ``word_mask`` (B, L) 1 = real -> (B, N, value_dim)."""
        batch, n_pix, _ = pixels.shape
        n_words = words.shape[1]
        mask = word_mask.to(pixels.dtype).unsqueeze(-1)  # (B, L, 1)
        heads = self.num_heads
        query = self.query(pixels).reshape(batch, n_pix, heads, -1).transpose(1, 2)  # (B, h, N, dk)
        key = (self.key(words) * mask).reshape(batch, n_words, heads, -1).transpose(1, 2)  # (B, h, L, dk)
        value = (self.value(words) * mask).reshape(batch, n_words, heads, -1).transpose(1, 2)
        sim = query @ key.transpose(-1, -2) * self.scale  # (B, h, N, L)
        sim = sim + (1e4 * mask.transpose(1, 2).unsqueeze(1) - 1e4)
        attended = sim.softmax(dim=-1) @ value  # (B, h, N, dv)
        return self.out(attended.transpose(1, 2).reshape(batch, n_pix, -1))


class PWAM(nn.Module):
    """Pixel-word attention module: ``project(GELU(Wv x) * language_attention(x, words))``."""

    def __init__(self, dim: int, text_dim: int, num_heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.visual = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout))
        self.attention = SpatialImageLanguageAttention(dim, text_dim, dim, dim, num_heads)
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout))

    def forward(self, pixels: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
        """Fuse (B, N, C) pixel tokens with (B, L, Ct) words -> (B, N, C)."""
        return self.project(self.visual(pixels) * self.attention(pixels, words, word_mask))


class LanguageGate(nn.Module):
    """LAVT language gate: ``tanh(W2 relu(W1 f))`` (no biases), scaling the fused feature per channel."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.Tanh()
        )

    def forward(self, fused: Tensor) -> Tensor:
        """Gate values in (-1, 1), same shape as ``fused``."""
        return self.gate(fused)


class StageFusion(nn.Module):
    """What LAVT does after the blocks of one stage.

    ``F = PWAM(x, words)``; the stage output becomes ``x + gate(F) * F`` (fed to the next stage) and the
    decoder receives ``LayerNorm(F)``. The last stage feeds no further stage, so it has no gate (LAVT
    builds one there whose output is never used).
    """

    def __init__(
        self, dim: int, text_dim: int, num_heads: int, dropout: float, *, feeds_next_stage: bool
    ) -> None:
        super().__init__()
        self.pwam = PWAM(dim, text_dim, num_heads, dropout)
        self.gate = LanguageGate(dim) if feeds_next_stage else None
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, pixels: Tensor, words: Tensor, word_mask: Tensor, *, position: Tensor | None = None
    ) -> tuple[Tensor | None, Tensor]:
        """(B, N, C) tokens -> (next-stage tokens, or None for the last stage; decoder tokens).

        ``position`` (1 or B, N, C), if given, is added to the tokens PWAM sees (see ``fusion.coords``).
        """
        fused = self.pwam(pixels if position is None else pixels + position, words, word_mask)
        updated = pixels + self.gate(fused) * fused if self.gate is not None else None
        return updated, self.norm(fused)

"""Chapter 04 — position information.

Self-attention compares every token with every other token and never looks at where they are:
permute the input and the output is permuted the same way, so "狗追猫" and "猫追狗" would get the
same set of vectors. The chapter adds position information in three ways: a learned table of
absolute positions, the fixed sinusoidal encoding of "Attention Is All You Need" (where moving by
a fixed offset is a rotation), and relative distances clipped into buckets.

Shape legend: ``B`` batch, ``T`` sequence length, ``D`` model width (``d_model``).
"""

import math

import torch
from torch import Tensor, nn

__all__ = [
    "sinusoidal_positional_encoding",
    "offset_rotation",
    "LearnedPositionalEmbedding",
    "relative_positions",
]


# ---------------------------------------------------------------------------------------------
# Sinusoidal encoding: PE[pos, 2i] = sin(pos / base^(2i/D)), PE[pos, 2i+1] = cos(same angle).
# ---------------------------------------------------------------------------------------------


def _check_even(d_model: int) -> None:
    if d_model <= 0 or d_model % 2 != 0:
        raise ValueError(
            f"d_model must be a positive even number, got {d_model}: the encoding is made of "
            "(sin, cos) pairs, one pair per frequency; use an even width such as "
            f"{max(2, d_model + d_model % 2)}"
        )


def _frequencies(d_model: int, base: float) -> Tensor:
    """ω_i = 1 / base^(2i / D) for i = 0 .. D/2 - 1, from fast (ω_0 = 1) to slow; float64."""
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (D/2,)
    return torch.exp(-math.log(base) * two_i / d_model)  # the same as base ** (-2i / D)


def sinusoidal_positional_encoding(
    max_len: int,
    d_model: int,
    base: float = 10000.0,
) -> Tensor:
    """The fixed position encoding of Vaswani et al. (2017), interleaved as
    in the paper.

    Even columns hold sin(pos · ω_i), odd columns cos(pos · ω_i), with
    ω_i = base^(-2i/D). The wavelengths grow geometrically from 2π to about
    2π · base, so nearby positions differ in the fast columns and distant
    ones in the slow columns.

    Returns:
        (max_len, d_model) float32 (computed in float64 so large positions
        stay accurate).
    """
    _check_even(d_model)
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    # (T, 1) * (D/2,) -> (T, D/2)
    angle = pos * _frequencies(d_model, base)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)  # dims 0, 2, 4, ...
    pe[:, 1::2] = torch.cos(angle)  # dims 1, 3, 5, ...
    return pe.to(torch.float32)


def offset_rotation(k: int, d_model: int, base: float = 10000.0) -> Tensor:
    """The (D, D) matrix M with PE[pos + k] = M @ PE[pos] for every
    position.

    By the angle-addition formulas each (sin, cos) pair at angle
    a = pos·ω moves to angle a + k·ω by a 2×2 rotation that depends on k
    but not on pos:
        [sin(a + kω)]   [ cos kω   sin kω] [sin a]
        [cos(a + kω)] = [-sin kω   cos kω] [cos a]
    M is block-diagonal with one such block per frequency. This is why a
    model can learn to attend "k tokens back" with a single linear map.

    Returns:
        (d_model, d_model) float32, orthogonal.
    """
    _check_even(d_model)
    theta = k * _frequencies(d_model, base)  # (D/2,)
    c, s = torch.cos(theta), torch.sin(theta)
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    even = torch.arange(0, d_model, 2)
    m[even, even] = c
    m[even, even + 1] = s
    m[even + 1, even] = -s
    m[even + 1, even + 1] = c
    return m.to(torch.float32)


# ---------------------------------------------------------------------------------------------
# Learned absolute positions: a second lookup table, indexed by position instead of token id.
# ---------------------------------------------------------------------------------------------


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned vector per position, as BERT and GPT-2 do.

    The table has one row per position up to ``max_len``; a longer input
    has no row to look up, which is the main limitation of learned absolute
    positions.
    """

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.d_model = d_model
        self.embedding = nn.Embedding(max_len, d_model)  # (max_len, D)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, D) token embeddings → (B, T, D) with position t's row
        added to x[:, t]."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must be (B, T, {self.d_model}), "
                f"got shape {tuple(x.shape)}; add a "
                "batch dimension with x.unsqueeze(0)"
            )
        B, T, D = x.shape
        if T > self.max_len:
            raise ValueError(
                f"sequence length {T} exceeds "
                f"max_len={self.max_len}: truncate the input "
                f"or build the module with max_len >= {T}"
            )
        pos = torch.arange(T, device=x.device)  # (T,)
        # (B, T, D) + (T, D) broadcasts over the batch
        return x + self.embedding(pos)


# ---------------------------------------------------------------------------------------------
# Relative positions: what matters is j - i, clipped so far-away tokens share one bucket.
# ---------------------------------------------------------------------------------------------


def relative_positions(T: int, max_distance: int) -> Tensor:
    """Bucket of the offset from query i to key j, ready to index a
    (2·max_distance + 1) table.

    Entry [i, j] = clip(j − i, −max_distance, max_distance) + max_distance,
    as in Shaw et al. (2018): offsets beyond ±max_distance share the
    outermost bucket, and the shift by max_distance makes every entry a
    valid non-negative index.
    Example: relative_positions(3, 1) -> [[1, 2, 2], [0, 1, 2], [0, 0, 1]]

    Returns:
        (T, T) long, values in [0, 2·max_distance].
    """
    if T < 0 or max_distance < 0:
        raise ValueError(
            f"T and max_distance must be >= 0, got T={T}, {max_distance=}",
        )
    pos = torch.arange(T)
    # (1, T) - (T, 1): [i, j] = j - i
    offset = pos.unsqueeze(0) - pos.unsqueeze(1)
    return offset.clamp(-max_distance, max_distance) + max_distance

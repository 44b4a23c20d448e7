"""Chapter 05 — scaled dot-product attention.

Attention is a weighted average of the value vectors; the weights come from how well each query
matches each key: ``softmax(Q Kᵀ / sqrt(Dh)) V``.

Shape legend: B batch, H heads, T query length, S key length, Dh head width, Dv value width.
Any number of leading batch axes (B, H, ...) is allowed; only the last two axes are special.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["softmax", "attention_weights", "scaled_dot_product_attention"]


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape ``*shapes`` broadcast to, or None if they do not broadcast.

    NumPy's rule, read from the right: two sizes agree when they are equal or one of them is 1.
    Example: ``broadcast_shape((2, 1, 4), (3, 1)) -> (2, 3, 4)``. (``torch.broadcast_shapes``
    does the same but imports sympy on its first call, which costs seconds.)
    """
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for sizes in zip(*padded):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:
            return None
        out.append(big.pop() if big else 1)
    return tuple(out)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, computed stably.

    Subtracting the row maximum first changes nothing mathematically
    (the factor exp(-max) cancels) but keeps exp() from overflowing:
    softmax([1e4, 0]) is [1, 0], not inf/inf = NaN. A row that is entirely
    -inf (a query with nothing to attend to) gives zeros, not NaN.

    Example: ``softmax(tensor([0.0, log(3.0)]))`` -> ``[0.25, 0.75]``.
    """
    if not x.dtype.is_floating_point:
        raise TypeError(
            "softmax needs a floating-point "
            f"tensor, got {x.dtype}; use x.float()"
        )
    row_max = x.amax(dim=dim, keepdim=True)
    # An all -inf row has max -inf, and -inf - (-inf) is NaN: shift such
    # rows by 0 instead.
    row_max = torch.where(
        torch.isfinite(row_max),
        row_max,
        torch.zeros_like(row_max),
    )
    e = torch.exp(x - row_max)
    total = e.sum(dim=dim, keepdim=True)
    # total is >= 1 (the max entry gives exp(0)) unless every entry was
    # -inf; then 0 / 1 = 0.
    return e / torch.where(total == 0, torch.ones_like(total), total)


def attention_weights(
    query: Tensor,
    key: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    *,
    scale: float | None = None,
) -> Tensor:
    """softmax(Q Kᵀ · scale) with an optional mask: how much each query
    looks at each key.

    Args:
        query: (..., T, Dh). key: (..., S, Dh).
        attn_mask: broadcastable to (..., T, S); bool, True = may attend;
            or float, added to the scores (0 keeps, -inf blocks).
        is_causal: query i sees keys 0..i only (upper-left aligned when
            T != S, like torch).
        scale: multiplies the scores; default 1 / sqrt(Dh).
    Returns:
        (..., T, S); each row sums to 1, or is all zeros when the mask
        blocks every key.
    """
    if attn_mask is not None and is_causal:
        raise ValueError(
            "pass attn_mask or is_causal, not "
            "both (combine_masks joins masks)"
        )
    if query.size(-1) != key.size(-1):
        raise ValueError(
            "query and key must have the same last dim "
            f"Dh, got {query.size(-1)} and {key.size(-1)}"
        )
    T, S = query.size(-2), key.size(-2)
    # Dot products of Dh unit-variance terms have variance Dh; dividing by
    # sqrt(Dh) brings it back to 1 so the softmax does not saturate into a
    # one-hot with vanishing gradients.
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale  # (..., T, S)
    if is_causal:
        # query i keeps keys 0..i: chapter 7's causal_mask
        ones = torch.ones(T, S, dtype=torch.bool, device=query.device)
        attn_mask = ones.tril()  # (T, S)
    if attn_mask is not None:
        if (
            broadcast_shape(attn_mask.shape, scores.shape)
            != tuple(scores.shape)
        ):
            raise ValueError(
                f"attn_mask of shape {tuple(attn_mask.shape)} "
                "does not broadcast to the scores "
                f"(..., T, S) = {tuple(scores.shape)}"
            )
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            # keep the dtype of the query
            scores = scores + attn_mask.to(scores.dtype)
    return softmax(scores, dim=-1)  # (..., T, S) normalise over the keys


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    *,
    scale: float | None = None,
) -> Tensor:
    """softmax(Q Kᵀ · scale) V, argument for argument like
    F.scaled_dot_product_attention.

    Args:
        query: (B, H, T, Dh). key: (B, H, S, Dh). value: (B, H, S, Dv).
        attn_mask: bool, True = may attend; or float, added to the scores.
    Returns:
        (B, H, T, Dv). A query row with no allowed key gives zeros, as
        torch does.
    """
    if attn_mask is not None and is_causal:
        # say how to fix the call
        raise ValueError("pass attn_mask or is_causal, not both")
    if key.size(-2) != value.size(-2):
        raise ValueError(
            "key and value must have the same length "
            f"S, got {key.size(-2)} and {value.size(-2)}"
        )
    # (B, H, T, S)
    weights = attention_weights(
        query,
        key,
        attn_mask,
        is_causal,
        scale=scale,
    )
    return weights @ value  # (B, H, T, Dv)

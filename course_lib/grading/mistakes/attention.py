"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.attention`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from course_lib.grading.checkers import Mistake


def _attend(
    q: Tensor,
    k: Tensor,
    v: Tensor | None,
    mask: Tensor | None,
    scale: float,
    *,
    dim: int = -1,
    fill: float = -math.inf,
    nan_rows: bool = False,
    transpose_scores: bool = False,
) -> Tensor:
    """Attention with knobs for each mistake: the softmax axis, the fill value, NaN rows."""
    scores = (k @ q.transpose(-2, -1) if transpose_scores else q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, fill)
        else:
            scores = scores + mask
    weights = torch.softmax(scores, dim=dim)
    if not nan_rows:
        weights = weights.nan_to_num(nan=0.0)
    return weights if v is None else weights @ v


def _causal(t: int, s: int, diagonal: int = 0) -> Tensor:
    return torch.ones(t, s, dtype=torch.bool).tril(diagonal)


def softmax_mistakes() -> list[Mistake]:
    """Wrong versions of ``softmax(x, dim=-1)``."""

    def other_axis(axis: int) -> Callable:
        def fn(x: Tensor, dim: int = -1) -> Tensor:
            if axis >= x.ndim or axis == dim % x.ndim:
                raise ValueError("not a different axis")
            return torch.softmax(x, axis)

        return fn

    wrong_axis = (
        "the softmax normalises along the wrong axis: the values along `dim` (the argument) "
        "must sum to 1"
    )
    no_keepdim = (
        "the sum over `dim` loses its axis, so the division broadcasts along the wrong axis: "
        "use keepdim=True"
    )
    return [Mistake(wrong_axis, other_axis(axis)) for axis in range(4)] + [
        Mistake(
            "the numerators are not divided by their sum (exp(x) alone is not a distribution)",
            lambda x, dim=-1: torch.exp(x - x.amax(dim, keepdim=True)),
        ),
        Mistake(
            no_keepdim, lambda x, dim=-1: _unkept(torch.exp(x - x.amax(dim, keepdim=True)), dim)
        ),
        Mistake(no_keepdim, lambda x, dim=-1: _unkept(torch.exp(x), dim)),
    ]


def _unkept(e: Tensor, dim: int) -> Tensor:
    return e / e.sum(dim)  # the mistake: without keepdim the sum broadcasts along another axis


def attention_mistakes(*, with_value: bool) -> list[Mistake]:
    """Wrong versions of ``attention_weights`` (``with_value=False``) or of
    ``scaled_dot_product_attention`` (``True``), with the SDPA signature."""
    names = ["query", "key", "value"][: 3 if with_value else 2] + ["attn_mask", "is_causal"]

    def make(
        description: str,
        *,
        scale_fn: Callable[[float | None, int], float] | None = None,
        causal_diagonal: int = 0,
        invert_causal: bool = False,
        invert: bool = False,
        **attend_knobs: Any,
    ) -> Mistake:
        def fn(*args: Any, **kwargs: Any) -> Tensor:
            a = dict(zip(names, args)) | kwargs
            q, k, v = a["query"], a["key"], a.get("value")
            mask, scale = a.get("attn_mask"), a.get("scale")
            d = q.size(-1)
            if scale_fn is not None:
                scale = scale_fn(scale, d)
            elif scale is None:
                scale = 1 / math.sqrt(d)
            if a.get("is_causal", False):
                mask = _causal(q.size(-2), k.size(-2), causal_diagonal)
                mask = ~mask if invert_causal else mask
            elif invert and mask is not None and mask.dtype == torch.bool:
                mask = ~mask
            return _attend(q, k, v, mask, scale, **attend_knobs)

        return Mistake(description, fn)

    unscaled = "the scores are not scaled: multiply Q·Kᵀ by 1/√d_k, or by `scale` when it is given"
    return [
        make(unscaled, scale_fn=lambda given, d: 1.0),
        make(
            "`scale` is ignored: when the caller passes scale=..., use it instead of 1/√d_k",
            scale_fn=lambda given, d: 1 / math.sqrt(d),
        ),
        make(
            "the scores are divided by d_k instead of √d_k",
            scale_fn=lambda given, d: 1 / d if given is None else given,
        ),
        make(
            "the scores are multiplied by √d_k instead of divided by it",
            scale_fn=lambda given, d: math.sqrt(d) if given is None else given,
        ),
        make(
            "the softmax runs over the queries (dim -2); each query's weights over the keys "
            "(the last axis) must sum to 1",
            dim=-2,
        ),
        make(
            "the scores are transposed: compute Q·Kᵀ (queries along rows), not K·Qᵀ",
            transpose_scores=True,
        ),
        make(
            "the mask polarity is inverted: True means 'may attend' (kept), as in "
            "F.scaled_dot_product_attention; nn.MultiheadAttention uses the opposite",
            invert=True,
        ),
        make(
            "the causal mask is inverted: query i must see keys 0..i (on and below the "
            "diagonal), not the future",
            invert_causal=True,
        ),
        make(
            "the causal mask is shifted by one: query i must also see key i itself",
            causal_diagonal=-1,
        ),
        make(
            "the causal mask is shifted by one: query i may see keys 0..i, not key i + 1",
            causal_diagonal=1,
        ),
        make(
            "blocked scores are set to 0 before the softmax; 0 is an ordinary score, use -inf "
            "so that exp() gives exactly 0",
            fill=0.0,
        ),
        make(
            "a query whose keys are all blocked gives NaN (exp(-inf) / 0); it must give a row "
            "of zeros, as torch's scaled_dot_product_attention does",
            nan_rows=True,
        ),
    ]

"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.self_attention`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.grading.checkers import Mistake
from course_lib.grading.mistakes.attention import _attend, _causal


def projection_mistakes(*, cross: bool) -> list[Mistake]:
    """Wrong versions of ``SelfAttention.forward`` / ``CrossAttention.forward`` (module first)."""

    def run(
        m: nn.Module,
        x: Tensor,
        context: Tensor | None,
        mask: Tensor | None,
        causal: bool,
        *,
        q_src: str = "x",
        kv_src: str = "context",
        swap: str = "",
        scale: Any = None,
        invert: bool = False,
    ) -> Tensor:
        src = {"x": x, "context": x if context is None else context}
        projections = {"q": m.q_proj, "k": m.k_proj, "v": m.v_proj}
        if swap:
            a, b = swap
            projections[a], projections[b] = projections[b], projections[a]
        q = projections["q"](src[q_src])
        k = projections["k"](src[kv_src])
        v = projections["v"](src[kv_src])
        d = q.size(-1)
        scale = 1 / math.sqrt(d) if scale is None else scale(d, x.size(-1))
        if causal:
            mask = _causal(q.size(-2), k.size(-2))
        if mask is not None and mask.dtype == torch.bool and invert:
            mask = ~mask
        return _attend(q, k, v, mask, scale)

    def make(description: str, **knobs: Any) -> Mistake:
        if cross:

            def fn(m: nn.Module, x: Tensor, context: Tensor, attn_mask: Tensor | None = None):
                return run(m, x, context, attn_mask, False, **knobs)
        else:

            def fn(
                m: nn.Module, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
            ):
                return run(m, x, None, attn_mask, is_causal, **knobs)

        return Mistake(description, fn)

    found = [
        make("the scores are not scaled by 1/√d_k", scale=lambda d, d_model: 1.0),
        make(
            "the scores are scaled by 1/√d_model; the scale belongs to the width of the "
            "queries and keys, d_k",
            scale=lambda d, d_model: 1 / math.sqrt(d_model),
        ),
        make("k_proj and v_proj are swapped: keys come from k_proj, values from v_proj", swap="kv"),
        make(
            "q_proj and k_proj are swapped: queries come from q_proj, keys from k_proj", swap="qk"
        ),
        make(
            "the mask polarity is inverted: True means 'may attend' (kept)",
            invert=True,
        ),
    ]
    if cross:
        found += [
            make(
                "keys and values are computed from x; in cross-attention they come from the "
                "context (the encoder output), only the queries come from x",
                kv_src="x",
            ),
            make(
                "queries and keys/values are swapped: queries come from x (the decoder), keys "
                "and values from the context",
                q_src="context",
                kv_src="x",
            ),
        ]
    return found

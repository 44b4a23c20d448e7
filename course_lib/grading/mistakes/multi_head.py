"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.multi_head`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.grading.checkers import Mistake
from course_lib.grading.mistakes.attention import _attend


def split_heads_mistakes() -> list[Mistake]:
    def no_transpose(x: Tensor, num_heads: int) -> Tensor:
        B, T, D = x.shape
        return x.reshape(B, num_heads, T, D // num_heads)

    def interleaved(x: Tensor, num_heads: int) -> Tensor:
        B, T, D = x.shape
        return x.reshape(B, T, D // num_heads, num_heads).permute(0, 3, 1, 2)

    return [
        Mistake(
            "the tensor was reshaped straight to (B, H, T, Dh), which mixes tokens and features; "
            "split the LAST axis into (H, Dh) first, then move the head axis before time",
            no_transpose,
        ),
        Mistake(
            "the features are dealt out to the heads in turn (feature j to head j % H); head h "
            "gets the consecutive features h*Dh ... (h+1)*Dh - 1",
            interleaved,
        ),
    ]


def merge_heads_mistakes() -> list[Mistake]:
    def no_transpose(x: Tensor) -> Tensor:
        B, H, T, Dh = x.shape
        return x.reshape(B, T, H * Dh)

    def interleaved(x: Tensor) -> Tensor:
        B, H, T, Dh = x.shape
        return x.permute(0, 2, 3, 1).reshape(B, T, H * Dh)

    return [
        Mistake(
            "the heads were reshaped to (B, T, D) without moving the head axis back behind time "
            "first, which mixes tokens",
            no_transpose,
        ),
        Mistake(
            "the heads are interleaved feature by feature; concatenate them: head 0's Dh "
            "features, then head 1's, ...",
            interleaved,
        ),
    ]


def _mha(
    m: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    need_weights: bool = False,
    *,
    scale: str = "head",
    out_proj: bool = True,
    split: str = "right",
    merge: str = "right",
    weights: str = "per_head",
    invert: bool = False,
    dim: int = -1,
) -> tuple[Tensor, Tensor | None]:
    H = m.num_heads
    B, T, D = query.shape
    Dh = D // H

    def split_(x: Tensor) -> Tensor:
        b, t, _ = x.shape
        if split == "no_transpose":
            return x.reshape(b, H, t, Dh)
        return x.view(b, t, H, Dh).transpose(1, 2)

    q, k, v = split_(m.q_proj(query)), split_(m.k_proj(key)), split_(m.v_proj(value))
    s = {"head": 1 / math.sqrt(Dh), "model": 1 / math.sqrt(D), "none": 1.0}[scale]
    if is_causal:
        attn_mask = torch.ones(T, key.size(1), dtype=torch.bool).tril()
    elif invert and attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = ~attn_mask
    w = _attend(q, k, None, attn_mask, s, dim=dim)  # (B, H, T, S)
    o = w @ v  # (B, H, T, Dh)
    o = o.reshape(B, T, D) if merge == "no_transpose" else o.transpose(1, 2).reshape(B, T, D)
    if out_proj:
        o = m.out_proj(o)
    if not need_weights:
        return o, None
    return o, (w.mean(1) if weights == "averaged" else w)


def mha_mistakes() -> list[Mistake]:
    """Wrong versions of ``MultiHeadAttention.forward`` (module first)."""

    def make(description: str, **knobs: Any) -> Mistake:
        return Mistake(description, lambda m, *a, **k: _mha(m, *a, **k, **knobs))

    return [
        make(
            "the scores are scaled by 1/√D (the model width); each head scales by 1/√Dh, the "
            "width of ITS queries and keys",
            scale="model",
        ),
        make("the scores are not scaled by 1/√Dh", scale="none"),
        make(
            "out_proj (W_O) is missing: after concatenating the heads, mix them with out_proj",
            out_proj=False,
        ),
        make(
            "the heads are split with a reshape straight to (B, H, T, Dh), without the transpose",
            split="no_transpose",
        ),
        make(
            "the heads are merged with a reshape straight to (B, T, D), without moving the head "
            "axis back behind time first",
            merge="no_transpose",
        ),
        make(
            "the weights are averaged over the heads (what nn.MultiheadAttention returns by "
            "default); return them per head, (B, H, T, S)",
            weights="averaged",
        ),
        make("the mask polarity is inverted: True means 'may attend'", invert=True),
        make(
            "the softmax runs over the queries; each query's weights over the keys sum to 1",
            dim=-2,
        ),
    ]


def load_mha_mistakes() -> list[Mistake]:
    """Wrong versions of ``load_torch_mha(module, torch_mha)``."""

    def load(order=(0, 1, 2), *, transpose=False, out=True, biases=True):
        def fn(module: nn.Module, torch_mha: nn.MultiheadAttention) -> None:
            projections = (module.q_proj, module.k_proj, module.v_proj)
            with torch.no_grad():
                w = torch_mha.in_proj_weight.chunk(3)
                for proj, i in zip(projections, order):
                    proj.weight.copy_(w[i].T if transpose else w[i])
                if biases and torch_mha.in_proj_bias is not None:
                    b = torch_mha.in_proj_bias.chunk(3)
                    for proj, i in zip(projections, order):
                        proj.bias.copy_(b[i])
                if out:
                    module.out_proj.weight.copy_(torch_mha.out_proj.weight)
                    if biases and torch_mha.out_proj.bias is not None:
                        module.out_proj.bias.copy_(torch_mha.out_proj.bias)

        return fn

    swapped = (
        "the three blocks of in_proj_weight are assigned in the wrong order; they are stacked "
        "as [W_Q; W_K; W_V]"
    )
    return [
        Mistake(swapped, load((1, 0, 2))),
        Mistake(swapped, load((0, 2, 1))),
        Mistake(swapped, load((2, 1, 0))),
        Mistake(swapped, load((1, 2, 0))),
        Mistake(swapped, load((2, 0, 1))),
        Mistake(
            "the weights were transposed; nn.Linear and in_proj_weight both store (out, in)",
            load(transpose=True),
        ),
        Mistake("out_proj was not copied", load(out=False)),
        Mistake("the biases (in_proj_bias, out_proj.bias) were not copied", load(biases=False)),
    ]

"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.transformer`."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.grading.checkers import Mistake


def layer_norm_mistakes() -> list[Mistake]:
    def ln(*, unbiased=False, eps_outside=False, dim=-1, affine=True, swap=False):
        def fn(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
            mean = x.mean(dim, keepdim=True)
            var = x.var(dim, keepdim=True, unbiased=unbiased)
            std = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
            y = (x - mean) / std
            if not affine:
                return y
            return y * bias + weight if swap else y * weight + bias

        return fn

    return [
        Mistake(
            "the variance is the unbiased one (divided by D - 1); layer norm divides by D "
            "(unbiased=False, as F.layer_norm)",
            ln(unbiased=True),
        ),
        Mistake(
            "eps is added to the standard deviation; it belongs inside the square root: "
            "sqrt(var + eps)",
            ln(eps_outside=True),
        ),
        Mistake(
            "the statistics are taken over the wrong axis; normalise each token over its D "
            "features (the last axis)",
            ln(dim=-2),
        ),
        Mistake(
            "the statistics are taken over the wrong axis; normalise each token over its D "
            "features (the last axis)",
            ln(dim=0),
        ),
        Mistake("the learned scale (weight) and shift (bias) are not applied", ln(affine=False)),
        Mistake("weight and bias are swapped: y * weight + bias", ln(swap=True)),
    ]


def feed_forward_mistakes() -> list[Mistake]:
    """Wrong versions of ``FeedForward.forward`` (module first)."""

    def ff(act: Callable | None, *, after: bool = False):
        def fn(m: nn.Module, x: Tensor) -> Tensor:
            h = m.linear1(x)
            if act is not None and not after:
                h = act(h)
            out = m.linear2(h)
            return act(out) if after else out

        return fn

    def wrong_act(m: nn.Module, x: Tensor) -> Tensor:
        act = F.gelu if m.activation is F.relu else F.relu
        return m.linear2(act(m.linear1(x)))

    def tanh_gelu(m: nn.Module, x: Tensor) -> Tensor:
        return m.linear2(F.gelu(m.linear1(x), approximate="tanh"))

    return [
        Mistake(
            'the activation does not follow the `activation` argument ("relu" or "gelu")',
            wrong_act,
        ),
        Mistake(
            "this is the tanh approximation of GELU; use the exact (erf) GELU, F.gelu's default",
            tanh_gelu,
        ),
        Mistake("there is no activation between linear1 and linear2", ff(None)),
        Mistake(
            "the activation is applied after linear2; it goes between the two layers",
            ff(F.relu, after=True),
        ),
        Mistake(
            "the activation is applied after linear2; it goes between the two layers",
            ff(F.gelu, after=True),
        ),
    ]


def encoder_layer_mistakes() -> list[Mistake]:
    """Wrong versions of ``TransformerEncoderLayer.forward`` (module first)."""

    def layer(
        *,
        swap_ln: bool = False,
        attn_residual: bool = True,
        ff_residual: bool = True,
        norm_residual: bool = False,
        norms_swapped: bool = False,
        ignore_mask: bool = False,
        act: Callable | None = None,
    ):
        def fn(m: nn.Module, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
            pre = m.norm_first != swap_ln
            n1, n2 = (m.norm2, m.norm1) if norms_swapped else (m.norm1, m.norm2)
            a = act or m.activation
            mask = None if ignore_mask else attn_mask

            def sa(h: Tensor) -> Tensor:
                return m.self_attn(h, h, h, attn_mask=mask)[0]

            def ffn(h: Tensor) -> Tensor:
                return m.linear2(a(m.linear1(h)))

            if pre:
                h = n1(x)
                x = (h if norm_residual else x) * attn_residual + sa(h)
                h = n2(x)
                x = (h if norm_residual else x) * ff_residual + ffn(h)
            else:
                x = n1(x * attn_residual + sa(x))
                x = n2(x * ff_residual + ffn(x))
            return x

        return fn

    return [
        Mistake(
            "post-LN and pre-LN are swapped: norm_first=True means x + Sublayer(LayerNorm(x)), "
            "norm_first=False means LayerNorm(x + Sublayer(x))",
            layer(swap_ln=True),
        ),
        Mistake(
            "the residual connection around self-attention is missing", layer(attn_residual=False)
        ),
        Mistake(
            "the residual connection around the feed-forward network is missing",
            layer(ff_residual=False),
        ),
        Mistake(
            "the residual adds the NORMALISED x; in pre-LN the residual path carries x itself, "
            "untouched: x + Sublayer(LayerNorm(x))",
            layer(norm_residual=True),
        ),
        Mistake(
            "norm1 and norm2 are swapped: norm1 goes with self-attention", layer(norms_swapped=True)
        ),
        Mistake("attn_mask is not passed on to the self-attention", layer(ignore_mask=True)),
        Mistake(
            "the feed-forward activation does not follow the `activation` argument",
            layer(act=F.gelu),
        ),
        Mistake(
            "the feed-forward activation does not follow the `activation` argument",
            layer(act=F.relu),
        ),
    ]


def count_parameters_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "frozen parameters (requires_grad=False) were counted; with trainable_only=True "
            "count only those that train",
            lambda module, trainable_only=True: sum(p.numel() for p in module.parameters()),
        ),
        Mistake(
            "trainable_only=False must count every parameter, frozen ones included",
            lambda module, trainable_only=True: sum(
                p.numel() for p in module.parameters() if p.requires_grad
            ),
        ),
        Mistake(
            "a parameter shared by two submodules (tied weights) was counted twice; "
            "module.parameters() lists it once",
            lambda module, trainable_only=True: sum(
                p.numel()
                for _, p in module.named_parameters(remove_duplicate=False)
                if p.requires_grad or not trainable_only
            ),
        ),
        Mistake(
            "buffers (e.g. BatchNorm's running statistics) were counted: state_dict() holds "
            "buffers too, parameters() does not",
            lambda module, trainable_only=True: sum(
                v.numel() for v in module.state_dict().values()
            ),
        ),
    ]

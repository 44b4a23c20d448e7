"""Chapter 09 — the transformer block.

A block is two sublayers, attention (tokens exchange information) and a feed-forward network
(each token is processed on its own), each wrapped in a residual connection and a layer norm:

- post-LN (the 2017 paper):  x = LayerNorm(x + Sublayer(x))
- pre-LN (GPT-2 and later):  x = x + Sublayer(LayerNorm(x))

Pre-LN leaves the residual path ``x + ...`` untouched from input to output, so gradients reach
early layers undamped and training is stable without a learning-rate warm-up.

Names and submodules follow ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` so
the ``load_torch_*`` helpers can copy their weights; masks keep the course's polarity
(True = may attend).

Shape legend: B batch, T target length, S source (memory) length, D d_model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.multi_head import MultiHeadAttention, load_torch_mha

__all__ = [
    "layer_norm",
    "FeedForward",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "count_parameters",
    "load_torch_encoder_layer",
    "load_torch_decoder_layer",
]

# "gelu" is the exact erf form, as F.gelu and nn.TransformerEncoderLayer use by default.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def _get_activation(name: str) -> Callable[[Tensor], Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def layer_norm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each token's D features to mean 0, variance 1, then scale
    and shift.

    Like ``F.layer_norm(x, (D,), weight, bias, eps)``: the variance is the
    biased one (divide by D), and eps sits inside the square root.

    Args:
        x: (..., D). weight, bias: (D,), the learned scale (gamma) and
            shift (beta).
    Returns:
        (..., D).
    """
    D = x.size(-1)
    if weight.shape != (D,) or bias.shape != (D,):
        raise ValueError(
            f"weight and bias must have shape ({D},) to match x's last "
            f"dim, got {tuple(weight.shape)} and {tuple(bias.shape)}"
        )
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias  # (..., D)


class FeedForward(nn.Module):
    """Position-wise feed-forward network: linear2(activation(linear1(x))).

    The same two layers are applied to every position independently; d_ff
    is usually 4 * D.

    Args:
        d_model: D. d_ff: hidden width. activation: "relu" or "gelu".
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.activation = _get_activation(activation)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D)."""
        # (B, T, d_ff) inside
        return self.linear2(self.activation(self.linear1(x)))


class TransformerEncoderLayer(nn.Module):
    """Self-attention + feed-forward, each with a residual connection and a LayerNorm.

    Matches ``nn.TransformerEncoderLayer(batch_first=True, dropout=0.0)`` with the same
    ``norm_first`` and ``activation`` once :func:`load_torch_encoder_layer` copied its weights.

    Args:
        d_model: D. nhead: H. dim_feedforward: hidden width of the FFN.
        norm_first: pre-LN if True, post-LN if False. activation: "relu" or "gelu".
        layer_norm_eps: eps of both LayerNorms.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        norm_first: bool = True,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.activation_name = activation
        self.activation = _get_activation(activation)
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        return self.self_attn(x, x, x, attn_mask=attn_mask)[0]  # (B, T, D)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.linear2(self.activation(self.linear1(x)))  # (B, T, D)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """(B, T, D) -> (B, T, D). ``attn_mask``: (T, S) or (B, 1, T, S),
        True = may attend."""
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), attn_mask)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, attn_mask))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the encoder output, then feed-forward.

    Three sublayers, each with a residual connection and its own LayerNorm (norm1, norm2,
    norm3). The causal mask is not built in: pass ``tgt_mask=causal_mask(T)``, as with torch.
    Matches ``nn.TransformerDecoderLayer(batch_first=True, dropout=0.0)`` once
    :func:`load_torch_decoder_layer` copied its weights.

    Args: as :class:`TransformerEncoderLayer`.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        norm_first: bool = True,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.activation_name = activation
        self.activation = _get_activation(activation)
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.multihead_attn = MultiHeadAttention(d_model, nhead)  # torch's name for cross-attn
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps)

    def _sa_block(self, x: Tensor, tgt_mask: Tensor | None) -> Tensor:
        return self.self_attn(x, x, x, attn_mask=tgt_mask)[0]  # (B, T, D)

    def _mha_block(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None) -> Tensor:
        # queries from the decoder, keys and values from the encoder output
        return self.multihead_attn(x, memory, memory, attn_mask=memory_mask)[0]  # (B, T, D)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.linear2(self.activation(self.linear1(x)))  # (B, T, D)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, D), memory (B, S, D) -> (B, T, D).

        Args:
            tgt_mask: (T, T) or (B, 1, T, T), True = may attend; usually
                ``causal_mask(T)``.
            memory_mask: (T, S) or (B, 1, T, S) / (B, 1, 1, S), True = may
                attend.
        """
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask))
            x = self.norm3(x + self._ff_block(x))
        return x


class TransformerEncoder(nn.Module):
    """A stack of ``num_layers`` encoder layers (submodule ``layers``).

    A pre-LN stack ends with one more LayerNorm (``norm``), as in GPT-2: the residual stream is
    never normalized inside the layers. A post-LN stack is already normalized, so ``norm`` is
    None.

    Args:
        num_layers: how many layers. The others: as :class:`TransformerEncoderLayer`.
    """

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        norm_first: bool = True,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                d_model, nhead, dim_feedforward, norm_first, activation, layer_norm_eps
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if norm_first else None

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """(B, T, D) -> (B, T, D); the same mask is used by every layer."""
        for layer in self.layers:
            x = layer(x, attn_mask)
        return x if self.norm is None else self.norm(x)


def count_parameters(
    module: nn.Module,
    trainable_only: bool = True,
) -> int:
    """Number of scalar parameters; a parameter shared by two submodules
    counts once.

    Example: ``count_parameters(nn.Linear(4, 3))`` -> 4*3 + 3 = 15.
    """
    return sum(
        p.numel()
        for p in module.parameters()
        if p.requires_grad or not trainable_only
    )


def _check_torch_layer(
    module: TransformerEncoderLayer | TransformerDecoderLayer, torch_layer: nn.Module
) -> None:
    """Refuse to copy between layers that would not compute the same function."""
    act = torch_layer.activation  # a function when built from a string, else a module
    if act is F.relu or isinstance(act, nn.ReLU):
        torch_activation = "relu"
    elif act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        torch_activation = "gelu"
    else:
        torch_activation = repr(act)
    checks = {
        "norm_first": (module.norm_first, torch_layer.norm_first),
        "activation": (module.activation_name, torch_activation),
        "layer_norm_eps": (module.norm1.eps, torch_layer.norm1.eps),
        "batch_first": (True, torch_layer.self_attn.batch_first),
        "d_model": (module.linear1.in_features, torch_layer.linear1.in_features),
        "dim_feedforward": (module.linear1.out_features, torch_layer.linear1.out_features),
    }
    for name, (ours, theirs) in checks.items():
        if ours != theirs:
            raise ValueError(
                f"{name} differs: ours {ours!r}, torch's {theirs!r}; build both layers alike"
            )


def load_torch_encoder_layer(
    module: TransformerEncoderLayer, torch_layer: nn.TransformerEncoderLayer
) -> None:
    """Copy the weights of ``nn.TransformerEncoderLayer(batch_first=True)`` into ``module``.

    After this, with ``dropout=0.0`` (or torch in eval mode) both give the same output; give
    torch the inverted mask (``to_torch_mha_mask``).
    """
    _check_torch_layer(module, torch_layer)
    load_torch_mha(module.self_attn, torch_layer.self_attn)
    for name in ("linear1", "linear2", "norm1", "norm2"):
        getattr(module, name).load_state_dict(getattr(torch_layer, name).state_dict())


def load_torch_decoder_layer(
    module: TransformerDecoderLayer, torch_layer: nn.TransformerDecoderLayer
) -> None:
    """Copy the weights of ``nn.TransformerDecoderLayer(batch_first=True)`` into ``module``."""
    _check_torch_layer(module, torch_layer)
    load_torch_mha(module.self_attn, torch_layer.self_attn)
    load_torch_mha(module.multihead_attn, torch_layer.multihead_attn)
    for name in ("linear1", "linear2", "norm1", "norm2", "norm3"):
        getattr(module, name).load_state_dict(getattr(torch_layer, name).state_dict())

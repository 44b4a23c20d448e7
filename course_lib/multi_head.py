"""Chapter 08 — multi-head attention.

One softmax can only put its weight in one place per query. H heads, each on its own slice of
width Dh = D / H, can look at H different things at once for about the same cost as one head of
width D. Then W_O (``out_proj``) mixes the concatenated heads back into a D-wide vector.

Shape walk-through: (B, T, D) -> split -> (B, H, T, Dh) -> attend -> (B, H, T, Dh)
-> merge -> (B, T, D) -> out_proj -> (B, T, D).

Shape legend: B batch, T query length, S key length, D embed_dim, H heads, Dh = D // H.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib.attention import attention_weights

__all__ = ["split_heads", "merge_heads", "MultiHeadAttention", "load_torch_mha"]


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh): head h gets features
    h*Dh ... (h+1)*Dh - 1 of every token.

    The feature axis is cut into H consecutive slices; the transpose then
    puts the heads before time so each head is a separate (T, Dh) problem
    for the batched matmul.
    """
    if x.dim() != 3:
        raise ValueError(
            f"split_heads expects (B, T, D), got shape {tuple(x.shape)}",
        )
    B, T, D = x.shape
    if num_heads <= 0 or D % num_heads != 0:
        raise ValueError(
            f"embed dim D={D} must be divisible by num_heads={num_heads}; "
            f"pick num_heads among the divisors of {D}"
        )
    # (B, H, T, Dh)
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D): concatenate the heads again, the inverse
    of split_heads."""
    if x.dim() != 4:
        raise ValueError(
            "merge_heads expects (B, H, T, Dh), "
            f"got shape {tuple(x.shape)}"
        )
    B, H, T, Dh = x.shape
    # transpose makes the memory non-contiguous, so reshape (which copies)
    # rather than view
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, D)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with keep-polarity masks; loads
    ``nn.MultiheadAttention`` weights.

    Args:
        embed_dim: D. num_heads: H, must divide D. bias: bias in all four
            projections.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_heads <= 0 or embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim={embed_dim} must be divisible "
                f"by num_heads={num_heads}; pick num_heads "
                f"among the divisors of {embed_dim}"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` (B, T, D) to ``key``/``value`` (B, S, D).

        Args:
            attn_mask: (T, S) or 4-D broadcastable to (B, H, T, S), e.g. a
                padding mask (B, 1, 1, S); bool True = may attend, or float
                added to the scores.
            is_causal: apply the upper-left aligned causal mask.
            need_weights: also return the per-head attention weights.
        Returns:
            ``(out, weights)``: out (B, T, D); weights (B, H, T, S) or
            None.
        """
        if attn_mask is not None and attn_mask.dim() == 3:
            # (B, T, S) would line up B with the head axis of (B, H, T, S):
            # refuse to guess.
            raise ValueError(
                "a 3-D attn_mask is ambiguous; pass (T, S) "
                "or 4-D (B, 1, T, S): use mask[:, None]"
            )
        H = self.num_heads
        q = split_heads(self.q_proj(query), H)  # (B, H, T, Dh)
        k = split_heads(self.k_proj(key), H)  # (B, H, S, Dh)
        v = split_heads(self.v_proj(value), H)  # (B, H, S, Dh)
        # (B, H, T, S)
        weights = attention_weights(q, k, attn_mask, is_causal)
        out = merge_heads(weights @ v)  # (B, T, D)
        out = self.out_proj(out)  # (B, T, D) W_O mixes the heads
        return out, (weights if need_weights else None)


def load_torch_mha(
    module: MultiHeadAttention,
    torch_mha: nn.MultiheadAttention,
) -> None:
    """Copy the weights of ``torch_mha`` into ``module`` so both compute
    the same thing.

    torch stacks W_Q, W_K, W_V into one ``in_proj_weight`` of shape (3D, D)
    (and ``in_proj_bias`` (3D,)); the three row blocks are our ``q_proj``,
    ``k_proj``, ``v_proj``. To compare outputs build torch's module with
    ``batch_first=True`` and give it inverted masks
    (:func:`course_lib.masking.to_torch_mha_mask`).
    """
    if (torch_mha.embed_dim, torch_mha.num_heads) != (
        module.embed_dim,
        module.num_heads,
    ):
        raise ValueError(
            f"shape mismatch: torch has embed_dim={torch_mha.embed_dim}, "
            f"num_heads={torch_mha.num_heads}; ours has "
            f"embed_dim={module.embed_dim}, num_heads={module.num_heads}"
        )
    if not torch_mha._qkv_same_embed_dim:
        raise ValueError(
            "torch_mha has kdim/vdim != embed_dim; "
            "only equal widths are supported"
        )
    if torch_mha.bias_k is not None or torch_mha.add_zero_attn:
        raise ValueError(
            "add_bias_kv and add_zero_attn are "
            "not supported; build torch_mha without"
        )
    torch_has_bias = torch_mha.in_proj_bias is not None
    if torch_has_bias != (module.q_proj.bias is not None):
        raise ValueError(
            f"bias mismatch: torch_mha bias={torch_has_bias}, "
            f"module bias={not torch_has_bias}; "
            "build both with the same bias argument"
        )
    projections = (module.q_proj, module.k_proj, module.v_proj)
    with torch.no_grad():
        for proj, w in zip(
            projections,
            torch_mha.in_proj_weight.chunk(3, dim=0),
        ):
            proj.weight.copy_(w)  # (D, D)
        if torch_has_bias:
            for proj, b in zip(
                projections,
                torch_mha.in_proj_bias.chunk(3, dim=0),
            ):
                proj.bias.copy_(b)  # (D,)
        module.out_proj.weight.copy_(torch_mha.out_proj.weight)
        if torch_has_bias:
            module.out_proj.bias.copy_(torch_mha.out_proj.bias)

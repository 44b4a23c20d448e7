"""Chapter 06 — self-attention and cross-attention.

Plain attention has no parameters, so nothing in it can learn. Three learned projections fix
that: W_Q turns a token into "what I am looking for", W_K into "what I offer to be found by" and
W_V into "what I hand over when I am picked".

- Self-attention: Q, K and V all come from the same sequence x.
- Cross-attention: Q comes from the decoder sequence x, K and V from the encoder output
  (``context``). The output has one row per query, so its length is T, the decoder's length.

Shape legend: B batch, T query length, S key (context) length, D model width.
"""

from __future__ import annotations

from torch import Tensor, nn

from course_lib.attention import scaled_dot_product_attention

__all__ = ["SelfAttention", "CrossAttention"]


class SelfAttention(nn.Module):
    """Single-head self-attention with learned Q, K, V projections
    (no output projection).

    Args:
        d_model: width D of the input. d_k: width of queries and keys
            (default D).
        d_v: width of values and of the output (default D). bias: bias in
            the projections.
    """

    def __init__(
        self,
        d_model: int,
        d_k: int | None = None,
        d_v: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        d_k = d_model if d_k is None else d_k
        d_v = d_model if d_v is None else d_v
        self.q_proj = nn.Linear(d_model, d_k, bias=bias)
        self.k_proj = nn.Linear(d_model, d_k, bias=bias)
        self.v_proj = nn.Linear(d_model, d_v, bias=bias)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """(B, T, D) -> (B, T, d_v). ``attn_mask`` broadcasts to (B, T, T),
        True = may attend."""
        q = self.q_proj(x)  # (B, T, d_k)
        k = self.k_proj(x)  # (B, T, d_k)
        v = self.v_proj(x)  # (B, T, d_v)
        # (B, T, d_v)
        return scaled_dot_product_attention(q, k, v, attn_mask, is_causal)


class CrossAttention(nn.Module):
    """Single-head cross-attention: queries from ``x``, keys and values
    from ``context``.

    Args:
        d_model: width D of ``x``. d_context: width of ``context``
            (the encoder output).
        d_k: width of queries and keys (default D). d_v: width of the
            output (default D).
        bias: bias in the projections.
    """

    def __init__(
        self,
        d_model: int,
        d_context: int,
        d_k: int | None = None,
        d_v: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        d_k = d_model if d_k is None else d_k
        d_v = d_model if d_v is None else d_v
        self.q_proj = nn.Linear(d_model, d_k, bias=bias)
        self.k_proj = nn.Linear(d_context, d_k, bias=bias)
        self.v_proj = nn.Linear(d_context, d_v, bias=bias)

    def forward(
        self,
        x: Tensor,
        context: Tensor,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """(B, T, D), (B, S, d_context) -> (B, T, d_v).

        ``attn_mask`` broadcasts to (B, T, S), True = may attend; e.g.
        ``am[:, None, :].bool()`` hides the padding of the context.
        """
        if x.size(0) != context.size(0):
            raise ValueError(
                "x and context must have the same batch "
                f"size, got {x.size(0)} and {context.size(0)}"
            )
        q = self.q_proj(x)  # (B, T, d_k)
        k = self.k_proj(context)  # (B, S, d_k)
        v = self.v_proj(context)  # (B, S, d_v)
        # (B, T, d_v)
        return scaled_dot_product_attention(q, k, v, attn_mask)

"""Chapter 07 — masks: causal and padding.

Every mask in this course uses **keep polarity**: ``True`` means "this query may attend to this
key", exactly like ``F.scaled_dot_product_attention`` and Hugging Face's ``attention_mask``
(1 = real token). ``nn.MultiheadAttention`` uses the opposite polarity; :func:`polarity_table`
lists the conventions and :func:`to_torch_mha_mask` converts.

Shape legend: B batch, H heads, T query length, S key length.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.attention import broadcast_shape  # chapter 05's; re-exported for chapter 07

__all__ = [
    "broadcast_shape",
    "causal_mask",
    "padding_mask",
    "combine_masks",
    "to_additive_mask",
    "shift_right",
    "polarity_table",
    "to_torch_mha_mask",
]


def causal_mask(T: int, S: int | None = None, device=None) -> Tensor:
    """Bool (T, S) mask, True on and below the diagonal: query i may see
    keys 0..i.

    Upper-left aligned like
    ``F.scaled_dot_product_attention(is_causal=True)``: query i sees keys
    ``j <= i`` even when T != S.

    Example: ``causal_mask(3)`` ->
    ``[[True, False, False], [True, True, False], [True, True, True]]``.

    Args:
        T: query length. S: key length (defaults to T). device: where to
            build the mask.
    Returns:
        (T, S) bool.
    """
    S = T if S is None else S
    if T < 0 or S < 0:
        raise ValueError(
            f"causal_mask needs non-negative lengths, got T={T}, S={S}",
        )
    # (T, S)
    return torch.ones(T, S, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: Tensor) -> Tensor:
    """Turn a Hugging Face style ``attention_mask`` into a key mask for
    (B, H, T, S) scores.

    Example: ``[[1, 1, 0]]`` -> shape (1, 1, 1, 3) holding
    ``[True, True, False]``.

    Args:
        attention_mask: (B, S), 1 (or True) = real token, 0 = padding.
    Returns:
        (B, 1, 1, S) bool; the two singleton axes broadcast over heads and
        queries.
    """
    if attention_mask.dim() != 2:
        raise ValueError(
            "attention_mask must be (B, S), got shape "
            f"{tuple(attention_mask.shape)}; add a batch axis "
            "with attention_mask[None] for a single sequence"
        )
    if (
        attention_mask.dtype != torch.bool
        and not torch.isin(
            attention_mask,
            torch.tensor([0, 1], device=attention_mask.device),
        ).all()
    ):
        raise ValueError(
            "attention_mask must hold only 0 (padding) and 1 (real token)"
        )
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)


def combine_masks(*masks: Tensor | None) -> Tensor:
    """Logical AND of keep masks with broadcasting: a key is visible only
    if every mask allows it.

    ``None`` entries are skipped, so optional masks can be passed straight
    through. Passing no mask at all (or only ``None``) raises
    ``ValueError``: there is nothing to combine, and the caller should pass
    ``attn_mask=None`` instead.

    Example: ``combine_masks(causal_mask(T), padding_mask(am))`` ->
    (B, 1, T, T).

    Returns:
        bool tensor with the broadcast shape of the inputs.
    """
    present = [m for m in masks if m is not None]
    if not present:
        raise ValueError(
            "combine_masks got no mask (all None); "
            "pass attn_mask=None to attention instead"
        )
    for m in present:
        if m.dtype != torch.bool:
            raise TypeError(
                "combine_masks needs bool keep masks, got "
                f"{m.dtype}; convert a 0/1 attention_mask with "
                "padding_mask(), and combine before to_additive_mask()"
            )
    if broadcast_shape(*(m.shape for m in present)) is None:
        shapes = ", ".join(str(tuple(m.shape)) for m in present)
        raise ValueError(
            f"masks of shapes {shapes} do not broadcast together",
        )
    out = present[0]
    for m in present[1:]:
        out = out & m  # broadcasting AND; `&` never modifies its inputs
    return out


def to_additive_mask(
    mask: Tensor,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Bool keep mask -> float mask to add to the scores: 0.0 where kept,
    -inf where blocked.

    Adding -inf before the softmax gives exactly zero weight
    (exp(-inf) = 0); a large finite negative number such as -1e9 only gives
    a tiny one, and a fully blocked row would become uniform instead of
    zero.

    Args:
        mask: bool, any shape, True = may attend. dtype: a floating-point
            dtype.
    Returns:
        Same shape as ``mask``, ``dtype``.
    """
    if mask.dtype != torch.bool:
        raise TypeError(
            f"to_additive_mask needs a bool keep mask, got {mask.dtype}",
        )
    if not dtype.is_floating_point:
        raise TypeError(
            f"to_additive_mask needs a floating-point dtype, got {dtype}",
        )
    zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return zeros.masked_fill(~mask, float("-inf"))


def shift_right(labels: Tensor, start_token_id: int) -> Tensor:
    """Decoder inputs for teacher forcing: the start token, then the labels
    moved one step right.

    Position t of the decoder sees ``labels[:, t - 1]`` and is trained to
    predict ``labels[:, t]``. Example: ``shift_right([[5, 6, 7]], 1)`` ->
    ``[[1, 5, 6]]``.

    Hugging Face's ``shift_tokens_right`` also takes a ``pad_token_id`` and
    replaces the loss marker -100 by it. This function has no pad id, so it
    does not guess one: a negative id that would become a decoder input
    (anywhere except the last column, which is dropped) raises
    ``ValueError``. Replace the -100s first, e.g.
    ``labels.masked_fill(labels == -100, pad_id)``.

    Args:
        labels: (B, T) integer token ids.
    Returns:
        (B, T) new tensor, same dtype; ``labels`` is not modified.
    """
    if labels.dim() != 2:
        raise ValueError(
            f"labels must be (B, T), got shape {tuple(labels.shape)}",
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(
            f"labels must hold integer token ids, got {labels.dtype}",
        )
    kept = labels[:, :-1]  # (B, T-1) the last label is never an input
    if (kept < 0).any():
        raise ValueError(
            "labels contain negative ids (e.g. -100 loss markers) "
            "that would become decoder inputs; replace them first: "
            "labels.masked_fill(labels == -100, pad_token_id)"
        )
    start = torch.full(
        (labels.size(0), 1),
        start_token_id,
        dtype=labels.dtype,
        device=labels.device,
    )
    return torch.cat([start, kept], dim=1)  # (B, T)


def polarity_table() -> list[tuple[str, str, str]]:
    """Who means what by ``True``: rows of (API, argument, what True / 1 means).

    The book renders this as a table. Float masks are added to the scores in every API, so only
    bool (and 0/1) masks differ.
    """
    return [
        ("course_lib (this course)", "attn_mask", "may attend (keep)"),
        ("F.scaled_dot_product_attention", "attn_mask", "may attend (keep)"),
        ("nn.MultiheadAttention", "attn_mask", "may NOT attend (blocked)"),
        ("nn.MultiheadAttention", "key_padding_mask", "padding: key is ignored (blocked)"),
        ("nn.TransformerEncoderLayer", "src_mask, src_key_padding_mask", "blocked"),
        ("Hugging Face transformers", "attention_mask", "1 = real token (keep)"),
    ]


def to_torch_mha_mask(keep_mask: Tensor) -> Tensor:
    """Invert a bool keep mask into the blocked-is-True mask ``nn.MultiheadAttention`` wants.

    Works for both its ``attn_mask`` ((T, S) or (B*H, T, S)) and ``key_padding_mask`` ((B, S)):
    shapes are unchanged, only the polarity flips. A float (additive) mask means the same to
    both APIs and must be passed unchanged, so it is rejected here.
    """
    if keep_mask.dtype != torch.bool:
        raise TypeError(
            f"to_torch_mha_mask needs a bool keep mask, got {keep_mask.dtype}; a float "
            "additive mask means the same to nn.MultiheadAttention, pass it unchanged"
        )
    return ~keep_mask

"""Property tests (hypothesis) for chapters 05-08 on random shapes and values."""

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.attention import attention_weights, scaled_dot_product_attention, softmax
from course_lib.masking import (
    causal_mask,
    combine_masks,
    padding_mask,
    shift_right,
    to_additive_mask,
)
from course_lib.multi_head import merge_heads, split_heads

SETTINGS = settings(max_examples=50, deadline=None, database=None)

dims = st.integers(1, 4)  # B, H
lengths = st.integers(1, 7)  # T, S (T = 1 and T != S included)
head_dims = st.integers(1, 8)
seeds = st.integers(0, 2**31 - 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@SETTINGS
@given(rows=dims, n=lengths, seed=seeds, magnitude=st.sampled_from([1.0, 30.0, 1e4]))
def test_softmax_sums_to_one_and_matches_torch(rows, n, seed, magnitude):
    x = torch.randn(rows, n, generator=gen(seed)) * magnitude
    out = softmax(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(rows))
    torch.testing.assert_close(out, torch.softmax(x, dim=-1), atol=1e-6, rtol=0)


@SETTINGS
@given(B=dims, H=dims, T=lengths, S=lengths, Dh=head_dims, seed=seeds, p=st.floats(0.0, 1.0))
def test_attention_matches_sdpa_with_random_bool_masks(B, H, T, S, Dh, seed, p):
    g = gen(seed)
    q, k, v = (torch.randn(B, H, n, Dh, generator=g) for n in (T, S, S))
    keep = torch.rand(B, 1, T, S, generator=g) >= p  # p near 1 gives fully masked rows
    w = attention_weights(q, k, attn_mask=keep)
    row_sums = w.sum(-1)  # (B, H, T)
    has_key = keep.any(-1).expand(B, H, T)
    torch.testing.assert_close(row_sums[has_key], torch.ones(int(has_key.sum())))
    assert (w[~has_key] == 0).all(), "a query with no allowed key gets all-zero weights"
    assert (w[~keep.expand(B, H, T, S)] == 0).all(), "blocked keys get exactly zero weight"
    ours = scaled_dot_product_attention(q, k, v, attn_mask=keep)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=keep))
    additive = scaled_dot_product_attention(q, k, v, attn_mask=to_additive_mask(keep))
    torch.testing.assert_close(additive, ours)


@SETTINGS
@given(B=dims, T=lengths, S=lengths, Dh=head_dims, seed=seeds, scale=st.floats(0.05, 3.0))
def test_causal_attention_matches_sdpa(B, T, S, Dh, seed, scale):
    g = gen(seed)
    q, k, v = (torch.randn(B, n, Dh, generator=g) for n in (T, S, S))
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale),
        F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale),
    )
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, S)),
        scaled_dot_product_attention(q, k, v, is_causal=True),
    )


@SETTINGS
@given(B=dims, T=lengths, S=lengths, seed=seeds)
def test_masks_compose_like_elementwise_and(B, T, S, seed):
    g = gen(seed)
    am = (torch.rand(B, S, generator=g) > 0.4).long()
    pad = padding_mask(am)
    combined = combine_masks(causal_mask(T, S), None, pad)
    assert combined.shape == (B, 1, T, S)
    i = torch.arange(T)[:, None]
    j = torch.arange(S)[None, :]
    expected = (j <= i)[None, None] & am.bool()[:, None, None, :]
    assert torch.equal(combined, expected)
    additive = to_additive_mask(combined)
    assert torch.equal(additive == 0, combined)
    assert torch.isneginf(additive[~combined]).all()


@SETTINGS
@given(B=dims, H=dims, T=lengths, Dh=head_dims, seed=seeds)
def test_split_merge_heads_round_trip(B, H, T, Dh, seed):
    x = torch.randn(B, T, H * Dh, generator=gen(seed))
    s = split_heads(x, H)
    assert s.shape == (B, H, T, Dh)
    torch.testing.assert_close(s, x.view(B, T, H, Dh).permute(0, 2, 1, 3))
    torch.testing.assert_close(merge_heads(s), x)


@SETTINGS
@given(B=dims, T=lengths, start=st.integers(0, 5), seed=seeds)
def test_shift_right_moves_labels_one_step(B, T, start, seed):
    labels = torch.randint(0, 50, (B, T), generator=gen(seed))
    out = shift_right(labels, start)
    assert torch.equal(out[:, 0], torch.full((B,), start))
    assert torch.equal(out[:, 1:], labels[:, :-1])

"""Chapter 08: multi-head attention against nn.MultiheadAttention."""

import math

import pytest
import torch
from torch import nn

from course_lib.masking import causal_mask, padding_mask, to_torch_mha_mask
from course_lib.multi_head import MultiHeadAttention, load_torch_mha, merge_heads, split_heads

D, H = 12, 3


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def pair(bias: bool = True, seed: int = 0):
    torch.manual_seed(seed)  # nn modules initialise from the global generator
    theirs = nn.MultiheadAttention(D, H, bias=bias, batch_first=True, dropout=0.0)
    # torch zero-initialises in_proj_bias; random biases make the bias check meaningful
    if bias:
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours = MultiHeadAttention(D, H, bias=bias)
    load_torch_mha(ours, theirs)
    return ours, theirs


# ---------------------------------------------------------------- split / merge


def test_split_heads_layout():
    x = randn(2, 5, D)
    s = split_heads(x, H)
    assert s.shape == (2, H, 5, D // H)
    for h in range(H):
        # head h owns the h-th consecutive slice of the features of every token
        torch.testing.assert_close(s[:, h], x[..., h * 4 : (h + 1) * 4])


def test_split_merge_round_trip():
    x = randn(3, 7, D)
    torch.testing.assert_close(merge_heads(split_heads(x, H)), x)
    y = randn(2, 4, 6, 5)
    torch.testing.assert_close(split_heads(merge_heads(y), 4), y)


def test_split_merge_errors():
    with pytest.raises(ValueError, match="divisible"):
        split_heads(randn(2, 3, 10), 3)
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        split_heads(randn(3, 12), 3)
    with pytest.raises(ValueError, match=r"\(B, H, T, Dh\)"):
        merge_heads(randn(3, 4, 5))
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


# ---------------------------------------------------------------- against torch


def test_submodules():
    m = MultiHeadAttention(D, H)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert isinstance(getattr(m, name), nn.Linear)
        assert getattr(m, name).weight.shape == (D, D)
    assert MultiHeadAttention(D, H, bias=False).out_proj.bias is None


@pytest.mark.parametrize("bias", [True, False])
def test_self_attention_matches_torch(bias):
    ours, theirs = pair(bias)
    x = randn(2, 5, D)
    out, w = ours(x, x, x)
    assert w is None, "weights only when need_weights=True"
    torch.testing.assert_close(out, theirs(x, x, x, need_weights=False)[0])


@pytest.mark.parametrize("bias", [True, False])
def test_cross_attention_matches_torch(bias):
    ours, theirs = pair(bias, seed=1)
    q, k, v = randn(2, 3, D), randn(2, 6, D, seed=1), randn(2, 6, D, seed=2)
    out, _ = ours(q, k, v)
    assert out.shape == (2, 3, D)
    torch.testing.assert_close(out, theirs(q, k, v, need_weights=False)[0])


def test_attn_mask_matches_torch_inverted():
    ours, theirs = pair()
    q, kv = randn(2, 4, D), randn(2, 6, D, seed=1)
    keep = causal_mask(4, 6)
    got = ours(q, kv, kv, attn_mask=keep)[0]
    torch.testing.assert_close(got, theirs(q, kv, kv, attn_mask=to_torch_mha_mask(keep))[0])
    torch.testing.assert_close(ours(q, kv, kv, is_causal=True)[0], got)


def test_per_head_mask_matches_torch_3d_mask():
    ours, theirs = pair()
    x = randn(2, 5, D)
    keep = (torch.rand(2, H, 5, 5, generator=torch.Generator().manual_seed(3)) > 0.5) | torch.eye(
        5, dtype=torch.bool
    )
    got = ours(x, x, x, attn_mask=keep)[0]
    # torch wants per-head masks flattened to (B*H, T, S), batch-major
    expected = theirs(x, x, x, attn_mask=to_torch_mha_mask(keep.reshape(2 * H, 5, 5)))[0]
    torch.testing.assert_close(got, expected)


def test_float_mask_matches_torch():
    ours, theirs = pair()
    x = randn(2, 5, D)
    add = randn(5, 5, seed=4)
    torch.testing.assert_close(ours(x, x, x, attn_mask=add)[0], theirs(x, x, x, attn_mask=add)[0])


def test_key_padding_matches_torch():
    ours, theirs = pair()
    q, kv = randn(2, 3, D), randn(2, 5, D, seed=1)
    am = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    got = ours(q, kv, kv, attn_mask=padding_mask(am))[0]
    expected = theirs(q, kv, kv, key_padding_mask=to_torch_mha_mask(am.bool()))[0]
    torch.testing.assert_close(got, expected)


def test_need_weights_average_and_per_head_match_torch():
    ours, theirs = pair()
    q, kv = randn(2, 4, D), randn(2, 6, D, seed=1)
    keep = causal_mask(4, 6)
    out, w = ours(q, kv, kv, attn_mask=keep, need_weights=True)
    assert w.shape == (2, H, 4, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, H, 4))
    mask = to_torch_mha_mask(keep)
    t_out, t_avg = theirs(q, kv, kv, attn_mask=mask, need_weights=True)
    _, t_heads = theirs(q, kv, kv, attn_mask=mask, average_attn_weights=False)
    torch.testing.assert_close(out, t_out)
    torch.testing.assert_close(w.mean(dim=1), t_avg)
    torch.testing.assert_close(w, t_heads)


def test_gradients_match_torch():
    ours, theirs = pair()
    x = randn(2, 5, D).requires_grad_()
    ours(x, x, x, is_causal=True)[0].pow(2).sum().backward()
    g_ours, gw_ours = x.grad.clone(), ours.q_proj.weight.grad
    x.grad = None
    mask = to_torch_mha_mask(causal_mask(5))
    theirs(x, x, x, attn_mask=mask, need_weights=False)[0].pow(2).sum().backward()
    torch.testing.assert_close(g_ours, x.grad)
    torch.testing.assert_close(gw_ours, theirs.in_proj_weight.grad[:D])


def test_heads_are_independent_slices():
    ours, _ = pair()
    x = randn(1, 4, D)
    _, w = ours(x, x, x, need_weights=True)
    q = ours.q_proj(x)[..., :4]  # head 0 sees only the first Dh features
    k = ours.k_proj(x)[..., :4]
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(4), dim=-1)
    torch.testing.assert_close(w[:, 0], expected)


# ---------------------------------------------------------------- errors


def test_three_d_mask_is_refused():
    ours, _ = pair()
    x = randn(2, 5, D)
    with pytest.raises(ValueError, match="ambiguous"):
        ours(x, x, x, attn_mask=torch.ones(2, 5, 5, dtype=torch.bool))


def test_load_torch_mha_checks_compatibility():
    with pytest.raises(ValueError, match="num_heads"):
        load_torch_mha(MultiHeadAttention(D, 4), nn.MultiheadAttention(D, H, batch_first=True))
    with pytest.raises(ValueError, match="bias"):
        load_torch_mha(MultiHeadAttention(D, H), nn.MultiheadAttention(D, H, bias=False))
    with pytest.raises(ValueError, match="kdim"):
        load_torch_mha(MultiHeadAttention(D, H), nn.MultiheadAttention(D, H, kdim=5, vdim=5))
    with pytest.raises(ValueError, match="add_bias_kv"):
        load_torch_mha(MultiHeadAttention(D, H), nn.MultiheadAttention(D, H, add_bias_kv=True))

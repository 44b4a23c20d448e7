"""Chapter 06: self-attention and cross-attention with learned projections."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.masking import causal_mask
from course_lib.self_attention import CrossAttention, SelfAttention


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)  # nn.Linear initialises from the global generator


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_self_attention_defaults_and_submodules():
    sa = SelfAttention(8)
    for name in ("q_proj", "k_proj", "v_proj"):
        lin = getattr(sa, name)
        assert isinstance(lin, torch.nn.Linear)
        assert lin.weight.shape == (8, 8), "d_k and d_v default to d_model"
        assert lin.bias is None, "bias defaults to False"
    assert SelfAttention(8, bias=True).q_proj.bias is not None


@pytest.mark.parametrize("d_k,d_v", [(None, None), (4, 6), (16, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_matches_reference(d_k, d_v, causal):
    sa = SelfAttention(8, d_k=d_k, d_v=d_v, bias=True)
    x = randn(2, 5, 8)
    q, k, v = sa.q_proj(x), sa.k_proj(x), sa.v_proj(x)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # scale 1/sqrt(d_k)
    out = sa(x, is_causal=causal)
    assert out.shape == (2, 5, d_v or 8)
    torch.testing.assert_close(out, expected)


def test_self_attention_mask_matches_reference():
    sa = SelfAttention(8, d_k=4)
    x = randn(2, 5, 8, seed=1)
    keep = causal_mask(5) | torch.eye(5, dtype=torch.bool).roll(2, dims=1)
    expected = F.scaled_dot_product_attention(sa.q_proj(x), sa.k_proj(x), sa.v_proj(x), keep)
    torch.testing.assert_close(sa(x, attn_mask=keep), expected)


def test_self_attention_is_permutation_equivariant():
    sa = SelfAttention(8)
    x = randn(1, 6, 8, seed=2)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    # without positions, reordering the tokens only reorders the outputs
    torch.testing.assert_close(sa(x[:, perm]), sa(x)[:, perm])


def test_causal_self_attention_ignores_the_future():
    sa = SelfAttention(8)
    x = randn(1, 6, 8, seed=3)
    y = x.clone()
    y[:, 4:] = randn(1, 2, 8, seed=4)
    torch.testing.assert_close(sa(y, is_causal=True)[:, :4], sa(x, is_causal=True)[:, :4])
    assert not torch.allclose(sa(y)[:, :4], sa(x)[:, :4]), "without the mask the future leaks"


def test_cross_attention_shapes_and_submodules():
    ca = CrossAttention(8, d_context=12, d_k=4, d_v=6)
    assert ca.q_proj.weight.shape == (4, 8)
    assert ca.k_proj.weight.shape == (4, 12)
    assert ca.v_proj.weight.shape == (6, 12)
    assert ca.q_proj.bias is None
    out = ca(randn(2, 3, 8), randn(2, 7, 12, seed=1))
    assert out.shape == (2, 3, 6), "output length is the query length T, not S"
    assert CrossAttention(8, 12).v_proj.weight.shape == (8, 12)


def test_cross_attention_matches_reference_with_padding():
    ca = CrossAttention(8, d_context=10, bias=True)
    x, ctx = randn(2, 3, 8), randn(2, 5, 10, seed=1)
    am = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()[:, None, :]  # (B, 1, S)
    expected = F.scaled_dot_product_attention(ca.q_proj(x), ca.k_proj(ctx), ca.v_proj(ctx), am)
    out = ca(x, ctx, attn_mask=am)
    torch.testing.assert_close(out, expected)
    ctx2 = ctx.clone()
    ctx2[0, 3:] = 50.0  # padding of the context must not matter
    torch.testing.assert_close(ca(x, ctx2, attn_mask=am), out)


def test_cross_attention_queries_come_from_x():
    ca = CrossAttention(8, d_context=8)
    x, ctx = randn(1, 4, 8), randn(1, 4, 8, seed=1)
    assert not torch.allclose(ca(x, ctx), ca(ctx, x)), "swapping x and context must matter"


def test_cross_attention_batch_mismatch():
    ca = CrossAttention(8, d_context=8)
    with pytest.raises(ValueError, match="same batch size"):
        ca(randn(2, 3, 8), randn(3, 3, 8))

"""Chapter 05: softmax and scaled dot-product attention against torch."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import attention_weights, scaled_dot_product_attention, softmax


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def qkv(B=2, H=3, T=4, S=5, Dh=8, Dv=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, H, T, Dh, generator=g),
        torch.randn(B, H, S, Dh, generator=g),
        torch.randn(B, H, S, Dv, generator=g),
    )


# ---------------------------------------------------------------- softmax


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_matches_torch(dim):
    x = randn(3, 4, 5) * 3
    torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim), atol=1e-6, rtol=0)


def test_softmax_is_stable_for_huge_logits():
    x = torch.tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4 + 1.0], [1e4, 1e4, 1e4]])
    out = softmax(x)
    assert torch.isfinite(out).all(), "exp(1e4) overflows: subtract the row max first"
    torch.testing.assert_close(out, torch.softmax(x, dim=-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(out[2], torch.full((3,), 1 / 3))


def test_softmax_all_minus_inf_row_is_zero_with_finite_gradient():
    x = torch.tensor([[0.0, float("-inf"), 1.0], [float("-inf")] * 3], requires_grad=True)
    out = softmax(x)
    torch.testing.assert_close(out[1], torch.zeros(3))
    torch.testing.assert_close(out[0], torch.softmax(x[0].detach(), dim=-1))
    (out * torch.arange(3.0)).sum().backward()
    assert torch.isfinite(x.grad).all(), "a fully masked row must not give NaN gradients"


def test_softmax_worked_value():
    out = softmax(torch.tensor([0.0, math.log(3.0)]))
    torch.testing.assert_close(out, torch.tensor([0.25, 0.75]))


def test_softmax_rejects_integers():
    with pytest.raises(TypeError, match="floating-point"):
        softmax(torch.tensor([1, 2, 3]))


# ---------------------------------------------------------------- the seed's worked example


def test_seed_worked_example_exactly():
    Q = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    K = torch.tensor([[5.0, 6.0], [5.0, 6.0]])
    V = torch.tensor([[9.0, 10.0], [11.0, 12.0]])
    # both keys are identical, so every score is 17 / sqrt(2) and the weights are 1/2, 1/2
    torch.testing.assert_close(attention_weights(Q, K), torch.full((2, 2), 0.5), atol=0, rtol=0)
    out = scaled_dot_product_attention(Q, K, V)
    assert torch.equal(out, torch.tensor([[10.0, 11.0], [10.0, 11.0]]))


# ---------------------------------------------------------------- attention vs torch


def _bool_mask(shape, seed):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) > 0.3


MASK_CASES = {
    "none": lambda T, S: None,
    "bool_TS": lambda T, S: _bool_mask((T, S), 1) | torch.eye(T, S, dtype=torch.bool),
    "bool_key_padding_B11S": lambda T, S: (
        torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool().view(2, 1, 1, S)
    ),
    "bool_per_head_BHTS": lambda T, S: (
        _bool_mask((2, 3, T, S), 2) | torch.eye(T, S, dtype=torch.bool)
    ),
    "bool_B1TS": lambda T, S: _bool_mask((2, 1, T, S), 3) | torch.eye(T, S, dtype=torch.bool),
    "float_random": lambda T, S: randn(T, S, seed=4),
    "float_minus_inf": lambda T, S: (
        torch.zeros(T, S)
        .masked_fill(~_bool_mask((T, S), 5), -math.inf)
        .masked_fill(torch.eye(T, S, dtype=torch.bool), 0.0)
    ),
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_sdpa_matches_torch_with_masks(case):
    q, k, v = qkv(T=4, S=5)
    mask = MASK_CASES[case](4, 5)
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("T,S", [(4, 4), (3, 6), (6, 3), (1, 5), (5, 1), (1, 1)])
def test_is_causal_matches_torch_upper_left(T, S):
    q, k, v = qkv(T=T, S=S)
    ours = scaled_dot_product_attention(q, k, v, is_causal=True)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, theirs)
    w = attention_weights(q, k, is_causal=True)
    # upper-left: query i sees exactly keys 0..i
    for i in range(T):
        assert (w[..., i, i + 1 :] == 0).all()
        assert (w[..., i, : min(i + 1, S)] > 0).all()


@pytest.mark.parametrize("scale", [0.1, 1.0, 2.5])
def test_custom_scale_matches_torch(scale):
    q, k, v = qkv()
    ours = scaled_dot_product_attention(q, k, v, scale=scale)
    theirs = F.scaled_dot_product_attention(q, k, v, scale=scale)
    torch.testing.assert_close(ours, theirs)


def test_default_scale_is_one_over_sqrt_dh():
    q, k, _ = qkv(Dh=16)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1)
    torch.testing.assert_close(attention_weights(q, k), expected)
    # and not 1/sqrt(T), 1/sqrt(S) or no scale at all
    assert not torch.allclose(attention_weights(q, k, scale=1.0), expected)


def test_weights_rows_sum_to_one_and_shape():
    q, k, _ = qkv(T=4, S=7)
    w = attention_weights(q, k)
    assert w.shape == (2, 3, 4, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 4))


def test_unbatched_and_three_d_inputs_match_torch():
    g = torch.Generator().manual_seed(7)
    q, k, v = torch.randn(5, 4, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, 2)
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v)
    )
    q3, k3, v3 = q[None].repeat(2, 1, 1), k[None].repeat(2, 1, 1), v[None].repeat(2, 1, 1)
    torch.testing.assert_close(
        scaled_dot_product_attention(q3, k3, v3, is_causal=True),
        F.scaled_dot_product_attention(q3, k3, v3, is_causal=True),
    )


def test_gradients_match_torch():
    q, k, v = (t.double().requires_grad_() for t in qkv())
    mask = _bool_mask((4, 5), 9) | torch.eye(4, 5, dtype=torch.bool)
    scaled_dot_product_attention(q, k, v, attn_mask=mask).pow(2).sum().backward()
    ours = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, attn_mask=mask).pow(2).sum().backward()
    for a, b in zip(ours, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- fully masked rows


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_row_gives_zeros_like_torch(kind):
    q, k, v = qkv(T=3, S=4)
    keep = torch.ones(3, 4, dtype=torch.bool)
    keep[1] = False  # query 1 may attend to nothing
    mask = keep if kind == "bool" else torch.zeros(3, 4).masked_fill(~keep, -math.inf)
    w = attention_weights(q, k, attn_mask=mask)
    assert not torch.isnan(w).any()
    torch.testing.assert_close(w[..., 1, :], torch.zeros(2, 3, 4))
    torch.testing.assert_close(w[..., [0, 2], :].sum(-1), torch.ones(2, 3, 2))
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    # torch 2.5+ (this course pins 2.13) also returns zeros there, not NaN
    torch.testing.assert_close(theirs[..., 1, :], torch.zeros(2, 3, 6))
    torch.testing.assert_close(ours, theirs)


# ---------------------------------------------------------------- errors


def test_mask_and_is_causal_together_raise():
    q, k, v = qkv()
    mask = torch.ones(4, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="not both"):
        scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True)
    with pytest.raises(ValueError, match="not both"):
        attention_weights(q, k, attn_mask=mask, is_causal=True)


def test_bad_shapes_raise_clear_errors():
    q, k, v = qkv(T=4, S=5, Dh=8)
    with pytest.raises(ValueError, match="does not broadcast"):
        attention_weights(q, k, attn_mask=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="same last dim"):
        attention_weights(q, k[..., :3])
    with pytest.raises(ValueError, match="same length S"):
        scaled_dot_product_attention(q, k, v[..., :2, :])

"""Chapter 07: masks, their polarity, and teacher-forcing inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.attention import scaled_dot_product_attention
from course_lib.masking import (
    broadcast_shape,
    causal_mask,
    combine_masks,
    padding_mask,
    polarity_table,
    shift_right,
    to_additive_mask,
    to_torch_mha_mask,
)
from course_lib.multi_head import MultiHeadAttention, load_torch_mha

T_, F_ = True, False


# ---------------------------------------------------------------- causal_mask


@pytest.mark.parametrize("T,S", [(1, 1), (3, 3), (4, 6), (6, 4), (1, 5), (5, 1)])
def test_causal_mask_matches_tril(T, S):
    m = causal_mask(T, S)
    assert m.dtype == torch.bool and m.shape == (T, S)
    assert torch.equal(m, torch.ones(T, S).tril().bool())


def test_causal_mask_by_hand_and_default_S():
    expected = torch.tensor([[T_, F_, F_], [T_, T_, F_], [T_, T_, T_]])
    assert torch.equal(causal_mask(3), expected)
    assert torch.equal(causal_mask(2, 3), torch.tensor([[T_, F_, F_], [T_, T_, F_]]))
    assert causal_mask(3, device="cpu").device.type == "cpu"


@pytest.mark.parametrize("T,S", [(4, 4), (3, 6), (6, 3)])
def test_causal_mask_agrees_with_sdpa_is_causal(T, S):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, T if i == 0 else S, 4, generator=g) for i in range(3))
    torch.testing.assert_close(
        F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, S)),
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
    )


def test_causal_mask_rejects_negative_length():
    with pytest.raises(ValueError, match="non-negative"):
        causal_mask(-1)


# ---------------------------------------------------------------- padding_mask


def test_padding_mask_by_hand():
    am = torch.tensor([[1, 1, 0], [1, 0, 0]])
    m = padding_mask(am)
    assert m.dtype == torch.bool and m.shape == (2, 1, 1, 3)
    assert torch.equal(m[:, 0, 0], torch.tensor([[T_, T_, F_], [T_, F_, F_]]))
    assert torch.equal(padding_mask(am.bool()), m)
    assert am.dtype == torch.int64, "the input must not be modified"


def test_padding_mask_hides_padded_keys_in_attention():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 3, 4, 8, generator=g)
    k, v = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 5, 8, generator=g)
    am = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = scaled_dot_product_attention(q, k, v, attn_mask=padding_mask(am))
    k2, v2 = k.clone(), v.clone()
    k2[0, :, 3:], v2[0, :, 3:] = 100.0, -100.0  # change only the padding of sequence 0
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k2, v2, attn_mask=padding_mask(am)), out
    )


def test_padding_mask_errors():
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        padding_mask(torch.tensor([1, 1, 0]))
    with pytest.raises(ValueError, match="only 0"):
        padding_mask(torch.tensor([[1, 2, 0]]))


# ---------------------------------------------------------------- combine_masks


def test_combine_causal_and_padding_by_hand():
    am = torch.tensor([[1, 1, 0], [1, 1, 1]])
    m = combine_masks(causal_mask(3), padding_mask(am))
    assert m.shape == (2, 1, 3, 3) and m.dtype == torch.bool
    expected0 = torch.tensor([[T_, F_, F_], [T_, T_, F_], [T_, T_, F_]])
    assert torch.equal(m[0, 0], expected0)
    assert torch.equal(m[1, 0], causal_mask(3))


def test_combine_ignores_none_and_keeps_inputs():
    a = causal_mask(3)
    before = a.clone()
    assert torch.equal(combine_masks(None, a, None), a)
    combine_masks(a, torch.zeros(3, 3, dtype=torch.bool))
    assert torch.equal(a, before), "combine_masks must not modify its inputs"


def test_combine_is_and_not_or():
    a = torch.tensor([T_, T_, F_, F_])
    b = torch.tensor([T_, F_, T_, F_])
    assert torch.equal(combine_masks(a, b), torch.tensor([T_, F_, F_, F_]))


def test_combine_errors():
    with pytest.raises(ValueError, match="no mask"):
        combine_masks(None, None)
    with pytest.raises(ValueError, match="no mask"):
        combine_masks()
    with pytest.raises(TypeError, match="bool"):
        combine_masks(causal_mask(3), torch.ones(3, 3))
    with pytest.raises(ValueError, match="do not broadcast"):
        combine_masks(causal_mask(3), causal_mask(4))


# ---------------------------------------------------------------- to_additive_mask


def test_to_additive_mask_by_hand():
    add = to_additive_mask(torch.tensor([[T_, F_], [T_, T_]]))
    assert add.dtype == torch.float32
    assert torch.equal(add, torch.tensor([[0.0, -math.inf], [0.0, 0.0]]))
    assert to_additive_mask(causal_mask(2), dtype=torch.float64).dtype == torch.float64


def test_additive_and_bool_masks_give_the_same_attention():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 2, 4, 8, generator=g) for _ in range(3))
    keep = combine_masks(causal_mask(4), padding_mask(torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])))
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, attn_mask=to_additive_mask(keep)),
        scaled_dot_product_attention(q, k, v, attn_mask=keep),
    )


def test_to_additive_mask_errors():
    with pytest.raises(TypeError, match="bool"):
        to_additive_mask(torch.ones(2, 2))
    with pytest.raises(TypeError, match="floating-point"):
        to_additive_mask(causal_mask(2), dtype=torch.int64)


# ---------------------------------------------------------------- shift_right


def test_shift_right_by_hand():
    labels = torch.tensor([[5, 6, 7], [8, 9, 10]])
    before = labels.clone()
    out = shift_right(labels, start_token_id=1)
    assert torch.equal(out, torch.tensor([[1, 5, 6], [1, 8, 9]]))
    assert out.dtype == labels.dtype
    assert torch.equal(labels, before), "shift_right must not modify labels"
    assert torch.equal(shift_right(torch.tensor([[4]]), 0), torch.tensor([[0]]))


def test_shift_right_drops_a_final_minus_100_and_rejects_inner_ones():
    assert torch.equal(shift_right(torch.tensor([[5, 6, -100]]), 1), torch.tensor([[1, 5, 6]]))
    with pytest.raises(ValueError, match="masked_fill"):
        shift_right(torch.tensor([[5, -100, -100]]), 1)


def test_shift_right_errors():
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        shift_right(torch.tensor([5, 6]), 1)
    with pytest.raises(TypeError, match="integer"):
        shift_right(torch.tensor([[5.0, 6.0]]), 1)


# ---------------------------------------------------------------- polarity


def test_polarity_table_names_every_api():
    rows = polarity_table()
    assert all(len(r) == 3 for r in rows)
    by_api = {(api, arg): meaning for api, arg, meaning in rows}
    assert "may attend" in by_api[("F.scaled_dot_product_attention", "attn_mask")]
    assert "NOT" in by_api[("nn.MultiheadAttention", "attn_mask")]
    assert "blocked" in by_api[("nn.MultiheadAttention", "key_padding_mask")]
    assert "real token" in by_api[("Hugging Face transformers", "attention_mask")]


def _mha_pair(D=8, H=2):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(D, H, batch_first=True, dropout=0.0)
    ours = MultiHeadAttention(D, H)
    load_torch_mha(ours, theirs)
    return ours, theirs


def test_keep_mask_equals_inverted_torch_mha_mask():
    ours, theirs = _mha_pair()
    x = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(3))
    keep = causal_mask(4)
    expected = ours(x, x, x, attn_mask=keep)[0]
    got = theirs(x, x, x, attn_mask=to_torch_mha_mask(keep), need_weights=False)[0]
    torch.testing.assert_close(got, expected)
    # the polarity really is opposite: torch given our keep mask computes something else
    wrong = theirs(x, x, x, attn_mask=keep, need_weights=False)[0]
    assert not torch.allclose(wrong.nan_to_num(), expected, atol=1e-3)


def test_padding_mask_equals_inverted_key_padding_mask():
    ours, theirs = _mha_pair()
    x = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(4))
    am = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    expected = ours(x, x, x, attn_mask=padding_mask(am))[0]
    got = theirs(x, x, x, key_padding_mask=to_torch_mha_mask(am.bool()), need_weights=False)[0]
    torch.testing.assert_close(got, expected)


def test_to_torch_mha_mask_by_hand_and_errors():
    assert torch.equal(to_torch_mha_mask(torch.tensor([T_, F_])), torch.tensor([F_, T_]))
    with pytest.raises(TypeError, match="unchanged"):
        to_torch_mha_mask(torch.zeros(2, 2))


@pytest.mark.parametrize(
    "shapes",
    [[(2, 1, 4), (3, 1)], [(1,), (5, 4)], [(2, 3), (2, 3)], [(0, 1), (1, 7)], [(4,)], [()]],
)
def test_broadcast_shape_agrees_with_torch(shapes) -> None:
    assert broadcast_shape(*shapes) == tuple(torch.broadcast_shapes(*shapes))


@pytest.mark.parametrize("shapes", [[(2, 3), (3, 2)], [(4,), (5,)], [(2, 1, 3), (1, 2, 2)]])
def test_broadcast_shape_refuses_what_torch_refuses(shapes) -> None:
    assert broadcast_shape(*shapes) is None
    with pytest.raises(RuntimeError):
        torch.broadcast_shapes(*shapes)

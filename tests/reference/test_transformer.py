"""Chapter 09: layer norm, feed-forward, encoder/decoder layers against torch."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.masking import causal_mask, combine_masks, padding_mask, to_torch_mha_mask
from course_lib.multi_head import MultiHeadAttention
from course_lib.transformer import (
    FeedForward,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    count_parameters,
    layer_norm,
    load_torch_decoder_layer,
    load_torch_encoder_layer,
)

D, NHEAD, FF = 8, 2, 16


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _randomize_norms(layer: nn.Module, seed: int) -> None:
    # torch initialises LayerNorm to (1, 0); random values make weight/bias copying testable
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in layer.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, nn.MultiheadAttention):
                m.in_proj_bias.copy_(0.3 * torch.randn(m.in_proj_bias.shape, generator=g))


# ---------------------------------------------------------------- layer_norm


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_layer_norm_matches_torch(eps):
    x, w, b = randn(2, 3, D) * 5 + 2, randn(D, seed=1), randn(D, seed=2)
    torch.testing.assert_close(layer_norm(x, w, b, eps), F.layer_norm(x, (D,), w, b, eps))


def test_layer_norm_gives_mean_zero_variance_one():
    x = randn(4, D) * 3 + 7
    y = layer_norm(x, torch.ones(D), torch.zeros(D))
    torch.testing.assert_close(y.mean(-1), torch.zeros(4), atol=1e-5, rtol=0)
    # biased variance (divide by D), as F.layer_norm
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


def test_layer_norm_shape_error():
    with pytest.raises(ValueError, match="shape"):
        layer_norm(randn(2, D), torch.ones(D + 1), torch.zeros(D + 1))


# ---------------------------------------------------------------- FeedForward


@pytest.mark.parametrize("activation,fn", [("gelu", F.gelu), ("relu", F.relu)])
def test_feed_forward_matches_reference(activation, fn):
    torch.manual_seed(0)
    ff = FeedForward(D, FF, activation=activation)
    assert ff.linear1.weight.shape == (FF, D) and ff.linear2.weight.shape == (D, FF)
    x = randn(2, 5, D)
    torch.testing.assert_close(ff(x), ff.linear2(fn(ff.linear1(x))))


def test_feed_forward_default_is_gelu_and_position_wise():
    torch.manual_seed(0)
    ff = FeedForward(D, FF)
    x = randn(1, 4, D)
    torch.testing.assert_close(ff(x), ff.linear2(F.gelu(ff.linear1(x))))
    y = x.clone()
    y[:, 2] = 9.0
    changed = (ff(y) - ff(x)).abs().amax(-1)[0]
    assert changed[2] > 0 and (changed[[0, 1, 3]] == 0).all(), "each position on its own"


def test_feed_forward_unknown_activation_lists_valid_ones():
    with pytest.raises(ValueError, match=r"'gelu', 'relu'"):
        FeedForward(D, FF, activation="swish")
    with pytest.raises(ValueError, match="unknown activation"):
        TransformerEncoderLayer(D, NHEAD, FF, activation="tanh")


# ---------------------------------------------------------------- encoder layer


def encoder_pair(norm_first: bool, activation: str, seed: int = 0):
    torch.manual_seed(seed)
    theirs = nn.TransformerEncoderLayer(
        D, NHEAD, FF, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    _randomize_norms(theirs, seed)
    ours = TransformerEncoderLayer(D, NHEAD, FF, norm_first=norm_first, activation=activation)
    load_torch_encoder_layer(ours, theirs)
    return ours, theirs


def test_encoder_layer_submodules_and_defaults():
    layer = TransformerEncoderLayer(D, NHEAD, FF)
    assert layer.norm_first is True, "pre-LN by default"
    assert isinstance(layer.self_attn, MultiHeadAttention)
    assert isinstance(layer.linear1, nn.Linear) and layer.linear1.out_features == FF
    assert isinstance(layer.norm1, nn.LayerNorm) and isinstance(layer.norm2, nn.LayerNorm)
    assert layer(randn(1, 3, D)).shape == (1, 3, D)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_layer_matches_torch(norm_first, activation, mask_kind):
    ours, theirs = encoder_pair(norm_first, activation)
    x = randn(2, 5, D, seed=1)
    if mask_kind == "none":
        got, expected = ours(x), theirs(x)
    elif mask_kind == "causal":
        keep = causal_mask(5)
        got, expected = ours(x, keep), theirs(x, src_mask=to_torch_mha_mask(keep))
    else:
        am = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
        got = ours(x, padding_mask(am))
        expected = theirs(x, src_key_padding_mask=to_torch_mha_mask(am.bool()))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_layer_matches_torch_fast_path(norm_first):
    # in eval mode without grad torch switches to a fused kernel; it must agree too
    ours, theirs = encoder_pair(norm_first, "relu", seed=3)
    theirs.eval()
    x = randn(2, 5, D, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_pre_ln_and_post_ln_differ():
    pre, _ = encoder_pair(True, "relu")
    post = TransformerEncoderLayer(D, NHEAD, FF, norm_first=False)
    post.load_state_dict(pre.state_dict())
    x = randn(2, 5, D, seed=1)
    assert not torch.allclose(pre(x), post(x), atol=1e-3)


def test_load_refuses_mismatched_layers():
    _, theirs = encoder_pair(True, "relu")
    with pytest.raises(ValueError, match="norm_first"):
        load_torch_encoder_layer(TransformerEncoderLayer(D, NHEAD, FF, norm_first=False), theirs)
    with pytest.raises(ValueError, match="activation"):
        load_torch_encoder_layer(TransformerEncoderLayer(D, NHEAD, FF, activation="gelu"), theirs)
    not_batch_first = nn.TransformerEncoderLayer(D, NHEAD, FF, norm_first=True)
    with pytest.raises(ValueError, match="batch_first"):
        load_torch_encoder_layer(TransformerEncoderLayer(D, NHEAD, FF), not_batch_first)


# ---------------------------------------------------------------- count_parameters


def test_count_parameters_by_hand_and_vs_torch():
    assert count_parameters(nn.Linear(4, 3)) == 15
    layer = TransformerEncoderLayer(D, NHEAD, FF)
    attn = 4 * (D * D + D)  # W_Q, W_K, W_V, W_O with biases
    ffn = (D * FF + FF) + (FF * D + D)
    norms = 2 * (2 * D)
    assert count_parameters(layer) == attn + ffn + norms == 600
    torch_layer = nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=True)
    assert count_parameters(layer) == sum(p.numel() for p in torch_layer.parameters())


def test_count_parameters_trainable_only_and_shared():
    layer = TransformerEncoderLayer(D, NHEAD, FF)
    layer.norm1.requires_grad_(False)
    assert count_parameters(layer) == 600 - 2 * D
    assert count_parameters(layer, trainable_only=False) == 600
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight
    assert count_parameters(tied) == 16 + 4 + 4, "a shared weight counts once"


# ---------------------------------------------------------------- decoder layer and stack


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_layer_matches_torch(norm_first, activation):
    torch.manual_seed(0)
    theirs = nn.TransformerDecoderLayer(
        D, NHEAD, FF, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    _randomize_norms(theirs, 1)
    ours = TransformerDecoderLayer(D, NHEAD, FF, norm_first=norm_first, activation=activation)
    load_torch_decoder_layer(ours, theirs)
    x, memory = randn(2, 4, D, seed=1), randn(2, 6, D, seed=2)
    tgt_keep = causal_mask(4)
    mem_am = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    got = ours(x, memory, tgt_mask=tgt_keep, memory_mask=padding_mask(mem_am))
    expected = theirs(
        x,
        memory,
        tgt_mask=to_torch_mha_mask(tgt_keep),
        memory_key_padding_mask=to_torch_mha_mask(mem_am.bool()),
    )
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(ours(x, memory), theirs(x, memory))
    assert count_parameters(ours) == count_parameters(theirs)


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_stack_matches_torch(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        D, NHEAD, FF, dropout=0.0, batch_first=True, norm_first=norm_first
    )
    final_norm = nn.LayerNorm(D) if norm_first else None
    theirs = nn.TransformerEncoder(layer, 3, norm=final_norm, enable_nested_tensor=False)
    for i, t_layer in enumerate(theirs.layers):
        _randomize_norms(t_layer, i)  # make the three copies different
    ours = TransformerEncoder(3, D, NHEAD, FF, norm_first=norm_first)
    assert len(ours.layers) == 3 and (ours.norm is None) == (not norm_first)
    for o_layer, t_layer in zip(ours.layers, theirs.layers):
        load_torch_encoder_layer(o_layer, t_layer)
    if norm_first:
        _randomize_norms(theirs.norm, 9)
        ours.norm.load_state_dict(theirs.norm.state_dict())
    x = randn(2, 5, D, seed=1)
    keep = combine_masks(causal_mask(5), padding_mask(torch.tensor([[1, 1, 1, 1, 1]] * 2)))
    torch.testing.assert_close(ours(x, keep), theirs(x, mask=to_torch_mha_mask(causal_mask(5))))
    with pytest.raises(ValueError, match="num_layers"):
        TransformerEncoder(0, D, NHEAD, FF)

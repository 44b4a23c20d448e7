"""Chapter 04 reference code: sinusoidal values by hand, the rotation property, learned and
relative positions, and the permutation equivariance that makes positions necessary."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from course_lib.positions import (
    LearnedPositionalEmbedding,
    offset_rotation,
    relative_positions,
    sinusoidal_positional_encoding,
)

# --- sinusoidal ---------------------------------------------------------------------------------


def test_sinusoidal_hand_checked_values():
    pe = sinusoidal_positional_encoding(50, 6)
    assert pe.shape == (50, 6) and pe.dtype == torch.float32
    # position 0: sin 0 = 0 on even dims, cos 0 = 1 on odd dims
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    # position 1, pair i = 0: angle 1 / 10000^0 = 1
    assert_close(pe[1, 0], torch.tensor(math.sin(1.0)))
    assert_close(pe[1, 1], torch.tensor(math.cos(1.0)))
    # position 7, pair i = 1 (dims 2, 3): angle 7 / 10000^(2/6)
    angle = 7 / 10000 ** (2 / 6)
    assert_close(pe[7, 2], torch.tensor(math.sin(angle)))
    assert_close(pe[7, 3], torch.tensor(math.cos(angle)))
    # position 42, pair i = 2 (dims 4, 5): angle 42 / 10000^(4/6)
    angle = 42 / 10000 ** (4 / 6)
    assert_close(pe[42, 4], torch.tensor(math.sin(angle)))
    assert_close(pe[42, 5], torch.tensor(math.cos(angle)))


def test_sinusoidal_matches_the_formula_everywhere_and_honours_base():
    max_len, d, base = 30, 8, 100.0
    pe = sinusoidal_positional_encoding(max_len, d, base=base)
    ref = torch.empty(max_len, d, dtype=torch.float64)
    for pos in range(max_len):
        for i in range(d // 2):
            ref[pos, 2 * i] = math.sin(pos / base ** (2 * i / d))
            ref[pos, 2 * i + 1] = math.cos(pos / base ** (2 * i / d))
    assert_close(pe, ref.float())


def test_sinusoidal_is_accurate_at_large_positions():
    pe = sinusoidal_positional_encoding(100_000, 2)
    assert_close(pe[99_999, 0], torch.tensor(math.sin(99_999.0)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("d_model", [1, 5, 0, -2])
def test_sinusoidal_odd_or_non_positive_width_is_an_error(d_model):
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positional_encoding(10, d_model)


def test_fixed_offset_is_the_same_linear_map_at_every_position():
    # learn the map PE[pos] -> PE[pos + k] by least squares from all positions: one matrix fits
    # every position exactly, and it is the block-diagonal rotation. (base 100 and 200
    # positions make even the slowest pair turn by several radians, so the fit is well posed)
    k, d, T, base = 3, 8, 200, 100.0
    pe = sinusoidal_positional_encoding(T + k, d, base=base).double()
    solution = torch.linalg.lstsq(pe[:T], pe[k:]).solution  # (D, D) with pe[:T] @ X = pe[k:]
    assert_close(pe[:T] @ solution, pe[k:], atol=1e-5, rtol=0)
    M = offset_rotation(k, d, base=base).double()
    assert_close(solution.T, M, atol=1e-4, rtol=0)
    for i in range(d // 2):
        w = 1 / base ** (2 * i / d)
        c, s = math.cos(k * w), math.sin(k * w)
        block = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
        assert_close(M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2], block, atol=1e-6, rtol=0)
    assert_close(M @ M.T, torch.eye(d, dtype=torch.float64), atol=1e-6, rtol=0)  # a rotation


def test_offset_rotation_moves_every_row():
    pe = sinusoidal_positional_encoding(20, 16)
    M = offset_rotation(5, 16)
    assert_close(pe[:15] @ M.T, pe[5:], atol=1e-5, rtol=0)
    assert_close(offset_rotation(0, 16), torch.eye(16))


def test_dot_product_of_positions_depends_only_on_the_offset():
    pe = sinusoidal_positional_encoding(64, 32)
    dots = pe @ pe.T  # (T, T)
    for k in (1, 4, 9):
        diag = torch.diagonal(dots, offset=k)
        assert_close(diag, diag[0].expand_as(diag), atol=1e-4, rtol=0)


# --- learned positions and the seed example ---------------------------------------------------


def test_adding_positions_seed_example():
    module = LearnedPositionalEmbedding(max_len=4, d_model=3)
    with torch.no_grad():
        module.embedding.weight[0] = torch.tensor([0.2, -0.1, 0.4])
    tokens = torch.tensor([[[0.1, 0.3, -0.5]]])  # (B=1, T=1, D=3): the first word
    assert_close(module(tokens), torch.tensor([[[0.3, 0.2, -0.1]]]))


def test_learned_positions_add_row_t_to_position_t_for_every_batch_element():
    torch.manual_seed(0)  # nn.Embedding's initialization uses the global generator
    module = LearnedPositionalEmbedding(max_len=10, d_model=4)
    assert isinstance(module.embedding, torch.nn.Embedding)
    assert module.embedding.weight.shape == (10, 4)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 6, 4, generator=g)
    out = module(x)
    assert out.shape == (3, 6, 4)
    expected = x + module.embedding.weight[:6].unsqueeze(0)
    assert_close(out, expected)
    # not permutation equivariant any more: swapping two tokens changes more than their order
    swapped = x[:, [1, 0, 2, 3, 4, 5]]
    assert not torch.allclose(module(swapped)[:, [1, 0, 2, 3, 4, 5]], out)


def test_learned_positions_are_trained():
    module = LearnedPositionalEmbedding(max_len=5, d_model=2)
    module(torch.zeros(1, 3, 2)).sum().backward()
    grad = module.embedding.weight.grad
    assert (grad[:3] == 1).all() and (grad[3:] == 0).all()


def test_learned_positions_too_long_or_wrong_width_raise():
    module = LearnedPositionalEmbedding(max_len=4, d_model=3)
    module(torch.zeros(2, 4, 3))  # T == max_len is fine
    with pytest.raises(ValueError, match="max_len"):
        module(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"\(B, T, 3\)"):
        module(torch.zeros(2, 4, 2))


# --- relative positions ---------------------------------------------------------------------


def test_relative_positions_hand_checked():
    assert relative_positions(3, 1).tolist() == [[1, 2, 2], [0, 1, 2], [0, 0, 1]]
    assert relative_positions(4, 2).tolist() == [
        [2, 3, 4, 4],
        [1, 2, 3, 4],
        [0, 1, 2, 3],
        [0, 0, 1, 2],
    ]
    out = relative_positions(5, 0)
    assert out.dtype == torch.long and (out == 0).all()


@settings(max_examples=50, deadline=None)
@given(T=st.integers(0, 12), max_distance=st.integers(0, 6))
def test_relative_positions_property(T, max_distance):
    out = relative_positions(T, max_distance)
    assert out.shape == (T, T) and out.dtype == torch.long
    for i in range(T):
        for j in range(T):
            expected = min(max(j - i, -max_distance), max_distance) + max_distance
            assert out[i, j].item() == expected
    if T:
        assert out.min() >= 0 and out.max() <= 2 * max_distance


def test_relative_positions_rejects_negative_arguments():
    with pytest.raises(ValueError, match="max_distance"):
        relative_positions(3, -1)


# --- why positions are needed -----------------------------------------------------------------


def test_attention_without_positions_is_permutation_equivariant():
    # "狗追猫" vs "猫追狗": the same three vectors in another order give the same outputs,
    # merely reordered; with positions added the outputs differ
    g = torch.Generator().manual_seed(0)
    emb = {ch: torch.randn(8, generator=g) for ch in "狗追猫"}
    a = torch.stack([emb[c] for c in "狗追猫"]).unsqueeze(0)  # (1, 3, 8)
    b = torch.stack([emb[c] for c in "猫追狗"]).unsqueeze(0)
    perm = [2, 1, 0]
    out_a = F.scaled_dot_product_attention(a, a, a)
    out_b = F.scaled_dot_product_attention(b, b, b)
    assert_close(out_b, out_a[:, perm])
    pe = sinusoidal_positional_encoding(3, 8)
    pa, pb = a + pe, b + pe
    out_pa = F.scaled_dot_product_attention(pa, pa, pa)
    out_pb = F.scaled_dot_product_attention(pb, pb, pb)
    assert not torch.allclose(out_pb, out_pa[:, perm], atol=1e-3)

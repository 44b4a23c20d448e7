"""Chapter 03 reference code against torch: F.one_hot, F.embedding, F.cosine_similarity."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from course_lib.data import load_corpus
from course_lib.embeddings import (
    DEMO_FEATURES,
    analogy,
    analogy_demo_embeddings,
    cosine_similarity,
    embedding_lookup,
    most_similar,
    one_hot,
    pca_2d,
    train_word_embeddings,
)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# --- one-hot and lookup ------------------------------------------------------------------------

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, num_classes=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_one_hot_matches_F_one_hot(shape, num_classes, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, num_classes, shape, generator=g)
    out = one_hot(ids, num_classes)
    assert out.dtype == torch.float32
    assert out.shape == (*shape, num_classes)
    assert_close(out, F.one_hot(ids, num_classes).float(), rtol=0, atol=0)


@settings(max_examples=40, deadline=None)
@given(
    shape=shapes,
    V=st.integers(1, 9),
    D=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_embedding_lookup_matches_F_embedding_and_one_hot_matmul(shape, V, D, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, shape, generator=g)
    weight = torch.randn(V, D, generator=g)
    out = embedding_lookup(ids, weight)
    assert out.shape == (*shape, D)
    assert_close(out, F.embedding(ids, weight), rtol=0, atol=0)
    assert_close(out, one_hot(ids, V) @ weight)  # lookup = one-hot × matrix


def test_embedding_lookup_passes_gradients_to_the_used_rows_only(gen):
    weight = torch.randn(5, 3, generator=gen, requires_grad=True)
    embedding_lookup(torch.tensor([1, 1, 3]), weight).sum().backward()
    expected = torch.zeros(5, 3)
    expected[1] = 2.0  # row 1 was used twice
    expected[3] = 1.0
    assert_close(weight.grad, expected)


def test_lookup_rejects_bad_ids(gen):
    weight = torch.randn(4, 2, generator=gen)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        embedding_lookup(torch.tensor([4]), weight)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        embedding_lookup(torch.tensor([-1]), weight)  # would silently wrap to the last row
    with pytest.raises(TypeError, match="integer"):
        one_hot(torch.tensor([1.0]), 3)


# --- cosine similarity and neighbours -------------------------------------------------------


@pytest.mark.parametrize(
    "shape_a, shape_b, dim",
    [((7,), (7,), -1), ((5, 7), (7,), -1), ((4, 1, 6), (3, 6), -1), ((6, 5), (6, 5), 0)],
)
def test_cosine_similarity_matches_torch(gen, shape_a, shape_b, dim):
    a = torch.randn(*shape_a, generator=gen)
    b = torch.randn(*shape_b, generator=gen)
    assert_close(cosine_similarity(a, b, dim=dim), F.cosine_similarity(a, b, dim=dim))


def test_cosine_similarity_zero_and_tiny_vectors_match_torch():
    zero = torch.zeros(3)
    ones = torch.ones(3)
    assert_close(cosine_similarity(zero, ones), F.cosine_similarity(zero, ones, dim=-1))
    assert cosine_similarity(zero, zero).item() == 0.0  # no NaN
    # torch clamps each norm separately; clamping the product of norms would give 0.3 here
    a = torch.tensor([1e-9, 0.0])
    b = torch.tensor([3.0, 4.0])
    assert_close(cosine_similarity(a, b), F.cosine_similarity(a, b, dim=-1))
    assert_close(cosine_similarity(a, b, eps=1e-3), F.cosine_similarity(a, b, dim=-1, eps=1e-3))


def test_cosine_similarity_ignores_length():
    a = torch.tensor([1.0, 2.0, 2.0])
    assert_close(cosine_similarity(a, 10 * a), torch.tensor(1.0))
    assert_close(cosine_similarity(a, -a), torch.tensor(-1.0))


def test_most_similar_ranks_by_cosine_not_dot_product():
    weight = torch.tensor([[10.0, 1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    idx, scores = most_similar(torch.tensor([1.0, 0.0]), weight, k=2)
    assert idx.tolist() == [1, 0]  # row 0 has the larger dot product but a worse angle
    assert_close(scores, F.cosine_similarity(weight[[1, 0]], torch.tensor([1.0, 0.0]), dim=-1))


def test_most_similar_with_exclude(gen):
    weight = torch.randn(10, 4, generator=gen)
    idx, _ = most_similar(weight[3], weight, k=1)
    assert idx.tolist() == [3]  # a vector is its own nearest neighbour
    idx, scores = most_similar(weight[3], weight, k=9, exclude=[3])
    assert 3 not in idx.tolist() and len(set(idx.tolist())) == 9
    assert (scores[:-1] >= scores[1:]).all()
    ref = F.cosine_similarity(weight, weight[3], dim=-1)
    ref[3] = -2.0
    assert idx.tolist() == ref.argsort(descending=True)[:9].tolist()
    with pytest.raises(ValueError, match="k must be"):
        most_similar(weight[3], weight, k=10, exclude=[3])


def test_most_similar_batched_queries(gen):
    weight = torch.randn(8, 3, generator=gen)
    queries = torch.randn(2, 3, generator=gen)
    idx, scores = most_similar(queries, weight, k=3)
    assert idx.shape == scores.shape == (2, 3)
    for q in range(2):
        single_idx, single_scores = most_similar(queries[q], weight, k=3)
        assert idx[q].tolist() == single_idx.tolist()
        assert_close(scores[q], single_scores)


# --- analogies ---------------------------------------------------------------------------------


def test_analogy_on_the_demo_embeddings():
    words, weight = analogy_demo_embeddings()
    ids = {w: i for i, w in enumerate(words)}
    assert weight.shape == (len(words), len(DEMO_FEATURES)) and weight.dtype == torch.float32
    # man : king :: woman : ?
    assert words[analogy(ids["man"], ids["king"], ids["woman"], weight).item()] == "queen"
    assert words[analogy(ids["dog"], ids["puppy"], ids["cat"], weight).item()] == "kitten"
    assert words[analogy(ids["woman"], ids["queen"], ids["man"], weight).item()] == "king"
    top3 = [words[i] for i in analogy(ids["man"], ids["king"], ids["woman"], weight, k=3)]
    assert top3[:2] == ["queen", "princess"]


def test_analogy_excludes_the_three_inputs():
    # b − a + c lands exactly on c here; without excluding it, c itself would be returned
    weight = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    assert analogy(0, 1, 2, weight).tolist() == [3]


def test_analogy_direction_is_b_minus_a_plus_c():
    weight = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0],
                           [1.0, -1.0, 1.0]])  # fmt: skip
    assert analogy(0, 1, 2, weight).tolist() == [3]  # a − b + c would give row 4


# --- training and plotting ---------------------------------------------------------------------


@pytest.fixture
def one_thread():
    # tiny tensors gain nothing from threads, and on a busy machine they lose a lot
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_train_word_embeddings_puts_related_words_together(one_thread):
    g = torch.Generator().manual_seed(0)
    vocab, weight = train_word_embeddings(load_corpus("en"), 16, generator=g)
    assert weight.shape == (len(vocab), 16) and weight.dtype == torch.float32
    assert not weight.requires_grad
    assert list(vocab.values()) == list(range(len(vocab)))
    assert next(iter(vocab)) == "the"  # most frequent first
    assert "." not in vocab
    inv = {i: w for w, i in vocab.items()}
    groups = [
        ["king", "queen", "prince", "princess"],
        ["dog", "cat", "cow", "horse", "sheep", "bird", "mouse", "rabbit"],
        ["paris", "berlin", "rome", "madrid", "london", "tokyo", "beijing", "lisbon"],
        ["three", "four", "five", "six", "seven", "eight"],
        ["red", "yellow", "purple", "green", "blue", "white", "black"],
    ]
    hits = total = 0
    for group in groups:
        for word in group:
            idx, _ = most_similar(weight[vocab[word]], weight, k=3, exclude=[vocab[word]])
            hits += sum(inv[i] in group for i in idx.tolist())
            total += 3
    # random vectors would score about 3 % (a group is ~7 of ~200 words); trained ones ~90 %
    assert hits / total > 0.75


def test_train_word_embeddings_is_reproducible_from_the_generator(one_thread):
    sentences = load_corpus("en")[:40]
    a = train_word_embeddings(sentences, 8, epochs=2, generator=torch.Generator().manual_seed(1))
    b = train_word_embeddings(sentences, 8, epochs=2, generator=torch.Generator().manual_seed(1))
    c = train_word_embeddings(sentences, 8, epochs=2, generator=torch.Generator().manual_seed(2))
    assert a[0] == b[0]
    assert_close(a[1], b[1], rtol=0, atol=0)
    assert not torch.equal(a[1], c[1])


def test_train_word_embeddings_rejects_degenerate_input(gen):
    with pytest.raises(ValueError, match="two distinct words"):
        train_word_embeddings(["hello hello"], 4, generator=gen)
    with pytest.raises(ValueError, match="dim"):
        train_word_embeddings(["a b"], 0, generator=gen)


def test_pca_2d_matches_the_covariance_eigenvectors(gen):
    # a cloud stretched along known directions
    weight = torch.randn(50, 5, generator=gen, dtype=torch.float64) * torch.tensor(
        [5.0, 0.1, 2.0, 0.1, 0.1], dtype=torch.float64
    )
    coords = pca_2d(weight)
    assert coords.shape == (50, 2)
    centered = weight - weight.mean(0)
    evals, evecs = torch.linalg.eigh(centered.T @ centered)  # ascending eigenvalues
    ref = centered @ evecs[:, [-1, -2]]  # (V, 2), up to the sign of each column
    for j in range(2):
        sign = torch.sign((coords[:, j] * ref[:, j]).sum())
        assert_close(coords[:, j], sign * ref[:, j])
    assert coords[:, 0].var() > coords[:, 1].var()
    assert_close(coords.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)
    assert_close(pca_2d(weight), pca_2d(weight.clone()))  # sign fixed deterministically


def test_pca_2d_sign_convention(gen):
    weight = torch.randn(6, 3, generator=gen)
    coords = pca_2d(weight)
    flipped = pca_2d(-weight)  # the same cloud mirrored: the convention must undo the mirror
    assert_close(coords, flipped)
    largest = coords.gather(0, coords.abs().argmax(0, keepdim=True))
    assert (largest > 0).all()

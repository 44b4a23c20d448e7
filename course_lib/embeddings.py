"""Chapter 03 — embeddings.

Token ids are arbitrary labels: id 7 is not "between" ids 6 and 8. One-hot vectors remove the
false order but are huge and all equally far apart. An embedding matrix ``(V, D)`` gives every
token a dense, learned vector instead, and looking a row up is the same as multiplying its
one-hot vector by the matrix. The chapter then measures similarity with the cosine, finds
nearest neighbours and analogies, and trains a tiny embedding on the course corpus.

Shape legend: ``V`` vocabulary size, ``D`` embedding width, ``k`` neighbours.
"""

from collections import Counter

import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib.tensors import sgd_step
from course_lib.tokenization import normalize, pre_tokenize

__all__ = [
    "one_hot",
    "embedding_lookup",
    "cosine_similarity",
    "most_similar",
    "analogy",
    "DEMO_FEATURES",
    "analogy_demo_embeddings",
    "train_word_embeddings",
    "pca_2d",
]


# ---------------------------------------------------------------------------------------------
# From ids to vectors: one-hot, then a lookup table.
# ---------------------------------------------------------------------------------------------


def _check_ids(ids: Tensor, num_rows: int, what: str) -> None:
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"ids must be an integer tensor, got {ids.dtype}; use ids.long()")
    if ids.numel() and (ids.min() < 0 or ids.max() >= num_rows):
        raise ValueError(
            f"ids must lie in [0, {num_rows}) ({what}), got values from {ids.min().item()} "
            f"to {ids.max().item()}"
        )


def one_hot(ids: Tensor, num_classes: int) -> Tensor:
    """A 1 at each id's position, 0 elsewhere; float32 so it can be
    multiplied by a matrix.

    Example: one_hot(tensor([2, 0]), 3) -> [[0, 0, 1], [1, 0, 0]]
    Args:
        ids: (...) integer ids in [0, num_classes).
    Returns:
        (..., num_classes) float32.
    """
    _check_ids(ids, num_classes, "num_classes")
    classes = torch.arange(num_classes, device=ids.device)  # (V,)
    # (..., 1) == (V,) -> (..., V)
    return (ids.unsqueeze(-1) == classes).to(torch.float32)


def embedding_lookup(ids: Tensor, weight: Tensor) -> Tensor:
    """Row ``ids`` of the embedding matrix: the same as ``one_hot(ids) @
    weight`` or ``F.embedding(ids, weight)``, without building the one-hot
    matrix.

    Args:
        ids: (...) integer ids in [0, V). weight: (V, D).
    Returns:
        (..., D).
    """
    if weight.ndim != 2:
        raise ValueError(
            f"weight must be (V, D), got shape {tuple(weight.shape)}",
        )
    _check_ids(ids, weight.shape[0], "the number of rows of weight")
    # advanced indexing picks one row per id: (...,) -> (..., D)
    return weight[ids]


# ---------------------------------------------------------------------------------------------
# Similarity, neighbours and analogies.
# ---------------------------------------------------------------------------------------------


def cosine_similarity(
    a: Tensor,
    b: Tensor,
    dim: int = -1,
    eps: float = 1e-8,
) -> Tensor:
    """cos(a, b) = a·b / (‖a‖ ‖b‖) along ``dim``, with
    ``F.cosine_similarity``'s semantics.

    As in torch, each norm is clamped separately,
    a / max(‖a‖, eps) · b / max(‖b‖, eps), so a zero vector has similarity
    0 with everything instead of NaN. Normalizing before the dot product
    also keeps the result within [-1, 1].

    Args:
        a, b: broadcastable, e.g. (V, D) and (D,).
    Returns:
        The broadcast shape with ``dim`` removed.
    """
    a_norm = a.norm(dim=dim, keepdim=True).clamp_min(eps)
    b_norm = b.norm(dim=dim, keepdim=True).clamp_min(eps)
    return ((a / a_norm) * (b / b_norm)).sum(dim=dim)


def most_similar(
    query: Tensor, weight: Tensor, k: int, exclude: list[int] | None = None
) -> tuple[Tensor, Tensor]:
    """The ``k`` rows of ``weight`` with the highest cosine similarity to
    ``query``.

    Args:
        query: (D,) (or (..., D) for several queries at once). weight:
            (V, D).
        exclude: row ids that may not be returned
            (e.g. the query word itself).
    Returns:
        (indices, scores): both (k,) (or (..., k)), best first; indices are
        long.
    """
    if weight.ndim != 2 or query.shape[-1:] != weight.shape[-1:]:
        raise ValueError(
            "query must be (..., D) and weight (V, D) with the same "
            f"D, got {tuple(query.shape)} and {tuple(weight.shape)}"
        )
    exclude = sorted(set(exclude or []))
    if exclude and not 0 <= exclude[0] <= exclude[-1] < weight.shape[0]:
        raise ValueError(
            f"exclude holds ids outside [0, {weight.shape[0]}): {exclude}",
        )
    available = weight.shape[0] - len(exclude)
    if not 1 <= k <= available:
        raise ValueError(
            f"k must be in [1, {available}] "
            f"(V minus excluded rows), got {k}"
        )
    # (..., 1, D) vs (V, D) -> (..., V)
    scores = cosine_similarity(query.unsqueeze(-2), weight)
    if exclude:
        # never chosen while any other row is left
        scores[..., exclude] = float("-inf")
    top = scores.topk(k, dim=-1)
    return top.indices, top.values


def analogy(a: int, b: int, c: int, weight: Tensor, k: int = 1) -> Tensor:
    """ "a is to b as c is to ?": the ids nearest to b − a + c, excluding
    a, b and c.

    Example: analogy(man, king, woman, weight) looks near
    king − man + woman, i.e. queen.
    Returns:
        (k,) long ids, best first.
    """
    target = weight[b] - weight[a] + weight[c]  # (D,)
    indices, _ = most_similar(target, weight, k, exclude=[a, b, c])
    return indices


# ---------------------------------------------------------------------------------------------
# A hand-built embedding whose axes mean something.
# ---------------------------------------------------------------------------------------------

DEMO_FEATURES: tuple[str, ...] = (
    "royalty",
    "male",
    "female",
    "young",
    "person",
    "animal",
    "canine",
    "feline",
)


def analogy_demo_embeddings() -> tuple[list[str], Tensor]:
    """Twelve words described by the eight interpretable features in ``DEMO_FEATURES``.

    Each axis is one yes/no property, so the vector arithmetic can be read off by hand:
    king − man + woman = (royalty, person, female) = queen exactly, while princess differs by
    "young". Likewise puppy − dog + cat = kitten. Real embeddings learn such directions only
    approximately and spread each over many axes.

    Returns:
        (words, weight) with weight (12, 8) float32; row i is the vector of words[i].
    """
    rows = {
        #          roy  male  fem  young pers  anim  canine feline
        "king": [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        "queen": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        "prince": [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        "princess": [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        "man": [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        "woman": [0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        "boy": [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        "girl": [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        "dog": [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        "puppy": [0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0],
        "cat": [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0],
        "kitten": [0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
    }
    return list(rows), torch.tensor(list(rows.values()), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Learning an embedding: skip-gram with negative sampling (word2vec), tiny and on the CPU.
# ---------------------------------------------------------------------------------------------


def _skipgram_pairs(sentences: list[list[int]], window: int) -> Tensor:
    pairs = [
        (center, sent[j])
        for sent in sentences
        for i, center in enumerate(sent)
        for j in range(max(0, i - window), min(len(sent), i + window + 1))
        if j != i
    ]
    return torch.tensor(pairs, dtype=torch.long).view(-1, 2)  # (P, 2): (center, context)


def train_word_embeddings(
    sentences: list[str],
    dim: int,
    *,
    window: int = 2,
    epochs: int = 20,
    generator: torch.Generator,
    negatives: int = 5,
    batch_size: int = 256,
    lr: float = 0.025,
) -> tuple[dict[str, int], Tensor]:
    """Train static word vectors with skip-gram and negative sampling (word2vec).

    Each word is asked to predict the words within ``window`` positions of it. For a true
    (center, context) pair the model raises σ(u_center · v_context); for ``negatives`` random
    words drawn from the unigram distribution raised to 0.75 it lowers it. Words that share
    contexts ("the ___ eats grass") are pushed towards the same directions, which is why
    related words end up close. Sentences are normalized and pre-tokenized with this course's
    tokenizer; punctuation tokens are dropped. The update is chapter 01's ``sgd_step`` on
    mini-batches, small enough to run on a CPU while the book page builds.

    Args:
        sentences: raw text, one sentence per string (e.g. ``load_corpus("en")``).
        dim: embedding width D.
        window: context radius. epochs: passes over all (center, context) pairs.
        generator: the only source of randomness (initialization, shuffling, negatives).
        negatives: negative samples per pair. batch_size, lr: mini-batch SGD settings.
    Returns:
        (vocab, weight): vocab maps word → row, most frequent first (ties alphabetical);
        weight is the (V, D) float32 matrix of center-word vectors.
    """
    if dim < 1 or window < 1 or epochs < 0 or negatives < 1 or batch_size < 1:
        raise ValueError(
            "dim, window, negatives and batch_size must be >= 1 and epochs >= 0, got "
            f"{dim=}, {window=}, {negatives=}, {batch_size=}, {epochs=}"
        )
    tokenized = [
        [t for t in pre_tokenize(normalize(s)) if any(ch.isalnum() for ch in t)] for s in sentences
    ]
    counts = Counter(t for sent in tokenized for t in sent)
    if len(counts) < 2:
        raise ValueError("sentences must contain at least two distinct words")
    vocab = {w: i for i, w in enumerate(sorted(counts, key=lambda w: (-counts[w], w)))}
    pairs = _skipgram_pairs([[vocab[t] for t in sent] for sent in tokenized], window)
    if len(pairs) == 0:
        raise ValueError("no word has a neighbour: pass sentences with at least two words")
    V = len(vocab)
    freq = torch.tensor([counts[w] for w in vocab], dtype=torch.float32)
    noise = freq**0.75 / (freq**0.75).sum()  # word2vec's smoothed unigram distribution

    # word2vec's start: small random center vectors, zero context vectors
    w_in = (torch.rand(V, dim, generator=generator) - 0.5) / dim
    w_out = torch.zeros(V, dim)
    for _ in range(epochs):
        order = torch.randperm(len(pairs), generator=generator)
        for start in range(0, len(pairs), batch_size):
            batch = pairs[order[start : start + batch_size]]  # (B, 2)
            neg_ids = torch.multinomial(
                noise, batch.shape[0] * negatives, replacement=True, generator=generator
            ).view(-1, negatives)  # (B, K)
            w_in.requires_grad_(True)
            w_out.requires_grad_(True)
            center = w_in[batch[:, 0]]  # (B, D)
            context = w_out[batch[:, 1]]  # (B, D)
            neg = w_out[neg_ids]  # (B, K, D)
            pos_score = (center * context).sum(-1)  # (B,)
            neg_score = (neg @ center.unsqueeze(-1)).squeeze(-1)  # (B, K)
            # summed, not averaged, over pairs: each pair moves its rows about as much as in
            # word2vec's one-pair-at-a-time SGD, so lr keeps word2vec's scale
            loss = -(F.logsigmoid(pos_score).sum() + F.logsigmoid(-neg_score).sum())
            grad_in, grad_out = torch.autograd.grad(loss, [w_in, w_out])
            w_in, w_out = sgd_step([w_in, w_out], [grad_in, grad_out], lr)  # chapter 01
    return vocab, w_in


# ---------------------------------------------------------------------------------------------
# Looking at an embedding: project it to two dimensions.
# ---------------------------------------------------------------------------------------------


def pca_2d(weight: Tensor) -> Tensor:
    """Coordinates of every row on the two directions of largest variance
    (PCA via SVD).

    Centre the rows, take the SVD X = U S Vᵀ; the first two right singular
    vectors are the principal directions and X V[:, :2] = U[:, :2] S[:2]
    the coordinates. The sign of each component is arbitrary; we fix it so
    the largest-magnitude coordinate is positive, which makes plots
    reproducible.

    Args:
        weight: (V, D) with V >= 2 and D >= 2.
    Returns:
        (V, 2).
    """
    if weight.ndim != 2 or weight.shape[0] < 2 or weight.shape[1] < 2:
        raise ValueError(
            "weight must be (V, D) with V, D "
            f">= 2, got {tuple(weight.shape)}"
        )
    centered = weight - weight.mean(dim=0, keepdim=True)  # (V, D)
    # U: (V, r), S: (r,)
    U, S, _ = torch.linalg.svd(centered, full_matrices=False)
    coords = U[:, :2] * S[:2]  # (V, 2)
    # (1, 2)
    signs = torch.sign(
        coords.gather(0, coords.abs().argmax(dim=0, keepdim=True)),
    )
    return coords * torch.where(signs == 0, 1.0, signs)

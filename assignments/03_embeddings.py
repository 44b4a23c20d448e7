# %% [markdown]
# # 03 · Embeddings
#
# **Recap.** Token ids carry no meaning and impose a false order; one-hot vectors fix the order
# but are huge, sparse and all equally far apart. An embedding matrix `(V, D)` is a learned
# lookup table: row `i` is the vector of token `i`, and looking it up is the same as multiplying
# the one-hot vector by the matrix. Similar words get vectors pointing the same way, measured by
# cosine similarity, and directions can carry meaning (king − man + woman ≈ queen). Read
# [chapter 3, *Embeddings*](../../book/03_embeddings.md) (published as `03_embeddings.html`)
# first.
#
# Five functions, 12 points. Run a solution cell, then the test cell below it; from a terminal,
# `course check exercises/03_embeddings/03_embeddings.ipynb` runs all the visible tests, and so does
# the `G.check_all()` cell near the end.
#
# Rules: no `F.one_hot`, `F.embedding`/`nn.Embedding`, `F.cosine_similarity`, and not the
# course's reference package.

# %% demo
# Colab and Binder start without the course package: install it from the course repository, at
# the release that matches this notebook. Where `course_lib` is importable already (your own
# machine, the grader), this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_lib") is None:
    package = "course_lib @ git+{{COURSE_REPOSITORY_URL}}@{{COURSE_RELEASE_TAG}}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)


# %% setup
import torch
from torch import Tensor

# %% [markdown]
# ## 1. One-hot vectors and the lookup table
#
# `one_hot(ids, V)` puts a 1 at each id's position: `(…,)` → `(…, V)`, float32 so that it can
# be multiplied by a matrix. `embedding_lookup(ids, weight)` returns row `ids` of the `(V, D)`
# matrix: `(…,)` → `(…, D)`, exactly `one_hot(ids, V) @ weight`, without building the one-hot
# matrix.


# %% solution one_hot
def one_hot(ids: Tensor, num_classes: int) -> Tensor:
    """(...,) integer ids -> (..., num_classes) float32 with a single 1 per id."""
    ### BEGIN SOLUTION
    classes = torch.arange(num_classes)  # (V,)
    return (ids.unsqueeze(-1) == classes).to(torch.float32)  # (..., 1) == (V,) -> (..., V)
    ### END SOLUTION


# %% tests test_one_hot points=2
from course_lib import embeddings as ref
from course_lib import grading as G

FORBIDDEN = {"torch.nn.functional.one_hot": "compare ids with positions yourself"}
FORBIDDEN |= G.no_reference(ref)
cases = [
    G.Case(torch.tensor([2, 0]), 3, label="the docstring example: [[0, 0, 1], [1, 0, 0]]"),
    G.Case(torch.tensor([[1, 1], [0, 3]]), 4, label="a (2, 2) batch of ids"),
    G.Case(torch.tensor(1), 2, label="a single id (0-d)"),
]
assert G.check_function(one_hot, ref.one_hot, cases, forbidden=FORBIDDEN)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("03/one_hot")
hidden = [
    G.Case(torch.randint(0, 7, (3, 4, 5), generator=g), 7),
    G.Case(torch.zeros(0, dtype=torch.long), 5, label="no ids"),
]
assert G.check_function(one_hot, ref.one_hot, hidden, forbidden=FORBIDDEN)
### END HIDDEN TESTS


# %% solution embedding_lookup
def embedding_lookup(ids: Tensor, weight: Tensor) -> Tensor:
    """(...,) ids and a (V, D) matrix -> (..., D): row ``ids`` of ``weight``."""
    ### BEGIN SOLUTION
    return weight[ids]
    ### END SOLUTION


# %% tests test_embedding_lookup points=2
from course_lib import embeddings as ref
from course_lib import grading as G

FORBIDDEN = {
    "torch.nn.functional.embedding": "index the matrix yourself",
    "torch.nn.Embedding": "index the matrix yourself",
} | G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "the rows of the (V, D) matrix are the tokens: index rows, not columns",
        lambda ids, weight: weight.T[ids] if weight.shape[0] == weight.shape[1] else 1 / 0,
    )
]
W = torch.arange(12.0).view(4, 3)  # V=4 tokens, D=3: row i is [3i, 3i+1, 3i+2]
W_square = torch.arange(9.0).view(3, 3)
cases = [
    G.Case(torch.tensor([3, 0, 3]), W, label="rows 3, 0, 3"),
    G.Case(torch.tensor([[1, 2], [0, 0]]), W, label="(B, T) = (2, 2) ids"),
    G.Case(torch.tensor([0, 2]), W_square, label="a square matrix"),
]
assert G.check_function(
    embedding_lookup, ref.embedding_lookup, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("03/embedding_lookup")
weight = torch.randn(50, 16, generator=g)
hidden = [
    G.Case(torch.randint(0, 50, (4, 9), generator=g), weight),
    G.Case(torch.tensor(49), weight, label="one id"),
    G.Case(
        torch.randint(0, 5, (3,), generator=g), torch.randn(5, 5, generator=g, dtype=torch.float64)
    ),
]
assert G.check_function(
    embedding_lookup, ref.embedding_lookup, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Cosine similarity
#
# `cos(a, b) = a·b / (‖a‖ ‖b‖)` along `dim`, with `F.cosine_similarity`'s semantics: inputs
# broadcast (e.g. `(V, D)` against `(D,)`), the result loses the `dim` axis, and each norm is
# clamped to at least `eps`, so a zero vector gives 0 instead of NaN.


# %% solution cosine_similarity
def cosine_similarity(a: Tensor, b: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """a·b / (max(‖a‖, eps) · max(‖b‖, eps)) along ``dim``; ``dim`` is reduced away."""
    ### BEGIN SOLUTION
    a_norm = a.norm(dim=dim, keepdim=True).clamp_min(eps)
    b_norm = b.norm(dim=dim, keepdim=True).clamp_min(eps)
    return ((a / a_norm) * (b / b_norm)).sum(dim=dim)
    ### END SOLUTION


# %% tests test_cosine_similarity points=3
from course_lib import embeddings as ref
from course_lib import grading as G

FORBIDDEN = {
    "torch.nn.functional.cosine_similarity": "divide the dot product by the norms yourself",
    "torch.cosine_similarity": "divide the dot product by the norms yourself",
    "torch.nn.CosineSimilarity": "divide the dot product by the norms yourself",
} | G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "that is the plain dot product: divide by both norms",
        lambda a, b, dim=-1, eps=1e-8: (a * b).sum(dim),
    ),
    G.Mistake(
        "only one of the two vectors is normalised",
        lambda a, b, dim=-1, eps=1e-8: (a * b).sum(dim) / a.norm(dim=dim).clamp_min(eps),
    ),
    G.Mistake(
        "the similarity is taken along the wrong axis: use `dim`",
        lambda a, b, dim=-1, eps=1e-8: ref.cosine_similarity(a, b, dim=0 if dim != 0 else -1),
    ),
]
# Same direction -> 1, opposite -> -1, perpendicular -> 0, and length does not matter.
a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
b = torch.tensor([[2.0, 0.0], [-1.0, -1.0], [-4.0, 3.0]])
W = torch.tensor([[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]])
cases = [
    G.Case(a, b, label="same, opposite and perpendicular rows"),
    G.Case(W, torch.tensor([1.0, 0.0, 0.0]), label="(V, D) against one (D,) vector"),
    G.Case(a.T, b.T, dim=0, label="dim=0: vectors in the columns"),
    G.Case(torch.zeros(3), torch.ones(3), label="a zero vector gives 0, not NaN"),
]
assert G.check_function(
    cosine_similarity, ref.cosine_similarity, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("03/cosine_similarity")
hidden = [
    G.Case(torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)),
    G.Case(
        torch.randn(2, 3, 4, generator=g),
        torch.randn(3, 4, generator=g),
        dim=1,
        label="broadcast, dim=1",
    ),
    G.Case(
        torch.randn(7, 3, generator=g, dtype=torch.float64),
        torch.randn(3, generator=g, dtype=torch.float64),
    ),
    G.Case(torch.zeros(2, 4), torch.zeros(2, 4), label="both zero"),
]
assert G.check_function(
    cosine_similarity, ref.cosine_similarity, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Nearest neighbours and analogies
#
# `most_similar(query, weight, k, exclude)` returns the `k` rows of `weight` with the highest
# cosine similarity to `query`, best first, as `(indices, scores)`; rows in `exclude` are never
# returned. `analogy(a, b, c, weight, k)` answers "a is to b as c is to ?": the `k` ids nearest
# to `weight[b] − weight[a] + weight[c]`, excluding `a`, `b` and `c`.


# %% solution most_similar
def most_similar(
    query: Tensor, weight: Tensor, k: int, exclude: list[int] | None = None
) -> tuple[Tensor, Tensor]:
    """Top-k rows of ``weight`` by cosine similarity to ``query`` (D,): ((k,) long, (k,))."""
    ### BEGIN SOLUTION
    scores = cosine_similarity(query.unsqueeze(-2), weight)  # (V,)
    if exclude:
        scores[..., list(exclude)] = float("-inf")
    top = scores.topk(k, dim=-1)
    return top.indices, top.values
    ### END SOLUTION


# %% tests test_most_similar points=3
from course_lib import embeddings as ref
from course_lib import grading as G

FORBIDDEN = {
    "torch.nn.functional.cosine_similarity": "use your cosine_similarity"
} | G.no_reference(ref)


def _top(scores, k):
    top = scores.topk(k)
    return top.indices, top.values


MISTAKES = [
    G.Mistake(
        "the neighbours are ranked by dot product; rank them by cosine similarity",
        lambda query, weight, k, exclude=None: _top(weight @ query, k),
    ),
    G.Mistake(
        "`exclude` is ignored",
        lambda query, weight, k, exclude=None: ref.most_similar(query, weight, k),
    ),
    G.Mistake(
        "the least similar rows are returned; the best come first",
        lambda query, weight, k, exclude=None: _top(-ref.cosine_similarity(query, weight), k),
    ),
]
g = torch.Generator().manual_seed(0)
# Row 0 is long but points the same way as the query; row 1 is short and slightly off:
# cosine prefers row 0, the dot product would not.
weight = torch.tensor([[10.0, 0.0], [0.9, 0.5], [0.0, 1.0], [-1.0, 0.0]])
query = torch.tensor([1.0, 0.1])
random_weight = torch.randn(20, 6, generator=g)
cases = [
    G.Case(query, weight, 2, label="length does not count"),
    G.Case(query, weight, 2, [0], label="exclude row 0"),
    G.Case(random_weight[3], random_weight, 4, label="a word is its own nearest neighbour"),
]
assert G.check_function(
    most_similar, ref.most_similar, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("03/most_similar")
weight = torch.randn(40, 10, generator=g)
hidden = [
    G.Case(torch.randn(10, generator=g), weight, 5),
    G.Case(weight[7], weight, 3, [7, 2], label="exclude the query word"),
    G.Case(torch.randn(10, generator=g), weight, 1),
]
assert G.check_function(
    most_similar, ref.most_similar, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS


# %% solution analogy
def analogy(a: int, b: int, c: int, weight: Tensor, k: int = 1) -> Tensor:
    """Ids nearest to b - a + c (excluding a, b, c): "a is to b as c is to ?"; (k,) long."""
    ### BEGIN SOLUTION
    target = weight[b] - weight[a] + weight[c]
    indices, _ = most_similar(target, weight, k, exclude=[a, b, c])
    return indices
    ### END SOLUTION


# %% tests test_analogy points=2
from course_lib import embeddings as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)


def _near(target, weight, k, exclude):
    return ref.most_similar(target, weight, k, exclude)[0]


MISTAKES = [
    G.Mistake(
        "the offset is the wrong way round: look near b - a + c (king - man + woman)",
        lambda a, b, c, weight, k=1: _near(weight[a] - weight[b] + weight[c], weight, k, [a, b, c]),
    ),
    G.Mistake(
        "a, b and c are not excluded, so an input word comes back",
        lambda a, b, c, weight, k=1: _near(weight[b] - weight[a] + weight[c], weight, k, None),
    ),
]
words, W = ref.analogy_demo_embeddings()
ids = {w: i for i, w in enumerate(words)}
# man : king = woman : ?   and   dog : puppy = cat : ?
cases = [
    G.Case(ids["man"], ids["king"], ids["woman"], W, label="man : king = woman : ?"),
    G.Case(ids["dog"], ids["puppy"], ids["cat"], W, label="dog : puppy = cat : ?"),
]
assert G.check_function(analogy, ref.analogy, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("03/analogy")
weight = torch.randn(30, 8, generator=g)
hidden = [
    G.Case(1, 2, 3, weight, 3),
    G.Case(0, 5, 9, weight),
    G.Case(4, 4, 6, weight, 2, label="a == b"),
]
assert G.check_function(analogy, ref.analogy, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: which words are alike?
#
# The heatmap is *your* `cosine_similarity` between the twelve words of the chapter's small,
# hand-made embedding (each axis is one property: royal, male, female, young, ...). Move the
# slider to pick a word and see its nearest neighbours from *your* `most_similar`. Not graded.

# %% demo
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.embeddings import analogy_demo_embeddings
from course_lib.interactive import widget_slider

demo_words, demo_W = analogy_demo_embeddings()


def draw(word: str) -> plt.Figure:
    i = demo_words.index(word)
    sims = cosine_similarity(demo_W.unsqueeze(1), demo_W.unsqueeze(0))  # (12, 12)
    idx, scores = most_similar(demo_W[i], demo_W, 3, exclude=[i])
    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.imshow(sims.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(12), demo_words, rotation=90)
    ax.set_yticks(range(12), demo_words)
    ax.axhline(i, color="k", lw=0.5)
    near = ", ".join(f"{demo_words[j]} ({s:.2f})" for j, s in zip(idx.tolist(), scores.tolist()))
    ax.set_title(f"nearest to {word}: {near}", fontsize=9)
    fig.tight_layout()
    return fig


try:
    most_similar(demo_W[0], demo_W, 1, exclude=[0])
except NotImplementedError:
    print("Implement cosine_similarity and most_similar above, then run this cell again.")
else:
    display(widget_slider(draw, demo_words, label="word"))

# %% [markdown]
# ## Your points so far
#
# Run every cell above first. The cell below runs this notebook's visible tests again and
# lists each test's points, as `course check` does; the hidden tests run only when your work
# is graded.

# %% demo
from course_lib import grading as G

G.check_all()

# %% [markdown]
# ## Written questions
#
# Answer in the cell below each question, in your own words. A person grades these
# against a rubric; `course check` does not.

# %% written written_cosine points=2
# **Question (2 points).** Why do we compare embeddings with cosine similarity rather than the plain dot product or the Euclidean distance? Give the property that matters and one case where the choice changes which word is "most similar".
# RUBRIC:
# - 1 point: cosine ignores vector length and compares only direction; frequent words tend to have longer vectors, which would dominate a dot product.
# - 1 point: a concrete case: a long vector pointing somewhat the same way beats a short vector pointing exactly the same way under the dot product but not under cosine (or a similar worked example).

# %% [markdown]
# ## Recap
#
# - An embedding lookup is indexing rows, and equals one-hot × matrix.
# - Cosine similarity ignores length, so frequent words with long vectors do not win by size.
# - Analogies are vector offsets: the nearest word to b − a + c, the inputs excluded.
#
# More in [chapter 3](../../book/03_embeddings.md).

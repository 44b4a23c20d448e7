# %% [markdown]
# # 05 · Scaled dot-product attention
#
# **Recap.** Attention is a weighted average of value vectors whose weights depend on the input:
# each query is compared with every key by a dot product, the scores are divided by √d_k so
# that the softmax does not saturate, and the softmax turns each query's row of scores into
# weights that sum to 1. A mask (True = *may attend*) removes keys before the softmax, and a
# query that may see no key at all gets a row of zeros. Read
# [chapter 5, *Scaled dot-product attention*](../../book/05_attention.md) (published as
# `05_attention.html`) before you start.
#
# You implement three functions, each with its own tests (10 points in all). Run a solution cell,
# then the test cell below it. Check your work from a terminal with
# `course check exercises/05_attention/05_attention.ipynb`, or in the notebook with the
# `G.check_all()` cell near the end.
#
# Rules: build everything from tensor operations (`@`, `exp`, `sum`, `masked_fill`, `tril`,
# ...). `torch.softmax`, `F.scaled_dot_product_attention` and the course's reference package
# are not allowed inside your functions (use them outside to compare, if you like).

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
import math

import torch
from torch import Tensor

# %% [markdown]
# ## 1. A numerically stable softmax
#
# `softmax(x)_i = exp(x_i) / Σ_j exp(x_j)` along `dim`. `exp(1e4)` overflows to `inf` in
# float32, so subtract the maximum along `dim` first: the factor `exp(-max)` cancels.


# %% solution softmax
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, computed stably; same shape as ``x``.

    A slice that is entirely -inf (nothing to attend to) gives zeros, not NaN.
    """
    ### BEGIN SOLUTION
    row_max = x.amax(dim=dim, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(x - row_max)
    total = e.sum(dim=dim, keepdim=True)
    return e / torch.where(total == 0, torch.ones_like(total), total)
    ### END SOLUTION


# %% tests test_softmax points=2
from course_lib import attention as ref
from course_lib import grading as G

FORBIDDEN = G.NO_SOFTMAX | G.no_reference(ref)
MISTAKES = G.softmax_mistakes()
# Row 0: exp(0) = 1 and exp(log 3) = 3, so the weights are 1/4 and 3/4. Row 1: equal scores
# share equally.
hand = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]])
# exp(1e4) is inf in float32: only the stable form gets [1, 0] here.
large = torch.tensor([[1e4, 0.0], [-1e4, -1e4]])
# dim=0 normalises each column instead of each row.
columns = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
cases = [
    G.Case(hand, label="worked by hand"),
    G.Case(large, label="scores of ±1e4"),
    G.Case(columns, dim=0, label="dim=0"),
]
assert G.check_function(softmax, ref.softmax, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("05/softmax")
hidden = [
    G.Case(torch.randn(3, 4, 5, generator=g) * 5, dim=d, label=f"random, dim={d}")
    for d in (0, 1, -1)
]
hidden.append(G.Case(torch.randn(2, 3, 4, 6, generator=g) * 1e4, label="4-D, ±1e4"))
hidden.append(G.Case(torch.randn(4, 7, generator=g, dtype=torch.float64), label="float64"))
hidden.append(G.Case(torch.randn(1, 1, generator=g), label="one element"))
assert G.check_function(softmax, ref.softmax, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Attention weights
#
# `weights = softmax(Q Kᵀ · scale)` over the keys, where `scale` defaults to `1/√d_k`
# (`d_k = query.size(-1)`). `attn_mask` broadcasts to `(…, T, S)`: a **bool** mask keeps the
# `True` entries (False becomes −∞ before the softmax); a **float** mask is added to the
# scores. `is_causal=True` lets query `i` see keys `0..i` (upper-left aligned when T ≠ S).
# Passing both `attn_mask` and `is_causal` is an error.


# %% solution attention_weights
def attention_weights(
    query: Tensor,
    key: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    *,
    scale: float | None = None,
) -> Tensor:
    """softmax(Q Kᵀ · scale) over the keys.

    Args:
        query: (..., T, Dh). key: (..., S, Dh).
        attn_mask: broadcastable to (..., T, S); bool (True = may attend) or float (added).
        is_causal: query i sees keys 0..i only.
        scale: multiplies the scores; default 1 / sqrt(Dh).
    Returns:
        (..., T, S): rows sum to 1, or are all zero when every key is blocked.
    """
    ### BEGIN SOLUTION
    if attn_mask is not None and is_causal:
        raise ValueError("pass attn_mask or is_causal, not both")
    T, S = query.size(-2), key.size(-2)
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale  # (..., T, S)
    if is_causal:
        attn_mask = torch.ones(T, S, dtype=torch.bool).tril()
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return softmax(scores, dim=-1)
    ### END SOLUTION


# %% tests test_attention_weights points=2
from course_lib import attention as ref
from course_lib import grading as G

FORBIDDEN = G.NO_SOFTMAX | G.NO_TORCH_ATTENTION | G.no_reference(ref)
MISTAKES = G.attention_mistakes(with_value=False)
g = torch.Generator().manual_seed(0)
# The chapter's example: both queries match both keys equally, so every weight is 1/2.
q_seed = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
k_seed = torch.tensor([[5.0, 6.0], [5.0, 6.0]])
# T = 2 queries, S = 3 keys, d_k = 4: the weights are (2, 3) and each row sums to 1.
q, k = torch.randn(2, 4, generator=g), torch.randn(3, 4, generator=g)
# Leading batch and head axes (B=2, H=3) just come along.
qb, kb = torch.randn(2, 3, 4, 8, generator=g), torch.randn(2, 3, 5, 8, generator=g)
cases = [
    G.Case(q_seed, k_seed, label="the chapter's example"),
    G.Case(q, k, label="T=2, S=3"),
    G.Case(qb, kb, label="batch and heads"),
    G.Case(q, k, scale=0.5, label="explicit scale"),
]
assert G.check_function(
    attention_weights, ref.attention_weights, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("05/attention_weights")
hidden = [
    G.Case(torch.randn(3, 6, 16, generator=g) * 3, torch.randn(3, 4, 16, generator=g) * 3),
    G.Case(torch.randn(1, 1, 4, generator=g), torch.randn(1, 1, 4, generator=g), label="one token"),
    G.Case(torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g), scale=2.0),
    G.Case(
        torch.randn(2, 2, 3, 4, generator=g, dtype=torch.float64),
        torch.randn(2, 2, 7, 4, generator=g, dtype=torch.float64),
        label="float64",
    ),
]
assert G.check_function(
    attention_weights, ref.attention_weights, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% tests test_attention_weights-masks points=2
from course_lib import attention as ref
from course_lib import grading as G

FORBIDDEN = G.NO_SOFTMAX | G.NO_TORCH_ATTENTION | G.no_reference(ref)
MISTAKES = G.attention_mistakes(with_value=False)
g = torch.Generator().manual_seed(1)
q, k = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
# Keep polarity: True = may attend. Query 0 may see keys 0 and 1, query 1 only key 2, and
# query 2 no key at all, so its row must be zeros (not NaN).
keep = torch.tensor([[True, True, False], [False, False, True], [False, False, False]])
# A float mask is added to the scores: 0 keeps a key, -inf removes it, -1 only discourages it.
additive = torch.tensor([[0.0, -1.0, float("-inf")]])
# Causal with T = 2 queries and S = 4 keys: query i sees keys 0..i (upper-left aligned).
q2 = torch.randn(2, 4, generator=g)
k4 = torch.randn(4, 4, generator=g)
cases = [
    G.Case(q, k, keep, label="bool mask, one fully masked row"),
    G.Case(q, k, additive, label="additive float mask"),
    G.Case(q, k, is_causal=True, label="causal, T = S"),
    G.Case(q2, k4, is_causal=True, label="causal, T=2 < S=4"),
]
assert G.check_function(
    attention_weights, ref.attention_weights, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
# A mask and is_causal together are ambiguous: the function must refuse with a ValueError.
assert G.check_raises(
    attention_weights, ValueError, q, k, keep, True, why="pass attn_mask or is_causal, not both"
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("05/attention_weights-masks")
q, k = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 6, 8, generator=g)
padding = torch.rand(2, 1, 1, 6, generator=g) > 0.4  # (B, 1, 1, S) broadcasts over H and T
padding[0, ..., 0] = True
hidden = [
    G.Case(q, k, padding, label="broadcast padding mask"),
    G.Case(q, k, torch.randn(5, 6, generator=g), label="random additive mask"),
    G.Case(q, k, is_causal=True, label="causal, T=5 < S=6"),
    G.Case(k, q, is_causal=True, label="causal, T=6 > S=5"),
    G.Case(q, k, torch.zeros(5, 6, dtype=torch.bool), label="everything masked"),
]
assert G.check_function(
    attention_weights, ref.attention_weights, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
assert G.check_no_future_leak(
    attention_weights, {"query": q, "key": q.clone()}, is_causal=True, forbidden=FORBIDDEN
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Scaled dot-product attention
#
# The output is the weighted average of the values: `attention_weights(...) @ value`, argument
# for argument like `F.scaled_dot_product_attention` (without dropout). The chapter's worked
# example: `Q = [[1,2],[1,2]]`, `K = [[5,6],[5,6]]`, `V = [[9,10],[11,12]]` gives
# `[[10,11],[10,11]]`.


# %% solution scaled_dot_product_attention
def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    *,
    scale: float | None = None,
) -> Tensor:
    """softmax(Q Kᵀ · scale) V.

    Args:
        query: (..., T, Dh). key: (..., S, Dh). value: (..., S, Dv).
        attn_mask, is_causal, scale: as in ``attention_weights``.
    Returns:
        (..., T, Dv); a query with no allowed key gives zeros.
    """
    ### BEGIN SOLUTION
    if attn_mask is not None and is_causal:
        raise ValueError("pass attn_mask or is_causal, not both")
    weights = attention_weights(query, key, attn_mask, is_causal, scale=scale)  # (..., T, S)
    return weights @ value  # (..., T, Dv)
    ### END SOLUTION


# %% tests test_scaled_dot_product_attention points=2
from course_lib import attention as ref
from course_lib import grading as G

FORBIDDEN = G.NO_SOFTMAX | G.NO_TORCH_ATTENTION | G.no_reference(ref)
MISTAKES = G.attention_mistakes(with_value=True)
g = torch.Generator().manual_seed(2)
# The worked example: equal weights 1/2, so each output row is the mean of the two values.
q_seed = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
k_seed = torch.tensor([[5.0, 6.0], [5.0, 6.0]])
v_seed = torch.tensor([[9.0, 10.0], [11.0, 12.0]])
# (B, H, T, Dh) = (2, 2, 3, 4) queries against S = 5 keys whose values have Dv = 6.
q = torch.randn(2, 2, 3, 4, generator=g)
k, v = torch.randn(2, 2, 5, 4, generator=g), torch.randn(2, 2, 5, 6, generator=g)
cases = [
    G.Case(q_seed, k_seed, v_seed, label="the chapter's worked example"),
    G.Case(q, k, v, label="T=3, S=5, Dv=6"),
    G.Case(q, k, v, scale=0.1, label="explicit scale"),
]
assert G.check_function(
    scaled_dot_product_attention,
    ref.scaled_dot_product_attention,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("05/scaled_dot_product_attention")
hidden = [
    G.Case(
        torch.randn(4, 7, 16, generator=g) * 2,
        torch.randn(4, 9, 16, generator=g) * 2,
        torch.randn(4, 9, 3, generator=g),
        label="random",
    ),
    G.Case(
        torch.randn(1, 1, 1, 2, generator=g),
        torch.randn(1, 1, 1, 2, generator=g),
        torch.randn(1, 1, 1, 5, generator=g),
        label="one token",
    ),
]
assert G.check_function(
    scaled_dot_product_attention,
    ref.scaled_dot_product_attention,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### END HIDDEN TESTS

# %% tests test_scaled_dot_product_attention-masks points=2
from course_lib import attention as ref
from course_lib import grading as G

FORBIDDEN = G.NO_SOFTMAX | G.NO_TORCH_ATTENTION | G.no_reference(ref)
MISTAKES = G.attention_mistakes(with_value=True)
g = torch.Generator().manual_seed(3)
q, k, v = (torch.randn(1, 4, 8, generator=g) for _ in range(3))
# Keys 2 and 3 are padding: True marks the real keys (keep polarity, like Hugging Face's 1s).
real_keys = torch.tensor([[[True, True, False, False]]])  # (B, 1, S) broadcasts over T
# Query 3 may see nothing at all: its output row must be zeros.
none_for_last = torch.ones(4, 4, dtype=torch.bool)
none_for_last[3] = False
cases = [
    G.Case(q, k, v, real_keys, label="padding mask"),
    G.Case(q, k, v, none_for_last, label="a query that sees no key"),
    G.Case(q, k, v, is_causal=True, label="causal"),
]
assert G.check_function(
    scaled_dot_product_attention,
    ref.scaled_dot_product_attention,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
# With is_causal=True, changing tokens 2 and 3 must not change the outputs at 0 and 1.
assert G.check_no_future_leak(
    scaled_dot_product_attention,
    {"query": q, "key": k, "value": v},
    is_causal=True,
    forbidden=FORBIDDEN,
)
assert G.check_raises(
    scaled_dot_product_attention,
    ValueError,
    q,
    k,
    v,
    real_keys,
    True,
    why="pass attn_mask or is_causal, not both",
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("05/scaled_dot_product_attention-masks")
q, k = torch.randn(2, 2, 5, 4, generator=g), torch.randn(2, 2, 7, 4, generator=g)
v = torch.randn(2, 2, 7, 3, generator=g)
hidden = [
    G.Case(q, k, v, torch.rand(2, 1, 5, 7, generator=g) > 0.5, label="random bool mask"),
    G.Case(q, k, v, torch.randn(5, 7, generator=g), label="random additive mask"),
    G.Case(q, k, v, is_causal=True, label="causal, T=5 < S=7"),
]
assert G.check_function(
    scaled_dot_product_attention,
    ref.scaled_dot_product_attention,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
assert G.check_no_future_leak(
    scaled_dot_product_attention,
    {"query": q, "key": k, "value": k.clone()},
    is_causal=True,
    forbidden=FORBIDDEN,
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: temperature and masks
#
# The slider multiplies the default scale `1/√d_k` by a factor: small factors flatten the
# weights towards uniform, large ones push each row towards one-hot (a saturated softmax).
# The heatmap is *your* `attention_weights` on "time flies like an arrow" with random vectors
# and a causal mask. Not graded.

# %% demo
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.interactive import widget_slider

words = ["time", "flies", "like", "an", "arrow"]
demo_gen = torch.Generator().manual_seed(0)
demo_q = torch.randn(5, 16, generator=demo_gen)
demo_k = torch.randn(5, 16, generator=demo_gen)


def draw(factor: float) -> plt.Figure:
    weights = attention_weights(demo_q, demo_k, is_causal=True, scale=factor / math.sqrt(16))
    fig, ax = plt.subplots(figsize=(4, 3.4))
    ax.imshow(weights.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(5), words, rotation=45)
    ax.set_yticks(range(5), words)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(f"scale = {factor} / √d_k")
    fig.tight_layout()
    return fig


try:
    attention_weights(demo_q[:1], demo_k[:1])
except NotImplementedError:
    print("Implement attention_weights above and run its cell, then run this cell to explore.")
else:
    display(widget_slider(draw, [0.1, 0.5, 1.0, 2.0, 4.0, 8.0], label="scale factor", initial=2))

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

# %% written written_scale points=2
# **Question (2 points).** Why does dividing the scores by √d_k keep the softmax out of saturation? Say what happens to the scores' spread as d_k grows and what saturation does to the gradients.
# RUBRIC:
# - 1 point: for queries and keys with independent unit-variance entries, a dot product of d_k terms has variance d_k, so the scores spread as √d_k; dividing by √d_k brings the variance back to 1.
# - 1 point: with large scores the softmax is nearly one-hot (saturated); its gradient with respect to the scores is then close to zero, so learning stalls.
# - No point for "to normalise" without the variance argument.

# %% written written_empty_row points=1
# **Question (1 point).** A query whose every key is masked out gets a row of zeros in this course, not NaN. Where would NaN come from if you used the textbook softmax formula?
# RUBRIC:
# - 1 point: every score is −inf, so the maximum is −inf and x − max is −inf − (−inf) = NaN (or exp gives 0/0); the guard replaces the maximum and the zero sum.

# %% [markdown]
# ## Recap
#
# - The weights are `softmax(Q Kᵀ / √d_k)` over the keys: one row per query, each summing to 1.
# - Subtracting the row maximum keeps the softmax finite for scores like ±1e4.
# - Masks keep `True` entries; a float mask is added; a query with no allowed key gives zeros.
# - The output `weights @ V` has one row per query, `(…, T, Dv)`.
#
# Next: [chapter 6, self-attention and cross-attention](../../book/06_self_attention.md).
# Back to [chapter 5](../../book/05_attention.md).

# %% [markdown]
# # 06 · Self-attention and cross-attention
#
# **Recap.** Attention on its own has no parameters, so nothing in it can learn. Three learned
# projections fix that: `W_Q` turns each token into what it is looking for, `W_K` into what it
# offers, `W_V` into what it hands over. In *self*-attention queries, keys and values all come
# from one sequence `x`; in *cross*-attention the queries come from the decoder sequence `x` and
# the keys and values from the encoder output `context` ("I love you" → "Je t'aime"), and the
# output has one row per query, so its length is the decoder's. Read
# [chapter 6, *Self-attention and cross-attention*](../../book/06_self_attention.md)
# (published as `06_self_attention.html`) first.
#
# Two modules, 10 points. Run a solution cell, then the test cells below it; from a terminal,
# `course check exercises/06_self_attention/06_self_attention.ipynb` runs the visible tests, and so
# does the `G.check_all()` cell near the end.
#
# Chapter 5's `scaled_dot_product_attention` is imported for you (you may also use your own, or
# `F.scaled_dot_product_attention`). Not allowed: `nn.MultiheadAttention` and the course's
# reference solution of this chapter. The submodules must be called `q_proj`, `k_proj` and
# `v_proj` (`nn.Linear`, with `bias=bias`), so that the tests can load known weights.

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
from torch import Tensor, nn

from course_lib.attention import scaled_dot_product_attention  # chapter 5, provided

# %% [markdown]
# ## 1. Self-attention
#
# `d_k` (queries and keys) and `d_v` (values, and so the output) default to `d_model`.
# `forward(x, attn_mask=None, is_causal=False)`: `(B, T, D)` → `(B, T, d_v)`; the mask uses keep
# polarity (True = may attend) and broadcasts to `(B, T, T)`.


# %% solution SelfAttention
class SelfAttention(nn.Module):
    """Single-head self-attention with learned Q, K, V projections (no output projection)."""

    def __init__(
        self, d_model: int, d_k: int | None = None, d_v: int | None = None, bias: bool = False
    ) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        d_k = d_model if d_k is None else d_k
        d_v = d_model if d_v is None else d_v
        self.q_proj = nn.Linear(d_model, d_k, bias=bias)
        self.k_proj = nn.Linear(d_model, d_k, bias=bias)
        self.v_proj = nn.Linear(d_model, d_v, bias=bias)
        ### END SOLUTION

    def forward(
        self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
    ) -> Tensor:
        """(B, T, D) -> (B, T, d_v)."""
        ### BEGIN SOLUTION
        q = self.q_proj(x)  # (B, T, d_k)
        k = self.k_proj(x)  # (B, T, d_k)
        v = self.v_proj(x)  # (B, T, d_v)
        return scaled_dot_product_attention(q, k, v, attn_mask, is_causal)
        ### END SOLUTION


# %% tests test_SelfAttention points=2
from course_lib import grading as G
from course_lib import self_attention as ref

FORBIDDEN = {
    "torch.nn.MultiheadAttention": "build it from three nn.Linear layers"
} | G.no_reference(ref)
MISTAKES = G.projection_mistakes(cross=False)
g = torch.Generator().manual_seed(0)
# B=2 sentences of T=5 tokens with D=8 features; the output has the same shape.
x = torch.randn(2, 5, 8, generator=g)
cases = [G.Case(x, label="(2, 5, 8)"), G.Case(x[:1, :1], label="one token attends only to itself")]
assert G.check_module(
    SelfAttention, ref.SelfAttention, {"d_model": 8}, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("06/self")
hidden = [G.Case(torch.randn(3, 7, 8, generator=g) * 2)]
assert G.check_module(
    SelfAttention,
    ref.SelfAttention,
    {"d_model": 8},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=11,
)
### END HIDDEN TESTS

# %% tests test_SelfAttention-widths points=1
from course_lib import grading as G
from course_lib import self_attention as ref

FORBIDDEN = {
    "torch.nn.MultiheadAttention": "build it from three nn.Linear layers"
} | G.no_reference(ref)
MISTAKES = G.projection_mistakes(cross=False)
g = torch.Generator().manual_seed(1)
x = torch.randn(2, 4, 6, generator=g)
# d_k=3 changes the scale to 1/√3 and d_v=5 the output width; bias=True adds biases.
cases = [G.Case(x, label="D=6, d_k=3, d_v=5")]
assert G.check_module(
    SelfAttention,
    ref.SelfAttention,
    {"d_model": 6, "d_k": 3, "d_v": 5},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
assert G.check_module(
    SelfAttention,
    ref.SelfAttention,
    {"d_model": 6, "bias": True},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("06/self-widths")
hidden = [G.Case(torch.randn(2, 6, 10, generator=g))]
assert G.check_module(
    SelfAttention,
    ref.SelfAttention,
    {"d_model": 10, "d_k": 4, "d_v": 7, "bias": True},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=5,
)
### END HIDDEN TESTS

# %% tests test_SelfAttention-masks points=2
from course_lib import grading as G
from course_lib import self_attention as ref

FORBIDDEN = {
    "torch.nn.MultiheadAttention": "build it from three nn.Linear layers"
} | G.no_reference(ref)
MISTAKES = G.projection_mistakes(cross=False)
g = torch.Generator().manual_seed(2)
x = torch.randn(2, 4, 8, generator=g)
# Sentence 1 has two padding tokens at the end: True marks the real keys.
real = torch.tensor([[True, True, True, True], [True, True, False, False]])[:, None, :]  # (B, 1, S)
cases = [G.Case(x, real, label="padding mask"), G.Case(x, is_causal=True, label="causal")]
assert G.check_module(
    SelfAttention, ref.SelfAttention, {"d_model": 8}, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
# Causal: changing tokens after position t must not change the outputs up to t.
module = G.call(SelfAttention, 8, forbidden=FORBIDDEN)
assert G.check_no_future_leak(
    module, {"x": x}, is_causal=True, forbidden=FORBIDDEN, name="SelfAttention"
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("06/self-masks")
x = torch.randn(3, 6, 8, generator=g)
hidden = [
    G.Case(x, torch.rand(3, 6, 6, generator=g) > 0.3, label="random mask"),
    G.Case(x, is_causal=True, label="causal"),
]
assert G.check_module(
    SelfAttention,
    ref.SelfAttention,
    {"d_model": 8, "d_k": 4},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=3,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Cross-attention
#
# Queries from `x` `(B, T, D)`, keys and values from `context` `(B, S, d_context)`:
# `q_proj` is `nn.Linear(d_model, d_k)`, `k_proj` and `v_proj` read `d_context` features.
# `forward(x, context, attn_mask=None)` → `(B, T, d_v)`, one row per query.


# %% solution CrossAttention
class CrossAttention(nn.Module):
    """Single-head cross-attention: queries from ``x``, keys and values from ``context``."""

    def __init__(
        self,
        d_model: int,
        d_context: int,
        d_k: int | None = None,
        d_v: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        d_k = d_model if d_k is None else d_k
        d_v = d_model if d_v is None else d_v
        self.q_proj = nn.Linear(d_model, d_k, bias=bias)
        self.k_proj = nn.Linear(d_context, d_k, bias=bias)
        self.v_proj = nn.Linear(d_context, d_v, bias=bias)
        ### END SOLUTION

    def forward(self, x: Tensor, context: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """(B, T, D), (B, S, d_context) -> (B, T, d_v)."""
        ### BEGIN SOLUTION
        q = self.q_proj(x)  # (B, T, d_k)
        k = self.k_proj(context)  # (B, S, d_k)
        v = self.v_proj(context)  # (B, S, d_v)
        return scaled_dot_product_attention(q, k, v, attn_mask)
        ### END SOLUTION


# %% tests test_CrossAttention points=2
from course_lib import grading as G
from course_lib import self_attention as ref

FORBIDDEN = {
    "torch.nn.MultiheadAttention": "build it from three nn.Linear layers"
} | G.no_reference(ref)
MISTAKES = G.projection_mistakes(cross=True)
g = torch.Generator().manual_seed(3)
# "Je t'aime" (T=3 decoder tokens) attends to "I love you" (S=3 encoder outputs), D=8.
x, context = torch.randn(1, 3, 8, generator=g), torch.randn(1, 3, 8, generator=g)
# T=2 queries against S=5 context vectors: the output has T=2 rows.
x2, context5 = torch.randn(2, 2, 8, generator=g), torch.randn(2, 5, 8, generator=g)
cases = [G.Case(x, context, label="T = S = 3"), G.Case(x2, context5, label="T=2, S=5")]
assert G.check_module(
    CrossAttention,
    ref.CrossAttention,
    {"d_model": 8, "d_context": 8},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("06/cross")
hidden = [
    G.Case(torch.randn(3, 4, 8, generator=g), torch.randn(3, 4, 8, generator=g)),
    G.Case(torch.randn(1, 1, 8, generator=g), torch.randn(1, 9, 8, generator=g), label="T=1"),
]
assert G.check_module(
    CrossAttention,
    ref.CrossAttention,
    {"d_model": 8, "d_context": 8},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=7,
)
### END HIDDEN TESTS

# %% tests test_CrossAttention-widths points=1
from course_lib import grading as G
from course_lib import self_attention as ref

FORBIDDEN = {
    "torch.nn.MultiheadAttention": "build it from three nn.Linear layers"
} | G.no_reference(ref)
MISTAKES = G.projection_mistakes(cross=True)
g = torch.Generator().manual_seed(4)
# The encoder is wider (d_context=10) than the decoder (D=6); d_k=4, d_v=3, with biases.
x, context = torch.randn(2, 3, 6, generator=g), torch.randn(2, 5, 10, generator=g)
cases = [G.Case(x, context, label="D=6, d_context=10")]
assert G.check_module(
    CrossAttention,
    ref.CrossAttention,
    {"d_model": 6, "d_context": 10, "d_k": 4, "d_v": 3, "bias": True},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("06/cross-widths")
hidden = [G.Case(torch.randn(2, 4, 5, generator=g), torch.randn(2, 6, 12, generator=g))]
assert G.check_module(
    CrossAttention,
    ref.CrossAttention,
    {"d_model": 5, "d_context": 12, "d_v": 2},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=9,
)
### END HIDDEN TESTS

# %% tests test_CrossAttention-masks points=2
from course_lib import grading as G
from course_lib import self_attention as ref

FORBIDDEN = {
    "torch.nn.MultiheadAttention": "build it from three nn.Linear layers"
} | G.no_reference(ref)
MISTAKES = G.projection_mistakes(cross=True)
g = torch.Generator().manual_seed(5)
x, context = torch.randn(2, 3, 8, generator=g), torch.randn(2, 4, 8, generator=g)
# The second source sentence is padded after 2 tokens: hide those keys (True = may attend).
real = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()[:, None, :]  # (B, 1, S)
cases = [G.Case(x, context, real, label="padded context")]
assert G.check_module(
    CrossAttention,
    ref.CrossAttention,
    {"d_model": 8, "d_context": 8},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("06/cross-masks")
x, context = torch.randn(3, 5, 8, generator=g), torch.randn(3, 6, 8, generator=g)
hidden = [G.Case(x, context, torch.rand(3, 5, 6, generator=g) > 0.4, label="random mask")]
assert G.check_module(
    CrossAttention,
    ref.CrossAttention,
    {"d_model": 8, "d_context": 8},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=13,
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: where does each French word look?
#
# *Your* `CrossAttention` with random weights; the slider scales the query weights, which
# sharpens or flattens the attention of "Je t' aime" over "I love you". With random weights
# the pattern means nothing yet: training is what makes "aime" look at "love". Not graded.

# %% demo
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.interactive import widget_slider

src_words, tgt_words = ["I", "love", "you"], ["Je", "t'", "aime"]
torch.manual_seed(0)


def draw(sharpness: float) -> plt.Figure:
    gen = torch.Generator().manual_seed(0)
    layer = CrossAttention(8, 8)
    x, context = torch.randn(1, 3, 8, generator=gen), torch.randn(1, 3, 8, generator=gen)
    with torch.no_grad():
        layer.q_proj.weight.mul_(sharpness)
        q, k = layer.q_proj(x), layer.k_proj(context)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)[0]
        out = layer(x, context)
    fig, ax = plt.subplots(figsize=(3.6, 3))
    ax.imshow(weights.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(3), src_words)
    ax.set_yticks(range(3), tgt_words)
    ax.set_title(f"output {tuple(out.shape)}")
    fig.tight_layout()
    return fig


try:
    CrossAttention(8, 8)(torch.zeros(1, 1, 8), torch.zeros(1, 2, 8))
except NotImplementedError:
    print("Implement CrossAttention above, then run this cell again.")
else:
    display(widget_slider(draw, [0.25, 1.0, 4.0, 16.0], label="sharpness", initial=1))

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

# %% written written_cross_attention points=2
# **Question (2 points).** In cross-attention, queries come from one sequence and keys and values from the other. Which sequence provides what in a translation model's decoder, and why can the two sequences have different lengths?
# RUBRIC:
# - 1 point: the queries come from the decoder (the target sentence so far); keys and values come from the encoder's output (the source sentence).
# - 1 point: the weights have shape (T, S): T target positions by S source positions, and nothing requires T = S, because each query is compared with every key independently.

# %% [markdown]
# ## Recap
#
# - The projections are what attention learns: queries and keys decide where to look, values
#   decide what comes back.
# - Self-attention takes Q, K and V from one sequence; cross-attention takes Q from the decoder
#   and K, V from the encoder, and returns one row per query.
# - The scale is 1/√d_k, the width of the queries and keys, not of the model.
#
# More in [chapter 6](../../book/06_self_attention.md).

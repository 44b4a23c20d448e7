# ruff: noqa: E402
# %% [markdown]
# # 09 · The transformer block
#
# **Recap.** A transformer block has two sublayers: self-attention (tokens exchange
# information) and a position-wise feed-forward network (each token on its own: two linear
# layers, about 4× wider in between, ReLU or GELU). Each sublayer is wrapped in a residual
# connection, the gradient highway, and a layer norm that brings every token's features to
# mean 0 and variance 1 before a learned scale and shift. *Post-LN* (the 2017 paper) computes
# `LayerNorm(x + Sublayer(x))`; *pre-LN* (GPT-2 and later) computes `x + Sublayer(LayerNorm(x))`
# and trains without a learning-rate warm-up. Read
# [chapter 9, *The transformer block and architectures*](../../book/09_transformer_block.md)
# (published as `09_transformer_block.html`) first.
#
# Four exercises, 14 points. Run a solution cell, then the test cells below it; from a terminal,
# `course check exercises/09_transformer_block/09_transformer_block.ipynb` runs the visible tests,
# and so does the `G.check_all()` cell near the end.
#
# Chapter 8's `MultiHeadAttention` is imported for you (forward returns `(out, weights)`).
# Not allowed: `F.layer_norm` / `nn.LayerNorm` inside `layer_norm`, `nn.TransformerEncoderLayer`,
# `nn.MultiheadAttention`, and the course's reference solution of this chapter.

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
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.multi_head import MultiHeadAttention  # chapter 8, provided

# %% [markdown]
# ## 1. Layer normalization
#
# For each token (the last axis, D features): subtract the mean, divide by
# `sqrt(variance + eps)`, then multiply by `weight` (γ) and add `bias` (β). The variance is the
# *biased* one, divided by D, exactly as `F.layer_norm` computes it.


# %% solution layer_norm
def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """(..., D), (D,), (D,) -> (..., D): normalise over the last axis, then scale and shift."""
    ### BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1) biased: divide by D
    return (x - mean) / torch.sqrt(var + eps) * weight + bias  # (..., D)
    ### END SOLUTION


# %% tests test_layer_norm points=3
from course_lib import grading as G
from course_lib import transformer as ref

FORBIDDEN = G.NO_TORCH_LAYER_NORM | G.no_reference(ref)
MISTAKES = G.layer_norm_mistakes()
g = torch.Generator().manual_seed(0)
# [1, 2, 3, 4] has mean 2.5 and (biased) variance 1.25; with weight 1 and bias 0 the result
# has mean 0 and variance 1 (up to eps).
hand = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
ones, zeros = torch.ones(4), torch.zeros(4)
# B=2, T=3, D=8 with a learned scale and shift.
x = torch.randn(2, 3, 8, generator=g) * 3 + 1
w, b = torch.randn(8, generator=g), torch.randn(8, generator=g)
# Features that hardly vary: here eps matters, and where it is added matters too.
flat = torch.randn(2, 4, generator=g) * 0.05
cases = [
    G.Case(hand, ones, zeros, label="[1, 2, 3, 4]"),
    G.Case(x, w, b, label="(2, 3, 8) with weight and bias"),
    G.Case(flat, ones, zeros, eps=0.01, label="small variance, eps=0.01"),
]
assert G.check_function(layer_norm, ref.layer_norm, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("09/layer_norm")
D = 6
w, b = torch.randn(D, generator=g), torch.randn(D, generator=g)
hidden = [
    G.Case(torch.randn(3, 5, D, generator=g) * 4 - 2, w, b, label="random"),
    G.Case(torch.randn(2, 2, 3, D, generator=g), w, b, label="4-D"),
    G.Case(torch.randn(4, D, generator=g) * 1e-3, w, b, label="tiny variance, default eps"),
    G.Case(torch.randn(3, D, generator=g, dtype=torch.float64), w.double(), b.double(), 1e-3),
]
assert G.check_function(layer_norm, ref.layer_norm, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The position-wise feed-forward network
#
# `linear2(activation(linear1(x)))`, with `linear1 = nn.Linear(d_model, d_ff)` and
# `linear2 = nn.Linear(d_ff, d_model)`. `activation` is `"relu"` or `"gelu"` (the exact erf
# form, `F.gelu`'s default); anything else raises `ValueError`.


# %% solution FeedForward
class FeedForward(nn.Module):
    """Two linear layers with an activation in between, applied to every position."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu") -> None:
        super().__init__()
        ### BEGIN SOLUTION
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        self.activation = F.relu if activation == "relu" else F.gelu
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D)."""
        ### BEGIN SOLUTION
        return self.linear2(self.activation(self.linear1(x)))  # (B, T, d_ff) in between
        ### END SOLUTION


# %% tests test_FeedForward points=2
from course_lib import grading as G
from course_lib import transformer as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.feed_forward_mistakes()
g = torch.Generator().manual_seed(1)
# B=2, T=3, D=4 and a hidden width of 4 * D = 16.
x = torch.randn(2, 3, 4, generator=g)
cases = [G.Case(x, label="(2, 3, 4)"), G.Case(x[:1, :1], label="one token")]
assert G.check_module(
    FeedForward,
    ref.FeedForward,
    {"d_model": 4, "d_ff": 16},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
assert G.check_module(
    FeedForward,
    ref.FeedForward,
    {"d_model": 4, "d_ff": 16, "activation": "relu"},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
assert G.check_raises(
    FeedForward, ValueError, 4, 16, "swish", why="only 'relu' and 'gelu' exist here"
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("09/FeedForward")
hidden = [G.Case(torch.randn(3, 5, 6, generator=g) * 2, label="random")]
assert all(
    G.check_module(
        FeedForward,
        ref.FeedForward,
        {"d_model": 6, "d_ff": 10, "activation": act},
        hidden,
        forbidden=FORBIDDEN,
        mistakes=MISTAKES,
        seed=3,
    )
    for act in ("relu", "gelu")
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The encoder layer
#
# Submodules (the names of `nn.TransformerEncoderLayer`, so that weights can be loaded):
# `self_attn = MultiHeadAttention(d_model, nhead)`, `linear1`, `linear2` (the feed-forward
# network, with `activation` between them), `norm1` and `norm2`
# (`nn.LayerNorm(d_model, eps=layer_norm_eps)`), no dropout. `forward(x, attn_mask)`:
#
# - pre-LN (`norm_first=True`): `x = x + SA(norm1(x))`, then `x = x + FF(norm2(x))`;
# - post-LN (`norm_first=False`): `x = norm1(x + SA(x))`, then `x = norm2(x + FF(x))`,
#
# where `SA(h)` is the self-attention of `h` with `attn_mask` (keep polarity) and `FF` the
# feed-forward network.


# %% solution TransformerEncoderLayer
class TransformerEncoderLayer(nn.Module):
    """Self-attention and feed-forward, each with a residual connection and a LayerNorm."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        norm_first: bool = True,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        self.norm_first = norm_first
        self.activation = F.relu if activation == "relu" else F.gelu
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        ### END SOLUTION

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """(B, T, D) -> (B, T, D); attn_mask (T, T) or (B, 1, T, T), True = may attend."""

        ### BEGIN SOLUTION
        def sa(h: Tensor) -> Tensor:
            return self.self_attn(h, h, h, attn_mask=attn_mask)[0]  # (B, T, D)

        def ff(h: Tensor) -> Tensor:
            return self.linear2(self.activation(self.linear1(h)))  # (B, T, D)

        if self.norm_first:
            x = x + sa(self.norm1(x))
            return x + ff(self.norm2(x))
        x = self.norm1(x + sa(x))
        return self.norm2(x + ff(x))
        ### END SOLUTION


# %% tests test_TransformerEncoderLayer points=2
from course_lib import grading as G
from course_lib import transformer as ref

FORBIDDEN = {
    "torch.nn.TransformerEncoderLayer": "build the block from its parts",
    "torch.nn.MultiheadAttention": "use the MultiHeadAttention of chapter 8",
} | G.no_reference(ref)
MISTAKES = G.encoder_layer_mistakes()
g = torch.Generator().manual_seed(2)
# Pre-LN (the default): B=2 sentences of T=4 tokens, D=8, 2 heads, FFN width 16.
x = torch.randn(2, 4, 8, generator=g)
cases = [G.Case(x, label="pre-LN, no mask"), G.Case(x[:1, :1], label="one token")]
assert G.check_module(
    TransformerEncoderLayer,
    ref.TransformerEncoderLayer,
    {"d_model": 8, "nhead": 2, "dim_feedforward": 16},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("09/TransformerEncoderLayer")
hidden = [G.Case(torch.randn(3, 5, 12, generator=g) * 2, label="random")]
assert G.check_module(
    TransformerEncoderLayer,
    ref.TransformerEncoderLayer,
    {"d_model": 12, "nhead": 3, "dim_feedforward": 20},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=5,
)
### END HIDDEN TESTS

# %% tests test_TransformerEncoderLayer-post_ln points=2
from course_lib import grading as G
from course_lib import transformer as ref

FORBIDDEN = {
    "torch.nn.TransformerEncoderLayer": "build the block from its parts",
    "torch.nn.MultiheadAttention": "use the MultiHeadAttention of chapter 8",
} | G.no_reference(ref)
MISTAKES = G.encoder_layer_mistakes()
g = torch.Generator().manual_seed(3)
# Post-LN, as in the 2017 paper: the output of every sublayer is normalised.
x = torch.randn(2, 4, 8, generator=g)
cases = [G.Case(x, label="post-LN")]
assert G.check_module(
    TransformerEncoderLayer,
    ref.TransformerEncoderLayer,
    {"d_model": 8, "nhead": 2, "dim_feedforward": 16, "norm_first": False},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("09/TransformerEncoderLayer-post_ln")
hidden = [G.Case(torch.randn(2, 6, 12, generator=g) * 2, label="random")]
assert G.check_module(
    TransformerEncoderLayer,
    ref.TransformerEncoderLayer,
    {"d_model": 12, "nhead": 4, "dim_feedforward": 24, "norm_first": False},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=6,
)
### END HIDDEN TESTS

# %% tests test_TransformerEncoderLayer-options points=2
from course_lib import grading as G
from course_lib import transformer as ref

FORBIDDEN = {
    "torch.nn.TransformerEncoderLayer": "build the block from its parts",
    "torch.nn.MultiheadAttention": "use the MultiHeadAttention of chapter 8",
} | G.no_reference(ref)
MISTAKES = G.encoder_layer_mistakes()
g = torch.Generator().manual_seed(4)
x = torch.randn(2, 4, 8, generator=g)
causal = torch.ones(4, 4, dtype=torch.bool).tril()  # (T, T)
pad = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]).bool()[:, None, None, :]  # (B, 1, 1, S)
cases = [G.Case(x, causal, label="causal mask"), G.Case(x, pad, label="padding mask")]
assert G.check_module(
    TransformerEncoderLayer,
    ref.TransformerEncoderLayer,
    {"d_model": 8, "nhead": 2, "dim_feedforward": 16},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
# Post-LN with GELU instead of ReLU, and a large layer_norm_eps that changes every LayerNorm.
assert G.check_module(
    TransformerEncoderLayer,
    ref.TransformerEncoderLayer,
    {
        "d_model": 8,
        "nhead": 2,
        "dim_feedforward": 16,
        "norm_first": False,
        "activation": "gelu",
        "layer_norm_eps": 0.5,
    },
    cases[:1],
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("09/TransformerEncoderLayer-options")
x = torch.randn(2, 5, 8, generator=g)
hidden = [G.Case(x, torch.rand(2, 1, 5, 5, generator=g) > 0.3, label="random mask")]
assert G.check_module(
    TransformerEncoderLayer,
    ref.TransformerEncoderLayer,
    {
        "d_model": 8,
        "nhead": 4,
        "dim_feedforward": 8,
        "norm_first": False,
        "activation": "gelu",
        "layer_norm_eps": 0.1,
    },
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=7,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Counting parameters
#
# The number of scalars a model learns. Use `module.parameters()`: it lists a parameter that
# two submodules share (tied weights) once, and it does not contain buffers such as
# BatchNorm's running statistics. With `trainable_only=True` count only parameters with
# `requires_grad=True`. Return a Python `int`.


# %% solution count_parameters
def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters. Example: nn.Linear(4, 3) has 4 * 3 + 3 = 15."""
    ### BEGIN SOLUTION
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
    ### END SOLUTION


# %% tests test_count_parameters points=3
from course_lib import grading as G
from course_lib import transformer as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.count_parameters_mistakes()
# A BatchNorm layer has 2 * 4 parameters and 3 buffers that do not count.
with_buffers = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
# The first layer is frozen: it counts only when trainable_only=False.
frozen = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
frozen[0].requires_grad_(False)
# The output layer reuses the embedding matrix (weight tying): that matrix counts once.
tied = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
tied[1].weight = tied[0].weight
cases = [
    G.Case(nn.Linear(4, 3), label="nn.Linear(4, 3)"),
    G.Case(with_buffers, label="with BatchNorm buffers"),
    G.Case(frozen, label="first layer frozen"),
    G.Case(frozen, trainable_only=False, label="first layer frozen, trainable_only=False"),
    G.Case(tied, label="tied weights"),
]
assert G.check_function(
    count_parameters,
    ref.count_parameters,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the count",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("09/count_parameters")
widths = [rng.randint(2, 9) for _ in range(4)]
mlp = nn.Sequential(*(nn.Linear(a, b, bias=rng.random() < 0.5) for a, b in zip(widths, widths[1:])))
mlp[rng.randrange(len(mlp))].requires_grad_(False)
layer = ref.TransformerEncoderLayer(8, 2, 16)
layer.norm1.requires_grad_(False)
hidden = [
    G.Case(mlp, label="random MLP, one layer frozen"),
    G.Case(mlp, False, label="random MLP, trainable_only=False"),
    G.Case(layer, label="an encoder layer with norm1 frozen"),
    G.Case(nn.Sequential(nn.BatchNorm1d(5), nn.LayerNorm(5)), False, label="norms"),
]
assert G.check_function(
    count_parameters,
    ref.count_parameters,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the count",
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: pre-LN and post-LN in a deep stack
#
# *Your* `TransformerEncoderLayer`, stacked 12 deep with random weights. The plot follows the
# size (standard deviation) of the residual stream after each layer. In pre-LN the stream is
# `x + …` all the way, so it grows and nothing rescales it; in post-LN every layer ends with a
# LayerNorm, so it stays at 1. The title counts the parameters with *your* `count_parameters`.
# Not graded.

# %% demo
import matplotlib.pyplot as plt

try:
    TransformerEncoderLayer(8, 2, 16)(torch.zeros(1, 2, 8))
except NotImplementedError:
    print("Implement TransformerEncoderLayer above, run its cell, then run this cell again.")
else:
    torch.manual_seed(0)
    demo_x = torch.randn(2, 10, 32)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for norm_first in (True, False):
        stack = [TransformerEncoderLayer(32, 4, 128, norm_first=norm_first) for _ in range(12)]
        h, sizes = demo_x, [demo_x.std().item()]
        with torch.no_grad():
            for block in stack:
                h = block(h)
                sizes.append(h.std().item())
        ax.plot(sizes, marker="o", label="pre-LN" if norm_first else "post-LN")
    try:
        n = count_parameters(stack[0])
        ax.set_title(f"one layer has {n:,} parameters")
    except NotImplementedError:
        ax.set_title("implement count_parameters to see the size of one layer")
    ax.set_xlabel("layer")
    ax.set_ylabel("std of the residual stream")
    ax.legend()
    fig.tight_layout()
    plt.show()

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

# %% written written_residual points=2
# **Question (2 points).** Why does every sub-layer of the block sit inside a residual connection `x + sublayer(x)`? Explain what it does for a deep stack, and where pre-LN puts the normalization.
# RUBRIC:
# - 1 point: the residual path lets the signal and the gradient pass through unchanged (the identity has derivative 1), so deep stacks train; each sub-layer only learns a correction.
# - 1 point: pre-LN normalizes the input of each sub-layer, x + sublayer(LN(x)), leaving the residual stream itself un-normalized, which keeps gradients stable without warm-up tricks.

# %% [markdown]
# ## Recap
#
# - Layer norm: per token, over the last axis, biased variance, eps inside the square root.
# - The feed-forward network treats every position on its own: linear, activation, linear.
# - Pre-LN `x + Sublayer(LayerNorm(x))` keeps the residual path clean; post-LN
#   `LayerNorm(x + Sublayer(x))` normalises after adding.
# - `module.parameters()` counts tied weights once and leaves buffers out.
#
# More in [chapter 9](../../book/09_transformer_block.md); next,
# [chapter 10, pretraining](../../book/10_pretraining.md).

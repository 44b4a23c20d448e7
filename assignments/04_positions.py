# %% [markdown]
# # 04 · Position information
#
# **Recap.** Self-attention compares every token with every other and never looks at where
# they are: permute the input and the output is permuted the same way, so "dog chases cat"
# (狗追猫) and "cat chases dog" (猫追狗) get the same set of vectors. Positions have to be added
# to the token embeddings: a learned table with one row per position (BERT, GPT-2), the fixed
# sinusoidal encoding of "Attention Is All You Need" (sin on even, cos on odd dimensions), or
# relative distances clipped into buckets. Read
# [chapter 4, *Position information*](../../book/04_positions.md) (published as
# `04_positions.html`) first.
#
# Three exercises, 11 points. Run a solution cell, then the test cell below it; from a terminal,
# `course check exercises/04_positions/04_positions.ipynb` runs all the visible tests, and so does
# the `G.check_all()` cell near the end. Do not use the course's reference package.

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
import math  # noqa: F401 (for your solutions)

import torch
from torch import Tensor, nn

# %% [markdown]
# ## 1. The sinusoidal encoding
#
# `PE[pos, 2i] = sin(pos / base^(2i/D))` and `PE[pos, 2i+1] = cos(pos / base^(2i/D))`: the
# columns come in (sin, cos) pairs that share one frequency, interleaved as in the paper.
# Return `(max_len, d_model)` float32 (computing the angles in float64 keeps large positions
# accurate). An odd `d_model` cannot be split into pairs: raise a `ValueError` that says so.


# %% solution sinusoidal_positional_encoding
def sinusoidal_positional_encoding(max_len: int, d_model: int, base: float = 10000.0) -> Tensor:
    """(max_len, d_model) float32: sin in even columns, cos in odd ones."""
    ### BEGIN SOLUTION
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even (sin/cos pairs), got {d_model}")
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (D/2,)
    angle = pos / base ** (two_i / d_model)  # (T, D/2)
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.to(torch.float32)
    ### END SOLUTION


# %% tests test_sinusoidal_positional_encoding points=4
from course_lib import grading as G
from course_lib import positions as ref

FORBIDDEN = G.no_reference(ref)


def _angles(max_len, d_model, base, exponent):
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    return pos / base ** (exponent(d_model) / d_model)


def _pe(
    max_len,
    d_model,
    base=10000.0,
    first=torch.sin,
    second=torch.cos,
    concat=False,
    exponent=lambda d: torch.arange(0, d, 2, dtype=torch.float64),
):
    angle = _angles(max_len, d_model, base, exponent)
    if concat:
        return torch.cat([first(angle), second(angle)], dim=1).float()
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = first(angle), second(angle)
    return pe.float()


MISTAKES = [
    G.Mistake(
        "sin and cos are swapped: sin goes in the even columns, cos in the odd ones",
        lambda max_len, d_model, base=10000.0: _pe(max_len, d_model, base, torch.cos, torch.sin),
    ),
    G.Mistake(
        "the sines and cosines are concatenated ([sin | cos]); interleave them: "
        "column 2i is sin, column 2i+1 is cos",
        lambda max_len, d_model, base=10000.0: _pe(max_len, d_model, base, concat=True),
    ),
    G.Mistake(
        "the exponent uses i, not 2i: the pair (2i, 2i+1) has frequency base^(-2i/D)",
        lambda max_len, d_model, base=10000.0: _pe(
            max_len, d_model, base, exponent=lambda d: torch.arange(d // 2, dtype=torch.float64)
        ),
    ),
]
# Position 0 is [sin 0, cos 0, ...] = [0, 1, 0, 1]; with d_model=4 the second pair turns
# 100 times slower than the first (base^(2/4) = 100).
cases = [
    G.Case(3, 4, label="max_len=3, d_model=4"),
    G.Case(50, 16, label="50 positions, 16 dimensions"),
    G.Case(6, 8, base=100.0, label="base=100"),
]
assert G.check_function(
    sinusoidal_positional_encoding,
    ref.sinusoidal_positional_encoding,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    atol=1e-5,
)
assert G.check_raises(sinusoidal_positional_encoding, ValueError, 10, 5, why="d_model=5 is odd")
### BEGIN HIDDEN TESTS
hidden = [
    G.Case(1, 2, label="one position"),
    G.Case(2048, 64, label="long sequence"),
    G.Case(0, 6, label="no positions"),
    G.Case(17, 34, base=500.0),
]
assert G.check_function(
    sinusoidal_positional_encoding,
    ref.sinusoidal_positional_encoding,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    atol=1e-5,
)
assert G.check_raises(sinusoidal_positional_encoding, ValueError, 3, 1, why="d_model=1 is odd")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Learned absolute positions
#
# A table with one learned row per position, as in BERT and GPT-2. The submodule must be called
# `embedding` (an `nn.Embedding(max_len, d_model)`); `forward` adds row `t` to every token at
# position `t` of a `(B, T, D)` batch. A sequence longer than `max_len` has no row to look up:
# raise a `ValueError` that says how to fix it.


# %% solution LearnedPositionalEmbedding
class LearnedPositionalEmbedding(nn.Module):
    """x + a learned vector per position; positions 0 .. max_len - 1."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, d_model)
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D)."""
        ### BEGIN SOLUTION
        T = x.size(1)
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.max_len}")
        return x + self.embedding(torch.arange(T))  # (B, T, D) + (T, D)
        ### END SOLUTION


# %% tests test_LearnedPositionalEmbedding points=3
from course_lib import grading as G
from course_lib import positions as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "the positions replace the tokens; add them to x",
        lambda m, x: m.embedding.weight[: x.size(1)].expand_as(x),
    ),
    G.Mistake(
        "the position comes from the batch axis; positions run along axis 1 (T)",
        lambda m, x: x + m.embedding.weight[: x.size(0)].unsqueeze(1),
    ),
]
g = torch.Generator().manual_seed(0)
cases = [
    G.Case(torch.zeros(1, 3, 4), label="zeros in: the output is the first 3 rows of the table"),
    G.Case(torch.randn(2, 5, 4, generator=g), label="B=2, T=5"),
    G.Case(torch.randn(3, 2, 4, generator=g), label="B=3, T=2 (fewer positions than the table)"),
]
assert G.check_module(
    LearnedPositionalEmbedding,
    ref.LearnedPositionalEmbedding,
    {"max_len": 6, "d_model": 4},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
module = G.call(LearnedPositionalEmbedding, 6, 4, forbidden=FORBIDDEN)
assert G.check_raises(
    module,
    ValueError,
    torch.zeros(1, 7, 4),
    why="T=7 > max_len=6",
    name="LearnedPositionalEmbedding(6, 4)",
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("04/learned")
hidden = [
    G.Case(torch.randn(4, 10, 8, generator=g)),
    G.Case(torch.randn(1, 1, 8, generator=g), label="T=1"),
]
assert G.check_module(
    LearnedPositionalEmbedding,
    ref.LearnedPositionalEmbedding,
    {"max_len": 10, "d_model": 8},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Relative positions
#
# What often matters is the offset `j − i` from query `i` to key `j`, clipped so that far-away
# tokens share one bucket, and shifted by `max_distance` so that every entry can index a table
# of `2·max_distance + 1` rows: `[i, j] = clip(j − i, −max_distance, max_distance) +
# max_distance`, a long `(T, T)` tensor. `relative_positions(3, 1)` is
# `[[1, 2, 2], [0, 1, 2], [0, 0, 1]]`.


# %% solution relative_positions
def relative_positions(T: int, max_distance: int) -> Tensor:
    """(T, T) long: clip(j - i, -max_distance, max_distance) + max_distance."""
    ### BEGIN SOLUTION
    pos = torch.arange(T)
    offset = pos.unsqueeze(0) - pos.unsqueeze(1)  # [i, j] = j - i
    return offset.clamp(-max_distance, max_distance) + max_distance
    ### END SOLUTION


# %% tests test_relative_positions points=4
from course_lib import grading as G
from course_lib import positions as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "the offset is i - j; entry [i, j] is the offset from query i to key j, j - i",
        lambda T, max_distance: ref.relative_positions(T, max_distance).T,
    ),
    G.Mistake(
        "the offsets are not shifted by max_distance, so some are negative and cannot index a table",
        lambda T, max_distance: ref.relative_positions(T, max_distance) - max_distance,
    ),
    G.Mistake(
        "the offsets are not clipped to ±max_distance",
        lambda T, max_distance: (
            torch.arange(T).unsqueeze(0) - torch.arange(T).unsqueeze(1) + max_distance
        ),
    ),
]
cases = [
    G.Case(3, 1, label="the docstring example"),
    G.Case(5, 2, label="T=5, max_distance=2"),
    G.Case(4, 10, label="nothing to clip"),
]
assert G.check_function(
    relative_positions, ref.relative_positions, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
hidden = [
    G.Case(1, 3, label="T=1"),
    G.Case(12, 3),
    G.Case(6, 0, label="max_distance=0"),
    G.Case(0, 2, label="T=0"),
]
assert G.check_function(
    relative_positions, ref.relative_positions, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: the sinusoidal pattern
#
# Left: *your* encoding for 64 positions and 32 dimensions: fast waves in the first columns,
# slow ones further right. Right: the dot product of one position's encoding with every other,
# which depends only on their distance. Move the slider to pick the position. Not graded.

# %% demo
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.interactive import widget_slider


def draw(position: int) -> plt.Figure:
    pe = sinusoidal_positional_encoding(64, 32)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    left.imshow(pe.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    left.axhline(position, color="k", lw=0.8)
    left.set_xlabel("dimension")
    left.set_ylabel("position")
    right.plot((pe @ pe[position]).numpy())
    right.axvline(position, color="k", lw=0.8)
    right.set_xlabel("position")
    right.set_title(f"PE[{position}] · PE[t]")
    fig.tight_layout()
    return fig


try:
    sinusoidal_positional_encoding(2, 2)
except NotImplementedError:
    print("Implement sinusoidal_positional_encoding above, then run this cell again.")
else:
    display(widget_slider(draw, [0, 8, 16, 32, 48, 63], label="position"))

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

# %% written written_why_positions points=2
# **Question (2 points).** Without positional information, what does self-attention compute for the sentences "dog bites man" and "man bites dog"? Answer in terms of the outputs for each token.
# RUBRIC:
# - 1 point: attention is permutation-equivariant: each token's output is a weighted average that does not depend on the order of the other tokens.
# - 1 point: so the word "dog" gets the same output vector in both sentences (the outputs are only permuted); the model cannot tell who bites whom.

# %% written written_sinusoid_frequencies points=1
# **Question (1 point).** The sinusoidal encoding uses many frequencies, from fast to very slow. Why is a single sine of one frequency not enough?
# RUBRIC:
# - 1 point: one frequency repeats (period 2π/ω), so far-apart positions would get the same code; mixing geometrically spaced frequencies gives every position up to a long length a distinct code while neighbouring positions stay similar.

# %% [markdown]
# ## Recap
#
# - Without positions, attention cannot tell "狗追猫" from "猫追狗".
# - The sinusoidal encoding pairs a sine and a cosine per frequency, so moving by a fixed
#   offset is a rotation of each pair; a learned table cannot go past `max_len`.
# - Relative positions store the clipped offset `j − i`, shifted to be a valid index.
#
# More in [chapter 4](../../book/04_positions.md).

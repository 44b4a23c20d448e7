# ruff: noqa: E402
# %% [markdown]
# # 07 · Masks: causal and padding
#
# **Recap.** A mask decides which keys each query may look at. This course uses *keep*
# polarity everywhere: `True` means "may attend", as in `F.scaled_dot_product_attention` and
# Hugging Face's `attention_mask` (1 = real token); `nn.MultiheadAttention` uses the opposite.
# A decoder trained with teacher forcing sees the whole target sentence at once, so a *causal*
# mask (lower triangle) stops position i from peeking at positions after i. A *padding* mask
# hides the `[PAD]` keys of short sentences in a batch. Masks combine by broadcasting and a
# logical AND; before the softmax a blocked score becomes −∞, and a query with nothing to see
# gives zeros, not NaN. Read [chapter 7, *Masks: causal and padding*](../../book/07_masking.md)
# (published as `07_masking.html`) first.
#
# Five functions, 10 points. Run a solution cell, then the test cell below it; from a terminal,
# `course check exercises/07_masking/07_masking.ipynb` runs all the visible tests, and so does the
# `G.check_all()` cell near the end.
#
# Rules: build the masks from tensor operations (`ones`, `tril`, comparisons, indexing,
# `&`, `masked_fill`, `cat`); the course's reference package is not allowed.

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
# ## 1. The causal mask
#
# Query i may see keys 0..i: `True` on and below the diagonal. When the number of keys S differs
# from the number of queries T the mask is *upper-left aligned*, like `is_causal=True` in
# `F.scaled_dot_product_attention`: row i is still `True` exactly in columns 0..i.


# %% solution causal_mask
def causal_mask(T: int, S: int | None = None, device=None) -> Tensor:
    """Bool (T, S) keep mask, True on and below the diagonal; S defaults to T.

    Example: causal_mask(3) -> [[True, False, False], [True, True, False], [True, True, True]].
    """
    ### BEGIN SOLUTION
    S = T if S is None else S
    return torch.ones(T, S, dtype=torch.bool, device=device).tril()  # (T, S)
    ### END SOLUTION


# %% tests test_causal_mask points=2
from course_lib import grading as G
from course_lib import masking as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.causal_mask_mistakes()
# T = 3: row i (query i) is True in columns 0..i. A single token sees only itself.
# T=2 queries, S=4 keys: still query 0 sees key 0, query 1 keys 0 and 1 (upper-left aligned).
cases = [
    G.Case(3, label="T = 3"),
    G.Case(1, label="one token"),
    G.Case(2, 4, label="T=2 < S=4"),
    G.Case(4, 2, label="T=4 > S=2"),
    G.Case(3, device="cpu", label="device='cpu'"),
]
assert G.check_function(
    causal_mask, ref.causal_mask, cases, forbidden=FORBIDDEN, mistakes=MISTAKES, what="the mask"
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("07/causal_mask")
hidden = [G.Case(rng.randint(2, 12), label="square")]
hidden += [G.Case(rng.randint(1, 9), rng.randint(1, 9), label="T, S random") for _ in range(4)]
hidden.append(G.Case(5, 5, torch.device("cpu"), label="S given, device as torch.device"))
assert G.check_function(
    causal_mask, ref.causal_mask, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES, what="the mask"
)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The padding mask
#
# A tokenizer pads a batch to rectangular shape and returns `attention_mask` `(B, S)`: 1 for
# a real token, 0 for padding. Turn it into a bool key mask of shape `(B, 1, 1, S)`: the two
# singleton axes broadcast over the heads and the queries of `(B, H, T, S)` scores. Anything
# that is not 2-D raises `ValueError` with a message that says what shape is expected.


# %% solution padding_mask
def padding_mask(attention_mask: Tensor) -> Tensor:
    """(B, S) 0/1 (or bool), 1 = real token -> bool (B, 1, 1, S), True = may attend."""
    ### BEGIN SOLUTION
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must be (B, S), got shape {tuple(attention_mask.shape)}; "
            "add a batch axis with attention_mask[None]"
        )
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
    ### END SOLUTION


# %% tests test_padding_mask points=2
from course_lib import grading as G
from course_lib import masking as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.padding_mask_mistakes()
# Two sentences of 4 slots: the second has 2 real tokens, then 2 padding tokens.
am = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
cases = [
    G.Case(am, label="two sentences, one padded"),
    G.Case(torch.tensor([[1, 0, 0]]), label="one sentence of one token"),
    G.Case(am.bool(), label="a bool attention_mask"),
]
assert G.check_function(
    padding_mask, ref.padding_mask, cases, forbidden=FORBIDDEN, mistakes=MISTAKES, what="the mask"
)
# One sentence without a batch axis is ambiguous: refuse it with a helpful message.
assert G.check_raises(
    padding_mask, ValueError, torch.tensor([1, 1, 0]), why="attention_mask must be (B, S)"
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("07/padding_mask")
lengths = torch.randint(1, 8, (5,), generator=g)
random_am = (torch.arange(7)[None, :] < lengths[:, None]).long()  # right padding
hidden = [
    G.Case(random_am, label="random lengths"),
    G.Case(random_am.int(), label="int32"),
    G.Case(torch.ones(1, 1, dtype=torch.long), label="1 x 1"),
]
assert G.check_function(
    padding_mask, ref.padding_mask, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES, what="the mask"
)
assert G.check_raises(padding_mask, ValueError, random_am[None], why="a 3-D mask is not (B, S)")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Combining masks
#
# A key is visible only if *every* mask allows it: a logical AND, with broadcasting, so that
# a causal `(T, T)` and a padding `(B, 1, 1, T)` mask give `(B, 1, T, T)`. `None` entries are
# skipped, so optional masks can be passed straight through; with no mask at all raise
# `ValueError`. Do not modify the masks you are given.


# %% solution combine_masks
def combine_masks(*masks: Tensor) -> Tensor:
    """Logical AND of bool keep masks, with broadcasting; None entries are ignored."""
    ### BEGIN SOLUTION
    present = [m for m in masks if m is not None]
    if not present:
        raise ValueError("combine_masks got no mask; pass attn_mask=None to attention instead")
    out = present[0]
    for m in present[1:]:
        out = out & m  # broadcasting AND, a new tensor
    return out
    ### END SOLUTION


# %% tests test_combine_masks points=2
from course_lib import grading as G
from course_lib import masking as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.combine_masks_mistakes()
causal = torch.ones(4, 4, dtype=torch.bool).tril()  # (T, T)
pad = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]).bool()[:, None, None, :]  # (B, 1, 1, S)
g = torch.Generator().manual_seed(0)
a, b = torch.rand(2, 3, 3, generator=g) > 0.3, torch.rand(2, 3, 3, generator=g) > 0.3
cases = [
    G.Case(a, b, label="two masks of the same shape"),
    G.Case(causal, pad, label="causal (4, 4) and padding (2, 1, 1, 4)"),
    G.Case(causal, None, pad, label="a None in between"),
    G.Case(causal, label="a single mask"),
]
assert G.check_function(
    combine_masks, ref.combine_masks, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
assert G.check_raises(combine_masks, ValueError, None, why="there is no mask to combine")
### BEGIN HIDDEN TESTS
g = G.hidden_generator("07/combine_masks")
m1 = torch.rand(3, 1, 5, 5, generator=g) > 0.2
m2 = torch.rand(5, 5, generator=g) > 0.2
m3 = torch.rand(3, 1, 1, 5, generator=g) > 0.2
hidden = [
    G.Case(m1, m2, m3, label="three masks"),
    G.Case(None, m2, None, m3, None, label="several None"),
    G.Case(m3, m2, m1, label="another order"),
]
assert G.check_function(
    combine_masks, ref.combine_masks, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The additive form
#
# Some code adds a float mask to the scores instead of using a bool one: 0.0 where the key is
# kept, −∞ where it is blocked, so that `exp(−∞) = 0` gives it exactly zero weight. Return a
# tensor of the requested floating-point `dtype`.


# %% solution to_additive_mask
def to_additive_mask(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Bool keep mask (any shape) -> float mask of `dtype`: 0.0 where kept, -inf where blocked."""
    ### BEGIN SOLUTION
    zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return zeros.masked_fill(~mask, float("-inf"))
    ### END SOLUTION


# %% tests test_to_additive_mask points=2
from course_lib import grading as G
from course_lib import masking as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.additive_mask_mistakes()
# The 3 x 3 causal mask: 0.0 on and below the diagonal, -inf above it.
causal = torch.ones(3, 3, dtype=torch.bool).tril()
pad = torch.tensor([[True, True, False]])[:, None, None, :]  # (1, 1, 1, 3)
cases = [
    G.Case(causal, label="causal 3 x 3"),
    G.Case(pad, label="padding (1, 1, 1, 3)"),
    G.Case(causal, torch.float64, label="dtype=float64"),
]
assert G.check_function(
    to_additive_mask, ref.to_additive_mask, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("07/to_additive_mask")
random_mask = torch.rand(2, 3, 4, 5, generator=g) > 0.5
hidden = [
    G.Case(random_mask, label="random 4-D"),
    G.Case(random_mask[0, 0], dtype=torch.float16, label="float16"),
    G.Case(torch.zeros(2, 2, dtype=torch.bool), label="everything blocked"),
    G.Case(torch.ones(4, dtype=torch.bool), torch.bfloat16, label="nothing blocked, bfloat16"),
]
assert G.check_function(
    to_additive_mask, ref.to_additive_mask, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Shifting the targets right (teacher forcing)
#
# A decoder is trained to predict `labels[:, t]` from the tokens before it. Its input is
# therefore the labels moved one step right, with a start token in front: the input at
# position t is `labels[:, t - 1]`, and the last label is never an input. Return a new tensor
# of the same shape and dtype; leave `labels` untouched.


# %% solution shift_right
def shift_right(labels: Tensor, start_token_id: int) -> Tensor:
    """(B, T) target ids -> (B, T) decoder inputs. Example: [[5, 6, 7]], 1 -> [[1, 5, 6]]."""
    ### BEGIN SOLUTION
    start = torch.full((labels.size(0), 1), start_token_id, dtype=labels.dtype)  # (B, 1)
    return torch.cat([start, labels[:, :-1]], dim=1)  # (B, T)
    ### END SOLUTION


# %% tests test_shift_right points=2
from course_lib import grading as G
from course_lib import masking as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.shift_right_mistakes()
# "Je t' aime" as ids [5, 6, 7] with start token 1: the decoder reads [1, 5, 6].
cases = [
    G.Case(torch.tensor([[5, 6, 7]]), 1, label="the example"),
    G.Case(torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]]), 0, label="a batch of 2"),
    G.Case(torch.tensor([[9]]), 2, label="one token"),
]
assert G.check_function(shift_right, ref.shift_right, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("07/shift_right")
hidden = [
    G.Case(torch.randint(3, 100, (4, 9), generator=g), 2, label="random"),
    G.Case(torch.randint(3, 100, (2, 5), generator=g).int(), 1, label="int32"),
]
assert G.check_function(
    shift_right, ref.shift_right, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: what each query may see
#
# *Your* `causal_mask`, `padding_mask` and `combine_masks` on a batch of two sentences, the
# second padded. White = may attend. The slider changes how many real tokens the second
# sentence has. Not graded.

# %% demo
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.interactive import widget_slider

words = ["the", "cat", "sat", "down", "[PAD]", "[PAD]"]


def draw(n_real: int) -> plt.Figure:
    am = torch.tensor([[1] * 6, [1] * n_real + [0] * (6 - n_real)])
    mask = combine_masks(causal_mask(6), padding_mask(am))  # (2, 1, 6, 6)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
    for b, ax in enumerate(axes):
        ax.imshow(mask[b, 0].float().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks(range(6), words if b else words[:4] + ["on", "it"], rotation=45)
        ax.set_yticks(range(6), words if b else words[:4] + ["on", "it"])
        ax.set_xlabel("key")
        ax.set_title(f"sentence {b}")
    axes[0].set_ylabel("query")
    fig.tight_layout()
    return fig


try:
    combine_masks(causal_mask(2), padding_mask(torch.ones(1, 2)))
except NotImplementedError:
    print("Implement the three mask functions above and run their cells, then run this one.")
else:
    display(widget_slider(draw, [1, 2, 3, 4, 5, 6], label="real tokens", initial=3))

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

# %% written written_causal_training points=2
# **Question (2 points).** Teacher forcing feeds the whole shifted target sentence to the decoder at once. Why is the causal mask then necessary, and what would a model trained without it do at generation time?
# RUBRIC:
# - 1 point: without the mask, position i could attend to position i+1, which holds the very token it must predict; training would learn to copy it (the loss would be low for the wrong reason).
# - 1 point: at generation time the future tokens do not exist yet, so the model that relied on them fails (produces poor or garbage text).

# %% [markdown]
# ## Recap
#
# - Keep polarity: `True` (or 1) = may attend; `nn.MultiheadAttention` means the opposite.
# - The causal mask is the lower triangle, upper-left aligned when T ≠ S.
# - A padding mask `(B, 1, 1, S)` broadcasts over heads and queries; masks combine with AND.
# - The additive form is 0 / −∞; a finite "large negative" number is not the same thing.
# - Teacher forcing feeds the decoder the labels shifted one step right, behind a start token.
#
# More in [chapter 7](../../book/07_masking.md); next,
# [chapter 8, multi-head attention](../../book/08_multi_head.md).

# ruff: noqa: E402
# %% [markdown]
# # 08 · Multi-head attention
#
# **Recap.** One softmax puts each query's weight in one place. Multi-head attention cuts the
# model width D into H heads of Dh = D / H features; every head attends on its own slice, so it
# can look somewhere else, and the total cost stays about that of one wide head. The shapes
# tell the story: `(B, T, D)` → split → `(B, H, T, Dh)` → attend per head → merge →
# `(B, T, D)` → `out_proj` (W_O mixes the heads and projects back to D). Read
# [chapter 8, *Multi-head attention*](../../book/08_multi_head.md) (published as
# `08_multi_head.html`) first.
#
# Four exercises, 12 points. Run a solution cell, then the test cells below it; from a terminal,
# `course check exercises/08_multi_head/08_multi_head.ipynb` runs the visible tests, and so does the
# `G.check_all()` cell near the end.
#
# Chapter 5's `attention_weights` is imported for you. Not allowed inside your code:
# `nn.MultiheadAttention`, `F.scaled_dot_product_attention`, `F.multi_head_attention_forward`
# and the course's reference solution of this chapter.

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
from torch import Tensor, nn

from course_lib.attention import attention_weights  # chapter 5, provided

# %% [markdown]
# ## 1. Splitting into heads
#
# Head h gets the consecutive features `h*Dh … (h+1)*Dh − 1` of every token. Cut the last axis
# into `(H, Dh)`, then move the head axis in front of time, so that each head is a separate
# `(T, Dh)` problem for a batched matmul. D not divisible by H raises `ValueError`.


# %% solution split_heads
def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh) with Dh = D // H."""
    ### BEGIN SOLUTION
    B, T, D = x.shape
    if D % num_heads != 0:
        raise ValueError(f"D={D} is not divisible by num_heads={num_heads}")
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, H, T, Dh)
    ### END SOLUTION


# %% tests test_split_heads points=2
from course_lib import grading as G
from course_lib import multi_head as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.split_heads_mistakes()
# Features numbered 0..7 for each of 3 tokens: with 2 heads, head 0 must hold features 0-3 of
# every token and head 1 features 4-7.
x = torch.arange(24.0).view(1, 3, 8)
g = torch.Generator().manual_seed(0)
cases = [
    G.Case(x, 2, label="numbered features, H=2"),
    G.Case(torch.randn(2, 5, 12, generator=g), 3, label="B=2, T=5, D=12, H=3"),
    G.Case(torch.randn(2, 4, 6, generator=g), 1, label="one head"),
]
assert G.check_function(split_heads, ref.split_heads, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
assert G.check_raises(
    split_heads, ValueError, torch.zeros(1, 2, 8), 3, why="8 features cannot be cut into 3 heads"
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("08/split_heads")
hidden = [
    G.Case(torch.randn(3, 7, 16, generator=g), 4, label="random"),
    G.Case(torch.randn(1, 1, 6, generator=g), 6, label="Dh = 1"),
    G.Case(torch.randn(2, 3, 8, generator=g, dtype=torch.float64), 2, label="float64"),
]
assert G.check_function(
    split_heads, ref.split_heads, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
assert G.check_raises(split_heads, ValueError, torch.zeros(2, 3, 10), 4, why="10 % 4 != 0")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Merging the heads
#
# The inverse: `(B, H, T, Dh)` → `(B, T, D)`, head 0's Dh features first, then head 1's, and so
# on. Careful: after a `transpose` the memory is not contiguous any more.


# %% solution merge_heads
def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, H * Dh), the inverse of split_heads."""
    ### BEGIN SOLUTION
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, D)
    ### END SOLUTION


# %% tests test_merge_heads points=2
from course_lib import grading as G
from course_lib import multi_head as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.merge_heads_mistakes()
# merge_heads(split_heads(x, H)) must give x back: here 2 heads of 4 numbered features.
x = torch.arange(24.0).view(1, 3, 8)
heads = x.view(1, 3, 2, 4).transpose(1, 2)  # (1, 2, 3, 4)
g = torch.Generator().manual_seed(1)
cases = [
    G.Case(heads, label="numbered features, 2 heads"),
    G.Case(torch.randn(2, 3, 5, 4, generator=g), label="B=2, H=3, T=5, Dh=4"),
]
assert G.check_function(merge_heads, ref.merge_heads, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("08/merge_heads")
hidden = [
    G.Case(torch.randn(3, 4, 6, 2, generator=g), label="random"),
    G.Case(torch.randn(1, 8, 1, 1, generator=g), label="Dh = 1, T = 1"),
    G.Case(torch.randn(2, 1, 3, 5, generator=g), label="one head"),
]
assert G.check_function(
    merge_heads, ref.merge_heads, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The multi-head attention module
#
# Four `nn.Linear(embed_dim, embed_dim, bias=bias)` submodules named `q_proj`, `k_proj`,
# `v_proj` and `out_proj` (the tests load known weights by these names). `forward` projects,
# splits into heads, attends (each head scales by 1/√Dh), merges and applies `out_proj`. It
# returns `(out, weights)`: `out` is `(B, T, D)`; `weights` is the per-head `(B, H, T, S)`
# when `need_weights=True`, otherwise `None`. Masks use keep polarity and are `(T, S)` or 4-D,
# broadcastable to `(B, H, T, S)` (a padding mask is `(B, 1, 1, S)`). `embed_dim` not
# divisible by `num_heads` raises `ValueError`.


# %% solution MultiHeadAttention
class MultiHeadAttention(nn.Module):
    """Multi-head attention with keep-polarity masks (True = may attend)."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        ### END SOLUTION

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """query (B, T, D), key and value (B, S, D) -> (out (B, T, D), weights (B, H, T, S) or None)."""
        ### BEGIN SOLUTION
        H = self.num_heads
        q = split_heads(self.q_proj(query), H)  # (B, H, T, Dh)
        k = split_heads(self.k_proj(key), H)  # (B, H, S, Dh)
        v = split_heads(self.v_proj(value), H)  # (B, H, S, Dh)
        weights = attention_weights(q, k, attn_mask, is_causal)  # (B, H, T, S)
        out = self.out_proj(merge_heads(weights @ v))  # (B, T, D)
        return out, (weights if need_weights else None)
        ### END SOLUTION


# %% tests test_MultiHeadAttention points=3
from course_lib import grading as G
from course_lib import multi_head as ref

FORBIDDEN = G.NO_TORCH_ATTENTION | G.no_reference(ref)
MISTAKES = G.mha_mistakes()
g = torch.Generator().manual_seed(2)
# Self-attention: B=2 sentences of T=4 tokens, D=8 split into 2 heads of Dh=4.
x = torch.randn(2, 4, 8, generator=g)
# Cross-attention: T=3 queries against S=5 keys and values.
q, kv = torch.randn(2, 3, 8, generator=g), torch.randn(2, 5, 8, generator=g)
cases = [
    G.Case(x, x, x, label="self-attention"),
    G.Case(x, x, x, need_weights=True, label="need_weights=True: (B, H, T, S)"),
    G.Case(q, kv, kv, need_weights=True, label="T=3 queries, S=5 keys"),
]
assert G.check_module(
    MultiHeadAttention,
    ref.MultiHeadAttention,
    {"embed_dim": 8, "num_heads": 2},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
# Same weights, no biases, 4 heads of width 2.
assert G.check_module(
    MultiHeadAttention,
    ref.MultiHeadAttention,
    {"embed_dim": 8, "num_heads": 4, "bias": False},
    cases[1:],
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
assert G.check_raises(
    MultiHeadAttention, ValueError, 10, 3, why="10 features cannot be split into 3 heads"
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("08/MultiHeadAttention")
x = torch.randn(3, 6, 12, generator=g)
kv = torch.randn(3, 2, 12, generator=g)
hidden = [
    G.Case(x, x, x, need_weights=True, label="random self-attention"),
    G.Case(x, kv, kv, need_weights=True, label="random cross-attention"),
    G.Case(x[:1, :1], x[:1, :1], x[:1, :1], label="one token"),
]
assert all(
    G.check_module(
        MultiHeadAttention,
        ref.MultiHeadAttention,
        {"embed_dim": 12, "num_heads": heads},
        hidden,
        forbidden=FORBIDDEN,
        mistakes=MISTAKES,
        seed=heads,
    )
    for heads in (1, 6)
)
### END HIDDEN TESTS

# %% tests test_MultiHeadAttention-masks points=2
from course_lib import grading as G
from course_lib import multi_head as ref

FORBIDDEN = G.NO_TORCH_ATTENTION | G.no_reference(ref)
MISTAKES = G.mha_mistakes()
g = torch.Generator().manual_seed(3)
x = torch.randn(2, 4, 8, generator=g)
# Sentence 1 has two padding tokens: (B, 1, 1, S), True = a real key.
pad = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()[:, None, None, :]
causal = torch.ones(4, 4, dtype=torch.bool).tril()
cases = [
    G.Case(x, x, x, pad, need_weights=True, label="padding mask (B, 1, 1, S)"),
    G.Case(x, x, x, causal, label="causal mask (T, S)"),
    G.Case(x, x, x, is_causal=True, need_weights=True, label="is_causal=True"),
]
assert G.check_module(
    MultiHeadAttention,
    ref.MultiHeadAttention,
    {"embed_dim": 8, "num_heads": 2},
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
# With is_causal=True, changing tokens after t must not change the outputs up to t.
module = G.call(MultiHeadAttention, 8, 2, forbidden=FORBIDDEN)
assert G.check_no_future_leak(
    lambda query, key, value: module(query, key, value, is_causal=True)[0],
    {"query": x, "key": x.clone(), "value": x.clone()},
    forbidden=FORBIDDEN,
    name="MultiHeadAttention(8, 2)",
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("08/MultiHeadAttention-masks")
x = torch.randn(3, 5, 12, generator=g)
hidden = [
    G.Case(
        x, x, x, torch.rand(3, 1, 5, 5, generator=g) > 0.3, need_weights=True, label="(B, 1, T, S)"
    ),
    G.Case(x, x, x, torch.randn(5, 5, generator=g), need_weights=True, label="additive mask"),
    G.Case(x, x, x, is_causal=True, need_weights=True, label="causal"),
]
assert G.check_module(
    MultiHeadAttention,
    ref.MultiHeadAttention,
    {"embed_dim": 12, "num_heads": 3},
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    seed=4,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Loading the weights of `nn.MultiheadAttention`
#
# PyTorch stacks W_Q, W_K and W_V into one `in_proj_weight` of shape `(3D, D)` (and
# `in_proj_bias` `(3D,)`); `out_proj` is an ordinary linear layer. Copy them into `module` so
# that both compute the same function (give torch's module `batch_first=True` and the
# *inverted* mask). Change `module` in place, leave `torch_mha` untouched, return `None`.


# %% solution load_torch_mha
def load_torch_mha(module: MultiHeadAttention, torch_mha: nn.MultiheadAttention) -> None:
    """Copy in_proj_weight/in_proj_bias and out_proj of ``torch_mha`` into ``module``."""
    ### BEGIN SOLUTION
    projections = (module.q_proj, module.k_proj, module.v_proj)
    with torch.no_grad():
        for proj, w in zip(projections, torch_mha.in_proj_weight.chunk(3, dim=0)):
            proj.weight.copy_(w)  # (D, D)
        if torch_mha.in_proj_bias is not None:
            for proj, b in zip(projections, torch_mha.in_proj_bias.chunk(3)):
                proj.bias.copy_(b)  # (D,)
        module.out_proj.weight.copy_(torch_mha.out_proj.weight)
        if torch_mha.out_proj.bias is not None:
            module.out_proj.bias.copy_(torch_mha.out_proj.bias)
    ### END SOLUTION


# %% tests test_load_torch_mha points=3
from course_lib import grading as G
from course_lib import multi_head as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.load_mha_mistakes()


def build(D: int = 8, H: int = 2, bias: bool = True, seed: int = 0) -> tuple:
    """A target with zero weights and a torch module with random weights (same every call)."""
    g = torch.Generator().manual_seed(seed)
    torch_mha = nn.MultiheadAttention(D, H, bias=bias, batch_first=True)
    target = ref.MultiHeadAttention(D, H, bias=bias)  # the course's module: only loading is tested
    with torch.no_grad():
        for p in torch_mha.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        for p in target.parameters():
            p.zero_()
    return target, torch_mha


assert G.check_loader(
    load_torch_mha,
    ref.load_torch_mha,
    build,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    label="D=8, H=2",
)
assert G.check_loader(
    load_torch_mha,
    ref.load_torch_mha,
    lambda: build(bias=False),
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    label="bias=False",
)
# After loading, both modules give the same output (torch's mask has the opposite polarity).
module, torch_mha = build()
G.call(load_torch_mha, module, torch_mha, forbidden=FORBIDDEN)
x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(5))
keep = torch.ones(5, 5, dtype=torch.bool).tril()
with torch.no_grad():
    ours = module(x, x, x, keep)[0]
    theirs = torch_mha(x, x, x, attn_mask=~keep, need_weights=False)[0]
assert G.check_close(
    ours, theirs, what="the output after loading, compared with torch's", atol=1e-5
)
### BEGIN HIDDEN TESTS
seed = G.grading_seed() % 1000
assert G.check_loader(
    load_torch_mha,
    ref.load_torch_mha,
    lambda: build(12, 3, seed=seed),
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    label="D=12, H=3",
)
assert G.check_loader(
    load_torch_mha,
    ref.load_torch_mha,
    lambda: build(4, 4, False, seed + 1),
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    label="D=4, H=4, bias=False",
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: what does each head look at?
#
# *Your* `MultiHeadAttention` with random weights on "time flies like an arrow", one panel per
# head. With D = 16 fixed, more heads means narrower heads. Random weights make random
# patterns; trained heads specialise (one looks at the previous word, one at the verb ...).
# Not graded.

# %% demo
from IPython.display import display

from course_lib.interactive import widget_slider
from course_lib.viz import plot_head_attention

words = ["time", "flies", "like", "an", "arrow"]
demo_x = torch.randn(1, 5, 16, generator=torch.Generator().manual_seed(0))


def draw(num_heads: int):
    torch.manual_seed(0)
    layer = MultiHeadAttention(16, num_heads)
    with torch.no_grad():
        _, weights = layer(demo_x, demo_x, demo_x, need_weights=True)
    return plot_head_attention(weights[0], words)


try:
    MultiHeadAttention(4, 2)(torch.zeros(1, 1, 4), torch.zeros(1, 1, 4), torch.zeros(1, 1, 4))
except NotImplementedError:
    print("Implement split_heads, merge_heads and MultiHeadAttention, then run this cell again.")
else:
    display(widget_slider(draw, [1, 2, 4, 8], label="heads", initial=2))

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

# %% written written_heads points=2
# **Question (2 points).** Eight heads of width 64 cost about as much as one head of width 512. What do the eight heads give that the single wide head does not?
# RUBRIC:
# - 1 point: each head computes its own softmax over the keys, so different heads can attend to different positions at once (e.g. one follows syntax, another the previous token); one head has a single distribution per query.
# - 1 point: the parameter count and the FLOPs of the projections are the same (D×D per projection); the split only changes how the attention weights are formed, then the output projection mixes the heads.

# %% [markdown]
# ## Recap
#
# - Split the feature axis into `(H, Dh)` and move the heads before time; merge is the inverse.
# - Each head scales its scores by 1/√Dh, the width of *its* queries and keys.
# - `out_proj` (W_O) mixes the concatenated heads; without it the heads never talk.
# - `nn.MultiheadAttention` stacks W_Q, W_K, W_V in `in_proj_weight` and uses the opposite mask
#   polarity.
#
# More in [chapter 8](../../book/08_multi_head.md); next,
# [chapter 9, the transformer block](../../book/09_transformer_block.md).

# ruff: noqa: E402
# %% [markdown]
# # 13 · A GPT from the course's parts: training, sampling and the KV cache
#
# **Recap.** A GPT is a decoder-only language model: token and position embeddings, a stack of
# pre-LN blocks with *causal* multi-head self-attention, a final LayerNorm and an LM head tied to
# the token embedding. Trained on next-token targets, the logits at the **last** position say
# what comes next. Its *perplexity*, `exp(mean cross-entropy)`, reads as "how many tokens the
# model is choosing between". To write text, turn the last row of logits into one token —
# greedy (argmax), or sampled after dividing by a *temperature* and keeping only the top-k
# tokens or the smallest *nucleus* whose probability reaches p — append it and repeat. Re-running
# the whole prefix at every step repeats work: the keys and values of earlier positions do not
# change, so a **KV cache** keeps them and each step feeds only the newest token. Read
# [chapter 13, *A GPT from the course's parts*](../../book/13_gpt.md) (published as
# `13_gpt.html`) first.
#
# Six functions, 17 points from the tests (plus 3 for two written questions that a person grades).
# Run a solution cell, then the test cells below it; from a terminal,
# `course check exercises/13_gpt/13_gpt.ipynb` runs the visible tests, and so does the
# `G.check_all()` cell near the end.
#
# Rules: the course's reference package is not allowed inside your functions, nor
# `F.cross_entropy` / `F.nll_loss` in `perplexity`. Every random number comes from the
# `generator` argument. `sample_next_token` calls your two filters and `generate` calls your
# `sample_next_token`, so their tests run those too: make the earlier tests pass first.

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
import torch.nn.functional as F
from torch import Tensor, nn

# %% [markdown]
# ## 1. Perplexity
#
# The mean cross-entropy `−log softmax(logits)[target]` over the positions whose target is not
# `ignore_index` (they are padding, or have nothing to predict), then `exp` of it. Logits are
# `(B, T, V)`, targets `(B, T)`; return a Python `float`. A model that spreads its probability
# evenly over V tokens has perplexity V; one that is always sure and right has perplexity 1.


# %% solution perplexity
def perplexity(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> float:
    """exp of the mean cross-entropy over the positions whose target is not ignore_index."""
    ### BEGIN SOLUTION
    V = logits.size(-1)
    log_probs = torch.log_softmax(logits.double(), dim=-1).reshape(-1, V)  # (N, V)
    targets = targets.reshape(-1)  # (N,)
    keep = targets != ignore_index  # (N,)
    picked = log_probs[keep].gather(1, targets[keep][:, None]).squeeze(1)  # (kept,)
    return math.exp(-picked.mean().item())
    ### END SOLUTION


# %% tests test_perplexity points=2
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.NO_TORCH_CROSS_ENTROPY | G.no_reference(ref)
MISTAKES = G.perplexity_mistakes()
g = torch.Generator().manual_seed(0)
# All-zero logits spread the probability evenly over 8 tokens: perplexity 8. Then random
# logits with nothing ignored, with three positions ignored (-100), and with ignore_index=0.
logits = torch.randn(2, 4, 6, generator=g) * 2
targets = torch.tensor([[1, 5, -100, -100], [0, 2, 3, -100]])
cases = [
    G.Case(torch.zeros(2, 3, 8), torch.tensor([[0, 3, 7], [1, 1, 2]]), label="uniform over 8"),
    G.Case(logits, torch.randint(0, 6, (2, 4), generator=g), label="nothing ignored"),
    G.Case(logits, targets, label="three positions ignored"),
    G.Case(logits, targets.clamp(min=0), 0, label="ignore_index=0"),
]
assert G.check_function(
    perplexity,
    ref.perplexity,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the perplexity",
    rtol=1e-4,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/perplexity")
B, T, V = (int(n) for n in torch.randint(2, 9, (3,), generator=g))
logits = torch.randn(B, T, V, generator=g) * 3
targets = torch.randint(0, V, (B, T), generator=g)
ignored = targets.masked_fill(torch.rand(B, T, generator=g) < 0.4, -100)
ignored[0, 0] = 1
hidden = [
    G.Case(logits, ignored, label="random, some ignored"),
    G.Case(logits.double(), targets, label="float64"),
    G.Case(logits, targets, 1, label="ignore_index=1"),
    G.Case(logits[:1, :1], targets[:1, :1], label="one position"),
]
assert G.check_function(
    perplexity,
    ref.perplexity,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the perplexity",
    rtol=1e-4,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Top-k filtering
#
# In every row (the last axis is the vocabulary), each logit *smaller than the k-th largest*
# becomes `-inf`. A logit that ties with the k-th largest is kept, as Hugging Face's top-k
# warper does, so a row can keep more than k tokens; `k ≥ V` keeps everything. Return a new
# tensor (leave the input as it is) and raise a `ValueError` that says why for `k < 1`.
# Example: `[1., 3., 2., 3.]` with `k=2` gives `[-inf, 3., -inf, 3.]`.


# %% solution top_k_filter
def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """(..., V) logits -> the same shape, every logit below the k-th largest of its row -inf."""
    ### BEGIN SOLUTION
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k >= logits.size(-1):
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))
    ### END SOLUTION


# %% tests test_top_k_filter points=2
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.top_k_mistakes()
g = torch.Generator().manual_seed(1)
# The second case has ties: in [4, 0, 4, 4] the 2nd largest is 4, so all three 4s stay.
cases = [
    G.Case(torch.tensor([1.0, 3.0, 2.0, 0.5]), 2, label="one row, k=2"),
    G.Case(torch.tensor([[1.0, 3.0, 2.0, 3.0], [4.0, 0.0, 4.0, 4.0]]), 2, label="ties"),
    G.Case(torch.randn(3, 10, generator=g), 4, label="a batch of rows"),
    G.Case(torch.randn(2, 5, generator=g), 5, label="k = V keeps everything"),
    G.Case(torch.randn(2, 5, generator=g), 9, label="k > V keeps everything"),
]
assert G.check_logits_filter(
    top_k_filter, ref.top_k_filter, cases, mistakes=MISTAKES, forbidden=FORBIDDEN
)
assert G.check_raises(top_k_filter, ValueError, torch.zeros(4), 0, why="k=0 would remove all")
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/top_k_filter")
V = int(torch.randint(6, 20, (1,), generator=g))
k = int(torch.randint(1, V, (1,), generator=g))
rounded = (torch.randn(3, 4, V, generator=g) * 2).round()  # many ties
with_inf = torch.randn(2, V, generator=g)
with_inf[:, 0] = float("-inf")
hidden = [
    G.Case(rounded, k, label="(B, T, V) with ties"),
    G.Case(rounded, 1, label="k=1"),
    G.Case(with_inf, V - 1, label="a logit already -inf"),
    G.Case(torch.randn(4, V, generator=g).double(), k, label="float64"),
]
assert G.check_logits_filter(
    top_k_filter, ref.top_k_filter, hidden, mistakes=MISTAKES, forbidden=FORBIDDEN
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Top-p (nucleus) filtering
#
# Keep the smallest set of most probable tokens whose probabilities sum to at least `p`: sort
# the row's probabilities (softmax of the logits) from most to least probable and keep a token
# while the mass of the tokens *before* it is still below `p`. So the token that carries the
# total across `p` is kept, and the most probable token always is. Every other logit becomes
# `-inf`; `p = 1` keeps everything. Return a new tensor; raise a `ValueError` unless
# `0 < p ≤ 1`. Example: probabilities `[0.5, 0.3, 0.15, 0.05]` with `p=0.7` keep the first two.


# %% solution top_p_filter
def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """(..., V) logits -> the same shape, everything outside the nucleus of mass p -inf."""
    ### BEGIN SOLUTION
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if p == 1:
        return logits.clone()
    probs = torch.softmax(logits.float(), dim=-1)  # (..., V)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)  # (..., V)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (..., V)
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False  # the most probable token is always kept
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # vocabulary order
    return logits.masked_fill(drop, float("-inf"))
    ### END SOLUTION


# %% tests test_top_p_filter points=2
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.top_p_mistakes()
g = torch.Generator().manual_seed(2)
# Probabilities 0.5, 0.3, 0.15, 0.05 (as logits): with p=0.7 the first alone is not enough and
# the second carries the total to 0.8; with p=0.3 the most probable alone is enough.
row = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
cases = [
    G.Case(row, 0.7, label="p=0.7"),
    G.Case(row[[3, 0, 2, 1]], 0.7, label="the same tokens in another order"),
    G.Case(row, 0.3, label="p below the top probability"),
    G.Case(torch.randn(4, 12, generator=g) * 2, 0.9, label="a batch of rows"),
    G.Case(torch.randn(2, 6, generator=g), 1.0, label="p=1 keeps everything"),
]
assert G.check_logits_filter(
    top_p_filter, ref.top_p_filter, cases, mistakes=MISTAKES, forbidden=FORBIDDEN
)
assert G.check_raises(top_p_filter, ValueError, row, 0.0, why="p must be in (0, 1]")
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/top_p_filter")
V = int(torch.randint(5, 30, (1,), generator=g))
hidden = [
    G.Case(torch.randn(3, 4, V, generator=g) * 3, 0.8, label="(B, T, V)"),
    G.Case(torch.randn(6, V, generator=g) * 0.5, 0.95, label="flat rows"),
    G.Case(torch.randn(6, V, generator=g) * 6, 0.5, label="peaked rows"),
    G.Case(torch.randn(2, V, generator=g).double(), 0.6, label="float64"),
]
assert G.check_logits_filter(
    top_p_filter, ref.top_p_filter, hidden, mistakes=MISTAKES, forbidden=FORBIDDEN
)
assert G.check_raises(top_p_filter, ValueError, row, 1.5, why="p must be in (0, 1]")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Choosing the next token
#
# `logits` is `(B, V)`, one row per sequence (a model's last position, `logits[:, -1]`). Return
# one token id per row, `(B,)` int64:
#
# - `temperature == 0`: greedy, the argmax of each row (the first index on ties, as
#   `torch.argmax` gives);
# - otherwise divide the logits by the temperature, apply your `top_k_filter` (if `top_k` is
#   not None), then your `top_p_filter` (if `top_p` is not None), turn the result into
#   probabilities with a softmax and draw one token per row with
#   `torch.multinomial(probs, 1, generator=generator)`.
#
# The tests compare your draws with the reference's for a generator seeded alike, so keep
# exactly this order and one `multinomial` call.


# %% solution sample_next_token
def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B, V) logits -> (B,) int64 token ids: greedy at temperature 0, else sampled."""
    ### BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(dim=-1)  # (B,)
    scaled = logits / temperature  # (B, V)
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled, dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
    ### END SOLUTION


# %% tests test_sample_next_token points=1
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
g = torch.Generator().manual_seed(3)
# Greedy: row 0 has a tie between tokens 1 and 2 (the first wins), row 1 between 0 and 2.
logits = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, -1.0, 2.0, 0.5], [-3.0, -2.0, -4.0, -2.5]])
assert G.check_sample_next_token(
    sample_next_token,
    ref.sample_next_token,
    logits,
    temperature=0.0,
    label="greedy with ties",
    forbidden=FORBIDDEN,
)
assert G.check_sample_next_token(
    sample_next_token,
    ref.sample_next_token,
    torch.randn(5, 7, generator=g),
    temperature=0.0,
    label="5 rows of 7 logits",
    forbidden=FORBIDDEN,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/sample_next_token")
B, V = (int(n) for n in torch.randint(2, 40, (2,), generator=g))
assert G.check_sample_next_token(
    sample_next_token,
    ref.sample_next_token,
    (torch.randn(B, V, generator=g) * 2).round(),
    temperature=0.0,
    top_k=3,
    top_p=0.5,
    label="greedy ignores the filters",
    forbidden=FORBIDDEN,
)
### END HIDDEN TESTS

# %% tests test_sample_next_token-sampling points=2
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
g = torch.Generator().manual_seed(4)
# 64 rows of 10 logits, so that a wrong step changes some of the 64 draws. Plain sampling, a
# cold temperature with top-k, a hot one with top-p, then both filters.
logits = torch.randn(64, 10, generator=g) * 2
settings = [(1.0, None, None), (0.7, 5, None), (1.5, None, 0.8), (0.8, 6, 0.7)]
assert all(
    G.check_sample_next_token(
        sample_next_token,
        ref.sample_next_token,
        logits,
        temperature=t,
        top_k=k,
        top_p=p,
        seed=i,
        forbidden=FORBIDDEN,
    )
    for i, (t, k, p) in enumerate(settings)
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/sample_next_token-sampling")
V = int(torch.randint(8, 50, (1,), generator=g))
logits = torch.randn(100, V, generator=g) * 3
seed = int(torch.randint(10_000, (1,), generator=g))
settings = [(0.5, None, 0.9), (1.2, 4, None), (2.0, 7, 0.6), (1.0, V + 5, 1.0)]
assert all(
    G.check_sample_next_token(
        sample_next_token,
        ref.sample_next_token,
        logits,
        temperature=t,
        top_k=k,
        top_p=p,
        seed=seed + i,
        forbidden=FORBIDDEN,
    )
    for i, (t, k, p) in enumerate(settings)
)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Attention with a KV cache
#
# `query`, `key`, `value` are `(B, H, T, Dh)` for the `T` **new** positions; `past_key` and
# `past_value` are `(B, H, T_past, Dh)` for the positions already seen, or `None`. Put the past
# before the new keys and values along the time axis, then attend with the scaled dot product
# and a causal mask. New position `i` is absolute position `T_past + i`: it sees every past key
# and the new keys `0..i`, so the mask is aligned to the bottom-right of the `(T, T_past + T)`
# score matrix. Return `(output, key, value)`: the output `(B, H, T, Dh)` and the concatenated
# keys and values `(B, H, T_past + T, Dh)`, which are the cache for the next step.


# %% solution cached_attention
def cached_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    past_key: Tensor | None = None,
    past_value: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Causal attention of T new positions over the cached past and themselves."""
    ### BEGIN SOLUTION
    if past_key is not None:
        key = torch.cat([past_key, key], dim=2)  # (B, H, S, Dh)
        value = torch.cat([past_value, value], dim=2)  # (B, H, S, Dh)
    T, S = query.size(2), key.size(2)
    keep = torch.arange(S)[None, :] <= torch.arange(T)[:, None] + (S - T)  # (T, S)
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))  # (B, H, T, S)
    weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
    return weights @ value, key, value
    ### END SOLUTION


# %% tests test_cached_attention points=1
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.cached_attention_mistakes()
g = torch.Generator().manual_seed(5)
# No cache yet: plain causal self-attention over the 4 positions, and the keys and values
# come back as they went in.
q, k, v = (torch.randn(2, 2, 4, 8, generator=g) for _ in range(3))
cases = [
    G.Case(q, k, v, label="no cache: causal self-attention"),
    G.Case(q[:, :, :1], k[:, :, :1], v[:, :, :1], label="one token, no cache"),
]
assert G.check_cached_attention(
    cached_attention, ref.cached_attention, cases, mistakes=MISTAKES, forbidden=FORBIDDEN
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/cached_attention")
B, H, T = (int(n) for n in torch.randint(1, 6, (3,), generator=g))
q, k, v = (torch.randn(B, H, T, 4, generator=g) for _ in range(3))
assert G.check_cached_attention(
    cached_attention,
    ref.cached_attention,
    [G.Case(q, k, v, label="random sizes"), G.Case(q * 10, k, v, label="sharp scores")],
    mistakes=MISTAKES,
    forbidden=FORBIDDEN,
)
### END HIDDEN TESTS

# %% tests test_cached_attention-past points=2
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.cached_attention_mistakes()
g = torch.Generator().manual_seed(6)
# 5 cached positions; then 1 new one (a generation step) and 3 new ones at once (a prompt
# added to a conversation): new position i sees the 5 cached keys and new keys 0..i.
past_k, past_v = torch.randn(2, 2, 5, 8, generator=g), torch.randn(2, 2, 5, 8, generator=g)
q, k, v = (torch.randn(2, 2, 3, 8, generator=g) for _ in range(3))
cases = [
    G.Case(q[:, :, :1], k[:, :, :1], v[:, :, :1], past_k, past_v, label="1 new, 5 cached"),
    G.Case(q, k, v, past_key=past_k, past_value=past_v, label="3 new, 5 cached"),
]
assert G.check_cached_attention(
    cached_attention, ref.cached_attention, cases, mistakes=MISTAKES, forbidden=FORBIDDEN
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/cached_attention-past")
B, H, t_past, t_new = (int(n) for n in torch.randint(1, 6, (4,), generator=g))
past_k, past_v = (torch.randn(B, H, t_past, 6, generator=g) for _ in range(2))
q, k, v = (torch.randn(B, H, t_new, 6, generator=g) for _ in range(3))
hidden = [
    G.Case(q, k, v, past_k, past_v, label="random sizes"),
    G.Case(q[:, :, -1:], k[:, :, -1:], v[:, :, -1:], past_k, past_v, label="one new token"),
    G.Case(q, k, v, past_k[:, :, :0], past_v[:, :, :0], label="an empty cache"),
]
assert G.check_cached_attention(
    cached_attention, ref.cached_attention, hidden, mistakes=MISTAKES, forbidden=FORBIDDEN
)
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Generating text
#
# `model` takes `(ids, past)` and returns `(logits, present)` like the chapter's `GPT`: logits
# `(B, T, V)` for the T tokens fed in, and `present`, the cache to pass as `past` next time
# (`past=None` means no cache). It has an attribute `max_len`, the longest context it can read.
# Extend `prompt` `(B, T0)` by `max_new_tokens` tokens, one per step: take the logits of the
# **last** position, choose a token with your `sample_next_token`, append it.
#
# - With `use_cache=True`, the first step runs the whole prompt; after that, feed only the newest
#   token `ids[:, -1:]` together with the cache the model returned.
# - With `use_cache=False`, run the whole sequence with `past=None` every step.
# - The model cannot read more than `max_len` tokens: when the sequence is longer, feed its last
#   `max_len` tokens, without a cache (the cached positions would shift).
#
# With the same generator both ways give the same tokens. Return `(B, T0 + max_new_tokens)`
# int64 and leave `prompt` as it is; no gradients are needed (`torch.no_grad()`).


# %% solution generate
def generate(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Tensor:
    """(B, T0) prompt -> (B, T0 + max_new_tokens) ids, one sampled token at a time."""
    ### BEGIN SOLUTION
    ids, past = prompt, None
    with torch.no_grad():
        for _ in range(max_new_tokens):
            cached = 0 if past is None else past[0][0].size(2)
            if use_cache and past is not None and cached + 1 <= model.max_len:
                logits, past = model(ids[:, -1:], past)  # (B, 1, V)
            else:
                logits, past = model(ids[:, -model.max_len :], None)  # (B, T, V)
            next_id = sample_next_token(logits[:, -1], temperature, top_k, top_p, generator)
            ids = torch.cat([ids, next_id[:, None]], dim=1)  # (B, T + 1)
            if not use_cache:
                past = None
    return ids
    ### END SOLUTION


# %% tests test_generate points=2
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
# A small test model with max_len=8 and 11 tokens (G.TinyLM); greedy decoding, so the tokens
# do not depend on the generator. Each case runs with use_cache=True and with use_cache=False.
prompt = torch.tensor([[1, 2, 3], [4, 4, 0]])
assert G.check_generate(
    generate, ref.generate, prompt, 4, temperature=0.0, label="greedy", forbidden=FORBIDDEN
)
assert G.check_generate(
    generate,
    ref.generate,
    prompt[:1, :1],
    6,
    temperature=0.0,
    model_seed=1,
    label="a one-token prompt",
    forbidden=FORBIDDEN,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/generate")
prompt = torch.randint(0, 11, (3, 2), generator=g)
model_seed = int(torch.randint(1000, (1,), generator=g))
assert G.check_generate(
    generate,
    ref.generate,
    prompt,
    5,
    temperature=0.0,
    model_seed=model_seed,
    forbidden=FORBIDDEN,
)
assert G.check_generate(
    generate, ref.generate, prompt, 0, label="no new tokens", forbidden=FORBIDDEN
)
### END HIDDEN TESTS

# %% tests test_generate-sampling points=2
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
g = torch.Generator().manual_seed(7)
# Sampled with a seeded generator: the same tokens as the reference, with and without the
# cache. The last case runs past max_len=8, so the input must be cropped to its last 8 tokens.
prompt = torch.randint(0, 11, (3, 2), generator=g)
settings = [{}, {"temperature": 0.7, "top_k": 4}, {"temperature": 1.3, "top_p": 0.9}]
assert all(
    G.check_generate(generate, ref.generate, prompt, 5, seed=i, forbidden=FORBIDDEN, **kw)
    for i, kw in enumerate(settings)
)
assert G.check_generate(
    generate, ref.generate, prompt, 10, seed=3, label="past max_len", forbidden=FORBIDDEN
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/generate-sampling")
prompt = torch.randint(0, 11, (2, int(torch.randint(1, 9, (1,), generator=g))), generator=g)
seed = int(torch.randint(10_000, (1,), generator=g))
assert G.check_generate(
    generate,
    ref.generate,
    prompt,
    9,
    temperature=0.9,
    top_k=6,
    top_p=0.85,
    seed=seed,
    model_seed=seed,
    forbidden=FORBIDDEN,
)
### END HIDDEN TESTS

# %% tests test_generate-cache points=1
from course_lib import gpt as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
g = torch.Generator().manual_seed(8)
# The test model counts what each call gets. With the cache: the prompt once, then one new
# token per call with the cache; without it: the whole sequence, no cache, every step.
prompt = torch.randint(0, 11, (2, 3), generator=g)
assert G.check_generate(
    generate, ref.generate, prompt, 5, part="cache", label="3 + 5 tokens", forbidden=FORBIDDEN
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("13/generate-cache")
prompt = torch.randint(0, 11, (1, 6), generator=g)
assert G.check_generate(
    generate,
    ref.generate,
    prompt,
    6,
    part="cache",
    seed=int(prompt[0, 0]),
    label="past max_len",
    forbidden=FORBIDDEN,
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: temperature and top-p
#
# A character model that only knows which character follows which (counts from the course's
# corpus) and *your* `sample_next_token`. The bars show how often each character was drawn
# after "t" in 2,000 draws; below them, a line of text sampled one character at a time. Move
# the sliders: temperature 0 always picks the same character, a high temperature babbles, and
# a small top-p keeps only the likeliest few. Not graded.

# %% demo
import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.data import load_corpus

text = "\n".join(load_corpus("en"))
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([index[c] for c in text])
counts = torch.ones(len(chars), len(chars))  # add-one smoothing
counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
bigram_logits = counts.log()  # (V, V): row c holds the logits of the character after c


def explore(temperature: float, top_p: float) -> None:
    gen = torch.Generator().manual_seed(0)
    after_t = bigram_logits[index["t"]].expand(2000, -1)  # (2000, V)
    draws = sample_next_token(after_t, temperature, top_p=top_p, generator=gen)
    freq = torch.bincount(draws, minlength=len(chars)).float() / len(draws)
    top = freq.argsort(descending=True)[:12]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar([repr(chars[i])[1:-1] for i in top.tolist()], freq[top].tolist())
    ax.set_ylabel("share of 2,000 draws")
    ax.set_title(f'the character after "t": temperature {temperature:.1f}, top-p {top_p:.2f}')
    plt.show()
    line = torch.tensor([index[text[0]]])
    for _ in range(90):
        nxt = sample_next_token(bigram_logits[line[-1:]], temperature, top_p=top_p, generator=gen)
        line = torch.cat([line, nxt])
    print("".join(chars[i] for i in line.tolist()).replace("\n", " / "))


try:
    sample_next_token(bigram_logits[:2], 1.0, top_p=0.9, generator=torch.Generator())
except NotImplementedError:
    print("Implement sample_next_token (and the filters) above, then run this cell to explore.")
else:
    display(
        widgets.interactive(
            explore,
            temperature=widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.1),
            top_p=widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05),
        )
    )

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

# %% written written_kv_cache points=2
# **Question (2 points).** Generating N new tokens without a cache re-runs the whole prefix at every step. Why can the keys and values of earlier positions be kept, and how does the total attention work of generating N tokens grow with and without the cache?
# RUBRIC:
# - 1 point: attention is causal, so a position's key and value depend only on the tokens up to it; appending a token never changes them (and, with learned absolute positions, only while the context is not cropped).
# - 1 point: without the cache step t re-computes all t positions, about N² token passes (and attention work growing like N³ over the run); with it each step processes one new token against t cached keys, about N²/2 attention scores in all and N token passes.
# - No point for "the cache is faster" without the reason.

# %% written written_temperature points=1
# **Question (1 point).** Why does sampling at temperature 0.5 give more repetitive text than temperature 1.5, and why does top-p adapt the number of candidate tokens where top-k does not?
# RUBRIC:
# - 1 point (both parts needed): dividing logits by T < 1 widens the gaps, so the softmax concentrates on the likeliest tokens (T > 1 flattens it); top-p keeps as many tokens as it takes to reach mass p, so few when the model is sure and many when it is unsure, while top-k always keeps k.

# %% [markdown]
# ## Recap
#
# - Perplexity is `exp` of the mean cross-entropy over the positions that count.
# - Decoding: argmax at temperature 0; otherwise divide by the temperature, keep the top-k, then
#   the nucleus of mass p, and draw one token from the softmax.
# - The KV cache keeps the keys and values of the positions already seen; a new position sees
#   all of them and itself, so its causal mask is aligned bottom-right.
# - Generating is "predict the last position, sample, append", with the cache feeding one token
#   per step and the same tokens as without it.
#
# More in [chapter 13](../../book/13_gpt.md); back to
# [chapter 12](../../book/12_benchmarking.md).

"""Chapter 13: the GPT's measure, decoding filters, KV cache and GQA against their oracles.

Oracles: ``F.cross_entropy`` for perplexity; Hugging Face's ``TopKLogitsWarper`` /
``TopPLogitsWarper`` rules (rows written by hand from the documented rule, and a transcription
of their code for the property tests, so no download is needed); ``torch.multinomial`` with the
same generator for sampling; ``F.scaled_dot_product_attention`` on the whole sequence for the
KV cache and with ``enable_gqa=True`` for grouped-query attention.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention.bias import causal_lower_right

from course_lib.data import load_corpus
from course_lib.gpt import (
    GPT,
    CharTokenizer,
    cached_attention,
    generate,
    grouped_query_attention,
    kv_cache_bytes,
    lm_batch,
    perplexity,
    repeat_kv,
    sample_next_token,
    top_k_filter,
    top_p_filter,
    train_gpt,
)

INF = float("inf")
SETTINGS = settings(max_examples=40, deadline=None, database=None)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_gpt(seed: int = 0, *, vocab_size: int = 13, max_len: int = 8, **kw) -> GPT:
    cfg = dict(embed_dim=16, num_heads=2, num_layers=2, ff_dim=32, tie_weights=False) | kw
    model = GPT(vocab_size, max_len, **cfg)
    model.reset_parameters(gen(seed))
    with torch.no_grad():  # N(0, 0.02²) weights give near-uniform logits: sharpen them
        model.lm_head.weight.mul_(50)
    return model.eval()


# --- perplexity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_perplexity_is_exp_of_torch_cross_entropy(ignore_index):
    g = gen(0)
    logits = torch.randn(3, 5, 7, generator=g) * 2
    targets = torch.randint(1, 7, (3, 5), generator=g)
    targets[0, :2] = ignore_index
    targets[2, 4] = ignore_index
    loss = F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1), ignore_index=ignore_index)
    got = perplexity(logits, targets, ignore_index=ignore_index)
    assert isinstance(got, float)
    assert got == pytest.approx(math.exp(loss.item()), rel=1e-6)
    # the ignored positions really are left out: changing their logits changes nothing
    logits[0, :2] += 100 * torch.randn(2, 7, generator=g)
    assert perplexity(logits, targets, ignore_index=ignore_index) == pytest.approx(got, rel=1e-9)


def test_perplexity_of_uniform_and_perfect_models():
    assert perplexity(torch.zeros(2, 3, 8), torch.randint(8, (2, 3), generator=gen(1))) == (
        pytest.approx(8.0)
    )
    targets = torch.tensor([[2, 0, 1]])
    confident = F.one_hot(targets, 3).float() * 50  # (1, 3, 3) all mass on the target
    assert perplexity(confident, targets) == pytest.approx(1.0)


def test_perplexity_errors():
    with pytest.raises(ValueError, match="nothing to measure"):
        perplexity(torch.zeros(1, 2, 4), torch.full((1, 2), -100))
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        perplexity(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        perplexity(torch.zeros(1, 3, 4), torch.zeros(1, 2, dtype=torch.long))


# --- top-k and top-p: Hugging Face's warpers ---------------------------------------------------


def hf_top_k(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """transformers' TopKLogitsWarper.__call__ (min_tokens_to_keep=1), transcribed."""
    top_k = min(max(top_k, 1), scores.size(-1))
    indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
    return scores.masked_fill(indices_to_remove, -INF)


def hf_top_p(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """transformers' TopPLogitsWarper.__call__ (min_tokens_to_keep=1), transcribed."""
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)
    cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_indices_to_remove = cumulative_probs <= (1 - top_p)
    sorted_indices_to_remove[..., -1:] = 0
    indices_to_remove = sorted_indices_to_remove.scatter(
        -1, sorted_indices, sorted_indices_to_remove
    )
    return scores.masked_fill(indices_to_remove, -INF)


@pytest.mark.parametrize(
    ("row", "k", "expected"),
    [
        ([1.0, 3.0, 2.0, 3.0], 2, [-INF, 3.0, -INF, 3.0]),  # a tie at the 2nd place: both kept
        ([0.0, 5.0, 1.0, 4.0, 2.0], 3, [-INF, 5.0, -INF, 4.0, 2.0]),
        ([2.0, 2.0, 2.0, 1.0], 1, [2.0, 2.0, 2.0, -INF]),  # ties with the 1st: three kept
        ([0.5, -1.0, 7.0], 1, [-INF, -INF, 7.0]),
        ([0.5, -1.0, 7.0], 3, [0.5, -1.0, 7.0]),  # k = V keeps all
        ([0.5, -1.0, 7.0], 10, [0.5, -1.0, 7.0]),  # k > V keeps all
        ([0.0, -INF, 1.0], 2, [0.0, -INF, 1.0]),
    ],
)
def test_top_k_rows_by_hand(row, k, expected):
    logits = torch.tensor(row)
    out = top_k_filter(logits, k)
    assert torch.equal(out, torch.tensor(expected))
    assert torch.equal(out, hf_top_k(logits, k))
    assert torch.equal(logits, torch.tensor(row)), "the input is not modified"
    assert out.data_ptr() != logits.data_ptr(), "a new tensor, also when everything is kept"


def test_top_k_works_per_row_on_any_batch_shape():
    logits = torch.tensor([[[3.0, 1.0, 2.0], [0.0, 0.0, -1.0]], [[1.0, 2.0, 3.0], [5.0, 4.0, 4.0]]])
    expected = torch.tensor(
        [[[3.0, -INF, 2.0], [0.0, 0.0, -INF]], [[-INF, 2.0, 3.0], [5.0, 4.0, 4.0]]]
    )
    assert torch.equal(top_k_filter(logits, 2), expected)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, None])
def test_top_k_rejects_a_bad_k(k):
    with pytest.raises(ValueError, match="positive int"):
        top_k_filter(torch.zeros(4), k)


def probs_row(*probs: float) -> torch.Tensor:
    return torch.tensor(probs).log()


@pytest.mark.parametrize(
    ("probs", "p", "kept"),
    [
        ((0.5, 0.3, 0.15, 0.05), 0.7, [0, 1]),  # 0.5 < 0.7 <= 0.5 + 0.3: the crossing one is kept
        ((0.5, 0.3, 0.15, 0.05), 0.9, [0, 1, 2]),
        ((0.5, 0.3, 0.15, 0.05), 0.99, [0, 1, 2, 3]),
        ((0.5, 0.3, 0.15, 0.05), 0.45, [0]),  # the most probable alone already crosses p
        ((0.5, 0.3, 0.15, 0.05), 0.01, [0]),
        ((0.5, 0.3, 0.15, 0.05), 1.0, [0, 1, 2, 3]),  # p = 1 keeps all
        ((0.05, 0.5, 0.15, 0.3), 0.7, [1, 3]),  # vocabulary order is not probability order
        ((0.9998, 0.0001, 0.0001), 0.9, [0]),
    ],
)
def test_top_p_rows_by_hand(probs, p, kept):
    logits = probs_row(*probs)
    out = top_p_filter(logits, p)
    expected = torch.full_like(logits, -INF)
    expected[kept] = logits[kept]
    assert torch.equal(out, expected)
    assert torch.equal(out, hf_top_p(logits, p))
    assert torch.equal(logits, probs_row(*probs)), "the input is not modified"


def test_top_p_works_per_row_and_keeps_a_lone_token():
    logits = torch.stack([probs_row(0.5, 0.3, 0.15, 0.05), probs_row(0.1, 0.2, 0.3, 0.4)])
    out = top_p_filter(logits, 0.6)
    assert torch.isfinite(out).tolist() == [[True, True, False, False], [False, False, True, True]]
    one_hot = torch.tensor([[0.0, -INF, -INF]])  # everything else already filtered
    assert torch.equal(top_p_filter(one_hot, 0.5), one_hot)


@pytest.mark.parametrize("p", [0.0, -0.1, 1.5])
def test_top_p_rejects_a_bad_p(p):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        top_p_filter(torch.zeros(4), p)


logit_rows = st.integers(0, 2**31 - 1).flatmap(
    lambda seed: st.tuples(st.just(seed), st.integers(1, 4), st.integers(1, 12))
)


@SETTINGS
@given(spec=logit_rows, k=st.integers(1, 15), scale=st.sampled_from([0.5, 3.0, 20.0]))
def test_top_k_properties(spec, k, scale):
    seed, B, V = spec
    logits = (torch.randn(B, V, generator=gen(seed)) * scale).round()  # rounding makes ties
    out = top_k_filter(logits, k)
    assert torch.equal(out, hf_top_k(logits, k))
    kept = torch.isfinite(out)
    assert (kept.sum(-1) >= min(k, V)).all()
    assert torch.equal(out[kept], logits[kept]), "kept logits are unchanged"
    for row, keep in zip(logits, kept):
        if (~keep).any():
            assert row[keep].min() > row[~keep].max(), "everything kept beats everything dropped"
        # more than k only through ties with the k-th largest
        assert (row[keep] > row[keep].min()).sum() < k


@SETTINGS
@given(spec=logit_rows, p=st.floats(0.01, 1.0), scale=st.sampled_from([0.5, 2.0, 6.0]))
def test_top_p_properties(spec, p, scale):
    seed, B, V = spec
    logits = torch.randn(B, V, generator=gen(seed)) * scale
    probs = logits.softmax(-1)
    sorted_probs = probs.sort(-1, descending=True).values
    mass_before = sorted_probs.cumsum(-1) - sorted_probs
    assume((mass_before - p).abs().min() > 1e-4)  # no decision within rounding of p
    out = top_p_filter(logits, p)
    assert torch.equal(out, hf_top_p(logits, p))
    kept = torch.isfinite(out)
    assert torch.equal(out[kept], logits[kept]), "kept logits are unchanged"
    for row, keep in zip(probs, kept):
        assert keep[row.argmax()], "the most probable token is always kept"
        assert row[keep].sum() >= p - 1e-6, "the kept mass reaches p"
        assert row[keep].sum() - row[keep].min() < p, "the smallest such set: no token to spare"
        if (~keep).any():
            assert row[keep].min() >= row[~keep].max()


# --- sampling --------------------------------------------------------------------------------


def test_temperature_zero_is_argmax_with_the_first_index_on_ties():
    logits = torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [-1.0, -5.0, -0.5]])
    g = gen(0)
    state = g.get_state()
    out = sample_next_token(logits, temperature=0.0, top_k=1, top_p=0.5, generator=g)
    assert out.dtype == torch.long and out.tolist() == [1, 0, 2]
    assert torch.equal(g.get_state(), state), "greedy decoding draws nothing"


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(1.0, None, None), (0.7, 5, None), (1.5, None, 0.8), (0.8, 6, 0.7), (2.0, 3, 0.95)],
)
def test_sampling_is_multinomial_after_temperature_top_k_then_top_p(temperature, top_k, top_p):
    logits = torch.randn(64, 10, generator=gen(3)) * 2
    scaled = logits / temperature
    if top_k is not None:
        scaled = hf_top_k(scaled, top_k)
    if top_p is not None:
        scaled = hf_top_p(scaled, top_p)
    expected = torch.multinomial(scaled.softmax(-1), 1, generator=gen(11)).squeeze(-1)
    got = sample_next_token(logits, temperature, top_k, top_p, generator=gen(11))
    assert got.shape == (64,) and got.dtype == torch.long
    assert torch.equal(got, expected)
    assert torch.isfinite(scaled.gather(-1, got[:, None])).all(), "never a filtered token"


def test_filters_come_after_the_temperature():
    # top-p depends on the temperature: the same logits keep more tokens when flattened
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]]).repeat(4000, 1)
    cold = sample_next_token(logits, 0.5, top_p=0.9, generator=gen(0))
    hot = sample_next_token(logits, 5.0, top_p=0.9, generator=gen(0))
    assert set(cold.tolist()) == {0, 1}
    assert set(hot.tolist()) == {0, 1, 2, 3}


def test_sample_next_token_errors():
    with pytest.raises(ValueError, match=r"logits\[:, -1\]"):
        sample_next_token(torch.zeros(1, 3, 5))
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(torch.zeros(1, 5), temperature=-1.0)


# --- the KV cache ------------------------------------------------------------------------------


def qkv(seed: int, B: int, H: int, T: int, Dh: int) -> tuple[torch.Tensor, ...]:
    g = gen(seed)
    return tuple(torch.randn(B, H, T, Dh, generator=g) for _ in range(3))


def test_cached_attention_without_past_is_causal_attention():
    q, k, v = qkv(0, 2, 3, 5, 4)
    out, k_all, v_all = cached_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert torch.equal(k_all, k) and torch.equal(v_all, v)


@pytest.mark.parametrize(("t_past", "t_new"), [(1, 1), (4, 1), (4, 3), (2, 5)])
def test_cached_attention_equals_attention_over_the_whole_sequence(t_past, t_new):
    q, k, v = qkv(1, 2, 3, t_past + t_new, 4)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, S, Dh)
    new = slice(t_past, None)
    out, k_all, v_all = cached_attention(
        q[:, :, new], k[:, :, new], v[:, :, new], k[:, :, :t_past], v[:, :, :t_past]
    )
    torch.testing.assert_close(out, full[:, :, new])
    assert torch.equal(k_all, k) and torch.equal(v_all, v), "the past comes first, then the new"
    # the same as torch's bottom-right aligned causal bias on the new queries
    lower_right = F.scaled_dot_product_attention(
        q[:, :, new], k, v, attn_mask=causal_lower_right(t_new, t_past + t_new)
    )
    torch.testing.assert_close(out, lower_right)


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    B=st.integers(1, 3),
    H=st.integers(1, 3),
    t_past=st.integers(0, 6),
    t_new=st.integers(1, 4),
    Dh=st.integers(1, 6),
)
def test_cached_attention_property(seed, B, H, t_past, t_new, Dh):
    q, k, v = qkv(seed, B, H, t_past + t_new, Dh)
    out, k_all, _ = cached_attention(
        q[:, :, t_past:], k[:, :, t_past:], v[:, :, t_past:], k[:, :, :t_past], v[:, :, :t_past]
    )
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)[:, :, t_past:]
    torch.testing.assert_close(out, expected)
    assert k_all.shape == (B, H, t_past + t_new, Dh)


def test_cached_attention_errors():
    q, k, v = qkv(2, 1, 2, 3, 4)
    with pytest.raises(ValueError, match="together"):
        cached_attention(q, k, v, past_key=k)
    with pytest.raises(ValueError, match="same layer and batch"):
        cached_attention(q, k, v, past_key=k[:, :1], past_value=v[:, :1])


# --- the model -----------------------------------------------------------------------------------


def test_gpt_shapes_and_present():
    model = tiny_gpt(vocab_size=11, max_len=8, num_layers=3)
    ids = torch.randint(11, (2, 5), generator=gen(0))
    logits, present = model(ids)
    assert logits.shape == (2, 5, 11)
    assert len(present) == 3
    for k, v in present:
        assert k.shape == v.shape == (2, 2, 5, 8)  # (B, H, T, Dh) with Dh = 16 / 2


def test_tied_weights_share_one_tensor():
    tied = GPT(11, 8, 16, 2, 1, 32)
    assert tied.lm_head.weight is tied.token_embedding.weight
    untied = GPT(11, 8, 16, 2, 1, 32, tie_weights=False)
    assert untied.lm_head.weight is not untied.token_embedding.weight
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(untied) - count(tied) == 11 * 16, "the tied matrix is one parameter"
    # a gradient step through the head moves the embedding too
    logits, _ = tied(torch.tensor([[1, 2]]))
    logits[0, -1, 3].backward()
    assert tied.token_embedding.weight.grad[3].abs().sum() > 0


def test_reset_parameters_is_reproducible():
    a, b = tiny_gpt(5), tiny_gpt(5)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.token_embedding.weight, tiny_gpt(6).token_embedding.weight)


def test_cached_forward_equals_uncached():
    model = tiny_gpt(1)
    ids = torch.randint(13, (2, 7), generator=gen(2))
    full, present = model(ids)
    # a prefix of 4, then the rest with the cache
    head, past = model(ids[:, :4])
    tail, present_2 = model(ids[:, 4:], past)
    torch.testing.assert_close(torch.cat([head, tail], dim=1), full)
    for (k1, v1), (k2, v2) in zip(present, present_2):
        torch.testing.assert_close(k1, k2)
        torch.testing.assert_close(v1, v2)
    # one token at a time
    past, steps = None, []
    for t in range(7):
        logits, past = model(ids[:, t : t + 1], past)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full)


def test_gpt_is_causal():
    model = tiny_gpt(2)
    ids = torch.randint(13, (1, 8), generator=gen(3))
    changed = ids.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % 13
    torch.testing.assert_close(model(ids)[0][:, :5], model(changed)[0][:, :5])
    assert not torch.allclose(model(ids)[0][:, 5:], model(changed)[0][:, 5:])


def test_gpt_errors():
    model = tiny_gpt(0, max_len=8)
    with pytest.raises(ValueError, match="max_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    _, past = model(torch.zeros(1, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="crop"):
        model(torch.zeros(1, 3, dtype=torch.long), past)
    with pytest.raises(ValueError, match="layers"):
        model(torch.zeros(1, 1, dtype=torch.long), past[:1])
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        GPT(11, 8, 10, 3, 1, 32)


def test_dropout_is_active_only_in_training():
    model = tiny_gpt(0, dropout=0.5)
    ids = torch.randint(13, (2, 6), generator=gen(0))
    torch.testing.assert_close(model(ids)[0], model(ids)[0])  # eval: deterministic
    model.train()
    assert not torch.allclose(model(ids)[0], model(ids)[0])


# --- generation ----------------------------------------------------------------------------------


class Spy(nn.Module):
    """Records how many new positions and cached positions each call of the model gets."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model, self.max_len, self.calls = model, model.max_len, []

    def forward(self, ids, past=None):
        self.calls.append((ids.size(1), 0 if past is None else past[0][0].size(2)))
        return self.model(ids, past)


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(1.0, None, None), (0.7, 5, None), (1.3, None, 0.9), (0.8, 6, 0.8), (0.0, None, None)],
)
@pytest.mark.parametrize(("t0", "new"), [(3, 5), (5, 10)])  # (5, 10) runs past max_len = 8
def test_generate_cached_equals_uncached(temperature, top_k, top_p, t0, new):
    model = tiny_gpt(3)
    prompt = torch.randint(13, (3, t0), generator=gen(4))
    kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    cached = generate(model, prompt, new, **kw, generator=gen(7), use_cache=True)
    uncached = generate(model, prompt, new, **kw, generator=gen(7), use_cache=False)
    assert cached.shape == (3, t0 + new) and cached.dtype == torch.long
    assert torch.equal(cached, uncached)
    assert torch.equal(cached[:, :t0], prompt)


def test_generate_greedy_equals_a_hand_loop():
    model = tiny_gpt(4)
    prompt = torch.randint(13, (2, 6), generator=gen(5))
    before = prompt.clone()
    ids = prompt
    for _ in range(7):
        logits, _ = model(ids[:, -model.max_len :])
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generate(model, prompt, 7, temperature=0.0), ids)
    assert torch.equal(prompt, before), "the prompt is untouched"
    assert len(set(ids[0, 6:].tolist())) > 1, "a model that says more than one token"


def test_generate_uses_the_cache_and_crops():
    spy = Spy(tiny_gpt(5))
    prompt = torch.randint(13, (1, 3), generator=gen(6))
    generate(spy, prompt, 4, generator=gen(0))
    assert spy.calls == [(3, 0), (1, 3), (1, 4), (1, 5)], "prompt once, then one token each"
    spy.calls.clear()
    generate(spy, prompt, 4, generator=gen(0), use_cache=False)
    assert spy.calls == [(3, 0), (4, 0), (5, 0), (6, 0)], "the whole sequence every step"
    spy.calls.clear()
    generate(spy, torch.randint(13, (1, 7), generator=gen(6)), 3, generator=gen(0))
    assert spy.calls == [(7, 0), (1, 7), (8, 0)], "past max_len: the last 8 tokens, no cache"


def test_generate_is_reproducible_and_follows_the_generator():
    model = tiny_gpt(6)
    prompt = torch.zeros(4, 1, dtype=torch.long)
    a = generate(model, prompt, 6, generator=gen(1))
    assert torch.equal(a, generate(model, prompt, 6, generator=gen(1)))
    assert not torch.equal(a, generate(model, prompt, 6, generator=gen(2)))
    assert torch.equal(generate(model, prompt, 0), prompt)


def test_generate_errors():
    model = tiny_gpt(0)
    with pytest.raises(ValueError, match=r"ids\[None\]"):
        generate(model, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="int64"):
        generate(model, torch.zeros(1, 3), 2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, torch.zeros(1, 3, dtype=torch.long), -1)


# --- grouped-query attention ----------------------------------------------------------------------


@pytest.mark.parametrize(("H", "H_kv"), [(8, 2), (6, 3), (4, 1), (4, 4)])  # GQA, GQA, MQA, MHA
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize(("T", "S"), [(5, 5), (3, 6)])
def test_grouped_query_attention_matches_torch_enable_gqa(H, H_kv, is_causal, T, S):
    g = gen(H * 10 + H_kv)
    q = torch.randn(2, H, T, 4, generator=g)
    k, v = torch.randn(2, H_kv, S, 4, generator=g), torch.randn(2, H_kv, S, 4, generator=g)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, enable_gqa=True)
    torch.testing.assert_close(grouped_query_attention(q, k, v, is_causal=is_causal), expected)


def test_repeat_kv_gives_consecutive_query_heads_one_kv_head():
    x = torch.arange(2 * 3).float().view(1, 2, 3, 1)  # 2 key/value heads
    out = repeat_kv(x, 3)
    assert out.shape == (1, 6, 3, 1)
    for j in range(6):
        assert torch.equal(out[0, j], x[0, j // 3])
    assert repeat_kv(x, 1) is x


def test_grouped_query_attention_errors():
    q = torch.zeros(1, 4, 2, 3)
    with pytest.raises(ValueError, match="divide"):
        grouped_query_attention(q, torch.zeros(1, 3, 2, 3), torch.zeros(1, 3, 2, 3))
    with pytest.raises(ValueError, match="divide"):
        grouped_query_attention(q, torch.zeros(1, 2, 2, 3), torch.zeros(1, 1, 2, 3))


def test_kv_cache_bytes():
    # GPT-2 small at 1024 tokens in float16: 36 MiB per sequence
    assert kv_cache_bytes(12, 1, 12, 1024, 64, torch.float16) == 37_748_736
    assert kv_cache_bytes(12, 1, 12, 1024, 64) == 2 * 37_748_736  # float32 by default
    assert kv_cache_bytes(12, 1, 1, 1024, 64, torch.float16) * 12 == 37_748_736  # MQA
    assert kv_cache_bytes(2, 3, 4, 0, 8) == 0
    # equal to the bytes of the cache a GPT really returns
    model = tiny_gpt(0, num_layers=3)
    _, present = model(torch.zeros(2, 5, dtype=torch.long))
    real = sum(t.numel() * t.element_size() for pair in present for t in pair)
    assert kv_cache_bytes(3, 2, 2, 5, 8) == real


# --- tokenizer, batches and training -------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "a", "hello world", "猫追狗。", "emoji 🙂 ok"])
def test_char_tokenizer_round_trip(text):
    tok = CharTokenizer("abc " + text)
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(torch.tensor(tok.encode(text), dtype=torch.long)) == text


def test_char_tokenizer_vocabulary_and_errors():
    tok = CharTokenizer("abca")
    assert tok.chars == ["a", "b", "c"] and tok.vocab_size == 3
    assert tok.encode("cab") == [2, 0, 1]
    with pytest.raises(ValueError, match=r"\['z'\]"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer("")


def test_lm_batch_targets_are_the_next_tokens():
    data = torch.arange(100)
    x, y = lm_batch(data, 6, 5, gen(0))
    assert x.shape == y.shape == (5, 6)
    assert torch.equal(y, x + 1), "a window of the stream and the same window moved by one"
    assert int(y.max()) <= 99
    x2, _ = lm_batch(data, 6, 5, gen(0))
    assert torch.equal(x, x2)
    with pytest.raises(ValueError, match="longer than block_size"):
        lm_batch(torch.arange(6), 6, 2, gen(0))


def corpus_tokens() -> tuple[CharTokenizer, torch.Tensor]:
    text = "\n".join(load_corpus("en")[:120])
    tok = CharTokenizer(text)
    return tok, torch.tensor(tok.encode(text))


def test_train_gpt_reduces_the_loss_and_is_reproducible():
    tok, data = corpus_tokens()

    def run() -> tuple[list[float], GPT]:
        model = GPT(tok.vocab_size, 16, 32, 2, 1, 64, dropout=0.1)
        model.reset_parameters(gen(0))
        rng_before = torch.random.get_rng_state()
        losses = train_gpt(model, data, steps=40, generator=gen(1), batch_size=16)
        assert torch.equal(torch.random.get_rng_state(), rng_before), "global RNG untouched"
        return losses, model

    losses, model = run()
    assert len(losses) == 40
    assert losses[0] == pytest.approx(math.log(tok.vocab_size), rel=0.05), "starts near uniform"
    assert sum(losses[-5:]) / 5 < losses[0] - 0.8
    assert not model.training, "back in eval mode"
    again, model_2 = run()
    assert again == losses
    assert torch.equal(model.lm_head.weight, model_2.lm_head.weight)
    # the trained model is a better predictor of held-out text than the uniform guess
    x, y = lm_batch(data, 16, 8, gen(9))
    with torch.no_grad():
        assert perplexity(model(x)[0], y) < 0.5 * tok.vocab_size
    with pytest.raises(ValueError, match="max_len"):
        train_gpt(model, data, steps=1, generator=gen(0), block_size=17)

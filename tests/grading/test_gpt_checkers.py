"""The chapter-13 checkers of ``course_lib.grading.mistakes.gpt``.

They carry their own copies of the filters, the sampler and the cached attention (a test cell
forbids course_lib.gpt while the student's code runs): the copies must agree with the reference.
"""

from __future__ import annotations

import pytest
import torch

from course_lib.gpt import (
    cached_attention,
    generate,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)

INF = float("inf")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def qkv(seed: int, B: int, H: int, T: int, Dh: int) -> tuple[torch.Tensor, ...]:
    g = gen(seed)
    return tuple(torch.randn(B, H, T, Dh, generator=g) for _ in range(3))


def test_checker_copies_agree_with_the_reference():
    from course_lib.grading.mistakes import gpt as GX

    g = gen(12)
    for _ in range(20):
        logits = (torch.randn(5, 9, generator=g) * 3).round()
        k = int(torch.randint(1, 12, (1,), generator=g))
        p = float(torch.rand(1, generator=g)) * 0.9 + 0.05
        assert torch.equal(GX._top_k(logits, k), top_k_filter(logits, k))
        assert torch.equal(GX._top_p(logits, p), top_p_filter(logits, p))
        kw = dict(temperature=0.8, top_k=k, top_p=p)
        assert torch.equal(
            GX._sample(logits, **kw, generator=gen(k)),
            sample_next_token(logits, **kw, generator=gen(k)),
        )
    q, k, v = qkv(3, 2, 2, 7, 4)
    for t_past in (0, 3, 6):
        args = (
            q[:, :, t_past:],
            k[:, :, t_past:],
            v[:, :, t_past:],
            k[:, :, :t_past],
            v[:, :, :t_past],
        )
        for a, b in zip(GX._cached(*args), cached_attention(*args)):
            torch.testing.assert_close(a, b)


def test_tiny_lm_follows_the_gpt_interface_and_counts_calls():
    from course_lib.grading.mistakes import gpt as GX

    model = GX.TinyLM(seed=1)
    ids = torch.randint(11, (2, 7), generator=gen(0))
    full, present = model(ids)
    head, past = model(ids[:, :4])
    tail, _ = model(ids[:, 4:], past)
    torch.testing.assert_close(torch.cat([head, tail], 1), full)
    assert present[0][0].shape == (2, 1, 7, 16)
    assert model.calls == [(7, 0), (4, 0), (3, 4)]
    with pytest.raises(ValueError, match="crop"):
        model(torch.zeros(1, 9, dtype=torch.long))
    prompt = torch.randint(11, (3, 2), generator=gen(1))
    for use_cache in (True, False):
        a = generate(model, prompt, 9, top_k=5, generator=gen(2), use_cache=use_cache)
        b = GX._generate(model, prompt, 9, top_k=5, generator=gen(2), use_cache=use_cache)
        assert torch.equal(a, b)
    assert len(set(a[:, 2:].flatten().tolist())) > 3, "a test model that says varied things"


def test_checkers_pass_the_reference_and_explain_a_mistake():
    from course_lib import grading as G
    from course_lib.grading.mistakes import gpt as GX

    ties = [G.Case(torch.tensor([[4.0, 0.0, 4.0, 4.0]]), 2, label="ties")]
    assert GX.check_logits_filter(top_k_filter, top_k_filter, ties)

    def exactly_k(logits, k):
        idx = torch.topk(logits, k).indices
        return logits.masked_fill(
            ~torch.zeros_like(logits, dtype=torch.bool).scatter(-1, idx, True), -INF
        )

    with pytest.raises(G.GradingError, match="keeps 2 tokens, expected 3(.|\n)*TIES"):
        GX.check_logits_filter(exactly_k, top_k_filter, ties, mistakes=GX.top_k_mistakes())

    logits = torch.randn(32, 6, generator=gen(0))
    assert GX.check_sample_next_token(sample_next_token, sample_next_token, logits, top_p=0.8)

    def hot_after(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
        x = top_p_filter(logits, top_p) / temperature
        return torch.multinomial(x.softmax(-1), 1, generator=generator).squeeze(-1)

    with pytest.raises(G.GradingError, match="after the filters"):
        GX.check_sample_next_token(hot_after, sample_next_token, logits, temperature=2.0, top_p=0.6)

    prompt = torch.randint(11, (2, 3), generator=gen(3))
    assert GX.check_generate(generate, generate, prompt, 7, part="cache", top_p=0.9)

    def no_crop(
        model,
        prompt,
        max_new_tokens,
        temperature=1.0,
        top_k=None,
        top_p=None,
        generator=None,
        use_cache=True,
    ):
        ids = prompt
        for _ in range(max_new_tokens):
            logits, _ = model(ids)
            token = sample_next_token(logits[:, -1], temperature, top_k, top_p, generator)
            ids = torch.cat([ids, token[:, None]], 1)
        return ids

    with pytest.raises(G.GradingError, match="crop the input"):
        GX.check_generate(no_crop, generate, prompt, 7)

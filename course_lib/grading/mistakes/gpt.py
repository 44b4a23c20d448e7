"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.gpt`."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.grading.calling import _clone, call
from course_lib.grading.checkers import Case, Mistake, _explain
from course_lib.grading.diagnose import GradingError, _fail, _header, _index, describe, diagnose

_NEG_INF = float("-inf")


def perplexity_mistakes() -> list[Mistake]:
    def ppl(
        *, over_all=False, total=False, base=math.e, axis=-1, per_token=False, fixed=None, log=False
    ):
        def fn(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> float:
            ignore = ignore_index if fixed is None else fixed
            V = logits.size(-1)
            lp = torch.log_softmax(logits.double(), dim=axis).reshape(-1, V)
            t = targets.reshape(-1)
            keep = t != ignore
            nll = -lp.gather(1, t.masked_fill(~keep, 0)[:, None]).squeeze(1)
            nll = nll.masked_fill(~keep, 0.0)
            if per_token:
                return float((nll.exp() * keep).sum() / keep.sum())
            loss = nll.sum() if total else nll.sum() / (t.numel() if over_all else keep.sum())
            return float(loss.item()) if log else float(base ** loss.item())

        return fn

    return [
        Mistake(
            "the cross-entropy is averaged over ALL positions; divide by the number of positions "
            "whose target is not ignore_index",
            ppl(over_all=True),
        ),
        Mistake("this is the mean cross-entropy itself; perplexity is exp of it", ppl(log=True)),
        Mistake("this is exp of the summed loss; perplexity is exp of the MEAN", ppl(total=True)),
        Mistake(
            "this is 2 ** (cross-entropy in nats); with natural logs use exp (or log2 with 2 **)",
            ppl(base=2.0),
        ),
        Mistake(
            "this averages the per-token exp(loss); perplexity is exp of the mean loss",
            ppl(per_token=True),
        ),
        Mistake(
            "the log-softmax runs over the wrong axis; the vocabulary is the last axis",
            ppl(axis=1),
        ),
        Mistake(
            "the positions to skip are found with -100 instead of the ignore_index argument",
            ppl(fixed=-100),
        ),
    ]


def _top_k(
    logits: Tensor,
    k: int,
    *,
    shift: int = 0,
    ties: bool = True,
    dim: int = -1,
    largest: bool = True,
    strict: bool = False,
) -> Tensor:
    """top-k filtering with knobs for each mistake (the defaults are right)."""
    V = logits.size(dim)
    kk = k + shift
    if kk >= V or kk < 1:
        if shift == 0 and kk >= V:
            return logits.clone()
        raise ValueError("this mistake needs 1 <= k + shift < V")
    if not ties:
        idx = torch.topk(logits, kk, dim=dim, largest=largest).indices
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(dim, idx, True)
        return logits.masked_fill(~keep, _NEG_INF)
    kth = torch.topk(logits, kk, dim=dim, largest=largest).values.narrow(dim, kk - 1, 1)
    if not largest:
        return logits.masked_fill(logits > kth, _NEG_INF)
    drop = logits <= kth if strict else logits < kth
    return logits.masked_fill(drop, _NEG_INF)


def top_k_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "exactly k tokens are kept, but a token that TIES with the k-th largest logit must "
            "be kept too: remove only the logits smaller than the k-th largest",
            lambda logits, k: _top_k(logits, k, ties=False),
        ),
        Mistake(
            "the k-th largest logit itself is removed: remove only the logits strictly smaller "
            "than it",
            lambda logits, k: _top_k(logits, k, strict=True),
        ),
        Mistake(
            "this keeps k + 1 tokens: the k-th largest is at index k - 1 of a descending sort "
            "(or topk(...).values[..., -1])",
            lambda logits, k: _top_k(logits, k, shift=1),
        ),
        Mistake(
            "this keeps k - 1 tokens: the k-th largest is at index k - 1 of a descending sort",
            lambda logits, k: _top_k(logits, k, shift=-1),
        ),
        Mistake(
            "this keeps the k SMALLEST logits; keep the largest",
            lambda logits, k: _top_k(logits, k, largest=False),
        ),
        Mistake(
            "the k-th largest is taken along the wrong axis; the vocabulary is the last axis",
            lambda logits, k: _top_k(logits, k, dim=0),
        ),
    ]


def _top_p(
    logits: Tensor,
    p: float,
    *,
    crossing: bool = True,
    first: bool = True,
    descending: bool = True,
    scatter: bool = True,
    on_logits: bool = False,
    dim: int = -1,
) -> Tensor:
    """top-p (nucleus) filtering with knobs for each mistake (the defaults are right)."""
    if p >= 1.0 and crossing and first and descending and scatter and not on_logits:
        return logits.clone()
    weights = logits.float() if on_logits else torch.softmax(logits.float(), dim=dim)
    sorted_w, order = torch.sort(weights, dim=dim, descending=descending, stable=True)
    cum = sorted_w.cumsum(dim=dim)
    drop = (cum - sorted_w >= p) if crossing else (cum > p)
    if first:
        drop.narrow(dim, 0, 1).fill_(False)
    if scatter:
        drop = torch.zeros_like(drop).scatter(dim, order, drop)
    return logits.masked_fill(drop, _NEG_INF)


def top_p_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "the token whose probability carries the running total across p is dropped; it "
            "must be kept (keep a token while the mass BEFORE it is still below p)",
            lambda logits, p: _top_p(logits, p, crossing=False),
        ),
        Mistake(
            "the most probable token can be removed; it is always kept, even when its own "
            "probability is above p",
            lambda logits, p: _top_p(logits, p, crossing=False, first=False),
        ),
        Mistake(
            "the tokens are sorted from least to most probable; build the nucleus from the most "
            "probable down (descending=True)",
            lambda logits, p: _top_p(logits, p, descending=False),
        ),
        Mistake(
            "the removal decided in sorted order is applied in vocabulary order; map it back "
            "with the sort indices (scatter) before masking the logits",
            lambda logits, p: _top_p(logits, p, scatter=False),
        ),
        Mistake(
            "the running total adds up logits; it must add up probabilities (softmax first)",
            lambda logits, p: _top_p(logits, p, on_logits=True),
        ),
        Mistake(
            "the probabilities are computed along the wrong axis; the vocabulary is the last axis",
            lambda logits, p: _top_p(logits, p, dim=0),
        ),
    ]


def _filter_problem(got: Any, expected: Tensor, logits: Tensor, path: str) -> str | None:
    """What is wrong with filtered logits, in terms of kept and removed tokens."""
    if not isinstance(got, Tensor) or got.shape != expected.shape or got.dtype != expected.dtype:
        return diagnose(got, expected, path=path)
    g, e, x = got.detach(), expected, logits
    if torch.isnan(g).any():
        return f"{path} contains NaN; a filter only replaces some logits by -inf"
    removed = torch.isinf(e) & ~torch.isinf(x)  # removed by the filter
    finite_there = removed & ~torch.isinf(g)
    if finite_there.any() and not torch.equal(g[finite_there], x[finite_there]):
        values = g[finite_there & (g != x)]
        fill = values[0].item()
        if bool((values == fill).all()):
            how = "0" if fill == 0 else f"{fill:.3g}"
            return (
                f"the removed logits are set to {how}; set them to float('-inf'), so that "
                "softmax gives them probability exactly 0 and they can never be drawn"
            )
        return (
            f"{int((finite_there & (g != x)).sum())} logits that the filter removes hold finite "
            "values that are not the input's; removed logits must be -inf"
        )
    V = e.size(-1)
    kept_g = ~torch.isinf(g).reshape(-1, V)
    kept_e = ~torch.isinf(e).reshape(-1, V)
    rows = (kept_g != kept_e).any(-1)
    if rows.any():
        r = int(rows.nonzero()[0])
        row = _index(r, e.shape[:-1]) if e.dim() > 1 else ()
        n_g, n_e = int(kept_g[r].sum()), int(kept_e[r].sum())
        where = "the row" if not row else f"row {row[0] if len(row) == 1 else row}"
        if n_g == n_e:
            detail = "the right number of tokens, but not the right ones"
        else:
            detail = f"{n_g} token{'s' * (n_g != 1)}, expected {n_e}"
        return f"{where} of {path} keeps {detail} ({int(rows.sum())} of {len(rows)} rows differ)"
    kept = ~torch.isinf(e)
    if not torch.allclose(g[kept], x[kept], rtol=1e-6, atol=1e-6):
        return (
            f"the kept logits of {path} changed; a filter only removes tokens and leaves the "
            "other logits as they were (no softmax, no scaling)"
        )
    return None


@contextlib.contextmanager
def _labelled(label: str) -> Iterator[None]:
    """An error raised inside (e.g. by grading.call) names the case's label first."""
    try:
        yield
    except GradingError as exc:
        if not label:
            raise
        raise GradingError(f"[{label}]\n  {exc}") from exc.__cause__


def _call_case(student: Callable, case: Case, name: str, forbidden: Mapping[str, str]) -> Any:
    """grading.call on one case; an error it raises names the case's label."""
    __tracebackhide__ = True
    with _labelled(case.label):
        return call(
            student, *_clone(case.args), name=name, forbidden=forbidden, **_clone(case.kwargs)
        )


def check_logits_filter(
    student: Callable,
    reference: Callable,
    cases: Iterable[Case],
    *,
    mistakes: Iterable[Mistake] = (),
    forbidden: Mapping[str, str] = {},
    name: str | None = None,
) -> bool:
    """Compare a top-k / top-p filter with the reference, in terms of kept and removed tokens.

    The case's first argument is the logits. The diagnosis says whether the removed logits are
    not -inf, which row keeps too many or too few tokens, or whether kept logits changed.
    """
    __tracebackhide__ = True
    name = name or reference.__name__
    mistakes = list(mistakes)
    for case in cases:
        expected = reference(*_clone(case.args), **_clone(case.kwargs))
        got = _call_case(student, case, name, forbidden)
        problem = _filter_problem(got, expected, case.args[0], "the filtered logits")
        if problem:
            header = _header(name, case.args, case.kwargs, case.label)
            wrong = [
                (m.description, lambda m=m, c=case: m.fn(*_clone(c.args), **_clone(c.kwargs)))
                for m in mistakes
            ]
            raise _fail(header, problem, _explain(got, expected, wrong, {"rtol": 0, "atol": 0}))
    return True


def _sample(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    *,
    scale: str = "divide",
    order: str = "temperature,k,p",
    greedy: str = "first",
) -> Tensor:
    """The sampler of chapter 13 with knobs for each mistake (the defaults are right)."""
    if temperature == 0:
        if greedy == "last":
            V = logits.size(-1)
            return V - 1 - logits.flip(-1).argmax(-1)
        return logits.argmax(dim=-1)
    if greedy == "argmax":
        return logits.argmax(dim=-1)
    x = logits
    for step in order.split(","):
        if step == "temperature":
            x = x * temperature if scale == "multiply" else x / temperature
        elif step == "k" and top_k is not None:
            x = _top_k(x, top_k)
        elif step == "p" and top_p is not None:
            x = _top_p(x, top_p)
    probs = torch.softmax(x, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _sampler_mistakes() -> list[tuple[str, dict]]:
    return [
        (
            "the logits are multiplied by the temperature; divide them (T < 1 sharpens the "
            "distribution, T > 1 flattens it)",
            {"scale": "multiply"},
        ),
        (
            "the temperature is applied after the filters; divide the logits first, then top-k, "
            "then top-p (the nucleus depends on the temperature)",
            {"order": "k,p,temperature"},
        ),
        (
            "top-p runs before top-k; the order is temperature, then top-k, then top-p",
            {"order": "temperature,p,k"},
        ),
        ("top_k is ignored", {"order": "temperature,p"}),
        ("top_p is ignored", {"order": "temperature,k"}),
        (
            "at temperature > 0 the token is drawn with torch.multinomial, not taken with argmax",
            {"greedy": "argmax"},
        ),
        (
            "on ties argmax must return the FIRST maximum (torch.argmax does)",
            {"greedy": "last"},
        ),
    ]


def _unwrap(fn: Any) -> Any:
    """The function under its decorators (``@torch.no_grad()`` keeps it in ``__wrapped__``)."""
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


class _Seeded:
    """Stands for the generator in messages: ``torch.Generator().manual_seed(3)``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __repr__(self) -> str:
        return f"torch.Generator().manual_seed({self.seed})"


def _with_generator(student: Callable, seed: int) -> Callable:
    # The generator's state advances during the call, which grading.call would report as
    # "modified in place": bind it with partial, keeping the notebook namespace so that aliases
    # of forbidden functions are still blocked.
    bound = functools.partial(student, generator=torch.Generator().manual_seed(seed))
    bound.__globals__ = getattr(_unwrap(student), "__globals__", {})
    return bound


def check_sample_next_token(
    student: Callable,
    reference: Callable,
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    label: str = "",
    forbidden: Mapping[str, str] = {},
    name: str = "sample_next_token",
) -> bool:
    """``student(logits, temperature=..., top_k=..., top_p=..., generator=g)`` must return the
    reference's tokens for a generator seeded alike: the same draws of ``torch.multinomial``
    after the same temperature and filters (argmax at temperature 0)."""
    __tracebackhide__ = True
    kwargs = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    header = _header(name, (logits,), kwargs | {"generator": _Seeded(seed)}, label)
    expected = reference(logits.clone(), **kwargs, generator=torch.Generator().manual_seed(seed))

    def run() -> Any:
        with _labelled(label):
            return call(
                _with_generator(student, seed),
                logits.clone(),
                name=name,
                forbidden=forbidden,
                **kwargs,
            )

    got = run()
    problem = diagnose(got, expected, path="the output")
    if problem is None:
        return True
    if isinstance(got, Tensor) and got.shape == expected.shape and temperature > 0:
        x = logits / temperature
        x = _top_k(x, top_k) if top_k is not None else x
        x = _top_p(x, top_p) if top_p is not None else x
        ids = got.long().clamp(0, logits.size(-1) - 1)
        if got.dtype == torch.long and torch.isinf(x.gather(-1, ids[:, None])).any():
            problem += "; some of your tokens are ones that top-k / top-p removes"
        again = run()
        if isinstance(again, Tensor) and not torch.equal(again, got):
            raise _fail(
                header,
                problem,
                "two calls with generators seeded alike drew different tokens: draw with "
                "torch.multinomial(probabilities, 1, generator=generator)",
            )
    wrong = [
        (
            description,
            lambda knobs=knobs: _sample(
                logits.clone(), **kwargs, generator=torch.Generator().manual_seed(seed), **knobs
            ),
        )
        for description, knobs in _sampler_mistakes()
    ]
    hint = _explain(got, expected, wrong, {"rtol": 0, "atol": 0})
    if hint is None and isinstance(got, Tensor) and got.shape == expected.shape:
        hint = (
            "the draws differ from torch.multinomial(softmax(filtered logits / temperature), 1, "
            "generator=generator); check the order: temperature, top-k, top-p, softmax, one draw "
            "per row"
            if temperature > 0
            else None
        )
    B, V = logits.shape
    if hint is None and isinstance(got, Tensor) and got.dim() == 1 and got.numel() == V != B:
        hint = "argmax (or the draw) runs over the batch axis; the vocabulary is the last axis"
    if hint is None and (top_k is not None or top_p is not None):
        hint = "this test runs your top_k_filter / top_p_filter too: make their tests pass first"
    raise _fail(header, problem, hint)


def _cached(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    past_key: Tensor | None = None,
    past_value: Tensor | None = None,
    *,
    mask: str = "bottom-right",
    concat: str = "past,new",
    scale: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """Cached causal attention with knobs for each mistake (the defaults are right)."""
    if past_key is not None and concat != "none":
        if concat == "past,new":
            key, value = torch.cat([past_key, key], 2), torch.cat([past_value, value], 2)
        else:
            key, value = torch.cat([key, past_key], 2), torch.cat([value, past_value], 2)
    T, S = query.size(2), key.size(2)
    rows = torch.arange(T)[:, None]
    cols = torch.arange(S)[None, :]
    keep = {
        "bottom-right": cols <= rows + (S - T),
        "top-left": cols <= rows,
        "none": torch.ones(T, S, dtype=torch.bool),
        "not-self": cols < rows + (S - T),
    }[mask]
    factor = 1 / math.sqrt(query.size(-1)) if scale else 1.0
    scores = (query @ key.transpose(-2, -1)) * factor
    weights = torch.softmax(scores.masked_fill(~keep, _NEG_INF), dim=-1).nan_to_num(0.0)
    return weights @ value, key, value


def cached_attention_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "the causal mask is aligned top-left (as is_causal=True does when T != S): new "
            "position i is absolute position T_past + i, so it sees every cached key and the new "
            "keys up to itself; align the mask bottom-right",
            lambda *a, **k: _cached(*a, **k, mask="top-left"),
        ),
        Mistake(
            "there is no causal mask among the new positions: new position i must not see the "
            "new positions after it",
            lambda *a, **k: _cached(*a, **k, mask="none"),
        ),
        Mistake(
            "a position does not see its own key; it sees the keys up to AND including itself",
            lambda *a, **k: _cached(*a, **k, mask="not-self"),
        ),
        Mistake(
            "the cache is not used: concatenate the past keys and values with the new ones "
            "along the time axis (dim 2) and attend over all of them",
            lambda *a, **k: _cached(*a, **k, concat="none"),
        ),
        Mistake(
            "the new keys and values come before the past ones; the past comes first in time",
            lambda *a, **k: _cached(*a, **k, concat="new,past"),
        ),
        Mistake(
            "the scores are not scaled by 1/√Dh", lambda *a, **k: _cached(*a, **k, scale=False)
        ),
    ]


def check_cached_attention(
    student: Callable,
    reference: Callable,
    cases: Iterable[Case],
    *,
    mistakes: Iterable[Mistake] = (),
    forbidden: Mapping[str, str] = {},
    name: str = "cached_attention",
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> bool:
    """``student(q, k, v[, past_key, past_value])`` must return ``(out, key, value)`` like the
    reference: the output, and the keys and values with the past prepended (the next cache)."""
    __tracebackhide__ = True
    mistakes = list(mistakes)
    tol = {"rtol": rtol, "atol": atol}
    for case in cases:
        expected = reference(*_clone(case.args), **_clone(case.kwargs))
        got = _call_case(student, case, name, forbidden)
        header = _header(name, case.args, case.kwargs, case.label)
        if not isinstance(got, tuple | list) or len(got) != 3:
            raise GradingError(
                f"{header}:\n  return a tuple (output, key, value), got {describe(got)}"
            )
        problem = None
        for path, a, b in zip(
            ("the output", "the returned key (the next cache)", "the returned value"),
            got,
            expected,
        ):
            problem = diagnose(a, b, path=path, **tol)
            if problem:
                if path != "the output":
                    problem += (
                        "; return the keys and values with the past prepended along the time "
                        "axis: (B, H, T_past + T, Dh)"
                    )
                break
        if problem:
            wrong = [
                (m.description, lambda m=m, c=case: m.fn(*_clone(c.args), **_clone(c.kwargs)))
                for m in mistakes
            ]
            raise _fail(header, problem, _explain(list(got), list(expected), wrong, tol))
    return True


class TinyLM(nn.Module):
    """A one-layer, one-head causal language model with a KV cache, to test ``generate``.

    ``forward(ids, past=None)`` returns ``(logits, present)`` like the course's ``GPT``: logits
    (B, T, V) and ``present = [(key, value)]`` each (B, 1, T_past + T, D). It has ``max_len``
    (learned positions, so a longer input is an error, as in GPT) and records every call as
    ``(new positions, cached positions)`` in ``calls``. Weights come from ``seed``; logits are
    sharp enough that different tokens follow different contexts.
    """

    def __init__(self, vocab_size: int = 11, max_len: int = 8, dim: int = 16, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.vocab_size, self.max_len = vocab_size, max_len
        self.register_buffer("tok", torch.randn(vocab_size, dim, generator=g))
        self.register_buffer("pos", torch.randn(max_len, dim, generator=g))
        self.register_buffer("qkv", torch.randn(3, dim, dim, generator=g) / math.sqrt(dim))
        self.register_buffer("head", torch.randn(dim, vocab_size, generator=g) / math.sqrt(dim))
        self.calls: list[tuple[int, int]] = []

    def forward(self, ids: Tensor, past: Any = None) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"the model takes ids as a (B, T) int64 tensor, got {describe(ids)}")
        t_past = 0 if past is None else past[0][0].size(2)
        T = ids.size(1)
        self.calls.append((T, t_past))
        if t_past + T > self.max_len:
            raise ValueError(
                f"{t_past} cached + {T} new positions exceed the model's max_len={self.max_len}:"
                " crop the input to its last max_len tokens and start without a cache"
            )
        x = self.tok[ids] + self.pos[t_past : t_past + T]  # (B, T, D)
        q, k, v = ((x @ w)[:, None] for w in self.qkv)  # (B, 1, T, D) each
        if past is not None:
            k = torch.cat([past[0][0], k], dim=2)  # (B, 1, S, D)
            v = torch.cat([past[0][1], v], dim=2)
        out, _, _ = _cached(q, k[:, :, -T:], v[:, :, -T:], k[:, :, :-T], v[:, :, :-T])
        logits = (x + out[:, 0]) @ self.head * 3  # (B, T, V)
        return logits, [(k, v)]


def _generate(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    *,
    feed: str = "cache",
    position: int = -1,
    update: bool = True,
) -> Tensor:
    """generate with knobs for each mistake (the defaults are right)."""
    ids, past = prompt, None
    for _ in range(max_new_tokens):
        cached = 0 if past is None else past[0][0].size(2)
        if use_cache and past is not None and cached + 1 <= model.max_len:
            logits, present = model(ids[:, -1:], past)
            past = present if update else past
        elif feed == "last" and past is not None:
            logits, _ = model(ids[:, -1:])
        else:
            logits, past = model(ids[:, -model.max_len :], None)
        token = _sample(logits[:, position], temperature, top_k, top_p, generator)
        ids = torch.cat([ids, token[:, None]], dim=1)
        if not use_cache and feed != "last":
            past = None
    return ids


def _generate_mistakes() -> list[tuple[str, dict]]:
    return [
        (
            "after the first step only the newest token goes in, but without the cache: the "
            "model then sees one token and nothing before it. Pass the cache (past) it returned, "
            "or the whole sequence without a cache",
            {"feed": "last", "use_cache": False},
        ),
        (
            "the next token is taken from the FIRST position's logits; the last position "
            "(logits[:, -1]) predicts what comes next",
            {"position": 0},
        ),
        (
            "the cache is not updated: pass the `present` the model returned as the next `past`",
            {"update": False},
        ),
    ]


def check_generate(
    student: Callable,
    reference: Callable,
    prompt: Tensor,
    max_new_tokens: int,
    *,
    model_seed: int = 0,
    vocab_size: int = 11,
    max_len: int = 8,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    part: str = "tokens",
    label: str = "",
    forbidden: Mapping[str, str] = {},
    name: str = "generate",
) -> bool:
    """Run ``student(model, prompt, max_new_tokens, ...)`` on a :class:`TinyLM`, with and
    without the cache, and compare with the reference for a generator seeded alike.

    The student's ``generate`` calls the student's ``sample_next_token`` (the instructor's
    sandboxed grading cannot swap it for a correct one, so nothing does). ``part="tokens"``
    compares the tokens (both values of ``use_cache``); ``part="cache"`` also checks how the
    model is called: with the cache, only the newest token after the first step; without it,
    ``past=None`` and the whole (cropped) sequence every step.
    """
    __tracebackhide__ = True
    if part not in ("tokens", "cache"):
        raise ValueError(f"part must be 'tokens' or 'cache', got {part!r}")
    model = TinyLM(vocab_size, max_len, seed=model_seed)
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    sampling = {k: v for k, v in sampling.items() if v is not None}
    for use_cache in (True, False):
        kwargs = sampling | {"use_cache": use_cache}
        header = _header(
            name, (model, prompt, max_new_tokens), kwargs | {"generator": _Seeded(seed)}, label
        )
        expected = reference(
            model,
            prompt.clone(),
            max_new_tokens,
            **kwargs,
            generator=torch.Generator().manual_seed(seed),
        )

        def run(kwargs: dict = kwargs) -> Any:
            model.calls.clear()
            with _labelled(label):
                return call(
                    _with_generator(student, seed),
                    model,
                    prompt,
                    max_new_tokens,
                    name=name,
                    forbidden=forbidden,
                    **kwargs,
                )

        got = run()
        calls = list(model.calls)
        problem = diagnose(got, expected, path="the output")
        if problem and isinstance(got, Tensor) and got.shape == expected.shape:
            if not torch.equal(got[:, : prompt.size(1)], prompt):
                problem += "; the output must start with the prompt, unchanged"
        if problem:
            hint = None
            if isinstance(got, Tensor) and got.dim() == 2 and got.size(1) == max_new_tokens:
                hint = "return the prompt followed by the new tokens, (B, T0 + max_new_tokens)"
            elif temperature > 0 and isinstance(got, Tensor):
                again = run()
                if isinstance(again, Tensor) and not torch.equal(again, got):
                    hint = (
                        "two runs with generators seeded alike gave different tokens: pass "
                        "`generator` on to sample_next_token"
                    )
            if hint is None:
                wrong = [
                    (
                        description,
                        lambda knobs=knobs, kwargs=kwargs: _generate(
                            model,
                            prompt.clone(),
                            max_new_tokens,
                            **(kwargs | {k: v for k, v in knobs.items() if k == "use_cache"}),
                            generator=torch.Generator().manual_seed(seed),
                            **{k: v for k, v in knobs.items() if k != "use_cache"},
                        ),
                    )
                    for description, knobs in _generate_mistakes()
                ]
                hint = _explain(got, expected, wrong, {"rtol": 0, "atol": 0})
            if hint is None:
                hint = (
                    "this test runs your sample_next_token too: make its tests pass first; then "
                    "check that each step feeds the model what it needs and takes the last "
                    "position's logits"
                )
            raise _fail(header, problem, hint)
        if part == "cache":
            problem = _cache_use_problem(calls, prompt.size(1), max_new_tokens, max_len, use_cache)
            if problem:
                raise GradingError(f"{header}:\n  {problem}")
    return True


def _cache_use_problem(
    calls: list[tuple[int, int]], t0: int, new: int, max_len: int, use_cache: bool
) -> str | None:
    """How ``generate`` called the model, compared with what the cache (or its absence) needs."""
    if new > 0 and not calls:
        return "the model was never called"
    if use_cache:
        for step, (t_new, t_past) in enumerate(calls[1:], start=2):
            length = t0 + step - 1  # tokens in the sequence before this step's draw
            if length > max_len:
                break  # past max_len the cache starts afresh: anything that gives the tokens
            if t_past == 0:
                return (
                    f"with use_cache=True, call {step} of the model got no cache (past=None); "
                    "after the first step pass the cache the model returned as `past`"
                )
            if t_new != 1:
                return (
                    f"with use_cache=True, call {step} of the model got {t_new} new tokens with a "
                    "cache; after the first step feed only the newest token (ids[:, -1:]), its "
                    "keys and values join the cache"
                )
        return None
    for step, (t_new, t_past) in enumerate(calls, start=1):
        if t_past:
            return (
                f"with use_cache=False, call {step} of the model got a cache of {t_past} "
                "positions; without the cache pass past=None and the whole sequence"
            )
        want = min(t0 + step - 1, max_len)
        if t_new != want:
            return (
                f"with use_cache=False, call {step} of the model got {t_new} tokens, expected "
                f"the whole sequence so far cropped to max_len={max_len}, {want} tokens"
            )
    return None

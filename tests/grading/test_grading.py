"""The checkers of course_lib.grading: each diagnosis fires on its mistake and says the right
thing, and a correct answer passes quietly."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from course_lib import attention as ref_attention
from course_lib import grading as G
from course_lib import self_attention as ref_self

GEN = torch.Generator().manual_seed(0)
X = torch.randn(3, 4, generator=GEN)
Q, K = torch.randn(2, 3, 4, generator=GEN), torch.randn(2, 5, 4, generator=GEN)


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(G.GradingError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_seed_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(G.SEED_ENV, raising=False)
    assert G.grading_seed() == G.DEFAULT_SEED
    default = torch.randn(3, generator=G.hidden_generator("x"))
    monkeypatch.setenv(G.SEED_ENV, "31337")
    assert G.grading_seed() == 31337
    other = torch.randn(3, generator=G.hidden_generator("x"))
    assert not torch.equal(default, other)
    assert torch.equal(other, torch.randn(3, generator=G.hidden_generator("x")))
    assert G.hidden_random("x").random() == G.hidden_random("x").random()
    monkeypatch.setenv(G.SEED_ENV, "a secret phrase")  # any text: hashed to a number
    phrase = G.grading_seed()
    assert phrase == G.grading_seed() and phrase not in (G.DEFAULT_SEED, 31337)
    monkeypatch.setenv(G.SEED_ENV, "another phrase")
    assert G.grading_seed() != phrase


@pytest.mark.parametrize(
    ("got", "expected", "needle"),
    [
        (None, torch.zeros(2), "forget to `return`"),
        ([0.0, 0.0], torch.zeros(2), "should be a torch.Tensor"),
        (torch.zeros(2, 4, 3), torch.zeros(2, 3, 4), "axis 1 (= -2) has size 4 instead of 3"),
        (torch.zeros(2, 4, 3), torch.zeros(2, 3, 4), "transposed or permuted"),
        (torch.zeros(6), torch.zeros(2, 3), "same number of elements"),
        (torch.zeros(2), torch.zeros(2, 1), "keepdim"),
        (torch.zeros(2, dtype=torch.float64), torch.zeros(2), "float64, expected float32"),
        (torch.zeros(2, dtype=torch.long), torch.zeros(2), "convert with .float()"),
        (torch.tensor([0.0, math.nan]), torch.zeros(2), "NaN at 1 of 2 positions"),
        (torch.tensor([math.inf, 0.0]), torch.zeros(2), "inf at 1 of 2"),
        (torch.tensor([[0.0, 0.5]]), torch.zeros(1, 2), "largest error is 0.5 at index (0, 1)"),
        (torch.tensor([1, 3]), torch.tensor([1, 2]), "first is at index (1,)"),
        ("cafe", "café", "first at character 3"),
        ([1, 2], [1, 2, 3], "has 2 items, expected 3"),
        ({"a": 1}, {"a": 1, "b": 2}, "missing (e.g. 'b')"),
        (torch.tensor(1.0), 1.0, "use .item()"),
    ],
)
def test_diagnose_names_the_problem(got, expected, needle: str) -> None:
    problem = G.diagnose(got, expected)
    assert problem is not None and needle in problem, problem


def test_diagnose_accepts_the_right_answer() -> None:
    assert G.diagnose(torch.ones(2) + 1e-7, torch.ones(2)) is None
    assert G.diagnose((torch.ones(1), [1, "a"]), (torch.ones(1), [1, "a"])) is None
    assert G.diagnose(torch.tensor([math.nan]), torch.tensor([math.nan])) is None
    assert G.check_close(torch.ones(3), torch.ones(3))
    with pytest.raises(G.GradingError, match="the weights has shape"):
        G.check_close(torch.ones(2), torch.ones(3), what="the weights")


def test_the_values_are_not_given_away() -> None:
    expected = torch.tensor([0.123456, 0.654321])
    problem = G.diagnose(torch.tensor([0.123456, 0.9]), expected)
    assert "0.654321" not in problem and "0.9" in problem


def _good_softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)


def test_softmax_over_the_wrong_axis_is_named() -> None:
    def wrong_axis(x, dim=-1):
        return _good_softmax(x, 0)

    msg = _message(
        G.check_function,
        wrong_axis,
        ref_attention.softmax,
        [G.Case(X, label="rows")],
        mistakes=G.softmax_mistakes(),
    )
    assert "softmax(x=float32 tensor of shape (3, 4)) [rows]" in msg
    assert "wrong axis" in msg
    assert G.check_function(_good_softmax, ref_attention.softmax, [G.Case(X)])


def test_unstable_softmax_reports_nan() -> None:
    def naive(x, dim=-1):
        return torch.exp(x) / torch.exp(x).sum(dim, keepdim=True)

    msg = _message(G.check_function, naive, ref_attention.softmax, [G.Case(X * 1e4)])
    assert "NaN" in msg and "overflowing" in msg


def _wrong(**knobs):
    def attention_weights(query, key, attn_mask=None, is_causal=False, *, scale=None):
        return _weights(query, key, attn_mask, is_causal, scale=scale, **knobs)

    return attention_weights


@pytest.mark.parametrize(
    ("mistake", "needle"),
    [
        (_wrong(scale_to=1.0), "not scaled"),
        (_wrong(dim=-2), "over the queries"),
        (_wrong(invert=True), "polarity"),
        (_wrong(diagonal=-1), "shifted by one"),
    ],
)
def test_attention_mistakes_are_named(mistake, needle: str) -> None:
    mask = torch.rand(3, 5, generator=GEN) > 0.3
    mask[:, 0] = True
    cases = [G.Case(Q, K, mask), G.Case(Q, K, is_causal=True)]
    msg = _message(
        G.check_function,
        mistake,
        ref_attention.attention_weights,
        cases,
        mistakes=G.attention_mistakes(with_value=False),
        name="attention_weights",
    )
    assert needle in msg, msg


def _weights(
    q, k, mask=None, causal=False, *, scale=None, scale_to=None, dim=-1, invert=False, diagonal=0
):
    scale = 1 / math.sqrt(q.size(-1)) if scale is None else scale
    scale = scale if scale_to is None else scale_to
    scores = q @ k.transpose(-2, -1) * scale
    if causal:
        mask = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril(diagonal)
    if mask is not None:
        scores = scores.masked_fill(mask if invert else ~mask, -math.inf)
    return _good_softmax(scores, dim).nan_to_num(0.0)


def test_future_leak_is_caught_and_causal_passes() -> None:
    v = torch.randn(2, 5, 4, generator=GEN)

    def leaky(query, key, value, attn_mask=None, is_causal=False):
        return ref_attention.scaled_dot_product_attention(query, key, value)

    inputs = {"query": K, "key": K.clone(), "value": v}
    msg = _message(G.check_no_future_leak, leaky, inputs, is_causal=True)
    assert "leaks the future" in msg and "position 0" in msg
    assert G.check_no_future_leak(
        ref_attention.scaled_dot_product_attention, inputs, is_causal=True
    )


def test_in_place_modification_is_caught() -> None:
    def sgd(params, grads, lr):
        for p, g in zip(params, grads):
            p -= lr * g
        return params

    msg = _message(G.call, sgd, [torch.ones(2)], [torch.ones(2)], 0.1)
    assert "modified its input in place" in msg and "argument params[0] were overwritten" in msg


def test_forbidden_functions_are_blocked_even_when_aliased_or_caught() -> None:
    forbidden = G.NO_SOFTMAX | G.no_reference(ref_attention)

    def uses_torch(x, dim=-1):
        return torch.softmax(x, dim)

    def uses_method(x, dim=-1):
        return x.softmax(dim)

    def uses_reference(x, dim=-1):
        return ref_attention.softmax(x, dim)

    def swallows(x, dim=-1):
        try:
            return torch.nn.functional.softmax(x, dim)
        except Exception:
            return _good_softmax(x, dim)

    for fn in (uses_torch, uses_method, uses_reference, swallows):
        msg = _message(G.call, fn, X, forbidden=forbidden)
        assert "does not allow" in msg, (fn.__name__, msg)
    msg = _message(G.call, ref_attention.softmax, X, forbidden=forbidden, name="softmax")
    assert "is course_lib.attention itself" in msg
    # everything is restored afterwards, and an honest implementation passes
    assert torch.softmax(X, -1).shape == X.shape and X.softmax(-1).shape == X.shape
    assert G.call(_good_softmax, X, forbidden=forbidden).shape == X.shape


def test_warnings_and_stderr_are_swallowed(capfd: pytest.CaptureFixture) -> None:
    import sys

    def noisy(x):
        warnings.warn("harmless", UserWarning, stacklevel=1)
        print("debug", file=sys.stderr)
        return x

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the checker would raise here
        assert G.check_function(noisy, lambda x: x, [G.Case(X)])
    assert capfd.readouterr().err == ""


def test_not_implemented_and_crashes_are_explained() -> None:
    def blank(x):
        raise NotImplementedError()

    assert "not implemented yet" in _message(G.call, blank, X)

    def crashes(x):
        return x @ torch.ones(5)

    msg = _message(G.call, crashes, X, name="f")
    assert "f(x=float32 tensor of shape (3, 4)) raised RuntimeError" in msg


def test_check_raises() -> None:
    def silent(d):
        return d

    def raises(d):
        raise ValueError(f"d_model={d} is odd")

    def mute(d):
        raise ValueError()

    assert G.check_raises(raises, ValueError, 3, why="odd")
    assert "instead of raising ValueError" in _message(
        G.check_raises, silent, ValueError, 3, why="odd"
    )
    assert "without a message" in _message(G.check_raises, mute, ValueError, 3, why="odd")
    assert "should mention" in _message(
        G.check_raises, raises, ValueError, 3, why="x", match="even"
    )


def test_module_structure_and_mistakes() -> None:
    cases = [G.Case(torch.randn(2, 4, 6, generator=GEN))]
    assert G.check_module(ref_self.SelfAttention, ref_self.SelfAttention, {"d_model": 6}, cases)

    class Renamed(nn.Module):
        def __init__(self, d_model, d_k=None, d_v=None, bias=False):
            super().__init__()
            self.query = nn.Linear(d_model, d_model, bias=bias)

    msg = _message(G.check_module, Renamed, ref_self.SelfAttention, {"d_model": 6}, cases)
    assert "no parameter `q_proj.weight`" in msg

    class Swapped(ref_self.SelfAttention):
        pass

    msg = _message(
        G.check_module,
        Swapped,
        ref_self.SelfAttention,
        {"d_model": 6},
        cases,
        forbidden=G.no_reference(ref_self),
    )
    assert "subclasses course_lib.self_attention.SelfAttention" in msg

    class Unscaled(nn.Module):
        def __init__(self, d_model, d_k=None, d_v=None, bias=False):
            super().__init__()
            self.q_proj = nn.Linear(d_model, d_model, bias=bias)
            self.k_proj = nn.Linear(d_model, d_model, bias=bias)
            self.v_proj = nn.Linear(d_model, d_model, bias=bias)

        def forward(self, x, attn_mask=None, is_causal=False):
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
            return _good_softmax(q @ k.transpose(-2, -1)) @ v

    msg = _message(
        G.check_module,
        Unscaled,
        ref_self.SelfAttention,
        {"d_model": 6},
        cases,
        mistakes=G.projection_mistakes(cross=False),
    )
    assert "not scaled" in msg


def test_select_compares_one_part() -> None:
    def ref(p, t):
        return (p - t).pow(2).mean(), 2 * (p - t) / p.numel()

    def wrong_grad(p, t):
        return (p - t).pow(2).mean(), 2 * (p - t)

    cases = [G.Case(torch.ones(3), torch.zeros(3))]
    assert G.check_function(wrong_grad, ref, cases, select=0, what="the loss")
    assert "the gradient has" in _message(
        G.check_function, wrong_grad, ref, cases, select=1, what="the gradient"
    )
    assert "tuple of 2 items" in _message(
        G.check_function, lambda p, t: p, ref, cases, select=1, name="mse"
    )

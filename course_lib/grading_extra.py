"""Checkers and mistake hypotheses for the graded notebooks of chapters 07–12.

Everything here follows the conventions of :mod:`course_lib.grading` (read its docstring):
checkers call student code only through :func:`course_lib.grading.call`, return ``True`` or
raise :class:`~course_lib.grading.GradingError` with a diagnosis that does not give the answer
away, and a :class:`~course_lib.grading.Mistake` turns "values are off" into "this looks like
<a known mistake>". What this module adds:

- :func:`check_numpy_function`: :func:`~course_lib.grading.check_function` for functions that
  return numpy arrays and numpy scalars (chapter 11's metrics);
- :func:`check_loader`: for functions that fill a module's weights in place
  (``load_torch_mha``): compares the state dict afterwards;
- :func:`check_mask_tokens`: statistical checks of BERT's random 80/10/10 masking, which
  cannot be compared draw for draw with the reference (a correct solution may draw its random
  numbers in another order);
- :func:`check_benchmark`: runs ``benchmark`` against a fake clock, so timings are known exactly;
- ``*_mistakes()``: the known wrong versions of each chapter's functions.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import statistics
import sys
import time
import timeit
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import grading as G
from course_lib.grading import Case, GradingError, Mistake

__all__ = [
    "check_numpy_function",
    "check_loader",
    "check_mask_tokens",
    "check_benchmark",
    "NO_TORCH_LAYER_NORM",
    "NO_TORCH_CROSS_ENTROPY",
    "NO_METRIC_LIBRARIES",
    "loaded_only",
    "causal_mask_mistakes",
    "padding_mask_mistakes",
    "combine_masks_mistakes",
    "additive_mask_mistakes",
    "shift_right_mistakes",
    "split_heads_mistakes",
    "merge_heads_mistakes",
    "mha_mistakes",
    "load_mha_mistakes",
    "layer_norm_mistakes",
    "feed_forward_mistakes",
    "encoder_layer_mistakes",
    "count_parameters_mistakes",
    "causal_lm_labels_mistakes",
    "cross_entropy_mistakes",
    "few_shot_mistakes",
    "confusion_matrix_mistakes",
    "prfs_mistakes",
    "get_entities_mistakes",
    "entity_f1_mistakes",
    "squad_em_mistakes",
    "squad_f1_mistakes",
    "power_law_mistakes",
    "flops_mistakes",
    "memory_mistakes",
]

NO_TORCH_LAYER_NORM: dict[str, str] = {
    path: "compute the mean and variance yourself"
    for path in (
        "torch.nn.functional.layer_norm",
        "torch.layer_norm",
        "torch.nn.LayerNorm",
    )
}
NO_TORCH_CROSS_ENTROPY: dict[str, str] = {
    path: "compute the loss from log-probabilities yourself"
    for path in (
        "torch.nn.functional.cross_entropy",
        "torch.nn.functional.nll_loss",
        "torch.nn.CrossEntropyLoss",
        "torch.nn.NLLLoss",
    )
}
NO_METRIC_LIBRARIES: dict[str, str] = {
    "sklearn.metrics.confusion_matrix": "count the pairs yourself",
    "sklearn.metrics.precision_recall_fscore_support": "count TP, FP and FN yourself",
    "sklearn.metrics.f1_score": "count TP, FP and FN yourself",
    "seqeval.metrics.f1_score": "match the entities yourself",
    "seqeval.metrics.sequence_labeling.get_entities": "read the tags yourself",
}


def loaded_only(forbidden: Mapping[str, str]) -> dict[str, str]:
    """The entries of ``forbidden`` whose package is already imported.

    Importing scikit-learn just to block it would cost a test cell a second or more; code that
    never imported a library cannot call it (an ``import`` inside the student's function body,
    at call time, is the one way around this).
    """
    return {p: why for p, why in forbidden.items() if p.split(".")[0] in sys.modules}


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _header(name: str, args: tuple, kwargs: dict, label: str = "") -> str:
    parts = [G.describe(a) for a in args] + [f"{k}={G.describe(v)}" for k, v in kwargs.items()]
    text = f"{name}({', '.join(parts)})"
    return f"{text} [{label}]" if label else text


def _clone(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _explain(got: Any, expected: Any, wrong_results: Iterable[tuple[str, Callable]], tol: dict):
    """The first mistake whose result equals ``got`` while differing from ``expected``."""
    for description, compute in wrong_results:
        try:
            with G.quiet():
                wrong = compute()
        except Exception:
            continue  # this mistake cannot happen for these arguments
        if G.diagnose(got, wrong, **tol) is None and G.diagnose(wrong, expected, **tol):
            return description
    return None


def _fail(header: str, problem: str, hint: str | None) -> GradingError:
    msg = f"{header}:\n  {problem}"
    if hint:
        msg += f"\n  Likely cause: {hint}"
    return GradingError(msg)


# ---------------------------------------------------------------------------------------------
# numpy results (chapter 11)
# ---------------------------------------------------------------------------------------------


def _numpy_problem(got: Any, expected: Any, path: str) -> str | None:
    """The result must be a numpy array wherever the reference returns one."""
    if isinstance(expected, np.ndarray) and not isinstance(got, np.ndarray):
        return (
            f"{path} should be a numpy array (np.ndarray) but is {G.describe(got)}; build it "
            "with np.zeros / np.array"
        )
    if isinstance(expected, tuple | list) and isinstance(got, tuple | list):
        for i, (a, b) in enumerate(zip(got, expected)):
            problem = _numpy_problem(a, b, f"{path}[{i}]")
            if problem:
                return problem
    return None


def _to_torch(value: Any) -> Any:
    """numpy arrays -> tensors and numpy scalars -> Python numbers, for grading.diagnose."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return type(value)(_to_torch(v) for v in value)
    return value


def check_numpy_function(
    student: Callable,
    reference: Callable,
    cases: Iterable[Case],
    *,
    mistakes: Iterable[Mistake] = (),
    forbidden: Mapping[str, str] = {},
    rtol: float = 1e-7,
    atol: float = 1e-9,
    what: str = "the result",
    name: str | None = None,
) -> bool:
    """:func:`course_lib.grading.check_function` for results that are numpy arrays or scalars."""
    __tracebackhide__ = True
    name = name or reference.__name__
    mistakes = list(mistakes)
    tol = {"rtol": rtol, "atol": atol}
    for case in cases:
        expected_raw = reference(*_clone(case.args), **_clone(case.kwargs))
        got_raw = G.call(
            student, *_clone(case.args), name=name, forbidden=forbidden, **_clone(case.kwargs)
        )
        header = _header(name, case.args, case.kwargs, case.label)
        problem = _numpy_problem(got_raw, expected_raw, what)
        if problem:
            raise GradingError(f"{header}:\n  {problem}")
        got, expected = _to_torch(got_raw), _to_torch(expected_raw)
        problem = G.diagnose(got, expected, path=what, **tol)
        if problem:
            wrong = [
                (
                    m.description,
                    lambda m=m, c=case: _to_torch(m.fn(*_clone(c.args), **_clone(c.kwargs))),
                )
                for m in mistakes
            ]
            raise _fail(header, problem, _explain(got, expected, wrong, tol))
    return True


# ---------------------------------------------------------------------------------------------
# Loading weights in place (chapter 08)
# ---------------------------------------------------------------------------------------------


def _state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def check_loader(
    student: Callable,
    reference: Callable,
    build: Callable[[], tuple],
    *,
    mistakes: Iterable[Mistake] = (),
    forbidden: Mapping[str, str] = {},
    name: str | None = None,
    label: str = "",
) -> bool:
    """``student(target, source)`` must leave ``target`` with the weights ``reference`` gives it.

    ``build()`` returns fresh ``(target, source, ...)`` modules (the same weights every call);
    the source must not be changed. Mistakes load wrongly into the target they are given.
    """
    __tracebackhide__ = True
    name = name or reference.__name__
    want_args = build()
    reference(*want_args)
    expected = _state(want_args[0])
    args = build()
    before = [_state(a) for a in args[1:] if isinstance(a, nn.Module)]
    G.call(student, *args, name=name, forbidden=forbidden)
    header = _header(name, args, {}, label)
    after = [_state(a) for a in args[1:] if isinstance(a, nn.Module)]
    if G.diagnose(after, before) is not None:
        raise GradingError(
            f"{header}:\n  the source module was changed; copy its weights without modifying it"
        )
    got = _state(args[0])
    tol = {"rtol": 1e-6, "atol": 1e-7}
    problem = G.diagnose(got, expected, path="the loaded state_dict", **tol)
    if problem:

        def wrong_state(m: Mistake) -> dict[str, Tensor]:
            fresh = build()
            m.fn(*fresh)
            return _state(fresh[0])

        wrong = [(m.description, lambda m=m: wrong_state(m)) for m in mistakes]
        raise _fail(header, problem, _explain(got, expected, wrong, tol))
    return True


# ---------------------------------------------------------------------------------------------
# BERT's random masking (chapter 10): statistics, not draws
# ---------------------------------------------------------------------------------------------


def _fraction_problem(what: str, got: float, want: float, n: int, why: str) -> str | None:
    # five standard deviations of a binomial proportion, plus a little slack
    tol = 5 * math.sqrt(max(want * (1 - want), 1e-4) / max(n, 1)) + 0.01
    if abs(got - want) <= tol:
        return None
    return f"{what} is {got:.1%} over {n} positions, expected about {want:.0%}: {why}"


def check_mask_tokens(
    student: Callable,
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    special_tokens_mask: Tensor | None = None,
    seed: int = 0,
    part: str = "selection",
    forbidden: Mapping[str, str] = {},
    name: str = "mask_tokens",
) -> bool:
    """Check ``mask_tokens`` by the properties every correct implementation has.

    ``part="selection"``: the outputs' shapes and dtypes, labels (-100 except at the selected
    positions, where they hold the original id), special tokens never selected, unselected
    positions unchanged, about ``mlm_probability`` selected, the generator is the only source
    of randomness. ``part="replacement"``: among the selected positions about 80 % [MASK],
    10 % a random id drawn uniformly from [0, vocab_size), 10 % unchanged.
    Use a few thousand ordinary tokens so the fractions are reliable.
    """
    __tracebackhide__ = True
    if part not in ("selection", "replacement"):
        raise ValueError(f"part must be 'selection' or 'replacement', got {part!r}")
    kwargs = dict(
        mask_token_id=mask_token_id,
        vocab_size=vocab_size,
        mlm_probability=mlm_probability,
        special_tokens_mask=special_tokens_mask,
    )
    header = _header(name, (input_ids,), {k: v for k, v in kwargs.items() if v is not None})

    def run(generator_seed: int) -> tuple[Tensor, Tensor]:
        # The generator's state advances during the call, which grading.call would report as
        # "modified in place": bind it with partial (keeping the notebook namespace, so that
        # aliases of forbidden functions are still blocked).
        bound = functools.partial(student, generator=torch.Generator().manual_seed(generator_seed))
        bound.__globals__ = getattr(student, "__globals__", {})
        result = G.call(bound, input_ids, name=name, forbidden=forbidden, **kwargs)
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise GradingError(
                f"{header}:\n  return a tuple (inputs, labels), got {G.describe(result)}"
            )
        for what, value in zip(("inputs", "labels"), result):
            problem = None
            if not isinstance(value, Tensor) or value.shape != input_ids.shape:
                problem = G.diagnose(value, input_ids, path=what)
            elif value.dtype != input_ids.dtype:
                problem = (
                    f"{what} has dtype {value.dtype}, expected {input_ids.dtype} like input_ids"
                )
            if problem:
                raise GradingError(f"{header}:\n  {problem}")
        return result[0], result[1]

    inputs, labels = run(seed)
    special = (
        torch.zeros_like(input_ids, dtype=torch.bool)
        if special_tokens_mask is None
        else special_tokens_mask.bool()
    )
    selected = labels != -100
    ordinary = int((~special).sum())
    problems: list[str] = []
    if part == "selection":
        if (selected & (labels != input_ids)).any():
            problems.append(
                "at a selected position the label must be the ORIGINAL token id (what the model "
                "has to predict), not the replacement"
            )
        if (selected & special).any():
            problems.append(
                f"{int((selected & special).sum())} special tokens were selected; positions "
                "flagged in special_tokens_mask must never be masked (their label stays -100)"
            )
        if (~selected & (inputs != input_ids)).any():
            problems.append(
                "a position that was not selected (label -100) changed in inputs; only the "
                "selected positions may be replaced"
            )
        if not problems:
            problem = _fraction_problem(
                "the share of ordinary tokens selected (label != -100)",
                int(selected.sum()) / max(ordinary, 1),
                mlm_probability,
                ordinary,
                "each ordinary position is selected with probability mlm_probability, and every "
                "other label is -100",
            )
            if problem:
                problems.append(problem)
        if not problems:
            again, again_labels = run(seed)
            if not (torch.equal(again, inputs) and torch.equal(again_labels, labels)):
                problems.append(
                    "two calls with generators seeded alike gave different results: draw every "
                    "random number from `generator` (torch.rand(..., generator=generator), "
                    "torch.bernoulli(p, generator=generator), torch.randint(..., "
                    "generator=generator))"
                )
            other, other_labels = run(seed + 1)
            random = 0.0 < mlm_probability < 1.0 and ordinary > 0
            if random and torch.equal(other_labels, labels) and torch.equal(other, inputs):
                problems.append(
                    "generators with different seeds gave identical results: the random choices "
                    "must come from `generator`"
                )
    else:
        n = int(selected.sum())
        if n == 0:
            raise GradingError(f"{header}:\n  no position was selected (every label is -100)")
        became_mask = selected & (inputs == mask_token_id) & (input_ids != mask_token_id)
        unchanged = selected & (inputs == input_ids)
        randomised = selected & ~became_mask & ~unchanged
        checks = [
            (
                "the share of selected positions replaced by [MASK]",
                became_mask,
                0.8,
                "about 80 % of the selected positions become mask_token_id",
            ),
            (
                "the share of selected positions replaced by another token",
                randomised,
                0.1,
                "10 % of the selected positions get a random token id",
            ),
            (
                "the share of selected positions left unchanged",
                unchanged,
                0.1,
                "10 % of the selected positions keep their original token",
            ),
        ]
        for what, where, want, why in checks:
            problem = _fraction_problem(what, int(where.sum()) / n, want, n, why)
            if problem:
                problems.append(problem)
        random_ids = inputs[randomised]
        if not problems and random_ids.numel():
            low, high = int(random_ids.min()), int(random_ids.max())
            if low < 0 or high >= vocab_size:
                problems.append(
                    f"a random replacement id is outside [0, vocab_size={vocab_size}) (you have "
                    f"{low if low < 0 else high})"
                )
            elif random_ids.numel() >= 30:
                mean = float(random_ids.double().mean())
                spread = 5 * vocab_size / math.sqrt(12 * random_ids.numel()) + 1
                if abs(mean - (vocab_size - 1) / 2) > spread:
                    problems.append(
                        f"the random replacement ids average {mean:.0f}, but ids drawn uniformly "
                        f"from [0, vocab_size={vocab_size}) average about {(vocab_size - 1) / 2:.0f}:"
                        " draw them from the whole vocabulary, not from the input ids or a "
                        "smaller range"
                    )
    if problems:
        raise GradingError(f"{header}:\n  " + "\n  ".join(problems))
    return True


# ---------------------------------------------------------------------------------------------
# Timing with a fake clock (chapter 12)
# ---------------------------------------------------------------------------------------------

_CLOCKS = (
    (time, "perf_counter", 1.0),
    (time, "monotonic", 1.0),
    (time, "time", 1.0),
    (time, "process_time", 1.0),
    (time, "thread_time", 1.0),
    (timeit, "default_timer", 1.0),
    (time, "perf_counter_ns", 1e9),
    (time, "monotonic_ns", 1e9),
    (time, "time_ns", 1e9),
    (time, "process_time_ns", 1e9),
)


ACTIVE_CLOCK: contextvars.ContextVar[_FakeClock | None] = contextvars.ContextVar(
    "ACTIVE_CLOCK", default=None
)
"""The fake clock being installed, so that a sandboxed student process can read the same time."""


class _FakeClock:
    """A clock that only moves when the timed function runs: every duration is known."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 1000.0
        self.durations = durations
        self.calls: list[tuple] = []

    def workload(self, *args: Any) -> int:
        """The function under test: advances the clock by its next duration."""
        i = len(self.calls)
        self.calls.append(args)
        self.now += self.durations[i] if i < len(self.durations) else 1.0
        return i

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in _CLOCKS]
        token = ACTIVE_CLOCK.set(self)  # `course grade` runs the student's code elsewhere
        try:
            for owner, attr, factor in _CLOCKS:
                if factor == 1.0:
                    setattr(owner, attr, lambda: self.now)
                else:
                    setattr(owner, attr, lambda f=factor: int(round(self.now * f)))
            yield
        finally:
            ACTIVE_CLOCK.reset(token)
            for owner, attr, original in saved:
                setattr(owner, attr, original)


def _benchmark_mistakes(timed: list[float], all_samples: list[float]) -> list[tuple[str, Any]]:
    """What the usual wrong statistics give for these samples."""
    q25, q75 = np.percentile(timed, [25, 75])
    median = statistics.median(timed)
    right = {"median_s": median, "iqr_s": float(q75 - q25), "min_s": min(timed)}
    wq25, wq75 = np.percentile(all_samples, [25, 75])
    lower = sorted(timed)[(len(timed) - 1) // 2]
    return [
        (
            "the warm-up calls were timed too: time only the `repeats` calls after the warm-up",
            {
                "median_s": statistics.median(all_samples),
                "iqr_s": float(wq75 - wq25),
                "min_s": min(all_samples),
            },
        ),
        (
            "this is the mean, not the median (one slow outlier moves the mean a lot)",
            right | {"median_s": statistics.fmean(timed)},
        ),
        (
            "torch.median (and Tensor.median) return the LOWER of the two middle values for an "
            "even count; the median is the mean of the two middle samples (statistics.median, "
            "np.median)",
            right | {"median_s": lower},
        ),
        (
            "the spread is the standard deviation; the IQR is the 75th minus the 25th percentile",
            right | {"iqr_s": statistics.pstdev(timed)},
        ),
        (
            "the spread is the standard deviation; the IQR is the 75th minus the 25th percentile",
            right | {"iqr_s": statistics.stdev(timed)},
        ),
        (
            "the spread is max - min (the range); the IQR is the 75th minus the 25th percentile",
            right | {"iqr_s": max(timed) - min(timed)},
        ),
        (
            "the percentiles are not interpolated like np.percentile / torch.quantile (linear "
            "interpolation between the two nearest samples)",
            right
            | {
                "iqr_s": float(
                    np.percentile(timed, 75, method="nearest")
                    - np.percentile(timed, 25, method="nearest")
                )
            },
        ),
        (
            "the percentiles use statistics.quantiles' default 'exclusive' method; use "
            "np.percentile, torch.quantile or statistics.quantiles(..., method='inclusive')",
            right | {"iqr_s": (lambda q: q[2] - q[0])(statistics.quantiles(timed, n=4))},
        ),
    ]


def check_benchmark(
    student: Callable,
    reference: Callable,
    *,
    warmup: int | None = None,
    repeats: int | None = None,
    seed: int = 0,
    part: str = "statistics",
    label: str = "",
    forbidden: Mapping[str, str] = {},
    name: str = "benchmark",
) -> bool:
    """Run ``student(fn, 7, "x", warmup=..., repeats=...)`` against a fake clock.

    The timed ``fn`` advances every ``time`` clock by a known duration (warm-up calls by very
    long ones), so the right median, IQR and minimum are known exactly; the reference computes
    them from the same durations. ``part="calls"`` checks the number of calls, that ``fn`` got
    ``*args``, the keys and that the values are numbers with min <= median and iqr >= 0;
    ``part="statistics"`` also compares the three statistics. ``None`` leaves an argument at
    its default.
    """
    if part not in ("calls", "statistics"):
        raise ValueError(f"part must be 'calls' or 'statistics', got {part!r}")
    __tracebackhide__ = True
    gen = torch.Generator().manual_seed(seed)
    n_warm = 3 if warmup is None else warmup
    n_rep = 20 if repeats is None else repeats
    # skewed samples with a slow outlier, all distinct; warm-up calls are 100x slower
    timed = (torch.rand(n_rep, generator=gen) * 0.004 + 0.001).tolist()
    if n_rep >= 4:
        timed[int(torch.randint(n_rep, (1,), generator=gen))] = 0.05
    durations = [1.0 + 0.1 * i for i in range(n_warm)] + timed
    kwargs = {k: v for k, v in (("warmup", warmup), ("repeats", repeats)) if v is not None}
    args = (7, "x")
    ref_clock = _FakeClock(durations)
    with ref_clock.installed():
        expected = reference(ref_clock.workload, *args, **kwargs)
    clock = _FakeClock(durations)
    header = _header(name, ("fn", *args), kwargs, label)
    with clock.installed():
        got = G.call(student, clock.workload, *args, name=name, forbidden=forbidden, **kwargs)
    if len(clock.calls) != n_warm + n_rep:
        raise GradingError(
            f"{header}:\n  fn was called {len(clock.calls)} times; expected warmup + repeats = "
            f"{n_warm} + {n_rep} (the warm-up calls are not timed, but they are made)"
        )
    if any(c != args for c in clock.calls):
        raise GradingError(f"{header}:\n  fn must be called as fn(*args), with the arguments given")
    if isinstance(got, dict):
        got = {k: (v.item() if isinstance(v, Tensor | np.generic) else v) for k, v in got.items()}
    if part == "calls":
        if not isinstance(got, dict) or set(got) != set(expected):
            keys = sorted(got) if isinstance(got, dict) else G.describe(got)
            raise GradingError(
                f"{header}:\n  return a dict with exactly the keys {sorted(expected)}, got {keys}"
            )
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in got.values()):
            raise GradingError(f"{header}:\n  every value must be a Python float (seconds)")
        if not (got["min_s"] <= got["median_s"] and got["iqr_s"] >= 0):
            raise GradingError(
                f"{header}:\n  impossible statistics: the minimum must not exceed the median and "
                "the IQR is never negative"
            )
        return True
    tol = {"rtol": 1e-6, "atol": 1e-9}
    problem = G.diagnose(got, expected, path="the result", **tol)
    if problem:
        wrong = [(d, lambda r=r: r) for d, r in _benchmark_mistakes(timed, durations)]
        raise _fail(header, problem, _explain(got, expected, wrong, tol))
    return True


# ---------------------------------------------------------------------------------------------
# Mistakes, chapter 07: masks
# ---------------------------------------------------------------------------------------------


def causal_mask_mistakes() -> list[Mistake]:
    def tri(diagonal: int = 0, upper: bool = False, invert: bool = False, right: bool = False):
        def fn(T: int, S: int | None = None, device=None) -> Tensor:
            S = T if S is None else S
            ones = torch.ones(T, S, dtype=torch.bool)
            d = diagonal + (S - T if right else 0)
            m = ones.triu(d) if upper else ones.tril(d)
            return ~m if invert else m

        return fn

    return [
        Mistake("the mask is shifted by one: query i must also see key i (itself)", tri(-1)),
        Mistake("the mask is shifted by one: query i may see keys 0..i, not key i + 1", tri(1)),
        Mistake(
            "the mask is inverted: True means 'may attend', so True goes on and below the diagonal",
            tri(invert=True),
        ),
        Mistake(
            "the mask is transposed (upper triangle): query i (row i) sees keys 0..i, the "
            "columns up to i",
            tri(upper=True),
        ),
        Mistake(
            "the diagonal is aligned to the lower right (the KV-cache convention); here it is "
            "upper-left aligned like is_causal in F.scaled_dot_product_attention: query i sees "
            "keys 0..i whatever S is",
            tri(right=True),
        ),
    ]


def padding_mask_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "the polarity is inverted: attention_mask 1 marks a real token, which may be "
            "attended (True); 0 marks padding (False)",
            lambda attention_mask: (attention_mask == 0)[:, None, None, :],
        ),
        Mistake(
            "the key axis must be last: (B, 1, 1, S) broadcasts over heads and queries of "
            "(B, H, T, S) scores",
            lambda attention_mask: attention_mask.bool()[:, :, None, None],
        ),
        Mistake(
            "the key axis must be last: (B, 1, 1, S) broadcasts over heads and queries of "
            "(B, H, T, S) scores",
            lambda attention_mask: attention_mask.bool()[:, None, :, None],
        ),
    ]


def combine_masks_mistakes() -> list[Mistake]:
    def present(masks: tuple) -> list[Tensor]:
        return [m for m in masks if m is not None]

    def any_of(*masks: Tensor | None) -> Tensor:
        ms = present(masks)
        out = ms[0]
        for m in ms[1:]:
            out = out | m
        return out

    def first_two(*masks: Tensor | None) -> Tensor:
        ms = present(masks)
        return ms[0] & ms[1] if len(ms) > 1 else ms[0]

    return [
        Mistake(
            "the masks are combined with OR; a key stays visible only if EVERY mask allows it "
            "(AND)",
            any_of,
        ),
        Mistake("only the first two masks are combined; use all of them", first_two),
    ]


def additive_mask_mistakes() -> list[Mistake]:
    def fill(kept: float, blocked: float):
        def fn(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.where(
                mask, torch.tensor(kept, dtype=dtype), torch.tensor(blocked, dtype=dtype)
            )

        return fn

    return [
        Mistake(
            "the mask is inverted: kept (True) entries get 0.0 and blocked ones -inf",
            fill(float("-inf"), 0.0),
        ),
        Mistake(
            "blocked entries get a large finite number; use -inf so that exp() gives exactly 0 "
            "and a fully blocked row is not spread evenly",
            fill(0.0, -1e9),
        ),
        Mistake(
            "blocked entries get a large finite number; use -inf so that exp() gives exactly 0",
            fill(0.0, torch.finfo(torch.float32).min),
        ),
        Mistake(
            "multiplying by -inf gives NaN where the mask is False/0 (0 * -inf = nan); build the "
            "result with masked_fill or torch.where instead",
            lambda mask, dtype=torch.float32: (~mask).to(dtype) * float("-inf"),
        ),
    ]


def shift_right_mistakes() -> list[Mistake]:
    def start(labels: Tensor, start_token_id: int) -> Tensor:
        return torch.full((labels.size(0), 1), start_token_id, dtype=labels.dtype)

    return [
        Mistake("the labels were not shifted", lambda labels, start_token_id: labels.clone()),
        Mistake(
            "the labels are shifted left (the first one dropped); shift them right: the start "
            "token goes first and the LAST label is dropped",
            lambda labels, start_token_id: torch.cat(
                [labels[:, 1:], start(labels, start_token_id)], 1
            ),
        ),
        Mistake(
            "the labels are shifted by two positions; the decoder input at t is the label at t-1",
            lambda labels, start_token_id: torch.cat(
                [start(labels, start_token_id), start(labels, start_token_id), labels[:, :-2]], 1
            ),
        ),
        Mistake(
            "the first label was replaced by the start token instead of shifting everything "
            "one step right",
            lambda labels, start_token_id: torch.cat(
                [start(labels, start_token_id), labels[:, 1:]], 1
            ),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Mistakes, chapter 08: multi-head attention
# ---------------------------------------------------------------------------------------------


def split_heads_mistakes() -> list[Mistake]:
    def no_transpose(x: Tensor, num_heads: int) -> Tensor:
        B, T, D = x.shape
        return x.reshape(B, num_heads, T, D // num_heads)

    def interleaved(x: Tensor, num_heads: int) -> Tensor:
        B, T, D = x.shape
        return x.reshape(B, T, D // num_heads, num_heads).permute(0, 3, 1, 2)

    return [
        Mistake(
            "the tensor was reshaped straight to (B, H, T, Dh), which mixes tokens and features; "
            "split the LAST axis into (H, Dh) first, then move the head axis before time",
            no_transpose,
        ),
        Mistake(
            "the features are dealt out to the heads in turn (feature j to head j % H); head h "
            "gets the consecutive features h*Dh ... (h+1)*Dh - 1",
            interleaved,
        ),
    ]


def merge_heads_mistakes() -> list[Mistake]:
    def no_transpose(x: Tensor) -> Tensor:
        B, H, T, Dh = x.shape
        return x.reshape(B, T, H * Dh)

    def interleaved(x: Tensor) -> Tensor:
        B, H, T, Dh = x.shape
        return x.permute(0, 2, 3, 1).reshape(B, T, H * Dh)

    return [
        Mistake(
            "the heads were reshaped to (B, T, D) without moving the head axis back behind time "
            "first, which mixes tokens",
            no_transpose,
        ),
        Mistake(
            "the heads are interleaved feature by feature; concatenate them: head 0's Dh "
            "features, then head 1's, ...",
            interleaved,
        ),
    ]


def _mha(
    m: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    need_weights: bool = False,
    *,
    scale: str = "head",
    out_proj: bool = True,
    split: str = "right",
    merge: str = "right",
    weights: str = "per_head",
    invert: bool = False,
    dim: int = -1,
) -> tuple[Tensor, Tensor | None]:
    H = m.num_heads
    B, T, D = query.shape
    Dh = D // H

    def split_(x: Tensor) -> Tensor:
        b, t, _ = x.shape
        if split == "no_transpose":
            return x.reshape(b, H, t, Dh)
        return x.view(b, t, H, Dh).transpose(1, 2)

    q, k, v = split_(m.q_proj(query)), split_(m.k_proj(key)), split_(m.v_proj(value))
    s = {"head": 1 / math.sqrt(Dh), "model": 1 / math.sqrt(D), "none": 1.0}[scale]
    if is_causal:
        attn_mask = torch.ones(T, key.size(1), dtype=torch.bool).tril()
    elif invert and attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = ~attn_mask
    w = G._attend(q, k, None, attn_mask, s, dim=dim)  # (B, H, T, S)
    o = w @ v  # (B, H, T, Dh)
    o = o.reshape(B, T, D) if merge == "no_transpose" else o.transpose(1, 2).reshape(B, T, D)
    if out_proj:
        o = m.out_proj(o)
    if not need_weights:
        return o, None
    return o, (w.mean(1) if weights == "averaged" else w)


def mha_mistakes() -> list[Mistake]:
    """Wrong versions of ``MultiHeadAttention.forward`` (module first)."""

    def make(description: str, **knobs: Any) -> Mistake:
        return Mistake(description, lambda m, *a, **k: _mha(m, *a, **k, **knobs))

    return [
        make(
            "the scores are scaled by 1/√D (the model width); each head scales by 1/√Dh, the "
            "width of ITS queries and keys",
            scale="model",
        ),
        make("the scores are not scaled by 1/√Dh", scale="none"),
        make(
            "out_proj (W_O) is missing: after concatenating the heads, mix them with out_proj",
            out_proj=False,
        ),
        make(
            "the heads are split with a reshape straight to (B, H, T, Dh), without the transpose",
            split="no_transpose",
        ),
        make(
            "the heads are merged with a reshape straight to (B, T, D), without moving the head "
            "axis back behind time first",
            merge="no_transpose",
        ),
        make(
            "the weights are averaged over the heads (what nn.MultiheadAttention returns by "
            "default); return them per head, (B, H, T, S)",
            weights="averaged",
        ),
        make("the mask polarity is inverted: True means 'may attend'", invert=True),
        make(
            "the softmax runs over the queries; each query's weights over the keys sum to 1",
            dim=-2,
        ),
    ]


def load_mha_mistakes() -> list[Mistake]:
    """Wrong versions of ``load_torch_mha(module, torch_mha)``."""

    def load(order=(0, 1, 2), *, transpose=False, out=True, biases=True, dim=0):
        def fn(module: nn.Module, torch_mha: nn.MultiheadAttention) -> None:
            projections = (module.q_proj, module.k_proj, module.v_proj)
            with torch.no_grad():
                w = torch_mha.in_proj_weight.chunk(3, dim=dim)
                for proj, i in zip(projections, order):
                    proj.weight.copy_(w[i].T if transpose else w[i])
                if biases and torch_mha.in_proj_bias is not None:
                    b = torch_mha.in_proj_bias.chunk(3)
                    for proj, i in zip(projections, order):
                        proj.bias.copy_(b[i])
                if out:
                    module.out_proj.weight.copy_(torch_mha.out_proj.weight)
                    if biases and torch_mha.out_proj.bias is not None:
                        module.out_proj.bias.copy_(torch_mha.out_proj.bias)

        return fn

    swapped = (
        "the three blocks of in_proj_weight are assigned in the wrong order; they are stacked "
        "as [W_Q; W_K; W_V]"
    )
    return [
        Mistake(swapped, load((1, 0, 2))),
        Mistake(swapped, load((0, 2, 1))),
        Mistake(swapped, load((2, 1, 0))),
        Mistake(swapped, load((1, 2, 0))),
        Mistake(swapped, load((2, 0, 1))),
        Mistake(
            "the weights were transposed; nn.Linear and in_proj_weight both store (out, in)",
            load(transpose=True),
        ),
        Mistake("out_proj was not copied", load(out=False)),
        Mistake("the biases (in_proj_bias, out_proj.bias) were not copied", load(biases=False)),
        Mistake(
            "in_proj_weight (3D, D) was cut along the wrong axis; the three blocks are stacked "
            "along the rows (dim 0)",
            load(dim=1),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Mistakes, chapter 09: the transformer block
# ---------------------------------------------------------------------------------------------


def layer_norm_mistakes() -> list[Mistake]:
    def ln(*, unbiased=False, eps_outside=False, dim=-1, affine=True, swap=False):
        def fn(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
            mean = x.mean(dim, keepdim=True)
            var = x.var(dim, keepdim=True, unbiased=unbiased)
            std = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
            y = (x - mean) / std
            if not affine:
                return y
            return y * bias + weight if swap else y * weight + bias

        return fn

    return [
        Mistake(
            "the variance is the unbiased one (divided by D - 1); layer norm divides by D "
            "(unbiased=False, as F.layer_norm)",
            ln(unbiased=True),
        ),
        Mistake(
            "eps is added to the standard deviation; it belongs inside the square root: "
            "sqrt(var + eps)",
            ln(eps_outside=True),
        ),
        Mistake(
            "the statistics are taken over the wrong axis; normalise each token over its D "
            "features (the last axis)",
            ln(dim=-2),
        ),
        Mistake(
            "the statistics are taken over the wrong axis; normalise each token over its D "
            "features (the last axis)",
            ln(dim=0),
        ),
        Mistake("the learned scale (weight) and shift (bias) are not applied", ln(affine=False)),
        Mistake("weight and bias are swapped: y * weight + bias", ln(swap=True)),
    ]


def feed_forward_mistakes() -> list[Mistake]:
    """Wrong versions of ``FeedForward.forward`` (module first)."""

    def ff(act: Callable | None, *, after: bool = False):
        def fn(m: nn.Module, x: Tensor) -> Tensor:
            h = m.linear1(x)
            if act is not None and not after:
                h = act(h)
            out = m.linear2(h)
            return act(out) if after else out

        return fn

    def wrong_act(m: nn.Module, x: Tensor) -> Tensor:
        act = F.gelu if m.activation is F.relu else F.relu
        return m.linear2(act(m.linear1(x)))

    def tanh_gelu(m: nn.Module, x: Tensor) -> Tensor:
        return m.linear2(F.gelu(m.linear1(x), approximate="tanh"))

    return [
        Mistake(
            'the activation does not follow the `activation` argument ("relu" or "gelu")',
            wrong_act,
        ),
        Mistake(
            "this is the tanh approximation of GELU; use the exact (erf) GELU, F.gelu's default",
            tanh_gelu,
        ),
        Mistake("there is no activation between linear1 and linear2", ff(None)),
        Mistake(
            "the activation is applied after linear2; it goes between the two layers",
            ff(F.relu, after=True),
        ),
        Mistake(
            "the activation is applied after linear2; it goes between the two layers",
            ff(F.gelu, after=True),
        ),
    ]


def encoder_layer_mistakes() -> list[Mistake]:
    """Wrong versions of ``TransformerEncoderLayer.forward`` (module first)."""

    def layer(
        *,
        swap_ln: bool = False,
        attn_residual: bool = True,
        ff_residual: bool = True,
        norm_residual: bool = False,
        norms_swapped: bool = False,
        ignore_mask: bool = False,
        act: Callable | None = None,
    ):
        def fn(m: nn.Module, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
            pre = m.norm_first != swap_ln
            n1, n2 = (m.norm2, m.norm1) if norms_swapped else (m.norm1, m.norm2)
            a = act or m.activation
            mask = None if ignore_mask else attn_mask

            def sa(h: Tensor) -> Tensor:
                return m.self_attn(h, h, h, attn_mask=mask)[0]

            def ffn(h: Tensor) -> Tensor:
                return m.linear2(a(m.linear1(h)))

            if pre:
                h = n1(x)
                x = (h if norm_residual else x) * attn_residual + sa(h)
                h = n2(x)
                x = (h if norm_residual else x) * ff_residual + ffn(h)
            else:
                x = n1(x * attn_residual + sa(x))
                x = n2(x * ff_residual + ffn(x))
            return x

        return fn

    return [
        Mistake(
            "post-LN and pre-LN are swapped: norm_first=True means x + Sublayer(LayerNorm(x)), "
            "norm_first=False means LayerNorm(x + Sublayer(x))",
            layer(swap_ln=True),
        ),
        Mistake(
            "the residual connection around self-attention is missing", layer(attn_residual=False)
        ),
        Mistake(
            "the residual connection around the feed-forward network is missing",
            layer(ff_residual=False),
        ),
        Mistake(
            "the residual adds the NORMALISED x; in pre-LN the residual path carries x itself, "
            "untouched: x + Sublayer(LayerNorm(x))",
            layer(norm_residual=True),
        ),
        Mistake(
            "norm1 and norm2 are swapped: norm1 goes with self-attention", layer(norms_swapped=True)
        ),
        Mistake("attn_mask is not passed on to the self-attention", layer(ignore_mask=True)),
        Mistake(
            "the feed-forward activation does not follow the `activation` argument",
            layer(act=F.gelu),
        ),
        Mistake(
            "the feed-forward activation does not follow the `activation` argument",
            layer(act=F.relu),
        ),
    ]


def count_parameters_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "frozen parameters (requires_grad=False) were counted; with trainable_only=True "
            "count only those that train",
            lambda module, trainable_only=True: sum(p.numel() for p in module.parameters()),
        ),
        Mistake(
            "trainable_only=False must count every parameter, frozen ones included",
            lambda module, trainable_only=True: sum(
                p.numel() for p in module.parameters() if p.requires_grad
            ),
        ),
        Mistake(
            "a parameter shared by two submodules (tied weights) was counted twice; "
            "module.parameters() lists it once",
            lambda module, trainable_only=True: sum(
                p.numel()
                for _, p in module.named_parameters(remove_duplicate=False)
                if p.requires_grad or not trainable_only
            ),
        ),
        Mistake(
            "buffers (e.g. BatchNorm's running statistics) were counted: state_dict() holds "
            "buffers too, parameters() does not",
            lambda module, trainable_only=True: sum(
                v.numel() for v in module.state_dict().values()
            ),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Mistakes, chapter 10: pretraining objectives
# ---------------------------------------------------------------------------------------------


def causal_lm_labels_mistakes() -> list[Mistake]:
    def labels(*, shift: int = 1, use_mask: str = "target", last: int = -100):
        def fn(input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
            out = torch.full_like(input_ids, last, dtype=torch.long)
            if shift == 1:
                out[:, :-1] = input_ids[:, 1:]
            elif shift == 0:
                out = input_ids.clone().long()
            else:  # shifted the wrong way
                out[:, 1:] = input_ids[:, :-1]
            if attention_mask is not None and use_mask != "none":
                pad = attention_mask == 0
                if use_mask == "target":
                    out[:, :-1] = out[:, :-1].masked_fill(pad[:, 1:], -100)
                else:  # the position's own mask
                    out = out.masked_fill(pad, -100)
            return out

        return fn

    return [
        Mistake(
            "the labels are not shifted: position t must predict the NEXT token, input_ids[t + 1]",
            labels(shift=0),
        ),
        Mistake(
            "the labels are shifted the wrong way: labels[t] = input_ids[t + 1], not [t - 1]",
            labels(shift=-1),
        ),
        Mistake(
            "padding is not ignored: where the target token is padding the label is -100",
            labels(use_mask="none"),
        ),
        Mistake(
            "the mask is checked at the position itself; what matters is whether the TARGET "
            "(the next token) is padding",
            labels(use_mask="self"),
        ),
        Mistake("the last position must be -100: nothing follows it", labels(last=0)),
    ]


def cross_entropy_mistakes() -> list[Mistake]:
    def ce(*, over_all: bool = False, total: bool = False, axis: int = -1, log: bool = True):
        def fn(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
            V = logits.size(-1)
            lp = torch.log_softmax(logits, dim=axis) if log else torch.softmax(logits, dim=axis)
            lp, lab = lp.reshape(-1, V), labels.reshape(-1)
            keep = lab != ignore_index
            nll = -lp.gather(1, lab.masked_fill(~keep, 0)[:, None]).squeeze(1)
            nll = nll.masked_fill(~keep, 0.0)
            if total:
                return nll.sum()
            return nll.sum() / (lab.numel() if over_all else keep.sum())

        return fn

    return [
        Mistake(
            "the mean runs over ALL positions; divide by the number of positions whose label is "
            "not ignore_index",
            ce(over_all=True),
        ),
        Mistake("this is the sum; the loss is the mean over the kept positions", ce(total=True)),
        Mistake(
            "the log-softmax runs over the wrong axis; the classes are on the last axis",
            ce(axis=0),
        ),
        Mistake(
            "the log-softmax runs over the wrong axis; the classes are on the last axis",
            ce(axis=1),
        ),
        Mistake(
            "the probabilities are used without the log: the loss is -log p(correct class)",
            ce(log=False),
        ),
    ]


def few_shot_mistakes() -> list[Mistake]:
    def prompt(
        *, sep: str = "\n\n", strip: bool = True, cut: bool = True, keep_empty: bool = False
    ):
        def fn(examples, query, instruction="", template="Input: {input}\nOutput: {output}"):
            blocks = [instruction.strip()] if (instruction.strip() or keep_empty) else []
            blocks += [template.format(input=a, output=b) for a, b in examples]
            if cut:
                head = template[: template.index("{output}")].format(input=query)
                blocks.append(head.rstrip(" \t") if strip else head)
            else:
                blocks.append(template.format(input=query, output=""))
            return sep.join(blocks)

        return fn

    return [
        Mistake(
            "the blocks are separated by a single newline; separate instruction, examples and "
            'query by a blank line ("\\n\\n")',
            prompt(sep="\n"),
        ),
        Mistake(
            "the open query keeps the space after 'Output:'; remove trailing spaces so the model "
            "writes the answer itself",
            prompt(strip=False),
        ),
        Mistake(
            "an empty instruction still adds a block (the prompt starts with a blank line); "
            "leave it out when it is empty",
            prompt(keep_empty=True),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Mistakes, chapter 11: evaluation metrics (numpy)
# ---------------------------------------------------------------------------------------------


def _labels_of(y_true, y_pred, labels):
    return list(labels) if labels is not None else sorted(set(list(y_true)) | set(list(y_pred)))


def _counts(y_true, y_pred, labels, transpose=False):
    labels = _labels_of(y_true, y_pred, labels)
    idx = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if t in idx and p in idx:
            if transpose:
                cm[idx[p], idx[t]] += 1
            else:
                cm[idx[t], idx[p]] += 1
    return cm


def confusion_matrix_mistakes() -> list[Mistake]:
    def cm(*, transpose=False, axis_for_true=1, sort_labels=False, nan=False):
        def fn(y_true, y_pred, *, labels=None, normalize=None):
            lab = sorted(labels) if (sort_labels and labels is not None) else labels
            c = _counts(y_true, y_pred, lab, transpose)
            if normalize is None:
                return c
            axis = {"true": axis_for_true, "pred": 1 - axis_for_true, "all": None}[normalize]
            totals = c.sum(axis=axis, keepdims=axis is not None)
            if nan:
                with np.errstate(invalid="ignore", divide="ignore"):
                    return c / totals
            return np.divide(c, totals, out=np.zeros(c.shape), where=totals != 0)

        return fn

    return [
        Mistake(
            "the matrix is transposed: rows are the TRUE labels, columns the predicted ones",
            cm(transpose=True),
        ),
        Mistake(
            "rows and columns are normalised the wrong way round: normalize='true' makes each "
            "ROW (a true class) sum to 1, normalize='pred' each column",
            cm(axis_for_true=0),
        ),
        Mistake(
            "the classes are sorted even though `labels` gives their order; rows and columns "
            "follow `labels` exactly",
            cm(sort_labels=True),
        ),
        Mistake(
            "an empty row or column gives NaN (0 / 0); it must stay 0",
            cm(nan=True),
        ),
    ]


def _prf(y_true, y_pred, labels, average, zero_division, variant=""):
    labels = _labels_of(y_true, y_pred, labels)
    y_true, y_pred = list(y_true), list(y_pred)
    tp = np.array([sum(t == p == c for t, p in zip(y_true, y_pred)) for c in labels], float)
    true_sum = np.array([y_true.count(c) for c in labels], float)
    pred_sum = np.array([y_pred.count(c) for c in labels], float)
    zd = float(zero_division)
    if variant == "ignore_zero_division":
        zd = 0.0

    def div(a, b):
        out = np.full(np.shape(a), zd)
        return np.divide(a, b, out=out, where=b != 0)

    if average == "micro" and variant != "micro_as_macro":
        tp, true_sum, pred_sum = (
            tp.sum(keepdims=True),
            true_sum.sum(keepdims=True),
            pred_sum.sum(keepdims=True),
        )
    p, r = div(tp, pred_sum), div(tp, true_sum)
    f = div(2 * tp, true_sum + pred_sum)
    if average is None:
        return p, r, f, true_sum.astype(np.int64)
    if variant == "macro_as_micro" and average == "macro":
        return _prf(y_true, y_pred, labels, "micro", zero_division)
    weights = None
    if average == "weighted":
        weights = pred_sum if variant == "weighted_by_pred" else true_sum
    mean = [
        float(np.average(v, weights=weights))
        if (weights is None or weights.sum())
        else float(np.mean(v))
        for v in (p, r, f)
    ]
    if variant == "f1_of_means":
        mp, mr = mean[0], mean[1]
        mean[2] = 2 * mp * mr / (mp + mr) if mp + mr else 0.0
    support = true_sum.astype(np.int64) if variant == "support_kept" else None
    return mean[0], mean[1], mean[2], support


def prfs_mistakes() -> list[Mistake]:
    def make(variant: str):
        return lambda y_true, y_pred, *, labels=None, average=None, zero_division=0.0: _prf(
            y_true, y_pred, labels, average, zero_division, variant
        )

    return [
        Mistake(
            "micro and macro are mixed up: micro pools TP, FP and FN over all classes before "
            "dividing; macro averages the per-class scores",
            make("micro_as_macro"),
        ),
        Mistake(
            "micro and macro are mixed up: macro is the plain mean of the per-class scores",
            make("macro_as_micro"),
        ),
        Mistake(
            "the weighted average is weighted by how often a class is PREDICTED; weight by the "
            "support (how often it is true)",
            make("weighted_by_pred"),
        ),
        Mistake(
            "the averaged F1 is the harmonic mean of the averaged precision and recall; average "
            "the per-class F1 scores instead",
            make("f1_of_means"),
        ),
        Mistake(
            "zero_division is ignored: a ratio with denominator 0 takes the value zero_division",
            make("ignore_zero_division"),
        ),
        Mistake("support must be None when the scores are averaged", make("support_kept")),
    ]


def _entities(tags, *, lenient=False, exclusive=False, any_type=False):
    found, current = [], None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and (any_type or current[0] == kind):
            continue
        if current is not None:
            found.append((current[0], current[1], i if exclusive else i - 1))
            current = None
        if prefix == "B" or (lenient and prefix == "I"):
            current = (kind, i)
    return found


def get_entities_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "an I- tag that does not continue an entity of its type started a new one; in "
            "strict IOB2 only B- starts an entity",
            lambda tags: _entities(tags, lenient=True),
        ),
        Mistake(
            "the end index is exclusive; it must be the index of the entity's LAST token",
            lambda tags: _entities(tags, exclusive=True),
        ),
        Mistake(
            "an I- tag of another type continued the entity; I-Y only continues a Y entity",
            lambda tags: _entities(tags, any_type=True),
        ),
    ]


def entity_f1_mistakes() -> list[Mistake]:
    def token_f1(y_true, y_pred):
        t = [x for s in y_true for x in s]
        p = [x for s in y_pred for x in s]
        tp = sum(a == b != "O" for a, b in zip(t, p))
        n = sum(a != "O" for a in t) + sum(b != "O" for b in p)
        return 2 * tp / n if n else 0.0

    def per_sentence(y_true, y_pred):
        scores = []
        for t, p in zip(y_true, y_pred):
            a, b = set(_entities(t)), set(_entities(p))
            scores.append(2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0)
        return sum(scores) / len(scores) if scores else 0.0

    def merged(y_true, y_pred):
        a = {e for s in y_true for e in _entities(s)}
        b = {e for s in y_pred for e in _entities(s)}
        return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0

    return [
        Mistake(
            "this is a token-level F1; an entity counts only when type, start and end all match",
            token_f1,
        ),
        Mistake(
            "the F1 is averaged over sentences; pool the entities of all sentences (micro F1)",
            per_sentence,
        ),
        Mistake(
            "entities of different sentences are mixed up: an entity is (sentence, type, start, "
            "end), the same span in two sentences is two entities",
            merged,
        ),
    ]


def _norm(s: str, *, articles=True, punctuation=True, lower=True, spaces=True) -> str:
    import re
    import string

    if lower:
        s = s.lower()
    if punctuation:
        s = "".join(ch for ch in s if ch not in set(string.punctuation))
    if articles:
        s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split()) if spaces else s


def squad_em_mistakes() -> list[Mistake]:
    def em(**knobs):
        return lambda prediction, truth: float(_norm(prediction, **knobs) == _norm(truth, **knobs))

    return [
        Mistake("articles (a, an, the) are not removed, or not as whole words", em(articles=False)),
        Mistake("punctuation is not removed", em(punctuation=False)),
        Mistake("the comparison is case-sensitive; lowercase both answers", em(lower=False)),
        Mistake("runs of whitespace are not collapsed to one space", em(spaces=False)),
        Mistake(
            "the answers are compared without any normalisation",
            lambda prediction, truth: float(prediction == truth),
        ),
    ]


def squad_f1_mistakes() -> list[Mistake]:
    def f1(*, bag=True, normalise=True, empty_one=False):
        def fn(prediction: str, truth: str) -> float:
            p = (_norm(prediction) if normalise else prediction).split()
            t = (_norm(truth) if normalise else truth).split()
            if empty_one and not p and not t:
                return 1.0
            same = sum((Counter(p) & Counter(t)).values()) if bag else len(set(p) & set(t))
            if same == 0:
                return 0.0
            prec, rec = same / len(p), same / len(t)
            return 2 * prec * rec / (prec + rec)

        return fn

    return [
        Mistake(
            "the common tokens are counted as a set; count them as a bag (a word twice in both "
            "answers counts twice: Counter(a) & Counter(b))",
            f1(bag=False),
        ),
        Mistake("the answers are not normalised before splitting into tokens", f1(normalise=False)),
        Mistake(
            "two answers that normalise to nothing share no token, so their F1 is 0.0 (as in "
            "the official script)",
            f1(empty_one=True),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Mistakes, chapter 12: measuring performance
# ---------------------------------------------------------------------------------------------


def power_law_mistakes() -> list[Mistake]:
    def fit(*, space: str = "log", coef: str = "exp", swap: bool = False):
        def fn(sizes, times):
            x, y = np.asarray(sizes, float), np.asarray(times, float)
            if space == "linear":
                k, b = np.polyfit(x, y, 1)
            elif space == "log10":
                k, b = np.polyfit(np.log10(x), np.log10(y), 1)
            else:
                k, b = np.polyfit(np.log(x), np.log(y), 1)
            c = {
                "exp": math.exp(b) if space == "log" else b,
                "raw": b,
                "exp_of_log10": math.exp(b),
            }[coef]
            return (float(c), float(k)) if swap else (float(k), float(c))

        return fn

    return [
        Mistake(
            "the line was fitted to the raw numbers; a power law is a straight line between "
            "log(size) and log(time)",
            fit(space="linear"),
        ),
        Mistake(
            "the coefficient is the intercept itself, log c; return c = exp(intercept)",
            fit(coef="raw"),
        ),
        Mistake(
            "exponent and coefficient are swapped: return (exponent, coefficient)", fit(swap=True)
        ),
        Mistake(
            "the fit used log10 but the intercept was undone with exp; undo it with the same "
            "base (10 ** intercept)",
            fit(space="log10", coef="exp_of_log10"),
        ),
    ]


def flops_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "this is half the count: a multiply-add is 2 FLOPs, and there are two matrix "
            "products (Q·Kᵀ and weights·V)",
            lambda batch, heads, seq_len, head_dim: 2 * batch * heads * seq_len**2 * head_dim,
        ),
        Mistake(
            "this is a quarter of the count: a multiply-add is 2 FLOPs, and there are two "
            "matrix products (Q·Kᵀ and weights·V)",
            lambda batch, heads, seq_len, head_dim: batch * heads * seq_len**2 * head_dim,
        ),
        Mistake(
            "the sequence length is not squared: every query meets every key (T × T scores)",
            lambda batch, heads, seq_len, head_dim: 4 * batch * heads * seq_len * head_dim,
        ),
        Mistake(
            "the heads are counted twice: B·H·T²·Dh already covers every head",
            lambda batch, heads, seq_len, head_dim: 4 * batch * heads**2 * seq_len**2 * head_dim,
        ),
    ]


def memory_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "this counts elements; multiply by the bytes per element (dtype.itemsize)",
            lambda batch, heads, seq_len, dtype: batch * heads * seq_len**2,
        ),
        Mistake(
            "4 bytes per element is only right for float32; use dtype.itemsize",
            lambda batch, heads, seq_len, dtype: batch * heads * seq_len**2 * 4,
        ),
        Mistake(
            "the score matrix is T × T; the sequence length must be squared",
            lambda batch, heads, seq_len, dtype: batch * heads * seq_len * dtype.itemsize,
        ),
        Mistake(
            "this is in bits; the result is in bytes (dtype.itemsize)",
            lambda batch, heads, seq_len, dtype: batch * heads * seq_len**2 * dtype.itemsize * 8,
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Chapter 13: a GPT — perplexity, decoding filters, sampling, the KV cache and generation.
# Self-contained: the filters, the sampler, the cached attention and the test model below are
# written here with torch alone, so that forbidding ``course_lib.gpt`` (the reference) in a
# test cell cannot break the checker itself.
# ---------------------------------------------------------------------------------------------

__all__ += [
    "perplexity_mistakes",
    "top_k_mistakes",
    "top_p_mistakes",
    "check_logits_filter",
    "check_sample_next_token",
    "cached_attention_mistakes",
    "check_cached_attention",
    "TinyLM",
    "check_generate",
]

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
        return G.diagnose(got, expected, path=path)
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


def _index(flat: int, shape: Any) -> tuple[int, ...]:
    out = []
    for size in reversed(tuple(shape)):
        out.append(flat % size)
        flat //= size
    return tuple(reversed(out))


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
        return G.call(
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
            return G.call(
                _with_generator(student, seed),
                logits.clone(),
                name=name,
                forbidden=forbidden,
                **kwargs,
            )

    got = run()
    problem = G.diagnose(got, expected, path="the output")
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
                f"{header}:\n  return a tuple (output, key, value), got {G.describe(got)}"
            )
        problem = None
        for path, a, b in zip(
            ("the output", "the returned key (the next cache)", "the returned value"),
            got,
            expected,
        ):
            problem = G.diagnose(a, b, path=path, **tol)
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
            raise ValueError(f"the model takes ids as a (B, T) int64 tensor, got {G.describe(ids)}")
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
                return G.call(
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
        problem = G.diagnose(got, expected, path="the output")
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

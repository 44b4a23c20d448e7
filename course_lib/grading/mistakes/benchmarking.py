"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.benchmarking`."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from course_lib.grading.calling import call
from course_lib.grading.checkers import Mistake, _explain
from course_lib.grading.clock import FakeClock
from course_lib.grading.diagnose import GradingError, _fail, _header, describe, diagnose


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
    ref_clock = FakeClock(durations)
    with ref_clock.installed():
        expected = reference(ref_clock.workload, *args, **kwargs)
    clock = FakeClock(durations)
    header = _header(name, ("fn", *args), kwargs, label)
    with clock.installed():
        got = call(student, clock.workload, *args, name=name, forbidden=forbidden, **kwargs)
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
            keys = sorted(got) if isinstance(got, dict) else describe(got)
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
    problem = diagnose(got, expected, path="the result", **tol)
    if problem:
        wrong = [(d, lambda r=r: r) for d, r in _benchmark_mistakes(timed, durations)]
        raise _fail(header, problem, _explain(got, expected, wrong, tol))
    return True


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

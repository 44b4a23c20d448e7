"""Diagnoses: what is wrong with a result (shape, dtype, NaN, where and by how much), and the
failure message a test cell shows, without giving the answer away.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


class GradingError(AssertionError):
    """A test failed; the message says what is wrong without giving the answer away."""


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def describe(value: Any) -> str:
    """A short human description: ``float32 tensor of shape (2, 3)``, ``list of 4 ints``."""
    if isinstance(value, Tensor):
        return f"{_dtype_name(value.dtype)} tensor of shape {tuple(value.shape)}"
    if isinstance(value, nn.Module):
        return f"a {type(value).__name__} module"
    if isinstance(value, str):
        return _short(repr(value))
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        if len(value) <= 6 and all(isinstance(v, (int, float, str, bool)) for v in value):
            return _short(repr(value))
        if value and all(isinstance(v, Tensor) for v in value):
            return f"{kind} of {len(value)} tensors"
        kinds = sorted({type(v).__name__ for v in value})
        return f"{kind} of {len(value)} {'/'.join(kinds) or 'items'}"
    if isinstance(value, dict):
        return f"dict with {len(value)} entries"
    if callable(value):
        return f"function {getattr(value, '__name__', '?')}"
    return _short(repr(value))


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _bound_arguments(fn: Any, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
    """(parameter name, value) pairs for a call, falling back to positions."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        named = [(f"argument {i + 1}", a) for i, a in enumerate(args)]
        return named + list(kwargs.items())
    return list(bound.arguments.items())


def _not_implemented(name: str) -> GradingError:
    return GradingError(
        f"{name} is not implemented yet: replace `raise NotImplementedError()` in its "
        "cell with your code, run that cell, then run this test again"
    )


def _call_text(name: str, fn: Any, args: tuple, kwargs: dict) -> str:
    parts = [f"{k}={describe(v)}" for k, v in _bound_arguments(fn, args, kwargs)]
    return f"{name}({', '.join(parts)})"


def _index(flat_index: int, shape: Sequence[int]) -> tuple[int, ...]:
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(idx))


def _shape_problem(path: str, got: tuple[int, ...], expected: tuple[int, ...]) -> str:
    msg = f"{path} has shape {got}, expected {expected}"
    if len(got) != len(expected):
        msg += f": {len(got)} axes instead of {len(expected)}"
        if math.prod(got) == math.prod(expected):
            msg += " (same number of elements: check a reshape, view, squeeze or keepdim)"
        elif len(got) < len(expected):
            msg += " (an axis was summed or indexed away: keepdim=True? a batch axis dropped?)"
        return msg
    wrong = [i for i in range(len(expected)) if got[i] != expected[i]]
    n = len(expected)
    msg += "; " + ", ".join(
        f"axis {i} (= {i - n}) has size {got[i]} instead of {expected[i]}" for i in wrong
    )
    if sorted(got) == sorted(expected):
        msg += ": the right sizes in the wrong order, so an axis was transposed or permuted"
    return msg


def _dtype_problem(path: str, got: torch.dtype, expected: torch.dtype) -> str:
    msg = f"{path} has dtype {_dtype_name(got)}, expected {_dtype_name(expected)}"
    if expected.is_floating_point and not got.is_floating_point:
        msg += " (integer or bool arithmetic: convert with .float() or build it as float)"
    elif not expected.is_floating_point and got.is_floating_point:
        msg += " (ids, counts and masks are integers or bools: use dtype=torch.long/bool)"
    elif expected == torch.float32 and got == torch.float64:
        msg += " (a float64 tensor or numpy array crept in; keep the input's dtype)"
    elif expected == torch.float64:
        msg += " (the result should be float64: compute in double precision)"
    return msg


def _tensor_problem(path: str, got: Any, expected: Tensor, rtol: float, atol: float) -> str | None:
    if got is None:
        return f"{path} is None: did you forget to `return` it?"
    if not isinstance(got, Tensor):
        return f"{path} should be a torch.Tensor but is {describe(got)}"
    if got.shape != expected.shape:
        return _shape_problem(path, tuple(got.shape), tuple(expected.shape))
    if got.dtype != expected.dtype:
        return _dtype_problem(path, got.dtype, expected.dtype)
    g, e = got.detach().cpu(), expected.detach().cpu()
    n = e.numel()
    if n == 0:
        return None
    if not e.dtype.is_floating_point and not e.dtype.is_complex:
        differ = (g != e).flatten()
        if differ.any():
            first = int(differ.nonzero()[0])
            idx = _index(first, e.shape)
            return (
                f"{int(differ.sum())} of {n} entries of {path} are wrong; the first is at index "
                f"{idx} (you have {g.flatten()[first].item()!r} there)"
            )
        return None
    for bad, label, why in (
        (torch.isnan(g) & ~torch.isnan(e), "NaN", "0/0, inf - inf or exp() overflowing"),
        (torch.isinf(g) & ~torch.isinf(e), "inf", "exp() of a large number or a division by 0"),
    ):
        if bad.any():
            first = int(bad.flatten().nonzero()[0])
            return (
                f"{path} contains {label} at {int(bad.sum())} of {n} positions (first at index "
                f"{_index(first, e.shape)}) where a finite value is expected; {label} usually "
                f"comes from {why}"
            )
    close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    err = (g - e).abs().nan_to_num(nan=math.inf)
    err[close] = 0
    worst = int(err.flatten().argmax())
    return (
        f"{path} has the right shape and dtype, but {int((~close).sum())} of {n} values are "
        f"off; the largest error is {err.flatten()[worst].item():.3g} at index "
        f"{_index(worst, e.shape)} (you have {g.flatten()[worst].item():.6g} there)"
    )


def diagnose(
    got: Any, expected: Any, *, rtol: float = 1e-5, atol: float = 1e-6, path: str = "the result"
) -> str | None:
    """Why ``got`` is not ``expected`` (one sentence), or ``None`` when they agree.

    Tensors are compared by shape, dtype, NaN/inf, then values (``rtol``/``atol``); lists,
    tuples and dicts item by item; floats with the same tolerances; everything else with ``==``.
    """
    if isinstance(expected, Tensor):
        return _tensor_problem(path, got, expected, rtol, atol)
    if got is None and expected is not None:
        return f"{path} is None: did you forget to `return` it?"
    if isinstance(expected, bool) or expected is None:
        if got is expected or (isinstance(got, bool) and got == expected):
            return None
        return f"{path} is {describe(got)}, which is not the expected {expected!r}"
    if isinstance(expected, (int, float)):
        if isinstance(got, Tensor) and got.numel() == 1:
            return f"{path} should be a Python number, not a tensor: use .item()"
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"{path} should be a number but is {describe(got)}"
        if isinstance(expected, int) and not isinstance(got, int):
            return f"{path} should be an int but is the float {got!r}"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) or (
            math.isnan(got) and math.isnan(expected)
        ):
            return None
        return f"{path} is {got!r}, which is off by {abs(got - expected):.3g}"
    if isinstance(expected, str):
        if not isinstance(got, str):
            return f"{path} should be a str but is {describe(got)}"
        if got == expected:
            return None
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
        if first is None:
            longer = "longer" if len(got) > len(expected) else "shorter"
            return (
                f"{path} {_short(repr(got))} is {longer} than expected ({len(got)} characters "
                f"instead of {len(expected)}) but agrees up to there"
            )
        return (
            f"{path} {_short(repr(got))} differs from the expected text first at character "
            f"{first} (you have {got[first]!r} there)"
        )
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{path} should be a {type(expected).__name__} but is {describe(got)}"
        if len(got) != len(expected):
            return f"{path} has {len(got)} items, expected {len(expected)}"
        for i, (a, b) in enumerate(zip(got, expected)):
            problem = diagnose(a, b, rtol=rtol, atol=atol, path=f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path} should be a dict but is {describe(got)}"
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} expected keys are missing (e.g. {missing[0]!r})")
            if extra:
                parts.append(f"{len(extra)} keys should not be there (e.g. {extra[0]!r})")
            return f"{path} has {len(got)} entries, expected {len(expected)}: " + "; ".join(parts)
        for k in expected:
            problem = diagnose(got[k], expected[k], rtol=rtol, atol=atol, path=f"{path}[{k!r}]")
            if problem:
                return problem
        return None
    if got == expected:
        return None
    return f"{path} is {describe(got)}, which is not what was expected"


def check_close(
    got: Any, expected: Any, *, what: str = "the result", rtol: float = 1e-5, atol: float = 1e-6
) -> bool:
    """``True`` if ``got`` matches ``expected``; otherwise raise :class:`GradingError`."""
    __tracebackhide__ = True
    problem = diagnose(got, expected, rtol=rtol, atol=atol, path=what)
    if problem:
        raise GradingError(problem)
    return True


def _fail(header: str, problem: str, hint: str | None) -> GradingError:
    msg = f"{header}:\n  {problem}"
    if hint:
        msg += f"\n  Likely cause: {hint}"
    return GradingError(msg)


def _header(name: str, args: tuple, kwargs: dict, label: str = "") -> str:
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    text = f"{name}({', '.join(parts)})"
    return f"{text} [{label}]" if label else text

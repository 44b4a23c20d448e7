"""Calling student code: quietly, without forbidden helpers, and without in-place changes."""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.grading.diagnose import (
    GradingError,
    _bound_arguments,
    _call_text,
    _name,
    _not_implemented,
    describe,
)
from course_lib.grading.forbidden import ForbiddenCall, forbid, forbidden_identity


@contextlib.contextmanager
def quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Record warnings and swallow stderr: nbgrader scores a cell 0 on any stderr output."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stderr(io.StringIO()):
            yield caught


_OPAQUE = object()


def _snapshot(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (int, float, str, bool, bytes, type(None))):
        return value
    if callable(value) or isinstance(value, nn.Module):
        return _OPAQUE
    try:
        return copy.deepcopy(value)
    except Exception:
        return _OPAQUE


def _modified(before: Any, after: Any, path: str) -> str | None:
    if before is _OPAQUE:
        return None
    if isinstance(after, Tensor):
        if after.shape != before.shape or after.dtype != before.dtype:
            return f"{path} was resized or retyped"
        a = after.detach()
        same = (
            (a == before) | (torch.isnan(a) & torch.isnan(before))
            if a.is_floating_point()
            else a == before
        )
        if not bool(same.all()):
            return f"{int((~same).sum())} of {a.numel()} entries of {path} were overwritten"
        return None
    if isinstance(after, (list, tuple)):
        if len(after) != len(before):
            return f"{path} changed length from {len(before)} to {len(after)}"
        for i, (b, a) in enumerate(zip(before, after)):
            problem = _modified(b, a, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(after, dict):
        if set(after) != set(before):
            return f"the keys of {path} were changed"
        for k in after:
            problem = _modified(before[k], after[k], f"{path}[{k!r}]")
            if problem:
                return problem
        return None
    try:
        return None if after == before else f"{path} was changed"
    except Exception:
        return None


def call(
    fn: Callable, *args: Any, name: str | None = None, forbidden: Mapping[str, str] = {}, **kwargs
) -> Any:
    """Call student code safely and return its result.

    Warnings and stderr are captured; calling anything in ``forbidden`` fails; an argument
    changed in place fails; ``NotImplementedError`` becomes "not implemented yet"; any other
    exception becomes a :class:`GradingError` that names the call (the original stays chained).
    """
    __tracebackhide__ = True
    name = name or _name(fn)
    if fn is None or not callable(fn):
        raise GradingError(f"{name} is {describe(fn)}, not a function: run its cell first")
    same = forbidden_identity(fn, forbidden, name)
    if same:
        raise GradingError(same)
    before = _snapshot((args, kwargs))
    with quiet(), forbid(forbidden, fn=fn, name=name) as violations:
        try:
            result = fn(*args, **kwargs)
        except NotImplementedError:
            raise _not_implemented(name) from None
        except ForbiddenCall as exc:
            raise GradingError(str(exc.args[0])) from None
        except GradingError:
            raise
        except Exception as exc:
            text = _call_text(name, fn, args, kwargs)
            raise GradingError(f"{text} raised {type(exc).__name__}: {exc}") from exc
    if violations:
        raise GradingError(violations[0] + " (and the error was caught inside your code)")
    names = [n for n, _ in _bound_arguments(fn, args, kwargs)]
    before_args, before_kwargs = before
    for i, (b, a) in enumerate(zip(before_args, args)):
        problem = _modified(b, a, f"argument {names[i] if i < len(names) else i}")
        if problem:
            raise GradingError(
                f"{name} modified its input in place: {problem}. Leave the inputs untouched "
                "(out-of-place operations such as `x = x - y` instead of `x -= y`, or work on "
                "a .clone())"
            )
    for key, b in before_kwargs.items():
        problem = _modified(b, kwargs[key], f"argument {key}")
        if problem:
            raise GradingError(f"{name} modified its input in place: {problem}")
    return result


def _clone_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    def clone(v: Any) -> Any:
        if isinstance(v, Tensor):
            return v.clone()
        if isinstance(v, list):
            return [clone(x) for x in v]
        if isinstance(v, dict):
            return {k: clone(x) for k, x in v.items()}
        return v

    return tuple(clone(a) for a in args), {k: clone(v) for k, v in kwargs.items()}


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

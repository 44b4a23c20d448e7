"""Checkers for the graded notebooks, and the conventions every graded notebook follows.

A test cell compares the student's function with the reference in ``course_lib.<module>`` and,
when they disagree, says *what* is wrong (shape and which axis, dtype, NaN, where and by how
much the values are off, softmax over the wrong axis, a missing scale, an inverted mask, the
future leaking into the past, an argument modified in place, a forbidden built-in) without
printing the answer.

Conventions for graded notebooks (chapters 01–12)
=================================================

Files. The instructor source of chapter ``<id>`` is ``tools/notebooks/<id>.py`` (percent
format, see ``tools/build_solutions.py``); ``python tools/build_solutions.py`` writes
``solutions/<id>/<id>.ipynb`` (nbgrader source, outputs cleared) and ``course release <id>``
(``nbgrader generate_assignment``) writes the student notebook ``exercises/<id>/<id>.ipynb``.
Never edit either ``.ipynb`` by hand; tests fail when they drift from their sources.

Cells, in order:

- a recap (markdown) linking to the chapter page ``book/<id>.md`` (published as ``<id>.html``);
- one locked *setup* cell with the student-facing imports (torch, math, nn ...), nothing else;
- per graded function or class (the SYLLABUS Exercise list, nothing more): one *solution* cell
  whose nbgrader ``grade_id`` is exactly the function or class name; the signature and
  docstring stay visible, ``### BEGIN SOLUTION`` / ``### END SOLUTION`` surround the body only
  (in a class: the body of each method);
- after it, one or more locked *test* cells with points, ``grade_id`` ``test_<name>`` or
  ``test_<name>-<part>`` (several cells give partial credit for independent parts). A test
  cell tests only ``<name>``, so a mistake elsewhere cannot cost points here;
- at least one *demo* cell (plot or ipywidgets explorer) driven by the student's function,
  never graded; it catches ``NotImplementedError`` and prints a hint instead.

A notebook totals 10–20 points.

Test cells:

- start with ``from course_lib import grading as G`` and ``from course_lib import <module> as
  ref``; no other imports (they are re-run by the grader for every student: keep them light);
- call the student's code only through a checker of this module (:func:`check_function`,
  :func:`check_module`, :func:`check_raises`, :func:`check_no_future_leak`, :func:`call`):
  they capture warnings and stderr (nbgrader gives a cell 0 points for *any* stderr output,
  so a harmless warning must not cost marks), block forbidden functions, notice arguments
  modified in place and turn ``NotImplementedError`` into "not implemented yet";
- every assertion is ``assert G.check_...(...)``: a checker returns ``True`` or raises
  :class:`GradingError` (an ``AssertionError``) with the diagnosis; a cell ends with an
  ``assert``, never a bare value;
- visible tests first: small cases explained in comments, fixed seeds
  (``torch.Generator().manual_seed(0)``);
- then ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``: randomized cases from
  :func:`hidden_generator` / :func:`hidden_random`, seeded by the instructor's
  ``COURSE_GRADING_SEED`` (environment variable, read at grading time, never committed;
  self-study default :data:`DEFAULT_SEED`), plus edge cases;
- each cell runs in well under 2 s.

Mistake hypotheses (:class:`Mistake`) turn "values are off" into "this looks like the softmax
over the wrong axis": when the student's output disagrees with the reference but matches what
a known mistake would give, its description is added to the message. The attention mistakes
(:func:`attention_mistakes`, :func:`projection_mistakes`) are shared by the later chapters.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib
import inspect
import io
import math
import os
import random
import re
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "SEED_ENV",
    "DEFAULT_SEED",
    "GradingError",
    "Case",
    "Mistake",
    "grading_seed",
    "hidden_generator",
    "hidden_random",
    "describe",
    "diagnose",
    "quiet",
    "forbid",
    "call",
    "check_close",
    "check_function",
    "check_raises",
    "check_module",
    "check_no_future_leak",
    "no_reference",
    "softmax_mistakes",
    "attention_mistakes",
    "projection_mistakes",
    "NO_AUTOGRAD",
    "NO_SOFTMAX",
    "NO_TORCH_ATTENTION",
]

SEED_ENV = "COURSE_GRADING_SEED"
DEFAULT_SEED = 2024
"""Seed of the hidden tests when ``COURSE_GRADING_SEED`` is not set (self-study)."""


class GradingError(AssertionError):
    """A test failed; the message says what is wrong without giving the answer away."""


class _ForbiddenCall(BaseException):
    # BaseException, so that a student's ``except Exception`` cannot swallow it.
    pass


# ---------------------------------------------------------------------------------------------
# Seeds: visible tests use fixed seeds written in the cell; hidden tests use these.
# ---------------------------------------------------------------------------------------------


def grading_seed() -> int:
    """The instructor's seed from ``$COURSE_GRADING_SEED``, else :data:`DEFAULT_SEED`.

    Any text works: a whole number is used as it is, anything else is hashed to a number
    (so a passphrase is a valid seed, and the same text always gives the same tests)."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return DEFAULT_SEED
    try:
        return int(raw)
    except ValueError:
        return int.from_bytes(hashlib.sha256(raw.encode()).digest()[:8], "big") >> 1


def _derived_seed(name: str) -> int:
    # crc32, not hash(): Python salts str hashes per process.
    return zlib.crc32(f"{grading_seed()}:{name}".encode())


def hidden_generator(name: str) -> torch.Generator:
    """A torch generator for the hidden tests named ``name``, seeded from the grading seed."""
    return torch.Generator().manual_seed(_derived_seed(name))


def hidden_random(name: str) -> random.Random:
    """A ``random.Random`` for hidden tests on text and lists, seeded like the generator."""
    return random.Random(_derived_seed(name))


# ---------------------------------------------------------------------------------------------
# Describing values and calls in messages.
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Comparing a result with the expected one.
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Calling student code: quietly, without forbidden helpers, and without in-place changes.
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Record warnings and swallow stderr: nbgrader scores a cell 0 on any stderr output."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stderr(io.StringIO()):
            yield caught


NO_AUTOGRAD: dict[str, str] = {
    "torch.Tensor.backward": "compute the gradient by hand, not with autograd",
    "torch.autograd.backward": "compute the gradient by hand, not with autograd",
    "torch.autograd.grad": "compute the gradient by hand, not with autograd",
    "torch.func.grad": "compute the gradient by hand, not with autograd",
}
NO_SOFTMAX: dict[str, str] = {
    path: "write the softmax yourself (exp, sum, divide), here or by calling your own softmax"
    for path in (
        "torch.softmax",
        "torch.Tensor.softmax",
        "torch.nn.functional.softmax",
        "torch.special.softmax",
        "torch.log_softmax",
        "torch.Tensor.log_softmax",
        "torch.nn.functional.log_softmax",
    )
}
NO_TORCH_ATTENTION: dict[str, str] = {
    "torch.nn.functional.scaled_dot_product_attention": "compute the attention yourself",
    "torch.nn.functional.multi_head_attention_forward": "compute the attention yourself",
    "torch.nn.MultiheadAttention": "build the attention from your own layers",
}


def no_reference(*modules: Any) -> dict[str, str]:
    """Forbid the course's own reference modules: ``forbidden=G.no_reference(ref)``."""
    return {m.__name__: "that is the course's reference solution; write your own" for m in modules}


def _resolve(path: str) -> tuple[Any, str, Any]:
    """'torch.nn.functional.softmax' -> (owner object, attribute name, the object)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        rest = parts[cut:]
        if not rest:
            return None, "", owner
        for attr in rest[:-1]:
            owner = getattr(owner, attr)
        return owner, rest[-1], getattr(owner, rest[-1])
    raise ValueError(f"cannot import {path!r}: fix the path in the forbidden list")


@functools.cache
def _targets(path: str) -> tuple[tuple[Any, str, Any], ...]:
    """Attributes to patch for one forbidden path; a module path means its public API.

    Cached: resolved once, before anything is patched, so the originals are what is stored.
    """
    owner, attr, obj = _resolve(path)
    if owner is None:  # a module: everything it defines and exports
        names = getattr(obj, "__all__", None) or [n for n in vars(obj) if not n.startswith("_")]
        found = []
        for n in names:
            value = getattr(obj, n, None)
            if callable(value) and getattr(value, "__module__", None) == obj.__name__:
                found.append((obj, n, value))
        return tuple(found)
    return ((owner, attr, obj),)


def _namespaces(fn: Any) -> list[dict]:
    """The global namespaces in which ``fn``'s code looks names up (the notebook's)."""
    found: dict[int, dict] = {}
    objs = [fn]
    if isinstance(fn, type):
        objs = [v for c in fn.__mro__ if c not in (object, nn.Module) for v in vars(c).values()]
    elif isinstance(fn, nn.Module):
        return _namespaces(type(fn))
    for obj in objs:
        obj = getattr(obj, "__func__", obj)
        g = getattr(obj, "__globals__", None)
        if isinstance(g, dict) and not g.get("__name__", "").startswith(("torch", "course_lib")):
            found[id(g)] = g
    return list(found.values())


@contextlib.contextmanager
def forbid(forbidden: Mapping[str, str], *, fn: Any = None, name: str = "your code") -> Iterator:
    """While active, calling anything in ``forbidden`` (dotted path -> why) raises.

    A module path (``"course_lib.attention"``) forbids every public function and class it
    defines. Classes are blocked by their ``__init__`` and ``forward``. Aliases of forbidden
    objects in ``fn``'s notebook namespace (``from torch.nn.functional import softmax as sm``)
    are blocked too.
    """
    patches: list[tuple[Any, str, bool, Any]] = []  # (owner, attr, had_own_attr, original)
    violations: list[str] = []

    def stub_for(path: str, why: str) -> Callable:
        def stub(*args: Any, **kwargs: Any) -> Any:
            msg = f"{name} calls {path}, which this exercise does not allow: {why}"
            violations.append(msg)
            raise _ForbiddenCall(msg)

        return stub

    def patch(owner: Any, attr: str, value: Any) -> None:
        if isinstance(owner, dict):
            patches.append((owner, attr, True, owner[attr]))
            owner[attr] = value
            return
        own = attr in vars(owner)
        patches.append((owner, attr, own, vars(owner).get(attr)))
        setattr(owner, attr, value)

    try:
        blocked: dict[int, Callable] = {}
        for path, why in forbidden.items():
            for owner, attr, obj in _targets(path):
                full = f"{owner.__name__}.{attr}" if hasattr(owner, "__name__") else path
                stub = stub_for(full, why)
                if isinstance(obj, type):
                    for method in ("__init__", "forward"):
                        if method in vars(obj):
                            patch(obj, method, stub)
                else:
                    patch(owner, attr, stub)
                blocked[id(obj)] = stub
        for namespace in _namespaces(fn) if fn is not None else []:
            for key, value in list(namespace.items()):
                if id(value) in blocked and not isinstance(value, type):
                    patch(namespace, key, blocked[id(value)])
        yield violations
    finally:
        for owner, attr, own, original in reversed(patches):
            if isinstance(owner, dict):
                owner[attr] = original
            elif own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)


def _forbidden_identity(fn: Any, forbidden: Mapping[str, str], name: str) -> str | None:
    target = fn.__func__ if hasattr(fn, "__func__") else fn
    for path, why in forbidden.items():
        for _owner, _attr, obj in _targets(path):
            if target is obj:
                return f"{name} is {path} itself: {why}"
            if isinstance(target, type) and isinstance(obj, type) and issubclass(target, obj):
                return f"{name} subclasses {obj.__module__}.{obj.__qualname__}: {why}"
    return None


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
    same = _forbidden_identity(fn, forbidden, name)
    if same:
        raise GradingError(same)
    before = _snapshot((args, kwargs))
    with quiet(), forbid(forbidden, fn=fn, name=name) as violations:
        try:
            result = fn(*args, **kwargs)
        except NotImplementedError:
            raise _not_implemented(name) from None
        except _ForbiddenCall as exc:
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


# ---------------------------------------------------------------------------------------------
# Checkers used by the test cells.
# ---------------------------------------------------------------------------------------------


class Case:
    """One call: ``Case(x, dim=0, label="columns")`` means ``f(x, dim=0)``."""

    def __init__(self, *args: Any, label: str = "", **kwargs: Any) -> None:
        self.args, self.kwargs, self.label = args, kwargs, label

    def __repr__(self) -> str:
        return f"Case({self.label or '...'})"


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation: ``fn`` takes the same arguments and returns what it would.

    For :func:`check_module`, ``fn`` takes the reference module first.
    """

    description: str
    fn: Callable[..., Any]


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


def _explain(
    got: Any, expected: Any, mistakes: Iterable[Mistake], call_mistake: Callable, tol: dict
) -> str | None:
    """The first mistake whose output matches ``got`` while differing from ``expected``."""
    for mistake in mistakes:
        try:
            with quiet():
                wrong = call_mistake(mistake)
        except Exception:
            continue  # this mistake cannot happen for these arguments
        if diagnose(got, wrong, **tol) is None and diagnose(wrong, expected, **tol) is not None:
            return mistake.description
    return None


def _fail(header: str, problem: str, hint: str | None) -> GradingError:
    msg = f"{header}:\n  {problem}"
    if hint:
        msg += f"\n  Likely cause: {hint}"
    return GradingError(msg)


def check_function(
    student: Callable,
    reference: Callable,
    cases: Iterable[Case],
    *,
    mistakes: Iterable[Mistake] = (),
    forbidden: Mapping[str, str] = {},
    rtol: float = 1e-5,
    atol: float = 1e-6,
    what: str = "the result",
    name: str | None = None,
    select: int | None = None,
) -> bool:
    """Compare ``student`` with ``reference`` on every case; ``True`` or :class:`GradingError`.

    Args:
        cases: the calls to make (:class:`Case`); each is given fresh copies of its tensors.
        mistakes: known wrong implementations, used to explain a mismatch.
        forbidden: dotted path -> why, functions the student's code must not call.
        what: how to call the output in messages (``"the weights"``, ``"the loss"``).
        select: compare only item ``select`` of a tuple result (partial credit per part).
    """
    __tracebackhide__ = True
    name = name or _name(reference)
    mistakes = list(mistakes)
    tol = {"rtol": rtol, "atol": atol}

    def part(result: Any, reference_result: Any) -> Any:
        if select is None:
            return result
        if not isinstance(result, (tuple, list)) or len(result) != len(reference_result):
            raise GradingError(
                f"{name} should return a tuple of {len(reference_result)} items, got "
                f"{describe(result)}"
            )
        return result[select]

    for case in cases:
        args, kwargs = _clone_args(case.args, case.kwargs)
        full = reference(*_clone_args(args, kwargs)[0], **_clone_args(args, kwargs)[1])
        expected = part(full, full)
        got = part(call(student, *args, name=name, forbidden=forbidden, **kwargs), full)
        problem = diagnose(got, expected, rtol=rtol, atol=atol, path=what)
        if problem:
            header = _call_text(name, reference, case.args, case.kwargs)
            if case.label:
                header += f" [{case.label}]"
            hint = _explain(
                got,
                expected,
                mistakes,
                lambda m, a=args, k=kwargs, f=full: part(
                    m.fn(*_clone_args(a, k)[0], **_clone_args(a, k)[1]), f
                ),
                tol,
            )
            raise _fail(header, problem, hint)
    return True


def check_raises(
    student: Callable,
    exception: type[BaseException],
    *args: Any,
    why: str,
    match: str | None = None,
    forbidden: Mapping[str, str] = {},
    name: str | None = None,
    **kwargs: Any,
) -> bool:
    """The call must raise ``exception`` with a message (matching ``match``, a regex)."""
    __tracebackhide__ = True
    name = name or _name(student)
    text = _call_text(name, student, args, kwargs)
    with quiet(), forbid(forbidden, fn=student, name=name):
        try:
            result = student(*args, **kwargs)
        except NotImplementedError:
            raise _not_implemented(name) from None
        except _ForbiddenCall as exc:
            raise GradingError(str(exc.args[0])) from None
        except exception as exc:
            message = str(exc)
            if not message.strip():
                raise GradingError(
                    f"{text} raised {type(exc).__name__} without a message: say what is wrong "
                    "and how to fix the call"
                ) from None
            if match and not re.search(match, message, flags=re.IGNORECASE):
                raise GradingError(
                    f"{text} raised {type(exc).__name__}({message!r}), but the message should "
                    f"mention {match!r}"
                ) from None
            return True
        except Exception as exc:
            raise GradingError(
                f"{text} raised {type(exc).__name__}: {exc}; expected a {exception.__name__} "
                f"because {why}"
            ) from exc
    raise GradingError(
        f"{text} returned {describe(result)} instead of raising {exception.__name__}: {why}"
    )


def check_no_future_leak(
    student: Callable,
    inputs: Mapping[str, Tensor],
    *,
    time_dim: int = -2,
    forbidden: Mapping[str, str] = {},
    name: str | None = None,
    **fixed: Any,
) -> bool:
    """Changing positions after ``t`` in every input must not change outputs ``0..t``.

    ``inputs`` are the sequence arguments, passed by keyword (time along ``time_dim``); ``fixed``
    are passed unchanged (e.g. ``is_causal=True``). This catches a missing, inverted or shifted
    causal mask whatever the implementation.
    """
    __tracebackhide__ = True
    name = name or _name(student)
    base = call(student, name=name, forbidden=forbidden, **inputs, **fixed)
    if not isinstance(base, Tensor):
        raise GradingError(f"{name} should return a tensor, got {describe(base)}")
    g = torch.Generator().manual_seed(7)
    length = base.size(time_dim)
    for t in range(length - 1):
        changed = {}
        for key, value in inputs.items():
            new = value.clone()
            future = new.narrow(time_dim, t + 1, max(new.size(time_dim) - t - 1, 0))
            future.copy_(torch.randn(future.shape, generator=g, dtype=new.dtype) * 3)
            changed[key] = new
        out = call(student, name=name, forbidden=forbidden, **changed, **fixed)
        past_now, past_before = out.narrow(time_dim, 0, t + 1), base.narrow(time_dim, 0, t + 1)
        moved = ~torch.isclose(past_now, past_before, rtol=1e-4, atol=1e-5, equal_nan=True)
        if moved.any():
            axis = time_dim % base.ndim
            pos = int(moved.nonzero()[0][axis])
            raise GradingError(
                f"{name} leaks the future: the output at position {pos} changed when only the "
                f"inputs at positions {t + 1} and later were changed. With a causal mask, "
                f"position i may only look at positions 0..i"
            )
    return True


def _init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(
                torch.randn(p.shape, generator=generator, dtype=p.dtype) / math.sqrt(p.shape[-1])
            )


def _structure_problem(student: nn.Module, reference: nn.Module, name: str) -> str | None:
    got = {k: tuple(v.shape) for k, v in student.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    if missing:
        sub = missing[0].rsplit(".", 1)[0]
        return (
            f"{name} has no parameter `{missing[0]}`; the exercise names its submodules "
            f"exactly (`{sub}` ...), so check the attribute names and whether bias= is passed on"
        )
    if extra:
        return (
            f"{name} has a parameter `{extra[0]}` that the exercise does not have: "
            "check bias= and that you made no extra layers"
        )
    for key, shape in want.items():
        if got[key] != shape:
            return (
                f"`{key}` has shape {got[key]}, expected {shape}: nn.Linear(in_features, "
                "out_features) stores its weight as (out, in); check which width goes where"
            )
    return None


def check_module(
    student_cls: type,
    reference_cls: type,
    init_kwargs: Mapping[str, Any],
    cases: Iterable[Case],
    *,
    mistakes: Iterable[Mistake] = (),
    forbidden: Mapping[str, str] = {},
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    what: str = "the output",
) -> bool:
    """Build both modules, give them the same weights, compare ``forward`` on every case.

    Checks first that the student's module is an ``nn.Module`` with the same parameter names
    and shapes (so the reference weights can be loaded), then the outputs. Mistakes receive the
    reference module followed by the case's arguments.
    """
    __tracebackhide__ = True
    name = f"{student_cls.__name__}({', '.join(f'{k}={v!r}' for k, v in init_kwargs.items())})"
    if not (isinstance(student_cls, type) and issubclass(student_cls, nn.Module)):
        raise GradingError(f"{student_cls!r} should be a class deriving from nn.Module")
    student = call(student_cls, name=name, forbidden=forbidden, **init_kwargs)
    reference = reference_cls(**init_kwargs)
    _init_parameters(reference, torch.Generator().manual_seed(seed))
    problem = _structure_problem(student, reference, name)
    if problem:
        raise GradingError(problem)
    student.load_state_dict(reference.state_dict())
    mistakes = list(mistakes)
    tol = {"rtol": rtol, "atol": atol}
    for case in cases:
        args, kwargs = _clone_args(case.args, case.kwargs)
        with torch.no_grad():
            expected = reference(*_clone_args(args, kwargs)[0], **_clone_args(args, kwargs)[1])
            got = call(student, *args, name=f"{name}.forward", forbidden=forbidden, **kwargs)
        problem = diagnose(got, expected, rtol=rtol, atol=atol, path=what)
        if problem:
            header = _call_text(f"{name}.forward", reference.forward, case.args, case.kwargs)
            if case.label:
                header += f" [{case.label}]"

            def run_mistake(m: Mistake, args: tuple = args, kwargs: dict = kwargs) -> Any:
                with torch.no_grad():
                    a, k = _clone_args(args, kwargs)
                    return m.fn(reference, *a, **k)

            raise _fail(header, problem, _explain(got, expected, mistakes, run_mistake, tol))
    return True


# ---------------------------------------------------------------------------------------------
# Known attention mistakes, shared by chapters 05–09.
# ---------------------------------------------------------------------------------------------


def _attend(
    q: Tensor,
    k: Tensor,
    v: Tensor | None,
    mask: Tensor | None,
    scale: float,
    *,
    dim: int = -1,
    fill: float = -math.inf,
    nan_rows: bool = False,
    transpose_scores: bool = False,
) -> Tensor:
    """Attention with knobs for each mistake: the softmax axis, the fill value, NaN rows."""
    scores = (k @ q.transpose(-2, -1) if transpose_scores else q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, fill)
        else:
            scores = scores + mask
    weights = torch.softmax(scores, dim=dim)
    if not nan_rows:
        weights = weights.nan_to_num(nan=0.0)
    return weights if v is None else weights @ v


def _causal(t: int, s: int, diagonal: int = 0) -> Tensor:
    return torch.ones(t, s, dtype=torch.bool).tril(diagonal)


def softmax_mistakes() -> list[Mistake]:
    """Wrong versions of ``softmax(x, dim=-1)``."""

    def other_axis(axis: int) -> Callable:
        def fn(x: Tensor, dim: int = -1) -> Tensor:
            if axis >= x.ndim or axis == dim % x.ndim:
                raise ValueError("not a different axis")
            return torch.softmax(x, axis)

        return fn

    wrong_axis = (
        "the softmax normalises along the wrong axis: the values along `dim` (the argument) "
        "must sum to 1"
    )
    no_keepdim = (
        "the sum over `dim` loses its axis, so the division broadcasts along the wrong axis: "
        "use keepdim=True"
    )
    return [Mistake(wrong_axis, other_axis(axis)) for axis in range(4)] + [
        Mistake(
            "the numerators are not divided by their sum (exp(x) alone is not a distribution)",
            lambda x, dim=-1: torch.exp(x - x.amax(dim, keepdim=True)),
        ),
        Mistake(
            no_keepdim, lambda x, dim=-1: _unkept(torch.exp(x - x.amax(dim, keepdim=True)), dim)
        ),
        Mistake(no_keepdim, lambda x, dim=-1: _unkept(torch.exp(x), dim)),
    ]


def _unkept(e: Tensor, dim: int) -> Tensor:
    return e / e.sum(dim)  # the mistake: without keepdim the sum broadcasts along another axis


def attention_mistakes(*, with_value: bool) -> list[Mistake]:
    """Wrong versions of ``attention_weights`` (``with_value=False``) or of
    ``scaled_dot_product_attention`` (``True``), with the SDPA signature."""
    names = ["query", "key", "value"][: 3 if with_value else 2] + ["attn_mask", "is_causal"]

    def make(
        description: str,
        *,
        scale_fn: Callable[[float | None, int], float] | None = None,
        causal_diagonal: int = 0,
        invert_causal: bool = False,
        invert: bool = False,
        **attend_knobs: Any,
    ) -> Mistake:
        def fn(*args: Any, **kwargs: Any) -> Tensor:
            a = dict(zip(names, args)) | kwargs
            q, k, v = a["query"], a["key"], a.get("value")
            mask, scale = a.get("attn_mask"), a.get("scale")
            d = q.size(-1)
            if scale_fn is not None:
                scale = scale_fn(scale, d)
            elif scale is None:
                scale = 1 / math.sqrt(d)
            if a.get("is_causal", False):
                mask = _causal(q.size(-2), k.size(-2), causal_diagonal)
                mask = ~mask if invert_causal else mask
            elif invert and mask is not None and mask.dtype == torch.bool:
                mask = ~mask
            return _attend(q, k, v, mask, scale, **attend_knobs)

        return Mistake(description, fn)

    unscaled = "the scores are not scaled: multiply Q·Kᵀ by 1/√d_k, or by `scale` when it is given"
    return [
        make(unscaled, scale_fn=lambda given, d: 1.0),
        make(
            "`scale` is ignored: when the caller passes scale=..., use it instead of 1/√d_k",
            scale_fn=lambda given, d: 1 / math.sqrt(d),
        ),
        make(
            "the scores are divided by d_k instead of √d_k",
            scale_fn=lambda given, d: 1 / d if given is None else given,
        ),
        make(
            "the scores are multiplied by √d_k instead of divided by it",
            scale_fn=lambda given, d: math.sqrt(d) if given is None else given,
        ),
        make(
            "the softmax runs over the queries (dim -2); each query's weights over the keys "
            "(the last axis) must sum to 1",
            dim=-2,
        ),
        make(
            "the scores are transposed: compute Q·Kᵀ (queries along rows), not K·Qᵀ",
            transpose_scores=True,
        ),
        make(
            "the mask polarity is inverted: True means 'may attend' (kept), as in "
            "F.scaled_dot_product_attention; nn.MultiheadAttention uses the opposite",
            invert=True,
        ),
        make(
            "the causal mask is inverted: query i must see keys 0..i (on and below the "
            "diagonal), not the future",
            invert_causal=True,
        ),
        make(
            "the causal mask is shifted by one: query i must also see key i itself",
            causal_diagonal=-1,
        ),
        make(
            "the causal mask is shifted by one: query i may see keys 0..i, not key i + 1",
            causal_diagonal=1,
        ),
        make(
            "blocked scores are set to 0 before the softmax; 0 is an ordinary score, use -inf "
            "so that exp() gives exactly 0",
            fill=0.0,
        ),
        make(
            "a query whose keys are all blocked gives NaN (exp(-inf) / 0); it must give a row "
            "of zeros, as torch's scaled_dot_product_attention does",
            nan_rows=True,
        ),
    ]


def projection_mistakes(*, cross: bool) -> list[Mistake]:
    """Wrong versions of ``SelfAttention.forward`` / ``CrossAttention.forward`` (module first)."""

    def run(
        m: nn.Module,
        x: Tensor,
        context: Tensor | None,
        mask: Tensor | None,
        causal: bool,
        *,
        q_src: str = "x",
        kv_src: str = "context",
        swap: str = "",
        scale: Any = None,
        invert: bool = False,
    ) -> Tensor:
        src = {"x": x, "context": x if context is None else context}
        projections = {"q": m.q_proj, "k": m.k_proj, "v": m.v_proj}
        if swap:
            a, b = swap
            projections[a], projections[b] = projections[b], projections[a]
        q = projections["q"](src[q_src])
        k = projections["k"](src[kv_src])
        v = projections["v"](src[kv_src])
        d = q.size(-1)
        scale = 1 / math.sqrt(d) if scale is None else scale(d, x.size(-1))
        if causal:
            mask = _causal(q.size(-2), k.size(-2))
        if mask is not None and mask.dtype == torch.bool and invert:
            mask = ~mask
        return _attend(q, k, v, mask, scale)

    def make(description: str, **knobs: Any) -> Mistake:
        if cross:

            def fn(m: nn.Module, x: Tensor, context: Tensor, attn_mask: Tensor | None = None):
                return run(m, x, context, attn_mask, False, **knobs)
        else:

            def fn(
                m: nn.Module, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
            ):
                return run(m, x, None, attn_mask, is_causal, **knobs)

        return Mistake(description, fn)

    found = [
        make("the scores are not scaled by 1/√d_k", scale=lambda d, d_model: 1.0),
        make(
            "the scores are scaled by 1/√d_model; the scale belongs to the width of the "
            "queries and keys, d_k",
            scale=lambda d, d_model: 1 / math.sqrt(d_model),
        ),
        make("k_proj and v_proj are swapped: keys come from k_proj, values from v_proj", swap="kv"),
        make(
            "q_proj and k_proj are swapped: queries come from q_proj, keys from k_proj", swap="qk"
        ),
        make(
            "the mask polarity is inverted: True means 'may attend' (kept)",
            invert=True,
        ),
    ]
    if cross:
        found += [
            make(
                "keys and values are computed from x; in cross-attention they come from the "
                "context (the encoder output), only the queries come from x",
                kv_src="x",
            ),
            make(
                "queries and keys/values are swapped: queries come from x (the decoder), keys "
                "and values from the context",
                q_src="context",
                kv_src="x",
            ),
        ]
    return found


# G.check_all(): every visible test's points in the notebook, as `course check` lists them.
from course_lib.grading_summary import check_all  # noqa: E402,F401

"""The checkers a test cell asserts: each returns ``True`` or raises
:class:`~course_lib.grading.GradingError` with a diagnosis; a :class:`Mistake` turns "values are
off" into "this looks like <a known mistake>".
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.grading.calling import _clone, _clone_args, call, quiet
from course_lib.grading.diagnose import (
    GradingError,
    _call_text,
    _fail,
    _header,
    _name,
    _not_implemented,
    describe,
    diagnose,
)
from course_lib.grading.forbidden import ForbiddenCall, forbid


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


def _explain(
    got: Any, expected: Any, wrong_results: Iterable[tuple[str, Callable[[], Any]]], tol: dict
) -> str | None:
    """The first mistake whose result equals ``got`` while differing from ``expected``.

    ``wrong_results`` are (description, compute) pairs: ``compute()`` gives what that mistake
    would have returned for the same arguments (see :func:`_hypotheses`).
    """
    for description, compute in wrong_results:
        try:
            with quiet():
                wrong = compute()
        except Exception:
            continue  # this mistake cannot happen for these arguments
        if diagnose(got, wrong, **tol) is None and diagnose(wrong, expected, **tol) is not None:
            return description
    return None


def _hypotheses(
    mistakes: Iterable[Mistake], run: Callable[[Mistake], Any]
) -> list[tuple[str, Callable[[], Any]]]:
    """(description, compute) pairs for :func:`_explain`: ``run(mistake)`` computes one."""
    return [(m.description, functools.partial(run, m)) for m in mistakes]


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
                _hypotheses(
                    mistakes,
                    lambda m, a=args, k=kwargs, f=full: part(
                        m.fn(*_clone_args(a, k)[0], **_clone_args(a, k)[1]), f
                    ),
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
        except ForbiddenCall as exc:
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

            raise _fail(
                header, problem, _explain(got, expected, _hypotheses(mistakes, run_mistake), tol)
            )
    return True


def _numpy_problem(got: Any, expected: Any, path: str) -> str | None:
    """The result must be a numpy array wherever the reference returns one."""
    if isinstance(expected, np.ndarray) and not isinstance(got, np.ndarray):
        return (
            f"{path} should be a numpy array (np.ndarray) but is {describe(got)}; build it "
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
        got_raw = call(
            student, *_clone(case.args), name=name, forbidden=forbidden, **_clone(case.kwargs)
        )
        header = _header(name, case.args, case.kwargs, case.label)
        problem = _numpy_problem(got_raw, expected_raw, what)
        if problem:
            raise GradingError(f"{header}:\n  {problem}")
        got, expected = _to_torch(got_raw), _to_torch(expected_raw)
        problem = diagnose(got, expected, path=what, **tol)
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
    call(student, *args, name=name, forbidden=forbidden)
    header = _header(name, args, {}, label)
    after = [_state(a) for a in args[1:] if isinstance(a, nn.Module)]
    if diagnose(after, before) is not None:
        raise GradingError(
            f"{header}:\n  the source module was changed; copy its weights without modifying it"
        )
    got = _state(args[0])
    tol = {"rtol": 1e-6, "atol": 1e-7}
    problem = diagnose(got, expected, path="the loaded state_dict", **tol)
    if problem:

        def wrong_state(m: Mistake) -> dict[str, Tensor]:
            fresh = build()
            m.fn(*fresh)
            return _state(fresh[0])

        wrong = [(m.description, lambda m=m: wrong_state(m)) for m in mistakes]
        raise _fail(header, problem, _explain(got, expected, wrong, tol))
    return True

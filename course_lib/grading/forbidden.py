"""The one forbidden-call API: which library functions a graded function may not call, and how
that is enforced.

In a notebook, :func:`forbid` patches the forbidden objects (and their aliases in the notebook's
namespace) while the student's code runs. When ``course grade`` runs the student's code in a
sandboxed process, the grader calls :func:`route_remote` once: for a remote function,
:func:`forbid` only publishes the rule list (:func:`remote_rules`), and the student's process
blocks each name itself (:func:`targets`, :func:`forbidden_identity`, :class:`ForbiddenCall`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn

_is_remote: Callable[[Any], bool] | None = None
_REMOTE_RULES: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "course_lib.grading.forbid.remote_rules", default=None
)


def route_remote(is_remote: Callable[[Any], bool]) -> None:
    """Enforce the rules elsewhere for the functions ``is_remote`` accepts (once per process).

    ``course grade`` runs the student's code in a sandboxed process and hands the checkers
    proxies: patching this process's modules would miss what the student imported there. For
    a proxy, :func:`forbid` publishes the *whole* rule list (:func:`remote_rules`), which the
    call hands to the student's process; :func:`forbidden_identity` leaves the identity check
    to that process; :func:`loaded_only` keeps every rule, because what is loaded here says
    nothing about the student's process.
    """
    global _is_remote
    _is_remote = is_remote


def _remote(fn: Any) -> bool:
    return _is_remote is not None and fn is not None and _is_remote(fn)


def remote_rules() -> dict[str, str] | None:
    """The rules of the :func:`forbid` block around a remote call, or None outside one."""
    return _REMOTE_RULES.get()


class ForbiddenCall(BaseException):
    # BaseException, so that a student's ``except Exception`` cannot swallow it.
    pass


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
    """Forbid the course's own reference modules: ``forbidden=no_reference(ref)``."""
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
def targets(path: str) -> tuple[tuple[Any, str, Any], ...]:
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
    are blocked too. For a remote ``fn`` (see :func:`route_remote`) the rules are only
    published, for the process where ``fn`` runs.
    """
    if _remote(fn):
        token = _REMOTE_RULES.set(dict(forbidden))
        try:
            yield []
        finally:
            _REMOTE_RULES.reset(token)
        return
    patches: list[tuple[Any, str, bool, Any]] = []  # (owner, attr, had_own_attr, original)
    violations: list[str] = []

    def stub_for(path: str, why: str) -> Callable:
        def stub(*args: Any, **kwargs: Any) -> Any:
            msg = f"{name} calls {path}, which this exercise does not allow: {why}"
            violations.append(msg)
            raise ForbiddenCall(msg)

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
            for owner, attr, obj in targets(path):
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


def forbidden_identity(fn: Any, forbidden: Mapping[str, str], name: str) -> str | None:
    """Why ``fn`` *is* a forbidden object (``f1 = sklearn.metrics.f1_score``), or None."""
    if _remote(fn):
        return None  # checked by name in the process where fn lives
    target = fn.__func__ if hasattr(fn, "__func__") else fn
    for path, why in forbidden.items():
        for _owner, _attr, obj in targets(path):
            if target is obj:
                return f"{name} is {path} itself: {why}"
            if isinstance(target, type) and isinstance(obj, type) and issubclass(target, obj):
                return f"{name} subclasses {obj.__module__}.{obj.__qualname__}: {why}"
    return None


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
    at call time, is the one way around this). Under :func:`route_remote` every rule is kept:
    what is loaded here says nothing about the student's process.
    """
    if _is_remote is not None:
        return dict(forbidden)
    return {p: why for p, why in forbidden.items() if p.split(".")[0] in sys.modules}

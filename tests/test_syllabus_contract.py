"""Every graded name in SYLLABUS.md exists in course_lib with exactly that signature.

The syllabus is parsed, not copied into a table, so a change to it shows up here at once.
``tests/data/SYLLABUS.md`` is a copy for clones without ``../shared``; a test keeps the two equal.
"""

from __future__ import annotations

import ast
import importlib
import inspect

import numpy as np
import pytest
import torch
from syllabus import SHARED, SPECS, SYLLABUS, VENDORED, Spec, parse_syllabus  # noqa: F401
from torch import nn

from course_lib import CHAPTER_MODULES


def expected_parameters(params: str) -> list[tuple[str, str, object]]:
    """(name, kind, default) for each parameter of a syllabus signature."""
    tree = ast.parse(f"def f({params}): pass").body[0]
    args = tree.args
    namespace = {"torch": torch, "np": np, "None": None}
    out: list[tuple[str, str, object]] = []
    positional = args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults):
        value = (
            inspect.Parameter.empty if default is None else eval(ast.unparse(default), namespace)
        )
        out.append((arg.arg, "POSITIONAL_OR_KEYWORD", value))
    if args.vararg:
        out.append((args.vararg.arg, "VAR_POSITIONAL", inspect.Parameter.empty))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        value = (
            inspect.Parameter.empty if default is None else eval(ast.unparse(default), namespace)
        )
        out.append((arg.arg, "KEYWORD_ONLY", value))
    return out


def test_the_parser_found_every_exercise() -> None:
    # 61 graded entries (13_gpt included): a parser that silently skips bullets must not pass.
    names = {(s.chapter, s.owner, s.name) for s in SPECS}
    assert len(names) == len(SPECS)
    assert len([s for s in SPECS if s.owner is None]) >= 61
    assert {s.chapter for s in SPECS} == set(CHAPTER_MODULES)
    for expected in ["encode", "decode", "bpe_decode", "merge_heads", "squad_f1", "analogy"]:
        assert any(s.name == expected for s in SPECS), expected
    mha = next(s for s in SPECS if s.name == "MultiHeadAttention")
    assert mha.submodules == ["q_proj", "k_proj", "v_proj", "out_proj"]


def _target(spec: Spec):
    module = importlib.import_module(f"course_lib.{CHAPTER_MODULES[spec.chapter]}")
    if spec.owner:
        return getattr(getattr(module, spec.owner), spec.name)
    assert hasattr(module, spec.name), (
        f"course_lib.{module.__name__} has no {spec.name!r} (syllabus {spec.chapter})"
    )
    return getattr(module, spec.name)


@pytest.mark.parametrize(
    "spec",
    [s for s in SPECS if not (s.owner is None and s.name[0].isupper())],
    ids=lambda s: f"{s.chapter}:{s.owner + '.' if s.owner else ''}{s.name}",
)
def test_signature_matches_syllabus(spec: Spec) -> None:
    target = _target(spec)
    got = list(inspect.signature(target).parameters.values())
    if spec.owner:
        assert got[0].name == "self"
        got = got[1:]
    got_triples = [(p.name, p.kind.name, p.default) for p in got]
    expected = expected_parameters(spec.params)
    assert [g[:2] for g in got_triples] == [e[:2] for e in expected], (
        f"{spec.name}: parameters {got_triples} differ from the syllabus {expected}"
    )
    for (name, _, got_default), (_, _, want) in zip(got_triples, expected):
        assert got_default == want or (got_default is want), (
            f"{spec.name}({name}=...): default {got_default!r}, syllabus says {want!r}"
        )


# Smallest valid constructor arguments, to look at the submodules the syllabus names.
CONSTRUCT = {
    "LearnedPositionalEmbedding": (8, 4),
    "SelfAttention": (8,),
    "CrossAttention": (8, 6),
    "MultiHeadAttention": (8, 2),
    "FeedForward": (8, 16),
    "TransformerEncoderLayer": (8, 2, 16),
}


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if s.owner is None and s.name[0].isupper()], ids=lambda s: s.name
)
def test_class_is_a_module_with_the_named_submodules(spec: Spec) -> None:
    cls = _target(spec)
    assert issubclass(cls, nn.Module)
    module = cls(*CONSTRUCT[spec.name])
    children = dict(module.named_children())
    for name in spec.submodules:
        assert name in children, f"{spec.name} has no submodule {name!r}"
    assert spec.submodules, f"the syllabus names submodules for {spec.name}"


def test_cross_attention_inherits_the_submodule_list() -> None:
    cross = next(s for s in SPECS if s.name == "CrossAttention")
    assert cross.submodules == ["q_proj", "k_proj", "v_proj"]


def test_projections_are_linear_layers() -> None:
    from course_lib.self_attention import CrossAttention, SelfAttention

    for module in (SelfAttention(8), CrossAttention(8, 6)):
        children = dict(module.named_children())
        assert all(isinstance(children[n], nn.Linear) for n in ("q_proj", "k_proj", "v_proj"))


def test_vendored_syllabus_is_current() -> None:
    if not SHARED.exists():
        pytest.skip("../shared/SYLLABUS.md is not beside this checkout")
    assert VENDORED.read_text(encoding="utf-8") == SHARED.read_text(encoding="utf-8"), (
        "tests/data/SYLLABUS.md is stale: copy ../shared/SYLLABUS.md over it"
    )

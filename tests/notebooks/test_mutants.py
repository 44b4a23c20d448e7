"""Mutation suite: plausible wrong implementations lose points, correct variants get full marks.

The variants live in ``tests/notebooks/mutants/<id>.py`` (data only); adding a chapter means adding a file.
All of a chapter's variants are autograded by real nbgrader in the chapter's single run (see
``tests/notebook_harness.py``), so these tests share the xdist group of ``test_notebooks.py``.
"""

from __future__ import annotations

import re

import notebook_harness as H
import pytest
from syllabus import SPECS

CHAPTERS = H.chapters()


def _params(kind: str) -> list:
    params = []
    for chapter in CHAPTERS:
        for v in H.load_variants(chapter):
            if v.kind == kind:
                marks = [pytest.mark.slow, pytest.mark.xdist_group(chapter)]
                params.append(
                    pytest.param(chapter, v, id=f"{chapter}:{v.function}:{v.name}", marks=marks)
                )
    return params


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_graded_function_has_mutants_and_an_alternative(chapter: str) -> None:
    variants = H.load_variants(chapter)
    graded = {s.name for s in SPECS if s.chapter == chapter and s.owner is None}
    for name in graded:
        mutants = [v for v in variants if v.function == name and v.kind == "mutant"]
        alternatives = [v for v in variants if v.function == name and v.kind == "alternative"]
        assert len(mutants) >= 3, f"{name}: {len(mutants)} mutants, want at least 3"
        assert alternatives, f"{name}: no correct alternative implementation"
    assert {v.function for v in variants} <= graded
    for v in variants:
        compile(v.code, v.name, "exec")  # a typo in a variant must not pass as a "mutant"
        assert re.search(rf"^(def|class) {v.function}\b", v.code, flags=re.M), v.name


def test_packing_keeps_dependent_functions_apart() -> None:
    f = H.Variant("f", "a", "def f(): pass")
    g = H.Variant("g", "b", "def g(): return f()")
    h = H.Variant("h", "c", "def h(): pass")
    groups = H.pack([f, g, h], {"f": set(), "g": {"f"}, "h": set()})
    assert [[v.function for v in grp] for grp in groups] == [["f", "h"], ["g"]]


@pytest.mark.parametrize(("chapter", "variant"), _params("mutant"))
def test_mutant_loses_points(chapter: str, variant: H.Variant) -> None:
    results = H.grade_chapter(chapter)
    graded = results.graded[results.student_of(variant)]
    cells = results.cells_of(variant.function)
    lost = [c for c in cells if graded.scores[c][0] < graded.scores[c][1]]
    assert lost, f"{variant.name!r} still gets full marks on {cells}"
    if variant.expect:
        feedback = "\n".join(graded.outputs[c] for c in lost)
        assert re.search(variant.expect, feedback), (
            f"the feedback for {variant.name!r} should match {variant.expect!r}:\n{feedback}"
        )


@pytest.mark.parametrize(("chapter", "variant"), _params("alternative"))
def test_alternative_gets_full_marks(chapter: str, variant: H.Variant) -> None:
    results = H.grade_chapter(chapter)
    graded = results.graded[results.student_of(variant)]
    for cell in results.cells_of(variant.function):
        score, max_score = graded.scores[cell]
        assert score == max_score, (
            f"{variant.name!r} loses points in {cell}: {graded.outputs[cell]}"
        )

"""Differential suite: every notebook graded by ``course grade`` (the instructor's path).

For each chapter, ONE ``course grade --jobs 2`` run grades: the instructor's solution notebook,
the released blank, the release filled in with the solutions (:func:`notebook_harness.fill`),
and every mutant and correct alternative of ``tests/notebooks/mutants/<id>.py`` packed into submissions
exactly as the nbgrader mutation suite packs them (:func:`notebook_harness.pack`). Then:
solutions and alternatives get full marks, the blank gets 0, every mutant loses points on its
own function's test cells with its expected diagnosis. ``tests/notebooks/test_mutants.py`` asserts the same
of ``nbgrader autograde``, and the two runs share an xdist group (the chapter's) so that their
scores are compared cell by cell for every submission.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import notebook_harness as H
import pytest

CHAPTERS = H.chapters()
COURSE = Path(sys.executable).parent / "course"


@dataclass
class Run:
    """One chapter graded by ``course grade``: per student, per test cell, (points, max, msg)."""

    chapter: str
    groups: list[list[H.Variant]]
    cells: dict[str, dict[str, tuple[float, float, str]]]
    rows: dict[str, dict]
    seconds: float

    def student_of(self, variant: H.Variant) -> str:
        for i, group in enumerate(self.groups):
            if variant in group:
                return f"variants{i:02d}"
        raise KeyError(variant)

    def cells_of(self, function: str) -> list[str]:
        return H.cells_of(function, list(self.cells["solution"]))


def write_corpus(chapter: str, root: Path) -> list[list[H.Variant]]:
    """submitted/<student>/<chapter>/<chapter>.ipynb for the whole corpus of one chapter."""

    def submit(student: str, nb: nbformat.NotebookNode) -> None:
        target = root / student / chapter / f"{chapter}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)

    submit("solution", H.solution(chapter))
    submit("blank", H.released(chapter))
    submit("filled", H.fill(chapter))
    variants = H.load_variants(chapter)
    deps = H.dependencies(chapter, variants)
    groups = H.pack([v for v in variants if v.kind == "mutant"], deps) + H.pack(
        [v for v in variants if v.kind == "alternative"], deps
    )
    for i, group in enumerate(groups):
        submit(f"variants{i:02d}", H.fill(chapter, {v.function: v.code for v in group}))
    return groups


@functools.cache
def grade_with_course(chapter: str) -> Run:
    """The chapter's corpus through ``course grade --jobs 2`` (once per test process)."""
    import time

    base = Path(tempfile.mkdtemp(prefix=f"course-diff-{chapter}-", dir=H._work()))
    groups = write_corpus(chapter, base / "submitted")
    env = dict(os.environ, COURSE_GRADING_SEED=H.TEST_SEED, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(COURSE), "grade", str(base / "submitted"), "--out", str(base / "out")]
        # a generous per-cell limit: CI runs other test groups on the same two cores
        + ["--jobs", "2", "--timeout", "120", "--source", str(H.SOLUTIONS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells, rows = {}, {}
    for state in sorted((base / "out" / ".state").glob("*.json")):
        result = json.loads(state.read_text())["result"]
        rows[result["student_id"]] = result
        cells[result["student_id"]] = {
            c["grade_id"]: (c["points"], c["max_points"], c["message"]) for c in result["cells"]
        }
    return Run(chapter, groups, cells, rows, seconds)


def _variant_params(kind: str) -> list:
    return [
        pytest.param(
            chapter,
            v,
            id=f"{chapter}:{v.function}:{v.name}",
            marks=[pytest.mark.slow, pytest.mark.xdist_group(chapter)],
        )
        for chapter in CHAPTERS
        for v in H.load_variants(chapter)
        if v.kind == kind
    ]


def _chapter_params() -> list:
    return [pytest.param(c, marks=[pytest.mark.slow, pytest.mark.xdist_group(c)]) for c in CHAPTERS]


@pytest.mark.parametrize("chapter", _chapter_params())
def test_solution_and_filled_release_get_full_marks_and_blank_zero(chapter: str) -> None:
    run = grade_with_course(chapter)
    for student in ("solution", "filled"):
        lost = {g: c for g, c in run.cells[student].items() if c[0] < c[1]}
        assert not lost, f"{student} loses points under course grade: {lost}"
        assert run.rows[student]["status"] == "graded", run.rows[student]["status_text"]
        assert run.rows[student]["flags"] == [], run.rows[student]["flags"]
    blank = run.rows["blank"]
    assert blank["score"] == 0 and blank["max_score"] > 0, blank


@pytest.mark.parametrize("chapter", _chapter_params())
def test_course_grade_scores_every_cell_as_nbgrader_autograde(chapter: str) -> None:
    """Same corpus, same packing, same seed: ``nbgrader autograde`` (the run that
    ``test_mutants.py`` shares, in this xdist group) and ``course grade`` agree cell by cell."""
    ours = grade_with_course(chapter)
    theirs = H.grade_chapter(chapter)
    assert [[v.name for v in g] for g in ours.groups] == [
        [v.name for v in g] for g in theirs.groups
    ]
    differ = []
    for student in ["solution", "blank"] + [f"variants{i:02d}" for i in range(len(ours.groups))]:
        for gid, (score, _max) in theirs.graded[student].scores.items():
            if ours.cells[student][gid][0] != score:
                differ.append((student, gid, score, ours.cells[student][gid]))
    assert not differ, differ


@pytest.mark.parametrize(("chapter", "variant"), _variant_params("mutant"))
def test_mutant_loses_points_under_course_grade(chapter: str, variant: H.Variant) -> None:
    run = grade_with_course(chapter)
    got = run.cells[run.student_of(variant)]
    cells = run.cells_of(variant.function)
    lost = [c for c in cells if got[c][0] < got[c][1]]
    assert lost, f"{variant.name!r} still gets full marks on {cells} under course grade"
    if variant.expect:
        feedback = "\n".join(got[c][2] for c in lost)
        assert re.search(variant.expect, feedback), (
            f"the feedback for {variant.name!r} should match {variant.expect!r}:\n{feedback}"
        )


@pytest.mark.parametrize(("chapter", "variant"), _variant_params("alternative"))
def test_alternative_gets_full_marks_under_course_grade(chapter: str, variant: H.Variant) -> None:
    run = grade_with_course(chapter)
    got = run.cells[run.student_of(variant)]
    for cell in run.cells_of(variant.function):
        assert got[cell][0] == got[cell][1], f"{variant.name!r} loses points in {cell}: {got[cell]}"


def summary(chapter: str) -> str:
    """One line per chapter: the counts the issue asks for (used by ``python -m``)."""
    run = grade_with_course(chapter)
    variants = H.load_variants(chapter)
    caught = sum(
        any(
            run.cells[run.student_of(v)][c][0] < run.cells[run.student_of(v)][c][1]
            for c in run.cells_of(v.function)
        )
        for v in variants
        if v.kind == "mutant"
    )
    full = sum(
        all(
            run.cells[run.student_of(v)][c][0] == run.cells[run.student_of(v)][c][1]
            for c in run.cells_of(v.function)
        )
        for v in variants
        if v.kind == "alternative"
    )
    n_mut = sum(v.kind == "mutant" for v in variants)
    n_alt = len(variants) - n_mut
    sol = run.rows["solution"]
    return (
        f"{chapter}: solution {sol['score']:g}/{sol['max_score']:g}, "
        f"blank {run.rows['blank']['score']:g}, mutants caught {caught}/{n_mut}, "
        f"alternatives full {full}/{n_alt}, {len(run.rows)} submissions in {run.seconds:.0f} s"
    )


if __name__ == "__main__":
    for name in sys.argv[1:] or CHAPTERS:
        print(summary(name), flush=True)

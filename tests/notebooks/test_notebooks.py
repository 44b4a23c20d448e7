"""The graded notebooks: built from their sources, released by `course release`, graded by the
real nbgrader (solutions full marks, releases zero, harmless warnings free, every cell fast).

The fast tests check the conventions of every notebook (see ``course_lib.grading``); the slow
ones share one ``nbgrader autograde`` run per chapter with ``test_mutants.py`` (same xdist
group), see ``tests/notebook_harness.py``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import notebook_harness as H
import pytest
from syllabus import SPECS

CHAPTERS = H.chapters()
CELL_LIMIT_S = 2.0


def _graded_names(chapter: str) -> set[str]:
    return {s.name for s in SPECS if s.chapter == chapter and s.owner is None}


def test_there_are_notebooks() -> None:
    assert CHAPTERS, "no solutions/<id>/<id>.ipynb found"
    assert all(re.fullmatch(r"\d\d_[a-z_]+", c) for c in CHAPTERS), CHAPTERS


def test_solution_notebooks_are_built_from_their_sources() -> None:
    proc = subprocess.run(
        [sys.executable, str(H.REPO_ROOT / "tools" / "build_solutions.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercises_are_committed_and_clean(chapter: str) -> None:
    for nb in (H.solution(chapter), H.released(chapter)):
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, "outputs not cleared"
    released = H.released(chapter)
    text = json.dumps(released)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "COURSE_GRADING_SEED=" not in text  # the instructor's seed never ships


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_one_solution_cell_per_graded_function(chapter: str) -> None:
    solutions = H.solution_cells(H.solution(chapter))
    assert set(solutions) == _graded_names(chapter), "the syllabus Exercise list, nothing more"
    for name, cell in solutions.items():
        lines = cell.source.splitlines()
        begin = [i for i, ln in enumerate(lines) if ln.strip() == "### BEGIN SOLUTION"]
        assert begin, f"{name}: no solution markers"
        # the signature (and docstring) stay visible: the markers are inside the body
        before = "\n".join(lines[: begin[0]])
        assert re.search(rf"(def|class) {name}\b", before), f"{name}: signature inside markers"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_test_cells_follow_the_conventions(chapter: str) -> None:
    nb = H.solution(chapter)
    tests = H.test_cells(nb)
    points = sum(c.metadata.nbgrader.points for c in tests.values())
    assert 10 <= points <= 20, f"{chapter} has {points} points"
    for name in _graded_names(chapter):
        assert H.cells_of(name, list(tests)), f"{name} has no test cell"
    for gid, cell in tests.items():
        assert cell.metadata.nbgrader.points > 0
        assert "### BEGIN HIDDEN TESTS" in cell.source, f"{gid}: no hidden tests"
        assert "from course_lib import grading as G" in cell.source
        visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
        for part in (cell.source, visible):
            body = ast.parse(part).body
            assert isinstance(body[-1], ast.Assert), f"{gid}: must end with an assert"
        imports = [
            n
            for n in ast.walk(ast.parse(cell.source))
            if isinstance(n, ast.Import | ast.ImportFrom)
        ]
        assert all(
            getattr(n, "module", "") and n.module.startswith("course_lib") for n in imports
        ), f"{gid}: test cells import only course_lib (keep them light)"
        assert (
            "hidden_generator" in cell.source
            or "hidden_random" in cell.source
            or not re.search(
                r"randn|randint|rand\(", cell.source.split("### BEGIN HIDDEN TESTS")[1]
            )
        ), f"{gid}: hidden randomness must come from the grading seed"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_recap_link_and_an_explorer(chapter: str) -> None:
    nb = H.solution(chapter)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert f"../../book/{chapter}.md" in markdown and f"{chapter}.html" in markdown
    assert "course check" in markdown
    demos = [c for c in nb.cells if c.cell_type == "code" and "nbgrader" not in c.metadata]
    assert demos, "no plot or widget cell"
    assert any("except NotImplementedError" in c.source for c in demos)
    assert any(re.search(r"plt\.|widget", c.source) for c in demos)


# ---------------------------------------------------------------------------------------------
# Real nbgrader, one autograde run per chapter (shared with test_mutants.py)
# ---------------------------------------------------------------------------------------------


def _groups() -> list:
    return [pytest.param(c, marks=[pytest.mark.slow, pytest.mark.xdist_group(c)]) for c in CHAPTERS]


@pytest.mark.parametrize("chapter", _groups())
def test_release_matches_course_release(chapter: str) -> None:
    results = H.grade_chapter(chapter)  # its course ran `course release` on a copy
    generated = H.read(results.course / "exercises" / chapter / f"{chapter}.ipynb")
    committed = H.released(chapter)
    assert generated == committed, (
        f"exercises/{chapter} differs from what `course release {chapter}` generates: run it"
    )
    assert results.submissions >= 3


@pytest.mark.parametrize("chapter", _groups())
def test_solution_gets_full_marks(chapter: str) -> None:
    graded = H.grade_chapter(chapter).graded["solution"]
    failing = {k: v for k, v in graded.scores.items() if v[0] != v[1]}
    assert not failing, "\n".join(f"{k}: {graded.outputs[k]}" for k in failing)
    assert graded.score == graded.max_score > 0


@pytest.mark.parametrize("chapter", _groups())
def test_release_as_released_gets_zero(chapter: str) -> None:
    graded = H.grade_chapter(chapter).graded["blank"]
    assert graded.score == 0, {k: v for k, v in graded.scores.items() if v[0]}
    for gid, text in graded.outputs.items():
        assert "not implemented yet" in text, f"{gid}: {text}"
        assert "Timeout" not in text


@pytest.mark.parametrize("chapter", _groups())
def test_harmless_warnings_cost_nothing(chapter: str) -> None:
    graded = H.grade_chapter(chapter).graded["warnings"]
    failing = {k: v for k, v in graded.scores.items() if v[0] != v[1]}
    assert not failing, "\n".join(f"{k}: {graded.outputs[k]}" for k in failing)


@pytest.mark.parametrize("chapter", _groups())
def test_every_test_cell_is_fast(chapter: str, capsys: pytest.CaptureFixture) -> None:
    results = H.grade_chapter(chapter)
    graded = results.graded["solution"]
    with capsys.disabled():
        print(
            f"\n[{chapter}] autograde of the solution: {graded.total_seconds:.1f} s of execution; "
            f"{results.submissions} submissions autograded in {results.wall_seconds:.0f} s; "
            f"slowest test cell {max(graded.seconds.values()):.2f} s"
        )
    slow = {k: round(s, 2) for k, s in graded.seconds.items() if s > CELL_LIMIT_S}
    assert not slow, f"test cells over {CELL_LIMIT_S} s: {slow}"


@pytest.mark.parametrize("chapter", _groups())
def test_the_points_so_far_cell_is_one_line_under_autograde(chapter: str) -> None:
    """nbgrader runs every cell, ``G.check_all()`` too: under autograde (``$NBGRADER_EXECUTION``)
    it prints one line instead of running the visible tests a second time."""
    from course_lib.grading.summary import GRADING_MESSAGE

    results = H.grade_chapter(chapter)
    for student in ("solution", "blank"):
        path = results.course / "autograded" / student / chapter / f"{chapter}.ipynb"
        nb = H.read(path)
        cells = [c for c in nb.cells if c.cell_type == "code" and "G.check_all()" in c.source]
        assert len(cells) == 1, student
        outputs = cells[0].outputs
        assert [o.get("text") for o in outputs] == [GRADING_MESSAGE + "\n"], outputs

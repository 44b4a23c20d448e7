"""Written answers in nbgrader's gradebook, so that nbgrader's own tools see them.

``course grade`` records the autograded cells in the gradebook (:mod:`.export`). This module
adds, through nbgrader's ``Gradebook`` API, each written-answer cell as a manually graded
markdown grade cell with its points, a ``Grade`` and a ``Comment`` for it in every submission
(nbgrader creates those only for cells that existed when the submission was first recorded),
and the merged marks as ``manual_score``; a cell without a mark ``needs_manual_grade``. Then
``nbgrader export`` writes the total (autograded + written) and formgrader lists the
submissions that still need a person.

A TA's marks come back: :func:`gradebook_marks` reads every written cell's ``manual_score``
before the next run grades, and they are merged like ``--manual`` marks
(:func:`.manual.merge_marks`), so they reach grades.csv, class.json, the report and the LMS
export, and :func:`record_written` writes them back unchanged. To tell a mark a person entered
from one that a ``--manual`` sheet put there, each run keeps the sheets' marks it wrote in
``OUT/manual/gradebook-marks.json`` (:func:`write_ledger`); a gradebook mark that differs from
that file, or is not in it, counts as entered by a person.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from course_lib.instructor.export import _gradebook, write_atomic
from course_lib.instructor.manual import Mark, WrittenCell

LEDGER = Path("manual") / "gradebook-marks.json"


def warn(msg: str) -> None:
    print(f"course grade: warning: {msg}", file=sys.stderr)


def read_ledger(out: Path, db_url: str) -> dict[tuple[str, str, str], float]:
    """The marks that ``--manual`` sheets put into the gradebook at ``db_url`` (as of the last
    run), by (student, assignment, cell); empty when the file is absent, unreadable or about
    another gradebook, so that every gradebook mark then counts as a person's."""
    try:
        data = json.loads((out / LEDGER).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("gradebook") != db_url:
            return {}
        return {(str(s), str(a), str(g)): float(p) for s, a, g, p in data.get("marks", [])}
    except (OSError, ValueError, TypeError):
        return {}


def write_ledger(
    out: Path,
    db_url: str,
    marks: dict[tuple[str, str], dict[str, float]],
    origins: dict[tuple[str, str, str], str] | None = None,
) -> None:
    """Record the marks that sheets put in the gradebook (not those entered in formgrader:
    they stay a person's until that person changes them)."""
    origins = origins or {}
    rows = sorted(
        [s, a, g, p]
        for (s, a), cells in marks.items()
        for g, p in cells.items()
        if origins.get((s, a, g), "sheet") != "formgrader"
    )
    write_atomic(out / LEDGER, json.dumps({"gradebook": db_url, "marks": rows}, indent=1))


def gradebook_marks(
    db_url: str,
    written: dict[str, list[WrittenCell]],
    ledger: dict[tuple[str, str, str], float],
    warn: Callable[[str], None] = warn,
) -> list[Mark]:
    """Every written cell's mark in the gradebook (none if there is no gradebook yet). A mark
    for a cell that is no longer a written cell of the source is left in the gradebook, not
    counted, and named in a warning."""
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///") :]).is_file():
        return []
    known = {(aid, c.grade_id) for aid, cells in written.items() for c in cells}
    gb = _gradebook(db_url)
    marks = []
    try:
        for assignment in gb.assignments:
            aid = assignment.name
            for submission in assignment.submissions:
                sid = submission.student.id
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        if grade.cell.cell_type != "markdown" or grade.manual_score is None:
                            continue
                        gid, points = grade.name, float(grade.manual_score)
                        if (aid, gid) not in known:
                            warn(
                                f"{sid} {aid}/{gid} has {points:g} point(s) in the gradebook "
                                f"{db_url}, but {gid} is not a written-answer cell of {aid} any "
                                "more: the mark is kept there and not counted (restore the cell "
                                "in the source notebook to count it)"
                            )
                            continue
                        wrote = ledger.get((sid, aid, gid))
                        origin = "gradebook" if wrote == points else "formgrader"
                        where = (
                            f"the gradebook {db_url}, formgrader: Manual Grading > {aid} > {sid}"
                        )
                        marks.append(Mark(sid, aid, gid, points, where, origin))
    finally:
        gb.close()
    return marks


def record_written(
    db_url: str,
    results: list[dict],
    written: dict[str, list[WrittenCell]],
    marks: dict[tuple[str, str], dict[str, float]],
) -> int:
    """Add the written cells and marks for every submission in ``results``; returns how many
    grades were written."""
    from nbgrader.api import Comment, Grade, MissingEntry

    if not written:
        return 0
    gb = _gradebook(db_url)
    count = 0
    try:
        warnings.filterwarnings("ignore", message=".*not in session.*")
        cells = {}
        for aid, items in written.items():
            for c in items:
                grade_cell = gb.update_or_create_grade_cell(
                    c.grade_id, aid, aid, max_score=c.points, cell_type="markdown"
                )
                solution_cell = gb.update_or_create_solution_cell(c.grade_id, aid, aid)
                cells[(aid, c.grade_id)] = (grade_cell, solution_cell)
        for r in results:
            aid, sid = r["assignment_id"], r["student_id"]
            if aid not in written or r.get("status") == "missing":
                continue
            try:
                nb = gb.find_submission_notebook(aid, aid, sid)
            except MissingEntry:
                continue
            grades = {g.name: g for g in nb.grades}
            comments = {c.name for c in nb.comments}
            given = marks.get((sid, aid), {})
            for c in written[aid]:
                grade_cell, solution_cell = cells[(aid, c.grade_id)]
                grade = grades.get(c.grade_id)
                if grade is None:
                    grade = Grade(cell_id=grade_cell.id, notebook=nb)
                    gb.db.add(grade)
                if c.grade_id not in comments:
                    gb.db.add(Comment(cell_id=solution_cell.id, notebook=nb))
                grade.auto_score = None
                grade.manual_score = given.get(c.grade_id)
                grade.needs_manual_grade = c.grade_id not in given
                count += 1
        gb.db.commit()
    finally:
        gb.close()
    return count

"""Written answers in nbgrader's gradebook, so that nbgrader's own tools see them.

``course grade`` records the autograded cells in the gradebook (:mod:`.export`). This module
adds, through nbgrader's ``Gradebook`` API, each written-answer cell as a manually graded
markdown grade cell with its points, a ``Grade`` and a ``Comment`` for it in every submission
(nbgrader creates those only for cells that existed when the submission was first recorded),
and the merged marks as ``manual_score``; a cell without a mark ``needs_manual_grade``. Then
``nbgrader export`` writes the total (autograded + written) and formgrader lists the
submissions that still need a person.
"""

from __future__ import annotations

import warnings

from course_lib.instructor.export import _gradebook
from course_lib.instructor.manual import WrittenCell


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

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

Formgrader also lets a TA type a score on an autograded test cell (nbgrader then counts it in
place of the autograder's) and extra credit on any cell. :func:`cell_marks` reads both, so that
``course grade`` totals a submission as ``nbgrader export`` does; ``course grade`` never writes
those fields, so a re-grade keeps them.

A TA may save while ``course grade`` runs. The write-back is a compare-and-set per cell: a mark
is written only where the gradebook still holds what this run read, so a mark saved in between
is never overwritten; :func:`record_written` returns those cells and the run reads again.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from course_lib.instructor.export import _gradebook, one_writer_at_a_time, write_atomic
from course_lib.instructor.manual import Mark, WrittenCell
from course_lib.instructor.roster import ClassSetupError

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


@dataclass(frozen=True)
class Entry:
    """One grade in the gradebook that a person (or a ``--manual`` merge) set: its
    ``manual_score`` and ``extra_credit`` (None where unset)."""

    student_id: str
    assignment_id: str
    grade_id: str
    cell_type: str  # "markdown": a written answer; "code": an autograded test cell
    manual_score: float | None
    extra_credit: float | None


def _where(db_url: str, aid: str, sid: str) -> str:
    return f"the gradebook {db_url}, formgrader: Manual Grading > {aid} > {sid}"


def read_entries(db_url: str) -> list[Entry]:
    """Every grade with a ``manual_score`` or ``extra_credit``, in one query (a class of
    thousands is read in well under a second); none if there is no gradebook yet."""
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///") :]).is_file():
        return []
    import sqlalchemy as sa
    from nbgrader import api as nb

    SA, SN = nb.SubmittedAssignment, nb.SubmittedNotebook
    gb = _gradebook(db_url)
    try:
        query = (
            sa.select(
                SA.student_id,
                nb.Assignment.name,
                nb.GradeCell.name,
                nb.GradeCell.cell_type,
                nb.Grade.manual_score,
                nb.Grade.extra_credit,
            )
            .join(nb.GradeCell, nb.Grade.cell_id == nb.GradeCell.id)
            .join(SN, nb.Grade.notebook_id == SN.id)
            .join(SA, SN.assignment_id == SA.id)
            .join(nb.Assignment, SA.assignment_id == nb.Assignment.id)
            .where(sa.or_(nb.Grade.manual_score.is_not(None), nb.Grade.extra_credit.is_not(None)))
            .order_by(nb.Assignment.name, SA.student_id, nb.GradeCell.name)
        )
        return [
            Entry(str(sid), str(aid), str(gid), str(kind), manual, extra)
            for sid, aid, gid, kind, manual, extra in gb.db.execute(query)
        ]
    finally:
        gb.close()


def gradebook_marks(
    db_url: str,
    written: dict[str, list[WrittenCell]],
    ledger: dict[tuple[str, str, str], float],
    warn: Callable[[str], None] = warn,
    entries: list[Entry] | None = None,
) -> list[Mark]:
    """Every written cell's mark in the gradebook (none if there is no gradebook yet). A mark
    for a cell that is no longer a written cell of the source is left in the gradebook, not
    counted, and named in a warning."""
    known = {(aid, c.grade_id) for aid, cells in written.items() for c in cells}
    marks = []
    for e in read_entries(db_url) if entries is None else entries:
        if e.cell_type != "markdown" or e.manual_score is None:
            continue
        aid, sid, gid, points = e.assignment_id, e.student_id, e.grade_id, float(e.manual_score)
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
        marks.append(Mark(sid, aid, gid, points, _where(db_url, aid, sid), origin))
    return marks


def cell_marks(
    db_url: str,
    tests: dict[str, dict[str, float]],
    written: dict[str, dict[str, float]],
    warn: Callable[[str], None] = warn,
    entries: list[Entry] | None = None,
) -> tuple[dict[tuple[str, str], dict[str, float]], dict[tuple[str, str], dict[str, float]]]:
    """What a TA typed in formgrader beyond the written marks: scores on autograded test cells
    and extra credit on any cell, as ((student, assignment) → {test cell: points},
    (student, assignment) → {cell: extra credit}). ``tests`` and ``written`` give each
    assignment's cells and their points. A score outside the cell's points is an error that
    names where to fix it; a cell the source no longer has is warned about and not counted."""
    scores: dict[tuple[str, str], dict[str, float]] = {}
    extra: dict[tuple[str, str], dict[str, float]] = {}
    for e in read_entries(db_url) if entries is None else entries:
        aid, sid, gid = e.assignment_id, e.student_id, e.grade_id
        cells = {**tests.get(aid, {}), **written.get(aid, {})}
        if gid not in cells:
            if e.cell_type == "code" or e.extra_credit is not None:
                warn(
                    f"{sid} {aid}/{gid} has a mark or extra credit in the gradebook {db_url}, "
                    f"but {aid} has no cell {gid} any more: kept there and not counted"
                )
            continue
        where = _where(db_url, aid, sid)
        if e.cell_type == "code" and e.manual_score is not None:
            top, points = tests.get(aid, {}).get(gid, 0.0), float(e.manual_score)
            if not math.isfinite(points) or not 0 <= points <= top:
                raise ClassSetupError(
                    f"{where}: {sid} {aid}/{gid} is marked {points:g}, outside 0..{top:g}: "
                    "change it in formgrader"
                )
            scores.setdefault((sid, aid), {})[gid] = points
        if e.extra_credit is not None and e.extra_credit != 0:
            bonus = float(e.extra_credit)
            if not math.isfinite(bonus) or bonus < 0:
                raise ClassSetupError(
                    f"{where}: {sid} {aid}/{gid} has extra credit {bonus:g}; it must be a "
                    "number ≥ 0: change it in formgrader"
                )
            extra.setdefault((sid, aid), {})[gid] = bonus
    return scores, extra


def record_written(
    db_url: str,
    results: list[dict],
    written: dict[str, list[WrittenCell]],
    marks: dict[tuple[str, str], dict[str, float]],
    seen: dict[tuple[str, str, str], float] | None = None,
) -> list[tuple[str, str, str]]:
    """Add the written cells and marks for every submission in ``results``, one writer at a time.

    ``seen``: the written cells' marks as this run read them from the gradebook (by student,
    assignment and cell; absent = no mark). A mark is written only where the gradebook still
    holds what was read: the cells that a person changed in between are left as they are and
    returned, so the caller reads again. Without ``seen`` every mark is written."""
    if not written:
        return []
    with one_writer_at_a_time(db_url):
        return _record_written(db_url, results, written, marks, seen)


def _record_written(
    db_url: str,
    results: list[dict],
    written: dict[str, list[WrittenCell]],
    marks: dict[tuple[str, str], dict[str, float]],
    seen: dict[tuple[str, str, str], float] | None,
) -> list[tuple[str, str, str]]:
    """Set-based, so that a class of thousands costs a few statements, not a few per
    submission: the submitted notebooks, their written cells' grades and comments are read in
    one query each; missing grades and comments are inserted in one statement each; a grade is
    updated only where it differs from what this run writes, each update with its compare and
    set."""
    import uuid

    import sqlalchemy as sa
    from nbgrader import api as nb

    gb = _gradebook(db_url)
    changed: list[tuple[str, str, str]] = []
    try:
        warnings.filterwarnings("ignore", message=".*not in session.*")
        cells: dict[tuple[str, str], tuple[str, str]] = {}
        for aid, items in written.items():
            for c in items:
                grade_cell = gb.update_or_create_grade_cell(
                    c.grade_id, aid, aid, max_score=c.points, cell_type="markdown"
                )
                solution_cell = gb.update_or_create_solution_cell(c.grade_id, aid, aid)
                cells[(aid, c.grade_id)] = (grade_cell.id, solution_cell.id)
        SA, SN = nb.SubmittedAssignment, nb.SubmittedNotebook
        notebooks = {
            (str(sid), str(aid)): nid
            for nid, sid, aid in gb.db.execute(
                sa.select(SN.id, SA.student_id, nb.Assignment.name)
                .join(SA, SN.assignment_id == SA.id)
                .join(nb.Assignment, SA.assignment_id == nb.Assignment.id)
                .join(nb.Notebook, SN.notebook_id == nb.Notebook.id)
                .where(nb.Assignment.name.in_(sorted(written)))
                .where(nb.Notebook.name == nb.Assignment.name)
            )
        }
        grade_cells = sorted({g for g, _ in cells.values()})
        solution_cells = sorted({s for _, s in cells.values()})
        grades = {
            (nid, cid): (gid, auto, manual, bool(needs))
            for gid, nid, cid, auto, manual, needs in gb.db.execute(
                sa.select(
                    nb.Grade.id,
                    nb.Grade.notebook_id,
                    nb.Grade.cell_id,
                    nb.Grade.auto_score,
                    nb.Grade.manual_score,
                    nb.Grade.needs_manual_grade,
                ).where(nb.Grade.cell_id.in_(grade_cells))
            )
        }
        comments = {
            (nid, cid)
            for nid, cid in gb.db.execute(
                sa.select(nb.Comment.notebook_id, nb.Comment.cell_id).where(
                    nb.Comment.cell_id.in_(solution_cells)
                )
            )
        }
        new_grades: list[dict] = []
        new_comments: list[dict] = []
        for r in results:
            aid, sid = r["assignment_id"], r["student_id"]
            nid = notebooks.get((sid, aid))
            if aid not in written or r.get("status") == "missing" or nid is None:
                continue
            given = marks.get((sid, aid), {})
            for c in written[aid]:
                grade_cell, solution_cell = cells[(aid, c.grade_id)]
                new = {
                    "auto_score": None,
                    "manual_score": given.get(c.grade_id),
                    "needs_manual_grade": c.grade_id not in given,
                }
                if (nid, solution_cell) not in comments:
                    comments.add((nid, solution_cell))
                    new_comments.append(
                        {"id": uuid.uuid4().hex, "notebook_id": nid, "cell_id": solution_cell}
                    )
                have = grades.get((nid, grade_cell))
                if have is None:
                    grades[(nid, grade_cell)] = ("", None, new["manual_score"], True)
                    new_grades.append(
                        {"id": uuid.uuid4().hex, "notebook_id": nid, "cell_id": grade_cell, **new}
                    )
                    continue
                gid, auto, manual, needs = have
                was = seen.get((sid, aid, c.grade_id)) if seen is not None else manual
                if manual != was:  # a person changed it since this run read it: theirs stays
                    changed.append((sid, aid, c.grade_id))
                    continue
                if (auto, manual, needs) == (None, new["manual_score"], new["needs_manual_grade"]):
                    continue  # already so: nothing to write
                update = sa.update(nb.Grade).where(nb.Grade.id == gid).values(**new)
                if seen is not None:
                    # Compare and set, also against a save after the read above.
                    update = update.where(nb.Grade.manual_score.is_not_distinct_from(was))
                if gb.db.execute(update).rowcount == 0:
                    changed.append((sid, aid, c.grade_id))
        connection = gb.db.connection()  # Core executemany: one statement per table
        if new_comments:
            connection.execute(sa.insert(nb.Comment.__table__), new_comments)
        if new_grades:
            connection.execute(sa.insert(nb.Grade.__table__), new_grades)
        gb.db.commit()
    finally:
        gb.close()
    return changed

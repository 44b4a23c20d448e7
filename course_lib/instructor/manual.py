"""Written answers, graded by people: the per-assignment sheet and merging the marks.

A written answer is an nbgrader *manually graded answer* cell: a markdown cell with
``grade: true, solution: true, task: false`` and ``points``, following the question (a
read-only markdown cell). In the instructor's source the answer cell holds the rubric; the
release replaces it with ``YOUR ANSWER HERE``.

``course grade`` writes ``OUT/manual/<assignment>.csv`` (one line per student and written
cell: ``student_id, assignment_id, grade_id, max_points, points, comment, answer``, with
``points`` empty) and ``OUT/manual/<assignment>.html`` (every answer next to the question and
the rubric). A grader fills in ``points`` (and ``comment``); ``course grade --manual
marks.csv`` (several files: repeat the option) merges them: a student's written score is the
sum of their cells' points, and a row whose written cells are not all marked is flagged
``written_ungraded``.

The other road is nbgrader's formgrader: a TA types the marks into the gradebook that ``course
grade`` writes (:mod:`.formgrade`). Every run reads them back as :class:`Mark` s and merges them
with the sheets' marks here, in :func:`merge_marks`, the one place where marks are checked and
combined. A mark entered in formgrader is never overwritten: a sheet that gives the same cell
another mark is refused (both places are named), and a mark once merged stays in the gradebook
until someone changes it there.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from course_lib.instructor.export import write_atomic, write_table
from course_lib.instructor.notebooks import storable
from course_lib.instructor.roster import ClassSetupError

SHEET_COLUMNS = [
    "student_id",
    "assignment_id",
    "grade_id",
    "max_points",
    "points",
    "comment",
    "answer",
]
REQUIRED = {"student_id", "assignment_id", "grade_id", "points"}


@dataclass(frozen=True)
class WrittenCell:
    grade_id: str
    points: float
    question: str
    rubric: str


@dataclass(frozen=True)
class Mark:
    """One written cell's points for one submission, and where they were read (for messages).
    ``origin``: ``"sheet"`` (a ``--manual`` file), ``"gradebook"`` (what ``course grade`` wrote
    there on an earlier run) or ``"formgrader"`` (a gradebook mark that a person set or changed
    after that, so a sheet must not overwrite it)."""

    student_id: str
    assignment_id: str
    grade_id: str
    points: float
    where: str
    origin: str = "sheet"


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _meta(cell: dict) -> dict:
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    nb = meta.get("nbgrader")
    return nb if isinstance(nb, dict) else {}


def is_written(cell: dict) -> bool:
    md = _meta(cell)
    return (
        cell.get("cell_type") == "markdown"
        and bool(md.get("grade"))
        and bool(md.get("solution"))
        and not md.get("task")
    )


def written_cells(source_notebook: Path) -> list[WrittenCell]:
    """The written-answer cells of an instructor source notebook, with question and rubric."""
    nb = json.loads(source_notebook.read_text(encoding="utf-8"))
    cells = nb.get("cells", [])
    out = []
    for i, cell in enumerate(cells):
        if not is_written(cell):
            continue
        md = _meta(cell)
        question = ""
        for prev in reversed(cells[:i]):
            if prev.get("cell_type") == "markdown" and not is_written(prev):
                question = _text(prev)
                break
        out.append(
            WrittenCell(
                str(md.get("grade_id", "")), float(md.get("points", 0) or 0), question, _text(cell)
            )
        )
    return out


def answers(notebook: Path, cells: list[WrittenCell]) -> dict[str, str]:
    """A submission's answer per written cell (by grade_id, else by cell id); "" if absent."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8", errors="replace"))
        raw = nb.get("cells", []) if isinstance(nb, dict) else []
    except (OSError, json.JSONDecodeError):
        raw = []
    wanted = {c.grade_id for c in cells}
    found: dict[str, str] = {}
    for cell in raw if isinstance(raw, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        gid = str(_meta(cell).get("grade_id") or cell.get("id") or "")
        if gid in wanted and gid not in found:
            found[gid] = storable(_text(cell).strip())
    return {c.grade_id: found.get(c.grade_id, "") for c in cells}


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    ".answer{border:1px solid #ccc;padding:.5rem;margin:.5rem 0;white-space:pre-wrap}"
    ".rubric{background:#eef6ee;padding:.5rem;white-space:pre-wrap}"
    ".question{background:#f3f3f8;padding:.5rem;white-space:pre-wrap}"
)


def sheet_html(
    assignment_id: str, cells: list[WrittenCell], by_student: dict[str, dict[str, str]]
) -> str:
    parts = []
    for c in cells:
        parts.append(
            f"<h2>{html.escape(c.grade_id)} ({c.points:g} points)</h2>"
            f"<h3>Question</h3><div class='question'>{html.escape(c.question.strip())}</div>"
            f"<h3>Rubric</h3><div class='rubric'>{html.escape(c.rubric.strip())}</div>"
            "<h3>Answers</h3>"
        )
        for sid, ans in sorted(by_student.items()):
            text = ans.get(c.grade_id, "")
            shown = html.escape(text) if text else "<em>no answer</em>"
            parts.append(
                f"<h4 id='{html.escape(sid)}-{html.escape(c.grade_id)}'>{html.escape(sid)}</h4>"
                f"<div class='answer'>{shown}</div>"
            )
    body = (
        f"<p>Mark each answer against the rubric in <code>manual/{html.escape(assignment_id)}.csv"
        "</code> (column <code>points</code>), then run <code>course grade ... --manual "
        "that.csv</code>.</p>" + "".join(parts)
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Written answers: {html.escape(assignment_id)}</title><style>{_CSS}</style></head>"
        f"<body><h1>Written answers: {html.escape(assignment_id)}</h1>{body}</body></html>\n"
    )


def write_sheet(
    out: Path,
    assignment_id: str,
    cells: list[WrittenCell],
    by_student: dict[str, dict[str, str]],
    marks: dict[tuple[str, str], dict[str, float]] | None = None,
) -> Path:
    """``OUT/manual/<assignment>.csv`` and ``.html``; marks already merged are filled in."""
    marks = marks or {}
    rows = []
    for sid, ans in sorted(by_student.items()):
        given = marks.get((sid, assignment_id), {})
        for c in cells:
            rows.append(
                [
                    sid,
                    assignment_id,
                    c.grade_id,
                    f"{c.points:g}",
                    f"{given[c.grade_id]:g}" if c.grade_id in given else "",
                    "",
                    ans.get(c.grade_id, ""),
                ]
            )
    path = out / "manual" / f"{assignment_id}.csv"
    write_table(path, SHEET_COLUMNS, rows)
    write_atomic(
        out / "manual" / f"{assignment_id}.html", sheet_html(assignment_id, cells, by_student)
    )
    return path


def load_marks(
    paths: list[Path],
    written: dict[str, list[WrittenCell]],
    gradebook: Iterable[Mark] = (),
    origins: dict[tuple[str, str, str], str] | None = None,
) -> dict[tuple[str, str], dict[str, float]]:
    """(student, assignment) → {grade_id: points} from filled-in sheets and the marks read back
    from the gradebook (:func:`.formgrade.gradebook_marks`); all files are checked before
    anything is used, and any bad line is an error naming file and line. ``origins``, when
    given, receives each counted mark's :attr:`Mark.origin` by (student, assignment, cell)."""
    sheet_marks: list[Mark] = []
    for path in paths:
        if not path.is_file():
            raise ClassSetupError(f"manual marks file {path} does not exist")
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = REQUIRED - set(reader.fieldnames or [])
            if missing:
                raise ClassSetupError(
                    f"{path} lacks column(s) {', '.join(sorted(missing))}: fill in the sheet "
                    "course grade wrote (OUT/manual/<assignment>.csv) and keep its header"
                )
            for n, row in enumerate(reader, start=2):
                text = (row["points"] or "").strip()
                if not text:
                    continue  # not marked yet
                where = f"{path} line {n}"
                try:
                    points = float(text)
                except ValueError as exc:
                    raise ClassSetupError(f"{where}: points {text!r} is not a number") from exc
                ids = [(row[k] or "").strip() for k in ("student_id", "assignment_id", "grade_id")]
                sheet_marks.append(Mark(*ids, points, where))
    return merge_marks([*gradebook, *sheet_marks], written, origins)


def merge_marks(
    marks: Iterable[Mark],
    written: dict[str, list[WrittenCell]],
    origins: dict[tuple[str, str, str], str] | None = None,
) -> dict[tuple[str, str], dict[str, float]]:
    """Check every mark against the written cells and combine them: one mark per cell from the
    sheets; a sheet's mark replaces one an earlier sheet put in the gradebook, but a mark
    entered in formgrader stands (a sheet that differs from it is an error naming both)."""
    maxima = {(aid, c.grade_id): c.points for aid, cells in written.items() for c in cells}
    counted: dict[tuple[str, str, str], Mark] = {}
    from_sheets: dict[tuple[str, str, str], Mark] = {}
    for m in marks:
        aid, gid = m.assignment_id, m.grade_id
        if (aid, gid) not in maxima:
            raise ClassSetupError(
                f"{m.where}: {aid}/{gid} is not a written-answer cell; known: "
                + ", ".join(f"{a}/{g}" for a, g in sorted(maxima))
            )
        top = maxima[(aid, gid)]
        if not math.isfinite(m.points) or m.points < 0 or m.points > top:
            raise ClassSetupError(
                f"{m.where}: points {m.points:g} is outside 0..{top:g} for {aid}/{gid}"
            )
        key = (m.student_id, aid, gid)
        if m.origin != "sheet":
            counted[key] = m  # the gradebook holds one mark per cell
            continue
        if key in from_sheets:
            raise ClassSetupError(
                f"{m.where}: {m.student_id} {aid}/{gid} was already marked at "
                f"{from_sheets[key].where}; keep one mark per cell"
            )
        from_sheets[key] = m
        prior = counted.get(key)
        if prior is not None and prior.origin == "formgrader":
            if prior.points != m.points:
                raise ClassSetupError(
                    f"{m.where}: {m.student_id} {aid}/{gid} is marked {m.points:g} here but "
                    f"{prior.points:g} in formgrader ({prior.where}); a mark entered in "
                    f"formgrader is never overwritten: set this line to {prior.points:g} or "
                    "empty it, or change the mark in formgrader"
                )
            continue  # the same mark: formgrader's stands
        counted[key] = m
    merged: dict[tuple[str, str], dict[str, float]] = {}
    for (sid, aid, gid), m in counted.items():
        merged.setdefault((sid, aid), {})[gid] = m.points
        if origins is not None:
            origins[(sid, aid, gid)] = m.origin
    return merged

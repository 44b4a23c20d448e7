"""Score overrides with an audit trail, kept apart from the computed results.

``course override STUDENT ASSIGNMENT --points X --reason "..."`` appends one line to the
overrides file (``overrides.csv`` at the top of the course by default; never inside a grading
output folder, so deleting or re-grading OUT loses nothing). Each line records when, who, the
student, the assignment, the points and the reason; nothing is ever rewritten. The newest line
for a (student, assignment) wins; ``--clear`` appends a line without points, which removes the
override. An override is the final score: it replaces the computed score after late penalties.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

from course_lib.instructor.roster import ClassSetupError

COLUMNS = ["recorded_at", "recorded_by", "student_id", "assignment_id", "points", "reason"]
INPUT_COLUMNS = {"student_id", "assignment_id", "points", "reason"}


@dataclass(frozen=True)
class Override:
    student_id: str
    assignment_id: str
    points: float | None  # None: the override was cleared
    reason: str
    recorded_at: str
    recorded_by: str


def _points(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ClassSetupError(f"{where}: points {text!r} is not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise ClassSetupError(f"{where}: points must be a number ≥ 0, got {text!r}")
    return value


def _append(path: Path, lines: list[list[str]]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    if new:
        w.writerow(COLUMNS)
    w.writerows(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def _line(student: str, assignment: str, points: float | None, reason: str) -> list[str]:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return [now, who, student, assignment, "" if points is None else f"{points:g}", reason]


def record(
    path: Path, student: str, assignment: str, points: float | None, reason: str
) -> Override:
    """Append one override (``points=None`` clears it); a reason is required."""
    if not student.strip() or not assignment.strip():
        raise ClassSetupError("an override needs a student id and an assignment id")
    if not reason.strip():
        raise ClassSetupError("an override needs --reason: say why, for the audit trail")
    if points is not None:
        points = _points(str(points), "override")
    line = _line(student.strip(), assignment.strip(), points, reason.strip())
    _append(path, [line])
    return Override(line[2], line[3], points, line[5], line[0], line[1])


def record_csv(path: Path, table: Path) -> list[Override]:
    """Append every row of ``table`` (student_id,assignment_id,points,reason); all rows are
    checked before any is written, so a bad row records nothing."""
    with open(table, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = INPUT_COLUMNS - set(reader.fieldnames or [])
        if missing:
            raise ClassSetupError(
                f"{table} lacks column(s) {', '.join(sorted(missing))}; "
                "the header must be student_id,assignment_id,points,reason"
            )
        lines = []
        for n, row in enumerate(reader, start=2):
            where = f"{table} line {n}"
            sid, aid = (row["student_id"] or "").strip(), (row["assignment_id"] or "").strip()
            reason = (row["reason"] or "").strip()
            if not sid or not aid:
                raise ClassSetupError(f"{where}: student_id and assignment_id are required")
            if not reason:
                raise ClassSetupError(f"{where}: a reason is required for the audit trail")
            text = (row["points"] or "").strip()
            points = None if text == "" else _points(text, where)
            lines.append(_line(sid, aid, points, reason))
    _append(path, lines)
    return [
        Override(ln[2], ln[3], None if ln[4] == "" else float(ln[4]), ln[5], ln[0], ln[1])
        for ln in lines
    ]


def load(path: Path | None) -> list[Override]:
    """Every line of the audit trail, oldest first (empty when there is no file)."""
    if path is None or not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if list(reader.fieldnames or []) != COLUMNS:
            raise ClassSetupError(
                f"{path} is not an overrides file (expected the header {','.join(COLUMNS)}); "
                "record overrides with `course override`"
            )
        out = []
        for n, row in enumerate(reader, start=2):
            text = (row["points"] or "").strip()
            points = None if text == "" else _points(text, f"{path} line {n}")
            out.append(
                Override(
                    row["student_id"],
                    row["assignment_id"],
                    points,
                    row["reason"],
                    row["recorded_at"],
                    row["recorded_by"],
                )
            )
        return out


def current(trail: list[Override]) -> dict[tuple[str, str], Override]:
    """The override in force per (student, assignment): the newest line, unless it cleared."""
    latest: dict[tuple[str, str], Override] = {}
    for o in trail:
        latest[(o.student_id, o.assignment_id)] = o
    return {k: o for k, o in latest.items() if o.points is not None}

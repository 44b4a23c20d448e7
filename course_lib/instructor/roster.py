"""The class list (``--roster roster.csv``) and what it adds to the grading results.

A roster is a CSV with a ``student_id`` column and optionally ``name``, ``email`` and ``lms_id``
(the student's id in Canvas or Moodle, used to import LMS zips and export LMS grade files).
Every roster student gets a row per graded assignment; a student with no submission gets status
``missing`` and 0 points; a submission from an id not on the roster keeps its row and is flagged
``not_on_roster``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from course_lib.instructor.pipeline import valid_id

ROSTER_COLUMNS = ("student_id", "name", "email", "lms_id")


class ClassSetupError(Exception):
    """A class file (roster, course.toml, overrides, manual marks) is malformed: the message says
    which file, which line and how to fix it."""


@dataclass(frozen=True)
class Student:
    student_id: str
    name: str = ""
    email: str = ""
    lms_id: str = ""


@dataclass
class Roster:
    students: dict[str, Student]

    def by_lms_id(self) -> dict[str, Student]:
        return {s.lms_id: s for s in self.students.values() if s.lms_id}

    def __contains__(self, student_id: str) -> bool:
        return student_id in self.students

    def __len__(self) -> int:
        return len(self.students)


def load_roster(path: Path) -> Roster:
    """Read ``path``; duplicate or empty ids and missing ``student_id`` column are errors."""
    if not path.is_file():
        raise ClassSetupError(f"roster {path} does not exist: pass a CSV with a student_id column")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "student_id" not in header:
            raise ClassSetupError(
                f"roster {path} has no student_id column (found: {', '.join(header) or 'nothing'}); "
                "the first line must name the columns, e.g. student_id,name,email,lms_id"
            )
        students: dict[str, Student] = {}
        lms_seen: dict[str, int] = {}
        first_line: dict[str, int] = {}
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
            sid = row.get("student_id", "")
            if not sid:
                raise ClassSetupError(f"roster {path} line {line}: empty student_id")
            if not valid_id(sid):
                raise ClassSetupError(
                    f"roster {path} line {line}: student_id {sid!r} cannot name a submission "
                    "folder; use letters, digits, spaces and _ . @ + - (not starting with a dot)"
                )
            if sid in students:
                raise ClassSetupError(
                    f"roster {path}: student_id {sid!r} appears on lines {first_line[sid]} and "
                    f"{line}; each student must appear once (merge or remove one of the lines)"
                )
            lms = row.get("lms_id", "")
            if lms and lms in lms_seen:
                raise ClassSetupError(
                    f"roster {path}: lms_id {lms!r} appears on lines {lms_seen[lms]} and {line}; "
                    "each LMS account belongs to one student"
                )
            if lms:
                lms_seen[lms] = line
            first_line[sid] = line
            students[sid] = Student(sid, row.get("name", ""), row.get("email", ""), lms)
    return Roster(students)


def missing_row(student_id: str, assignment_id: str, max_score: float) -> dict:
    """The result row of a roster student who submitted nothing."""
    return {
        "student_id": student_id,
        "assignment_id": assignment_id,
        "score": 0.0,
        "max_score": max_score,
        "status": "missing",
        "status_text": "missing: no submission",
        "flags": [],
        "cells": [],
        "student_code": {},
    }


def apply_roster(results: list[dict], roster: Roster | None) -> list[dict]:
    """Add a ``missing`` row for every roster student without a submission to an assignment that
    was graded, and flag ``not_on_roster`` submitters; sorted by assignment then student."""
    rows = [dict(r, flags=list(r.get("flags", []))) for r in results]
    if roster is not None:
        seen = {(r["student_id"], r["assignment_id"]) for r in rows}
        max_scores: dict[str, float] = {}
        for r in rows:
            max_scores.setdefault(r["assignment_id"], float(r["max_score"]))
        for r in rows:
            if r["student_id"] not in roster and "not_on_roster" not in r["flags"]:
                r["flags"].append("not_on_roster")
        for aid, max_score in sorted(max_scores.items()):
            for sid in roster.students:
                if (sid, aid) not in seen:
                    rows.append(missing_row(sid, aid, max_score))
    return sorted(rows, key=lambda r: (r["assignment_id"], r["student_id"]))

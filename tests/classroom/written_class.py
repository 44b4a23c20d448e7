"""A class of real chapter-05 submissions with written answers, for the tests that run ``course
grade`` end to end (``test_classroom_grade.py``, ``test_classroom_formgrader_browser.py``)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
A = "05_attention"

ANSWERS = {
    "s01": {
        "written_scale": "The dot product of d_k unit-variance terms has variance d_k, so the "
        "softmax would saturate and its gradient vanish; dividing by sqrt(d_k) keeps variance 1.",
        "written_empty_row": "max is -inf, and -inf - (-inf) is NaN.",
    },
    "s02": {"written_scale": "To normalise the scores."},
}


def submission(student: str) -> dict:
    """The instructor's notebook with ``student``'s written answers (the code is the reference)."""
    nb = json.loads((ROOT / "solutions" / A / f"{A}.ipynb").read_text())
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        if cell["cell_type"] == "markdown" and gid.startswith("written_") and "-" not in gid:
            cell["source"] = ANSWERS[student].get(gid, "YOUR ANSWER HERE")
    return nb


def course(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """``course ARGS`` in ``tmp`` with a grading seed."""
    return subprocess.run(
        [sys.executable, "-m", "course_lib.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=dict(os.environ, COURSE_GRADING_SEED="4242"),
    )


def rows(out: Path) -> dict[str, dict]:
    """OUT/grades.csv by student id."""
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}

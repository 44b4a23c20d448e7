"""``course grade`` with the class options end to end, on real notebooks of chapter 05: written
answers carried into the manual sheet and merged back, late penalty from timestamp.txt, a
missing roster student, an override that survives a re-grade, and a malformed marks file that
loses nothing. Few notebooks are graded (two, once: the re-runs reuse the engine's cache)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "classroom"))

from written_class import A, course, rows, submission  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("classroom_grade")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("class")
    subs = tmp / "submitted"
    stamps = {"s01": "2026-11-02 21:00:00 UTC", "s02": "2026-11-03 23:00:01 UTC"}
    for sid, stamp in stamps.items():
        folder = subs / sid / A
        folder.mkdir(parents=True)
        (folder / f"{A}.ipynb").write_text(json.dumps(submission(sid)))
        (folder / "timestamp.txt").write_text(stamp)
    (tmp / "roster.csv").write_text("student_id,name\ns01,Ada\ns02,Ben\ns03,Cy\n")
    (tmp / "course.toml").write_text(
        '[late]\npercent_per_day = 10\n\n[assignments.05_attention]\ndue = "2026-11-02 23:00"\n'
    )
    args = ["grade", "submitted", "--out", "out", "--roster", "roster.csv", "--jobs", "2"]
    args += ["--source", str(ROOT / "solutions"), "--timeout", "20"]
    first = course(tmp, *args)
    assert first.returncode == 0, first.stderr
    return {"tmp": tmp, "out": tmp / "out", "args": args, "first": rows(tmp / "out")}


def feedback_pages(out: Path) -> dict[str, str]:
    """Every feedback page that grades.csv links, by student; each one's total at the top is
    its row's score / max_score."""
    pages = {}
    for sid, row in rows(out).items():
        if row["feedback"]:
            page = (out / row["feedback"]).read_text(encoding="utf-8")
            total = re.findall(r"<b id='total'>([^<]*)</b>", page)
            assert total == [f"{row['score']} / {row['max_score']}"], (sid, total)
            pages[sid] = page
    return pages


def test_rows_for_the_roster_with_autograded_points_and_late_penalty(graded: dict) -> None:
    first = graded["first"]
    assert set(first) == {"s01", "s02", "s03"}
    assert first["s01"]["auto_score"] == "10" and first["s01"]["max_score"] == "13"
    # Both submitted the instructor's notebook: flagged for review, score untouched.
    assert first["s01"]["flags"].split(";") == [
        "written_ungraded",
        "similar_to:s02",
        "matches_reference",
    ]
    assert first["s01"]["penalty"] == "0"
    assert first["s01"]["time_source"] == "timestamp.txt"
    assert first["s02"]["late_by"] == "1d 00:00:01" and first["s02"]["penalty"] == "2"
    assert first["s02"]["score"] == "8"
    assert first["s03"]["status"].startswith("missing") and first["s03"]["score"] == "0"
    pages = feedback_pages(graded["out"])
    assert sorted(pages) == ["s01", "s02"]
    assert "Late penalty</th><td>−2 (late by 1d 00:00:01, 20 % off)" in pages["s02"]
    assert "<h3>written_scale: not marked yet</h3>" in pages["s01"]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['out'] / 'gradebook.db'}") as gb:
        s01 = gb.find_submission(A, "s01")
        # No marks yet: nbgrader counts the written cells as waiting for a person.
        assert s01.needs_manual_grade and (s01.score, s01.max_score) == (10, 13)


def test_the_manual_sheet_carries_answers_and_rubric(graded: dict) -> None:
    sheet = graded["out"] / "manual" / f"{A}.csv"
    with open(sheet, newline="") as f:
        lines = list(csv.DictReader(f))
    assert [(r["student_id"], r["grade_id"]) for r in lines] == [
        ("s01", "written_scale"),
        ("s01", "written_empty_row"),
        ("s02", "written_scale"),
        ("s02", "written_empty_row"),
    ]
    assert lines[0]["answer"].startswith("The dot product") and lines[0]["max_points"] == "2"
    assert lines[3]["answer"] == "YOUR ANSWER HERE" and lines[0]["points"] == ""
    page = (graded["out"] / "manual" / f"{A}.html").read_text()
    assert "variance d_k" in page and "No point for" in page  # answer and rubric
    assert "To normalise the scores." in page and "<script" not in page
    # The engine read the answers as each result arrived and kept them in its state file, so
    # the class layer of this and every later run opens no notebook for them.
    from course_lib.instructor import manual

    cells = manual.written_cells(ROOT / "solutions" / A / f"{A}.ipynb")
    for sid in ("s01", "s02"):
        state = json.loads((graded["out"] / ".state" / f"{sid}__{A}.json").read_text())
        notebook = graded["tmp"] / "submitted" / sid / A / f"{A}.ipynb"
        assert state["result"]["answers"] == manual.answers(notebook, cells)
    assert "answers" not in (graded["out"] / "class.json").read_text()  # not in the LMS data


def test_marks_merge_and_an_override_survives_the_regrade(graded: dict) -> None:
    tmp, out = graded["tmp"], graded["out"]
    sheet = out / "manual" / f"{A}.csv"
    with open(sheet, newline="") as f:
        lines = list(csv.DictReader(f))
    marks = {("s01", "written_scale"): "2", ("s01", "written_empty_row"): "1"}
    marks |= {("s02", "written_scale"): "0", ("s02", "written_empty_row"): "0"}
    filled = tmp / "marks.csv"
    with open(filled, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(lines[0]))
        w.writeheader()
        for line in lines:
            w.writerow(line | {"points": marks[(line["student_id"], line["grade_id"])]})
    before = (out / "grades.csv").read_text()
    bad = tmp / "bad.csv"
    bad.write_text(filled.read_text().replace(",2,2,", ",2,5,", 1))
    refused = course(tmp, *graded["args"], "--manual", str(bad))
    assert (
        refused.returncode == 2 and "outside 0..2" in refused.stderr and "line 2" in refused.stderr
    )
    assert (out / "grades.csv").read_text() == before  # nothing lost
    done = course(tmp, "override", "s02", A, "--points", "9", "--reason", "appeal upheld")
    assert done.returncode == 0, done.stderr
    merged = course(tmp, *graded["args"], "--manual", str(filled))
    assert merged.returncode == 0, merged.stderr
    now = rows(out)
    assert now["s01"]["manual_score"] == "3" and now["s01"]["raw_score"] == "13"
    assert now["s01"]["score"] == "13" and "written_ungraded" not in now["s01"]["flags"]
    assert now["s02"]["override"] == "9" and now["s02"]["score"] == "9"
    assert now["s02"]["override_reason"] == "appeal upheld"
    pages = feedback_pages(out)  # written again by the re-run, which graded nothing
    assert "Set by your instructor</th><td>9 (replaces the above)" in pages["s02"]
    assert "appeal upheld" not in pages["s02"]
    assert "<h3>written_scale: 2 / 2</h3>" in pages["s01"]
    report = (out / "report.html").read_text()
    assert "Overridden (1)" in report and "appeal upheld" in report
    assert f"similarity/{A}.html" in report and f"manual/{A}.html" in report
    _nbgrader_export_and_formgrader_accept_the_gradebook(graded)


def _nbgrader_export_and_formgrader_accept_the_gradebook(graded: dict) -> None:
    """After the marks are merged, nbgrader's own tools read our gradebook: the written cells
    are manually graded cells with the merged marks. (Called by the merge test itself, so it
    never runs on a pytest worker that did not merge them.)"""
    from nbgrader.api import Gradebook
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    tmp = graded["tmp"]
    db = f"sqlite:///{graded['out'] / 'gradebook.db'}"
    with Gradebook(db) as gb:
        s01, s02 = gb.find_submission(A, "s01"), gb.find_submission(A, "s02")
        assert (s01.score, s01.max_score, s01.written_score) == (13, 13, 3)
        assert (s02.score, s02.written_score, s02.needs_manual_grade) == (10, 0, False)
        cell = gb.find_grade_cell("written_scale", A, A)
        assert (cell.cell_type, cell.max_score) == ("markdown", 2)
    nbg = tmp / "nbgrader"
    nbg.mkdir()
    (nbg / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.db_url = {db!r}\nc.CourseDirectory.root = {str(nbg)!r}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--to", "export.csv"],
        cwd=nbg,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with open(nbg / "export.csv", newline="") as f:
        exported = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(exported["s01"]["score"]) == 13 and float(exported["s01"]["max_score"]) == 13
    assert float(exported["s02"]["score"]) == 10
    config = Config()
    config.CourseDirectory.root = str(nbg)
    config.CourseDirectory.db_url = db
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    subs = {s["student"]: s for s in api.get_submissions(A)}
    assert subs["s01"]["score"] == 13 and subs["s01"]["needs_manual_grade"] is False
    assert subs["s01"]["max_score"] == 13


def test_lms_export_commands_read_the_class_results(graded: dict) -> None:
    tmp = graded["tmp"]
    args = ["--results", "out", "--roster", "roster.csv", "--course", "course.toml"]
    args += ["--source", str(ROOT / "solutions")]
    done = course(tmp, "lms", "export", "canvas", *args, "--out", "canvas.csv")
    assert done.returncode == 0, done.stderr
    with open(tmp / "canvas.csv", newline="") as f:
        table = {r["SIS User ID"]: r for r in csv.DictReader(f)}
    now = rows(graded["out"])
    assert {sid: table[sid][A] for sid in now} == {sid: r["score"] for sid, r in now.items()}
    assert table[""]["Student"] == "Points Possible" and table[""][A] == "13"
    refused = course(tmp, "lms", "export", "moodle", *args, "--assignment", A, "--out", "m.csv")
    assert refused.returncode == 2 and "without lms_id: s01, s02, s03" in refused.stderr
    assert not (tmp / "m.csv").exists()

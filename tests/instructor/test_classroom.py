"""The class layer on a simulated class: 14 students on the roster, two assignments, result rows
as the grading engine writes them (no notebook is executed here; ``test_classroom_grade.py``
runs ``course grade`` end to end on a few real notebooks)."""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import replace as replace_inputs
from pathlib import Path

import pytest

from course_lib.instructor import classroom, late, lms, overrides, similarity
from course_lib.instructor.export import _gradebook
from course_lib.instructor.roster import ClassSetupError, load_roster

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "classroom"))

from honest_variants import honest_code  # noqa: E402

A1, A2 = "05_attention", "07_masking"
STUDENTS = [f"s{i:02d}" for i in range(1, 15)]
BERLIN = dt.timezone(dt.timedelta(hours=1))  # Europe/Berlin in November
DUE1 = dt.datetime(2026, 11, 2, 23, 59, tzinfo=BERLIN)
DUE2 = dt.datetime(2026, 11, 9, 23, 59, tzinfo=BERLIN)

COURSE_TOML = """
timezone = "Europe/Berlin"

[late]
percent_per_day = 10
max_percent = 30

[assignments.05_attention]
due = "2026-11-02 23:59"
canvas_id = "4711"

[assignments.07_masking]
due = 2026-11-09T23:59:00+01:00
late = { zero_when_late = true }

[[extensions]]
student = "s05"
assignment = "05_attention"
days = 2

[[extensions]]
student = "s06"
assignment = "07_masking"
due = "2026-11-12 12:00"
"""


def write_roster(path: Path, ids: list[str] = STUDENTS) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "name", "email", "lms_id"])
        for i, sid in enumerate(ids):
            w.writerow([sid, f"Student {sid[1:]}", f"{sid}@uni.example", str(9000 + i)])
    return path


def result(sid: str, aid: str, score: float, max_score: float = 10.0, **extra) -> dict:
    """A result row as the engine returns it."""
    row = {
        "student_id": sid,
        "assignment_id": aid,
        "score": score,
        "max_score": max_score,
        "status": "graded",
        "status_text": "graded",
        "flags": [],
        "cells": [],
        "student_code": {},
    }
    row.update(extra)
    return row


@pytest.fixture
def course(tmp_path: Path) -> late.CoursePolicy:
    path = tmp_path / "course.toml"
    path.write_text(COURSE_TOML)
    return late.load_course(path, {A1, A2, "01_tensors"})


def by_key(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["student_id"], r["assignment_id"]): r for r in rows}


# ---------------------------------------------------------------------------------------------
# Roster.
# ---------------------------------------------------------------------------------------------


def test_every_roster_student_gets_a_row_per_assignment(tmp_path: Path) -> None:
    roster = load_roster(write_roster(tmp_path / "roster.csv"))
    results = [result(s, A1, 7.0) for s in STUDENTS[:12]]  # s13, s14 submitted nothing
    results += [result(s, A2, 5.0) for s in STUDENTS[2:]]  # s01, s02 submitted nothing
    results.append(result("intruder", A1, 9.0))
    rows = classroom.class_rows(results, classroom.ClassOptions(roster=roster))
    keyed = by_key(rows)
    assert len(rows) == 2 * 14 + 1
    for sid, aid in [("s13", A1), ("s14", A1), ("s01", A2), ("s02", A2)]:
        row = keyed[(sid, aid)]
        assert row["status"] == "missing" and row["score"] == 0.0 and row["max_score"] == 10.0
        assert row["feedback"] == ""
    assert keyed[("s03", A2)]["score"] == 5.0 and keyed[("s03", A2)]["status"] == "graded"
    assert keyed[("intruder", A1)]["flags"] == ["not_on_roster"]
    assert keyed[("intruder", A1)]["score"] == 9.0  # kept, not dropped
    assert not any("not_on_roster" in r["flags"] for r in rows if r["student_id"] != "intruder")
    assert keyed[("s01", A1)]["name"] == "Student 01"


def test_a_roster_with_a_duplicate_id_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = write_roster(tmp_path / "roster.csv", [*STUDENTS, "s04"])
    with pytest.raises(ClassSetupError, match=r"'s04' appears on lines 5 and 16"):
        load_roster(path)
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("student_id\ns01\nJane Doe\n张三\n")
    assert "Jane Doe" in load_roster(spaced) and "张三" in load_roster(spaced)  # as course grade
    slashed = tmp_path / "slashed.csv"
    slashed.write_text("student_id\ns01\njane/doe\n")
    with pytest.raises(ClassSetupError, match="line 3: student_id 'jane/doe' cannot name"):
        load_roster(slashed)
    bad = tmp_path / "nocol.csv"
    bad.write_text("id,name\ns01,A\n")
    with pytest.raises(ClassSetupError, match="no student_id column"):
        load_roster(bad)


def test_course_grade_refuses_a_bad_roster_before_grading(tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.csv", [*STUDENTS, "s02"])
    subs = tmp_path / "submitted" / "s01" / A1
    subs.mkdir(parents=True)
    (subs / f"{A1}.ipynb").write_text("{}")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib.cli", "grade", str(tmp_path / "submitted"), "--out",
         str(out), "--roster", str(roster), "--source", str(ROOT / "solutions")],
        capture_output=True, text=True, cwd=tmp_path,
        env=dict(os.environ, COURSE_GRADING_SEED="4242"),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "'s02' appears on lines 3 and 16" in proc.stderr
    assert not out.exists()  # nothing was graded, nothing written


# ---------------------------------------------------------------------------------------------
# Deadlines and late policy.
# ---------------------------------------------------------------------------------------------


def late_row(course, sid: str, aid: str, when: dt.datetime, score: float = 8.0) -> dict:
    row = result(sid, aid, score)
    row["raw_score"] = score
    late.apply_late(row, course, when, "timestamp.txt")
    return row


def test_penalties_at_the_boundaries(course: late.CoursePolicy) -> None:
    sec = dt.timedelta(seconds=1)
    day = dt.timedelta(days=1)
    on_time = late_row(course, "s01", A1, DUE1 - sec)
    assert (on_time["penalty"], on_time["late_by"]) == (0.0, "")
    exact = late_row(course, "s01", A1, DUE1)
    assert exact["penalty"] == 0.0
    one_late = late_row(course, "s02", A1, DUE1 + sec)
    assert one_late["late_by"] == "00:00:01"
    assert one_late["penalty_percent"] == 10.0 and one_late["penalty"] == pytest.approx(0.8)
    day_late = late_row(course, "s03", A1, DUE1 + day)
    assert day_late["penalty_percent"] == 10.0  # one full day is still one started day
    day_and_sec = late_row(course, "s03", A1, DUE1 + day + sec)
    assert day_and_sec["penalty_percent"] == 20.0 and day_and_sec["late_by"] == "1d 00:00:01"
    capped = late_row(course, "s04", A1, DUE1 + 9 * day)
    assert capped["penalty_percent"] == 30.0 and capped["penalty"] == pytest.approx(2.4)
    # Zero after the deadline on the second assignment.
    assert late_row(course, "s01", A2, DUE2 - sec)["penalty"] == 0.0
    assert late_row(course, "s01", A2, DUE2 + sec)["penalty"] == 8.0


def test_an_extension_moves_the_deadline_for_that_student_only(course) -> None:
    sec = dt.timedelta(seconds=1)
    new_due = DUE1 + dt.timedelta(days=2)
    assert late_row(course, "s05", A1, new_due - sec)["penalty"] == 0.0
    assert late_row(course, "s05", A1, new_due + sec)["penalty_percent"] == 10.0
    assert late_row(course, "s07", A1, DUE1 + sec)["penalty_percent"] == 10.0
    ext2 = dt.datetime(2026, 11, 12, 12, 0, tzinfo=BERLIN)
    assert late_row(course, "s06", A2, ext2 - sec)["penalty"] == 0.0
    assert late_row(course, "s06", A2, ext2 + sec)["penalty"] == 8.0


def test_time_comes_from_timestamp_then_lms_then_mtime(tmp_path: Path) -> None:
    subs = tmp_path / "submitted"
    for sid in ("s01", "s02", "s03"):
        (subs / sid / A1).mkdir(parents=True)
        (subs / sid / A1 / f"{A1}.ipynb").write_text("{}")
    (subs / "s01" / A1 / "timestamp.txt").write_text("2026-11-02 22:59:01.5 UTC\n")
    (subs / "s01" / A1 / ".lms.json").write_text('{"submitted_at": "2026-11-01T00:00:00+00:00"}')
    (subs / "s02" / A1 / ".lms.json").write_text('{"submitted_at": "2026-11-03T10:00:00+01:00"}')
    mtime = dt.datetime(2026, 11, 4, 8, 0, tzinfo=dt.UTC).timestamp()
    os.utime(subs / "s03" / A1 / f"{A1}.ipynb", (mtime, mtime))
    times = late.submission_times(subs)
    assert times[("s01", A1)] == (
        dt.datetime(2026, 11, 2, 22, 59, 1, 500000, tzinfo=dt.UTC),
        "timestamp.txt",
    )
    assert times[("s02", A1)] == (dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC), "lms")
    assert times[("s03", A1)] == (dt.datetime(2026, 11, 4, 8, 0, tzinfo=dt.UTC), "mtime")
    # The same from a zip of the folder (nbgrader's timestamp.txt inside it).
    archive = tmp_path / "subs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in subs.rglob("*"):
            if p.is_file():
                zf.write(p, "submitted/" + str(p.relative_to(subs)))
    zipped = late.submission_times(archive)
    assert zipped[("s01", A1)] == times[("s01", A1)]
    assert zipped[("s02", A1)] == times[("s02", A1)]
    assert zipped[("s03", A1)][1] == "mtime"


def test_a_policy_for_an_unknown_assignment_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "course.toml"
    path.write_text('[assignments.05_atention]\ndue = "2026-11-02 23:59"\n')
    with pytest.raises(ClassSetupError, match=r"unknown assignment '05_atention'.*05_attention"):
        late.load_course(path, {A1, A2})
    path.write_text(COURSE_TOML.replace('assignment = "07_masking"', 'assignment = "99_x"'))
    with pytest.raises(ClassSetupError, match="extension #2: unknown assignment '99_x'"):
        late.load_course(path, {A1, A2})
    path.write_text(COURSE_TOML.replace("max_percent", "max_percnt"))
    with pytest.raises(ClassSetupError, match="unknown key.*max_percnt"):
        late.load_course(path, {A1, A2})
    path.write_text(COURSE_TOML.replace('"Europe/Berlin"', '"Mars/Olympus"'))
    with pytest.raises(ClassSetupError, match="unknown time zone"):
        late.load_course(path, {A1, A2})


# ---------------------------------------------------------------------------------------------
# Overrides.
# ---------------------------------------------------------------------------------------------


def test_an_override_survives_a_regrade_and_keeps_its_audit_trail(tmp_path: Path, course) -> None:
    trail = tmp_path / "overrides.csv"
    overrides.record(trail, "s03", A1, 9.5, "regrade request: test 3 was too strict")
    overrides.record(trail, "s04", A1, 2.0, "wrong file")
    overrides.record(trail, "s04", A1, None, "right file found after all")
    options = classroom.ClassOptions(course=course, overrides_path=trail)
    first = by_key(classroom.class_rows([result(s, A1, 6.0) for s in STUDENTS], options))
    assert first[("s03", A1)]["score"] == 9.5 and first[("s03", A1)]["override"] == 9.5
    assert "too strict" in first[("s03", A1)]["override_reason"]
    assert first[("s04", A1)]["override"] is None and first[("s04", A1)]["score"] == 6.0
    # A re-grade gives new engine results; the override is applied again, late or not.
    times = {("s03", A1): (DUE1 + dt.timedelta(hours=5), "timestamp.txt")}
    second = by_key(classroom.class_rows([result(s, A1, 4.0) for s in STUDENTS], options, times))
    assert second[("s03", A1)]["score"] == 9.5 and second[("s03", A1)]["penalty"] == 0.4
    assert second[("s01", A1)]["score"] == 4.0
    lines = list(csv.DictReader(open(trail)))
    assert [ln["points"] for ln in lines] == ["9.5", "2", ""]
    assert all(ln["recorded_at"] and ln["recorded_by"] for ln in lines)


def test_override_csv_with_a_bad_row_records_nothing(tmp_path: Path) -> None:
    trail = tmp_path / "overrides.csv"
    table = tmp_path / "in.csv"
    table.write_text(
        "student_id,assignment_id,points,reason\ns01,05_attention,7,ok\ns02,05_attention,-3,no\n"
    )
    with pytest.raises(ClassSetupError, match="line 3: points must be a number ≥ 0"):
        overrides.record_csv(trail, table)
    assert not trail.exists()
    table.write_text(
        "student_id,assignment_id,points,reason\ns01,05_attention,7,ok\ns02,05_attention,8,fine\n"
    )
    assert len(overrides.record_csv(trail, table)) == 2
    assert set(overrides.current(overrides.load(trail))) == {("s01", A1), ("s02", A1)}


def test_course_override_command_appends_and_requires_a_reason(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "course_lib.cli", "override", *args],
            capture_output=True, text=True, cwd=tmp_path,
        )  # fmt: skip

    bad = run("s01", A1, "--points", "7")
    assert bad.returncode == 2 and "--reason" in bad.stderr
    assert not (tmp_path / "overrides.csv").exists()
    ok = run("s01", A1, "--points", "7", "--reason", "medical note")
    assert ok.returncode == 0, ok.stderr
    assert overrides.current(overrides.load(tmp_path / "overrides.csv"))[("s01", A1)].points == 7


# ---------------------------------------------------------------------------------------------
# LMS in and out.
# ---------------------------------------------------------------------------------------------


def notebook_bytes(marker: str) -> bytes:
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": f"# {marker}",
                     "outputs": [], "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    return json.dumps(nb).encode()


def test_canvas_zip_imports_by_lms_id_and_the_gradebook_round_trips(tmp_path: Path, course) -> None:
    roster = load_roster(write_roster(tmp_path / "roster.csv"))
    archive = tmp_path / "submissions.zip"
    stamp = (2026, 11, 3, 1, 30, 0)  # Canvas stores the upload time in the course's zone
    with zipfile.ZipFile(archive, "w") as zf:
        for i, sid in enumerate(STUDENTS[:12]):
            login = f"student{sid[1:]}"
            late_mark = "LATE_" if i == 3 else ""
            name = f"{login}_{late_mark}{9000 + i}_{55000 + i}_{A1}.ipynb"
            zf.writestr(
                zipfile.ZipInfo(name, stamp if i == 3 else (2026, 11, 2, 20, 0, 0)),
                notebook_bytes(sid),
            )
        # An older upload and a re-upload (Canvas adds -1) from s01: the newest wins.
        zf.writestr(
            zipfile.ZipInfo(f"student01_9000_55100_{A1}-1.ipynb", (2026, 11, 2, 21, 0, 0)),
            notebook_bytes("s01-new"),
        )
        zf.writestr(
            zipfile.ZipInfo("stranger_7777_55999_mine.ipynb", (2026, 11, 2, 20, 0, 0)),
            notebook_bytes("x"),
        )
        zf.writestr("student02_9001_55001_notes.pdf", b"%PDF")
    into = tmp_path / "submitted"
    rep = lms.import_canvas(archive, A1, roster, into, course.timezone)
    assert rep.unknown_accounts == ["7777"] and rep.skipped == ["student02_9001_55001_notes.pdf"]
    assert sorted(rep.imported) == sorted([*STUDENTS[:12], "lms_7777"])
    assert b"s01-new" in (into / "s01" / A1 / f"{A1}.ipynb").read_bytes()
    meta = json.loads((into / "s04" / A1 / ".lms.json").read_text())
    assert meta["late_in_lms"] is True and meta["lms_id"] == "9003"
    times = late.submission_times(into)
    assert times[("s04", A1)] == (dt.datetime(2026, 11, 3, 1, 30, tzinfo=BERLIN), "lms")
    results = [result(s, A1, float(i % 11)) for i, s in enumerate(STUDENTS[:12])]
    rows = classroom.class_rows(
        results, classroom.ClassOptions(roster=roster, course=course), times
    )
    keyed = by_key(rows)
    assert keyed[("s04", A1)]["penalty_percent"] == 10.0 and keyed[("s01", A1)]["penalty"] == 0
    out_csv = tmp_path / "canvas.csv"
    assert lms.export_canvas(rows, roster, out_csv, {A1: "4711"}) == 14
    table = lms.read_csv(out_csv)
    assert list(table[0])[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    column = f"{A1} (4711)"
    assert table[0]["Student"] == "Points Possible" and table[0][column] == "10"
    back = {r["ID"]: r[column] for r in table[1:]}
    for s in roster.students.values():
        assert back[s.lms_id] == f"{round(keyed[(s.student_id, A1)]['score'], 2):g}"
    assert back["9013"] == "0"  # s14: missing


def test_moodle_zip_imports_by_participant_id_and_the_worksheet_round_trips(tmp_path: Path) -> None:
    roster = load_roster(write_roster(tmp_path / "roster.csv"))
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, sid in enumerate(STUDENTS):
            folder = f"Student {sid[1:]}_{9000 + i}_assignsubmission_file_"
            zf.writestr(f"{folder}/{A2}.ipynb", notebook_bytes(sid))
        zf.writestr("Student 01_9000_assignsubmission_onlinetext_/onlinetext.html", "<p>hi</p>")
    into = tmp_path / "submitted"
    rep = lms.import_moodle(archive, A2, roster, into)
    assert sorted(rep.imported) == STUDENTS and rep.unknown_accounts == []
    assert b"s07" in (into / "s07" / A2 / f"{A2}.ipynb").read_bytes()
    rows = classroom.class_rows(
        [result(s, A2, 1.5 + i / 2) for i, s in enumerate(STUDENTS)],
        classroom.ClassOptions(roster=roster),
    )
    out_csv = tmp_path / "moodle.csv"
    lms.export_moodle(rows, roster, A2, out_csv)
    table = lms.read_csv(out_csv)
    assert list(table[0]) == lms.MOODLE_COLUMNS
    by_participant = {r["Identifier"]: float(r["Grade"]) for r in table}
    for i in range(len(STUDENTS)):
        assert by_participant[f"Participant {9000 + i}"] == pytest.approx(1.5 + i / 2)
    assert {r["Maximum Grade"] for r in table} == {"10"}


def test_lms_commands_import_and_export(tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.csv")
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"student01_9000_1_{A1}.ipynb", notebook_bytes("a"))
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "course_lib.cli", "lms", *a],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    src = str(ROOT / "solutions")
    done = run("import", "canvas", str(archive), "--assignment", A1, "--roster", str(roster),
               "--into", "submitted", "--source", src)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "submitted" / "s01" / A1 / f"{A1}.ipynb").exists()
    missing = run(
        "export", "canvas", "--roster", str(roster), "--results", "nowhere", "--out", "x.csv"
    )
    assert missing.returncode == 2 and "run `course grade" in missing.stderr


# ---------------------------------------------------------------------------------------------
# Copying.
# ---------------------------------------------------------------------------------------------


def copying_class() -> list[dict]:
    from course_lib import attention as ref

    rows = [result(s, A1, 10.0, student_code=honest_code(i)) for i, s in enumerate(STUDENTS)]
    pasted = {
        f.__name__: inspect.getsource(f)
        for f in (ref.softmax, ref.attention_weights, ref.scaled_dot_product_attention)
    }
    rows[0]["student_code"] = pasted  # s01 pasted the book's reference
    # s13 copied s12's code, renamed variables and added comments.
    code = {k: v.replace("logits", "scores").replace("den", "norm") + "\n# my own work\n"
            for k, v in rows[11]["student_code"].items()}  # fmt: skip
    rows[12]["student_code"] = code
    return rows


def test_pasted_reference_and_shared_code_are_flagged_and_scores_unchanged(tmp_path: Path) -> None:
    from course_lib.instructor import notebooks as nbk

    source = nbk.load_source(ROOT / "solutions" / A1 / f"{A1}.ipynb", A1)
    rows = copying_class()
    flags, links = similarity.run(rows, {A1: source}, tmp_path)
    assert flags == {
        ("s01", A1): ["matches_reference"],
        ("s12", A1): ["similar_to:s13"],
        ("s13", A1): ["similar_to:s12"],
    }
    page = (tmp_path / "similarity" / f"{A1}.html").read_text()
    assert page.count("<mark>") >= 3 and "s12 ↔ s13" in page and "s01 ↔ reference" in page
    assert list(links.values()) == [f"similarity/{A1}.html"]
    options = classroom.ClassOptions(similarity=flags)
    keyed = by_key(classroom.class_rows(rows, options))
    assert keyed[("s13", A1)]["flags"] == ["similar_to:s12"]
    assert all(r["score"] == 10.0 for r in keyed.values())


def test_an_honest_class_produces_no_flag(tmp_path: Path) -> None:
    from course_lib.instructor import notebooks as nbk

    source = nbk.load_source(ROOT / "solutions" / A1 / f"{A1}.ipynb", A1)
    rows = [result(s, A1, 10.0, student_code=honest_code(i)) for i, s in enumerate(STUDENTS)]
    flags, _ = similarity.run(rows, {A1: source}, tmp_path)
    assert flags == {}
    assert "No pair over the threshold" in (tmp_path / "similarity" / f"{A1}.html").read_text()


# ---------------------------------------------------------------------------------------------
# Report and grades.csv.
# ---------------------------------------------------------------------------------------------


def test_grades_csv_and_report_list_missing_late_flagged_and_overridden(
    tmp_path: Path, course
) -> None:
    roster = load_roster(write_roster(tmp_path / "roster.csv"))
    trail = tmp_path / "overrides.csv"
    overrides.record(trail, "s02", A1, 10, "exam board decision")
    results = [result(s, A1, 8.0) for s in STUDENTS[:13]] + [result("zz", A1, 3.0)]
    times = {(s, A1): (DUE1 - dt.timedelta(hours=1), "timestamp.txt") for s in STUDENTS}
    times[("s03", A1)] = (DUE1 + dt.timedelta(days=1, seconds=1), "mtime")
    options = classroom.ClassOptions(roster=roster, course=course, overrides_path=trail)
    rows = classroom.class_rows(results, options, times)
    engine_report = "<!DOCTYPE html><html><body><h1>Grading report</h1><h2>05</h2></body></html>"
    classroom.write_class_outputs(
        tmp_path, rows, engine_report, {"similarity": "similarity/x.html"}
    )
    table = {r["student_id"]: r for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert list(next(iter(table.values()))) == classroom.CLASS_COLUMNS
    assert table["s03"]["raw_score"] == "8" and table["s03"]["penalty"] == "1.6"
    assert table["s03"]["score"] == "6.4" and table["s03"]["late_by"] == "1d 00:00:01"
    assert table["s03"]["time_source"] == "mtime"
    assert table["s02"]["override"] == "10" and table["s02"]["score"] == "10"
    assert table["s02"]["override_reason"] == "exam board decision"
    assert table["s14"]["status"].startswith("missing") and table["s14"]["score"] == "0"
    assert table["zz"]["flags"] == "not_on_roster"
    assert table["s01"]["feedback"] == f"feedback/s01/{A1}.html"
    page = (tmp_path / "report.html").read_text()
    assert page.index("id='class-table'") < page.index("<h2>05</h2>")
    assert "<h3 id='missing'>Missing (1)</h3>" in page and "s14 / 05_attention" in page
    assert "<h3 id='late'>Late (1)</h3>" in page and "late by 1d 00:00:01" in page
    assert "<h3 id='flagged'>Flagged (1)</h3>" in page
    assert "<h3 id='overridden'>Overridden (1)</h3>" in page and "exam board decision" in page
    assert f"<a href='feedback/s01/{A1}.html'>feedback</a>" in page
    assert "addEventListener('click'" in page and "src=" not in page.split("<script>")[1]
    assert page.count("<tr>") == 1 + len(rows)


# ---------------------------------------------------------------------------------------------
# Written questions in the notebook sources.
# ---------------------------------------------------------------------------------------------


def test_written_cell_kind_builds_nbgraders_manually_graded_answer_cell(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    import build_solutions

    src = tmp_path / "x.py"
    src.write_text(
        "# %% written written_scale points=2\n# Why the scale?\n# RUBRIC:\n# - 1 point: variance\n"
    )
    question, answer = build_solutions.parse(src)
    assert question["cell_type"] == answer["cell_type"] == "markdown"
    assert question["metadata"]["nbgrader"] == {
        "grade": False, "grade_id": "written_scale-question", "locked": True,
        "schema_version": 3, "solution": False, "task": False,
    }  # fmt: skip
    assert answer["metadata"]["nbgrader"] == {
        "grade": True, "grade_id": "written_scale", "locked": False, "points": 2,
        "schema_version": 3, "solution": True, "task": False,
    }  # fmt: skip
    assert "".join(question["source"]) == "Why the scale?"
    assert "".join(answer["source"]) == "- 1 point: variance"
    src.write_text("# %% written written_scale points=2\n# Why the scale?\n")
    with pytest.raises(build_solutions.SourceError, match="RUBRIC"):
        build_solutions.parse(src)
    src.write_text("# %% written scale points=2\n# Q\n# RUBRIC:\n# R\n")
    with pytest.raises(build_solutions.SourceError, match="starts with written_"):
        build_solutions.parse(src)


def test_every_notebook_has_one_or_two_written_questions() -> None:
    from course_lib.instructor import manual

    for chapter in sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb")):
        if not (ROOT / "assignments" / f"{chapter}.py").exists():
            continue
        cells = manual.written_cells(ROOT / "solutions" / chapter / f"{chapter}.ipynb")
        assert 1 <= len(cells) <= 2, chapter
        for c in cells:
            assert c.question.startswith("**Question") and "1 point" in c.rubric, (chapter, c)
        released = json.loads((ROOT / "exercises" / chapter / f"{chapter}.ipynb").read_text())
        text = json.dumps(released)
        assert all(c.rubric.splitlines()[0] not in text for c in cells), chapter
        answers = [c for c in released["cells"] if manual.is_written(c)]
        assert ["".join(c["source"]) for c in answers] == ["YOUR ANSWER HERE"] * len(cells)


# ---------------------------------------------------------------------------------------------
# Marks entered in formgrader (nbgrader's gradebook) and marks from --manual sheets.
# ---------------------------------------------------------------------------------------------


def _marked_gradebook(db: str, written: dict) -> None:
    """A gradebook with two submissions of A1 and its written cells, as ``course grade`` leaves
    it (nbgrader's own API; no notebook is graded here)."""
    from course_lib.instructor import formgrade

    with _gradebook(db) as gb:
        gb.update_or_create_assignment(A1)
        gb.update_or_create_notebook(A1, A1)
        for sid in ("s01", "s02"):
            gb.update_or_create_student(sid)
            gb.update_or_create_submission(A1, sid)
    results = [result("s01", A1, 7.0), result("s02", A1, 9.0)]
    formgrade.record_written(db, results, written, {("s01", A1): {"written_a": 2.0}})


def _ta_marks(db: str, marks: dict[tuple[str, str], float]) -> None:
    """What formgrader's save does: set the grade's manual_score (its API's PUT /grade/<id>)."""
    with _gradebook(db) as gb:
        for (sid, gid), points in marks.items():
            grade = gb.find_grade(gid, A1, A1, sid)
            grade.manual_score = points
            grade.needs_manual_grade = False
        gb.db.commit()


def _sheet(path: Path, lines: list[tuple[str, str, str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment_id", "grade_id", "points"])
        w.writerows([(sid, A1, gid, pts) for sid, gid, pts in lines])
    return path


def test_formgrader_marks_are_merged_kept_and_never_overwritten_by_a_sheet(
    tmp_path: Path,
) -> None:
    from course_lib.instructor import formgrade, manual

    written = {
        A1: [
            manual.WrittenCell("written_a", 2.0, "Q", "R"),
            manual.WrittenCell("written_b", 1, "", ""),
        ]
    }
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    out = tmp_path / "out"
    _marked_gradebook(db, written)
    formgrade.write_ledger(out, db, {("s01", A1): {"written_a": 2.0}})  # a sheet merged this
    _ta_marks(db, {("s01", "written_b"): 1.0, ("s02", "written_a"): 1.5})
    inputs = classroom.ClassInputs(out=out)
    assert inputs.gradebook_url() == f"sqlite:///{(out / 'gradebook.db').resolve()}"
    inputs.db_url = db

    def merged(*lines: tuple[str, str, str]) -> dict:
        inputs.manual_paths = [_sheet(tmp_path / "marks.csv", list(lines))] if lines else []
        return classroom.merged_marks(inputs, written)

    # The TA's marks and the one merged before are all counted without any sheet.
    assert merged() == {
        ("s01", A1): {"written_a": 2.0, "written_b": 1.0},
        ("s02", A1): {"written_a": 1.5},
    }
    # A sheet may change what a sheet put in the gradebook, and agree with the TA.
    assert merged(("s01", "written_a", "0.5"), ("s02", "written_a", "1.5")) == {
        ("s01", A1): {"written_a": 0.5, "written_b": 1.0},
        ("s02", A1): {"written_a": 1.5},
    }
    # The ledger keeps only what sheets put in: the TA's marks stay the TA's on the next run.
    origins: dict = {}
    marks = classroom.merged_marks(inputs, written, origins=origins)
    assert origins[("s01", A1, "written_a")] == "sheet"
    assert origins[("s02", A1, "written_a")] == "formgrader"
    formgrade.write_ledger(out, db, marks, origins)
    assert formgrade.read_ledger(out, db) == {("s01", A1, "written_a"): 0.5}
    with pytest.raises(ClassSetupError, match="marked 0.5 here but 2 in formgrader"):
        merged(("s01", "written_a", "0.5"))  # 2 (not 0.5) is in the gradebook: changed there
    formgrade.write_ledger(out, db, {("s01", A1): {"written_a": 2.0}})
    # It may not overwrite a mark entered in formgrader: refused, naming both places.
    with pytest.raises(ClassSetupError) as refused:
        merged(("s02", "written_a", "2"))
    text = str(refused.value)
    assert "marks.csv line 2" in text and "marked 2 here but 1.5 in formgrader" in text
    assert "Manual Grading > 05_attention > s02" in text
    # Without the ledger every gradebook mark counts as a person's, so nothing is overwritten.
    inputs.out = tmp_path / "elsewhere"
    with pytest.raises(ClassSetupError, match="marked 0.5 here but 2 in formgrader"):
        merged(("s01", "written_a", "0.5"))
    inputs.out = out
    # A mark above the cell's points (typed through the API) is refused, and left as it is.
    _ta_marks(db, {("s02", "written_b"): 5.0})
    with pytest.raises(
        ClassSetupError, match=r"points 5 is outside 0\.\.1 for 05_attention/written_b"
    ):
        merged()
    _ta_marks(db, {("s02", "written_b"): 1.0})
    # A cell that is no longer a written cell: a warning, not counted, kept in the gradebook.
    warnings: list[str] = []
    only_a = {A1: written[A1][:1]}
    got = classroom.merged_marks(replace_inputs(inputs, manual_paths=[]), only_a, warnings.append)
    assert got == {("s01", A1): {"written_a": 2.0}, ("s02", A1): {"written_a": 1.5}}
    assert len(warnings) == 2 and "s01 05_attention/written_b has 1 point(s)" in warnings[0]
    assert "kept there and not counted" in warnings[0]
    with _gradebook(db) as gb:
        assert gb.find_grade("written_b", A1, A1, "s01").manual_score == 1.0
    # record_written writes the merged marks back: the TA's marks survive a re-run.
    formgrade.record_written(
        db, [result("s01", A1, 7.0), result("s02", A1, 9.0)], written, merged()
    )
    with _gradebook(db) as gb:
        assert gb.find_grade("written_b", A1, A1, "s01").manual_score == 1.0
        assert gb.find_grade("written_a", A1, A1, "s02").manual_score == 1.5
        assert gb.find_submission(A1, "s01").needs_manual_grade is False


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_mark_saved_in_formgrader_during_the_write_back_is_never_overwritten(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """The write-back is a compare-and-set: a TA who saves between this run's read and its
    write keeps the mark; the cells are named so that the run reads them again. On SQLite and
    on a real PostgreSQL server (the SQL differs: ``IS`` against ``IS NOT DISTINCT FROM``)."""
    from course_lib.instructor import formgrade, manual

    written = {
        A1: [
            manual.WrittenCell("written_a", 2.0, "Q", "R"),
            manual.WrittenCell("written_b", 1, "", ""),
        ]
    }
    db = (
        request.getfixturevalue("postgres")
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'gradebook.db'}"
    )
    _marked_gradebook(db, written)  # s01 written_a = 2
    inputs = classroom.ClassInputs(out=tmp_path / "out", db_url=db)
    seen: dict = {}
    classroom.merged_marks(inputs, written, seen=seen)
    assert seen == {("s01", A1, "written_a"): 2.0}
    to_write = {("s01", A1): {"written_a": 2.0, "written_b": 1.0}, ("s02", A1): {"written_a": 0.5}}
    _ta_marks(db, {("s02", "written_a"): 1.5, ("s01", "written_a"): 1.0})  # saved meanwhile
    results = [result("s01", A1, 7.0), result("s02", A1, 9.0)]
    changed = formgrade.record_written(db, results, written, to_write, seen)
    assert sorted(changed) == [("s01", A1, "written_a"), ("s02", A1, "written_a")]
    with _gradebook(db) as gb:
        assert gb.find_grade("written_a", A1, A1, "s01").manual_score == 1.0  # the TA's
        assert gb.find_grade("written_a", A1, A1, "s02").manual_score == 1.5  # the TA's
        assert gb.find_grade("written_b", A1, A1, "s01").manual_score == 1.0  # unchanged: written
    # Read again, nothing changed in between: everything is written.
    seen = {}
    again = classroom.merged_marks(inputs, written, seen=seen)
    assert again == {
        ("s01", A1): {"written_a": 1.0, "written_b": 1.0},
        ("s02", A1): {"written_a": 1.5},
    }
    assert formgrade.record_written(db, results, written, again, seen) == []


def test_the_write_back_costs_the_same_statements_for_a_class_of_any_size(tmp_path: Path) -> None:
    """A class of thousands is written back in a few statements, not a few per submission
    (nbgrader's per-submission API took 10 ms each: 2 minutes at the end of every run of a
    class of 12,000): a class of 40 costs what a class of 4 does, and a re-run that changes
    nothing updates nothing."""
    import sqlalchemy as sa

    from course_lib.instructor import formgrade, manual

    written = {A1: [manual.WrittenCell("written_a", 2.0, "Q", "R")]}

    def statements(n: int, marks: dict) -> dict[str, int]:
        db = f"sqlite:///{tmp_path / f'gradebook{n}.db'}"
        ids = [f"s{i:02d}" for i in range(n)]
        with _gradebook(db) as gb:
            gb.update_or_create_assignment(A1)
            gb.update_or_create_notebook(A1, A1)
            for sid in ids:
                gb.update_or_create_student(sid)
                gb.update_or_create_submission(A1, sid)
        results = [result(sid, A1, 5.0) for sid in ids]
        counts = {}
        for run in ("first", "again"):
            sent: list[str] = []

            def listen(*args: object, sent: list[str] = sent) -> None:
                sent.append(str(args[2]).split()[0].upper())  # every statement sent

            sa.event.listen(sa.engine.Engine, "before_cursor_execute", listen)
            try:
                formgrade.record_written(db, results, written, marks(ids))
            finally:
                sa.event.remove(sa.engine.Engine, "before_cursor_execute", listen)
            counts[run] = len(sent)
            counts[run + " updates"] = sent.count("UPDATE")
        with _gradebook(db) as gb:
            for sid in ids:
                grade = gb.find_grade("written_a", A1, A1, sid)
                assert grade.manual_score == marks(ids).get((sid, A1), {}).get("written_a")
        return counts

    half = lambda ids: {(sid, A1): {"written_a": 1.5} for sid in ids[::2]}  # noqa: E731
    small, large = statements(4, half), statements(40, half)
    assert small == large, (small, large)
    assert large["again updates"] == 0


def _class_of_two(tmp_path: Path) -> tuple[list[dict], Path, Path, str]:
    """Two chapter-05 submissions graded 10/10 by the engine (results as it returns them) and
    its gradebook, as ``course grade`` leaves them before the class layer runs."""
    from course_lib.instructor import export
    from course_lib.instructor import notebooks as nbk

    sys.path.insert(0, str(ROOT / "tests" / "classroom"))
    from written_class import submission

    source = nbk.load_source(ROOT / "solutions" / A1 / f"{A1}.ipynb", A1)
    subs, out = tmp_path / "submitted", tmp_path / "out"
    results = []
    for sid in ("s01", "s02"):
        folder = subs / sid / A1
        folder.mkdir(parents=True)
        (folder / f"{A1}.ipynb").write_text(json.dumps(submission(sid)))
        cells = [
            {
                "grade_id": t.grade_id,
                "points": t.points,
                "max_points": t.points,
                "status": "passed",
                "message": "",
            }
            for t in source.tests
        ]
        code = {"impl_softmax": f"def softmax(x):  # {sid}'s code\n    return x"}
        results.append(result(sid, A1, 10.0, cells=cells, student_code=code))
    out.mkdir()
    (out / "report.html").write_text("<html><body><h1>Grading report</h1></body></html>")
    db = f"sqlite:///{(out / 'gradebook.db').resolve()}"
    export.write_gradebook(db, results, {A1: source})
    return results, subs, out, db


def test_the_class_layer_reads_again_when_a_ta_saves_during_the_write_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from course_lib.instructor import formgrade

    results, subs, out, db = _class_of_two(tmp_path)
    inputs = classroom.ClassInputs(out=out)
    options = classroom.prepare(inputs, ROOT / "solutions")
    classroom.finish(out, results, subs, ROOT / "solutions", options, inputs)  # the written cells
    write_back, calls = formgrade.record_written, []

    def ta_saves_first(*args, **kwargs):
        if not calls:  # the TA saves once, after the class layer read the gradebook
            with _gradebook(db) as gb:
                grade = gb.find_grade("written_scale", A1, A1, "s01")
                grade.manual_score, grade.needs_manual_grade = 2.0, False
                gb.db.commit()
        calls.append(write_back(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(formgrade, "record_written", ta_saves_first)
    rows = {
        r["student_id"]: r
        for r in classroom.finish(out, results, subs, ROOT / "solutions", options, inputs)
    }
    assert calls == [[("s01", A1, "written_scale")], []]  # refused once, then read again
    assert rows["s01"]["manual_score"] == 2.0 and rows["s01"]["raw_score"] == 12.0
    with _gradebook(db) as gb:
        assert gb.find_grade("written_scale", A1, A1, "s01").manual_score == 2.0
    sheet = (out / "manual" / f"{A1}.csv").read_text()
    assert "s01,05_attention,written_scale,2,2" in sheet


def test_scores_typed_on_test_cells_and_extra_credit_count_as_nbgrader_counts_them(
    tmp_path: Path,
) -> None:
    """Formgrader lets a TA replace a test cell's score and give extra credit: the class layer
    counts both, flags them, lists them in the report, and totals what nbgrader's own gradebook
    totals; a re-run of the engine never touches them."""
    from course_lib.instructor import export

    results, subs, out, db = _class_of_two(tmp_path)
    with _gradebook(db) as gb:
        grade = gb.find_grade("test_softmax", A1, A1, "s02")
        grade.manual_score = 0.5  # the engine gave 2
        gb.find_grade("test_attention_weights", A1, A1, "s01").manual_score = 2.0  # same: no flag
        gb.find_grade("test_attention_weights", A1, A1, "s01").extra_credit = 1.0
        gb.db.commit()
    inputs = classroom.ClassInputs(out=out)
    options = classroom.prepare(inputs, ROOT / "solutions")
    rows = {
        r["student_id"]: r
        for r in classroom.finish(out, results, subs, ROOT / "solutions", options, inputs)
    }
    assert rows["s02"]["auto_score"] == 8.5 and rows["s02"]["raw_score"] == 8.5
    assert "formgrader_mark:test_softmax" in rows["s02"]["flags"]
    assert rows["s01"]["auto_score"] == 10 and rows["s01"]["raw_score"] == 11.0
    assert "extra_credit:test_attention_weights" in rows["s01"]["flags"]
    assert not any(f.startswith("formgrader_mark") for f in rows["s01"]["flags"])
    with _gradebook(db) as gb:  # nbgrader's own total (what `nbgrader export` writes)
        assert {s: gb.find_submission(A1, s).score for s in ("s01", "s02")} == {
            "s01": rows["s01"]["raw_score"],
            "s02": rows["s02"]["raw_score"],
        }
    report = (out / "report.html").read_text()
    assert "Marked in formgrader (2)" in report
    assert "test_softmax 2 → 0.5 (typed in formgrader)" in report
    with open(out / "grades.csv", newline="") as f:
        csv_rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert csv_rows["s02"]["auto_score"] == "8.5" and csv_rows["s01"]["raw_score"] == "11"
    # The engine writes the gradebook again (a re-grade): the TA's entries stay.
    export.write_gradebook(db, results, {A1: options_source()})
    with _gradebook(db) as gb:
        assert gb.find_grade("test_softmax", A1, A1, "s02").manual_score == 0.5
        assert gb.find_grade("test_attention_weights", A1, A1, "s01").extra_credit == 1.0
    # A score above the cell's points is refused before any grading, naming where to fix it.
    with _gradebook(db) as gb:
        gb.find_grade("test_softmax", A1, A1, "s02").manual_score = 3.0
        gb.db.commit()
    with pytest.raises(
        ClassSetupError, match=r"s02 05_attention/test_softmax is marked 3, outside 0\.\.2"
    ):
        classroom.prepare(inputs, ROOT / "solutions")


def options_source():
    from course_lib.instructor import notebooks as nbk

    return nbk.load_source(ROOT / "solutions" / A1 / f"{A1}.ipynb", A1)


# ---------------------------------------------------------------------------------------------
# Feedback pages carry the grade that grades.csv records.
# ---------------------------------------------------------------------------------------------

FEEDBACK_COURSE = """
timezone = "Europe/Berlin"

[late]
percent_per_day = 10
max_percent = 30

[assignments.05_attention]
due = "2026-11-02 23:59"
"""

_TOTAL = re.compile(r"<b id='total'>([^<]*)</b>")


def _feedback_class(tmp_path: Path) -> tuple[list[dict], Path, Path, classroom.ClassInputs]:
    """Two graded submissions of A1 (10/10 by the tests) and the class inputs that change their
    grades: s01 has a TA's score on a test cell, extra credit, one written answer marked and
    one not, and is late; s02 has an override (and a written answer with HTML in it); s03 is
    on the roster and submitted nothing."""
    results, subs, out, db = _class_of_two(tmp_path)
    (subs / "s01" / A1 / "timestamp.txt").write_text("2026-11-03 23:00:00.000000 UTC")
    (subs / "s02" / A1 / "timestamp.txt").write_text("2026-11-01 10:00:00.000000 UTC")
    nb = json.loads((subs / "s02" / A1 / f"{A1}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "written_empty_row":
            cell["source"] = "<script>alert('x')</script> 0/0"
    (subs / "s02" / A1 / f"{A1}.ipynb").write_text(json.dumps(nb))
    with _gradebook(db) as gb:
        gb.find_grade("test_softmax", A1, A1, "s01").manual_score = 0.5  # the tests gave 2
        gb.find_grade("test_attention_weights", A1, A1, "s01").extra_credit = 1.0
        gb.db.commit()
    course_toml = tmp_path / "course.toml"
    course_toml.write_text(FEEDBACK_COURSE)
    trail = tmp_path / "overrides.csv"
    overrides.record(trail, "s02", A1, 7.5, "INTERNAL-NOTE exam board decision")
    sheet = tmp_path / "marks.csv"
    with open(sheet, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment_id", "grade_id", "points"])
        w.writerows([("s01", A1, "written_scale", "1.5"), ("s02", A1, "written_empty_row", "1")])
    inputs = classroom.ClassInputs(
        roster_path=write_roster(tmp_path / "roster.csv", ["s01", "s02", "s03"]),
        course_path=course_toml,
        overrides_path=trail,
        manual_paths=[sheet],
        out=out,
    )
    return results, subs, out, inputs


def _pages_match_grades_csv(out: Path) -> dict[str, tuple[dict, str]]:
    """For every grades.csv row with a feedback link: its page's total is the row's score."""
    with open(out / "grades.csv", newline="") as f:
        table = list(csv.DictReader(f))
    pages = {}
    for row in table:
        if not row["feedback"]:
            assert not (out / "feedback" / row["student_id"] / f"{A1}.html").exists()
            continue
        page = (out / row["feedback"]).read_text(encoding="utf-8")
        assert _TOTAL.findall(page) == [f"{row['score']} / {row['max_score']}"], row
        pages[row["student_id"]] = (row, page)
    return pages


def test_feedback_pages_show_the_grade_that_grades_csv_records(tmp_path: Path) -> None:
    from course_lib.instructor import pipeline

    results, subs, out, inputs = _feedback_class(tmp_path)
    source = options_source()
    for r in results:  # what the engine writes first: the tests' points alone
        pipeline._write_feedback(out, r, {A1: source})
    engine_page = (out / "feedback" / "s01" / f"{A1}.html").read_text()
    assert _TOTAL.findall(engine_page) == ["10 / 10"] and "Your grade" not in engine_page
    for _run in range(2):  # a re-run: the engine rewrites unchanged pages, then the class layer
        for r in results:
            pipeline._write_feedback(out, r, {A1: source})
        options = classroom.prepare(inputs, ROOT / "solutions")
        classroom.finish(out, results, subs, ROOT / "solutions", options, inputs)
        pages = _pages_match_grades_csv(out)
        assert sorted(pages) == ["s01", "s02"]  # s03 submitted nothing: no link, no page
    (row1, s01), (row2, s02) = pages["s01"], pages["s02"]
    # s01: 10 - 2 + 0.5 (TA) + 1.5 (written) + 1 (extra credit) = 11, 20 % late = 8.8 / 13.
    assert (row1["raw_score"], row1["penalty"], row1["score"], row1["max_score"]) == (
        "11",
        "2.2",
        "8.8",
        "13",
    )
    assert "<td>0.5 / 2<br><small>the tests gave 2; a TA set 0.5</small></td>" in s01
    assert "<tr><th>Tests</th><td>8.5 / 10 (with the points a TA set on test_softmax)" in s01
    assert "<tr><th>Written answers</th><td>1.5 / 3 (not all marked yet)</td></tr>" in s01
    assert "<h3>written_scale: 1.5 / 2</h3>" in s01
    assert "<h3>written_empty_row: not marked yet</h3>" in s01
    assert "<tr><th>Extra credit (test_attention_weights)</th><td>+1</td></tr>" in s01
    assert "<tr><th>Late penalty</th><td>−2.2 (late by 1d 00:01:00, 20 % off)</td>" in s01
    assert "Set by your instructor" not in s01
    # s02: overridden to 7.5; the page shows the points, never the reason or who set them.
    assert row2["score"] == "7.5" and row2["override_reason"].startswith("INTERNAL-NOTE")
    assert "<tr><th>Set by your instructor</th><td>7.5 (replaces the above)</td></tr>" in s02
    assert "INTERNAL-NOTE" not in s02 and "exam board" not in s02
    recorded = list(csv.DictReader(open(inputs.overrides_path)))[0]
    assert recorded["recorded_at"] not in s02
    assert "<h3>written_empty_row: 1 / 1</h3>" in s02 and "Late penalty" not in s02
    # Escaped, the student's own answers and code only, no rubric.
    assert "<script>alert" not in s02 and "&lt;script&gt;alert(&#x27;x&#x27;)" in s02
    assert "s01&#x27;s code" in s01 and "s02&#x27;s code" not in s01
    assert "To normalise the scores." in s02 and "To normalise the scores." not in s01
    rubric = "1 point: with large scores the softmax is nearly one-hot"
    assert rubric not in s01 and rubric not in s02
    assert "BEGIN HIDDEN TESTS" not in s01 + s02 and "Visible tests" in s01


def test_pages_written_as_results_arrive_are_the_class_layers_and_written_once(
    tmp_path: Path,
) -> None:
    """``course grade`` writes each page with its class grade as the result arrives
    (:class:`.classroom.ClassPages`); the class layer then writes again only a page whose grade
    changed meanwhile (a TA's score typed in formgrader during the run). The pages end as the
    class layer alone writes them, byte for byte."""
    from course_lib.instructor import pipeline

    source = options_source()
    trees = {}
    for streamed in (True, False):
        results, subs, out, inputs = _feedback_class(tmp_path / str(streamed))
        options = classroom.prepare(inputs, ROOT / "solutions")
        pages = classroom.ClassPages(options, subs) if streamed else None
        for r in results:  # as pipeline.grade calls its page writer, result by result
            (pages or pipeline._write_feedback)(out, r, {A1: source})
        files = {s: out / "feedback" / s / f"{A1}.html" for s in ("s01", "s02")}
        before = {s: (f.stat().st_ino, f.read_text()) for s, f in files.items()}
        with _gradebook(inputs.gradebook_url()) as gb:  # a TA, while the run grades
            gb.find_grade("test_softmax", A1, A1, "s02").manual_score = 1.0
            gb.db.commit()
        classroom.finish(out, results, subs, ROOT / "solutions", options, inputs, pages)
        shown = _pages_match_grades_csv(out)
        assert "<td>1 / 2<br><small>the tests gave 2; a TA set 1</small></td>" in shown["s02"][1]
        trees[streamed] = {s: f.read_text() for s, f in files.items()}
        if streamed:
            # Already right: s01's page as it was written when its result arrived, never again.
            assert before["s01"] == (files["s01"].stat().st_ino, trees[True]["s01"])
            assert "Late penalty" in before["s01"][1] and "Your grade" in before["s01"][1]
            # s02's grade changed after its page was written: written again.
            assert files["s02"].stat().st_ino != before["s02"][0]
            assert "a TA set 1" not in before["s02"][1]
            assert pages.times[("s01", A1)][1] == "timestamp.txt"
    assert trees[True] == trees[False]


def test_feedback_without_class_inputs_shows_the_engines_total(tmp_path: Path) -> None:
    """No roster, policy, marks or overrides: the page carries grades.csv's total (the written
    cells count in max_score); where nothing of the class layer applies, it is the engine's page."""
    from course_lib.instructor import pipeline

    results, subs, out, _db = _class_of_two(tmp_path)
    source = options_source()
    results[1]["score"] = 6.0
    results[1]["cells"][0]["points"] = 0.0
    results[1]["cells"][0]["status"] = "failed"
    for r in results:
        pipeline._write_feedback(out, r, {A1: source})
    engine = (out / "feedback" / "s02" / f"{A1}.html").read_text()
    inputs = classroom.ClassInputs(out=out)
    options = classroom.prepare(inputs, ROOT / "solutions")
    classroom.finish(out, results, subs, ROOT / "solutions", options, inputs)
    pages = _pages_match_grades_csv(out)
    assert _TOTAL.findall(engine) == ["6 / 10"]
    assert pages["s02"][0]["max_score"] == "13"  # the written cells count, not yet marked
    assert _TOTAL.findall(pages["s02"][1]) == ["6 / 13"] and "Your grade" in pages["s02"][1]
    # Nothing of the class layer applies (no written cells here): the engine's page, unchanged.
    rows = classroom.class_rows(results, classroom.ClassOptions())
    (out / "feedback" / "s01" / f"{A1}.html").unlink()  # s01 keeps its link: written again
    classroom.write_feedback(out, rows, {A1: source})
    assert (out / "feedback" / "s02" / f"{A1}.html").read_text() == engine
    assert [r["feedback"] for r in rows] == [f"feedback/{s}/{A1}.html" for s in ("s01", "s02")]
    assert _TOTAL.findall((out / "feedback" / "s01" / f"{A1}.html").read_text()) == ["10 / 10"]
    # A row the engine wrote no page for gets no link (and no page is written for it).
    bad = result("bad/id", A1, 0.0, status="invalid_id", status_text="invalid_id")
    rows = classroom.class_rows([bad], classroom.ClassOptions())
    classroom.write_feedback(out, rows, {A1: source})
    assert rows[0]["feedback"] == "" and not (out / "feedback" / "bad").exists()

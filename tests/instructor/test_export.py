"""``course export``: grading results into nbgrader's gradebook and out to CSV.

SQLite by default; PostgreSQL against a real server this test starts (Debian's ``postgresql``
binaries, a throwaway cluster on 127.0.0.1 and a free port, run as ``nobody``).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.instructor import export
from course_lib.instructor.notebooks import load_source

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "solutions").glob("*/*.ipynb"))
if not SOURCES:
    pytest.skip("no solutions/<id>/<id>.ipynb yet", allow_module_level=True)
ASSIGNMENT = SOURCES[0].parent.name
SOURCE = load_source(SOURCES[0], ASSIGNMENT)


def _result(student: str, passed: int, flags: list[str]) -> dict:
    cells = [
        {
            "grade_id": t.grade_id,
            "owner": t.owner,
            "points": t.points if i < passed else 0.0,
            "max_points": t.points,
            "status": "passed" if i < passed else "failed",
            "message": "",
        }
        for i, t in enumerate(SOURCE.tests)
    ]
    score = sum(c["points"] for c in cells)
    return {
        "student_id": student,
        "assignment_id": ASSIGNMENT,
        "score": score,
        "max_score": SOURCE.max_score,
        "status": "graded",
        "status_text": "graded",
        "reason": "",
        "flags": flags,
        "cells": cells,
        "student_code": {},
        "seconds": 0.0,
    }


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    state = tmp_path / "out" / ".state"
    state.mkdir(parents=True)
    for student, passed, flags in [
        ("alice", len(SOURCE.tests), []),
        ("bob", 1, ["monkeypatch:x"]),
        ("carol", 0, []),
    ]:
        (state / f"{student}__{ASSIGNMENT}.json").write_text(
            json.dumps({"key": "k", "result": _result(student, passed, flags)})
        )
    return tmp_path / "out"


def _expected() -> dict[str, float]:
    return {
        "alice": SOURCE.max_score,
        "bob": SOURCE.tests[0].points,
        "carol": 0.0,
    }


def _read(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def _check_round_trip(db_url: str, results_dir: Path, tmp_path: Path) -> None:
    # A student graded earlier by someone else: the export must not change their row.
    export.write_gradebook(db_url, [_result("dave", 1, [])], {ASSIGNMENT: SOURCE})
    out = tmp_path / "grades.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "export",
            "--out",
            str(out),
            "--db",
            db_url,
            "--results",
            str(results_dir),
            "--source",
            str(ROOT / "solutions"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    rows = _read(out)
    for student, score in _expected().items():
        assert float(rows[student]["score"]) == pytest.approx(score)
        assert float(rows[student]["max_score"]) == pytest.approx(SOURCE.max_score)
    assert rows["bob"]["flags"] == "monkeypatch:x"
    assert float(rows["dave"]["score"]) == pytest.approx(SOURCE.tests[0].points)
    # Exporting twice changes nothing; reading back without --results gives the same scores.
    again = tmp_path / "again.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib.cli", "export", "--out", str(again), "--db", db_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert {k: v["score"] for k, v in _read(again).items()} == {
        k: v["score"] for k, v in rows.items()
    }
    assert _read(again)["bob"]["flags"] == "flagged"


def test_new_gradebooks_carry_the_schema_version_nbgrader_would_give_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head is read from nbgrader's migration scripts instead of an `alembic heads`
    subprocess; nbgrader's own function (the oracle) must agree, and a gradebook we create must
    be stamped with it, so that nbgrader's tools (and its upgrades) accept it."""
    import sqlite3

    from nbgrader.api import get_alembic_version

    bindir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` by name
    monkeypatch.setenv("PATH", os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    export.alembic_head.cache_clear()
    head = export.alembic_head()
    assert head == get_alembic_version()
    db = tmp_path / "gradebook.db"
    export.write_gradebook(f"sqlite:///{db}", [_result("erin", 2, [])], {ASSIGNMENT: SOURCE})
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]


def test_export_to_sqlite(results_dir: Path, tmp_path: Path) -> None:
    _check_round_trip(f"sqlite:///{tmp_path / 'gradebook.db'}", results_dir, tmp_path)


def test_export_of_a_missing_results_folder_says_what_to_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "export",
            "--out",
            str(tmp_path / "x.csv"),
            "--db",
            f"sqlite:///{tmp_path / 'g.db'}",
            "--results",
            str(tmp_path / "nothing"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "course grade" in proc.stderr


@pytest.mark.slow
def test_export_to_postgresql(postgres: str, results_dir: Path, tmp_path: Path) -> None:
    _check_round_trip(postgres, results_dir, tmp_path)


_WRITER = """
import json, sys
from pathlib import Path
from course_lib.instructor import export
from course_lib.instructor.notebooks import load_source
url, results, source = sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3])
aid = source.parent.name
export.write_gradebook(url, results, {aid: load_source(source, aid)})
"""


@pytest.mark.slow
def test_concurrent_exports_to_one_postgresql_gradebook(postgres: str, tmp_path: Path) -> None:
    """Three machines export three assignments of the same students at once: every writer
    succeeds (each waits for the others' turn) and every score lands once."""
    sources = [load_source(p, p.parent.name) for p in SOURCES[:3]]
    assert len(sources) == 3
    students = ["ann", "ben", "cy", "dee"]
    expected, procs = {}, []
    for k, src in enumerate(sources):
        results = []
        for i, student in enumerate(students):
            passed = (i + k) % (len(src.tests) + 1)
            cells = [
                {
                    "grade_id": t.grade_id,
                    "owner": t.owner,
                    "points": t.points if j < passed else 0.0,
                    "max_points": t.points,
                    "status": "passed" if j < passed else "failed",
                    "message": "",
                }
                for j, t in enumerate(src.tests)
            ]
            r = dict(_result(student, 0, []), assignment_id=src.assignment_id, cells=cells)
            r.update(score=sum(c["points"] for c in cells), max_score=src.max_score)
            results.append(r)
            expected[(src.assignment_id, student)] = r["score"]
        path = tmp_path / f"{src.assignment_id}.json"
        path.write_text(json.dumps(results))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, postgres, str(path), str(src.path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    got = {(r["assignment"], r["student_id"]): r["score"] for r in export.read_gradebook(postgres)}
    assert got == pytest.approx(expected)


def _write_with_nbgraders_api(db_url: str, results: list[dict]) -> None:
    """The reference: nbgrader's own per-object calls, one submission at a time."""
    export.write_gradebook(db_url, [], {ASSIGNMENT: SOURCE})  # assignment, notebook, cells
    gb = export._gradebook(db_url)
    try:
        for r in results:
            sid = r["student_id"]
            gb.update_or_create_student(sid)
            gb.update_or_create_submission(ASSIGNMENT, sid)
            for cell in r["cells"]:
                grade = gb.find_grade(cell["grade_id"], ASSIGNMENT, ASSIGNMENT, sid)
                grade.auto_score = float(cell["points"])
                grade.needs_manual_grade = False
            gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, sid).flagged = bool(r["flags"])
            gb.db.commit()
    finally:
        gb.close()


def _dump(db_url: str) -> dict:
    """Every row a submission has in the gradebook, by student and cell name (not by uuid)."""
    from nbgrader import api as nb

    gb = export._gradebook(db_url)
    try:

        def owner(notebook) -> str:
            return notebook.assignment.student.id

        return {
            "grades": sorted(
                (owner(g.notebook), g.cell.name, g.auto_score, g.needs_manual_grade)
                for g in gb.db.query(nb.Grade)
            ),
            "comments": sorted((owner(c.notebook), c.cell.name) for c in gb.db.query(nb.Comment)),
            "flags": sorted((owner(n), n.flagged) for n in gb.db.query(nb.SubmittedNotebook)),
            "scores": export.read_gradebook(db_url),
        }
    finally:
        gb.close()


def test_bulk_gradebook_write_gives_the_rows_of_nbgraders_api(tmp_path: Path) -> None:
    first = [_result("alice", len(SOURCE.tests), []), _result("bob", 1, ["monkeypatch:x"])]
    # A re-grade updates bob (all passed, no flag) and adds carol.
    second = [_result("bob", len(SOURCE.tests), []), _result("carol", 0, ["similar:alice"])]
    ours, theirs = f"sqlite:///{tmp_path / 'ours.db'}", f"sqlite:///{tmp_path / 'theirs.db'}"
    export.write_gradebook(ours, first, {ASSIGNMENT: SOURCE})
    _write_with_nbgraders_api(theirs, first)
    assert _dump(ours) == _dump(theirs)
    export.write_gradebook(ours, second, {ASSIGNMENT: SOURCE})
    _write_with_nbgraders_api(theirs, second)
    after = _dump(ours)
    assert after == _dump(theirs)
    scores = {r["student_id"]: (r["score"], r["flagged"]) for r in after["scores"]}
    assert scores == {
        "alice": (pytest.approx(SOURCE.max_score), False),
        "bob": (pytest.approx(SOURCE.max_score), False),
        "carol": (0.0, True),
    }
    assert len(after["grades"]) == 3 * len(SOURCE.tests)  # one per student and test, no more


def test_a_result_with_a_test_the_source_lacks_is_refused_and_nothing_written(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    stale = _result("alice", 1, [])
    stale["cells"].append(dict(stale["cells"][0], grade_id="removed_test"))
    with pytest.raises(RuntimeError, match="removed_test.*grade it again"):
        export.write_gradebook(db, [_result("bob", 1, []), stale], {ASSIGNMENT: SOURCE})
    assert export.read_gradebook(db) == []  # one transaction: bob is not half-written either

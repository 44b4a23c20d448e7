"""``course grade`` end to end on a generated corpus (honest, wrong, broken, hostile).

One grading run of the whole corpus (2 jobs) is shared by the tests of this module; each case's
expected score, status and flags come from ``tests/submissions/make_corpus.py``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "submissions"))

import make_corpus  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading")]
SEED = "a passphrase, not a number"  # any text is a valid grading seed


@pytest.fixture(scope="module", autouse=True)
def _grading_seed() -> object:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_GRADING_SEED", SEED)
        yield


def _assignment() -> str | None:
    for aid in ("05_attention", "01_tensors"):
        if (ROOT / "solutions" / aid / f"{aid}.ipynb").exists():
            return aid
    found = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb"))
    return found[0] if found else None


ASSIGNMENT = _assignment()
if ASSIGNMENT is None:
    pytest.skip("no solutions/<id>/<id>.ipynb yet", allow_module_level=True)
SOURCE, CASES = make_corpus.build(ASSIGNMENT)
BY_NAME = {c.student: c for c in CASES}
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from course_lib.instructor import export, pipeline
    from course_lib.instructor.sandbox import Limits

    base = tmp_path_factory.mktemp("grading")
    subs = base / "submitted"
    make_corpus.write(ASSIGNMENT, subs)
    out = base / "out"
    out.mkdir()
    db = f"sqlite:///{out / 'gradebook.db'}"
    # A student graded earlier, whose row nothing in this run may touch.
    export.write_gradebook(db, [_bystander()], {ASSIGNMENT: SOURCE})
    logs: list[str] = []
    results = pipeline.grade(
        subs,
        out,
        jobs=2,
        limits=Limits(timeout=TIMEOUT, memory_mb=2048),
        source_dir=ROOT / "solutions",
        log=logs.append,
    )
    return {"base": base, "subs": subs, "out": out, "db": db, "results": results, "logs": logs}


def _bystander() -> dict:
    return {
        "student_id": "zz_bystander",
        "assignment_id": ASSIGNMENT,
        "score": 1.0,
        "max_score": SOURCE.max_score,
        "status": "graded",
        "status_text": "graded",
        "flags": [],
        "cells": [
            {
                "grade_id": t.grade_id,
                "owner": t.owner,
                "points": 1.0 if i == 0 else 0.0,
                "max_points": t.points,
                "status": "passed",
                "message": "",
            }
            for i, t in enumerate(SOURCE.tests)
        ],
    }


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


@pytest.mark.parametrize("student", [c.student for c in CASES])
def test_each_submission_gets_its_expected_row(graded: dict, student: str) -> None:
    case = BY_NAME[student]
    row = _rows(graded["out"])[student]
    status = row["status"].split(":")[0]
    assert status in case.status.split("|"), (student, row["status"])
    want = make_corpus.expected_score(case, SOURCE)
    if want is not None:
        assert float(row["score"]) == pytest.approx(want), (student, row)
    elif case.score == ">0":
        assert 0 < float(row["score"]) < SOURCE.max_score, (student, row)
    assert float(row["max_score"]) == SOURCE.max_score
    for flag in case.flags:
        assert flag in row["flags"], (student, flag, row["flags"])
    if case.student in ("honest", "blank", "nbformat3", "metadata_stripped", "huge_outputs"):
        assert row["flags"] == "", (student, row["flags"])


def test_csv_has_the_documented_columns_and_one_row_per_submission(graded: dict) -> None:
    with open(graded["out"] / "grades.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == ["student_id", "assignment_id", "score", "max_score", "status", "flags"]
    assert sorted(r[0] for r in rows) == sorted(c.student for c in CASES)
    assert all(r[1] == ASSIGNMENT for r in rows)


def test_feedback_never_shows_hidden_tests_or_solutions(graded: dict) -> None:
    hidden_lines = []
    for t in SOURCE.tests:
        region = t.source.split("### BEGIN HIDDEN TESTS")[1:]
        for part in region:
            body = part.split("### END HIDDEN TESTS")[0]
            hidden_lines += [ln.strip() for ln in body.splitlines() if len(ln.strip()) > 25]
    visible = "\n".join(t.visible for t in SOURCE.tests)
    hidden_lines = [ln for ln in hidden_lines if ln not in visible]
    assert hidden_lines, "the source notebook should have hidden tests"
    solution_lines = []
    for s in SOURCE.solutions:
        body = s.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        solution_lines += [ln.strip() for ln in body.splitlines() if len(ln.strip()) > 25]
    for case in CASES:
        html = (graded["out"] / "feedback" / case.student / f"{ASSIGNMENT}.html").read_text()
        assert "BEGIN HIDDEN TESTS" not in html
        for line in hidden_lines:
            assert line not in html.replace("&quot;", '"').replace("&#x27;", "'"), (
                case.student,
                line,
            )
        if case.student in ("blank", "monkeypatch", "tests_rewritten"):
            for line in solution_lines:
                assert line not in html, (case.student, line)
    honest = (graded["out"] / "feedback" / "honest" / f"{ASSIGNMENT}.html").read_text()
    assert f"{SOURCE.max_score:g} / {SOURCE.max_score:g}" in honest


def test_report_has_inline_figures_and_most_failed_tests(graded: dict) -> None:
    html = (graded["out"] / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert "Most failed tests" in html and "Flagged for manual review" in html
    assert "<script" not in html and "src='http" not in html


def test_gradebook_holds_the_scores_and_leaves_other_students_alone(graded: dict) -> None:
    from course_lib.instructor import export

    rows = {r["student_id"]: r for r in export.read_gradebook(graded["db"])}
    csv_rows = _rows(graded["out"])
    for student, row in csv_rows.items():
        assert rows[student]["score"] == pytest.approx(float(row["score"]))
    assert rows["zz_bystander"]["score"] == pytest.approx(1.0)


def test_hostile_code_could_not_write_outside_its_sandbox(graded: dict) -> None:
    assert not (ROOT / "solutions" / "pwned.txt").exists()
    assert not Path("/tmp/pwned-by-student.txt").exists()
    assert not list(graded["subs"].rglob("pwned.txt"))
    con = sqlite3.connect(graded["out"] / "gradebook.db")
    try:
        assert con.execute("select count(*) from student").fetchone()[0] == len(CASES) + 1
    finally:
        con.close()


def test_rerun_gives_the_same_results_without_regrading(graded: dict) -> None:
    from course_lib.instructor import pipeline
    from course_lib.instructor.sandbox import Limits

    before = (graded["out"] / "grades.csv").read_text()
    logs: list[str] = []
    pipeline.grade(
        graded["subs"],
        graded["out"],
        jobs=2,
        limits=Limits(timeout=TIMEOUT),
        source_dir=ROOT / "solutions",
        log=logs.append,
    )
    assert (graded["out"] / "grades.csv").read_text() == before
    assert any(f"{len(CASES)} unchanged, 0 to grade" in line for line in logs), logs


def test_an_interrupted_run_resumes_where_it_stopped(graded: dict) -> None:
    from course_lib.instructor import pipeline
    from course_lib.instructor.sandbox import Limits

    out = graded["base"] / "resumed"
    shutil.copytree(graded["out"] / ".state", out / ".state")
    (out / ".state" / f"honest__{ASSIGNMENT}.json").unlink()  # as if killed before it finished
    logs: list[str] = []
    pipeline.grade(
        graded["subs"],
        out,
        jobs=1,
        limits=Limits(timeout=TIMEOUT),
        source_dir=ROOT / "solutions",
        log=logs.append,
    )
    assert any("1 to grade" in line for line in logs), logs
    assert _rows(out) == _rows(graded["out"])


def _course_grade(submissions: Path, out: Path) -> subprocess.CompletedProcess:
    """``course grade SUBMISSIONS --out OUT`` as an instructor types it (1 job)."""
    return subprocess.run(
        [sys.executable, "-m", "course_lib.cli", "grade", str(submissions), "--out", str(out)]
        + ["--jobs", "1", "--timeout", str(TIMEOUT), "--source", str(ROOT / "solutions")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
    )


def test_a_zip_of_submissions_grades_like_the_folder(graded: dict, tmp_path: Path) -> None:
    archive = tmp_path / "submitted.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for student in ("honest", "blank"):
            nb = graded["subs"] / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            zf.write(nb, f"submitted/{student}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    out = tmp_path / "out"
    proc = _course_grade(archive, out)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert float(rows["honest"]["score"]) == SOURCE.max_score
    assert float(rows["blank"]["score"]) == 0
    assert (out / "feedback" / "honest" / f"{ASSIGNMENT}.html").exists()


def test_text_that_no_utf8_file_can_hold_stops_nothing_and_loses_no_row(tmp_path: Path) -> None:
    """A notebook's JSON may hold a lone surrogate (``"\\ud800"``), and a student folder's name
    may not be UTF-8: no UTF-8 file can hold either as it is. ``course grade`` grades the
    notebook (the character is read as U+FFFD, as an undecodable byte is) and writes every
    row, with the folder's bytes escaped, each row under its own name."""
    import copy

    from course_lib.instructor import manual

    nb = copy.deepcopy(BY_NAME["honest"].notebook)
    first = SOURCE.solutions[0].grade_id
    make_corpus._cell(nb, first)["source"] += "\n# an odd character: \ud800\n"
    written = manual.written_cells(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == written[0].grade_id:
            cell["source"] = "My answer \udc80 ends here."
    subs = tmp_path / "submitted"
    (subs / "odd" / ASSIGNMENT).mkdir(parents=True)
    (subs / "odd" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))  # escapes
    assert "\\ud800" in (subs / "odd" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    os.makedirs(os.fsencode(subs) + b"/\xffbad/" + ASSIGNMENT.encode())  # not UTF-8
    (subs / "\\xffbad" / ASSIGNMENT).mkdir(parents=True)  # the same name, shown escaped
    out = tmp_path / "out"
    proc = _course_grade(subs, out)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert sorted(rows) == ["\\xffbad", "\\xffbad (2)", "odd"]
    assert (
        rows["odd"]["status"] == "graded" and float(rows["odd"]["auto_score"]) == SOURCE.max_score
    )
    assert rows["\\xffbad"]["status"].startswith("invalid_id")
    assert rows["\\xffbad (2)"]["status"].startswith("invalid_id")
    page = (out / "feedback" / "odd" / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")
    assert "# an odd character: \ufffd" in page and "My answer \ufffd ends here." in page
    sheet = (out / "manual" / f"{ASSIGNMENT}.csv").read_text(encoding="utf-8")
    assert "My answer \ufffd ends here." in sheet


def test_a_zip_with_path_traversal_is_refused(tmp_path: Path) -> None:
    from course_lib.instructor import pipeline

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.ipynb", "{}")
    with pytest.raises(pipeline.GradingSetupError, match="unsafe path"):
        pipeline.grade(archive, tmp_path / "out", source_dir=ROOT / "solutions", log=lambda m: None)
    assert not (tmp_path.parent / "escaped.ipynb").exists()


def test_bad_arguments_say_how_to_fix_them(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "grade",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "submitted/" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "grade",
            str(tmp_path),
            "--out",
            "o",
            "--jobs",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "must be positive" in proc.stderr


def test_state_files_record_per_cell_results(graded: dict) -> None:
    state = json.loads((graded["out"] / ".state" / f"honest__{ASSIGNMENT}.json").read_text())
    cells = state["result"]["cells"]
    assert [c["grade_id"] for c in cells] == [t.grade_id for t in SOURCE.tests]
    assert all(c["status"] == "passed" for c in cells)


def test_state_files_carry_the_graders_fingerprint_for_the_copying_review(graded: dict) -> None:
    """Made in the grader from the code it graded, valid for the review (which then need not
    tokenise it), and byte for byte the record the review would make of that code."""
    from course_lib.instructor import similarity

    boiler = similarity.boilerplate_code(SOURCE)
    with_code = 0
    for path in sorted((graded["out"] / ".state").glob("*.json")):
        result = json.loads(path.read_text())["result"]
        code = similarity.student_code(result)
        if not code.strip():
            assert "fingerprint" not in result, path.name
            continue
        with_code += 1
        record = result["fingerprint"]
        assert record == similarity.fingerprint_record(code, boiler), path.name
        assert similarity.restore_fingerprint(record, "x", code, boiler) is not None
    assert with_code >= len(CASES) // 2
    assert "fingerprint" not in (graded["out"] / "grades.csv").read_text()


_CLIENT = """
import sys
from course_lib import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
print("torch imported:", "torch" in sys.modules)
"""


def test_the_client_never_imports_torch(tmp_path: Path) -> None:
    """``course grade`` runs student code only in its grader processes; the client itself (seed,
    discovery, outputs, report, gradebook, the class layer's copying review) imports neither
    the checkers nor torch, which would cost every run 2-3 s before any grading starts."""
    from course_lib import grading as G
    from course_lib.instructor import pipeline

    assert (pipeline.SEED_ENV, pipeline.DEFAULT_SEED) == (G.SEED_ENV, G.DEFAULT_SEED)
    make_corpus.write(ASSIGNMENT, tmp_path / "corpus", only=["honest"])
    args = ["grade", str(tmp_path / "corpus"), "--out", str(tmp_path / "out"), "--jobs", "1"]
    args += ["--source", str(ROOT / "solutions")]
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "torch imported: False" in done.stdout, done.stdout
    assert _rows(tmp_path / "out")["honest"]["score"] == str(int(SOURCE.max_score))


def test_a_pool_that_cannot_start_once_is_started_again(monkeypatch) -> None:
    """multiprocessing's resource tracker can die under the pool as it is made (the write to
    it raises BrokenPipeError): a fault of the machine, so the pool is made again rather than
    the run stopping with a traceback; a pool that never starts still raises."""
    import concurrent.futures as cf
    import multiprocessing

    from course_lib.instructor import pipeline

    made, lines = [], []
    real = cf.ProcessPoolExecutor

    def flaky(*args, **kwargs):
        made.append(1)
        if len(made) == 1:
            raise BrokenPipeError(32, "Broken pipe")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.cf, "ProcessPoolExecutor", flaky)
    ctx = multiprocessing.get_context("spawn")
    pool = pipeline._new_pool(1, ctx, (), lines.append)
    pool.shutdown()
    assert len(made) == 2 and len(lines) == 1 and "BrokenPipeError" in lines[0]

    def never(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(pipeline.cf, "ProcessPoolExecutor", never)
    with pytest.raises(BrokenPipeError):
        pipeline._new_pool(1, ctx, (), lines.append)
    assert len(lines) == 1 + pipeline.ATTEMPTS - 1

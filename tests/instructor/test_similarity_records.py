"""Fingerprint records: the graders fingerprint each submission for the copying review
(``similarity.add_fingerprint`` in ``pipeline.grade_task`` and the Dask workers), and the review
reads the record back instead of running copydetect's tokeniser on the client at the end of the
run. With records or without, the review lists the same pairs and writes the same files; a record
that is not the one for this code, this starter code and this version is never used."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib.instructor import classroom, lms, pipeline, report, similarity
from course_lib.instructor import notebooks as nbk
from course_lib.instructor.roster import load_roster

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_similarity_scale import corpus, setting  # noqa: E402

A1 = "05_attention"


def _source() -> nbk.SourceAssignment:
    return nbk.load_source(ROOT / "solutions" / A1 / f"{A1}.ipynb", A1)


def _results(codes: dict[str, str], records: bool) -> list[dict]:
    """Result rows as the engine returns them, with the graders' records or without."""
    _, boiler = setting()
    rows = []
    for sid, code in codes.items():
        row = {
            "student_id": sid,
            "assignment_id": A1,
            "score": 1.0,
            "max_score": 10.0,
            "status": "graded",
            "status_text": "graded",
            "flags": [],
            "cells": [],
            "student_code": {"softmax": code},
        }
        if records:
            record = similarity.fingerprint_record(code, boiler)
            if record is not None:  # through JSON, as a state file or a Dask result carries it
                row["fingerprint"] = json.loads(json.dumps(record))
        rows.append(row)
    return rows


def _review(results: list[dict], out: Path, threshold: float) -> tuple:
    """The review's flags, links, CSV and HTML."""
    flags, links = similarity.run(results, {A1: _source()}, out, threshold)
    folder = out / "similarity"
    return flags, links, (folder / f"{A1}.csv").read_bytes(), (folder / f"{A1}.html").read_bytes()


def _same_fingerprint(got: object, want: object) -> None:
    """Attribute by attribute, types included (numpy scalars and arrays where copydetect has
    them), and hash_idx in copydetect's order."""
    assert type(got) is type(want)
    assert set(vars(got)) == set(vars(want))
    for name, value in vars(want).items():
        mine = getattr(got, name)
        if isinstance(value, np.ndarray):
            assert mine.dtype == value.dtype and mine.shape == value.shape, name
            assert (mine == value).all(), name
        else:
            assert type(mine) is type(value) and mine == value, name
    assert list(got.hash_idx) == list(want.hash_idx)
    for key, positions in want.hash_idx.items():
        assert type(next(iter(got.hash_idx))) is type(key)
        assert [type(p) for p in got.hash_idx[key]] == [type(p) for p in positions]


# ---------------------------------------------------------------------------------------------
# With records, the review is the same.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.45, 0.8])
def test_the_review_with_records_lists_and_writes_what_it_does_without(
    tmp_path: Path, threshold: float
) -> None:
    codes = corpus(30, seed=11)
    without = _review(_results(codes, records=False), tmp_path / "without", threshold)
    with_records = _review(_results(codes, records=True), tmp_path / "with", threshold)
    assert with_records == without
    flags, _, table, _ = without
    assert table.count(b"\n") >= 6 and b"reference" in table  # copies and the reference listed
    assert any(f.startswith("similar_to:") for fl in flags.values() for f in fl)


def test_a_record_gives_back_the_fingerprint_copydetect_makes() -> None:
    references, boiler = setting()
    codes = corpus(12, seed=3)
    made = 0
    for sid, code in codes.items():
        record = similarity.fingerprint_record(code, boiler)
        if not code.strip():
            assert record is None
            continue
        text = json.dumps(record)
        assert code not in text  # the raw code travels once, in student_code
        back = similarity.restore_fingerprint(json.loads(text), sid, code, boiler)
        want = similarity._fingerprint(sid, code, similarity._boilerplate_hashes(boiler))
        _same_fingerprint(back, want)
        made += 1
    assert made >= 40
    # A lone surrogate (a notebook's JSON may hold one) is fingerprinted, and read back.
    odd = codes["h000"].replace("return", "return '\ud800' and", 1)
    assert "\ud800" in odd
    record = json.loads(json.dumps(similarity.fingerprint_record(odd, boiler)))
    want = similarity._fingerprint("odd", odd, similarity._boilerplate_hashes(boiler))
    _same_fingerprint(similarity.restore_fingerprint(record, "odd", odd, boiler), want)
    # The starter code untouched: every fingerprint is boilerplate, nothing left to compare.
    back = similarity.restore_fingerprint(
        similarity.fingerprint_record(boiler, boiler), "starter", boiler, boiler
    )
    assert back is not None and back.hash_idx == {} and back.token_coverage == 0


def test_records_do_not_depend_on_the_process_that_made_them() -> None:
    """A grader process has its own ``PYTHONHASHSEED``; its records are the client's."""
    _, boiler = setting()
    codes = dict(list(corpus(6, seed=2).items())[:8])
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from course_lib.instructor import similarity\n"
        "codes, boiler = json.load(sys.stdin)\n"
        "print(json.dumps({s: similarity.fingerprint_record(c, boiler) for s, c in codes.items()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([codes, boiler]),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    theirs = json.loads(done.stdout)
    assert theirs == {s: similarity.fingerprint_record(c, boiler) for s, c in codes.items()}
    for sid, code in codes.items():
        want = similarity._fingerprint(sid, code, similarity._boilerplate_hashes(boiler))
        _same_fingerprint(similarity.restore_fingerprint(theirs[sid], sid, code, boiler), want)


def test_with_records_the_tokeniser_runs_for_the_references_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copydetect.detector

    references, boiler = setting()
    codes = corpus(10, seed=4)
    real = copydetect.detector.filter_code
    tokenised: list[str] = []

    def counted(code: str, *args: object, **kwargs: object) -> object:
        tokenised.append(code)
        return real(code, *args, **kwargs)

    with_records, without = _results(codes, records=True), _results(codes, records=False)
    monkeypatch.setattr(copydetect.detector, "filter_code", counted)
    similarity._boilerplate_hashes.cache_clear()
    similarity.run(with_records, {A1: _source()}, tmp_path)
    assert sorted(tokenised) == sorted([boiler, *references])
    tokenised.clear()
    similarity.run(without, {A1: _source()}, tmp_path)
    students = [c for c in codes.values() if c.strip()]
    assert sorted(tokenised) == sorted([*students, *references])  # the boilerplate's is cached


# ---------------------------------------------------------------------------------------------
# A record that does not match is not used.
# ---------------------------------------------------------------------------------------------


def _malformed(record: dict) -> dict[str, object]:
    """Records with the right tag and digests whose content cannot be copydetect's."""
    cases: dict[str, object] = {}

    def case(name: str, change) -> None:
        bad = copy.deepcopy(record)
        change(bad)
        cases[name] = bad

    positions = record["positions"]
    case("position past the end", lambda r: r["positions"][0].append(10**6))
    case("negative position", lambda r: r["positions"][0].__setitem__(0, -1))
    case("two hashes in one group", lambda r: r["positions"][0].append(positions[1][0]))
    case("one hash in two groups", lambda r: r["positions"].append(list(positions[0])))
    case("empty group", lambda r: r["positions"].append([]))
    case("position not an int", lambda r: r["positions"][0].__setitem__(0, 1.5))
    case("position a string", lambda r: r["positions"][0].__setitem__(0, "3"))
    case("coverage a float", lambda r: r.__setitem__("token_coverage", 10.0))
    case("coverage too large", lambda r: r.__setitem__("token_coverage", 10**6))
    case("offsets of two lengths", lambda r: r["offsets"][0].pop())
    case("offsets not ints", lambda r: r["offsets"][1].__setitem__(0, "x"))
    case("no positions", lambda r: r.pop("positions"))
    case("filtered code not text", lambda r: r.__setitem__("filtered_code", 5))
    case("positions nested deeper", lambda r: r["positions"].__setitem__(0, [[1, 2], [3]]))
    case("offsets a dict", lambda r: r.__setitem__("offsets", {"a": 1}))
    case("offsets of three columns", lambda r: r["offsets"].append(list(r["offsets"][0])))
    return cases


def test_a_stale_or_malformed_record_is_ignored() -> None:
    _, boiler = setting()
    codes = list(corpus(4, seed=8).values())
    code, other = codes[0], codes[1]
    record = similarity.fingerprint_record(code, boiler)
    assert similarity.restore_fingerprint(record, "s", code, boiler) is not None
    stale = {
        "another student's code": (similarity.fingerprint_record(other, boiler), code, boiler),
        "code edited": (record, code.replace("return", "return  ", 1), boiler),
        "starter code changed": (record, code, boiler + "\n# changed"),
        "no starter code then": (similarity.fingerprint_record(code, ""), code, boiler),
        "another version": ({**record, "format": record["format"] + "x"}, code, boiler),
        "no version": ({k: v for k, v in record.items() if k != "format"}, code, boiler),
        "not a dict": ("garbage", code, boiler),
        "a list": ([record], code, boiler),
        "empty": ({}, code, boiler),
        **{name: (bad, code, boiler) for name, bad in _malformed(record).items()},
    }
    for name, (rec, text, starter) in stale.items():
        assert similarity.restore_fingerprint(rec, "s", text, starter) is None, name


def test_the_review_with_stale_records_is_still_right(tmp_path: Path) -> None:
    codes = corpus(20, seed=6)
    want = _review(_results(codes, records=False), tmp_path / "want", 0.8)
    rows = _results(codes, records=True)
    graded = [r for r in rows if "fingerprint" in r]
    # Records swapped between students (an edited resubmission whose state was kept), from
    # other starter code, another version, and garbage.
    graded[0]["fingerprint"], graded[1]["fingerprint"] = (
        graded[1]["fingerprint"],
        graded[0]["fingerprint"],
    )
    graded[2]["fingerprint"] = similarity.fingerprint_record(
        similarity.student_code(graded[2]), "def softmax(x):\n    pass\n"
    )
    graded[3]["fingerprint"] = {**graded[3]["fingerprint"], "format": "copydetect-record/0"}
    graded[4]["fingerprint"] = "garbage"
    for name, bad in _malformed(graded[5]["fingerprint"]).items():
        graded[5]["fingerprint"] = bad
        assert _review(rows, tmp_path / "got", 0.8) == want, name
    assert _review(rows, tmp_path / "got", 0.8) == want


# ---------------------------------------------------------------------------------------------
# In the grader.
# ---------------------------------------------------------------------------------------------


def _grade_task_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: dict) -> dict:
    """``pipeline.grade_task`` with the grading itself replaced by a fixed result."""
    from course_lib.instructor import grader

    def graded(source, notebook, **kwargs) -> grader.SubmissionResult:
        return grader.SubmissionResult(
            kwargs["student_id"], A1, 7.0, 10.0, "partial", "a cell raised", ["note:x"],
            student_code=dict(code), seconds=1.5,
        )  # fmt: skip

    monkeypatch.setattr(grader, "grade_notebook", graded)
    task = {
        "student_id": "s1",
        "assignment_id": A1,
        "notebook": str(tmp_path / "x.ipynb"),
        "source": str(ROOT / "solutions" / A1 / f"{A1}.ipynb"),
        "limits": {},
        "hidden_modules": [],
    }
    return pipeline.grade_task(task)


def test_grade_task_adds_the_record_and_a_failing_fingerprint_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, boiler = setting()
    code = {"softmax": corpus(4, seed=1)["h000"], "attention": "    return w @ v\n"}
    out = _grade_task_with(monkeypatch, tmp_path, code)
    record = out.pop("fingerprint")
    text = similarity.student_code({"student_code": code})
    assert record == similarity.fingerprint_record(text, boiler)
    assert similarity.restore_fingerprint(record, "s1", text, boiler) is not None
    assert out["score"] == 7.0 and out["status_text"] == "partial: a cell raised"

    def broken(*args: object) -> dict:
        raise RuntimeError("the tokeniser failed")

    monkeypatch.setattr(similarity, "fingerprint_record", broken)
    assert _grade_task_with(monkeypatch, tmp_path, code) == out  # exactly as without a record
    monkeypatch.undo()
    blank = _grade_task_with(monkeypatch, tmp_path, {"softmax": "  \n"})
    assert "fingerprint" not in blank and blank["student_code"] == {"softmax": "  \n"}


# ---------------------------------------------------------------------------------------------
# Nowhere else.
# ---------------------------------------------------------------------------------------------


def test_the_record_reaches_no_output_of_the_class(tmp_path: Path) -> None:
    from course_lib.instructor import export

    source = _source()
    codes = dict(list(corpus(4, seed=9).items())[:3])
    results = _results(codes, records=True)
    assert all("fingerprint" in r for r in results)
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text(
        "student_id,name,email,lms_id\n"
        + "".join(f"{s},Student {i},{s}@uni.example,{900 + i}\n" for i, s in enumerate(codes))
    )
    roster = load_roster(roster_path)
    out = tmp_path / "out"
    flags, links = similarity.run(results, {A1: source}, out)
    rows = classroom.class_rows(results, classroom.ClassOptions(roster=roster, similarity=flags))
    assert any("fingerprint" in r for r in rows)  # the rows carry it: each writer must drop it
    classroom.write_class_outputs(out, rows, report.report_html(results, {A1: source}), links)
    lms.export_canvas(rows, roster, out / "canvas.csv", {A1: "4711"})
    lms.export_moodle(rows, roster, A1, out / "moodle.csv")
    for r in results:
        page = out / "feedback" / r["student_id"] / f"{A1}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(report.feedback_html(r, source))
    export.write_gradebook(f"sqlite:///{out / 'gradebook.db'}", results, {A1: source})
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 9
    marks = [b"fingerprint", b"filtered_code", b"code_sha256", b"copydetect-record"]
    for path in files:
        data = path.read_bytes()
        assert not any(m in data for m in marks), path
    assert json.loads((out / "class.json").read_text())[0]["student_id"] == "h000"

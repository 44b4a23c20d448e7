"""The class layer's steps on a simulated class: how long each takes for N students.

    .venv/bin/python benchmarks/classroom.py            # 100 students, two assignments
    .venv/bin/python benchmarks/classroom.py --students 30 --out /tmp/x.md
    .venv/bin/python benchmarks/classroom.py --grade     # also `course grade` on real notebooks
    .venv/bin/python benchmarks/classroom.py --review-students 0   # skip the large review

Every step runs on synthetic data built here (engine result rows, real released notebooks in a
Canvas zip, independently written solution code for the copying review); the grading engine's
own throughput is ``make bench``'s grading piece. With ``--grade``, the whole ``course grade``
command also runs once on N real chapter-05 notebooks (each student's own code typed into the
release, a written answer, 5 % missing), then again with the marks merged (the engine's cache
makes that re-run cheap). Each step is timed ``--repeats`` times; the
table gives the median and the range. A second table times the copying review of one assignment
for ``--review-students`` students (default 1,000) both ways, in alternating rounds: copydetect
on every pair (``similarity._compare_all_pairs``) and ``similarity.compare``, which runs it only
on the pairs its sparse bound cannot rule out; the two must list the same pairs. A third
contender is ``compare()`` with the fingerprint records that the graders make as they grade
(``similarity.fingerprint_record``, made before the clock starts, as a run's results carry them):
the review then tokenises only the references. ``--no-all-pairs`` leaves out the all-pairs loop
(most of the section's time). Writes ``benchmarks/classroom_results.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tests" / "classroom"))

from honest_variants import honest_code  # noqa: E402
from tables import interleaved, section_table  # noqa: E402

from course_lib.instructor import (  # noqa: E402
    classroom,
    late,
    lms,
    manual,
    overrides,
    similarity,
)
from course_lib.instructor import notebooks as nbk  # noqa: E402
from course_lib.instructor.roster import load_roster  # noqa: E402

A1, A2 = "05_attention", "07_masking"
DUE = dt.datetime(2026, 11, 2, 23, 59, tzinfo=dt.UTC)


def build(tmp: Path, n: int) -> dict:
    ids = [f"s{i:03d}" for i in range(n)]
    roster_path = tmp / "roster.csv"
    with open(roster_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "name", "email", "lms_id"])
        for i, sid in enumerate(ids):
            w.writerow([sid, f"Student {i}", f"{sid}@uni.example", str(10000 + i)])
    (tmp / "course.toml").write_text(
        "[late]\npercent_per_day = 10\nmax_percent = 50\n\n"
        f'[assignments.{A1}]\ndue = "2026-11-02 23:59"\n\n[assignments.{A2}]\n'
        'due = "2026-11-09 23:59"\n'
    )
    released = (ROOT / "exercises" / A1 / f"{A1}.ipynb").read_bytes()
    archive = tmp / "canvas.zip"
    rng = random.Random(0)
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(int(n * 0.95)):
            stamp = (2026, 11, 2 + rng.choice([0, 0, 0, 1]), 20, 0, 0)
            name = f"student{i}_{10000 + i}_{70000 + i}_{A1}.ipynb"
            zf.writestr(zipfile.ZipInfo(name, stamp), released)
    results = []
    for i, sid in enumerate(ids):
        for aid in (A1, A2):
            if rng.random() < 0.05:
                continue  # missing
            results.append(
                {
                    "student_id": sid,
                    "assignment_id": aid,
                    "score": float(rng.randint(0, 10)),
                    "max_score": 10.0,
                    "status": "graded",
                    "status_text": "graded",
                    "flags": [],
                    "cells": [],
                    "student_code": honest_code(i) if aid == A1 else {},
                }
            )
    trail = tmp / "overrides.csv"
    for sid in ids[:5]:
        overrides.record(trail, sid, A1, 9.0, "appeal")
    return {"ids": ids, "roster": roster_path, "archive": archive, "results": results}


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def grade_class(tmp: Path, n: int, jobs: int) -> list[tuple[str, str, list[float]]]:
    """``course grade`` end to end on ``n`` real notebooks; one run each (it takes minutes)."""
    import json
    import subprocess

    ids = [f"s{i:03d}" for i in range(n)]
    released = json.loads((ROOT / "exercises" / A1 / f"{A1}.ipynb").read_text())
    subs = tmp / "graded-class" / "submitted"
    rng = random.Random(1)
    for i, sid in enumerate(ids):
        if rng.random() < 0.05:
            continue
        nb = json.loads(json.dumps(released))
        code = honest_code(i)
        for cell in nb["cells"]:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
            if cell["cell_type"] == "code" and gid in code:
                cell["source"] = code[gid]
            elif cell["cell_type"] == "markdown" and gid.startswith("written_") and "-" not in gid:
                cell["source"] = f"Student {i}'s answer."
        folder = subs / sid / A1
        folder.mkdir(parents=True)
        (folder / f"{A1}.ipynb").write_text(json.dumps(nb))
        day = rng.choice([1, 2, 2, 2, 3])
        (folder / "timestamp.txt").write_text(f"2026-11-0{day} 20:00:00 UTC")
    base = tmp / "graded-class"
    with open(base / "roster.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "lms_id"])
        w.writerows([sid, str(10000 + i)] for i, sid in enumerate(ids))
    (base / "course.toml").write_text(
        f'[late]\npercent_per_day = 10\n\n[assignments.{A1}]\ndue = "2026-11-02 23:59"\n'
    )
    env = dict(os.environ, COURSE_GRADING_SEED=os.environ.get("COURSE_GRADING_SEED", "4242"))
    cmd = [sys.executable, "-m", "course_lib.cli", "grade", "submitted", "--out", "out"]
    cmd += ["--roster", "roster.csv", "--jobs", str(jobs), "--source", str(ROOT / "solutions")]
    steps = []
    start = time.perf_counter()
    subprocess.run(cmd, cwd=base, env=env, check=True, capture_output=True)
    shown = "course " + " ".join(cmd[3:-1]) + " solutions"
    steps.append((f"grade {n} students, first run (--jobs {jobs})", shown,
                  [time.perf_counter() - start]))  # fmt: skip
    sheet = base / "out" / "manual" / f"{A1}.csv"
    with open(sheet, newline="") as f:
        lines = list(csv.DictReader(f))
    with open(base / "marks.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(lines[0]))
        w.writeheader()
        w.writerows(line | {"points": "1"} for line in lines)
    start = time.perf_counter()
    subprocess.run([*cmd, "--manual", "marks.csv"], cwd=base, env=env, check=True,
                   capture_output=True)  # fmt: skip
    steps.append(("re-run with the written marks merged", shown + " --manual marks.csv",
                  [time.perf_counter() - start]))  # fmt: skip
    return steps


def review_at_scale(
    n: int, rounds: int, source: nbk.SourceAssignment, all_pairs: bool = True
) -> list[str]:
    """The copying review of ``n`` students of one assignment, every pair against
    ``compare``'s pruned pairs and against ``compare`` with the graders' fingerprint records, in
    alternating rounds; the markdown lines of its section."""
    import copydetect.detector

    references = similarity.reference_code(source)
    boiler = "\n\n".join(c.released for c in source.solutions)
    codes = {
        f"s{i:04d}": similarity.student_code({"student_code": honest_code(i)}) for i in range(n)
    }
    codes["x0001"] = codes["s0017"]  # an exact copy
    codes["x0002"] = codes["s0123"].replace("den", "norm").replace("logits", "scores")
    codes["x0003"] = references[0]  # the reference pasted
    args = (A1, codes, references, boiler)
    # What the graders hand over with the results (made while grading, not on the client).
    start = time.perf_counter()
    records = {s: similarity.fingerprint_record(c, boiler) for s, c in codes.items()}
    making = time.perf_counter() - start
    contenders = {
        "every pair": lambda: similarity._compare_all_pairs(*args),
        "compare()": lambda: similarity.compare(*args),
        # what both pay before comparing anything: copydetect tokenising every submission
        "fingerprints": lambda: [similarity._fingerprint(s, c, None) for s, c in codes.items()],
        "with records": lambda: similarity.compare(*args, records=records),
    }
    if not all_pairs:
        del contenders["every pair"]
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, object] = {}
    for order in interleaved(rounds, list(contenders)):
        for name in order:
            start = time.perf_counter()
            outputs[name] = contenders[name]()
            samples[name].append(time.perf_counter() - start)
            print(f"review of {len(codes)}, {name}: {samples[name][-1]:.2f} s", file=sys.stderr)
    if all_pairs and outputs["compare()"] != outputs["every pair"]:
        raise SystemExit("compare() and the all-pairs loop listed different pairs")
    if outputs["with records"] != outputs["compare()"]:
        raise SystemExit("compare() with the graders' records listed other pairs than without")
    calls = 0
    real = copydetect.detector.compare_files

    def counted(a: object, b: object) -> object:
        nonlocal calls
        calls += 1
        return real(a, b)

    copydetect.detector.compare_files = counted
    try:
        similarity.compare(*args)
    finally:
        copydetect.detector.compare_files = real
    m = len(codes)
    pairs, with_refs = m * (m - 1) // 2, m * len(references)
    listed = outputs["compare()"]
    pruned = "compare(): sparse bound, copydetect on the rest"
    section = {
        "rows": [
            *(
                [{"label": "copydetect on every pair", "samples": samples["every pair"]}]
                if all_pairs
                else []
            ),
            {
                "label": pruned,
                "samples": samples["compare()"],
                **(
                    {"baseline": "copydetect on every pair", "vs": "every pair"}
                    if all_pairs
                    else {}
                ),
                "note": f"{calls:,} of {pairs + with_refs:,} comparisons",
            },
            {
                "label": "of which: fingerprinting the submissions",
                "samples": samples["fingerprints"],
                "baseline": pruned,
                "vs": "compare()",
                "note": "copydetect's tokeniser, once per submission (both ways)",
            },
            {
                "label": "compare() with fingerprints made by the graders",
                "samples": samples["with records"],
                "baseline": pruned,
                "vs": "compare()",
                "note": f"records read back; the graders spent {making:.1f} s making them "
                "(in one process, before the clock)",
            },
        ]
    }
    return [
        "",
        f"## Copying review at scale: {m:,} students of one assignment",
        "",
        f"{n:,} independently written chapter-05 solutions "
        "(`tests/classroom/honest_variants.py`), an exact copy, a renamed copy and a pasted "
        f"reference: {pairs:,} pairs of students and {with_refs:,} comparisons with the "
        f"{len(references)} references; "
        + ("every way lists" if all_pairs else "the all-pairs loop left out; both ways list")
        + f" the same {len(listed)} pairs (checked). Ratio: time of a row / time of its "
        "baseline in the same round; "
        f"{rounds} rounds, the order rotated every round.",
        "",
        section_table(section),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "classroom_results.md")
    parser.add_argument("--grade", action="store_true", help="also run course grade for real")
    parser.add_argument("--jobs", type=int, default=2, help="course grade --jobs (with --grade)")
    parser.add_argument(
        "--review-students",
        type=int,
        default=1000,
        help="students in the large copying-review comparison (0: skip it)",
    )
    parser.add_argument(
        "--no-all-pairs",
        action="store_true",
        help="leave copydetect on every pair out of the copying-review comparison",
    )
    args = parser.parse_args(argv)
    n = args.students
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = build(tmp, n)
        roster = load_roster(data["roster"])
        known = {A1, A2}
        course = late.load_course(tmp / "course.toml", known)
        source = nbk.load_source(ROOT / "solutions" / A1 / f"{A1}.ipynb", A1)
        into = tmp / "submitted"
        written = {A1: manual.written_cells(ROOT / "solutions" / A1 / f"{A1}.ipynb")}
        steps: list[tuple[str, str, list[float]]] = []

        def step(label: str, command: str, fn: Callable[[], object]) -> None:
            steps.append((label, command, timed(fn, args.repeats)))
            print(f"{label}: {statistics.median(steps[-1][2]):.3f} s", file=sys.stderr)

        step(
            "read roster and course.toml",
            "course grade --roster roster.csv (checks)",
            lambda: (load_roster(data["roster"]), late.load_course(tmp / "course.toml", known)),
        )
        step(
            f"import a Canvas zip ({int(n * 0.95)} notebooks)",
            "course lms import canvas ZIP --assignment 05_attention --into submitted/",
            lambda: lms.import_canvas(data["archive"], A1, roster, into, dt.UTC),
        )
        step(
            "submission times (LMS times)",
            "course grade (late policy)",
            lambda: late.submission_times(into),
        )
        sim_out = tmp / "sim"
        step(
            f"copying review, {A1} ({n * (n - 1) // 2} pairs + reference)",
            "course grade (similarity/)",
            lambda: similarity.run(data["results"], {A1: source}, sim_out),
        )
        times = late.submission_times(into)
        options = classroom.ClassOptions(
            roster=roster, course=course, overrides_path=tmp / "overrides.csv"
        )
        step(
            f"class rows ({len(data['results'])} results → {2 * n} rows)",
            "course grade (roster, late, overrides)",
            lambda: classroom.class_rows(data["results"], options, times),
        )
        answers = {sid: {c.grade_id: "An answer." for c in written[A1]} for sid in data["ids"]}
        step(
            "written-answer sheet (CSV + HTML)",
            "course grade (manual/)",
            lambda: manual.write_sheet(tmp, A1, written[A1], answers),
        )
        sheet = tmp / "manual" / f"{A1}.csv"
        with open(sheet, newline="") as f:
            lines = list(csv.DictReader(f))
        filled = tmp / "marks.csv"
        with open(filled, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(lines[0]))
            w.writeheader()
            for line in lines:
                w.writerow(line | {"points": "1"})
        step(
            "merge written marks",
            "course grade --manual marks.csv",
            lambda: manual.load_marks([filled], written),
        )
        rows = classroom.class_rows(data["results"], options, times)
        engine_report = "<!DOCTYPE html><html><body><h1>Grading report</h1></body></html>"
        step(
            "grades.csv, class.json and report.html",
            "course grade (outputs)",
            lambda: classroom.write_class_outputs(tmp, rows, engine_report),
        )
        step(
            "record an override",
            "course override S A --points X --reason ...",
            lambda: overrides.record(tmp / "overrides.csv", "s001", A2, 7.0, "bench"),
        )
        step(
            "Canvas gradebook CSV",
            "course lms export canvas --results graded/ --out canvas.csv",
            lambda: lms.export_canvas(rows, roster, tmp / "canvas.csv"),
        )
        step(
            "Moodle grading worksheet",
            "course lms export moodle --assignment 05_attention --out moodle.csv",
            lambda: lms.export_moodle(rows, roster, A1, tmp / "moodle.csv"),
        )
        if args.grade:
            steps += grade_class(tmp, n, args.jobs)
        review = (
            review_at_scale(args.review_students, args.repeats, source, not args.no_all_pairs)
            if args.review_students > 0
            else []
        )
    lines = [
        f"# Class layer on {n} simulated students, two assignments",
        "",
        f"Machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}; {args.repeats} repeats per step; "
        f"written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/classroom.py`.",
        "",
        "| step | command | median (s) | min–max (s) |",
        "|---|---|---|---|",
    ]
    for label, command, samples in steps:
        lines.append(
            f"| {label} | `{command}` | {statistics.median(samples):.3f} | "
            f"{min(samples):.3f}–{max(samples):.3f} |"
        )
    total = sum(statistics.median(s) for _, _, s in steps)
    load = os.getloadavg()[0]
    lines += ["", f"Sum of the medians: {total:.2f} s. Load average (1 min) at the end: "
              f"{load:.1f} on {os.cpu_count()} CPUs."]  # fmt: skip
    if not args.grade:
        lines.append("Grading itself: `make bench` (grading piece) or this script with `--grade`.")
    lines += review
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Instructor tools: sandboxed, parallel, resumable grading (``course grade``) and export.

Modules: :mod:`.wire` (the safe message format), :mod:`.worker` (the student side, inside the
sandbox), :mod:`.sandbox` (bubblewrap and resource limits; proxies), :mod:`.notebooks`
(trusted source, submission extraction, static analysis), :mod:`.grader` (one submission),
:mod:`.pipeline` (all of them), :mod:`.report` and :mod:`.export`.

This module stays light: the ``course`` command imports it to add its subcommands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


def _class_inputs(args: argparse.Namespace):
    from course_lib.instructor.classroom import ClassInputs

    def default(value: str | None, name: str) -> Path | None:
        if value:
            return Path(value)
        return Path(name) if Path(name).exists() else None

    return ClassInputs(
        roster_path=Path(args.roster) if args.roster else None,
        course_path=default(args.course, "course.toml"),
        overrides_path=default(args.overrides, "overrides.csv"),
        manual_paths=[Path(p) for p in args.manual or []],
        similarity_threshold=args.similarity_threshold,
        db_url=args.db,
        out=Path(args.out),
    )


def _grade_cmd(args: argparse.Namespace) -> int:
    import shutil
    import tempfile
    import zipfile

    from course_lib.instructor import classroom
    from course_lib.instructor.pipeline import (
        GradingSetupError,
        Interrupted,
        _unzip,
        grade,
        summary,
    )
    from course_lib.instructor.roster import ClassSetupError
    from course_lib.instructor.sandbox import Limits

    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
    submissions = Path(args.submissions)
    tmp = None
    try:
        inputs = _class_inputs(args)
        options = classroom.prepare(inputs, Path(args.source))
        if submissions.is_file() and zipfile.is_zipfile(submissions):
            tmp = Path(tempfile.mkdtemp(prefix="course-class-"))
            submissions = _unzip(submissions, tmp)
        with contextlib.ExitStack() as stack:
            runner = None
            if args.scheduler:  # connected before anything is written
                from course_lib.instructor.distributed import DaskRunner

                runner = stack.enter_context(DaskRunner(args.scheduler))
            results = grade(
                submissions,
                Path(args.out),
                jobs=args.jobs,
                limits=limits,
                source_dir=Path(args.source),
                assignments=args.assignment or None,
                db_url=args.db,
                allow_default_seed=args.allow_default_seed,
                runner=runner,
            )
        rows = classroom.finish(
            Path(args.out), results, submissions, Path(args.source), options, inputs
        )
    except Interrupted as exc:
        print(exc, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Every finished result is already on disk; leave now rather than wait for the pool's
        # exit handlers to join processes that were just stopped.
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        os._exit(130)
    except KeyboardInterrupt:
        print("interrupted before grading started; nothing graded", file=sys.stderr)
        return 130
    except (GradingSetupError, ClassSetupError, RuntimeError) as exc:
        print(f"course grade: {exc}", file=sys.stderr)
        return 2
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    flagged = sum(1 for r in rows if r["flags"])
    missing = sum(1 for r in rows if r["status"] == "missing")
    late = sum(1 for r in rows if r.get("late_seconds", 0) > 0)
    print(
        f"graded {summary(results)}; {len(rows)} class rows: "
        f"{missing} missing, {late} late, {flagged} flagged: "
        f"{Path(args.out) / 'grades.csv'}, {Path(args.out) / 'report.html'}"
    )
    odd = [r for r in results if r["status"] in ("invalid_id", "refused_link")]
    for r in odd:
        print(f"  {r['status']}: {ascii(r['student_id'])} {r['reason']}", file=sys.stderr)
    faults = [r for r in results if r["status"] == "grader_error"]
    if faults:
        print(
            f"course grade: {len(faults)} submission(s) could not be graded because the GRADER "
            "failed (not the students' code); they were retried and are not stored. Re-run "
            "to grade them:",
            file=sys.stderr,
        )
        for r in faults:
            print(f"  {r['student_id']}/{r['assignment_id']}: {r['reason']}", file=sys.stderr)
        return 3
    return 0


def _override_cmd(args: argparse.Namespace) -> int:
    from course_lib.instructor import overrides
    from course_lib.instructor.roster import ClassSetupError

    path = Path(args.file)
    try:
        if args.csv:
            if args.student or args.assignment:
                raise ClassSetupError("give either STUDENT ASSIGNMENT or --csv, not both")
            done = overrides.record_csv(path, Path(args.csv))
            print(f"recorded {len(done)} overrides in {path}")
            return 0
        if not (args.student and args.assignment):
            raise ClassSetupError("give STUDENT ASSIGNMENT --points X --reason ... (or --csv)")
        if (args.points is None) == (not args.clear):
            raise ClassSetupError("give exactly one of --points X or --clear")
        o = overrides.record(path, args.student, args.assignment, args.points, args.reason or "")
    except (ClassSetupError, OSError) as exc:
        print(f"course override: {exc}", file=sys.stderr)
        return 2
    what = "cleared" if o.points is None else f"set to {o.points:g}"
    print(f"{o.student_id}/{o.assignment_id} {what} ({path}); re-run course grade to apply")
    return 0


def _lms_cmd(args: argparse.Namespace) -> int:
    import datetime as dt

    from course_lib.instructor import late, lms
    from course_lib.instructor.roster import ClassSetupError, load_roster

    try:
        roster = load_roster(Path(args.roster))
        course_path = Path(args.course) if args.course else Path("course.toml")
        course = None
        if args.course or course_path.exists():
            source = Path(args.source)
            from course_lib.instructor.classroom import known_assignments

            course = late.load_course(course_path, known_assignments(source))
        if args.action == "import":
            tz = course.timezone if course else dt.UTC
            fn = lms.import_canvas if args.lms == "canvas" else lms.import_moodle
            if not args.zip or not args.assignment or not args.into:
                raise ClassSetupError("import needs ZIP, --assignment A and --into submitted/")
            rep = fn(Path(args.zip), args.assignment, roster, Path(args.into), tz)
            print(
                f"imported {len(rep.imported)} submissions into {args.into}"
                + (
                    f"; LMS accounts not on the roster, imported as lms_<id>: "
                    f"{', '.join(rep.unknown_accounts)}"
                    if rep.unknown_accounts
                    else ""
                )
                + (f"; skipped {len(rep.skipped)} non-notebook files" if rep.skipped else "")
            )
            return 0
        if not args.results or not args.out:
            raise ClassSetupError(
                "export needs --results OUT (a course grade folder) and --out FILE"
            )
        rows = lms.load_class_rows(Path(args.results))
        if args.lms == "canvas":
            ids = {a: p.canvas_id for a, p in course.assignments.items()} if course else {}
            n = lms.export_canvas(rows, roster, Path(args.out), ids)
        else:
            if not args.assignment:
                raise ClassSetupError("Moodle's worksheet is per assignment: pass --assignment")
            n = lms.export_moodle(rows, roster, args.assignment, Path(args.out))
        print(f"wrote {n} students to {args.out} ({args.lms})")
        return 0
    except (ClassSetupError, OSError) as exc:
        print(f"course lms: {exc}", file=sys.stderr)
        return 2


def _export_cmd(args: argparse.Namespace) -> int:
    from course_lib.instructor.export import export

    try:
        rows = export(
            Path(args.out),
            args.db,
            Path(args.results) if args.results else None,
            Path(args.source),
        )
    except RuntimeError as exc:
        print(f"course export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {len(rows)} submissions to {args.out}")
    return 0


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``grade``, ``override``, ``lms`` and ``export`` to the ``course`` command."""
    p = subparsers.add_parser(
        "grade",
        help="autograde submissions in sandboxes, in parallel",
        description=(
            "Grade SUBMISSIONS (nbgrader's submitted/ layout "
            "<student_id>/<assignment_id>/<assignment_id>.ipynb, or a .zip of it) into OUT: "
            "grades.csv, feedback/, report.html and the gradebook. Re-running skips unchanged "
            "submissions; an interrupted run resumes. Needs COURSE_GRADING_SEED (any secret "
            "string). Exit status: 0 done, 2 bad input, 3 grader faults remain, 130 Ctrl-C."
        ),
    )
    p.add_argument("submissions", help="the submitted/ folder or a .zip of it")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--jobs", type=_positive(int), default=1, help="submissions graded at once")
    p.add_argument(
        "--scheduler",
        default=None,
        help=(
            "grade on a Dask cluster instead of --jobs: tcp://HOST:PORT of a `dask scheduler`, "
            "or local:N for N worker processes on this machine"
        ),
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=30.0,
        help="wall-clock seconds per test cell (default 30)",
    )
    p.add_argument(
        "--memory-mb",
        type=_positive(int),
        default=2048,
        help="address-space limit of the student's process (default 2048)",
    )
    p.add_argument("--source", default="solutions", help="instructor source notebooks folder")
    p.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    p.add_argument(
        "--allow-default-seed",
        action="store_true",
        help="grade with the public default seed when COURSE_GRADING_SEED is unset "
        "(for trying things out; students can then know the hidden tests' inputs)",
    )
    p.add_argument(
        "--db",
        default=None,
        help="gradebook URL (default sqlite:///OUT/gradebook.db; postgresql://... works)",
    )
    p.add_argument("--roster", default=None, help="class list CSV: student_id[,name,email,lms_id]")
    p.add_argument(
        "--course",
        default=None,
        help="deadlines and late policy (default ./course.toml when it exists)",
    )
    p.add_argument(
        "--overrides",
        default=None,
        help="overrides audit file (default ./overrides.csv when it exists)",
    )
    p.add_argument(
        "--manual",
        action="append",
        help="filled-in written-answer sheet (OUT/manual/<assignment>.csv) to merge (repeatable)",
    )
    p.add_argument(
        "--similarity-threshold",
        type=float,
        default=0.8,
        help="share of a submission's code that flags a pair for review (default 0.8)",
    )
    p.set_defaults(func=_grade_cmd)

    o = subparsers.add_parser(
        "override",
        help="set a student's score by hand, with a reason (audit trail)",
        description=(
            "Append an override to the audit file (default overrides.csv). The newest line per "
            "student and assignment wins; course grade applies it after late penalties."
        ),
    )
    o.add_argument("student", nargs="?", help="student id")
    o.add_argument("assignment", nargs="?", help="assignment id")
    o.add_argument("--points", type=float, default=None, help="the score to give")
    o.add_argument("--clear", action="store_true", help="remove the override (keeps the trail)")
    o.add_argument("--reason", default="", help="why (required; kept in the audit trail)")
    o.add_argument("--csv", default=None, help="student_id,assignment_id,points,reason rows")
    o.add_argument("--file", default="overrides.csv", help="audit file (default overrides.csv)")
    o.set_defaults(func=_override_cmd)

    lms_p = subparsers.add_parser(
        "lms",
        help="import Canvas/Moodle submission zips; export their grade files",
        description=(
            "lms import canvas|moodle ZIP --assignment A --roster R --into submitted/ ; "
            "lms export canvas|moodle --results OUT --roster R --out FILE.csv"
        ),
    )
    lms_p.add_argument("action", choices=["import", "export"])
    lms_p.add_argument("lms", choices=["canvas", "moodle"])
    lms_p.add_argument("zip", nargs="?", help="the LMS's submissions zip (import)")
    lms_p.add_argument("--roster", required=True, help="roster CSV with lms_id")
    lms_p.add_argument("--assignment", default=None, help="assignment id")
    lms_p.add_argument("--into", default=None, help="submitted/ folder to import into")
    lms_p.add_argument("--results", default=None, help="a course grade output folder (export)")
    lms_p.add_argument("--out", default=None, help="CSV to write (export)")
    lms_p.add_argument("--course", default=None, help="course.toml (time zone, canvas_id)")
    lms_p.add_argument("--source", default="solutions", help="instructor source notebooks folder")
    lms_p.set_defaults(func=_lms_cmd)

    e = subparsers.add_parser(
        "export",
        help="export grades from the gradebook to CSV",
        description=(
            "Write the gradebook's scores to a CSV. With --results OUT, first record the results "
            "of `course grade --out OUT` in the gradebook at --db (SQLite or PostgreSQL)."
        ),
    )
    e.add_argument("--out", required=True, help="CSV file to write")
    e.add_argument(
        "--db",
        default="sqlite:///gradebook.db",
        help="gradebook URL (default sqlite:///gradebook.db)",
    )
    e.add_argument("--results", default=None, help="a `course grade` output folder to load first")
    e.add_argument("--source", default="solutions", help="instructor source notebooks folder")
    e.set_defaults(func=_export_cmd)

"""What ``course grade``, ``course override``, ``course lms`` and ``course export`` do, given
their parsed arguments (the command line itself is built in :mod:`course_lib.cli`)."""

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


def grade_cmd(args: argparse.Namespace) -> int:
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
        # Each feedback page is written once, with its class grade, as its result arrives.
        pages = classroom.ClassPages(options, submissions)
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
                feedback=pages,
            )
        rows = classroom.finish(
            Path(args.out), results, submissions, Path(args.source), options, inputs, pages
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


def override_cmd(args: argparse.Namespace) -> int:
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


def lms_cmd(args: argparse.Namespace) -> int:
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


def export_cmd(args: argparse.Namespace) -> int:
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

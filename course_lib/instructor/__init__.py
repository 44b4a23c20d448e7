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
import sys
from pathlib import Path


def _grade_cmd(args: argparse.Namespace) -> int:
    from course_lib.instructor.pipeline import GradingSetupError, grade
    from course_lib.instructor.sandbox import Limits

    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
    try:
        with contextlib.ExitStack() as stack:
            runner = None
            if args.scheduler:  # connected before anything is written
                from course_lib.instructor.distributed import DaskRunner

                runner = stack.enter_context(DaskRunner(args.scheduler))
            results = grade(
                Path(args.submissions),
                Path(args.out),
                jobs=args.jobs,
                limits=limits,
                source_dir=Path(args.source),
                assignments=args.assignment or None,
                db_url=args.db,
                runner=runner,
            )
    except (GradingSetupError, RuntimeError) as exc:
        print(f"course grade: {exc}", file=sys.stderr)
        return 2
    graded = sum(1 for r in results if r["status"] == "graded")
    flagged = sum(1 for r in results if r["flags"])
    print(
        f"graded {len(results)} submissions ({graded} cleanly, {flagged} flagged): "
        f"{Path(args.out) / 'grades.csv'}, {Path(args.out) / 'report.html'}"
    )
    return 0


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
    """Add ``grade`` and ``export`` to the ``course`` command."""
    p = subparsers.add_parser(
        "grade",
        help="autograde submissions in sandboxes, in parallel",
        description=(
            "Grade SUBMISSIONS (nbgrader's submitted/ layout "
            "<student_id>/<assignment_id>/<assignment_id>.ipynb, or a .zip of it) into OUT: "
            "grades.csv, feedback/, report.html and the gradebook. Re-running skips unchanged "
            "submissions; an interrupted run resumes."
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
        "--db",
        default=None,
        help="gradebook URL (default sqlite:///OUT/gradebook.db; postgresql://... works)",
    )
    p.set_defaults(func=_grade_cmd)

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

"""The ``course`` command: its whole command line (argparse wiring only; each subcommand's work
lives in its own module).

Subcommands
-----------
``course release [ID ...]``
    Regenerate ``exercises/<id>/<id>.ipynb`` from ``solutions/<id>/<id>.ipynb`` with
    ``nbgrader generate_assignment`` (all chapters when no id is given). The only way the
    student notebooks are made; a test fails if the committed ones differ from its output.
    :mod:`course_lib.authoring.release`.
``course check NOTEBOOK``
    Check a notebook's visible tests with the grading engine of ``course grade`` (no Jupyter
    kernel: the student's code runs in a separate process, the tests here) and print a table
    of its test cells and points, then every failure in full. Exit status 0 only when every
    visible test passes. :mod:`course_lib.check`.
``course grade``, ``course override``, ``course lms``, ``course export``
    The instructor's tools: :mod:`course_lib.instructor.commands`.

Adding a subcommand: write ``_add_<name>(subparsers)`` that creates its parser and sets
``func`` to a function taking the parsed namespace and returning the exit status (import the
module that does the work inside that function, so that ``course --help`` stays light), and
append it to :data:`SUBCOMMANDS`. :class:`CourseError` is a problem the user can fix: printed
without a traceback, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# jsonschema compiles a Lark grammar for its "iri" formats at import when rfc3987_syntax is
# installed (Jupyter's server pulls it in): 1.5 s on every `course` command and grading process.
# nbformat validates without format checkers, so the command never needs it.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from course_lib.authoring.release import CourseError, release


def _release_cmd(args: argparse.Namespace) -> int:
    release(args.ids, args.root)
    return 0


def _add_release(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "release",
        help="regenerate exercises/ from solutions/ (nbgrader generate_assignment)",
        description="Regenerate the student notebooks exercises/<id>/<id>.ipynb.",
    )
    p.add_argument(
        "ids", nargs="*", metavar="ID", help="assignment ids, e.g. 05_attention (default: all)"
    )
    p.add_argument(
        "--root", type=Path, default=None, help="course directory (default: found from cwd)"
    )
    p.set_defaults(func=_release_cmd)


# ---------------------------------------------------------------------------------------------
# course check
# ---------------------------------------------------------------------------------------------


def check(notebook: Path, *, timeout: int = 120, out: Callable[[str], None] = print) -> int:
    """Check ``notebook``'s visible tests through the grading engine (no Jupyter kernel) and
    print their points; 0 when every visible test passes, else 1."""
    from course_lib.check import CheckError, check_notebook

    try:
        return check_notebook(notebook, timeout=timeout, out=out)
    except CheckError as exc:
        raise CourseError(str(exc)) from None


def _check_cmd(args: argparse.Namespace) -> int:
    return check(args.notebook, timeout=args.timeout)


def _add_check(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        help="check a notebook's visible tests and print their points",
        description=(
            "Check an exercise notebook's visible tests, as `course grade` would grade them, and "
            "print a table of its test cells and points, then every failure in full."
        ),
    )
    p.add_argument("notebook", type=Path, help="e.g. exercises/05_attention/05_attention.ipynb")
    p.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    p.set_defaults(func=_check_cmd)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _instructor(name: str) -> Callable[[argparse.Namespace], int]:
    """``course_lib.instructor.commands.<name>``, imported when the subcommand runs: the
    instructor stack is not needed to build the command line (nor installed for students)."""

    def run(args: argparse.Namespace) -> int:
        from course_lib.instructor import commands

        return getattr(commands, name)(args)

    return run


def _add_instructor(subparsers: argparse._SubParsersAction) -> None:
    """``grade``, ``override``, ``lms`` and ``export``: see :mod:`course_lib.instructor.commands`."""
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
    p.set_defaults(func=_instructor("grade_cmd"))

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
    o.set_defaults(func=_instructor("override_cmd"))

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
    lms_p.set_defaults(func=_instructor("lms_cmd"))

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
    e.set_defaults(func=_instructor("export_cmd"))


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_release,
    _add_check,
    _add_instructor,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="Tools for the transformer course.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CourseError as err:
        print(f"course {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

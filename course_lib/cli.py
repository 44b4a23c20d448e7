"""The ``course`` command: release the exercises, check a notebook.

Subcommands
-----------
``course release [ID ...]``
    Regenerate ``exercises/<id>/<id>.ipynb`` from ``solutions/<id>/<id>.ipynb`` with
    ``nbgrader generate_assignment`` (all chapters when no id is given). The only way the
    student notebooks are made; a test fails if the committed ones differ from its output.
``course check NOTEBOOK``
    Check a notebook's visible tests with the grading engine of ``course grade`` (no Jupyter
    kernel: the student's code runs in a separate process, the tests here) and print a table
    of its test cells and points, then every failure in full. Exit status 0 only when every
    visible test passes.

Adding a subcommand (e.g. ``grade`` or ``export``): write ``_add_<name>(subparsers)`` that
creates its parser and sets ``func`` to a function taking the parsed namespace and returning
the exit status, and append it to :data:`SUBCOMMANDS`. Use :func:`course_root` to find the
course directory and :func:`run_nbgrader` to call nbgrader with the course's configuration.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# jsonschema compiles a Lark grammar for its "iri" formats at import when rfc3987_syntax is
# installed (Jupyter's server pulls it in): 1.5 s on every `course` command and grading process.
# nbformat validates without format checkers, so the command never needs it.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

CONFIG = "nbgrader_config.py"
SOURCE_DIR = "solutions"
RELEASE_DIR = "exercises"


class CourseError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def course_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) with nbgrader_config.py and
    solutions/; failing that, the checkout this package was installed from."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG).is_file() and (candidate / SOURCE_DIR).is_dir():
            return candidate
    package_checkout = Path(__file__).resolve().parents[1]
    if (package_checkout / CONFIG).is_file():
        return package_checkout
    raise CourseError(
        f"no course directory found: run this inside the course checkout (the folder with "
        f"{CONFIG} and {SOURCE_DIR}/) or pass --root"
    )


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: it runs ``alembic`` by name, so put our bin on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_nbgrader(root: Path, *args: str, quiet: bool = False) -> None:
    """Run ``nbgrader <args>`` in ``root``; raise :class:`CourseError` with its log on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=root,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise CourseError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    if not quiet:
        sys.stdout.write(proc.stdout)


def chapter_ids(root: Path) -> list[str]:
    """Assignments with an instructor source ``solutions/<id>/<id>.ipynb``."""
    return sorted(
        p.parent.name
        for p in (root / SOURCE_DIR).glob("*/*.ipynb")
        if p.stem == p.parent.name and ".ipynb_checkpoints" not in p.parts
    )


# ---------------------------------------------------------------------------------------------
# course release
# ---------------------------------------------------------------------------------------------


def release(
    ids: Sequence[str] | None = None, root: Path | None = None, quiet: bool = False
) -> list[Path]:
    """Generate the student notebooks of ``ids`` (default: all); returns their paths."""
    root = course_root() if root is None else root
    known = chapter_ids(root)
    ids = list(ids or known)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise CourseError(
            f"unknown assignment {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    written = []
    for chapter in ids:
        run_nbgrader(
            root, "generate_assignment", chapter, "--force", "--log-level=WARN", quiet=True
        )
        path = root / RELEASE_DIR / chapter / f"{chapter}.ipynb"
        written.append(path)
        if not quiet:
            print(f"released {path.relative_to(root)}")
    return written


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
    from course_lib.instructor.check import CheckError, check_notebook

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


def _add_instructor(subparsers: argparse._SubParsersAction) -> None:
    from course_lib.instructor import add_subcommands  # grade, export

    add_subcommands(subparsers)


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

"""The ``course`` command: release the exercises, check a notebook.

Subcommands
-----------
``course release [ID ...]``
    Regenerate ``exercises/<id>/<id>.ipynb`` from ``solutions/<id>/<id>.ipynb`` with
    ``nbgrader generate_assignment`` (all chapters when no id is given). The only way the
    student notebooks are made; a test fails if the committed ones differ from its output.
``course check NOTEBOOK``
    Run a notebook top to bottom and print a table of its test cells and points (the visible
    tests: the hidden ones run only when the instructor grades). Exit status 0 only when every
    test passes.

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
import time
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


def _error_line(cell: dict, limit: int = 240) -> str:
    """A failed cell's message on one line (header and diagnosis), for the table."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            text = " ".join(ln.strip() for ln in str(out.get("evalue", "")).splitlines())
            text = f"{out.get('ename')}: {text}".strip()
            return text if len(text) <= limit else text[: limit - 3] + "..."
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return (
                "wrote to stderr (the grader counts that as a failure): " + out["text"].strip()[:80]
            )
    return ""


def check(notebook: Path, *, timeout: int = 120, out: Callable[[str], None] = print) -> int:
    """Run ``notebook`` and print its tests' points; 0 when every test cell passes, else 1."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbgrader.utils import compute_checksum, determine_grade, is_grade

    if not notebook.is_file():
        raise CourseError(f"{notebook} does not exist; give the path of an .ipynb file")
    nb = nbformat.read(notebook, as_version=4)
    graded = [c for c in nb.cells if c.cell_type == "code" and is_grade(c)]
    if not graded:
        raise CourseError(f"{notebook} has no test cells: is it a course exercise notebook?")
    edited = [
        c.metadata.nbgrader["grade_id"]
        for c in graded
        if "checksum" in c.metadata.nbgrader
        and compute_checksum(c) != c.metadata.nbgrader["checksum"]
    ]
    out(f"Running {notebook} ...")
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent.resolve())}},
    )
    problem = ""
    try:
        client.execute()
    except CellTimeoutError:
        problem = f"a cell ran longer than {timeout} s (an endless loop?); later cells did not run"
    except DeadKernelError:
        problem = "the kernel died (out of memory?); later cells did not run"
    seconds = time.perf_counter() - start

    rows, total, got = [], 0.0, 0.0
    for cell in graded:
        gid = cell.metadata.nbgrader["grade_id"]
        ran = cell.get("execution_count") is not None
        score, max_score = (
            determine_grade(cell) if ran else (0.0, float(cell.metadata.nbgrader["points"]))
        )
        score = 0.0 if score is None else float(score)
        total += max_score
        got += score
        status = "passed" if ran and score == max_score else ("not run" if not ran else "failed")
        detail = _error_line(cell) if status == "failed" else ""
        rows.append((gid, f"{score:g} / {max_score:g}", status + (f": {detail}" if detail else "")))

    width = max(len("test cell"), *(len(r[0]) for r in rows))
    out("")
    out(f"  {'test cell':<{width}}  {'points':>9}  result")
    for gid, pts, result in rows:
        out(f"  {gid:<{width}}  {pts:>9}  {result}")
    out(f"  {'total':<{width}}  {f'{got:g} / {total:g}':>9}")
    out("")
    if problem:
        out(f"Stopped early: {problem}.")
    if edited:
        out(f"Note: you changed the test cell(s) {', '.join(edited)}; grading uses the originals.")
    out(f"Visible tests only ({seconds:.0f} s); hidden tests run when your work is graded.")
    passed = got == total and not problem
    out(
        "All visible tests pass."
        if passed
        else "Some tests fail: read the messages in the notebook."
    )
    return 0 if passed else 1


def _check_cmd(args: argparse.Namespace) -> int:
    return check(args.notebook, timeout=args.timeout)


def _add_check(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        help="run a notebook and print its visible tests' points",
        description="Run an exercise notebook and print a table of its test cells and points.",
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

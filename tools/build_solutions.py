"""Build the nbgrader source notebooks ``solutions/<id>/<id>.ipynb`` from ``assignments/<id>.py``.

A source is a Python file in "percent" format: ``# %% <kind> [args]`` starts a cell.

=================================  ==========================================================
header                             cell
=================================  ==========================================================
``# %% [markdown]``                markdown; every line loses its leading ``# `` (or ``#``)
``# %% setup``                     locked code cell (grade_id ``setup``): the imports
``# %% solution <name>``           solution cell, grade_id ``<name>`` = the graded function
``# %% tests <grade_id> points=N`` locked autograder test cell worth N points;
                                   grade_id ``test_<name>`` or ``test_<name>-<part>``
``# %% demo``                      plain code cell: plot or widget, never graded
``# %% written <grade_id> points=N`` a written question graded by a person: a read-only
                                   markdown question cell (grade_id ``<grade_id>-question``,
                                   the lines before ``# RUBRIC:``) and nbgrader's manually
                                   graded answer cell (markdown, ``grade`` and ``solution``
                                   true, ``task`` false, N points) holding the rubric (the
                                   lines after ``# RUBRIC:``), which the release replaces with
                                   ``YOUR ANSWER HERE``; grade_id ``written_<topic>``
=================================  ==========================================================

The first code cell of every source is a ``demo`` cell that installs ``course_lib`` when it is
missing (Colab, Binder); its placeholders ``{{COURSE_REPOSITORY_URL}}`` and
``{{COURSE_RELEASE_TAG}}`` are filled from ``_config.yml`` and ``pyproject.toml`` here (see
``course_lib.authoring.bookbuild.fill_placeholders``), so the repository URL is set in one place only.

The output has no outputs or execution counts, deterministic cell ids and the ``python3``
kernel, so rebuilding an unchanged source gives a byte-identical notebook.

Usage::

    python tools/build_solutions.py            # rebuild every chapter with a source
    python tools/build_solutions.py 05_attention
    python tools/build_solutions.py --check    # exit 1 if a notebook is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_lib.authoring.bookbuild import fill_placeholders  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "assignments"
SOLUTIONS = ROOT / "solutions"

_HEADER = re.compile(
    r"^# %%(?: (?P<kind>\[markdown\]|setup|solution|tests|demo|written)(?P<rest>.*))?$"
)
_GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")


class SourceError(ValueError):
    """A notebook source is malformed; the message names the file and line."""


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, locked: bool, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return meta


def _strip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _markdown(lines: list[str]) -> list[str]:
    return [re.sub(r"^# ?", "", ln) if ln.startswith("#") else ln for ln in lines]


def _written(rest: str, lines: list[str], where: str, seen: set[str]) -> list[dict]:
    """The question cell and the manually graded answer cell (with the rubric) of a written
    question."""
    match = re.fullmatch(r"(\S+) points=(\d+)", rest.strip())
    if not match:
        raise SourceError(f"{where}: write `# %% written written_<topic> points=<int>`")
    grade_id, points = match.group(1), int(match.group(2))
    if not grade_id.startswith("written_") or not _GRADE_ID.match(grade_id) or points < 1:
        raise SourceError(f"{where}: a written cell's grade_id starts with written_; points ≥ 1")
    marker = [i for i, ln in enumerate(lines) if ln.strip() == "# RUBRIC:"]
    if len(marker) != 1:
        raise SourceError(f"{where}: a written cell needs one `# RUBRIC:` line after the question")
    question = _strip_blank(_markdown(lines[: marker[0]]))
    rubric = _strip_blank(_markdown(lines[marker[0] + 1 :]))
    if not question or not rubric:
        raise SourceError(f"{where}: a written cell needs a question and a rubric")
    question_id = f"{grade_id}-question"
    for gid in (question_id, grade_id):
        if gid in seen:
            raise SourceError(f"{where}: grade_id {gid!r} is repeated")
        seen.add(gid)
    question_meta = _nbgrader(question_id, grade=False, solution=False, locked=True)
    answer_meta = _nbgrader(grade_id, grade=True, solution=True, locked=False, points=points)
    return [
        {"cell_type": "markdown", "metadata": {"nbgrader": question_meta}, "source": question},
        {"cell_type": "markdown", "metadata": {"nbgrader": answer_meta}, "source": rubric},
    ]


def parse(path: Path) -> list[dict]:
    """The cells of one source, as nbformat v4 dicts."""
    cells: list[dict] = []
    current: tuple[str, str, int] | None = None
    body: list[str] = []
    seen: set[str] = set()

    def close() -> None:
        if current is None:
            return
        kind, rest, line_no = current
        lines = _strip_blank(body)
        where = f"{path.name}:{line_no}"
        if kind == "[markdown]":
            cells.append({"cell_type": "markdown", "metadata": {}, "source": _markdown(lines)})
            return
        if not lines:
            raise SourceError(f"{where}: the {kind} cell is empty")
        if kind == "written":
            cells.extend(_written(rest, lines, where, seen))
            return
        meta: dict = {}
        args = rest.split()
        if kind == "setup":
            meta = {"nbgrader": _nbgrader("setup", grade=False, solution=False, locked=True)}
        elif kind == "solution":
            if len(args) != 1:
                raise SourceError(f"{where}: write `# %% solution <function_name>`")
            if not any("### BEGIN SOLUTION" in ln for ln in lines):
                raise SourceError(f"{where}: a solution cell needs ### BEGIN/END SOLUTION markers")
            meta = {"nbgrader": _nbgrader(args[0], grade=False, solution=True, locked=False)}
        elif kind == "tests":
            match = re.fullmatch(r"(\S+) points=(\d+)", rest.strip())
            if not match:
                raise SourceError(f"{where}: write `# %% tests test_<name> points=<int>`")
            grade_id, points = match.group(1), int(match.group(2))
            if not grade_id.startswith("test_"):
                raise SourceError(f"{where}: a test cell's grade_id starts with test_")
            meta = {
                "nbgrader": _nbgrader(
                    grade_id, grade=True, solution=False, locked=True, points=points
                )
            }
        grade_id = meta.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            if not _GRADE_ID.match(grade_id) or grade_id in seen:
                raise SourceError(f"{where}: grade_id {grade_id!r} is invalid or repeated")
            seen.add(grade_id)
        cells.append(
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": meta,
                "outputs": [],
                "source": [fill_placeholders(ln) for ln in lines],
            }
        )

    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _HEADER.match(line)
        if line.startswith("# %%"):
            if not match or match.group("kind") is None:
                raise SourceError(f"{path.name}:{line_no}: unknown cell header {line!r}")
            close()
            current, body = (match.group("kind"), match.group("rest") or "", line_no), []
        elif current is not None:
            body.append(line)
    close()
    for i, cell in enumerate(cells):
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        cell["id"] = grade_id or f"{cell['cell_type'][:2]}-{i:02d}"
        cell["source"] = [ln + "\n" for ln in cell["source"][:-1]] + cell["source"][-1:]
    return cells


def build(path: Path) -> str:
    """The notebook JSON text for one source."""
    notebook = {
        "cells": parse(path),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    # nbformat's own writer: sorted keys, the same layout nbgrader writes
    return nbformat.writes(nbformat.from_dict(notebook)) + "\n"


def target(chapter: str) -> Path:
    return SOLUTIONS / chapter / f"{chapter}.ipynb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter ids (default: every source)")
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    args = parser.parse_args(argv)
    chapters = args.chapters or sorted(p.stem for p in SOURCES.glob("*.py"))
    stale = []
    for chapter in chapters:
        source = SOURCES / f"{chapter}.py"
        if not source.exists():
            parser.error(
                f"no source {source.relative_to(ROOT)}; chapters: {sorted(p.stem for p in SOURCES.glob('*.py'))}"
            )
        text = build(source)
        out = target(chapter)
        if out.exists() and out.read_text(encoding="utf-8") == text:
            continue
        stale.append(chapter)
        if not args.check:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            print(f"wrote {out.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run python tools/build_solutions.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A student's ``pip install course_lib`` pulls no book or instructor stack.

Three checks: the base dependencies in ``pyproject.toml`` are exactly what a student needs (the
book build and the grading pipeline are the ``book`` and ``instructor`` extras, and ``test``
pulls both), and everything a student runs (the reference modules, the explorers, the test
cells' ``grading``, ``course check`` and the ``course`` command line) imports nothing from those
extras, in a fresh interpreter; and pip, in a fresh venv, resolves ``pip install .`` to none
of the extras' packages (slow: about a minute).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
STUDENT = {"torch", "numpy", "matplotlib", "ipywidgets"}


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def extra_only() -> set[str]:
    """Import names of what only the book and instructor extras install."""
    extras = PROJECT["optional-dependencies"]
    dists = names(extras["book"]) | names(extras["instructor"])
    renamed = {"jupyter-book": "jupyter_book", "ghp-import": "ghp_import", "dask": "distributed"}
    return {renamed.get(d, d.replace("-", "_")) for d in dists} | {"dask", "sphinx", "yaml"}


def test_the_base_dependencies_are_what_a_student_needs() -> None:
    assert names(PROJECT["dependencies"]) == STUDENT
    assert "torch==2.13.0" in PROJECT["dependencies"]
    extras = PROJECT["optional-dependencies"]
    assert {"book", "instructor", "test"} <= set(extras)
    test = [Requirement(r) for r in extras["test"]]
    assert any(r.name == "course_lib" and r.extras == {"book", "instructor"} for r in test)
    assert "jupyter-book" in names(extras["book"]) and "nbgrader" in names(extras["instructor"])


STUDENT_SESSION = """
import importlib, json, sys
from course_lib.chapters import CHAPTERS
for c in CHAPTERS:
    importlib.import_module("course_lib." + c.module)
import course_lib.viz, course_lib.interactive, course_lib.data
from course_lib import check, cli, grading, grading_extra
cli.build_parser()
from course_lib.instructor import grader, notebooks, sandbox, wire, worker  # course check's engine
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_what_a_student_runs_imports_nothing_from_the_extras() -> None:
    out = subprocess.run(
        [sys.executable, "-c", STUDENT_SESSION],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "torch" in loaded and "course_lib" in loaded
    assert loaded & extra_only() == set()


@pytest.mark.slow
def test_a_fresh_student_install_resolves_without_the_extras(tmp_path: Path) -> None:
    """``pip install .`` in a fresh venv, resolved but not installed (``--dry-run --report``):
    about a minute, as it reads torch's metadata from the package index pip is configured with."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--dry-run"]
        + ["--report", str(report), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and (
        "NewConnectionError" in done.stderr or "No matching" in done.stderr
    ):
        pytest.skip(f"no package index reachable: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    installed = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"torch", "numpy", "matplotlib", "ipywidgets"} <= installed
    extras = PROJECT["optional-dependencies"]
    stack = names(extras["book"]) | names(extras["instructor"]) | {"sphinx", "jupyter-server"}
    assert installed & stack == set()

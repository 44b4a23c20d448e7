"""``G.check_all()``: every visible test's points, listed in the notebook the way ``course check``
lists them.

Called in a cell of an exercise notebook, it runs the notebook's visible test cells again, one by
one, against the functions as they are defined in the kernel right now (whatever cells the
student last ran, saved or not), and prints the same table and full failure messages as
``course check``. Only the *test* cells are read from a file, and those are locked, so an
unsaved notebook or an old autosave gives the same tests:

1. the path given, ``G.check_all("05_attention.ipynb")``;
2. else the notebook the kernel belongs to: VS Code's ``__vsc_ipynb_file__``, Jupyter's
   ``__session__`` / ``$JPY_SESSION_NAME``, or, in Colab, the notebook as it is in the browser;
3. else the one exercise notebook in the current folder.

A test cell the student edited (its nbgrader checksum no longer matches) is not run as edited:
the released original runs instead when it can be found, else the cell is left out, and the
table says so. Each test cell runs in a copy of the kernel's namespace with the seeds the
grader uses, and the kernel's random states are restored afterwards.

While the notebook is being graded it prints one line and returns at once: the grader runs the
tests itself. That is ``nbgrader autograde`` or ``validate`` (nbgrader sets
``$NBGRADER_EXECUTION`` in the kernel it starts) and the student's process of ``course grade``
and ``course check`` (:mod:`course_lib.instructor.worker` sets :data:`GRADER_PROCESS`), where
the cell runs only if the student edited it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# True in the student's process of ``course grade`` / ``course check`` (set by the worker).
GRADER_PROCESS = False
GRADING_MESSAGE = "check_all: skipped while this notebook is graded (the grader runs the tests)"


def _grading() -> bool:
    """Whether this cell runs as part of grading, not in the student's own kernel."""
    return GRADER_PROCESS or bool(os.environ.get("NBGRADER_EXECUTION"))


class SummaryError(Exception):
    """The notebook's tests could not be found: the message says how to point at them."""


@dataclass
class _Cell:
    grade_id: str
    owner: str
    points: float
    max_points: float
    status: str
    message: str = ""


@dataclass
class _Result:
    cells: list[_Cell] = field(default_factory=list)
    cell_errors: dict[str, str] = field(default_factory=dict)


def _user_namespace(depth: int) -> dict:
    """The kernel's namespace (IPython's ``user_ns``), else the caller's globals."""
    with contextlib.suppress(Exception):
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    return sys._getframe(depth).f_globals


def _colab_notebook() -> dict | None:
    """The notebook as the Colab front end holds it (unsaved edits included)."""
    if "google.colab" not in sys.modules:
        return None
    with contextlib.suppress(Exception):
        from google.colab import _message  # type: ignore[import-not-found]

        reply = _message.blocking_request("get_ipynb", timeout_sec=10)
        if isinstance(reply, dict) and isinstance(reply.get("ipynb"), dict):
            return reply["ipynb"]
    return None


def _has_tests(cells: list[dict]) -> bool:
    return any(_is_test(c) for c in cells)


def _is_test(cell: dict) -> bool:
    md = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(md.get("grade")) and bool(md.get("grade_id"))


def _read(path: Path) -> list[dict] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return None


def find_notebook(ns: dict, notebook: str | os.PathLike | None = None) -> tuple[Path | None, list]:
    """The notebook whose tests to run, and its cells (see the module's docstring)."""
    if notebook is not None:
        path = Path(notebook).expanduser()
        cells = _read(path)
        if cells is None:
            raise SummaryError(f"cannot read {path}: give the path of this exercise's .ipynb file")
        return path, cells
    candidates = [ns.get("__vsc_ipynb_file__"), ns.get("__session__")]
    candidates.append(os.environ.get("JPY_SESSION_NAME"))
    for name in filter(None, candidates):
        for path in (Path(str(name)), Path.cwd() / Path(str(name)).name):
            if path.suffix == ".ipynb" and path.is_file():
                cells = _read(path)
                if cells and _has_tests(cells):
                    return path, cells
    colab = _colab_notebook()
    if colab is not None and _has_tests(colab.get("cells", [])):
        return None, colab["cells"]
    found = []
    for path in sorted(Path.cwd().glob("*.ipynb")):
        cells = _read(path)
        if cells and _has_tests(cells):
            found.append((path, cells))
    if len(found) == 1:
        return found[0]
    raise SummaryError(
        "cannot tell which notebook this is"
        + (f" ({len(found)} exercise notebooks in {Path.cwd()})" if found else "")
        + ": give its path, e.g. G.check_all('05_attention.ipynb')"
    )


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _owner(grade_id: str) -> str:
    name = grade_id.removeprefix("test_")
    return name.split("-", 1)[0]


@contextlib.contextmanager
def _grader_seeds() -> Any:
    """The seeds ``course grade`` sets before each test cell; the kernel's states come back."""
    import numpy as np
    import torch

    saved = torch.get_rng_state(), random.getstate(), np.random.get_state()
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        random.setstate(saved[1])
        np.random.set_state(saved[2])


def run_tests(ns: dict, cells: list[dict], path: Path | None) -> tuple[_Result, list[str], bool]:
    """Run each visible test cell in a copy of ``ns``: the result, the edited cells' ids and
    whether the released original was found for them."""
    from course_lib.check import _checksum, find_release
    from course_lib.instructor.notebooks import HIDDEN_RE

    tests = [c for c in cells if _is_test(c)]
    edited = [
        str(c["metadata"]["nbgrader"]["grade_id"])
        for c in tests
        if "checksum" in c["metadata"]["nbgrader"]
        and _checksum(c) != c["metadata"]["nbgrader"]["checksum"]
    ]
    originals: dict[str, dict] = {}
    release = None
    if edited:
        ids = [str(c["metadata"]["nbgrader"]["grade_id"]) for c in tests]
        release = find_release(path or Path.cwd() / "notebook.ipynb", ids)
        for c in (_read(release) or []) if release else []:
            if _is_test(c):
                originals[str(c["metadata"]["nbgrader"]["grade_id"])] = c
    result = _Result()
    for cell in tests:
        md = cell["metadata"]["nbgrader"]
        gid = str(md["grade_id"])
        if gid in edited:
            if gid not in originals:
                continue
            cell = originals[gid]
        points = float(md.get("points", 0))
        row = _Cell(gid, _owner(gid), 0.0, points, "failed")
        code = HIDDEN_RE.sub("", _source(cell))
        scope = dict(ns)
        out = io.StringIO()
        try:
            with (
                _grader_seeds(),
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(out),
            ):
                exec(compile(code, f"<test {gid}>", "exec"), scope)  # noqa: S102
            row.points, row.status = points, "passed"
        except Exception as exc:  # noqa: BLE001 - a failed test is a row of the table
            from course_lib.instructor.grader import _short_message

            row.message = _short_message(exc)  # as `course grade` words it
        result.cells.append(row)
    return result, edited, release is not None


def check_all(notebook: str | os.PathLike | None = None) -> bool | None:
    """Run this notebook's visible tests against the functions defined in the kernel now and
    print each test's points, then every failure in full, as ``course check`` does.

    Put it in the last cell: ``G.check_all()``. Returns True when every visible test passes.
    While the notebook is graded it prints one line and returns None (see the module's
    docstring).
    """
    if _grading():
        print(GRADING_MESSAGE)
        return None
    start = time.perf_counter()
    ns = _user_namespace(2)
    try:
        path, cells = find_notebook(ns, notebook)
    except SummaryError as exc:
        print(f"check_all: {exc}")
        return False
    from course_lib.check import report

    result, edited, have_release = run_tests(ns, cells, path)
    status = report(
        result,
        None,  # type: ignore[arg-type]
        edited,
        Path("release") if have_release else None,
        time.perf_counter() - start,
        print,
        where="in this kernel, with the functions as you last ran them",
    )
    return status == 0

"""``course check NOTEBOOK``: the student's self-check, through the grading engine.

The same core as ``course grade`` (:func:`course_lib.instructor.grader.grade_notebook`): the
released notebook's visible tests play the role of the trusted source, the student's code is
taken out of their notebook and run in a separate process, the test cells run here with the
same checkers, the same forbidden-API rules and the same proxies. So the verdict is the one the
instructor's grader reaches on the visible tests, and no Jupyter kernel is started.

Where students work (a laptop, Colab, JupyterHub) there is usually no bubblewrap and no root:
the student's code then runs in a process of its own with resource limits only, which is all a
self-check needs; it is said once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from course_lib.instructor import notebooks as nbk


class CheckError(Exception):
    """The notebook cannot be checked: the message says why and what to do."""


def _checksum(cell: dict) -> str:
    """nbgrader's checksum of a cell (``nbgrader.utils.compute_checksum``, without importing
    nbgrader): an edited test cell no longer matches the one recorded at release."""
    md = cell.get("metadata", {}).get("nbgrader", {})
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    m = hashlib.md5()  # noqa: S324 - nbgrader's format, not a security measure
    for part in (
        source,
        cell.get("cell_type", ""),
        str(bool(md.get("grade"))),
        str(bool(md.get("solution"))),
        str(bool(md.get("locked") or md.get("grade") or False)),
        md.get("grade_id", ""),
    ):
        m.update(str(part).encode("utf-8"))
    if md.get("grade"):
        m.update(str(float(md.get("points", 0))).encode())
    return m.hexdigest()


def _test_ids(cells: list[dict]) -> list[str]:
    return [
        str(c.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        for c in cells
        if c.get("cell_type") == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")
    ]


def find_release(notebook: Path, tests: list[str]) -> Path | None:
    """The released exercise with the same test cells (``exercises/<id>/<id>.ipynb`` of the
    course the notebook or the current folder is in, or of the installed course)."""
    import course_lib

    roots = []
    for start in (notebook.resolve().parent, Path.cwd().resolve()):
        roots += [start, *start.parents]
    roots.append(Path(course_lib.__file__).resolve().parents[1])
    seen: set[Path] = set()
    for root in roots:
        release_dir = root / "exercises"
        if root in seen or not release_dir.is_dir():
            continue
        seen.add(root)
        for candidate in sorted(release_dir.glob("*/*.ipynb")):
            if candidate.stem != candidate.parent.name:
                continue
            try:
                cells = json.loads(candidate.read_text(encoding="utf-8")).get("cells", [])
            except (OSError, json.JSONDecodeError):
                continue
            if set(tests) <= set(_test_ids(cells)):
                return candidate
    return None


def check_notebook(
    notebook: Path, *, timeout: float = 120.0, out: Callable[[str], None] = print
) -> int:
    """Check ``notebook``'s visible tests; print a table and every failure in full.
    Returns 0 when every visible test passes, else 1."""
    start = time.perf_counter()
    if not notebook.is_file():
        raise CheckError(f"{notebook} does not exist; give the path of an .ipynb file")
    os.environ["COURSE_SANDBOX"] = "rlimits"  # no bubblewrap where students work
    from course_lib.instructor.sandbox import prestart

    prestart()  # the student's process imports torch while this one does the same
    cells, invalid = nbk.read_cells(notebook)
    if invalid:
        raise CheckError(f"{notebook} is not a readable notebook: {invalid}")
    tests = _test_ids(cells)
    if not tests:
        raise CheckError(f"{notebook} has no test cells: is it a course exercise notebook?")
    edited = [
        str(c["metadata"]["nbgrader"]["grade_id"])
        for c in cells
        if c.get("cell_type") == "code"
        and c.get("metadata", {}).get("nbgrader", {}).get("grade")
        and "checksum" in c["metadata"]["nbgrader"]
        and _checksum(c) != c["metadata"]["nbgrader"]["checksum"]
    ]
    release = find_release(notebook, tests)
    source = nbk.load_source(release or notebook, (release or notebook).stem)
    if release is None and edited:
        # No original to run instead: an edited test cannot count.
        source.cells = [c for c in source.cells if c.grade_id not in edited]
    out(f"Checking {notebook} (visible tests) ...")
    from course_lib.instructor.grader import grade_notebook
    from course_lib.instructor.sandbox import Limits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = grade_notebook(
            source,
            notebook,
            student_id="you",
            limits=Limits(timeout=timeout, memory_mb=4096),
            hidden_modules=[],
        )
    return report(result, source, edited, release, time.perf_counter() - start, out)


def report(
    result: object,
    source: nbk.SourceAssignment,
    edited: list[str],
    release: Path | None,
    seconds: float,
    out: Callable[[str], None],
    *,
    where: str | None = None,
) -> int:
    """The table, then every failing test's full message, then the cells that raised.
    ``where``: how the code ran, when not in a separate process (``G.check_all``)."""
    errors: dict[str, str] = getattr(result, "cell_errors", {})
    rows, failures = [], []
    for cell in result.cells:  # type: ignore[attr-defined]
        passed = cell.status == "passed" and cell.points == cell.max_points
        if passed:
            detail = "passed"
        elif cell.owner in errors:
            detail = f"not run: your cell `{cell.owner}` raised an error (below)"
        else:
            first = (cell.message or cell.status).strip().splitlines()
            detail = f"{'failed' if cell.status in ('failed', 'zeroed') else cell.status}: " + (
                first[0] if first else ""
            )
            failures.append((cell.grade_id, cell.message or cell.status))
        rows.append((cell.grade_id, f"{cell.points:g} / {cell.max_points:g}", detail))
    total = sum(c.max_points for c in result.cells)  # type: ignore[attr-defined]
    got = sum(c.points for c in result.cells)  # type: ignore[attr-defined]
    width = max(len("test cell"), *(len(r[0]) for r in rows))
    out("")
    out(f"  {'test cell':<{width}}  {'points':>9}  result")
    for gid, pts, detail in rows:
        out(f"  {gid:<{width}}  {pts:>9}  {detail}")
    out(f"  {'total':<{width}}  {f'{got:g} / {total:g}':>9}")
    for cid, err in errors.items():
        out("")
        out(f"Your cell `{cid}` raised an error, so what it defines is missing:")
        out("  " + err)
    for gid, message in failures:
        out("")
        out(f"{gid}:")
        for line in message.splitlines():
            out("  " + line)
    out("")
    if edited:
        what = "the original ran instead" if release else "it was not counted"
        out(f"Note: you changed the test cell(s) {', '.join(edited)}; {what}.")
    how = (
        f"It ran {where}."
        if where
        else "Your code ran in a separate process with resource limits (no sandbox)."
    )
    out(f"Visible tests only ({seconds:.1f} s); hidden tests run when your work is graded. {how}")
    passed = got == total and not failures and not errors
    out("All visible tests pass." if passed else "Some tests fail: read the messages above.")
    return 0 if passed else 1

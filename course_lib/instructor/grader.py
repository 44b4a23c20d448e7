"""Grading one submission: the student's code in the sandbox, the tests and the scores here.

The trusted test cells (visible and hidden, from the instructor's source) run in *this*
process, in a namespace where each name the student defines is a :class:`RemoteObject`. So no
monkeypatching, input transformer, tag, output or metadata in the student's notebook can make a
test pass: the assertions are evaluated here, on plain data that came back over the wire.
"""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.instructor import notebooks as nbk
from course_lib.instructor.sandbox import (
    Limits,
    Sandbox,
    SandboxFailure,
    SandboxStartError,
    scratch_root,
)

# Every status a row can have: the student's (graded ... missing), the folder's (refused_link,
# invalid_id) and the grader's own fault (grader_error: retried, never cached, never a grade).
STATUS_ORDER = [
    "graded",
    "partial",
    "timeout",
    "crashed",
    "invalid_notebook",
    "missing",
    "refused_link",
    "invalid_id",
    "grader_error",
]


class GraderFault(Exception):
    """The grader failed (sandbox start, internal exception): no verdict on the student."""


@dataclass
class CellResult:
    grade_id: str
    owner: str
    points: float
    max_points: float
    status: str  # "passed", "failed", "timeout", "crashed", "not_run", "zeroed"
    message: str = ""


@dataclass
class SubmissionResult:
    student_id: str
    assignment_id: str
    score: float
    max_score: float
    status: str
    reason: str = ""
    flags: list[str] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    student_code: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    cell_errors: dict[str, str] = field(default_factory=dict)  # student cell -> its error

    @property
    def status_text(self) -> str:
        return f"{self.status}: {self.reason}" if self.reason else self.status


_installed = False


def _install_forbid_hook() -> None:
    """Route the checkers' forbidden lists to the student's process.

    The student's functions are :class:`RemoteObject` proxies here: patching this process's
    modules would miss what the student imported in the sandbox (scikit-learn, say). So for a
    proxy, :func:`grading.forbidden.forbid` only publishes the *whole* rule list, which the proxy
    hands to the call, and the student's process resolves and blocks each name while the
    function runs (``worker.Server.do_call``); see :func:`grading.forbidden.route_remote`.
    """
    global _installed
    if _installed:
        return
    from course_lib.grading import forbidden
    from course_lib.instructor.sandbox import RemoteObject

    forbidden.route_remote(lambda fn: isinstance(fn, RemoteObject))
    _installed = True


def _seed_everything() -> None:
    import numpy as np
    import torch

    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)


def _short_message(exc: BaseException, limit: int = 1200) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if type(exc).__name__ == "GradingError":
        text = str(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade_notebook(
    source: nbk.SourceAssignment,
    notebook: Path,
    *,
    student_id: str,
    limits: Limits,
    hidden_modules: list[str],
) -> SubmissionResult:
    """Grade one submitted notebook against the trusted source."""
    _install_forbid_hook()
    start = time.monotonic()
    result = SubmissionResult(student_id, source.assignment_id, 0.0, source.max_score, "graded")
    if not notebook.exists():
        result.status, result.reason = "missing", "no notebook submitted"
        result.cells = [
            CellResult(t.grade_id, t.owner, 0.0, t.points, "not_run", "no notebook")
            for t in source.tests
        ]
        return result
    ex = nbk.extract(notebook, source)
    result.flags = list(ex.flags)
    result.student_code = dict(ex.solutions)
    chunks = nbk.worker_chunks(source, ex)
    scratch = Path(tempfile.mkdtemp(prefix="sub-", dir=scratch_root()))
    scratch.chmod(0o700)
    box = Sandbox(scratch / "work", limits, hidden_modules)
    problems: list[str] = []
    try:
        result.cells = _run_tests(source, ex, box, chunks, limits, problems, result)
    finally:
        box.close()
        shutil.rmtree(scratch, ignore_errors=True)
    _zero_flagged(source, ex, result)
    result.score = round(sum(c.points for c in result.cells), 4)
    statuses = {c.status for c in result.cells}
    skipped = list(getattr(result, "_skipped", {}).values())
    if ex.invalid:
        result.status, problems = "invalid_notebook", [ex.invalid, *problems]
    elif "timeout" in statuses or any(w.startswith("timeout") for w in skipped):
        result.status = "timeout"
    elif "crashed" in statuses or any(w.startswith("crashed") for w in skipped):
        result.status = "crashed"
    elif ex.missing or problems:
        result.status = "partial"
    if ex.missing:
        problems.append("missing solution cells: " + ", ".join(ex.missing))
    bad = [c for c in result.cells if c.status in ("timeout", "crashed")]
    if bad:
        problems.append(
            "; ".join(f"{c.grade_id} {c.status}" for c in bad[:5])
            + (" ..." if len(bad) > 5 else "")
        )
    problems += ex.notes
    result.reason = "; ".join(dict.fromkeys(p for p in problems if p))
    result.seconds = round(time.monotonic() - start, 3)
    return result


def _run_tests(
    source: nbk.SourceAssignment,
    ex: nbk.Extracted,
    box: Sandbox,
    chunks: list[dict],
    limits: Limits,
    problems: list[str],
    result: SubmissionResult,
) -> list[CellResult]:
    names = source.exported_names
    loaded = None
    restarts = 0
    trusted_ns: dict[str, Any] = {"__name__": "__main__"}
    for cell in source.cells:
        if cell.kind == "setup":
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                exec(compile(cell.source, f"<setup {cell.grade_id}>", "exec"), trusted_ns)  # noqa: S102
    cells: list[CellResult] = []
    for test in source.tests:
        if not box.alive():
            if restarts > 2:
                cells.append(
                    CellResult(
                        test.grade_id,
                        test.owner,
                        0.0,
                        test.points,
                        "crashed",
                        "not run: the student's process kept dying",
                    )
                )
                continue
            try:
                loaded = box.start(chunks, names)
            except (SandboxStartError, OSError) as exc:
                raise GraderFault(f"the sandbox could not start: {exc}") from exc
            except SandboxFailure as exc:
                restarts += 1
                cells.append(
                    CellResult(
                        test.grade_id,
                        test.owner,
                        0.0,
                        test.points,
                        exc.status,
                        f"the student's code could not be loaded: {exc}",
                    )
                )
                continue
            if restarts == 0:
                result._skipped = dict(loaded.skipped)  # type: ignore[attr-defined]
                for cid, why in loaded.skipped.items():
                    problems.append(f"cell {cid} skipped ({why})")
                for cid, err in loaded.errors.items():
                    if any(c["id"] == cid and c["kind"] == "student" for c in chunks):
                        problems.append(f"cell {cid} raised {err.split(':')[0]}")
                        result.cell_errors[cid] = err
            restarts += 1
        if test.owner and test.owner not in ex.solutions:
            cells.append(
                CellResult(
                    test.grade_id,
                    test.owner,
                    0.0,
                    test.points,
                    "failed",
                    f"the solution cell `{test.owner}` is missing from the notebook",
                )
            )
            continue
        cells.append(_run_one(test, box, names, loaded, limits, trusted_ns, result))
    return cells


def _run_one(
    test: nbk.SourceCell,
    box: Sandbox,
    names: list[str],
    loaded: Any,
    limits: Limits,
    trusted_ns: dict,
    result: SubmissionResult,
) -> CellResult:
    deadline = time.monotonic() + limits.timeout
    cell = CellResult(test.grade_id, test.owner, 0.0, test.points, "failed")
    _seed_everything()
    try:
        with box.session(deadline) as sess:
            ns = dict(trusted_ns)
            for name in names:
                if name in (loaded.defined if loaded else {}):
                    ns[name] = sess.get(name)
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    exec(compile(test.source, f"<test {test.grade_id}>", "exec"), ns)  # noqa: S102
                cell.points, cell.status = test.points, "passed"
            except SandboxFailure as exc:
                cell.status, cell.message = exc.status, str(exc)
            except Exception as exc:  # noqa: BLE001 - a failed test is a result
                cell.message = _short_message(exc)
                if sess.failure is not None:
                    cell.status, cell.message = sess.failure.status, str(sess.failure)
            if sess.forbidden_events:
                flag = f"forbidden_call:{test.owner}"
                if flag not in result.flags:
                    result.flags.append(flag)
    except SandboxFailure as exc:
        cell.points, cell.status, cell.message = 0.0, exc.status, str(exc)
    except Exception as exc:
        # Not the student's test failing (that is caught above): the grader itself broke.
        raise GraderFault(
            f"{test.grade_id}: " + "".join(traceback.format_exception_only(exc)).strip()
        ) from exc
    if cell.status in ("timeout", "crashed"):
        cell.points = 0.0
    return cell


def _zero_flagged(
    source: nbk.SourceAssignment, ex: nbk.Extracted, result: SubmissionResult
) -> None:
    """No points for a function that called the reference or a forbidden API *while it ran*
    (``forbidden_call:<function>``, proven in the student's process). What the code merely
    mentions (an import in a scratch cell, a docstring) costs nothing: it only adds an
    informational flag naming the cell and line (``note:<finding>:<cell>:<line>``)."""
    for gid, code in ex.solutions.items():
        for finding, line in nbk.findings(code):
            result.flags.append(f"note:{finding}:{gid}:{line}")
    for k, (_after, code) in enumerate(ex.added):
        for finding, line in nbk.findings(code):
            result.flags.append(f"note:{finding}:added-{k + 1}:{line}")
    zeroed = {f.split(":", 1)[1] for f in result.flags if f.startswith("forbidden_call:")}
    for cell in result.cells:
        if cell.owner in zeroed and cell.points > 0:
            cell.points = 0.0
            cell.status = "zeroed"
            cell.message = (
                "no points: while the tests ran, this function called the reference "
                "implementation or an API this exercise does not allow (see the other messages)"
            )
    result.flags = sorted(set(result.flags))

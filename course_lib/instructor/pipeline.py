"""``course grade``: every submission graded in parallel, resumable, with nothing lost.

Layout of SUBMISSIONS (a folder or a ``.zip`` of one), as nbgrader's ``submitted/``:
``<student_id>/<assignment_id>/<assignment_id>.ipynb``. Results go to OUT:

- ``grades.csv`` — ``student_id,assignment_id,score,max_score,status,flags``;
- ``feedback/<student_id>/<assignment_id>.html`` — per-test results, visible tests only;
- ``report.html`` — histograms and the most failed tests;
- ``.state/<student_id>__<assignment_id>.json`` — one result per submission, written
  atomically as soon as it is known and keyed by a hash of the notebook, the source, the limits
  and the grading seed: a re-run skips what is unchanged, an interrupted run resumes.

A pool of ``--jobs`` trusted grader processes (each imports torch once) grades the
submissions; each submission's code runs in its own sandbox (:mod:`.sandbox`). Only this
parent process opens the gradebook.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from course_lib import CHAPTER_MODULES
from course_lib.instructor import notebooks as nbk
from course_lib.instructor.export import write_atomic, write_table
from course_lib.instructor.sandbox import FALLBACK_WARNING, Limits, bwrap_path

GRADER_VERSION = "1"
CSV_COLUMNS = ["student_id", "assignment_id", "score", "max_score", "status", "flags"]
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
MAX_ZIP_BYTES = 2 * 1024**3


class GradingSetupError(Exception):
    """Bad arguments or inputs: the message says how to fix them."""


# ---------------------------------------------------------------------------------------------
# Finding submissions.
# ---------------------------------------------------------------------------------------------


def _unzip(archive: Path, into: Path) -> Path:
    """Extract safely: no absolute paths, no ``..``, no links, bounded size."""
    total = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = Path(name).parts
            if name.startswith("/") or ".." in parts or (info.external_attr >> 28) == 0o12:
                raise GradingSetupError(f"{archive} holds an unsafe path {name!r}; refusing it")
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise GradingSetupError(f"{archive} unpacks to more than 2 GiB")
        zf.extractall(into)
    entries = [p for p in into.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name == "submitted":
        return entries[0]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if p.is_dir()]
        if inner and all(any(q.is_dir() for q in p.iterdir()) for p in inner):
            return entries[0]
    return into


def discover(root: Path, assignments: list[str] | None = None) -> list[tuple[str, str, Path]]:
    """(student_id, assignment_id, notebook path) for every submission under ``root``."""
    found = []
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        student = student_dir.name
        if student.startswith(".") or not SAFE_ID.match(student):
            continue
        for adir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            aid = adir.name
            if assignments and aid not in assignments:
                continue
            nb = adir / f"{aid}.ipynb"
            if not nb.exists():
                others = sorted(adir.glob("*.ipynb"))
                nb = others[0] if len(others) == 1 else nb
            found.append((student, aid, nb))
    return found


def find_source(assignment_id: str, source_dir: Path) -> Path:
    path = source_dir / assignment_id / f"{assignment_id}.ipynb"
    if not path.exists():
        raise GradingSetupError(
            f"no source notebook for assignment {assignment_id!r}: expected {path} "
            "(pass --source to point at the instructor's solutions folder)"
        )
    return path


# ---------------------------------------------------------------------------------------------
# Grading in a pool of trusted processes.
# ---------------------------------------------------------------------------------------------

_sources: dict[str, nbk.SourceAssignment] = {}


def _pool_init() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)


def _grade_task(task: dict) -> dict:
    from course_lib.instructor.grader import grade_notebook

    key = task["source"]
    if key not in _sources:
        _sources[key] = nbk.load_source(Path(key), task["assignment_id"])
    result = grade_notebook(
        _sources[key],
        Path(task["notebook"]),
        student_id=task["student_id"],
        limits=Limits(**task["limits"]),
        hidden_modules=task["hidden_modules"],
    )
    out = asdict(result)
    out["status_text"] = result.status_text
    return out


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _warm_up_imports() -> None:
    """Import what the end of a run needs (nbgrader's gradebook API, matplotlib for the report)
    while the pool grades: about 4 s of imports that the parent would otherwise pay at the end,
    when every grader process is already idle."""
    with contextlib.suppress(Exception):
        import matplotlib.figure  # noqa: F401
        import nbgrader.api  # noqa: F401


def grade(
    submissions: Path,
    out: Path,
    *,
    jobs: int = 1,
    limits: Limits | None = None,
    source_dir: Path = Path("solutions"),
    assignments: list[str] | None = None,
    db_url: str | None = None,
    log: Any = None,
    runner: Any = None,
) -> list[dict]:
    """Grade every submission; write OUT/grades.csv, feedback, report and the gradebook.

    ``runner(todo, log)``, when given, grades instead of the ``--jobs`` pool and yields
    ``(task, result)`` as results arrive (:class:`.distributed.DaskRunner`)."""
    from course_lib.instructor import report

    limits = limits or Limits()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if jobs < 1:
        raise GradingSetupError(f"--jobs must be at least 1, got {jobs}")
    if not submissions.exists():
        raise GradingSetupError(
            f"{submissions} does not exist: pass the submitted/ folder or a .zip"
        )
    if bwrap_path() is None:
        log("warning: " + FALLBACK_WARNING)
    out.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_warm_up_imports, name="warm-up", daemon=True).start()
    tmp_root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        root = submissions
        if submissions.is_file():
            if not zipfile.is_zipfile(submissions):
                raise GradingSetupError(f"{submissions} is neither a folder nor a .zip archive")
            root = _unzip(submissions, tmp_root / "unzipped")
        entries = discover(root, assignments)
        if not entries:
            raise GradingSetupError(
                f"no submissions under {submissions}: expected "
                "<student_id>/<assignment_id>/<assignment_id>.ipynb"
            )
        sources = {aid: find_source(aid, source_dir) for aid in sorted({a for _, a, _ in entries})}
        seed = os.environ.get("COURSE_GRADING_SEED", "")
        state_dir = out / ".state"
        results: dict[tuple[str, str], dict] = {}
        todo = []
        for student, aid, nb in entries:
            key = _digest(
                GRADER_VERSION,
                _file_digest(nb),
                _file_digest(sources[aid]),
                json.dumps(asdict(limits), sort_keys=True),
                seed,
            )
            state = state_dir / f"{student}__{aid}.json"
            if state.exists():
                try:
                    saved = json.loads(state.read_text())
                    if saved.get("key") == key:
                        results[(student, aid)] = saved["result"]
                        continue
                except (json.JSONDecodeError, KeyError, OSError):
                    pass
            module = CHAPTER_MODULES.get(aid)
            todo.append(
                {
                    "student_id": student,
                    "assignment_id": aid,
                    "notebook": str(nb.resolve()),
                    "source": str(sources[aid].resolve()),
                    "limits": asdict(limits),
                    "hidden_modules": [module] if module else [],
                    "key": key,
                    "state": str(state),
                }
            )
        log(
            f"{len(entries)} submissions: {len(results)} unchanged, {len(todo)} to grade "
            + (f"on {runner.describe}" if runner is not None else f"with {jobs} job(s)")
        )
        results_stream = runner(todo, log) if runner is not None else _run_pool(todo, jobs, log)
        for task, result in results_stream:
            results[(task["student_id"], task["assignment_id"])] = result
            write_atomic(Path(task["state"]), json.dumps({"key": task["key"], "result": result}))
        ordered = [results[(s, a)] for s, a, _ in entries]
        write_csv(out / "grades.csv", ordered)
        parsed = {aid: nbk.load_source(p, aid) for aid, p in sources.items()}
        for r in ordered:
            html = report.feedback_html(r, parsed[r["assignment_id"]])
            write_atomic(out / "feedback" / r["student_id"] / f"{r['assignment_id']}.html", html)
        write_atomic(out / "report.html", report.report_html(ordered, parsed))
        from course_lib.instructor import export

        export.write_gradebook(
            db_url or f"sqlite:///{(out / 'gradebook.db').resolve()}", ordered, parsed
        )
        return ordered
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def _run_pool(todo: list[dict], jobs: int, log: Any) -> Any:
    """Yield (task, result) as submissions finish; a grader process that dies is replaced."""
    pending = list(todo)
    attempts: dict[str, int] = {}
    ctx = multiprocessing.get_context("spawn")
    done = 0
    while pending:
        with cf.ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_pool_init
        ) as pool:
            futures = {pool.submit(_grade_task, t): t for t in pending}
            pending = []
            broken = False
            for fut in cf.as_completed(futures):
                task = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - a dead grader process must not lose work
                    ident = f"{task['student_id']}/{task['assignment_id']}"
                    attempts[ident] = attempts.get(ident, 0) + 1
                    if isinstance(exc, cf.process.BrokenProcessPool):
                        broken = True
                    if attempts[ident] < 2:
                        pending.append(task)
                        continue
                    result = _crash_result(
                        task, f"grader process failed: {type(exc).__name__}: {exc}"
                    )
                done += 1
                log(
                    f"[{done}/{len(todo)}] {task['student_id']}/{task['assignment_id']}: "
                    f"{result['score']:g}/{result['max_score']:g} {result['status_text']}"
                )
                yield task, result
            if broken:
                continue


def _crash_result(task: dict, why: str) -> dict:
    source = nbk.load_source(Path(task["source"]), task["assignment_id"])
    return {
        "student_id": task["student_id"],
        "assignment_id": task["assignment_id"],
        "score": 0.0,
        "max_score": source.max_score,
        "status": "crashed",
        "reason": why,
        "status_text": f"crashed: {why}",
        "flags": [],
        "cells": [
            {
                "grade_id": t.grade_id,
                "owner": t.owner,
                "points": 0.0,
                "max_points": t.points,
                "status": "crashed",
                "message": why,
            }
            for t in source.tests
        ],
        "student_code": {},
        "seconds": 0.0,
    }


def write_csv(path: Path, results: list[dict]) -> None:
    rows = (
        [
            r["student_id"],
            r["assignment_id"],
            f"{r['score']:g}",
            f"{r['max_score']:g}",
            r["status_text"],
            ";".join(r["flags"]),
        ]
        for r in results
    )
    write_table(path, CSV_COLUMNS, rows)

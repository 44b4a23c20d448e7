"""``course grade``: every submission graded in parallel, resumable, with nothing lost.

Layout of SUBMISSIONS (a folder or a ``.zip`` of one), as nbgrader's ``submitted/``:
``<student_id>/<assignment_id>/<assignment_id>.ipynb``. Results go to OUT:

- ``grades.csv`` — ``student_id,assignment_id,score,max_score,status,flags``, one row for every
  folder under SUBMISSIONS (a folder that cannot be graded gets a row that says why:
  ``invalid_id``, ``refused_link``, ``missing``);
- ``feedback/<student_id>/<assignment_id>.html`` — per-test results, visible tests only;
  written as each result arrives (``grades.csv``, the report and the gradebook, which need the
  whole class, are written once at the end, the gradebook in bulk);
- ``report.html`` — histograms and the most failed tests;
- ``.state/<student_id>__<assignment_id>.json`` — one result per submission, written
  atomically as soon as it is known and keyed by a hash of everything that decides a grade
  (the notebook, the source, the checkers and reference modules, the limits, the grading
  seed): a re-run skips what is unchanged, an interrupted run resumes. A ``grader_error`` (the
  grader's own fault, retried twice in a fresh process first) is never stored.

A pool of ``--jobs`` trusted grader processes (each imports torch once) grades the
submissions; each submission's code runs in its own sandbox (:mod:`.sandbox`). Only this
parent process opens the gradebook. :func:`grade_task` grades ONE submission from a plain,
picklable dict, so any executor can run it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import unicodedata
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import course_lib
from course_lib import CHAPTER_MODULES
from course_lib.instructor import notebooks as nbk
from course_lib.instructor import similarity
from course_lib.instructor.export import write_atomic, write_table
from course_lib.instructor.sandbox import FALLBACK_WARNING, Limits, bwrap_path

GRADER_VERSION = "2"
CSV_COLUMNS = ["student_id", "assignment_id", "score", "max_score", "status", "flags"]
ID_PUNCTUATION = set(" ._@+-")
MAX_ID_LENGTH = 128
MAX_ZIP_BYTES = 2 * 1024**3
ATTEMPTS = 3  # a grader fault is retried twice, each time in a fresh grader process
GRACE_SECONDS = 2.0  # after Ctrl-C, how long running submissions may take to finish
# ``course_lib.grading``'s seed variable and public default, named here so that the client
# (which runs no student code) never imports the checkers and torch, 2-3 s on every run; a
# test checks that the two agree.
SEED_ENV, DEFAULT_SEED = "COURSE_GRADING_SEED", 2024
SEED_HELP = (
    "set the grading seed of the hidden tests first, e.g. `export COURSE_GRADING_SEED="
    "$(python -c 'import secrets; print(secrets.token_hex(8))')` (any string; keep it secret "
    "and the same for the whole class), or pass --allow-default-seed to use the public default"
)
# Files of course_lib that do not decide a grade (a change to them never re-grades).
NOT_GRADING_FILES = {"cli.py", "check.py", "viz.py", "interactive.py", "data.py"}


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


def valid_id(name: str) -> bool:
    """A student id: Unicode letters and digits, space and ``._@+-``; not starting with a dot
    (``.``, ``..``, hidden folders), at most 128 characters."""
    name = unicodedata.normalize("NFC", name)
    return (
        0 < len(name) <= MAX_ID_LENGTH
        and not name.startswith(".")
        and name.strip() == name
        and all(ch.isalnum() or ch in ID_PUNCTUATION for ch in name)
    )


@dataclass
class Entry:
    """One row-to-be: a submission to grade, or a folder that gets a row saying why not."""

    student: str
    assignment: str
    notebook: Path | None
    status: str = ""  # "" = grade it; else invalid_id, refused_link or missing
    reason: str = ""


def _has_link(folder: Path) -> str:
    """The first symbolic link anywhere under ``folder`` (never followed), or ""."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames + filenames):
            if (Path(dirpath) / name).is_symlink():
                return str((Path(dirpath) / name).relative_to(folder.parent))
    return ""


def discover(root: Path, assignments: list[str] | None = None) -> list[Entry]:
    """One :class:`Entry` per (student folder, assignment folder) under ``root``; a folder
    that cannot be graded still gets one, with its status."""
    found: list[Entry] = []
    for student_dir in sorted(root.iterdir(), key=lambda p: p.name):
        student = student_dir.name
        if student_dir.is_symlink():
            found.append(Entry(student, "", None, "refused_link", f"{student} is a symbolic link"))
            continue
        if not student_dir.is_dir():
            continue  # a stray file, not a student's folder
        if not valid_id(student):
            found.append(
                Entry(
                    _shown_name(student, found),
                    "",
                    None,
                    "invalid_id",
                    "a student id may hold only letters, digits, space and ._@+- "
                    "(and not start with a dot)",
                )
            )
            continue
        adirs = sorted(p for p in student_dir.iterdir() if p.is_dir() or p.is_symlink())
        wanted = [p for p in adirs if not assignments or p.name in assignments]
        if not wanted:
            for aid in assignments or [""]:
                found.append(Entry(student, aid, None, "missing", "no assignment folder"))
            continue
        for adir in wanted:
            aid = adir.name
            link = _has_link(adir) if not adir.is_symlink() else aid
            if link:
                found.append(
                    Entry(student, aid, None, "refused_link", f"symbolic link {link} not followed")
                )
                continue
            nb = adir / f"{aid}.ipynb"
            if not nb.exists():
                others = sorted(adir.glob("*.ipynb"))
                nb = others[0] if len(others) == 1 else nb
            found.append(Entry(student, aid, nb))
    return found


def _shown_name(name: str, found: list[Entry]) -> str:
    """An invalid student folder's name as its row shows it. A name that is not UTF-8 (Python
    holds its bytes as lone surrogates) is shown with those bytes escaped (``\\xff``), since
    no UTF-8 file (grades.csv, the report) can hold it; a suffix keeps it apart from another
    folder's name shown the same."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    taken = {e.student for e in found}
    candidate, n = shown, 1
    while candidate in taken:
        n += 1
        candidate = f"{shown} ({n})"
    return candidate


def find_source(assignment_id: str, source_dir: Path) -> Path:
    path = source_dir / assignment_id / f"{assignment_id}.ipynb"
    if not path.exists():
        raise GradingSetupError(
            f"no source notebook for assignment {assignment_id!r}: expected {path} "
            "(pass --source to point at the instructor's solutions folder)"
        )
    return path


# ---------------------------------------------------------------------------------------------
# The seed and the cache key.
# ---------------------------------------------------------------------------------------------


def require_seed(allow_default: bool = False) -> str:
    """The grading seed's text from ``$COURSE_GRADING_SEED``; refuse when it is unset (the
    public default would let students know the hidden tests) unless ``allow_default``."""
    raw = os.environ.get(SEED_ENV, "")
    if raw.strip():
        return raw.strip()
    if allow_default:
        return str(DEFAULT_SEED)
    raise GradingSetupError(f"{SEED_ENV} is not set: {SEED_HELP}")


def engine_digest(package: Path | None = None) -> str:
    """A hash of every file of ``course_lib`` that can decide a grade: the checkers, the
    reference modules and the grading engine (not the book build or the explorers)."""
    package = package or Path(course_lib.__file__).resolve().parent
    files = [p for p in sorted(package.glob("*.py")) if p.name not in NOT_GRADING_FILES]
    files += sorted((package / "grading").rglob("*.py"))
    files += [
        package / "instructor" / f"{m}.py"
        for m in ("grader", "notebooks", "sandbox", "wire", "worker", "pipeline")
    ]
    return _digest(*(f"{p.relative_to(package)}:{_file_digest(p)}" for p in files))


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


# ---------------------------------------------------------------------------------------------
# Grading one submission (in whatever process runs it).
# ---------------------------------------------------------------------------------------------

_sources: dict[str, nbk.SourceAssignment] = {}
FAULT_ENV = "COURSE_GRADING_INJECT_FAULT"  # tests only: "student:kill|start:attempts"


def _pool_init(hidden_modules: tuple[str, ...] = ()) -> None:
    """A grader process: signals, then the zygote for the first submissions' assignment is
    started (it imports torch in its own process) while this one imports torch too."""
    # Ctrl-C is the parent's to handle; SIGTERM (the parent stopping us) unwinds, so that the
    # sandbox of the submission being graded is killed by its `finally`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from course_lib.instructor.sandbox import prestart

    prestart(hidden_modules)
    import matplotlib

    matplotlib.use("Agg")
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)


def _inject_fault(task: dict) -> None:
    """The fault a test asked for (``$COURSE_GRADING_INJECT_FAULT``), on early attempts."""
    spec = os.environ.get(FAULT_ENV, "")
    for item in filter(None, spec.split(",")):
        student, kind, attempts = item.rsplit(":", 2)
        if student == task["student_id"] and task.get("attempt", 0) < int(attempts):
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)  # the grader process dies mid-run
            if kind == "start":  # the sandbox cannot start (grade_task restores this)
                from course_lib.instructor.sandbox import Sandbox

                Sandbox._command = lambda self, fd: ["/bin/false"]


def grade_task(task: dict) -> dict:
    """Grade ONE submission described by a plain dict (student_id, assignment_id, notebook,
    source, limits, hidden_modules): the result as a plain dict. Raises on a grader fault."""
    from course_lib.instructor.grader import grade_notebook
    from course_lib.instructor.sandbox import Sandbox

    saved_command = Sandbox._command
    try:
        _inject_fault(task)
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
    finally:
        Sandbox._command = saved_command
    return result_dict(result, _sources[key])


def result_dict(result: Any, source: nbk.SourceAssignment) -> dict:
    """A grader's result as the client receives it (``--jobs`` and Dask workers alike): the
    plain dict, its status text, and the copying review's fingerprint, made here rather than
    by the client at the end."""
    out = asdict(result)
    out["status_text"] = result.status_text
    similarity.add_fingerprint(out, source)
    return out


def _warm_up_imports() -> None:
    """Import what the end of a run needs (nbgrader's gradebook API, matplotlib for the report)
    while the pool grades: about 4 s of imports that the parent would otherwise pay at the end,
    when every grader process is already idle."""
    with contextlib.suppress(Exception):
        import matplotlib.figure  # noqa: F401
        import nbgrader.api  # noqa: F401


class Interrupted(Exception):
    """Ctrl-C: ``done`` submissions have results (kept), ``left`` do not."""

    def __init__(self, done: int, left: int) -> None:
        super().__init__(f"interrupted: {done} graded, {left} left; re-run to resume")
        self.done, self.left = done, left


# ---------------------------------------------------------------------------------------------
# All of them.
# ---------------------------------------------------------------------------------------------


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
    allow_default_seed: bool = False,
    runner: Any = None,
    feedback: Any = None,
) -> list[dict]:
    """Grade every submission; write OUT/grades.csv, feedback, report and the gradebook.

    ``runner(todo, log)``, when given, grades instead of the ``--jobs`` pool and yields
    ``(task, result)`` as results arrive (:class:`.distributed.DaskRunner`).
    ``feedback(out, result, sources)``, when given, writes each row's feedback page instead of
    the engine's page with the tests' points (:class:`.classroom.ClassPages`: the page with the
    grade ``grades.csv`` will record, so that the end of the run need not write it again).
    Raises :class:`GradingSetupError` for bad inputs (nothing graded), :class:`Interrupted` on
    Ctrl-C (finished results kept for the next run)."""
    from course_lib.instructor import report

    limits = limits or Limits()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    write_page = feedback or _write_feedback
    if jobs < 1:
        raise GradingSetupError(f"--jobs must be at least 1, got {jobs}")
    seed = require_seed(allow_default_seed)
    if not submissions.exists():
        raise GradingSetupError(
            f"{submissions} does not exist: pass the submitted/ folder or a .zip"
        )
    if bwrap_path() is None:
        log("warning: " + FALLBACK_WARNING)
    out.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_warm_up_imports, name="warm-up", daemon=True).start()
    tmp_root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    results: dict[tuple[str, str], dict] = {}
    entries: list[Entry] = []
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
        gradable = [e for e in entries if not e.status]
        sources = {
            aid: find_source(aid, source_dir)
            for aid in sorted({e.assignment for e in entries if e.assignment})
            if any(x.assignment == aid for x in gradable) or (source_dir / aid).exists()
        }
        parsed = {aid: nbk.load_source(p, aid) for aid, p in sources.items()}
        engine = engine_digest()
        state_dir = out / ".state"
        todo = []
        for e in entries:
            if e.status:
                results[(e.student, e.assignment)] = _plain_result(e, parsed.get(e.assignment))
                continue
            key = _digest(
                GRADER_VERSION,
                engine,
                _file_digest(e.notebook),
                _file_digest(sources[e.assignment]),
                json.dumps(asdict(limits), sort_keys=True),
                seed,
            )
            state = state_dir / f"{e.student}__{e.assignment}.json"
            with contextlib.suppress(json.JSONDecodeError, KeyError, OSError, TypeError):
                saved = json.loads(state.read_text(encoding="utf-8"))
                if saved.get("key") == key and saved["result"]["status"] != "grader_error":
                    results[(e.student, e.assignment)] = saved["result"]
                    _scrub_seed([saved["result"]], seed)
                    continue
            module = CHAPTER_MODULES.get(e.assignment)
            todo.append(
                {
                    "student_id": e.student,
                    "assignment_id": e.assignment,
                    "notebook": str(e.notebook.absolute()),
                    "source": str(sources[e.assignment].resolve()),
                    "limits": asdict(limits),
                    "hidden_modules": [module] if module else [],
                    "key": key,
                    "state": str(state),
                }
            )
        log(
            f"{len(gradable)} submissions: {len(gradable) - len(todo)} unchanged, "
            f"{len(todo)} to grade "
            + (f"on {runner.describe}" if runner is not None else f"with {jobs} job(s)")
        )

        from course_lib.instructor import manual

        written = {aid: manual.written_cells(p) for aid, p in sources.items()}

        def record(task: dict, result: dict) -> None:
            """Each result as it arrives: its written answers (read here, from the notebook the
            client holds, and kept in the state file, so that the class layer's marking sheets
            need not open every notebook again at the end), its state file (atomically), then
            its feedback page, so that the end of the run writes only the class-wide files."""
            cells = written.get(task["assignment_id"])
            if cells and result["status"] != "grader_error":
                result["answers"] = manual.answers(Path(task["notebook"]), cells)
            results[(task["student_id"], task["assignment_id"])] = result
            if result["status"] != "grader_error":  # a fault is never a grade
                write_atomic(
                    Path(task["state"]), json.dumps({"key": task["key"], "result": result})
                )
            _scrub_seed([result], seed)
            write_page(out, result, parsed)

        for r in results.values():  # the rows known before grading: unchanged or not gradable
            write_page(out, r, parsed)
        if runner is not None:
            for task, result in runner(todo, log):
                record(task, result)
        else:
            _run_pool(todo, jobs, log, record)
        ordered = [results[(e.student, e.assignment)] for e in entries]
        write_csv(out / "grades.csv", ordered)
        in_book = [
            r for r in ordered if r["assignment_id"] in parsed and r["status"] != "invalid_id"
        ]
        write_atomic(out / "report.html", report.report_html(in_book, parsed))
        from course_lib.instructor import export

        export.write_gradebook(
            db_url or f"sqlite:///{(out / 'gradebook.db').resolve()}", in_book, parsed
        )
        return ordered
    except KeyboardInterrupt:
        gradable = [e for e in entries if not e.status]
        done = sum((e.student, e.assignment) in results for e in gradable)
        raise Interrupted(done, len(gradable) - done) from None
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def summary(results: list[dict]) -> str:
    """``N rows: a graded, b partial, ...`` — the counts always add up to N."""
    from course_lib.instructor.grader import STATUS_ORDER

    counts = Counter(r["status"] for r in results)
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    parts = ", ".join(
        f"{counts[s]} {s}" for s in sorted(counts, key=lambda s: (order.get(s, len(order)), s))
    )
    return f"{len(results)} rows ({parts})"


def _write_feedback(out: Path, result: dict, parsed: dict[str, nbk.SourceAssignment]) -> None:
    """``OUT/feedback/<student>/<assignment>.html``, for a row of an assignment in the book."""
    from course_lib.instructor import report

    if result["assignment_id"] in parsed and result["status"] != "invalid_id":
        html = report.feedback_html(result, parsed[result["assignment_id"]])
        write_atomic(
            out / "feedback" / result["student_id"] / f"{result['assignment_id']}.html", html
        )


def _scrub_seed(results: list[dict], seed: str) -> None:
    """The grading seed never reaches feedback (a long enough seed text is blanked out)."""
    if len(seed) < 4:
        return
    for r in results:
        for cell in r.get("cells", []):
            cell["message"] = cell.get("message", "").replace(seed, "<seed>")
        r["reason"] = r.get("reason", "").replace(seed, "<seed>")
        r["status_text"] = r.get("status_text", "").replace(seed, "<seed>")


def _new_pool(
    jobs: int, ctx: Any, hidden_modules: tuple[str, ...], log: Any
) -> cf.ProcessPoolExecutor:
    """The grader processes' pool. Making it can fail for a reason of this machine, not of any
    submission: multiprocessing's resource tracker (a helper process it starts on first use)
    died, and writing to it raises ``BrokenPipeError``; multiprocessing starts a new tracker on
    the next try, so the pool is made again, up to :data:`ATTEMPTS` times."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return cf.ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=ctx,
                initializer=_pool_init,
                initargs=(hidden_modules,),
            )
        except OSError as exc:
            if attempt == ATTEMPTS:
                raise
            log(f"could not start the grader processes ({type(exc).__name__}: {exc}); retrying")
    raise AssertionError("unreachable")


def _run_pool(
    todo: list[dict], jobs: int, log: Any, on_result: Callable[[dict, dict], None]
) -> None:
    """Grade ``todo`` in ``jobs`` grader processes, calling ``on_result(task, result)`` as each
    finishes. A grader fault (a dead process, a sandbox that cannot start, an internal error)
    is retried in a fresh pool, up to :data:`ATTEMPTS` times, then becomes ``grader_error``.
    Ctrl-C: nothing new starts, running submissions get :data:`GRACE_SECONDS` to finish, then their processes
    (and sandboxes) are stopped; :class:`KeyboardInterrupt` is re-raised."""
    pending = [dict(t, attempt=0) for t in todo]
    # After Ctrl-C the pool's queues are abandoned, not closed: keep multiprocessing's resource
    # tracker (a process of its own, started with this environment) from warning about them.
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in os.environ.get("PYTHONWARNINGS", ""):
        os.environ["PYTHONWARNINGS"] = ",".join(
            filter(None, [os.environ.get("PYTHONWARNINGS", ""), quiet])
        )
    ctx = multiprocessing.get_context("spawn")
    done = 0
    while pending:
        pool = _new_pool(jobs, ctx, tuple(pending[0]["hidden_modules"]), log)
        futures: dict[cf.Future, dict] = {}
        retry: list[dict] = []
        try:
            futures = {pool.submit(grade_task, t): t for t in pending}
            for fut in cf.as_completed(futures):
                task = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - a fault of the grader, not a grade
                    why = f"{type(exc).__name__}: {exc}".strip()
                    if task["attempt"] + 1 < ATTEMPTS:
                        log(
                            f"grader fault on {task['student_id']}/{task['assignment_id']} "
                            f"(attempt {task['attempt'] + 1} of {ATTEMPTS}): {why}; retrying"
                        )
                        retry.append(dict(task, attempt=task["attempt"] + 1))
                        continue
                    result = fault_result(task, why)
                done += 1
                on_result(task, result)
                log(
                    f"[{done}/{len(todo)}] {task['student_id']}/{task['assignment_id']}: "
                    f"{result['score']:g}/{result['max_score']:g} {result['status_text']}"
                )
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            running = [f for f in futures if not f.done()]
            finished, _ = cf.wait(running, timeout=GRACE_SECONDS)
            for fut in finished:
                with contextlib.suppress(Exception):
                    on_result(futures[fut], fut.result())
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
        pending = retry


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop the grader processes now: SIGTERM (each kills its sandbox), then SIGKILL."""
    procs = list(getattr(pool, "_processes", {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + 1.0
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _zero_cells(source: nbk.SourceAssignment | None, status: str, why: str) -> list[dict]:
    return [
        {
            "grade_id": t.grade_id,
            "owner": t.owner,
            "points": 0.0,
            "max_points": t.points,
            "status": status,
            "message": why,
        }
        for t in (source.tests if source else [])
    ]


def _plain_result(entry: Entry, source: nbk.SourceAssignment | None) -> dict:
    """The row of a folder that is not graded (invalid_id, refused_link, missing)."""
    return {
        "student_id": entry.student,
        "assignment_id": entry.assignment,
        "score": 0.0,
        "max_score": source.max_score if source else 0.0,
        "status": entry.status,
        "reason": entry.reason,
        "status_text": f"{entry.status}: {entry.reason}",
        "flags": [],
        "cells": _zero_cells(source, "not_run", entry.reason),
        "student_code": {},
        "seconds": 0.0,
    }


def fault_result(task: dict, why: str) -> dict:
    """The row of a submission the grader failed on (after its retries): no grade."""
    key = task["source"]
    if key not in _sources:
        _sources[key] = nbk.load_source(Path(key), task["assignment_id"])
    source = _sources[key]
    text = f"the grader failed, not your code ({why}); it will be graded again"
    return {
        "student_id": task["student_id"],
        "assignment_id": task["assignment_id"],
        "score": 0.0,
        "max_score": source.max_score,
        "status": "grader_error",
        "reason": why,
        "status_text": f"grader_error: {why}",
        "flags": [],
        "cells": _zero_cells(source, "grader_error", text),
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

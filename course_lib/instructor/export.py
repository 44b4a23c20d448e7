"""The gradebook (nbgrader's, through its ``Gradebook`` API) and ``course export``.

Any SQLAlchemy URL works: ``sqlite:///gradebook.db`` (the default, as nbgrader) or
``postgresql://user@host:port/db`` (needs ``psycopg2``). Only the trusted parent process
writes it; student code never sees it. Grades are written per test cell (``auto_score``), so
nbgrader's own tools (formgrader, ``nbgrader export``) read them too.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib.util
import io
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from course_lib.instructor.notebooks import SourceAssignment, load_source

EXPORT_COLUMNS = ["assignment", "student_id", "score", "max_score", "status", "flags"]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename), so an
    interrupted run never leaves half a file for the next one to trust."""
    # This process's own temporary name beside the file (the client is the only writer of
    # OUT; the pid and thread keep two processes or threads apart): cheaper than mkstemp's
    # random names, which counted at the end of a class of 12,000. Created exclusively, never
    # through a link; one left by a killed run is removed first.
    tmp = path.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(3):
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileNotFoundError:  # the folder usually exists: no mkdir call per file
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            os.unlink(tmp)
    else:
        fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_table(path: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    """A CSV file with ``header`` and ``rows``, written atomically."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    write_atomic(path, buf.getvalue())


def _driver_url(db_url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 when that is what we have."""
    import importlib.util

    if db_url.startswith(("postgresql://", "postgres://")):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
            return "postgresql+psycopg2://" + db_url.split("://", 1)[1]
    return db_url


@functools.cache
def alembic_head() -> str:
    """nbgrader's schema version, which a new gradebook is stamped with.

    nbgrader's own ``get_alembic_version`` starts ``alembic heads`` in a subprocess that imports
    nbgrader again: about 4 s on every new gradebook. The head is the one revision of its
    migration scripts that no other script names as its ``down_revision``; read it from them,
    and fall back to nbgrader's way if the scripts do not name exactly one.
    """
    spec = importlib.util.find_spec("nbgrader")
    versions = Path(spec.origin).parent / "alembic" / "versions" if spec and spec.origin else None
    revisions, parents = set(), set()
    for script in sorted(versions.glob("*.py")) if versions else []:
        text = script.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*['\"](\w+)['\"]", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        if revision:
            revisions.add(revision.group(1))
        if down:
            parents.update(re.findall(r"['\"](\w+)['\"]", down.group(1)))
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    from nbgrader.api import get_alembic_version

    return get_alembic_version()


def _gradebook(db_url: str):
    import nbgrader.api
    from nbgrader.api import Gradebook

    # nbgrader runs `alembic` by name to create or upgrade the schema: it lives next to Python.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    db_url = _driver_url(db_url)
    head = alembic_head()
    original = nbgrader.api.get_alembic_version
    nbgrader.api.get_alembic_version = lambda: head  # same value, without the subprocess
    try:
        return Gradebook(db_url)
    except Exception as exc:  # noqa: BLE001 - say which URL and how to fix it
        raise RuntimeError(
            f"cannot open the gradebook at {db_url!r}: {exc}. Use sqlite:///path/to/gradebook.db "
            "or postgresql://user@host:port/database (the server must be running)"
        ) from exc
    finally:
        nbgrader.api.get_alembic_version = original


# Any constant: the PostgreSQL advisory lock that gradebook writers take in turn.
WRITER_LOCK_KEY = 0x636F75727365  # "course"


@contextlib.contextmanager
def one_writer_at_a_time(db_url: str) -> Iterator[None]:
    """Hold the gradebook's writer lock: several ``course export`` or ``course grade`` runs, on
    several machines, may write one gradebook at once and each waits for the others' turn
    (nbgrader creates the schema and each student with separate statements, which collide
    when two writers run them together). PostgreSQL: an advisory lock on a connection of its
    own, released when it closes, even if this process dies; SQLite: an exclusive lock on a
    file next to the database."""
    url = _driver_url(db_url)
    if url.startswith(("postgresql", "postgres:")):
        import sqlalchemy as sa

        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": WRITER_LOCK_KEY})
                conn.commit()
                yield
        finally:
            engine.dispose()
    elif url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        import fcntl

        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    else:
        yield


def write_gradebook(db_url: str, results: list[dict], sources: dict[str, SourceAssignment]) -> None:
    """Record every result: assignment, notebook and grade cells, then one submission each
    (nbgrader's update-or-create, keyed by student and assignment), one writer at a time."""
    with one_writer_at_a_time(db_url):
        _write_gradebook(db_url, results, sources)


def _write_gradebook(
    db_url: str, results: list[dict], sources: dict[str, SourceAssignment]
) -> None:
    gb = _gradebook(db_url)
    # nbgrader commits after every call; one transaction for the whole write instead: a reader
    # sees all of it or none, and the disk syncs once, not once per student (many times faster).
    commit = gb.db.commit
    gb.db.commit = gb.db.flush
    try:
        warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own SAWarning
        for aid, src in sources.items():
            gb.update_or_create_assignment(aid)
            gb.update_or_create_notebook(aid, aid)
            for test in src.tests:
                gb.update_or_create_grade_cell(
                    test.grade_id, aid, aid, max_score=test.points, cell_type="code"
                )
            for sol in src.solutions:
                gb.update_or_create_solution_cell(sol.grade_id, aid, aid)
        _write_submissions(gb.db, results)
        commit()
    except BaseException:
        gb.db.rollback()
        raise
    finally:
        gb.db.commit = commit
        gb.close()


def _write_submissions(db, results: list[dict]) -> None:
    """Every result's submission, in bulk statements on nbgrader's own tables and models.

    The rows are those of nbgrader's ``update_or_create_submission`` (a submission mirrors every
    notebook of its assignment: one grade per grade and task cell, one comment per solution and
    task cell), then each test cell's ``auto_score``. nbgrader's API costs about 55 ms per
    submission (a query and a flush per cell, measured by ``benchmarks/dask_scaling.py``): a
    class of 12,000 would wait 11 minutes for it at the end of a run; this takes seconds.
    """
    import sqlalchemy as sa
    from nbgrader import api as nb

    known = set(db.scalars(sa.select(nb.Student.id)))
    new_students = sorted({r["student_id"] for r in results} - known)
    if new_students:
        db.connection().execute(nb.Student.__table__.insert(), [{"id": s} for s in new_students])
    by_aid: dict[str, list[dict]] = {}
    for r in results:
        by_aid.setdefault(r["assignment_id"], []).append(r)
    for aid, rows in sorted(by_aid.items()):
        assignment = db.scalars(sa.select(nb.Assignment).where(nb.Assignment.name == aid)).first()
        if assignment is None:
            raise RuntimeError(
                f"the gradebook has no assignment {aid!r} and no source notebook was given for "
                f"it: pass --source pointing at the folder with {aid}/{aid}.ipynb"
            )
        _write_assignment(db, nb, assignment, rows)


def _write_assignment(db, nb, assignment, rows: list[dict]) -> None:
    import sqlalchemy as sa

    SA, SN = nb.SubmittedAssignment, nb.SubmittedNotebook
    submissions = dict(
        db.execute(sa.select(SA.student_id, SA.id).where(SA.assignment_id == assignment.id)).all()
    )
    notebooks = dict(  # (student, notebook id) -> submitted notebook id
        ((sid, nid), snid)
        for sid, nid, snid in db.execute(
            sa.select(SA.student_id, SN.notebook_id, SN.id)
            .join(SN, SN.assignment_id == SA.id)
            .where(SA.assignment_id == assignment.id)
        )
    )

    grades = {
        (snid, cid): gid
        for gid, snid, cid in db.execute(
            sa.select(nb.Grade.id, nb.Grade.notebook_id, nb.Grade.cell_id)
            .join(SN, nb.Grade.notebook_id == SN.id)
            .join(SA, SN.assignment_id == SA.id)
            .where(SA.assignment_id == assignment.id)
        )
    }
    comments = set(  # (submitted notebook id, cell id)
        db.execute(
            sa.select(nb.Comment.notebook_id, nb.Comment.cell_id)
            .join(SN, nb.Comment.notebook_id == SN.id)
            .join(SA, SN.assignment_id == SA.id)
            .where(SA.assignment_id == assignment.id)
        ).all()
    )
    layout = [
        (
            notebook,
            {c.name: c.id for c in notebook.grade_cells},
            [c.id for c in notebook.grade_cells] + [c.id for c in notebook.task_cells],
            [c.id for c in notebook.solution_cells] + [c.id for c in notebook.task_cells],
        )
        for notebook in assignment.notebooks
    ]
    new_sa, new_sn, new_grades, new_comments = [], [], [], []
    set_grades, set_flags = [], []
    for r in rows:
        sid = r["student_id"]
        if sid not in submissions:
            submissions[sid] = nb.new_uuid()
            new_sa.append(
                {"id": submissions[sid], "assignment_id": assignment.id, "student_id": sid}
            )
        for notebook, by_name, graded, commented in layout:
            mine = notebook.name == assignment.name
            flagged = mine and bool(r["flags"])
            snid = notebooks.get((sid, notebook.id))
            if snid is None:
                snid = notebooks[(sid, notebook.id)] = nb.new_uuid()
                new_sn.append(
                    {
                        "id": snid,
                        "assignment_id": submissions[sid],
                        "notebook_id": notebook.id,
                        "flagged": flagged,
                    }
                )
            elif mine:
                set_flags.append({"id": snid, "flagged": flagged})
            scores: dict[str, float] = {}
            if mine:
                for cell in r["cells"]:
                    if cell["grade_id"] not in by_name:
                        raise RuntimeError(
                            f"the result of {sid}/{assignment.name} has the test cell "
                            f"{cell['grade_id']!r}, which its source notebook lacks: grade it "
                            "again with the current source (course grade)"
                        )
                    scores[by_name[cell["grade_id"]]] = float(cell["points"])
            for cid in graded:
                gid = grades.get((snid, cid))
                if gid is None:
                    new_grades.append(
                        {
                            "id": nb.new_uuid(),
                            "notebook_id": snid,
                            "cell_id": cid,
                            "auto_score": scores.get(cid),
                            "needs_manual_grade": cid not in scores,  # nbgrader's default: True
                        }
                    )
                elif cid in scores:
                    set_grades.append(
                        {"id": gid, "auto_score": scores[cid], "needs_manual_grade": False}
                    )
            for cid in commented:
                if (snid, cid) not in comments:
                    new_comments.append({"id": nb.new_uuid(), "notebook_id": snid, "cell_id": cid})
    # Plain executemany on the tables (every row has the same keys): the ORM's bulk insert
    # would spend as long again on each of the class's ~10 rows per submission.
    conn = db.connection()
    for model, values in (
        (SA, new_sa),
        (SN, new_sn),
        (nb.Grade, new_grades),
        (nb.Comment, new_comments),
    ):
        if values:
            conn.execute(model.__table__.insert(), values)
    for model, values in ((nb.Grade, set_grades), (SN, set_flags)):
        if values:
            db.execute(sa.update(model), values)


def read_gradebook(db_url: str) -> list[dict]:
    """(assignment, student_id, score, max_score) for every submission in the gradebook."""
    gb = _gradebook(db_url)
    try:
        rows = []
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            for student in sorted(gb.students, key=lambda s: s.id):
                try:
                    sub = gb.find_submission(assignment.name, student.id)
                except Exception:  # noqa: BLE001 - nbgrader's MissingEntry: no submission
                    continue
                rows.append(
                    {
                        "assignment": assignment.name,
                        "student_id": student.id,
                        "score": float(sub.score),
                        "max_score": float(sub.max_score),
                        "flagged": any(nb.flagged for nb in sub.notebooks),
                    }
                )
        return rows
    finally:
        gb.close()


def export(
    out_csv: Path,
    db_url: str,
    results_dir: Path | None = None,
    source_dir: Path = Path("solutions"),
) -> list[dict]:
    """``course export``: optionally load OUT's results into the gradebook, then write a CSV.

    The CSV has ``assignment,student_id,score,max_score,status,flags``; status and flags come
    from the grading results when ``results_dir`` is given (they are not gradebook fields).
    """
    extra: dict[tuple[str, str], dict] = {}
    if results_dir is not None:
        state = results_dir / ".state"
        if not state.is_dir():
            raise RuntimeError(
                f"{results_dir} has no grading results: run `course grade ... --out {results_dir}` first"
            )
        results = [json.loads(p.read_text())["result"] for p in sorted(state.glob("*.json"))]
        aids = sorted({r["assignment_id"] for r in results})
        sources = {a: load_source(source_dir / a / f"{a}.ipynb", a) for a in aids}
        write_gradebook(db_url, results, sources)
        extra = {(r["assignment_id"], r["student_id"]): r for r in results}
    rows = read_gradebook(db_url)
    table = []
    for row in rows:
        r = extra.get((row["assignment"], row["student_id"]))
        status = r["status_text"] if r else ""
        flags = ";".join(r["flags"]) if r else ("flagged" if row["flagged"] else "")
        score, max_score = f"{row['score']:g}", f"{row['max_score']:g}"
        table.append([row["assignment"], row["student_id"], score, max_score, status, flags])
    write_table(out_csv, EXPORT_COLUMNS, table)
    return rows

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
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from course_lib.instructor.notebooks import SourceAssignment, load_source

EXPORT_COLUMNS = ["assignment", "student_id", "score", "max_score", "status", "flags"]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename), so an
    interrupted run never leaves half a file for the next one to trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


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
        for r in results:
            sid, aid = r["student_id"], r["assignment_id"]
            gb.update_or_create_student(sid)
            gb.update_or_create_submission(aid, sid)
            for cell in r["cells"]:
                grade = gb.find_grade(cell["grade_id"], aid, aid, sid)
                grade.auto_score = float(cell["points"])
                grade.needs_manual_grade = False
            submission = gb.find_submission(aid, sid)
            submission.extra_credit = None
            nb = gb.find_submission_notebook(aid, aid, sid)
            nb.flagged = bool(r["flags"])
        commit()
    except BaseException:
        gb.db.rollback()
        raise
    finally:
        gb.db.commit = commit
        gb.close()


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

"""Canvas and Moodle in and out: import their submission zips, export grade files they import.

Import (``course lms import canvas|moodle ZIP --assignment A --roster roster.csv --into
submitted/``) writes nbgrader's layout ``submitted/<student_id>/<A>/<A>.ipynb`` plus
``.lms.json`` (the LMS, its ids, the late mark, and the time the LMS stored for the file, which
the late policy uses when there is no ``timestamp.txt``). Students are found through the roster's
``lms_id``; a file from an LMS account that is not on the roster is imported as
``lms_<id>`` so that it is graded and flagged ``not_on_roster`` rather than lost.

File names, as the LMSs write them:

- Canvas, *Download Submissions*: a flat zip of ``<login>_<user id>_<submission id>_<file>``,
  with ``LATE_`` after the login when Canvas marked the submission late
  (``doejane_LATE_4242_90017_05_attention.ipynb``); a file uploaded again gets ``-1`` before its
  extension. ``lms_id`` is the Canvas user id.
- Moodle, *Download all submissions*: a folder per student and plugin,
  ``<Full Name>_<participant id>_assignsubmission_file_/<file>`` (older Moodle: the same prefix
  on flat file names). ``lms_id`` is the participant id (``Participant N`` in Moodle's grading
  worksheet).

Export: ``course lms export canvas`` writes Canvas's gradebook CSV (``Student, ID, SIS User ID,
SIS Login ID, Section`` and one column per assignment, named ``<name> (<canvas id>)`` when
``course.toml`` gives ``canvas_id``; a ``Points Possible`` row); ``course lms export moodle``
writes Moodle's offline grading worksheet for one assignment (``Identifier, Full name, Email
address, Grade, Maximum Grade, Feedback comments``), which *Upload grading worksheet* accepts.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from course_lib.instructor.export import write_atomic, write_table
from course_lib.instructor.roster import ClassSetupError, Roster

CANVAS_NAME = re.compile(
    r"^(?P<login>[^_/]+)_(?:(?P<late>LATE)_)?(?P<user>\d+)_(?P<submission>\d+)_(?P<file>.+)$"
)
MOODLE_PREFIX = re.compile(
    r"^(?P<name>.+?)_(?P<user>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.*)$"
)
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = [
    "Identifier",
    "Full name",
    "Email address",
    "Grade",
    "Maximum Grade",
    "Feedback comments",
]
RESUBMITTED = re.compile(r"-\d+(?=\.ipynb$)")


@dataclass
class ImportReport:
    imported: dict[str, str] = field(default_factory=dict)  # student_id -> original file name
    unknown_accounts: list[str] = field(default_factory=list)  # lms ids not on the roster
    skipped: list[str] = field(default_factory=list)  # entries that are not notebooks


@dataclass
class _Entry:
    lms_id: str
    display: str
    file: str
    info: zipfile.ZipInfo
    late: bool = False
    submission_id: str = ""


def _entry_time(info: zipfile.ZipInfo, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime(*info.date_time, tzinfo=tz)


def _choose(entries: list[_Entry], assignment: str) -> _Entry:
    """One notebook per student: the one named after the assignment, else the newest."""
    named = [
        e
        for e in entries
        if RESUBMITTED.sub("", PurePosixPath(e.file).name) == f"{assignment}.ipynb"
    ]
    pool = named or entries
    return max(pool, key=lambda e: (e.info.date_time, e.file))


def _write(
    into: Path,
    student: str,
    assignment: str,
    zf: zipfile.ZipFile,
    entry: _Entry,
    lms: str,
    tz: dt.tzinfo,
) -> None:
    target = into / student / assignment
    target.mkdir(parents=True, exist_ok=True)
    with zf.open(entry.info) as src, open(target / f"{assignment}.ipynb", "wb") as dst:
        shutil.copyfileobj(src, dst)
    meta = {
        "lms": lms,
        "lms_id": entry.lms_id,
        "display_name": entry.display,
        "file": entry.file,
        "late_in_lms": entry.late,
        "submission_id": entry.submission_id,
        "submitted_at": _entry_time(entry.info, tz).isoformat(timespec="seconds"),
    }
    write_atomic(target / ".lms.json", json.dumps(meta, indent=1))


def _import(
    archive: Path,
    assignment: str,
    roster: Roster,
    into: Path,
    tz: dt.tzinfo,
    lms: str,
    parse,
) -> ImportReport:
    if not zipfile.is_zipfile(archive):
        raise ClassSetupError(f"{archive} is not a zip file: download the submissions again")
    by_lms = roster.by_lms_id()
    if not by_lms:
        raise ClassSetupError(
            "the roster has no lms_id column values: add each student's "
            f"{'Canvas user id' if lms == 'canvas' else 'Moodle participant id'} as lms_id"
        )
    report = ImportReport()
    with zipfile.ZipFile(archive) as zf:
        groups: dict[str, list[_Entry]] = {}
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = info.filename
            if name.startswith("/") or ".." in PurePosixPath(name).parts:
                raise ClassSetupError(f"{archive} holds an unsafe path {name!r}; refusing it")
            entry = parse(name, info)
            if entry is None or not entry.file.lower().endswith(".ipynb"):
                report.skipped.append(name)
                continue
            groups.setdefault(entry.lms_id, []).append(entry)
        for lms_id, entries in sorted(groups.items()):
            student = by_lms.get(lms_id)
            sid = student.student_id if student else f"lms_{lms_id}"
            if student is None:
                report.unknown_accounts.append(lms_id)
            chosen = _choose(entries, assignment)
            _write(into, sid, assignment, zf, chosen, lms, tz)
            report.imported[sid] = chosen.file
    return report


def _parse_canvas(name: str, info: zipfile.ZipInfo) -> _Entry | None:
    base = PurePosixPath(name).name
    m = CANVAS_NAME.match(base)
    if not m:
        return None
    return _Entry(
        m["user"], m["login"], m["file"], info, late=bool(m["late"]), submission_id=m["submission"]
    )


def _parse_moodle(name: str, info: zipfile.ZipInfo) -> _Entry | None:
    parts = PurePosixPath(name).parts
    head = parts[0]
    if len(parts) >= 2:
        m = MOODLE_PREFIX.match(head)
        if not m or m["file"]:
            return None
        file = "/".join(parts[1:])
    else:
        m = MOODLE_PREFIX.match(head)
        if not m or not m["file"]:
            return None
        file = m["file"]
    if m["plugin"] != "file":
        return None
    return _Entry(m["user"], m["name"], file, info)


def import_canvas(
    archive: Path, assignment: str, roster: Roster, into: Path, tz: dt.tzinfo = dt.UTC
) -> ImportReport:
    """Canvas "Download Submissions" zip → ``into/<student>/<assignment>/``."""
    return _import(archive, assignment, roster, into, tz, "canvas", _parse_canvas)


def import_moodle(
    archive: Path, assignment: str, roster: Roster, into: Path, tz: dt.tzinfo = dt.UTC
) -> ImportReport:
    """Moodle "Download all submissions" zip → ``into/<student>/<assignment>/``."""
    return _import(archive, assignment, roster, into, tz, "moodle", _parse_moodle)


# ---------------------------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------------------------


def load_class_rows(out: Path) -> list[dict]:
    path = out / "class.json"
    if not path.is_file():
        raise ClassSetupError(
            f"{out} has no class results (class.json): run `course grade ... --out {out}` first"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _score(x: float) -> str:
    return f"{round(float(x), 2):g}"


def export_canvas(
    rows: list[dict], roster: Roster, path: Path, canvas_ids: dict[str, str] | None = None
) -> int:
    """Canvas gradebook CSV; returns the number of students written. Students without an
    lms_id cannot be matched by Canvas's ``ID`` and are matched by ``SIS User ID``."""
    canvas_ids = canvas_ids or {}
    aids = sorted({r["assignment_id"] for r in rows})
    columns = [f"{a} ({canvas_ids[a]})" if canvas_ids.get(a) else a for a in aids]
    scores = {(r["student_id"], r["assignment_id"]): r for r in rows}
    max_by = {}
    for r in rows:
        max_by.setdefault(r["assignment_id"], float(r["max_score"]))
    table = [["Points Possible", "", "", "", ""] + [_score(max_by[a]) for a in aids]]
    for sid, s in roster.students.items():
        line = [s.name or sid, s.lms_id, sid, s.email, ""]
        for a in aids:
            r = scores.get((sid, a))
            line.append(_score(r["score"]) if r else "")
        table.append(line)
    write_table(path, CANVAS_COLUMNS + columns, table)
    return len(roster)


def export_moodle(rows: list[dict], roster: Roster, assignment: str, path: Path) -> int:
    """Moodle grading worksheet for ``assignment`` (students with an lms_id only: Moodle finds
    them by ``Participant <id>``)."""
    chosen = {r["student_id"]: r for r in rows if r["assignment_id"] == assignment}
    if not chosen:
        raise ClassSetupError(f"no results for assignment {assignment!r} to export")
    max_score = next(iter(chosen.values()))["max_score"]
    table, missing_ids = [], []
    for sid, s in roster.students.items():
        if not s.lms_id:
            missing_ids.append(sid)
            continue
        r = chosen.get(sid)
        comment = ""
        if r and r.get("late_by"):
            comment = f"late by {r['late_by']}, penalty {_score(r['penalty'])} points"
        if r and r.get("override") is not None:
            # As on the feedback page: the points, never the reason (the instructor's note).
            comment = (comment + "; " if comment else "") + "score set by your instructor"
        table.append(
            [
                f"Participant {s.lms_id}",
                s.name or sid,
                s.email,
                _score(r["score"]) if r else "",
                _score(max_score),
                comment,
            ]
        )
    if missing_ids:
        raise ClassSetupError(
            f"roster students without lms_id: {', '.join(missing_ids[:10])}"
            f"{' ...' if len(missing_ids) > 10 else ''}; Moodle matches rows by participant id, "
            "so add their lms_id to the roster"
        )
    write_table(path, MOODLE_COLUMNS, table)
    return len(table)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))

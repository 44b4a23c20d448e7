"""The class layer on top of ``course grade``'s results: roster, written answers, late policy,
overrides and copying, into one row per (student, assignment).

The grading engine (:mod:`.pipeline`) computes what code earns; this module decides what a
student gets. Order, per row: ``auto_score`` (the test cells' points: the engine's, except where
a TA typed a score on a test cell in formgrader, flagged ``formgrader_mark:<cell>``) +
``manual_score`` (written answers, merged from ``--manual`` and from the gradebook, where
formgrader keeps a TA's marks) + extra credit typed in formgrader (flagged
``extra_credit:<cell>``) = ``raw_score``, the total ``nbgrader export`` gives; minus the late
``penalty`` = ``score``; an override, when there is one, replaces ``score``. Nothing here changes the engine's results on disk
(``OUT/.state``), so a re-grade recomputes them and this layer is applied again.

OUT gains ``grades.csv`` with :data:`CLASS_COLUMNS` (replacing the engine's), ``report.html``
with the class section, ``similarity/`` and ``manual/`` per assignment; every feedback page is
written again with its row's grade (:func:`write_feedback`), so a student never reads a total
other than the one in ``grades.csv``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from course_lib.instructor import late as late_mod
from course_lib.instructor import overrides as ov
from course_lib.instructor.export import write_atomic, write_table
from course_lib.instructor.notebooks import SourceAssignment
from course_lib.instructor.roster import Roster, apply_roster

CLASS_COLUMNS = [
    "student_id",
    "name",
    "assignment_id",
    "auto_score",
    "manual_score",
    "raw_score",
    "late_by",
    "penalty",
    "override",
    "score",
    "max_score",
    "status",
    "flags",
    "submitted_at",
    "time_source",
    "override_reason",
    "feedback",
]


@dataclass
class ClassOptions:
    """What the instructor passed to ``course grade`` beyond the engine's options."""

    roster: Roster | None = None
    course: late_mod.CoursePolicy | None = None
    overrides_path: Path | None = None
    manual: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    written: dict[str, dict[str, float]] = field(default_factory=dict)  # aid -> grade_id -> pts
    written_cells: dict[str, list] = field(default_factory=dict)  # aid -> [manual.WrittenCell]
    mark_origins: dict[tuple[str, str, str], str] = field(default_factory=dict)  # manual.Mark
    similarity: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # extra flags
    # Typed in formgrader: scores on test cells, extra credit on any cell (formgrade.cell_marks).
    cell_marks: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    extra_credit: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def class_rows(
    results: list[dict],
    options: ClassOptions,
    times: dict[tuple[str, str], tuple[dt.datetime | None, str]] | None = None,
) -> list[dict]:
    """The engine's results with the class rules applied (pure: writes nothing)."""
    rows = apply_roster(results, options.roster)
    in_force = ov.current(ov.load(options.overrides_path))
    times = times or {}
    for r in rows:
        key = (r["student_id"], r["assignment_id"])
        apply_class(r, options, times.get(key, (None, "none")), in_force)
    known = {(r["student_id"], r["assignment_id"]) for r in rows}
    for key in in_force.keys() - known:
        # An override for a row that does not exist is kept visible rather than dropped.
        rows.append(_orphan_override(in_force[key]))
    return rows


def apply_class(
    r: dict,
    options: ClassOptions,
    time: tuple[dt.datetime | None, str],
    in_force: dict[tuple[str, str], ov.Override],
) -> None:
    """One row's class rules, in place: :func:`class_rows` without the roster's rows."""
    key = (r["student_id"], r["assignment_id"])
    aid = r["assignment_id"]
    student = options.roster.students.get(r["student_id"]) if options.roster else None
    r["name"] = student.name if student else ""
    r["auto_score"] = float(r["score"])
    r["auto_max"] = float(r["max_score"])
    r["cell_marks"], r["extra_credit"], r["extra_credit_cells"] = {}, 0.0, {}
    if r.get("status") != "missing":
        engine = {str(c["grade_id"]): float(c["points"]) for c in r.get("cells", [])}
        for gid, points in sorted(options.cell_marks.get(key, {}).items()):
            before = engine.get(gid, 0.0)
            if points != before:
                r["cell_marks"][gid] = (before, points)
                r["auto_score"] += points - before
                r["flags"] = [*r["flags"], f"formgrader_mark:{gid}"]
        bonus = options.extra_credit.get(key, {})
        r["extra_credit"] = sum(bonus.values())
        r["extra_credit_cells"] = dict(sorted(bonus.items()))
        r["flags"] = [*r["flags"], *(f"extra_credit:{gid}" for gid in sorted(bonus))]
    written = options.written.get(aid, {})
    marks = options.manual.get(key, {})
    r["manual_score"] = sum(marks.values())
    # Per written cell: its mark (None: not marked yet) out of its points.
    r["written_marks"] = {
        gid: {"points": marks.get(gid), "max_points": pts} for gid, pts in written.items()
    }
    r["manual_graded"] = bool(written) and set(written) <= set(marks)
    r["max_score"] = r["auto_max"] + sum(written.values())
    if written and r.get("status") != "missing" and not r["manual_graded"]:
        r["flags"] = [*r["flags"], "written_ungraded"]
    r["raw_score"] = r["auto_score"] + r["manual_score"] + r["extra_credit"]
    when, source = time
    late_mod.apply_late(r, options.course, when, source)
    r["computed_score"] = max(0.0, r["raw_score"] - r["penalty"])
    o = in_force.get(key)
    r["override"] = o.points if o else None
    r["override_reason"] = o.reason if o else ""
    r["override_by"] = f"{o.recorded_by}, {o.recorded_at}" if o else ""
    r["score"] = o.points if o else r["computed_score"]
    extra = options.similarity.get(key, [])
    r["flags"] = r["flags"] + [f for f in extra if f not in r["flags"]]
    has_feedback = r.get("status") != "missing"
    r["feedback"] = f"feedback/{r['student_id']}/{aid}.html" if has_feedback else ""


def _orphan_override(o: ov.Override) -> dict:
    return {
        "student_id": o.student_id,
        "assignment_id": o.assignment_id,
        "name": "",
        "auto_score": 0.0,
        "manual_score": 0.0,
        "extra_credit": 0.0,
        "extra_credit_cells": {},
        "written_marks": {},
        "cell_marks": {},
        "raw_score": 0.0,
        "late_by": "",
        "penalty": 0.0,
        "override": o.points,
        "override_reason": o.reason,
        "override_by": f"{o.recorded_by}, {o.recorded_at}",
        "score": o.points,
        "max_score": 0.0,
        "status": "override_only",
        "status_text": "override_only: no submission and not on the roster",
        "flags": ["override_without_submission"],
        "submitted_at": "",
        "time_source": "",
        "feedback": "",
        "cells": [],
    }


def csv_row(r: dict) -> list[str]:
    return [
        r["student_id"],
        r.get("name", ""),
        r["assignment_id"],
        _fmt(r["auto_score"]),
        _fmt(r["manual_score"]) if r.get("manual_graded") or r["manual_score"] else "",
        _fmt(r["raw_score"]),
        r["late_by"],
        _fmt(r["penalty"]),
        "" if r["override"] is None else _fmt(r["override"]),
        _fmt(r["score"]),
        _fmt(r["max_score"]),
        r.get("status_text") or r["status"],
        ";".join(r["flags"]),
        r.get("submitted_at", ""),
        r.get("time_source", ""),
        r.get("override_reason", ""),
        r.get("feedback", ""),
    ]


def write_class_csv(path: Path, rows: list[dict]) -> None:
    write_table(path, CLASS_COLUMNS, (csv_row(r) for r in rows))


# ---------------------------------------------------------------------------------------------
# The class section of report.html.
# ---------------------------------------------------------------------------------------------

_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.style.cursor='pointer';
  th.addEventListener('click', function(){
    var table=th.closest('table'), body=table.tBodies[0];
    var rows=Array.prototype.slice.call(body.rows);
    var asc=th.getAttribute('data-dir')!=='asc';
    table.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-dir');});
    th.setAttribute('data-dir', asc?'asc':'desc');
    rows.sort(function(a,b){
      var x=a.cells[col].getAttribute('data-v')||a.cells[col].textContent;
      var y=b.cells[col].getAttribute('data-v')||b.cells[col].textContent;
      var nx=parseFloat(x), ny=parseFloat(y);
      var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
      return asc?c:-c;
    });
    rows.forEach(function(r){body.appendChild(r);});
  });
});
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _link(r: dict) -> str:
    if not r.get("feedback"):
        return ""
    return f"<a href='{_e(r['feedback'])}'>feedback</a>"


def class_section_html(rows: list[dict], extra_links: dict[str, str] | None = None) -> str:
    """Per-student table (sortable in the browser, no server) and the lists of missing, late,
    flagged and overridden rows."""
    head = (
        "<tr><th>student</th><th>name</th><th>assignment</th><th>raw</th><th>late by</th>"
        "<th>penalty</th><th>override</th><th>score</th><th>max</th><th>status</th>"
        "<th>flags</th><th>time (source)</th><th>feedback</th></tr>"
    )
    body = []
    for r in rows:
        body.append(
            "<tr>"
            f"<td>{_e(r['student_id'])}</td><td>{_e(r.get('name', ''))}</td>"
            f"<td>{_e(r['assignment_id'])}</td><td>{_fmt(r['raw_score'])}</td>"
            f"<td data-v='{r.get('late_seconds', 0):.0f}'>{_e(r['late_by'])}</td>"
            f"<td>{_fmt(r['penalty'])}</td>"
            f"<td>{'' if r['override'] is None else _fmt(r['override'])}</td>"
            f"<td>{_fmt(r['score'])}</td><td>{_fmt(r['max_score'])}</td>"
            f"<td>{_e(r['status'])}</td><td>{_e('; '.join(r['flags']))}</td>"
            f"<td>{_e(r.get('submitted_at', ''))}"
            f"{' (' + _e(r['time_source']) + ')' if r.get('time_source') else ''}</td>"
            f"<td>{_link(r)}</td></tr>"
        )

    def listing(title: str, anchor: str, chosen: list[dict], detail: Callable[[dict], str]) -> str:
        items = "".join(
            f"<li>{_e(r['student_id'])} / {_e(r['assignment_id'])}: {detail(r)} {_link(r)}</li>"
            for r in chosen
        )
        return f"<h3 id='{anchor}'>{_e(title)} ({len(chosen)})</h3>" + (
            f"<ul>{items}</ul>" if items else "<p>none</p>"
        )

    missing = [r for r in rows if r["status"] == "missing"]
    late_rows = [r for r in rows if r.get("late_seconds", 0) > 0]
    flagged = [r for r in rows if r["flags"]]
    overridden = [r for r in rows if r["override"] is not None]
    marked = [r for r in rows if r.get("cell_marks") or r.get("extra_credit")]
    links = "".join(
        f"<li><a href='{_e(href)}'>{_e(text)}</a></li>"
        for text, href in (extra_links or {}).items()
    )
    return (
        "<h2>Class</h2>"
        + (f"<ul>{links}</ul>" if links else "")
        + "<p>Click a column heading to sort.</p>"
        + "<table class='sortable' id='class-table'><thead>"
        + head
        + "</thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
        + listing("Missing", "missing", missing, lambda r: "no submission")
        + listing(
            "Late",
            "late",
            late_rows,
            lambda r: (
                f"late by {_e(r['late_by'])}, penalty {_fmt(r['penalty'])} "
                f"({r['penalty_percent']:g} %), time from {_e(r['time_source'])}"
            ),
        )
        + listing("Flagged", "flagged", flagged, lambda r: _e("; ".join(r["flags"])))
        + listing(
            "Overridden",
            "overridden",
            overridden,
            lambda r: (
                f"{_fmt(r['computed_score'] if 'computed_score' in r else 0)} → "
                f"{_fmt(r['override'])}: {_e(r['override_reason'])} ({_e(r.get('override_by', ''))})"
            ),
        )
        + listing("Marked in formgrader", "formgrader-marks", marked, _formgrader_detail)
        + f"<script>{_SORT_JS}</script>"
    )


def _formgrader_detail(r: dict) -> str:
    """A TA's scores on test cells (engine's points → TA's) and extra credit, for the report."""
    parts = [
        f"{_e(gid)} {_fmt(before)} → {_fmt(after)}"
        for gid, (before, after) in sorted(r.get("cell_marks", {}).items())
    ]
    if r.get("extra_credit"):
        parts.append(f"extra credit {_fmt(r['extra_credit'])}")
    return "; ".join(parts) + " (typed in formgrader)"


def write_class_outputs(
    out: Path,
    rows: list[dict],
    report_html: str,
    extra_links: dict[str, str] | None = None,
) -> None:
    """grades.csv with the class columns, class.json (the rows, for LMS export) and report.html
    with the class section inserted before the engine's sections."""
    write_class_csv(out / "grades.csv", rows)
    keep = [
        {k: v for k, v in r.items() if k not in ("cells", "student_code", "answers", "fingerprint")}
        for r in rows
    ]
    # No indent: the C encoder, several times faster on a class of thousands.
    write_atomic(out / "class.json", json.dumps(keep, default=str))
    section = class_section_html(rows, extra_links)
    marker = "</h1>"
    at = report_html.find(marker)
    page = (
        report_html[: at + len(marker)] + section + report_html[at + len(marker) :]
        if at >= 0
        else report_html.replace("</body>", section + "</body>")
    )
    write_atomic(out / "report.html", page)


def changed_by_class(r: dict) -> bool:
    """Whether the class layer made ``r``'s grade other than the tests' points alone (or has
    something to say about it: written cells, a late submission, an override)."""
    return bool(
        r.get("cell_marks")
        or r.get("extra_credit_cells")
        or r.get("written_marks")
        or r.get("late_by")
        or r.get("penalty")
        or r.get("override") is not None
        or r["score"] != r["auto_score"]
        or r["max_score"] != r["auto_max"]
    )


def _page_digest(page: str) -> bytes:
    return hashlib.blake2b(page.encode("utf-8"), digest_size=16).digest()


def _class_page(r: dict, source: SourceAssignment, answers: dict[str, str] | None) -> str:
    """A row's feedback page: with its grade where the class layer changed it (or has something
    to say about it), else the engine's page as it was."""
    from course_lib.instructor import report

    return report.feedback_html(r, source, r if changed_by_class(r) else None, answers)


def write_feedback(
    out: Path,
    rows: list[dict],
    sources: dict[str, SourceAssignment],
    answers: dict[tuple[str, str], dict[str, str]] | None = None,
    written: dict[tuple[str, str], bytes] | None = None,
) -> None:
    """Write every row's feedback page again with its grade as ``grades.csv`` records it (the
    engine wrote it with the tests' points alone), and make the ``feedback`` column name
    exactly the pages that exist: a row the engine wrote no page for (an invalid id, no source
    notebook) gets no link, and a ``missing`` row whose page the engine wrote (a student folder
    without the assignment) gets its page rewritten and linked. ``written``: the digests of the
    pages :class:`ClassPages` wrote during this run; a page whose content is the same is not
    written again."""
    answers = answers or {}
    written = written or {}
    for r in rows:
        sid, aid = r["student_id"], r["assignment_id"]
        path = out / "feedback" / sid / f"{aid}.html"
        writable = aid in sources and r["status"] not in ("invalid_id", "override_only")
        if writable and (r.get("feedback") or path.is_file()):
            page = _class_page(r, sources[aid], answers.get((sid, aid)))
            if written.get((sid, aid)) != _page_digest(page) or not path.is_file():
                write_atomic(path, page)
            r["feedback"] = f"feedback/{sid}/{aid}.html"
        else:
            r["feedback"] = ""


def row_answers(r: dict, cells: list, submissions: Path) -> dict[str, str]:
    """A readable row's written answers: those the engine read as its result arrived, or, for a
    result stored by an older run, read from its notebook now."""
    from course_lib.instructor import manual

    kept = r.get("answers")
    if isinstance(kept, dict) and set(kept) == {c.grade_id for c in cells}:
        return kept
    folder = submissions / r["student_id"] / r["assignment_id"]
    nb = folder / f"{r['assignment_id']}.ipynb"
    if not nb.exists():
        found = sorted(folder.glob("*.ipynb"))
        nb = found[0] if len(found) == 1 else nb
    return manual.answers(nb, cells)


class ClassPages:
    """``course grade``'s feedback pages written as the results arrive (``pipeline.grade``'s
    ``feedback``), each with the grade the class layer gives its row from what :func:`prepare`
    read: roster, late rules and submission times, overrides, written marks, formgrader's
    marks. :func:`finish` computes every page again from what the gradebook holds at the end
    and writes only those that differ (a TA who marked while the run graded), so the end of a
    large run no longer writes every page a second time."""

    def __init__(self, options: ClassOptions, submissions: Path) -> None:
        self.options, self.submissions = options, submissions
        self.in_force = ov.current(ov.load(options.overrides_path))
        self.times: dict[tuple[str, str], tuple[dt.datetime | None, str]] = {}
        self.digests: dict[tuple[str, str], bytes] = {}

    def __call__(self, out: Path, result: dict, sources: dict[str, SourceAssignment]) -> None:
        sid, aid = result["student_id"], result["assignment_id"]
        if aid not in sources or result["status"] == "invalid_id":
            return  # no page, as the engine writes none
        key = (sid, aid)
        time = self.times[key] = late_mod.submission_time(self.submissions / sid / aid)
        row = dict(result, flags=list(result.get("flags", [])))
        apply_class(row, self.options, time, self.in_force)
        cells = self.options.written_cells.get(aid)
        answers = (
            row_answers(row, cells, self.submissions)
            if cells and row["status"] in READABLE_STATUSES
            else None
        )
        page = _class_page(row, sources[aid], answers)
        write_atomic(out / "feedback" / sid / f"{aid}.html", page)
        self.digests[key] = _page_digest(page)


# ---------------------------------------------------------------------------------------------
# ``course grade`` with the class options: check every input first, then grade, then apply.
# ---------------------------------------------------------------------------------------------


@dataclass
class ClassInputs:
    roster_path: Path | None = None
    course_path: Path | None = None
    overrides_path: Path | None = None
    manual_paths: list[Path] = field(default_factory=list)
    similarity_threshold: float = 0.8
    db_url: str | None = None  # the gradebook course grade wrote (default OUT/gradebook.db)
    out: Path | None = None  # OUT, where the default gradebook and the marks ledger live

    def gradebook_url(self) -> str | None:
        if self.db_url:
            return self.db_url
        if self.out is None:
            return None
        return f"sqlite:///{(self.out / 'gradebook.db').resolve()}"


def known_assignments(source_dir: Path) -> set[str]:
    return {p.parent.name for p in source_dir.glob("*/*.ipynb") if p.stem == p.parent.name}


def merged_marks(
    inputs: ClassInputs,
    written: dict[str, list],
    warn: Callable[[str], None] | None = None,
    origins: dict[tuple[str, str, str], str] | None = None,
    seen: dict[tuple[str, str, str], float] | None = None,
    entries: list | None = None,
) -> dict[tuple[str, str], dict[str, float]]:
    """The written-answer marks: the ``--manual`` sheets' and those in the gradebook (entered in
    formgrader, or merged on an earlier run), combined by :func:`.manual.merge_marks`.
    ``seen``, when given, receives the gradebook's marks as read (for the write-back's
    compare-and-set); ``entries``: the gradebook as :func:`.formgrade.read_entries` read it."""
    from course_lib.instructor import formgrade, manual

    from_gradebook = []
    db_url = inputs.gradebook_url()
    if db_url is not None and written:
        ledger = formgrade.read_ledger(inputs.out, db_url) if inputs.out is not None else {}
        warn = warn or formgrade.warn
        from_gradebook = formgrade.gradebook_marks(db_url, written, ledger, warn, entries)
    if seen is not None:
        seen.update({(m.student_id, m.assignment_id, m.grade_id): m.points for m in from_gradebook})
    return manual.load_marks(inputs.manual_paths, written, from_gradebook, origins)


def test_cells(source_dir: Path, aids: set[str] | list[str]) -> dict[str, dict[str, float]]:
    """Each assignment's test cells and their points, from the source notebooks."""
    from course_lib.instructor import notebooks as nbk

    return {
        a: {t.grade_id: t.points for t in nbk.load_source(source_dir / a / f"{a}.ipynb", a).tests}
        for a in sorted(aids)
        if (source_dir / a / f"{a}.ipynb").is_file()
    }


def formgrader_cell_marks(
    inputs: ClassInputs,
    tests: dict[str, dict[str, float]],
    options: ClassOptions,
    warn: Callable[[str], None] | None = None,
    entries: list | None = None,
) -> None:
    """Read a TA's scores on test cells and extra credit from the gradebook into ``options``."""
    from course_lib.instructor import formgrade

    db_url = inputs.gradebook_url()
    if db_url is None:
        return
    options.cell_marks, options.extra_credit = formgrade.cell_marks(
        db_url, tests, options.written, warn or formgrade.warn, entries
    )


def prepare(inputs: ClassInputs, source_dir: Path) -> ClassOptions:
    """Read and check every class file before any grading starts (bad input loses nothing)."""
    from course_lib.instructor import manual
    from course_lib.instructor.roster import load_roster

    options = ClassOptions(overrides_path=inputs.overrides_path)
    if inputs.roster_path is not None:
        options.roster = load_roster(inputs.roster_path)
    known = known_assignments(source_dir)
    if inputs.course_path is not None:
        options.course = late_mod.load_course(inputs.course_path, known)
        if options.roster is not None:
            for sid, aid in options.course.extensions:
                if sid not in options.roster:
                    raise late_mod.ClassSetupError(
                        f"{inputs.course_path}: extension for {sid!r} ({aid}), who is not on the "
                        f"roster {inputs.roster_path}"
                    )
    ov.load(inputs.overrides_path)  # a malformed file fails now, not after grading
    written = {
        aid: manual.written_cells(source_dir / aid / f"{aid}.ipynb") for aid in sorted(known)
    }
    written = {aid: cells for aid, cells in written.items() if cells}
    options.written = {aid: {c.grade_id: c.points for c in cells} for aid, cells in written.items()}
    options.written_cells = written
    options.manual = merged_marks(inputs, written, origins=options.mark_origins)
    formgrader_cell_marks(inputs, test_cells(source_dir, known), options)
    return options


# How many times the marks are read again when a TA saves during the write-back.
RE_READS = 3

# Statuses of a submission whose notebook was read and run (its code and answers exist).
READABLE_STATUSES = frozenset({"graded", "partial", "timeout", "crashed"})


def finish(
    out: Path,
    results: list[dict],
    submissions: Path,
    source_dir: Path,
    options: ClassOptions,
    inputs: ClassInputs,
    pages: ClassPages | None = None,
) -> list[dict]:
    """Apply the class layer to a finished ``course grade`` run and write its outputs.
    ``pages``: the :class:`ClassPages` that wrote the feedback pages during the run."""
    from course_lib.instructor import formgrade, manual, similarity
    from course_lib.instructor import notebooks as nbk

    # Only submissions whose notebook the engine read: a folder refused for its id or a link,
    # or one the grader failed on, is never opened again here.
    readable = [r for r in results if r.get("status") in READABLE_STATUSES]
    aids = sorted(
        {
            a
            for a in (r["assignment_id"] for r in results)
            if a and (source_dir / a / f"{a}.ipynb").is_file()
        }
    )
    sources = {a: nbk.load_source(source_dir / a / f"{a}.ipynb", a) for a in aids}
    written = {a: c for a in aids if (c := manual.written_cells(source_dir / a / f"{a}.ipynb"))}
    db_url = inputs.db_url or f"sqlite:///{(out / 'gradebook.db').resolve()}"
    here = replace(inputs, out=out, db_url=db_url)
    # Read the gradebook's marks again (a TA may have graded in formgrader while this run graded;
    # prepare's warnings are not repeated) and write the merged marks back. A TA who saves in
    # between is not overwritten: the write-back says which cells changed, and the marks are
    # read again, so the outputs below count what the gradebook holds.
    for _ in range(RE_READS):
        options.mark_origins.clear()
        seen: dict[tuple[str, str, str], float] = {}
        entries = formgrade.read_entries(db_url)
        options.manual = merged_marks(
            here, options.written_cells, lambda _: None, options.mark_origins, seen, entries
        )
        changed = formgrade.record_written(db_url, results, written, options.manual, seen)
        if not changed:
            break
    else:
        formgrade.warn(
            f"marks kept changing in formgrader while this run wrote them back ({len(changed)} "
            "cell(s), e.g. " + "/".join(changed[0]) + "): the gradebook keeps the TA's marks; "
            "run course grade again when the TAs pause, to count them in grades.csv"
        )
    formgrader_cell_marks(
        here,
        test_cells(source_dir, aids),
        options,
        lambda _: None,
    )  # read after the write-back: a score typed on a test cell meanwhile counts too
    sim_flags, links = similarity.run(readable, sources, out, inputs.similarity_threshold)
    options.similarity = sim_flags
    # The times ClassPages read as each result arrived (every result passes through it).
    times = pages.times if pages is not None else late_mod.submission_times(submissions)
    rows = class_rows(results, options, times)
    answers: dict[tuple[str, str], dict[str, str]] = {}
    for aid, cells in written.items():
        by_student = {
            r["student_id"]: row_answers(r, cells, submissions)
            for r in readable
            if r["assignment_id"] == aid
        }
        manual.write_sheet(out, aid, cells, by_student, options.manual)
        answers.update({(sid, aid): a for sid, a in by_student.items()})
        links[f"written answers {aid} (sheet)"] = f"manual/{aid}.html"
    formgrade.write_ledger(out, db_url, options.manual, options.mark_origins)
    write_feedback(out, rows, sources, answers, pages.digests if pages else None)
    report_path = out / "report.html"
    engine_report = report_path.read_text(encoding="utf-8") if report_path.exists() else ""
    write_class_outputs(out, rows, engine_report, links)
    return rows

"""Feedback for a student and the class report for the instructor, as self-contained HTML.

Feedback shows, per test cell, the points and the checker's message, plus the *visible* part of
the test; hidden tests and solutions never appear (the test source is cut at
``### BEGIN HIDDEN TESTS`` and only the student's own code is shown). The report inlines its
matplotlib figures as base64 PNGs: score histograms per assignment and per test, and the most
failed tests.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict

from course_lib.instructor.notebooks import SourceAssignment

_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;
text-align:left;vertical-align:top}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}
.passed{color:#17641b}.failed,.zeroed{color:#a11}.timeout,.crashed,.not_run{color:#a60}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


_TESTS_HTML: dict[int, tuple[SourceAssignment, str]] = {}  # id(source) -> (source, html)


def _visible_tests_html(source: SourceAssignment) -> str:
    """The visible part of every test of ``source``: the same for every student, made once."""
    known = _TESTS_HTML.get(id(source))
    if known is None or known[0] is not source:
        text = "".join(
            f"<h3>{html.escape(c.grade_id)}</h3><pre>{html.escape(c.visible.strip())}</pre>"
            "<p><em>Hidden tests are run too; they are not shown.</em></p>"
            for c in source.tests
        )
        known = _TESTS_HTML[id(source)] = (source, text)
    return known[1]


def _pts(x: float) -> str:
    """Points as grades.csv writes them."""
    return f"{x:.6g}"


def feedback_html(
    result: dict,
    source: SourceAssignment,
    grade: dict | None = None,
    answers: dict[str, str] | None = None,
) -> str:
    """One student's feedback: no hidden test source, no solution, only their code.

    ``grade``, when given, is the student's row of the class layer
    (:func:`.classroom.class_rows`): the header then shows the grade as ``grades.csv`` records
    it, the test cells a TA scored in formgrader show the TA's points, and a section says how
    the grade is made (tests, written answers with their marks, extra credit, late penalty, a
    score set by the instructor; never the override's reason or who recorded it).
    ``answers``: the student's written answers by cell, shown with their marks."""
    ta = (grade or {}).get("cell_marks", {})
    rows = []
    for cell in result["cells"]:
        status = cell["status"]
        message = cell["message"] or ("all checks passed" if status == "passed" else "")
        points = f"{cell['points']:g} / {cell['max_points']:g}"
        if cell["grade_id"] in ta:
            tests_gave, ta_set = ta[cell["grade_id"]]
            points = (
                f"{_pts(ta_set)} / {cell['max_points']:g}<br><small>the tests gave "
                f"{_pts(tests_gave)}; a TA set {_pts(ta_set)}</small>"
            )
        rows.append(
            f"<tr><td>{html.escape(cell['grade_id'])}</td><td class='{html.escape(status)}'>"
            f"{html.escape(status)}</td><td>{points}</td>"
            f"<td><pre>{html.escape(message)}</pre></td></tr>"
        )
    tests = _visible_tests_html(source)
    code = "".join(
        f"<h3>{html.escape(gid)}</h3><pre>{html.escape(src)}</pre>"
        for gid, src in result.get("student_code", {}).items()
    )
    if grade is None:
        total = f"{result['score']:g} / {result['max_score']:g}"
    else:
        total = f"{_pts(grade['score'])} / {_pts(grade['max_score'])}"
    body = (
        f"<p>Student <b>{html.escape(result['student_id'])}</b>, assignment "
        f"<b>{html.escape(result['assignment_id'])}</b>: <b id='total'>{total}</b> — "
        f"{html.escape(result['status_text'])}</p>"
        + ("" if grade is None else _grade_html(grade, answers or {}) + "<h2>Tests</h2>")
        + "<table><tr><th>test</th><th>result</th><th>points</th><th>message</th></tr>"
        + "".join(rows)
        + "</table><h2>Visible tests</h2>"
        + tests
        + "<h2>Your code as graded</h2>"
        + code
    )
    return _page(f"Feedback: {result['assignment_id']}", body)


def _grade_html(grade: dict, answers: dict[str, str]) -> str:
    """How the grade on the page is made, line by line, and the written answers' marks."""
    e = html.escape
    lines = []
    tests = f"{_pts(grade['auto_score'])} / {_pts(grade.get('auto_max', 0.0))}"
    if grade.get("cell_marks"):
        tests += (
            " (with the points a TA set on "
            + ", ".join(e(gid) for gid in sorted(grade["cell_marks"]))
            + ")"
        )
    lines.append(("Tests", tests))
    written = grade.get("written_marks", {})
    if written:
        out_of = sum(m["max_points"] for m in written.values())
        text = f"{_pts(grade['manual_score'])} / {_pts(out_of)}"
        if any(m["points"] is None for m in written.values()):
            text += " (not all marked yet)"
        lines.append(("Written answers", text))
    for gid, points in sorted(grade.get("extra_credit_cells", {}).items()):
        lines.append((f"Extra credit ({e(gid)})", f"+{_pts(points)}"))
    if grade.get("penalty") or grade.get("late_by"):
        lines.append(
            (
                "Late penalty",
                f"−{_pts(grade['penalty'])} (late by {e(grade['late_by'])}, "
                f"{grade.get('penalty_percent', 0.0):g} % off)",
            )
        )
    if grade.get("override") is not None:
        lines.append(("Set by your instructor", f"{_pts(grade['override'])} (replaces the above)"))
    lines.append(("Your grade", f"<b>{_pts(grade['score'])} / {_pts(grade['max_score'])}</b>"))
    table = "".join(f"<tr><th>{what}</th><td>{value}</td></tr>" for what, value in lines)
    marks = ""
    for gid, m in written.items():
        mark = (
            "not marked yet"
            if m["points"] is None
            else f"{_pts(m['points'])} / {_pts(m['max_points'])}"
        )
        answer = answers.get(gid)
        marks += f"<h3>{e(gid)}: {mark}</h3>" + (
            f"<pre>{e(answer)}</pre>" if answer is not None else ""
        )
    return (
        "<h2>Your grade</h2><table id='grade'>"
        + table
        + "</table>"
        + (f"<h2>Written answers</h2>{marks}" if written else "")
    )


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return (
        "<img alt='figure' src='data:image/png;base64,"
        + base64.b64encode(buf.getvalue()).decode()
        + "'>"
    )


def report_html(results: list[dict], sources: dict[str, SourceAssignment]) -> str:
    """The class report: per assignment a histogram of scores and per-test pass rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_assignment: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_assignment[r["assignment_id"]].append(r)
    parts = []
    failures: Counter = Counter()
    attempts: Counter = Counter()
    for aid, rows in sorted(by_assignment.items()):
        scores = [r["score"] for r in rows]
        max_score = rows[0]["max_score"] or 1
        statuses = Counter(r["status"] for r in rows)
        fig, ax = plt.subplots(figsize=(5, 2.6))
        ax.hist(
            scores, bins=min(20, max(5, int(max_score) + 1)), range=(0, max_score), color="#4878a8"
        )
        ax.set_xlabel("score")
        ax.set_ylabel("submissions")
        ax.set_title(f"{aid}: scores (max {max_score:g})")
        per_test: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            for c in r["cells"]:
                frac = c["points"] / c["max_points"] if c["max_points"] else 0.0
                per_test[c["grade_id"]].append(frac)
                attempts[(aid, c["grade_id"])] += 1
                if c["status"] != "passed":
                    failures[(aid, c["grade_id"])] += 1
        names = [t.grade_id for t in sources[aid].tests] if aid in sources else sorted(per_test)
        fig2, ax2 = plt.subplots(figsize=(6, 0.35 * len(names) + 1))
        rates = [100 * sum(per_test[n]) / max(1, len(per_test[n])) for n in names]
        ax2.barh(names, rates, color="#6a9f58")
        ax2.set_xlim(0, 100)
        ax2.set_xlabel("% of submissions passing")
        ax2.invert_yaxis()
        ax2.set_title(f"{aid}: per test")
        flagged = sum(1 for r in rows if r["flags"])
        parts.append(
            f"<h2>{html.escape(aid)}</h2><p>{len(rows)} submissions, mean "
            f"{sum(scores) / len(scores):.2f} / {max_score:g}; statuses: "
            + ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(statuses.items()))
            + f"; {flagged} flagged for review.</p>"
            + _png(fig)
            + _png(fig2)
        )
    worst = sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
    rows_html = "".join(
        f"<tr><td>{html.escape(a)}</td><td>{html.escape(t)}</td><td>{n} / {attempts[(a, t)]}</td></tr>"
        for (a, t), n in worst
    )
    flagged_rows = "".join(
        f"<tr><td>{html.escape(r['student_id'])}</td><td>{html.escape(r['assignment_id'])}</td>"
        f"<td>{html.escape('; '.join(r['flags']))}</td></tr>"
        for r in results
        if r["flags"]
    )
    body = (
        "".join(parts)
        + "<h2>Most failed tests</h2><table><tr><th>assignment</th><th>test</th><th>failed</th></tr>"
        + rows_html
        + "</table><h2>Flagged for manual review</h2><table><tr><th>student</th>"
        "<th>assignment</th><th>flags</th></tr>" + flagged_rows + "</table>"
    )
    return _page("Grading report", body)

"""Deadlines and the late policy: ``course.toml`` at the top of the course, read with tomllib.

.. code-block:: toml

    timezone = "Europe/Berlin"      # due dates written without an offset are in this zone

    [late]                          # the rule for every assignment (each key optional)
    percent_per_day = 10            # per started day (24 h) late, of the points earned
    max_percent = 50                # cap on that penalty
    cutoff_days = 7                 # later than this many days: 0 points
    # zero_when_late = true         # any late submission gets 0 points

    [assignments.05_attention]
    due = "2026-11-02 23:59"        # or with an offset: "2026-11-02T23:59:00+01:00"
    late = { percent_per_day = 20 } # overrides [late] keys for this assignment
    canvas_id = "4711"              # optional: the Canvas assignment id (grade export)

    [[extensions]]
    student = "s07"
    assignment = "05_attention"
    days = 2                        # or due = "2026-11-05 12:00"

A submission's time comes from nbgrader's ``timestamp.txt`` next to the notebook, else from the
LMS export (``.lms.json`` written by ``course import``), else from the notebook file's mtime;
every row says which (``time_source``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from course_lib.instructor.roster import ClassSetupError

LATE_KEYS = {"percent_per_day", "max_percent", "cutoff_days", "zero_when_late"}
ASSIGNMENT_KEYS = {"due", "late", "canvas_id", "moodle_id"}
DAY = 86400.0


@dataclass(frozen=True)
class LateRule:
    percent_per_day: float = 0.0
    max_percent: float = 100.0
    cutoff_days: float | None = None
    zero_when_late: bool = False

    def penalty_percent(self, late_seconds: float) -> float:
        """Percent of the earned points taken away for a submission ``late_seconds`` late."""
        if late_seconds <= 0:
            return 0.0
        if self.zero_when_late:
            return 100.0
        if self.cutoff_days is not None and late_seconds > self.cutoff_days * DAY:
            return 100.0
        days = math.ceil(late_seconds / DAY)
        return min(self.max_percent, self.percent_per_day * days)


@dataclass
class AssignmentPolicy:
    due: dt.datetime | None
    rule: LateRule
    canvas_id: str = ""
    moodle_id: str = ""


@dataclass
class CoursePolicy:
    timezone: ZoneInfo
    assignments: dict[str, AssignmentPolicy] = field(default_factory=dict)
    extensions: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)
    path: Path | None = None

    def due_for(self, student_id: str, assignment_id: str) -> dt.datetime | None:
        ext = self.extensions.get((student_id, assignment_id))
        if ext is not None:
            return ext
        policy = self.assignments.get(assignment_id)
        return policy.due if policy else None


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ClassSetupError(
            f"{where}: unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from exc


def parse_time(value: object, tz: dt.tzinfo, where: str) -> dt.datetime:
    """A TOML datetime or a string ``YYYY-MM-DD HH:MM[:SS][±HH:MM]``; naive means ``tz``."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time(23, 59, 59))
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ClassSetupError(
                f"{where}: cannot read the time {value!r}; write it as 2026-11-02 23:59 or "
                "2026-11-02T23:59:00+01:00"
            ) from exc
    else:
        raise ClassSetupError(f"{where}: expected a date and time, got {value!r}")
    return when if when.tzinfo else when.replace(tzinfo=tz)


def _rule(raw: object, base: LateRule, where: str) -> LateRule:
    if not isinstance(raw, dict):
        raise ClassSetupError(f"{where}: expected a table of late-rule keys, got {raw!r}")
    unknown = set(raw) - LATE_KEYS
    if unknown:
        raise ClassSetupError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"the late rule knows {', '.join(sorted(LATE_KEYS))}"
        )
    values = dict(base.__dict__)
    for key, value in raw.items():
        if key == "zero_when_late":
            if not isinstance(value, bool):
                raise ClassSetupError(f"{where}.zero_when_late must be true or false")
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ClassSetupError(f"{where}.{key} must be a number ≥ 0, got {value!r}")
        values[key] = value
    return LateRule(**values)


def load_course(path: Path, known_assignments: set[str] | None = None) -> CoursePolicy:
    """Read ``course.toml``; an assignment the course does not have is an error."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ClassSetupError(f"course file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ClassSetupError(f"{path} is not valid TOML: {exc}") from exc
    unknown_top = set(data) - {"timezone", "late", "assignments", "extensions", "lms"}
    if unknown_top:
        raise ClassSetupError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown_top))}; "
            "course.toml knows timezone, late, assignments, extensions, lms"
        )
    tz = _zone(str(data.get("timezone", "UTC")), f"{path}: timezone")
    base = _rule(data.get("late", {}), LateRule(), f"{path}: [late]")
    policy = CoursePolicy(tz, path=path)
    assignments = data.get("assignments", {})
    if not isinstance(assignments, dict):
        raise ClassSetupError(f"{path}: [assignments] must be a table of assignment tables")

    def check_assignment(aid: str, where: str) -> None:
        if known_assignments is not None and aid not in known_assignments:
            raise ClassSetupError(
                f"{where}: unknown assignment {aid!r}; the course has "
                f"{', '.join(sorted(known_assignments)) or 'no assignments'} "
                "(fix the name or add its source notebook)"
            )

    for aid, raw in assignments.items():
        where = f"{path}: [assignments.{aid}]"
        check_assignment(aid, where)
        if not isinstance(raw, dict):
            raise ClassSetupError(f"{where} must be a table with at least due = ...")
        unknown = set(raw) - ASSIGNMENT_KEYS
        if unknown:
            raise ClassSetupError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                f"an assignment knows {', '.join(sorted(ASSIGNMENT_KEYS))}"
            )
        due = parse_time(raw["due"], tz, f"{where}.due") if "due" in raw else None
        rule = _rule(raw.get("late", {}), base, f"{where}.late")
        policy.assignments[aid] = AssignmentPolicy(
            due, rule, str(raw.get("canvas_id", "")), str(raw.get("moodle_id", ""))
        )
    extensions = data.get("extensions", [])
    if not isinstance(extensions, list):
        raise ClassSetupError(f"{path}: extensions must be written as [[extensions]] tables")
    for i, ext in enumerate(extensions, start=1):
        where = f"{path}: extension #{i}"
        if not isinstance(ext, dict) or not {"student", "assignment"} <= set(ext):
            raise ClassSetupError(f"{where} needs student = ..., assignment = ... and days or due")
        sid, aid = str(ext["student"]), str(ext["assignment"])
        check_assignment(aid, where)
        if aid not in policy.assignments or policy.assignments[aid].due is None:
            raise ClassSetupError(f"{where}: assignment {aid!r} has no due date to extend")
        if "due" in ext:
            new_due = parse_time(ext["due"], tz, f"{where}.due")
        elif isinstance(ext.get("days"), int | float) and not isinstance(ext["days"], bool):
            new_due = policy.assignments[aid].due + dt.timedelta(days=float(ext["days"]))
        else:
            raise ClassSetupError(f'{where} needs days = N or due = "YYYY-MM-DD HH:MM"')
        if (sid, aid) in policy.extensions:
            raise ClassSetupError(f"{where}: {sid} already has an extension for {aid}")
        policy.extensions[(sid, aid)] = new_due
    return policy


# ---------------------------------------------------------------------------------------------
# When was it submitted?
# ---------------------------------------------------------------------------------------------


def parse_nbgrader_timestamp(text: str) -> dt.datetime | None:
    """nbgrader's ``timestamp.txt`` (``2026-11-02 22:59:30.123456 UTC`` or ISO with an offset);
    a time without a zone is UTC, as nbgrader reads it."""
    text = text.strip()
    if not text:
        return None
    try:
        from dateutil import parser as date_parser

        when = date_parser.parse(text)
    except (ImportError, ValueError, OverflowError):
        try:
            when = dt.datetime.fromisoformat(text.removesuffix(" UTC"))
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _from_texts(
    timestamp: str | None, lms: str | None, mtime: dt.datetime | None
) -> tuple[dt.datetime | None, str]:
    if timestamp is not None:
        when = parse_nbgrader_timestamp(timestamp)
        if when is not None:
            return when, "timestamp.txt"
    if lms is not None:
        try:
            when = dt.datetime.fromisoformat(json.loads(lms)["submitted_at"])
            return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), "lms"
        except (ValueError, KeyError, TypeError):
            pass
    if mtime is not None:
        return mtime, "mtime"
    return None, "none"


def submission_times(root: Path) -> dict[tuple[str, str], tuple[dt.datetime | None, str]]:
    """(student, assignment) → (submission time, where it came from) for SUBMISSIONS, a
    ``submitted/`` folder or a ``.zip`` of one."""
    found: dict[tuple[str, str], tuple[dt.datetime | None, str]] = {}
    if root.is_file() and zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as zf:
            groups: dict[tuple[str, str], dict[str, zipfile.ZipInfo]] = {}
            for info in zf.infolist():
                parts = Path(info.filename).parts
                if parts and parts[0] == "submitted":
                    parts = parts[1:]
                if len(parts) == 3:
                    groups.setdefault((parts[0], parts[1]), {})[parts[2]] = info
            for (sid, aid), files in groups.items():
                ts = files.get("timestamp.txt")
                lms = files.get(".lms.json")
                nb = files.get(f"{aid}.ipynb") or next(
                    (i for n, i in files.items() if n.endswith(".ipynb")), None
                )
                mtime = dt.datetime(*nb.date_time, tzinfo=dt.UTC) if nb else None
                found[(sid, aid)] = _from_texts(
                    zf.read(ts).decode("utf-8", "replace") if ts else None,
                    zf.read(lms).decode("utf-8", "replace") if lms else None,
                    mtime,
                )
        return found
    if not root.is_dir():
        return found
    for student_dir in root.iterdir():
        if not student_dir.is_dir():
            continue
        for adir in student_dir.iterdir():
            if adir.is_dir():
                found[(student_dir.name, adir.name)] = submission_time(adir)
    return found


def submission_time(adir: Path) -> tuple[dt.datetime | None, str]:
    """The submission time of one ``<student>/<assignment>/`` folder and where it came from
    (what :func:`submission_times` gives for it; ``(None, "none")`` when there is no folder)."""
    if not adir.is_dir():
        return None, "none"
    ts, lms = adir / "timestamp.txt", adir / ".lms.json"
    nb = adir / f"{adir.name}.ipynb"
    if not nb.exists():
        nbs = sorted(adir.glob("*.ipynb"))
        nb = nbs[0] if nbs else nb
    mtime = dt.datetime.fromtimestamp(nb.stat().st_mtime, tz=dt.UTC) if nb.exists() else None
    return _from_texts(
        ts.read_text(errors="replace") if ts.is_file() else None,
        lms.read_text(errors="replace") if lms.is_file() else None,
        mtime,
    )


def format_late(seconds: float) -> str:
    """``late_by`` as the CSV writes it: ``2d 03:04:05``, empty when on time."""
    if seconds <= 0:
        return ""
    whole = math.ceil(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def apply_late(
    row: dict,
    policy: CoursePolicy | None,
    when: dt.datetime | None,
    source: str,
) -> None:
    """Set ``submitted_at``, ``time_source``, ``late_seconds``, ``late_by``, ``penalty_percent``
    and ``penalty`` (points) on ``row``; ``row['raw_score']`` must be set."""
    row["submitted_at"] = when.isoformat(timespec="seconds") if when else ""
    row["time_source"] = source if when else ""
    row["late_seconds"] = 0.0
    row["penalty_percent"] = 0.0
    row["penalty"] = 0.0
    row["due"] = ""
    if policy is None or when is None or row.get("status") == "missing":
        row["late_by"] = ""
        return
    due = policy.due_for(row["student_id"], row["assignment_id"])
    if due is None:
        row["late_by"] = ""
        return
    row["due"] = due.isoformat(timespec="seconds")
    late = (when - due).total_seconds()
    rule = policy.assignments[row["assignment_id"]].rule
    row["late_seconds"] = max(0.0, late)
    row["late_by"] = format_late(late)
    row["penalty_percent"] = rule.penalty_percent(late)
    row["penalty"] = round(row["raw_score"] * row["penalty_percent"] / 100.0, 6)

"""How long a student waits for ``course check NOTEBOOK``, on each exercise.

``course check`` runs the visible tests through the grading engine of ``course grade`` (no
Jupyter kernel); it is timed against ``course grade --jobs 1`` on the same notebook and against
bare execution with nbclient. The target is a median of at most 3 s on 2 cores.

The notebook checked is a finished one: the released exercise with every solution filled in
(the "honest" submission of ``tests/submissions/make_corpus.py``), so every test cell runs as
it would for a student who is done. Its floor is bare execution of the same notebook with
nbclient in this process (a kernel running the cells, nothing else); ``course check`` adds a
Python start-up, its imports and the table. The two alternate (check, bare, bare, check, …)::

    .venv/bin/python benchmarks/check_latency.py --quick
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (rounds per exercise, how many exercises; None = all)
# One round per exercise in a full run: the figures are the median and worst over exercises.
EFFORT = {"full": (1, None), "quick": (1, 1)}
TARGET_SECONDS = 3.0  # median `course check` on a finished notebook, 2 cores


def assignments(root: Path = ROOT) -> list[str]:
    """Exercise ids with both the instructor source and the released notebook."""
    return sorted(
        p.parent.name
        for p in (root / "exercises").glob("*/*.ipynb")
        if p.stem == p.parent.name and (root / "solutions" / p.stem / p.name).is_file()
    )


def finished_notebook(assignment: str, dest: Path) -> Path:
    """Write the honest (complete, correct) submission of ``assignment`` under ``dest``."""
    sys.path.insert(0, str(ROOT / "tests" / "submissions"))
    import make_corpus

    _source, cases = make_corpus.build(assignment)
    honest = next((c for c in cases if c.student == "honest"), None)
    if honest is None or not isinstance(honest.notebook, dict):
        raise RuntimeError(f"make_corpus has no honest notebook for {assignment}")
    path = dest / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(honest.notebook), encoding="utf-8")
    return path


def course_command() -> list[str]:
    """``course`` as the student runs it: the console script next to this Python."""
    script = Path(sys.executable).parent / "course"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "course_lib.cli"]


def time_check(notebook: Path, command: Sequence[str] | None = None) -> tuple[float, int]:
    """Seconds of ``course check notebook`` and its exit status (0 = every test passed)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [*(command or course_command()), "check", str(notebook)],
        capture_output=True,
        text=True,
        cwd=notebook.parent,
    )
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1 = some test failed: still a latency; 2 = misuse
        raise RuntimeError(f"course check {notebook} exited {proc.returncode}:\n{proc.stderr}")
    return seconds, proc.returncode


def time_grade(notebook: Path, command: Sequence[str] | None = None) -> float:
    """Seconds of ``course grade --jobs 1`` on the same notebook as one student's submission
    (the instructor's engine, with its sandbox, hidden tests and reports)."""
    aid = notebook.parent.name
    work = Path(tempfile.mkdtemp(prefix="bench-grade-one-"))
    try:
        target = work / "submitted" / "student" / aid / notebook.name
        target.parent.mkdir(parents=True)
        shutil.copy(notebook, target)
        start = time.perf_counter()
        subprocess.run(
            [*(command or course_command()), "grade", str(work / "submitted")]
            + ["--out", str(work / "out"), "--jobs", "1", "--source", str(ROOT / "solutions")]
            + ["--allow-default-seed"],
            capture_output=True,
            text=True,
            check=True,
        )
        return time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)


def time_bare(notebook: Path) -> float:
    """Seconds to run every cell of ``notebook`` in a fresh kernel with nbclient (the floor)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(notebook.parent)}},
    ).execute()
    return time.perf_counter() - start


def measure(
    *, quick: bool = False, log: Callable[[str], None] = print, ids: Sequence[str] | None = None
) -> dict:
    """Item 3: ``course check`` latency per exercise, against bare execution."""
    mode = "quick" if quick else "full"
    n_rounds, how_many = EFFORT[mode]
    ids = list(ids or assignments())[:how_many]
    if not ids:
        raise RuntimeError("no exercise has both solutions/<id>/<id>.ipynb and exercises/<id>/")
    rows, per_exercise, failing = [], {}, []
    vs_grade: list[float] = []  # check / `course grade --jobs 1`, per exercise
    work = Path(tempfile.mkdtemp(prefix="bench-check-"))
    try:
        for aid in ids:
            nb = finished_notebook(aid, work)
            check, bare, grade = [], [], []
            for r in range(n_rounds):
                order = ("check", "bare", "grade") if r % 2 == 0 else ("grade", "bare", "check")
                for what in order:
                    if what == "check":
                        seconds, status = time_check(nb)
                        check.append(seconds)
                        if status != 0:
                            failing.append(aid)
                    elif what == "grade":
                        grade.append(time_grade(nb))
                    else:
                        bare.append(time_bare(nb))
            log(
                f"  {aid}: check {statistics.median(check):.1f} s, "
                f"bare {statistics.median(bare):.1f} s, "
                f"course grade --jobs 1 {statistics.median(grade):.1f} s"
            )
            per_exercise[aid] = statistics.median(check)
            vs_grade.append(per_exercise[aid] / statistics.median(grade))
            base = f"{aid}: bare nbclient"
            rows.append({"label": base, "samples": bare, "baseline": None})
            rows.append(
                {
                    "label": f"{aid}: `course grade --jobs 1`, one notebook",
                    "samples": grade,
                    "baseline": base,
                    "vs": "bare",
                }
            )
            rows.append(
                {
                    "label": f"{aid}: `course check`",
                    "samples": check,
                    "baseline": base,
                    "vs": "bare",
                    "note": "a test failed" if aid in failing else "",
                }
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    worst = max(per_exercise, key=per_exercise.get)
    median = statistics.median(per_exercise.values())
    facts = [
        f"`course check` on a finished notebook, over {len(ids)} exercise(s): median "
        f"{median:.1f} s, worst {per_exercise[worst]:.1f} s "
        f"({worst}); {n_rounds} round(s) each, check and bare execution alternating.",
        f"`course check` takes {statistics.median(vs_grade):.2f}× the time of `course grade "
        "--jobs 1` on the same notebook (median over exercises).",
    ]
    checks = [
        (
            median <= TARGET_SECONDS,
            f"median `course check` {median:.1f} s (target: at most {TARGET_SECONDS:g} s)",
        ),
        (
            not failing,
            "every finished notebook passes `course check`"
            + (f" (failed: {', '.join(sorted(set(failing)))})" if failing else ""),
        ),
    ]
    return {
        "key": "check",
        "title": "3. Student check latency",
        "status": "measured",
        "rows": rows,
        "facts": facts,
        "checks": checks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one exercise, one round")
    parser.add_argument("ids", nargs="*", help="exercise ids (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tables import section_table

    section = measure(quick=args.quick, ids=args.ids or None)
    print(section_table(section))
    for fact in section["facts"]:
        print("-", fact)
    return 0


if __name__ == "__main__":
    sys.exit(main())

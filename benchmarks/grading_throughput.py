"""Throughput of grading: serial ``nbgrader autograde`` vs ``course grade --jobs 1`` vs ``--jobs 2``.

Builds N honest submissions of one assignment (the corpus generator's "honest" notebook with a
distinct comment per student, so nothing is cached), then times, in this one run and on this
machine:

1. ``nbgrader autograde`` of all of them in a temporary nbgrader course (serial by design);
2. ``course grade --jobs 1`` and ``course grade --jobs 2`` into fresh output folders;
3. bare execution of one notebook with nbclient (the floor: a kernel running the cells).

It prints submissions per minute, the speed-ups as ratios, and the per-notebook overhead of
each method over bare execution. Numbers are recorded as ratios from one run, never asserted
in tests (timings depend on the machine and its load)::

    .venv/bin/python benchmarks/grading_throughput.py --assignment 05_attention -n 40
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SPEEDUP = 5.0  # `course grade --jobs 2` over serial `nbgrader autograde`, on 2 cores
sys.path.insert(0, str(ROOT / "tests" / "submissions"))


def make_submissions(assignment: str, n: int, dest: Path) -> None:
    import make_corpus

    _source, cases = make_corpus.build(assignment)
    honest = next(c for c in cases if c.student == "honest").notebook
    for i in range(n):
        nb = json.loads(json.dumps(honest))
        nb["cells"].append(
            {"cell_type": "markdown", "id": f"note-{i}", "metadata": {}, "source": f"student {i}"}
        )
        folder = dest / f"student{i:03d}" / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(json.dumps(nb))


def _nbgrader(command: str, assignment: str, *, course: Path, env: dict) -> None:
    subprocess.run(
        [sys.executable, "-m", "nbgrader", command, assignment, "--force"],
        cwd=course,
        env=env,
        check=True,
        capture_output=True,
    )


_templates: dict[str, Path] = {}  # assignment -> a course folder right after generate_assignment


def _nbgrader_template(assignment: str, env: dict) -> Path:
    """An nbgrader course with ``assignment`` generated (its gradebook knows it), made once per
    assignment and run; each timing copies it, so that no round pays the untimed set-up again."""
    if assignment not in _templates or not _templates[assignment].exists():
        course = Path(tempfile.mkdtemp(prefix=f"nbgrader-{assignment}-"))
        atexit.register(shutil.rmtree, course, ignore_errors=True)
        (course / "source").mkdir(parents=True)
        shutil.copytree(ROOT / "solutions" / assignment, course / "source" / assignment)
        _nbgrader("generate_assignment", assignment, course=course, env=env)
        _templates[assignment] = course
    return _templates[assignment]


def time_nbgrader(assignment: str, subs: Path, work: Path) -> float:
    """Seconds of ``nbgrader autograde ASSIGNMENT`` over every student in ``subs``."""
    env = dict(
        os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    course = work / "nbgrader_course"
    shutil.copytree(_nbgrader_template(assignment, env), course)
    shutil.copytree(subs, course / "submitted")
    config = f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n"
    (course / "nbgrader_config.py").write_text(config + "c.ExecutePreprocessor.timeout = 120\n")
    start = time.perf_counter()
    _nbgrader("autograde", assignment, course=course, env=env)
    return time.perf_counter() - start


def time_course(subs: Path, out: Path, jobs: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "grade",
            str(subs),
            "--out",
            str(out),
            "--jobs",
            str(jobs),
            "--source",
            str(ROOT / "solutions"),
            "--allow-default-seed",  # nbgrader, timed alongside, also uses the default
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return time.perf_counter() - start


def time_bare(notebook: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="05_attention")
    parser.add_argument("-n", type=int, default=40, help="number of submissions")
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    try:
        subs = work / "submitted"
        make_submissions(args.assignment, args.n, subs)
        times: dict[str, float] = {}
        if not args.skip_nbgrader:
            times["nbgrader autograde (serial)"] = time_nbgrader(args.assignment, subs, work)
        times["course grade --jobs 1"] = time_course(subs, work / "out1", 1)
        times["course grade --jobs 2"] = time_course(subs, work / "out2", 2)
        one = subs / "student000" / args.assignment / f"{args.assignment}.ipynb"
        bare = time_bare(one)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{args.n} submissions of {args.assignment}, {os.cpu_count()} cores, load {load}")
        print(f"{'method':32s} {'seconds':>8s} {'subs/min':>9s} {'overhead/nb':>12s}")
        for name, t in times.items():
            print(f"{name:32s} {t:8.1f} {60 * args.n / t:9.1f} {t / args.n - bare:11.2f}s")
        print(f"{'bare execution of one notebook':32s} {bare:8.1f}")
        base = times.get("nbgrader autograde (serial)")
        if base:
            for name in ("course grade --jobs 1", "course grade --jobs 2"):
                print(f"speed-up of {name} over serial nbgrader: {base / times[name]:.2f}x")
            met = base / times["course grade --jobs 2"] >= GOAL_SPEEDUP
            print(
                f"goal: --jobs 2 at least {GOAL_SPEEDUP:g}x serial nbgrader: {'met' if met else 'NOT met'}"
            )
        print(
            f"--jobs 2 over --jobs 1: {times['course grade --jobs 1'] / times['course grade --jobs 2']:.2f}x"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

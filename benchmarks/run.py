"""``make bench``: measure what users wait for, as ratios against what they would use instead.

Runs the pieces below in one process, one after the other, and writes ``benchmarks/results.md``
(a table per piece and the machine it ran on) and ``benchmarks/results.png`` (attention time
against T, log–log, with the fitted exponent)::

    .venv/bin/python benchmarks/run.py                 # everything, about 20 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick         # a ~3-minute smoke run on tiny sizes
    .venv/bin/python benchmarks/run.py --only reference,gpu --device cuda

Pieces (``--only``): ``book`` (book_build.py), ``grading`` (grading_throughput.py, helper
script of ``course grade``), ``check`` (check_latency.py), ``reference`` and ``gpu``
(reference_vs_torch.py), ``dask`` (dask_scaling.py: ``course grade --scheduler``). Every
figure is a median over repeats with its interquartile range (IQR); every comparison is a ratio
of two contenders timed in the same run, interleaved (A B B A …), and the ratio is the median of
the per-round ratios, so that a burst of load from another process hits both contenders of a
round rather than one of them.

Each piece returns a *section*, a plain dict::

    {"key": "book", "title": "1. Book build",
     "status": "measured" | "not measured: <reason>",
     "rows": [{"label": str, "samples": [seconds, ...], "baseline": label | None,
               "vs": short name of the baseline, "count": notebooks per sample | None,
               "note": str}],
     "facts": [str, ...],           # one line each under the table
     "checks": [(ok: bool, str)],   # requirements; a failed one makes the run exit 1
     "series": {...} | absent}      # data for the plot (reference piece only)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tables import (  # noqa: F401 - run.<name> is part of the driver's interface
    _cell,
    fmt_ratio,
    fmt_seconds,
    interleaved,
    markdown_table,
    paired_ratios,
    section_table,
    summarize,
)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

PIECES = ("book", "grading", "check", "reference", "gpu", "dask")
DEFAULT_OUT = BENCH_DIR / "results.md"
# The GPU piece as last measured on a lent GPU machine (`--only gpu --json ...` there); a run on
# a machine without a GPU shows it, marked as recorded elsewhere, instead of nothing.
# It ships with the package (course_lib/data_files/), because chapter 12 shows it too.
RECORDED_GPU = ROOT / "course_lib" / "data_files" / "gpu_benchmark.json"
# A quick or partial run must not replace the record of a full one.
PARTIAL_OUT = Path(os.environ.get("TMPDIR", "/tmp")) / "course-bench" / "results.md"


def machine_info(load_at_start: tuple[float, float, float]) -> dict[str, str]:
    """What the numbers depend on: cores, CPU model, torch and its threads, load."""
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        commit = (
            os.environ.get("BENCH_COMMIT")
            or subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        )
    except OSError:
        commit = ""
    threads = ", ".join(
        f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
    )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "date (UTC)": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "commit": commit or "unknown",
        "nproc (usable cores)": f"{usable} (of {os.cpu_count()})",
        "CPU": model,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": f"{torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} "
        f"inter-op ({threads or 'no OMP/MKL variables set'})",
        "GPU": gpu,
        "load average at start (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in load_at_start),
        "load average at end": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def render(
    sections: Sequence[dict],
    machine: dict[str, str],
    command: str,
    seconds: float,
    plots: Sequence[str],
) -> str:
    """The whole results.md."""
    out = [
        "# Benchmark results",
        "",
        f"Written by `{command}` in {seconds / 60:.1f} min; do not edit by hand, re-run it. "
        "Each figure is the median over the repeats shown, with the interquartile range (IQR). "
        "Each ratio compares two contenders timed in the same run, interleaved, as the median "
        "of the per-round ratios (a ratio > 1 means the row is slower than the one it names). "
        "Absolute times depend on the machine and its load (below); ratios travel better.",
        "",
        "## Machine",
        "",
        markdown_table(["what", "value"], [[k, v] for k, v in machine.items()]),
        "",
    ]
    for section in sections:
        out += [f"## {section['title']}", ""]
        if section.get("status", "measured") != "measured":
            out += [section["status"], ""]
        if section.get("rows"):
            out += [section_table(section), ""]
        for fact in section.get("facts", []):
            out.append(f"- {fact}")
        for ok, text in section.get("checks", []):
            out.append(f"- {'PASS' if ok else 'FAIL'}: {text}")
        if section.get("facts") or section.get("checks"):
            out.append("")
    if plots:
        out += ["## Plots", ""]
        for plot in plots:
            out += [f"![attention time against sequence length]({plot})", ""]
    return "\n".join(out)


def write_plots(sections: Sequence[dict], path: Path) -> list[str]:
    """Attention time against T (log–log) with the fitted line, one PNG per section that has a
    series (``results.png``, then ``results-gpu.png``, …); returns the file names written."""
    from course_lib.viz import plot_scaling

    written = []
    for section in sections:
        series = section.get("series")
        if not series:
            continue
        target = path if not written else path.with_name(f"{path.stem}-{section['key']}.png")
        sizes, fit, title = series["sizes"], series.get("fit"), series.get("title", "")
        if len(sizes) >= 5:  # small sizes are overhead-bound: fit the top end, where work rules
            from course_lib.benchmarking import fit_power_law

            first = next(iter(series["times"].values()))
            fit = fit_power_law(sizes[-3:], first[-3:])
            title += f"; fit over T = {sizes[-3]}…{sizes[-1]}"
        fig = plot_scaling(sizes, series["times"], fit=fit)
        ax = fig.axes[0]
        ax.set_xlabel("sequence length T")
        ax.set_title(title, fontsize=9)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=120, bbox_inches="tight")
        written.append(target.name)
    return written


def recorded_gpu_section(path: Path | None = None) -> dict | None:
    """The GPU piece recorded on a lent GPU machine, marked as such; None when there is none."""
    path = path or RECORDED_GPU
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    section = next((s for s in data.get("sections", []) if s.get("key") == "gpu"), None)
    if section is None or section.get("status") != "measured":
        return None
    machine = data.get("machine", {})
    section = dict(section)
    section["status"] = (
        f"Recorded on a lent GPU machine ({machine.get('GPU', 'GPU')}, torch "
        f"{machine.get('torch', '?')}) on {machine.get('date (UTC)', '?')} UTC, commit "
        f"{machine.get('commit', '?')}, by `{data.get('command', '?')}`: this machine has no GPU, "
        f"so these rows come from {path.name}, not from this run. Both contenders of every ratio "
        "were still timed in one run, there."
    )
    return section


# ---------------------------------------------------------------------------------------------
# Running the pieces
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Item 2: grading throughput, with the functions of grading_throughput.py (helper script of
# `course grade`): make_submissions, time_nbgrader, time_course, time_bare.
# ---------------------------------------------------------------------------------------------

NBGRADER, JOBS1, JOBS2, BARE = (
    "serial `nbgrader autograde`",
    "`course grade --jobs 1`",
    "`course grade --jobs 2`",
    "bare nbclient (floor)",
)
# (submissions of one assignment, rounds; notebooks of the whole course, rounds)
GRADING_EFFORT = {"full": (40, 4, 12, 3), "quick": (2, 1, 2, 1)}
GRADING_ASSIGNMENT = "05_attention"
BARE_PER_ROUND = 2  # the floor is per notebook: a couple per round is enough
REQUIRED_SPEEDUP = 5.0  # of `course grade --jobs 2` over serial nbgrader, on 2 cores


def _grade_rounds(
    rounds: Sequence[tuple[Path, list[tuple[str, Path]]]],
    work: Path,
    log: Callable[[str], None],
) -> dict[str, list[float]]:
    """Time the four contenders on each round's submissions, rotating their order.

    Args:
        rounds: per round, the submitted/ folder and its (assignment, notebook) pairs.
    Returns:
        contender -> seconds per round (bare: seconds for ``BARE_PER_ROUND`` notebooks).
    """
    import grading_throughput as gt

    samples: dict[str, list[float]] = {k: [] for k in (NBGRADER, JOBS1, JOBS2, BARE)}
    orders = interleaved(len(rounds), list(samples))
    for r, (subs, notebooks) in enumerate(rounds):
        for what in orders[r]:
            scratch = Path(tempfile.mkdtemp(dir=work))
            if what == NBGRADER:  # nbgrader grades one assignment per command
                seconds = sum(
                    gt.time_nbgrader(aid, subs, Path(tempfile.mkdtemp(dir=scratch)))
                    for aid in sorted({aid for aid, _ in notebooks})
                )
            elif what == BARE:
                seconds = sum(gt.time_bare(nb) for _, nb in notebooks[:BARE_PER_ROUND])
            else:
                seconds = gt.time_course(subs, scratch / "out", 1 if what == JOBS1 else 2)
            samples[what].append(seconds)
            shutil.rmtree(scratch, ignore_errors=True)
        log(
            f"  round {r + 1}/{len(rounds)}: "
            + ", ".join(f"{k.replace('`', '')} {v[-1]:.0f} s" for k, v in samples.items())
        )
    return samples


def _grading_rows(name: str, samples: dict[str, list[float]], counts: list[int]) -> list[dict]:
    """Table rows of one grading workload; ``counts``: notebooks graded in each round."""
    bare_counts = [min(BARE_PER_ROUND, c) for c in counts]
    bare_per_nb = statistics.median(t / c for t, c in zip(samples[BARE], bare_counts))
    rows = [
        {
            "label": f"{name}: {BARE}",
            "samples": samples[BARE],
            "count": bare_counts,
            "baseline": None,
            "note": f"{bare_counts[0]} notebook(s) per round",
        }
    ]
    for what, base, vs in (
        (NBGRADER, BARE, "bare"),
        (JOBS1, NBGRADER, "nbgrader"),
        (JOBS2, NBGRADER, "nbgrader"),
    ):
        per_nb = statistics.median(t / c for t, c in zip(samples[what], counts))
        rows.append(
            {
                "label": f"{name}: {what}",
                "samples": samples[what],
                "count": counts,
                "baseline": f"{name}: {base}",
                "vs": vs,
                "note": f"{per_nb - bare_per_nb:+.2f} s per notebook over bare (wall clock)",
            }
        )
    return rows


def measure_grading(*, quick: bool = False, log: Callable[[str], None] = print) -> dict:
    """Item 2: 40 submissions of one assignment, and one student's whole course."""
    import grading_throughput as gt

    sys.path.insert(0, str(BENCH_DIR))
    import check_latency

    n_subs, sub_rounds, n_course, course_rounds = GRADING_EFFORT["quick" if quick else "full"]
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        # 1. n_subs submissions of one assignment, split into rounds of equal size.
        log(f"  {n_subs} submissions of {GRADING_ASSIGNMENT} in {sub_rounds} round(s)")
        everyone = work / "all"
        gt.make_submissions(GRADING_ASSIGNMENT, n_subs, everyone)
        students = sorted(p.name for p in everyone.iterdir())
        if n_subs % sub_rounds:
            raise ValueError(f"{n_subs} submissions do not split into {sub_rounds} equal rounds")
        size = n_subs // sub_rounds
        rounds = []
        for r in range(sub_rounds):
            subs = work / f"round{r}" / "submitted"
            subs.mkdir(parents=True)
            nbs = []
            for student in students[r * size : (r + 1) * size]:
                shutil.move(everyone / student, subs / student)
                nbs.append(
                    (
                        GRADING_ASSIGNMENT,
                        subs / student / GRADING_ASSIGNMENT / f"{GRADING_ASSIGNMENT}.ipynb",
                    )
                )
            rounds.append((subs, nbs))
        one_counts = [len(nbs) for _, nbs in rounds]
        one = _grade_rounds(rounds, work, log)
        # 2. One student's whole course: every assignment, split into rounds.
        ids = check_latency.assignments()[:n_course]
        log(f"  one student's course ({len(ids)} notebooks) in {course_rounds} round(s)")
        size = -(-len(ids) // course_rounds)
        rounds = []
        for r in range(course_rounds):
            subs = work / f"course{r}" / "submitted"
            chunk = ids[r * size : (r + 1) * size]
            nbs = [
                (aid, check_latency.finished_notebook(aid, subs / "student000")) for aid in chunk
            ]
            if nbs:
                rounds.append((subs, nbs))
        course_counts = [len(nbs) for _, nbs in rounds]
        whole = _grade_rounds(rounds, work, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one_name, course_name = f"{n_subs} × {GRADING_ASSIGNMENT}", f"course ({len(ids)} notebooks)"
    rows = _grading_rows(one_name, one, one_counts)
    rows += _grading_rows(course_name, whole, course_counts)
    facts = []
    for name, s in ((one_name, one), (course_name, whole)):
        speedup = summarize(paired_ratios(s[JOBS1], s[JOBS2]))
        total = {k: sum(v) for k, v in s.items() if k != BARE}
        facts.append(
            f"{name}: whole batch {', '.join(f'{k} {fmt_seconds(v)}' for k, v in total.items())};"
            f" speed-up of --jobs 2 over --jobs 1: {fmt_ratio(speedup)}."
        )
    facts.append(
        "each round is one command per contender on that round's notebooks (nbgrader: one "
        "autograde per assignment), so start-up costs are paid once per round; the "
        "whole-course rounds hold different notebooks, so their spread is partly the notebooks'."
    )
    # The grading pipeline's throughput requirement: --jobs 2 at least 5x serial nbgrader.
    speedup = 1 / summarize(paired_ratios(one[JOBS2], one[NBGRADER]))["median"]
    checks = [
        (
            speedup >= REQUIRED_SPEEDUP,
            f"{one_name}: `course grade --jobs 2` grades {speedup:.2f}× as many submissions per "
            f"minute as serial `nbgrader autograde` (required: {REQUIRED_SPEEDUP}×)",
        )
    ]
    return {
        "key": "grading",
        "title": TITLES["grading"],
        "status": "measured",
        "rows": rows,
        "facts": facts,
        "checks": checks if not quick else [],
    }


def not_measured(key: str, title: str, reason: str) -> dict:
    return {"key": key, "title": title, "status": f"not measured: {reason}", "rows": []}


TITLES = {
    "book": "1. Book build",
    "grading": "2. Grading throughput",
    "check": "3. Student check latency",
    "reference": "4. Reference code against PyTorch (CPU)",
    "gpu": "5. Attention on a GPU",
    "dask": "6. Grading on a Dask cluster",
}


def run_piece(key: str, *, quick: bool, device: str, log: Callable[[str], None]) -> dict:
    """Measure one piece; an exception becomes a "not measured: <reason>" section."""
    start = time.perf_counter()
    log(f"[bench] {TITLES[key]} ...")
    try:
        if key == "book":
            import book_build

            section = book_build.measure(quick=quick, log=log)
        elif key == "grading":
            section = measure_grading(quick=quick, log=log)
        elif key == "check":
            import check_latency

            section = check_latency.measure(quick=quick, log=log)
        elif key == "reference":
            import reference_vs_torch

            section = reference_vs_torch.measure_cpu(quick=quick, log=log)
        elif key == "dask":
            import dask_scaling

            section = dask_scaling.measure(quick=quick, log=log)
        else:
            import reference_vs_torch

            section = reference_vs_torch.measure_gpu(device=device, quick=quick, log=log)
    except Exception as exc:  # a piece that cannot run is recorded, and the others go on
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
        log(f"[bench] {key} failed: {reason}")
        section = not_measured(key, TITLES[key], reason)
    section.setdefault("title", TITLES[key])
    section.setdefault("key", key)
    log(f"[bench] {key} took {time.perf_counter() - start:.0f} s")
    return section


def parse_only(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in PIECES]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown piece(s) {unknown or text!r}; choose a comma list from {','.join(PIECES)}"
        )
    return [k for k in PIECES if k in keys]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, about 3 minutes")
    parser.add_argument(
        "--only", type=parse_only, default=list(PIECES), help=f"comma list of {','.join(PIECES)}"
    )
    parser.add_argument(
        "--device", default="cuda", help="accelerator for the gpu piece (default cuda)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results file (default {DEFAULT_OUT.relative_to(ROOT)} for a full run, "
        f"{PARTIAL_OUT} for --quick or --only, so a partial run never replaces the full record)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the sections as JSON (on a GPU machine: --only gpu --json "
        "course_lib/data_files/gpu_benchmark.json records the GPU piece for machines without one)",
    )
    args = parser.parse_args(argv)
    full = not args.quick and list(args.only) == list(PIECES)
    out = args.out or (DEFAULT_OUT if full else PARTIAL_OUT)
    command = (
        "make bench"
        if full and args.out is None
        else "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    )

    load = os.getloadavg()
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - start:7.0f}s {msg}", flush=True)

    sections = [run_piece(k, quick=args.quick, device=args.device, log=log) for k in args.only]
    for i, section in enumerate(sections):
        if section["key"] == "gpu" and section["status"] != "measured" and not args.quick:
            recorded = recorded_gpu_section()
            if recorded is not None:
                recorded["facts"] = [f"here: {section['status']}", *recorded.get("facts", [])]
                sections[i] = recorded
    plot_path = out.with_suffix(".png")
    plots = write_plots(sections, plot_path)
    machine = machine_info(load)
    elapsed = time.perf_counter() - start
    text = render(sections, machine, command.strip(), elapsed, plots)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"command": command.strip(), "machine": machine, "sections": sections}
        args.json.write_text(json.dumps(record, indent=1, default=list) + "\n", encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\nWrote {out}" + "".join(f", {out.parent / p}" for p in plots))
    failed = [t for s in sections for ok, t in s.get("checks", []) if not ok]
    for text in failed:
        print(f"FAIL: {text}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

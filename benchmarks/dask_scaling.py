"""``course grade --scheduler``: how grading on a Dask cluster scales, and what the client costs.

Three measurements, in one run on this machine (``make bench`` runs them as the ``dask`` piece;
alone: ``.venv/bin/python benchmarks/dask_scaling.py [--quick]``):

1. **1 vs 2 workers.** A real ``dask scheduler`` with one ``dask worker``, then with two,
   started here on 127.0.0.1 for their turn with the grading workers' settings
   (``distributed.WORKER_CONFIG``) and warmed up (torch imported, an untimed run so that every
   worker's zygote runs), grade the same honest submissions; so do 2 workers with Dask's
   default settings, ``course grade --jobs 2``, and the engine alone in 1 and in 2 plain
   processes (no Dask, no client), in rounds with the order rotated. Ratio: 2 workers over 1,
   in submissions per second from the first task out to the last result in (the cluster's
   throughput); the whole command's ratio is reported too (it adds the client's fixed costs,
   which no number of workers changes: measurement 3 bounds them). The engine alone in 2
   processes over 1 is this machine's ceiling for that ratio.
2. **Per-task overhead of Dask over ``--jobs``.** The same tiny task (a notebook's bytes in, a
   result-sized dict out, no grading) sent N times through the two-worker cluster and through a
   two-process ``ProcessPoolExecutor`` (what ``--jobs 2`` uses): the difference per task.
3. **A class of 12,000.** The whole ``course grade`` pipeline (discovery, state keys, the bytes
   sent, each result's atomic state file, then grades.csv, feedback, report and gradebook) on
   12,000 submissions, with a fake grading task that sleeps the per-notebook time measured in 1
   and returns a real result, on a real `dask scheduler` and 2 `dask worker` processes with many threads, at a rate of results per
   second above what 50 workers of 2 cores would deliver. The run's time not spent in the
   sleeping tasks (``1 - ideal / wall``) is the client's bookkeeping, Dask's scheduling and the
   output writing together; required: at most 10 %.

From 1 (the rate of 2 workers on 2 cores) and 3 it projects the wall time of 12,000 notebooks
on 1, 10 and 50 machines of 2 cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(ROOT / "tests" / "submissions"))

ASSIGNMENT = "05_attention"
# (submissions per round, rounds, tiny tasks for the overhead, class size, rate of results/s)
EFFORT = {"full": (32, 4, 400, 12_000, 100.0), "quick": (4, 1, 100, 600, 50.0)}
REQUIRED_SPEEDUP = 1.8  # 2 workers over 1 on 2 cores
MAX_CLIENT_SHARE = 0.10  # of the simulated class's run
PROJECTED_WORKERS = (1, 10, 50)
CORES_PER_WORKER = 2
TITLE = "6. Grading on a Dask cluster"
CLASS_SIZE = 12_000  # the projection's class
PROJECTION = BENCH_DIR / "dask_projection.md"  # read by book/appendix/instructors_scale.md


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dask_processes(
    n_workers: int, log_dir: Path, nthreads: int = 1, *, dask_defaults: bool = False
) -> Iterator[str]:
    """A ``dask scheduler`` and ``n_workers`` ``dask worker --nthreads NTHREADS`` on 127.0.0.1,
    warmed up; yields the scheduler's address and stops them all on exit. They run with the
    grading workers' settings (``distributed.worker_env()``, as the instructors' pages start
    them) unless ``dask_defaults``."""
    from distributed import Client

    from course_lib.instructor.distributed import worker_env

    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # PYTHONPATH: see measure()
    if not dask_defaults:
        env.update(worker_env())
    procs = []

    def start(name: str, cmd: list[str]) -> None:
        with open(log_dir / f"{name}.log", "wb") as out:
            procs.append(
                subprocess.Popen(cmd + ["--no-dashboard"], stdout=out, stderr=out, env=env)
            )

    try:
        start(
            "scheduler",
            [dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]],
        )
        for i in range(n_workers):
            start(
                f"worker{i}",
                [dask, "worker", address, "--nthreads", str(nthreads), "--no-nanny"],
            )
        client = Client(address, timeout=60, set_as_default=False)
        try:
            client.wait_for_workers(n_workers, timeout=120)
            from course_lib.instructor.distributed import worker_identity

            client.run(worker_identity)  # imports torch on each worker, as a long run has
        finally:
            client.close()
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---------------------------------------------------------------------------------------------
# 1. Real grading: 1 vs 2 workers, --jobs 2, and the same grading without Dask or a client.
# ---------------------------------------------------------------------------------------------


def _grade(subs: Path, out: Path, runner: Any = None, jobs: int = 2) -> float:
    from course_lib.instructor import pipeline

    start = time.perf_counter()
    pipeline.grade(
        subs, out, jobs=jobs, source_dir=ROOT / "solutions", log=lambda m: None, runner=runner
    )
    return time.perf_counter() - start


def _plain_task(notebook: Path) -> dict:
    from dataclasses import asdict

    from course_lib import CHAPTER_MODULES
    from course_lib.instructor.sandbox import Limits

    module = CHAPTER_MODULES.get(ASSIGNMENT)
    return {
        "student_id": notebook.parent.parent.name,
        "assignment_id": ASSIGNMENT,
        "notebook": str(notebook),
        "source": str((ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").resolve()),
        "limits": asdict(Limits()),
        "hidden_modules": [module] if module else [],
    }


def _plain_grader(todo: Any, warm: Path, barrier: Any, results: Any) -> None:
    """In a fresh process: set up as a ``--jobs`` grader process, grade ``warm`` untimed (the
    zygote starts), wait for the others, then take notebooks from ``todo`` until it says
    ``None``, grading each, and put the time of the last one's end on ``results``."""
    from course_lib.instructor import pipeline

    first = _plain_task(warm)
    pipeline._pool_init(tuple(first["hidden_modules"]))
    pipeline.grade_task(first)
    barrier.wait()
    while (notebook := todo.get()) is not None:
        pipeline.grade_task(_plain_task(notebook))
    results.put(time.time())


def plain_processes(n: int, subs: Path, warm: Path) -> float:
    """The engine alone, without Dask, a scheduler or a client: ``n`` processes take the
    submissions of ``subs`` from one queue (as Dask's workers take tasks), all starting at once;
    seconds from the start until the last one is done. What this machine can do with the same
    grading in ``n`` processes."""
    ctx = multiprocessing.get_context("spawn")
    todo, results, barrier = ctx.Queue(), ctx.SimpleQueue(), ctx.Barrier(n + 1)
    for notebook in sorted(subs.rglob("*.ipynb")):
        todo.put(notebook)
    for _ in range(n):
        todo.put(None)
    warm_nb = next(warm.rglob("*.ipynb"))
    procs = [
        ctx.Process(target=_plain_grader, args=(todo, warm_nb, barrier, results)) for _ in range(n)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.time()
    ends = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    return max(ends) - start


CONTENDERS = (
    "dask, 1 worker",
    "dask, 2 workers",
    "dask, 2 workers, Dask's defaults",
    "--jobs 2",
    "engine, 1 process",
    "engine, 2 processes",
)


def measure_workers(n_subs: int, rounds: int, work: Path, log: Callable[[str], None]) -> dict:
    """Each contender on the same submissions, once per round, in an order that rotates from
    round to round. Each Dask cluster is started for its turn, warmed up by an untimed run (every
    worker's zygote started, as in a long run) and stopped after it, so that no idle cluster
    shares the cores with the one measured."""
    import grading_throughput as gt

    from course_lib.instructor.distributed import DaskRunner

    warm = work / "warm"
    gt.make_submissions(ASSIGNMENT, 4, warm)
    subs_by_round = []
    for r in range(rounds):
        subs = work / f"round{r}"
        gt.make_submissions(ASSIGNMENT, n_subs, subs)
        subs_by_round.append(subs)
    # For Dask: the grading span, from the first task out to the last result in, i.e. the
    # cluster's throughput without the client's fixed costs (reading the submissions before,
    # writing grades.csv, feedback, report and gradebook after), which do not depend on the
    # number of workers and are measured on their own by the simulated class; the whole
    # command too. For the engine alone: from the common start to the last process done.
    samples: dict[str, list[float]] = {k: [] for k in CONTENDERS}
    spans: dict[str, list[float]] = {k: [] for k in CONTENDERS}
    for r, subs in enumerate(subs_by_round):
        shift = r % len(CONTENDERS)
        for name in CONTENDERS[shift:] + CONTENDERS[:shift]:
            out = Path(tempfile.mkdtemp(dir=work))
            if name == "--jobs 2":
                samples[name].append(_grade(subs, out))
            elif name.startswith("engine"):
                spans[name].append(plain_processes(1 if "1 process" in name else 2, subs, warm))
            else:
                workers = 1 if "1 worker" in name else 2
                with dask_processes(workers, work, dask_defaults="defaults" in name) as address:
                    with DaskRunner(address) as runner:
                        _grade(warm, Path(tempfile.mkdtemp(dir=work)), runner)
                    with DaskRunner(address) as runner:
                        timed = _Timed(runner)
                        samples[name].append(_grade(subs, out, timed))
                        spans[name].append(timed.last_result - timed.first_submit)
            shutil.rmtree(out, ignore_errors=True)
        log(
            f"  round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in samples.items() if v)
            + " (grading spans "
            + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in spans.items() if v)
            + ")"
        )
    return {"wall": samples, "span": spans}


# ---------------------------------------------------------------------------------------------
# 2. Per-task overhead: the same tiny task through Dask and through the --jobs pool.
# ---------------------------------------------------------------------------------------------


def tiny_task(payload: dict) -> dict:
    """No grading: a notebook's bytes in, a result-sized dict out."""
    return {
        "student_id": payload["student_id"],
        "n": len(payload["notebook"]),
        "cells": [
            {"grade_id": f"t{i}", "points": 1.0, "status": "passed", "message": ""}
            for i in range(10)
        ],
    }


def measure_overhead(n: int, work: Path, notebook: bytes) -> dict[str, float]:
    from distributed import Client, as_completed

    payloads = [{"student_id": f"s{i}", "notebook": notebook} for i in range(n)]
    times: dict[str, float] = {}
    with dask_processes(2, work) as address:
        client = Client(address, timeout=60, set_as_default=False)
        try:
            for _ in range(2):  # the second pass is the measured one
                start = time.perf_counter()
                futs = [client.submit(tiny_task, p, pure=False) for p in payloads]
                for f in as_completed(futs, loop=client.loop):
                    f.result()
                times["dask"] = time.perf_counter() - start
        finally:
            client.close()
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        for _ in range(2):
            start = time.perf_counter()
            for f in cf.as_completed([pool.submit(tiny_task, p) for p in payloads]):
                f.result()
            times["pool"] = time.perf_counter() - start
    return {k: v / n for k, v in times.items()}


# ---------------------------------------------------------------------------------------------
# 3. A simulated class: the whole pipeline, a fake grading task.
# ---------------------------------------------------------------------------------------------


def _fake_task(seconds: float, result: dict) -> Callable[[dict], dict]:
    import functools

    return functools.partial(_fake_with, seconds, result)


def _fake_with(seconds: float, result: dict, payload: dict) -> dict:
    time.sleep(seconds)
    out = dict(result)
    out["student_id"] = payload["student_id"]
    return out


class _Timed:
    """Wraps a runner: records when the first task went out and the last result came in, and
    the client process's CPU time (all its threads) at both."""

    def __init__(self, runner: Any) -> None:
        self.runner, self.describe = runner, runner.describe
        self.first_submit = self.last_result = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.results = 0

    def __call__(self, todo: list[dict], log: Any) -> Iterator[tuple[dict, dict]]:
        self.first_submit, self.cpu_first = time.perf_counter(), time.process_time()
        for item in self.runner(todo, log):
            self.last_result = time.perf_counter()
            self.results += 1
            yield item  # the client records it (state file, feedback page), then asks again
            self.cpu_last = time.process_time()


def measure_class(
    n: int, rate: float, seconds: float, work: Path, log: Callable[[str], None]
) -> dict[str, float]:
    """The pipeline on ``n`` submissions at ``rate`` results per second, each task sleeping
    ``seconds``: threads = rate × seconds, over 2 ``dask worker`` processes. The scheduler is a
    ``dask scheduler`` process of its own, as on a cluster (a LocalCluster's scheduler would
    share the client's process and its interpreter lock, which no real class run does)."""
    import make_corpus

    from course_lib.instructor import classroom, pipeline
    from course_lib.instructor.distributed import DaskRunner

    subs = work / "class"
    make_corpus.write(ASSIGNMENT, work / "one", only=["honest"])
    honest = work / "one" / "honest" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    for i in range(n):  # hard links: the client reads and hashes every one, the disk holds one
        folder = subs / f"s{i:05d}" / ASSIGNMENT
        folder.mkdir(parents=True)
        os.link(honest, folder / f"{ASSIGNMENT}.ipynb")
    sample = work / "sample"
    pipeline.grade(work / "one", sample, jobs=1, source_dir=ROOT / "solutions", log=lambda m: None)
    result = json.loads(next((sample / ".state").glob("*.json")).read_text())["result"]
    # Every student of the simulation hands in the same notebook; their code is left out of the
    # results, or the copying review would compare 12,000 identical copies (it is timed on its
    # own, on independently written code: review_seconds).
    result["student_code"] = {}
    threads = max(2, round(rate * seconds / 2))
    log(f"  {n} submissions, {seconds:.2f} s each, 2 processes x {threads} threads")
    lines: list[str] = []
    with (
        dask_processes(2, work, nthreads=threads) as address,
        DaskRunner(address, task_fn=_fake_task(seconds, result)) as runner,
    ):
        runner.check_workers(lines.append)  # torch imported on each worker, as a long run has
        timed = _Timed(runner)
        cpu0 = time.process_time()
        start = time.perf_counter()
        # As `course grade` does: the class files read before grading, each feedback page
        # written with its class grade as its result arrives, then the class layer (grades.csv
        # with the class columns, the pages whose grade changed, the written-answer sheets, the
        # copying review, the report).
        inputs = classroom.ClassInputs(out=work / "out")
        options = classroom.prepare(inputs, ROOT / "solutions")
        pages = classroom.ClassPages(options, subs)
        results = pipeline.grade(
            subs,
            work / "out",
            jobs=1,
            source_dir=ROOT / "solutions",
            log=lines.append,
            runner=timed,
            feedback=pages,
        )
        engine_end = time.perf_counter()
        classroom.finish(work / "out", results, subs, ROOT / "solutions", options, inputs, pages)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    ideal = n * seconds / (2 * threads)
    return {
        "n": n,
        "wall": wall,
        "ideal": ideal,
        "before_first": timed.first_submit - start,
        "after_last": start + wall - timed.last_result,
        "engine_after_last": engine_end - timed.last_result,
        "class_layer": start + wall - engine_end,
        "grading_span": timed.last_result - timed.first_submit,
        "client_cpu": cpu,
        # The client's CPU per result while results arrive (receiving, recording, its page):
        # one client process takes at most about 1 / this many results per second.
        "client_cpu_per_result": (timed.cpu_last - timed.cpu_first) / max(1, timed.results),
        "slots": 2 * threads,
        "rate": n / (timed.last_result - timed.first_submit),
    }


# ---------------------------------------------------------------------------------------------
# The make bench piece.
# ---------------------------------------------------------------------------------------------


def human(seconds: float) -> str:
    """A projected time as the book's table writes it."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def projection_table(
    projection: dict[int, float],
    per_machine: float,
    speedup: float,
    ceiling: float,
    sim: dict,
    context: str,
) -> str:
    """The book's table (``dask_projection.md``): projected wall time per cluster size, and
    what it was computed from."""

    rows = "\n".join(f"| {w} | {2 * w} | {human(projection[w])} |" for w in sorted(projection))
    return (
        f"| machines of {CORES_PER_WORKER} cores ({CORES_PER_WORKER} `dask worker` each) | "
        f"notebooks graded at once | projected wall time for {CLASS_SIZE:,} notebooks |\n"
        f"| ---: | ---: | ---: |\n{rows}\n\n"
        f"Computed by `benchmarks/dask_scaling.py` from what it measured: {per_machine:.2f} s per "
        f"notebook of chapter 5 on a machine of {CORES_PER_WORKER} cores running "
        f"{CORES_PER_WORKER} `dask worker` (a real scheduler and the client on the same cores, "
        "honest submissions, Dask's per-task cost included; there 2 workers grade "
        f"{speedup:.2f}× as many notebooks per second as 1, where the engine alone, without Dask "
        f"or a client, in 2 processes reaches {ceiling:.2f}×), plus the client's own time in a "
        f"simulated class of {sim['n']:,}: {sim['before_first']:.1f} s before the first task and "
        f"{sim['after_last']:.1f} s after the last result (the class layer included). There "
        f"the client spent {1000 * sim['client_cpu_per_result']:.1f} ms of CPU on each result "
        "it received (recording it, writing its feedback page), so one client takes at most "
        f"about {1 / sim['client_cpu_per_result']:.0f} results per second, where 10 such "
        f"machines deliver about {10 / per_machine:.0f} and 50 about {50 / per_machine:.0f}: "
        "where the machines deliver more, the client's rate sets the projected time. "
        f"{context}\n"
    )


def measure(
    *,
    quick: bool = False,
    log: Callable[[str], None] = print,
    projection_path: Path | None = None,
) -> dict:
    """Run the three measurements; write the projection table to ``projection_path``
    (default: :data:`PROJECTION` for a full run, a temporary folder for ``quick``)."""
    import datetime

    from tables import paired_ratios, summarize

    load_start = os.getloadavg()

    # The tasks below are this module's functions: worker processes import it by name.
    path_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH_DIR), path_before) if p)
    seed_before = os.environ.get("COURSE_GRADING_SEED")
    os.environ["COURSE_GRADING_SEED"] = seed_before or "4242"  # `course grade` requires one
    n_subs, rounds, n_tiny, n_class, rate = EFFORT["quick" if quick else "full"]
    work = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    try:
        log(f"  1. {n_subs} submissions of {ASSIGNMENT} x {rounds} round(s): 1 vs 2 workers")
        measured = measure_workers(n_subs, rounds, work, log)
        s, spans = measured["wall"], measured["span"]
        log(f"  2. per-task overhead over {n_tiny} tiny tasks")
        nb = next((work / "round0").rglob("*.ipynb")).read_bytes()
        over = measure_overhead(n_tiny, work, nb)
        per_nb_1 = statistics.median(t / n_subs for t in spans["dask, 1 worker"])
        log(f"  3. a class of {n_class}, {per_nb_1:.2f} s per notebook")
        sim = measure_class(n_class, rate, per_nb_1, work, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if path_before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = path_before
        if seed_before is None:
            del os.environ["COURSE_GRADING_SEED"]
    speed = summarize(paired_ratios(spans["dask, 1 worker"], spans["dask, 2 workers"]))
    end_to_end = summarize(paired_ratios(s["dask, 1 worker"], s["dask, 2 workers"]))
    ceiling = summarize(paired_ratios(spans["engine, 1 process"], spans["engine, 2 processes"]))
    settings = summarize(
        paired_ratios(spans["dask, 2 workers, Dask's defaults"], spans["dask, 2 workers"])
    )
    vs_jobs = summarize(paired_ratios(s["dask, 2 workers"], s["--jobs 2"]))
    overhead_ms = 1000 * (over["dask"] - over["pool"])
    share = 1 - sim["ideal"] / sim["wall"]
    count = [n_subs] * rounds
    rows = [
        {
            "label": "the engine alone, 1 process",
            "samples": spans["engine, 1 process"],
            "count": count,
            "baseline": None,
            "note": "no Dask, no client: this machine's own rate",
        },
        {
            "label": "the engine alone, 2 processes",
            "samples": spans["engine, 2 processes"],
            "count": count,
            "baseline": "the engine alone, 1 process",
            "vs": "1 process",
            "note": "the ceiling for 2 workers here",
        },
        {
            "label": "real scheduler, 1 `dask worker`: grading span",
            "samples": spans["dask, 1 worker"],
            "count": count,
            "baseline": None,
            "note": "first task out to last result in",
        },
        {
            "label": "real scheduler, 2 `dask worker`: grading span",
            "samples": spans["dask, 2 workers"],
            "count": count,
            "baseline": "real scheduler, 1 `dask worker`: grading span",
            "vs": "1 worker",
            "note": "",
        },
        {
            "label": "2 `dask worker` with Dask's default settings: grading span",
            "samples": spans["dask, 2 workers, Dask's defaults"],
            "count": count,
            "baseline": "real scheduler, 2 `dask worker`: grading span",
            "vs": "the grading settings",
            "note": "profiler on, 20 ms ticks",
        },
        {
            "label": "real scheduler, 1 `dask worker`",
            "samples": s["dask, 1 worker"],
            "count": count,
            "baseline": None,
            "note": "workers warmed up; the whole command",
        },
        {
            "label": "real scheduler, 2 `dask worker`",
            "samples": s["dask, 2 workers"],
            "count": count,
            "baseline": "real scheduler, 1 `dask worker`",
            "vs": "1 worker",
            "note": "",
        },
        {
            "label": "`course grade --jobs 2`",
            "samples": s["--jobs 2"],
            "count": count,
            "baseline": "real scheduler, 2 `dask worker`",
            "vs": "2 workers",
            "note": "includes starting its 2 grader processes",
        },
    ]
    # Projection: the client's fixed costs (before the first task and after the last result,
    # scaled to the class from the simulation) plus the grading at the rate measured with 2
    # workers on this 2-core machine (not twice the 1-worker rate: they share the cores with
    # the scheduler and the client), per machine of 2 cores; but never faster than the one
    # client can take results (its CPU per result in the simulation, on one core).
    per_machine = statistics.median(t / n_subs for t in spans["dask, 2 workers"])
    fixed = (sim["before_first"] + sim["after_last"]) * CLASS_SIZE / sim["n"]
    client_limit = CLASS_SIZE * sim["client_cpu_per_result"]
    projection = {
        w: max(CLASS_SIZE * per_machine / w, client_limit) + fixed for w in PROJECTED_WORKERS
    }
    load_end = os.getloadavg()
    context = (
        f"Measured on {datetime.datetime.now(datetime.UTC):%Y-%m-%d}, {os.cpu_count()} cores, "
        f"load average {load_start[0]:.1f} at the start and {load_end[0]:.1f} at the end."
    )
    if projection_path is None:
        projection_path = (
            Path(tempfile.gettempdir()) / "course-bench" / PROJECTION.name if quick else PROJECTION
        )
    projection_path.parent.mkdir(parents=True, exist_ok=True)
    projection_path.write_text(
        projection_table(projection, per_machine, speed["median"], ceiling["median"], sim, context),
        encoding="utf-8",
    )
    log(f"  wrote {projection_path}")
    kept = speed["median"] / ceiling["median"]
    facts = [
        f"2 workers over 1, grading throughput (first task out to last result in): "
        f"{speed['median']:.2f}× (IQR {speed['iqr']:.2f}); the whole command, with the "
        f"client's fixed costs that do not depend on the workers: "
        f"{end_to_end['median']:.2f}× (IQR {end_to_end['iqr']:.2f}); Dask with 2 workers over "
        f"`--jobs 2`: {1 / vs_jobs['median']:.2f}× the rate.",
        f"the same grading without Dask, a scheduler or a client, in 2 processes over 1: "
        f"{ceiling['median']:.2f}× (IQR {ceiling['iqr']:.2f}), this machine's ceiling for 2 "
        f"workers; Dask keeps "
        f"{100 * kept:.0f} % of it.",
        f"the grading workers' settings (no statistical profiler, slower ticks; "
        f"`distributed.WORKER_CONFIG`) against Dask's defaults, 2 workers: "
        f"{settings['median']:.2f}× the rate (IQR {settings['iqr']:.2f}).",
        f"per-task overhead of Dask over the `--jobs` pool: {overhead_ms:+.1f} ms per submission "
        f"({1000 * over['dask']:.1f} ms against {1000 * over['pool']:.1f} ms for a tiny task, "
        f"{n_tiny} tasks, 2 processes each).",
        f"simulated class of {sim['n']}: {sim['wall']:.0f} s wall against {sim['ideal']:.0f} s "
        f"of sleeping tasks on {sim['slots']} slots ({sim['rate']:.0f} results/s); not grading: "
        f"{100 * share:.1f} % (before the first task {sim['before_first']:.1f} s, after the last "
        f"result {sim['after_last']:.1f} s: the engine's grades.csv, report and gradebook "
        f"{sim['engine_after_last']:.1f} s, then the class layer {sim['class_layer']:.1f} s, "
        "written marks, the feedback pages whose grade changed, written-answer sheets, "
        f"copying review); client CPU {sim['client_cpu']:.0f} s, of which "
        f"{1000 * sim['client_cpu_per_result']:.1f} ms per result while results arrived (one "
        f"client takes at most about {1 / sim['client_cpu_per_result']:.0f} results/s).",
        f"projected wall time of {CLASS_SIZE:,} notebooks at "
        f"{per_machine:.2f} s per notebook per machine of 2 cores (2 workers), no faster than "
        "the client takes results: "
        + ", ".join(f"{w} machine(s) {human(projection[w])}" for w in PROJECTED_WORKERS)
        + ".",
    ]
    checks = [
        (
            speed["median"] >= REQUIRED_SPEEDUP,
            f"2 `dask worker` grade {speed['median']:.2f}× as many submissions per second as 1 "
            f"(required: {REQUIRED_SPEEDUP}×; the engine alone in 2 processes: "
            f"{ceiling['median']:.2f}×)",
        ),
        (
            share <= MAX_CLIENT_SHARE,
            f"a simulated class of {sim['n']}: {100 * share:.1f} % of the run is not grading "
            f"(required: at most {100 * MAX_CLIENT_SHARE:.0f} %)",
        ),
    ]
    return {
        "key": "dask",
        "title": TITLE,
        "status": "measured",
        "rows": rows,
        "facts": facts,
        "checks": checks if not quick else [],
        "figures": {
            "speedup": speed,
            "speedup_end_to_end": end_to_end,
            "engine_ceiling": ceiling,
            "settings_gain": settings,
            "overhead_ms": overhead_ms,
            "simulation": sim,
            "projection_s": projection,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    section = measure(
        quick=args.quick,
        log=lambda m: print(f"{time.perf_counter() - start:6.0f}s {m}", flush=True),
    )
    for line in section["facts"]:
        print(line)
    for ok, text in section["checks"]:
        print(("PASS: " if ok else "FAIL: ") + text)
    print(json.dumps(section["figures"], indent=1, default=str))


if __name__ == "__main__":
    main()

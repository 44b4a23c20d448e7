"""``course grade --scheduler``: Dask grades like ``--jobs``, and a dying machine loses nothing.

A small mixed corpus (honest, wrong, broken, hostile, missing) is graded once with ``--jobs 2``;
a LocalCluster and a real ``dask scheduler`` with two ``dask worker`` processes, started here on
127.0.0.1 on free ports and always torn down, must write the same ``grades.csv`` byte for byte,
also when a worker is SIGKILLed mid-task or the client is killed and re-run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "submissions"))

import make_corpus  # noqa: E402

pytest.importorskip("distributed")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask")]

ASSIGNMENT = "05_attention"
if not (ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists():
    pytest.skip(f"no solutions/{ASSIGNMENT} yet", allow_module_level=True)
STUDENTS = [
    "honest",
    "blank",
    "wrong_last",
    "truncated_json",
    "monkeypatch",
    "reference_import",
    "os_exit",
    "no_notebook",
]
TIMEOUT = 20.0
DASK = str(Path(sys.executable).parent / "dask")


def _limits():
    from course_lib.instructor.sandbox import Limits

    return Limits(timeout=TIMEOUT, memory_mb=2048)


def _grade(subs: Path, out: Path, runner=None, log: Callable[[str], None] | None = None):
    from course_lib.instructor import pipeline

    return pipeline.grade(
        subs,
        out,
        jobs=2,
        limits=_limits(),
        source_dir=ROOT / "solutions",
        log=log or (lambda m: None),
        runner=runner,
        allow_default_seed=True,  # the seed's own test sets one; --jobs and Dask read the same
    )


def _wait(pred: Callable[[], object], timeout: float, what: str) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("dask")
    subs = base / "submitted"
    make_corpus.write(ASSIGNMENT, subs, only=STUDENTS)
    out = base / "jobs2"
    _grade(subs, out)
    return {"base": base, "subs": subs, "csv": (out / "grades.csv").read_bytes()}


class DaskProcesses:
    """A ``dask scheduler`` and named ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.procs: dict[str, subprocess.Popen] = {}
        self.monitor: Any = None
        self.address = f"tcp://127.0.0.1:{_free_port()}"

    def start_scheduler(self) -> None:
        from distributed import Client

        port = self.address.rsplit(":", 1)[1]
        self._start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", port])

        def connect() -> object:
            assert self.procs["scheduler"].poll() is None, self._log("scheduler")
            try:
                return Client(self.address, timeout=2, set_as_default=False)
            except OSError:
                return None

        self.monitor = _wait(connect, 60, "the scheduler to listen")

    def _log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")

    def _start(self, name: str, cmd: list[str], env: dict | None = None) -> None:
        log = open(self.base / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.procs[name] = subprocess.Popen(
            [*cmd, "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, cwd=self.base, env=env
        )
        log.close()

    def add_worker(self, name: str, env: dict | None = None) -> str:
        """Start ``dask worker`` (no nanny: its pid is the worker's); return its address."""
        cmd = [DASK, "worker", self.address, "--name", name, "--nthreads", "1"]
        cmd += ["--no-nanny", "--host", "127.0.0.1"]
        self._start(name, cmd, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})

        def registered() -> str | None:
            for address, info in self.monitor.scheduler_info(n_workers=-1)["workers"].items():
                if info.get("name") == name:
                    return address
            assert self.procs[name].poll() is None, self._log(name)
            return None

        return _wait(registered, 90, f"worker {name} to join")  # type: ignore[return-value]

    def close(self) -> None:
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                self.monitor.close(timeout=5)
        for proc in reversed(list(self.procs.values())):  # workers first, the scheduler last
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(corpus: dict) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(corpus["base"])
    try:
        procs.start_scheduler()
        procs.add_worker("w1")
        procs.add_worker("w2")
        yield procs
    finally:
        procs.close()


def _runner(spec: str):
    from course_lib.instructor.distributed import DaskRunner

    return DaskRunner(spec)


def test_unreachable_scheduler_is_one_clear_line_exit_2_and_nothing_written(
    corpus: dict, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "grade",
            str(corpus["subs"]),
            "--out",
            str(out),
            "--allow-default-seed",
        ]
        + ["--scheduler", f"tcp://127.0.0.1:{_free_port()}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("course grade: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert "dask scheduler" in lines[0] and "nothing was written" in lines[0]
    assert not out.exists()


def test_local_cluster_grades_like_jobs_byte_for_byte(corpus: dict) -> None:
    out = corpus["base"] / "local"
    logs: list[str] = []
    with _runner("local:2") as runner:
        _grade(corpus["subs"], out, runner, logs.append)
        # The grading workers' settings reached the workers: no profiler, hence no note.
        profiling = runner.client.run(
            lambda: __import__("dask").config.get("distributed.worker.profile.enabled")
        )
    assert profiling and set(profiling.values()) == {False}, profiling
    assert not any("profiler" in m for m in logs), logs
    assert (out / "grades.csv").read_bytes() == corpus["csv"]
    assert any("on a local Dask cluster of 2 worker process(es)" in m for m in logs), logs
    assert (out / "feedback" / "honest" / f"{ASSIGNMENT}.html").exists()
    assert len(list((out / ".state").glob("*.json"))) == len(STUDENTS)
    # The workers made each submission's fingerprint for the copying review, as --jobs does.
    for name in ("honest", "wrong_last"):
        state = f"{name}__{ASSIGNMENT}.json"
        record = json.loads((out / ".state" / state).read_text())["result"]["fingerprint"]
        jobs = json.loads((corpus["base"] / "jobs2" / ".state" / state).read_text())["result"]
        assert record["positions"] and record == jobs["fingerprint"], name


def test_real_scheduler_and_two_workers_grade_like_jobs(
    corpus: dict, cluster: DaskProcesses
) -> None:
    out = corpus["base"] / "real"
    logs: list[str] = []
    with _runner(cluster.address) as runner:
        _grade(corpus["subs"], out, runner, logs.append)
    assert (out / "grades.csv").read_bytes() == corpus["csv"]
    # These workers run with Dask's defaults: the client says how to start them for grading.
    notes = [m for m in logs if "statistical profiler" in m]
    assert len(notes) == 1 and notes[0].startswith("note: 2 Dask worker(s)"), logs
    assert "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in notes[0]

    def loaded() -> list[str]:
        from course_lib.instructor import distributed

        return sorted(distributed._SOURCES)

    source = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    ran = cluster.monitor.run(loaded)
    assert ran == {address: [sha] for address in ran} and len(ran) == 2  # checked, loaded once


def test_workers_grade_with_the_clients_seed(cluster: DaskProcesses) -> None:
    def probe(seed: str) -> tuple[int, int, int]:
        import os

        from course_lib import grading
        from course_lib.instructor.distributed import seeded

        os.environ[grading.SEED_ENV] = "7"  # whatever the worker was started with
        with seeded(seed):
            inside = grading.grading_seed()
        after = grading.grading_seed()
        del os.environ[grading.SEED_ENV]
        return inside, after, grading.DEFAULT_SEED

    inside, after, _ = cluster.monitor.submit(probe, "31337", pure=False).result(timeout=60)
    assert (inside, after) == (31337, 7)
    inside, after, default = cluster.monitor.submit(probe, "", pure=False).result(timeout=60)
    assert (inside, after) == (default, 7)


def test_an_interrupted_client_resumes_from_what_it_wrote(
    corpus: dict, cluster: DaskProcesses
) -> None:
    out = corpus["base"] / "interrupted"
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "grade",
            str(corpus["subs"]),
            "--out",
            str(out),
            "--allow-default-seed",
        ]
        + ["--scheduler", cluster.address, "--timeout", str(TIMEOUT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        _wait(lambda: len(list((out / ".state").glob("*.json"))) >= 2, 120, "two results")
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=10)
    saved = len(list((out / ".state").glob("*.json")))
    assert not (out / "grades.csv").exists() or saved == len(STUDENTS)
    logs: list[str] = []
    with _runner(cluster.address) as runner:
        _grade(corpus["subs"], out, runner, logs.append)
    assert any(f"{saved} unchanged, {len(STUDENTS) - saved} to grade" in m for m in logs), logs
    assert (out / "grades.csv").read_bytes() == corpus["csv"]


def test_a_worker_with_other_grading_code_is_refused(
    corpus: dict, cluster: DaskProcesses, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(
        ROOT / "course_lib", other / "course_lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    grader = other / "course_lib" / "instructor" / "grader.py"
    grader.write_text(grader.read_text() + "\n# a different grading rule\n")
    address = cluster.add_worker("other", env={"PYTHONPATH": str(other)})
    subs = tmp_path / "subs"
    for student in ("honest", "blank"):
        shutil.copytree(corpus["subs"] / student, subs / student)
    logs: list[str] = []
    with _runner(cluster.address) as runner:
        results = _grade(subs, tmp_path / "out", runner, logs.append)
    refused = [m for m in logs if m.startswith(f"refusing Dask worker {address}: ")]
    assert len(refused) == 1, logs
    assert "grading code is code_version=" in refused[0]
    assert "install the same course_lib commit" in refused[0]
    assert not any(address in m for m in logs if not m.startswith("refusing")), logs
    _wait(lambda: cluster.procs["other"].poll() is not None, 60, "the refused worker to leave")
    scores = {r["student_id"]: r["score"] for r in results}
    assert scores == {"honest": 10.0, "blank": 0.0}


def test_a_worker_killed_mid_task_loses_nothing(corpus: dict, cluster: DaskProcesses) -> None:
    out = corpus["base"] / "killed"
    victim = next(
        a
        for a, i in cluster.monitor.scheduler_info(n_workers=-1)["workers"].items()
        if i.get("name") == "w1"
    )
    done: dict[str, object] = {}

    def run() -> None:
        try:
            with _runner(cluster.address) as runner:
                done["results"] = _grade(corpus["subs"], out, runner)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            done["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    busy = _wait(
        lambda: [
            k
            for k in cluster.monitor.processing(workers=[victim]).get(victim, ())
            if str(k).startswith("grade-")
        ],
        120,
        "worker w1 to take a submission",
    )
    os.kill(cluster.procs["w1"].pid, signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive(), "the run did not finish after the kill"
    assert "error" not in done, done.get("error")
    assert cluster.procs["w1"].wait(timeout=10) == -signal.SIGKILL
    assert (out / "grades.csv").read_bytes() == corpus["csv"]  # one row each, none crashed by it
    student = str(busy[0]).split("-")[1]
    assert (out / ".state" / f"{student}__{ASSIGNMENT}.json").exists()


# ---------------------------------------------------------------------------------------------
# A task that fails on the workers is a grader_error row: in-process clusters (threads), cheap.
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _in_process_cluster(n_workers: int, **config: object) -> Iterator[str]:
    """A LocalCluster of ``n_workers`` in-process workers (threads, no torch import per
    process); yields its tcp:// address. ``config``: Dask settings for its scheduler."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
        ) as local,
    ):
        yield local.scheduler_address


_CALLS: dict[str, list[str]] = {}  # Replay token -> students asked (in-process workers)
_GATES: dict[str, threading.Event] = {}


class Replay:
    """A grading task that returns each student's result from the ``--jobs 2`` run (no
    grading: the point is what the client does with the answers), raises for the students in
    ``fail`` (or, ``gated``, waits until the test lets it go), and records whom it was asked
    about. Dask sends it to the workers as a copy: what it shares with the test lives in this
    module (the workers are threads of this process)."""

    def __init__(self, corpus: dict, fail: frozenset[str] = frozenset(), gated: bool = False):
        self.state = corpus["base"] / "jobs2" / ".state"
        self.fail, self.gated = fail, gated
        self.token = os.urandom(8).hex()
        _CALLS[self.token] = []
        _GATES[self.token] = threading.Event()

    @property
    def asked(self) -> list[str]:
        return _CALLS[self.token]

    @property
    def gate(self) -> threading.Event:
        return _GATES[self.token]

    def __call__(self, payload: dict) -> dict:
        import json

        student = payload["student_id"]
        _CALLS[self.token].append(student)
        if self.gated and student in self.fail:
            _GATES[self.token].wait(60)  # held until the test has closed this task's worker
        elif student in self.fail:
            raise RuntimeError(f"injected fault outside the sandbox for {student}")
        state = self.state / f"{student}__{payload['assignment_id']}.json"
        return json.loads(state.read_text())["result"]


def _csv_lines(path: Path) -> dict[str, str]:
    return {line.split(",", 1)[0]: line for line in path.read_text().splitlines()[1:]}


def test_a_task_that_raises_on_the_workers_is_a_grader_error_row_never_a_grade(
    corpus: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from course_lib import cli
    from course_lib.instructor import distributed
    from course_lib.instructor.distributed import DaskRunner

    out = tmp_path / "out"
    blank = frozenset({"blank"})
    with _in_process_cluster(1) as address:
        faulty = Replay(corpus, fail=blank)
        with DaskRunner(address, task_fn=faulty) as runner:
            _grade(corpus["subs"], out, runner)
        assert faulty.asked.count("blank") == 1 + distributed.RETRIES
        rows, expected = _csv_lines(out / "grades.csv"), _csv_lines_of(corpus["csv"])
        assert rows.pop("blank") == (
            f"blank,{ASSIGNMENT},0,10,grader_error: on the Dask workers: RuntimeError: "
            "injected fault outside the sandbox for blank,"
        )
        assert rows == {k: v for k, v in expected.items() if k != "blank"}
        saved = sorted(p.name for p in (out / ".state").glob("*.json"))
        assert saved == sorted(f"{s}__{ASSIGNMENT}.json" for s in STUDENTS if s != "blank")
        # `course grade` re-grades only that one; failing again, it exits as --jobs does.
        again = Replay(corpus, fail=blank)
        monkeypatch.setattr(distributed, "grade_remote", again)  # what `course grade` sends
        code = cli.main(
            ["grade", str(corpus["subs"]), "--out", str(out), "--allow-default-seed"]
            + ["--scheduler", address, "--source", str(ROOT / "solutions")]
            + ["--timeout", str(TIMEOUT)]
        )
        assert code == 3  # the --jobs path's status for a submission the grader failed on
        assert again.asked == ["blank"] * (1 + distributed.RETRIES)
        healed = Replay(corpus)
        with DaskRunner(address, task_fn=healed) as runner:
            _grade(corpus["subs"], out, runner)
    assert healed.asked == ["blank"]
    assert (out / "grades.csv").read_bytes() == corpus["csv"]


def _csv_lines_of(data: bytes) -> dict[str, str]:
    return {line.split(",", 1)[0]: line for line in data.decode().splitlines()[1:]}


async def _remove_worker(dask_scheduler: Any, address: str) -> None:
    await dask_scheduler.remove_worker(address, stimulus_id="test-kill", close=True)


def test_a_task_whose_worker_died_allowed_failures_times_is_a_grader_error_row(
    corpus: dict, tmp_path: Path
) -> None:
    from distributed import Client

    from course_lib.instructor.distributed import DaskRunner

    task = Replay(corpus, fail=frozenset({"honest"}), gated=True)
    done: dict[str, object] = {}
    out = tmp_path / "out"
    with _in_process_cluster(2, **{"distributed.scheduler.allowed-failures": 0}) as address:
        monitor = Client(address, set_as_default=False)

        def run() -> None:
            try:
                with DaskRunner(address, task_fn=task) as runner:
                    done["results"] = _grade(corpus["subs"], out, runner)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                done["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:

            def holder() -> str | None:
                for worker, keys in monitor.processing().items():
                    if any(str(k).startswith("grade-honest-") for k in keys):
                        return worker
                return None

            worker = _wait(holder, 60, "a worker to take honest's task")
            # The worker goes away under the task (as a killed machine does): with
            # allowed-failures 0 the scheduler gives up on the task at once (KilledWorker).
            monitor.run_on_scheduler(_remove_worker, address=worker)
            thread.join(timeout=120)
        finally:
            task.gate.set()
            monitor.close()
    assert not thread.is_alive(), "the run did not finish"
    assert "error" not in done, done.get("error")
    rows = {r["student_id"]: r for r in done["results"]}  # type: ignore[union-attr]
    # Every task the worker held when it went (running or queued there) failed with it.
    killed = {k for k, r in rows.items() if r["status"] == "grader_error"}
    assert "honest" in killed
    for student in killed:
        assert "KilledWorker" in rows[student]["reason"], rows[student]["reason"]
        assert rows[student]["score"] == 0.0
        assert not any(c["points"] for c in rows[student]["cells"])
        assert not (out / ".state" / f"{student}__{ASSIGNMENT}.json").exists()
    assert len(killed) < len(STUDENTS)  # the other worker graded the rest
    expected = _csv_lines_of(corpus["csv"])
    others = {k: v for k, v in _csv_lines(out / "grades.csv").items() if k not in killed}
    assert others == {k: v for k, v in expected.items() if k not in killed}

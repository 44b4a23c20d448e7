"""``course grade --scheduler``: the same grading engine, each submission a Dask task.

``--scheduler tcp://HOST:PORT`` connects to a running ``dask scheduler``; ``--scheduler
local:N`` starts a :class:`distributed.LocalCluster` of N worker processes on this machine.
Either way:

- each task grades one submission with :func:`course_lib.instructor.grader.grade_notebook` in a
  worker process that imported torch once; the student's code runs in that worker's own sandbox
  (bubblewrap when the worker has it);
- the submission travels to the worker as bytes (no shared file system); the source notebooks
  travel once per worker, in a :class:`GradingPlugin`, which checks their hash and the worker's
  grading-code version (:func:`code_version`) before the worker takes work. A worker with other
  grading code is refused: the client names it, and the plugin closes it;
- this client stays the only writer of OUT and of the gradebook: results come back as they
  complete and the pipeline writes each one's state file atomically at once, so an interrupted
  client resumes from what it wrote;
- a worker that dies mid-task costs nothing but time: the scheduler runs the task again on
  another worker (``distributed.scheduler.allowed-failures``), and a task that raised is retried
  (``retries=``). A submission is never recorded as the student's crash because a machine died:
  one that no worker could finish (``KilledWorker``, or a task that raised outside the
  student's sandbox every time) gets a ``grader_error`` row, as a grader fault of ``--jobs``
  does: not stored, so the next run grades it again, and ``course grade`` exits with status 3.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import course_lib

RETRIES = 2  # a task that raised on a worker is tried this many more times
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler
WORKER_WAIT = 120.0  # seconds to wait for a first worker
PLUGIN_PREFIX = "course-grade-"
LOCAL_SPEC = re.compile(r"^local:(\d+)$")
# Dask settings for a grading worker, which runs one long CPU-bound task at a time: no
# statistical profiler (by default every worker samples the stacks of all its threads every
# 10 ms) and slower event-loop and system-monitor ticks (20 ms and 500 ms by default). The
# client applies them to ``local:N``; ``dask worker`` reads them from the environment
# (:func:`worker_env`), as the worker image and the instructors' pages set them.
WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}

log_worker = logging.getLogger("course_lib.grading_worker")


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be reached, was lost, or has no worker that may grade."""


class WorkerRefused(RuntimeError):
    """This worker's grading code differs from the client's: it takes no work."""


# ---------------------------------------------------------------------------------------------
# What a worker must match.
# ---------------------------------------------------------------------------------------------

_code_version: str | None = None


def code_version() -> str:
    """A hash of the installed ``course_lib`` (every ``.py`` file and shipped data file, by path
    and content) and of its ``__version__``: two processes grade alike only if these match."""
    global _code_version
    if _code_version is None:
        root = Path(course_lib.__file__).resolve().parent
        h = hashlib.sha256(course_lib.__version__.encode() + b"\0")
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and "__pycache__" not in p.parts
            and (p.suffix == ".py" or p.parent.name == "data_files")
        )
        for p in files:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
        _code_version = h.hexdigest()[:16]
    return _code_version


def worker_identity() -> dict[str, Any]:
    """What a worker runs: compared with the client's before the worker gets work."""
    import dask
    import torch

    from course_lib.instructor.sandbox import bwrap_path

    return {
        "code_version": code_version(),
        "course_lib": course_lib.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "bwrap": bwrap_path() is not None,
        "pid": os.getpid(),
        "profiler": bool(dask.config.get("distributed.worker.profile.enabled", default=False)),
    }


def worker_env() -> dict[str, str]:
    """:data:`WORKER_CONFIG` as the environment variables ``dask worker`` reads
    (``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``, ...)."""
    return {
        "DASK_" + key.replace(".", "__").replace("-", "_").upper(): str(value)
        for key, value in WORKER_CONFIG.items()
    }


def refusal(mine: dict[str, Any], wanted: dict[str, Any]) -> str:
    """Why a worker with identity ``mine`` may not grade for a client with ``wanted`` ("" if it
    may)."""
    for field, what in (("code_version", "grading code"), ("torch", "torch")):
        if mine.get(field) != wanted.get(field):
            return (
                f"its {what} is {field}={mine.get(field)} but this client's is "
                f"{wanted.get(field)}; install the same course_lib commit and torch on it "
                "(or build the worker image from the same commit) and restart it"
            )
    return ""


# ---------------------------------------------------------------------------------------------
# The worker side.
# ---------------------------------------------------------------------------------------------

_SOURCES: dict[str, Any] = {}  # source sha256 -> SourceAssignment, on a worker
_REFUSED: dict[str, str] = {}  # "why" -> message, when this worker was refused
_GRADE_LOCK = threading.Lock()  # the grader redirects stdout: one submission at a time


def _prepare_process() -> None:
    """What the ``--jobs`` pool does in each grader process: no display, one torch thread."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)


def _load_sources(sources: dict[str, bytes]) -> None:
    from course_lib.instructor import notebooks as nbk

    folder = Path(tempfile.mkdtemp(prefix="course-sources-"))
    try:
        for aid, data in sources.items():
            sha = hashlib.sha256(data).hexdigest()
            if sha in _SOURCES:
                continue
            path = folder / aid / f"{aid}.ipynb"
            path.parent.mkdir(parents=True)
            path.write_bytes(data)
            _SOURCES[sha] = nbk.load_source(path, aid)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - distributed is a dependency; --jobs works without it
    WorkerPlugin = object  # type: ignore[assignment,misc]


class GradingPlugin(WorkerPlugin):  # type: ignore[misc,valid-type]
    """Set up on every worker, now and when one joins later: refuse the worker (close it) if
    its grading code or torch differs from the client's; else prepare the process and load the
    source notebooks, each checked against its sha256."""

    def __init__(self, wanted: dict[str, Any], sources: dict[str, bytes], shas: dict[str, str]):
        self.wanted = wanted
        self.sources = sources
        self.shas = shas
        key = hashlib.sha256(repr((wanted["torch"], sorted(shas.items()))).encode())
        # The same for every run of this class with this code, so that a run removes what a
        # killed client of the same class left registered.
        self.name = f"{PLUGIN_PREFIX}{wanted['code_version']}-{key.hexdigest()[:12]}"
        self.idempotent = True

    def setup(self, worker: Any) -> None:
        why = refusal(worker_identity(), self.wanted)
        if why:
            _REFUSED["why"] = why
            log_worker.error("course grade: this worker is refused: %s", why)
            worker.loop.add_callback(worker.close, reason="course grade: refused", nanny=True)
            return
        for aid, data in self.sources.items():
            if hashlib.sha256(data).hexdigest() != self.shas[aid]:
                _REFUSED["why"] = f"the source notebook of {aid} arrived damaged"
                log_worker.error("course grade: %s", _REFUSED["why"])
                return
        _prepare_process()
        _load_sources(self.sources)


@contextlib.contextmanager
def seeded(seed: str) -> Iterator[None]:
    """The client's ``COURSE_GRADING_SEED`` in this worker's environment while one submission
    is graded (the hidden tests read it there; workers do not inherit the client's
    environment)."""
    from course_lib.grading import SEED_ENV

    before = os.environ.get(SEED_ENV)
    if seed:
        os.environ[SEED_ENV] = seed
    else:
        os.environ.pop(SEED_ENV, None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SEED_ENV, None)
        else:
            os.environ[SEED_ENV] = before


def grade_remote(payload: dict[str, Any]) -> dict[str, Any]:
    """One submission, on a worker: the notebook's bytes go to a private temporary file, then
    through the same per-submission function as ``--jobs``."""
    from course_lib.instructor.grader import grade_notebook
    from course_lib.instructor.pipeline import result_dict
    from course_lib.instructor.sandbox import Limits

    if _REFUSED:
        raise WorkerRefused(_REFUSED["why"])
    if payload["code_version"] != code_version():
        raise WorkerRefused(refusal({"code_version": code_version()}, payload))
    source = _SOURCES.get(payload["source_sha"])
    if source is None:
        raise WorkerRefused("the source notebook was not loaded on this worker (plugin missing)")
    folder = Path(tempfile.mkdtemp(prefix="course-sub-"))
    try:
        aid = payload["assignment_id"]
        notebook = folder / aid / f"{aid}.ipynb"
        notebook.parent.mkdir()
        if payload["oversize"]:
            with open(notebook, "wb") as f:  # a sparse file of the same size: same verdict
                f.truncate(payload["oversize"])
        elif payload["notebook"] is not None:
            notebook.write_bytes(payload["notebook"])
        with _GRADE_LOCK, seeded(payload["seed"]):
            result = grade_notebook(
                source,
                notebook,
                student_id=payload["student_id"],
                limits=Limits(**payload["limits"]),
                hidden_modules=payload["hidden_modules"],
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result_dict(result, source)


# ---------------------------------------------------------------------------------------------
# The client side.
# ---------------------------------------------------------------------------------------------


def _payload(task: dict, shas: dict[str, str], wanted: dict[str, Any]) -> dict[str, Any]:
    from course_lib.instructor.notebooks import MAX_NOTEBOOK_BYTES

    path = Path(task["notebook"])
    data, oversize = None, 0
    if path.exists():
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            oversize = size
        else:
            data = path.read_bytes()
    return {
        "student_id": task["student_id"],
        "assignment_id": task["assignment_id"],
        "notebook": data,
        "oversize": oversize,
        "source_sha": shas[task["source"]],
        "limits": task["limits"],
        "hidden_modules": task["hidden_modules"],
        "code_version": wanted["code_version"],
        "torch": wanted["torch"],
        "seed": os.environ.get("COURSE_GRADING_SEED", ""),  # as the pipeline's state key reads it
    }


class DaskRunner:
    """Grades the pipeline's tasks on a Dask cluster: ``runner(todo, log)`` yields
    ``(task, result)`` as results arrive. Use as a context manager (it owns the client and, for
    ``local:N``, the cluster)."""

    def __init__(
        self,
        scheduler: str,
        *,
        window: int | None = None,
        task_fn: Callable[[dict], dict] | None = None,
        threads_per_worker: int = 1,
    ) -> None:
        self.scheduler = scheduler
        self.window = window
        self.task_fn = task_fn or grade_remote
        self.threads_per_worker = threads_per_worker
        self.client: Any = None
        self.cluster: Any = None
        self.describe = f"the Dask scheduler {scheduler}"

    # -- connecting ---------------------------------------------------------------------------

    def __enter__(self) -> DaskRunner:
        try:
            import distributed
        except ImportError as exc:
            raise SchedulerError(
                "--scheduler needs the `distributed` package: pip install 'dask[distributed]'"
            ) from exc
        local = LOCAL_SPEC.match(self.scheduler)
        if local:
            n = int(local.group(1))
            if n < 1:
                raise SchedulerError(f"--scheduler local:N needs N >= 1, got {self.scheduler}")
            import dask

            with dask.config.set(WORKER_CONFIG):  # the nannies pass it to their workers
                self.cluster = distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=self.threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self.client = distributed.Client(self.cluster, set_as_default=False)
            self.describe = f"a local Dask cluster of {n} worker process(es)"
            return self
        if not self.scheduler.startswith(("tcp://", "tls://")):
            raise SchedulerError(
                f"--scheduler {self.scheduler!r}: expected tcp://HOST:PORT, tls://HOST:PORT "
                "or local:N"
            )
        # The client's own "failed to reconnect" log line would repeat the one line we print.
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        try:
            self.client = distributed.Client(
                self.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"cannot reach the Dask scheduler at {self.scheduler} "
                f"({type(exc).__name__}: {exc}); start it with `dask scheduler` and check the "
                "address, or use --jobs N or --scheduler local:N; nothing was written"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close(timeout=10)
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close(timeout=10)

    # -- checking workers ---------------------------------------------------------------------

    def check_workers(self, log: Callable[[str], None]) -> dict[str, Any]:
        """Ask every worker what it runs; log each refused one; return the client's identity.
        Raises :class:`SchedulerError` when no worker may grade."""
        wanted = worker_identity()
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            raise SchedulerError(
                f"no Dask worker joined {self.scheduler} within {WORKER_WAIT:g} s: start some "
                f"with `dask worker {self.scheduler} --nthreads 1`; nothing was graded"
            ) from None
        answers = self.client.run(worker_identity, on_error="return")
        ok, no_bwrap, profiled = [], [], []
        for address, mine in sorted(answers.items()):
            if isinstance(mine, BaseException):
                why = (
                    f"it could not report its grading code ({type(mine).__name__}: {mine}); "
                    "install the same course_lib commit on it"
                )
            else:
                why = refusal(mine, wanted)
            if why:
                log(f"refusing Dask worker {address}: {why}")
            else:
                ok.append(address)
                if not mine["bwrap"]:
                    no_bwrap.append(address)
                if mine.get("profiler"):
                    profiled.append(address)
        if no_bwrap:
            log(
                f"warning: {len(no_bwrap)} Dask worker(s) have no bubblewrap (bwrap), e.g. "
                f"{no_bwrap[0]}: install it there before grading a real class"
            )
        if profiled and self.task_fn is grade_remote:
            log(
                f"note: {len(profiled)} Dask worker(s) run Dask's statistical profiler, e.g. "
                f"{profiled[0]}, which takes CPU from grading: start them with "
                + " ".join(f"{k}={v}" for k, v in worker_env().items())
            )
        if not ok:
            raise SchedulerError(
                f"no worker of {self.scheduler} may grade (see the lines above); nothing was graded"
            )
        info = self.client.scheduler_info()["workers"]
        crowded = [a for a in ok if info.get(a, {}).get("nthreads", 1) > 1]
        if crowded and self.task_fn is grade_remote:
            log(
                f"note: {len(crowded)} worker(s) have several threads; each grades one submission "
                "at a time: start workers with `dask worker --nthreads 1 --nworkers N`"
            )
        return wanted

    # -- grading ------------------------------------------------------------------------------

    def __call__(self, todo: list[dict], log: Callable[[str], None]) -> Iterator[tuple[dict, dict]]:

        if not todo:
            return
        wanted = self.check_workers(log)
        paths = sorted({t["source"] for t in todo})
        by_aid = {Path(p).parent.name: Path(p).read_bytes() for p in paths}
        shas = {aid: hashlib.sha256(b).hexdigest() for aid, b in by_aid.items()}
        path_sha = {p: shas[Path(p).parent.name] for p in paths}
        plugin = GradingPlugin(wanted, by_aid, shas)
        self._remove_stale_plugins(wanted["code_version"], log)
        self.client.register_plugin(plugin)
        try:
            yield from self._stream(todo, log, wanted, path_sha)
        finally:  # a worker that joins later must not load this run's sources
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(plugin.name)

    def _remove_stale_plugins(self, version: str, log: Callable[[str], None]) -> None:
        """Unregister plugins left by killed clients with other grading code: they would refuse
        every worker of this version that joins later."""
        names = self.client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.worker_plugins)
        )
        for name in names:
            if name.startswith(PLUGIN_PREFIX) and not name.startswith(PLUGIN_PREFIX + version):
                log(f"removing {name}, left on the scheduler by a client with other grading code")
                with contextlib.suppress(Exception):
                    self.client.unregister_worker_plugin(name)

    def _stream(
        self,
        todo: list[dict],
        log: Callable[[str], None],
        wanted: dict[str, Any],
        path_sha: dict[str, str],
    ) -> Iterator[tuple[dict, dict]]:

        nthreads = sum(self.client.nthreads().values())
        window = self.window or max(64, 4 * nthreads)
        queue = iter(todo)
        run = uuid.uuid4().hex[:8]  # this run's keys: never shared with another client's
        futures: dict[Any, dict] = {}

        def submit(n: int) -> list[Any]:
            """The next ``n`` tasks, sent in one message (not one round trip each)."""
            tasks = [t for t in (next(queue, None) for _ in range(n)) if t is not None]
            if not tasks:
                return []
            batch = self.client.map(
                self.task_fn,
                [_payload(t, path_sha, wanted) for t in tasks],
                key=[f"grade-{t['student_id']}-{t['assignment_id']}-{run}" for t in tasks],
                retries=RETRIES,
                pure=False,
            )
            futures.update(zip(batch, tasks, strict=True))
            return batch

        first = submit(window)
        try:
            yield from self._collect(first, futures, submit, len(todo), log)
        finally:  # an interrupted client leaves no work behind
            if futures:
                with contextlib.suppress(Exception):
                    self.client.cancel(list(futures))

    def _collect(
        self,
        first: list[Any],
        futures: dict[Any, dict],
        submit: Callable[[int], list[Any]],
        total: int,
        log: Callable[[str], None],
    ) -> Iterator[tuple[dict, dict]]:
        """Results as they arrive, in batches (whatever finished since the last look): each
        batch's results are gathered with it, and as many new tasks go out in one message. A
        task that failed on the workers (it raised outside the student's sandbox after its
        retries, or workers died under it ``allowed-failures`` times) is that submission's
        ``grader_error`` row: never a grade, never stored, re-graded by the next run."""
        from distributed import as_completed

        from course_lib.instructor.pipeline import fault_result

        done = 0
        stream = as_completed(first, loop=self.client.loop, with_results=True, raise_errors=False)
        for batch in stream.batches():
            for fut, value in batch:
                task = futures.pop(fut)
                ident = f"{task['student_id']}/{task['assignment_id']}"
                status = fut.status
                fut.release()
                if status == "cancelled" or isinstance(value, cf.CancelledError):
                    if self.client.status in ("closing", "closed", "connecting"):
                        raise SchedulerError(
                            f"lost the Dask scheduler at {self.scheduler} after {done} results "
                            "(each saved): start it again and re-run the same command to resume"
                        )
                    result = fault_result(task, "its Dask task was cancelled")
                elif status == "error":
                    exc = value[1] if isinstance(value, tuple) else value
                    result = fault_result(task, f"on the Dask workers: {type(exc).__name__}: {exc}")
                else:
                    result = value
                done += 1
                log(
                    f"[{done}/{total}] {ident}: {result['score']:g}/{result['max_score']:g} "
                    f"{result['status_text']}"
                )
                yield task, result
            stream.update(submit(len(batch)))

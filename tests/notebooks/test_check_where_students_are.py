"""``course check`` where students work: Linux without bubblewrap and without root, and a
system other than Linux (macOS), where the Linux-only limits are left out instead of failing.

``course check`` runs the student's code with ``COURSE_SANDBOX=rlimits``: a process of its own
(forked from the zygote on Linux, a fresh interpreter elsewhere) with resource limits. What of
that is Linux's own: the zygote (``prctl``, ``unshare``; only started on Linux, see
:func:`course_lib.instructor.sandbox.zygote_enabled`), ``RLIMIT_AS`` and the ``/proc`` check
of stale scratch folders; these tests cover the last two on a pretended macOS.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import notebook_harness as H
import pytest

from course_lib.instructor import sandbox

CHAPTER = "04_positions"  # small and quick to run
NOBODY = 65534


def _table(text: str) -> list[list[str]]:
    """The rows of ``course check``'s table, split into words."""
    return [ln.split() for ln in text.splitlines() if ln.startswith(("  test_", "  total"))]


# ---------------------------------------------------------------------------------------------
# Linux, no bubblewrap, no root.
# ---------------------------------------------------------------------------------------------


# Only the right to read and list what its permissions hide, for an interpreter installed under
# a private folder (pyenv's under /root): still uid 65534, no other privilege of root's.
READ_SEARCH = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
# The unprivileged user runs Python, which starts Python again (the student's process).
PROBE = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import course_lib.cli'], check=True)"


def _as_nobody(
    cmd: list[str], env: dict[str, str], cwd: Path, extra: list[str]
) -> subprocess.CompletedProcess:
    prefix = []
    if os.getuid() == 0:
        prefix = [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}"]
        prefix += ["--clear-groups", *extra]
    return subprocess.run(
        prefix + cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
@pytest.mark.xdist_group("check_cli")
def test_course_check_as_an_unprivileged_user_without_bubblewrap() -> None:
    """The same verdict as the current user's, run as ``nobody`` (or as this user when it is
    not root) with no ``bwrap`` on PATH, a HOME and TMPDIR of its own, and one wrong function.
    Where the interpreter lives under a private folder, ``nobody`` keeps only the right to read
    it (``CAP_DAC_READ_SEARCH``)."""
    if os.getuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is not installed to drop to nobody")
    wrong = (
        "def relative_positions(T, max_distance):\n"
        "    pos = torch.arange(T)\n"
        "    return (pos[:, None] - pos[None, :]).clamp(-max_distance, max_distance) + max_distance\n"
    )
    work = Path(tempfile.mkdtemp(prefix="check-nobody-"))
    crowd: list[subprocess.Popen] = []
    try:
        work.chmod(0o755)
        home = work / "home"
        home.mkdir()
        if os.getuid() == 0:
            os.chown(home, NOBODY, NOBODY)
        empty_bin = work / "bin"
        empty_bin.mkdir()
        path = os.pathsep.join([str(Path(sys.executable).parent), str(empty_bin)])
        assert shutil.which("bwrap", path=path) is None
        env = {
            "PATH": path,
            "HOME": str(home),
            "TMPDIR": str(home),
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
        extra: list[str] = []
        probe = _as_nobody([sys.executable, "-c", PROBE], env, work, extra)
        if probe.returncode != 0 and os.getuid() == 0:
            extra = READ_SEARCH
            probe = _as_nobody([sys.executable, "-c", PROBE], env, work, extra)
        if probe.returncode != 0:
            pytest.skip(
                "the unprivileged user cannot run this checkout's Python (a folder above the "
                "interpreter or the virtual environment is not world-readable): "
                + probe.stderr.strip()[-300:]
            )
        notebook = work / f"{CHAPTER}.ipynb"
        nbformat.write(H.fill(CHAPTER, {"relative_positions": wrong}), notebook)
        notebook.chmod(0o644)
        cmd = [sys.executable, "-m", "course_lib.cli", "check", str(notebook)]
        if os.getuid() == 0:
            # A student's desktop: many processes of theirs already (a browser alone has
            # hundreds of threads), more than the sandbox's process limit of 64.
            setpriv = [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}"]
            crowd = [subprocess.Popen([*setpriv, "sleep", "600"]) for _ in range(70)]
        theirs = _as_nobody(cmd, env, work, extra)
        mine = subprocess.run(cmd, env=H._env(), cwd=work, capture_output=True, text=True)
    finally:
        for proc in crowd:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    assert theirs.returncode == mine.returncode == 1, theirs.stdout + theirs.stderr
    assert _table(theirs.stdout) == _table(mine.stdout), theirs.stdout + theirs.stderr
    rows = {r[0]: r for r in _table(theirs.stdout)}
    assert rows["test_relative_positions"][1:5] == ["0", "/", "4", "failed:"]
    assert rows["test_sinusoidal_positional_encoding"][-1] == "passed"
    assert "Traceback" not in theirs.stdout + theirs.stderr


# ---------------------------------------------------------------------------------------------
# Not Linux: the limits and the process check take the portable path.
# ---------------------------------------------------------------------------------------------


def _recording(monkeypatch: pytest.MonkeyPatch, refuse: set[int] = frozenset()) -> list:
    calls: list = []

    def setrlimit(which: int, value: tuple[int, int]) -> None:
        if which in refuse:
            raise ValueError("current limit exceeds maximum limit")
        calls.append((which, value))

    monkeypatch.setattr(resource, "setrlimit", setrlimit)  # never this process's limits
    return calls


def test_limits_on_linux_are_all_set_and_a_refusal_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    limits = sandbox.Limits(memory_mb=4096, max_processes=64, max_file_mb=64, cpu_seconds=600)
    calls = _recording(monkeypatch)
    assert sandbox.apply_limits(limits, own_uid=True) == []
    assert dict(calls) == {
        resource.RLIMIT_AS: (4096 << 20, 4096 << 20),
        resource.RLIMIT_CPU: (600, 605),
        resource.RLIMIT_NPROC: (64, 64),
        resource.RLIMIT_FSIZE: (64 << 20, 64 << 20),
        resource.RLIMIT_CORE: (0, 0),
    }
    # the caller's own uid (a student's `course check`): NPROC would count their other programs
    calls.clear()
    sandbox.apply_limits(limits, own_uid=False)
    assert resource.RLIMIT_NPROC not in dict(calls) and resource.RLIMIT_AS in dict(calls)
    _recording(monkeypatch, refuse={resource.RLIMIT_CPU})
    with pytest.raises(ValueError, match="exceeds"):
        sandbox.apply_limits(limits, own_uid=True)


def test_limits_on_macos_leave_out_the_address_space_and_tolerate_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    limits = sandbox.Limits()
    calls = _recording(monkeypatch, refuse={resource.RLIMIT_FSIZE})
    assert sandbox.apply_limits(limits, own_uid=False) == ["RLIMIT_FSIZE"]
    assert [w for w, _ in calls] == [resource.RLIMIT_CPU, resource.RLIMIT_CORE]
    assert [name for name, _ in sandbox.limit_plan(limits, own_uid=True)] == [
        "RLIMIT_CPU",
        "RLIMIT_NPROC",
        "RLIMIT_FSIZE",
        "RLIMIT_CORE",
    ]
    assert not sandbox.zygote_enabled()  # a fresh interpreter per submission, no prctl/unshare


def test_a_process_is_found_alive_or_gone_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(sandbox.Path, "exists", lambda self: pytest.fail(f"looked at {self}"))
    assert sandbox._pid_alive(os.getpid())
    assert not sandbox._pid_alive(gone.pid)
    assert sandbox._pid_alive(1)  # another user's (or init): alive, though it cannot be signalled


@pytest.mark.slow
@pytest.mark.xdist_group("check_cli")
def test_course_check_on_a_pretended_macos_runs_without_the_linux_only_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole check with ``sys.platform == "darwin"``: no zygote (a fresh interpreter for
    the student's code, started with the portable limits), and the verdict of a finished
    notebook."""
    from course_lib import check, grading  # noqa: F401 - imported as on Linux (torch's
    from course_lib.instructor import grader, wire  # noqa: F401 - imports read sys.platform)

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("COURSE_SANDBOX", "rlimits")  # check_notebook sets it; restored after
    started: list[list[str]] = []
    plain = sandbox.Sandbox._spawn_plain

    def spy(self: sandbox.Sandbox, child: object) -> None:
        started.append(self._command(0))
        plain(self, child)

    monkeypatch.setattr(sandbox.Sandbox, "_spawn_plain", spy)
    monkeypatch.setattr(
        sandbox.Sandbox, "_spawn_from_zygote", lambda *_: pytest.fail("the zygote is Linux's")
    )
    nb = H.fill(CHAPTER)
    path = tmp_path / f"{CHAPTER}.ipynb"
    nbformat.write(nb, path)
    lines: list[str] = []
    status = check.check_notebook(path, out=lines.append)
    text = "\n".join(lines)
    assert status == 0, text
    points = sum(c.metadata.nbgrader.points for c in H.test_cells(nb).values())
    assert f"{points} / {points}" in text and "All visible tests pass" in text
    assert started and "bwrap" not in " ".join(started[0])

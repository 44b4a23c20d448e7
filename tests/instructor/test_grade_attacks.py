"""The grading sandbox and its trust boundary, attack by attack.

Fast tests of the wire format and the static analysis, and one sandbox probed from inside for
what student code can reach (files, network, uid, processes). The end-to-end attacks on whole
notebooks are in ``test_grade_pipeline.py``.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
import warnings
from pathlib import Path

import pytest
import torch

from course_lib.instructor import notebooks as nbk
from course_lib.instructor import wire
from course_lib.instructor.sandbox import (
    FALLBACK_WARNING,
    Limits,
    RemoteObject,
    Sandbox,
    WorkerTimeout,
    scratch_root,
)

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# The wire: plain data only, whatever the other side sends.
# ---------------------------------------------------------------------------------------------


def _roundtrip(value):
    refs = []
    obj, blobs = wire.encode(value, lambda o: refs.append(o) or {"$": "ref", "side": "w", "id": 1})
    return wire.decode(json.loads(json.dumps(obj)), blobs, lambda r: ("REF", r["id"])), refs


def test_values_round_trip_by_value() -> None:
    g = torch.Generator().manual_seed(0)
    value = {
        (1, 2): 3,
        "t": torch.randn(2, 3, generator=g),
        "b": torch.tensor([True, False]),
        "l": [1.5, float("inf"), float("nan"), None, "x", 2**70],
        "dt": torch.float64,
        "s": torch.Size([2, 3]),
    }
    back, refs = _roundtrip(value)
    assert refs == []
    assert set(back) == set(value)
    torch.testing.assert_close(back["t"], value["t"])
    assert back["b"].dtype == torch.bool and back[(1, 2)] == 3 and back["l"][4] == "x"
    assert back["l"][5] == 2**70 and back["dt"] is torch.float64 and back["s"] == torch.Size([2, 3])
    assert back["l"][1] == float("inf") and back["l"][2] != back["l"][2]


def test_objects_travel_as_references_not_values() -> None:
    class Sneaky:
        def __eq__(self, other):
            return True

    class Tricky(torch.Tensor):
        pass

    back, refs = _roundtrip([Sneaky(), torch.ones(2).as_subclass(Tricky)])
    assert back[0] == ("REF", 1) and len(refs) == 1
    assert type(back[1]) is torch.Tensor  # a tensor subclass arrives as a plain tensor


@pytest.mark.parametrize(
    "obj, blobs, match",
    [
        ({"$": "pickle", "v": "gASV"}, [], "unknown tag"),
        ({"$": "tensor", "dtype": "float32", "shape": [2], "b": 0}, [b"\0" * 4], "byte count"),
        ({"$": "tensor", "dtype": "object", "shape": [1], "b": 0}, [b"\0"], "not allowed"),
        ({"$": "nd", "dtype": "|O", "shape": [1], "b": 0}, [b"\0" * 8], "not allowed"),
        ({"$": "dict", "v": [[[1], 2]]}, [], "unhashable"),
        ({"$": "tensor", "dtype": "float32", "shape": [1], "b": 5}, [], "blob index"),
        ({"$": "float", "v": "1e999999"}, [], "bad float"),
    ],
)
def test_malformed_values_are_refused(obj, blobs, match) -> None:
    with pytest.raises(wire.WireError, match=match):
        wire.decode(obj, blobs, lambda r: None)


def test_oversized_frames_are_refused() -> None:
    a, b = wire.socketpair()
    try:
        a.sendall(struct.pack("<II", 1 << 31, 0))
        with pytest.raises(wire.WireError, match="too large"):
            wire.recv_frame(b, max_frame=1 << 20)
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------------------------------------
# Static analysis: the reference, forbidden built-ins, tricks.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, field, expected",
    [
        ("from course_lib.attention import softmax", "reference", "course_lib.attention"),
        ("import course_lib.tensors as t\nlinear = t.linear", "reference", "course_lib.tensors"),
        ("m = __import__('course_' + 'lib')", "suspicious", "calls___import__"),
        ("def f(x):\n    return torch.softmax(x, -1)", "forbidden", "softmax"),
        ("def f(x):\n    return x.softmax(-1)", "forbidden", "softmax"),
        ("from torch.nn.functional import softmax as s", "forbidden", "softmax"),
        ("import torch\ntorch.testing.assert_close = print", "suspicious", "monkeypatch"),
        ("G.check_function = lambda *a, **k: True", "suspicious", "monkeypatch"),
        ("get_ipython().input_transformers_post.append(f)", "suspicious", "uses_get_ipython"),
        ("f = getattr(torch, name)", "suspicious", "dynamic_getattr"),
        ("exec(code)", "suspicious", "calls_exec"),
        ("%load_ext autoreload", "suspicious", "ipython_magic"),
    ],
)
def test_static_analysis_finds_each_trick(code: str, field: str, expected: str) -> None:
    found = nbk.analyse(code, {"torch.softmax", "torch.Tensor.softmax", "course_lib.attention"})
    assert expected in getattr(found, field), found


def test_static_analysis_allows_the_students_own_helpers() -> None:
    code = (
        "def attention_weights(q, k):\n"
        "    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))\n"
        "    return softmax(scores, dim=-1)\n"
    )
    found = nbk.analyse(code, {"torch.softmax", "torch.Tensor.softmax", "course_lib.attention"})
    assert found.reference == [] and found.forbidden == [] and found.suspicious == []


# ---------------------------------------------------------------------------------------------
# One sandbox, probed from the inside.
# ---------------------------------------------------------------------------------------------

PROBE = r"""
import os, socket, pathlib, torch

def probe(paths, hidden):
    out = {"uid": os.getuid(), "readable": [], "writable": [], "network": True}
    for p in paths:
        try:
            with open(p, "rb") as f:
                if f.read(64):
                    out["readable"].append(p)
        except OSError:
            pass
        try:
            pathlib.Path(p + ".pwned").write_text("x")
            out["writable"].append(p)
        except OSError:
            pass
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2)
    except OSError:
        out["network"] = False
    try:
        __import__("course_lib." + hidden)
        out["hidden_importable"] = True
    except Exception:
        out["hidden_importable"] = False
    return out

def forks(n):
    pids = []
    try:
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                import time
                time.sleep(5)
                os._exit(0)
            pids.append(pid)
    except OSError:
        return len(pids)
    return len(pids)

def mutate(x, f, g):
    x.mul_(2)  # in place: the grader must see it
    noise = torch.randn(3, generator=g)
    return f(x) + noise.sum()

def forever():
    while True:
        pass
"""


@pytest.fixture(scope="module")
def box():
    scratch = Path(__import__("tempfile").mkdtemp(prefix="probe-", dir=scratch_root()))
    sandbox = Sandbox(scratch / "work", Limits(timeout=30, max_processes=48), ["attention"])
    loaded = sandbox.start([{"id": "probe", "source": PROBE, "kind": "student"}], ["probe"])
    assert loaded.errors == {}, loaded.errors
    yield sandbox
    sandbox.close()
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.xdist_group("grading")
def test_student_code_cannot_see_solutions_gradebook_or_network(box) -> None:
    if not box.isolated:
        pytest.skip("bubblewrap is not installed")
    targets = [
        str(p)
        for p in [
            *sorted((ROOT / "solutions").glob("*/*.ipynb"))[:1],
            ROOT / "course_lib" / "attention.py",
            ROOT / "nbgrader_config.py",
            Path.home() / ".bashrc",
            Path("/etc/passwd"),
        ]
    ]
    with box.session(time.monotonic() + 30) as sess:
        report = sess.get("probe")(targets, "attention")
    assert report["uid"] != 0
    assert report["readable"] == []
    assert report["writable"] == []
    assert report["network"] is False
    assert report["hidden_importable"] is False
    for t in targets:
        assert not Path(t + ".pwned").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("grading")
def test_process_limit_stops_a_fork_bomb(box) -> None:
    with box.session(time.monotonic() + 30) as sess:
        made = sess.get("forks")(200)
    assert made < 48


@pytest.mark.slow
@pytest.mark.xdist_group("grading")
def test_in_place_changes_callbacks_and_generators_cross_the_boundary(box) -> None:
    x = torch.arange(3.0)
    g_remote, g_local = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    calls = []

    def f(t):
        calls.append(t.clone())
        return t.sum()

    with box.session(time.monotonic() + 30) as sess:
        out = sess.get("mutate")(x, f, g_remote)
    torch.testing.assert_close(x, torch.tensor([0.0, 2.0, 4.0]))  # written back
    torch.testing.assert_close(calls[0], torch.tensor([0.0, 2.0, 4.0]))  # f ran here
    expected = 6.0 + torch.randn(3, generator=g_local).sum()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(
        torch.randn(2, generator=g_remote), torch.randn(2, generator=g_local)
    )


@pytest.mark.slow
@pytest.mark.xdist_group("grading")
def test_a_hung_cell_times_out_and_the_next_cell_still_runs(box) -> None:
    with pytest.raises(WorkerTimeout), box.session(time.monotonic() + 2) as sess:
        sess.get("forever")()
    with box.session(time.monotonic() + 30) as sess:
        fn = sess.get("probe")
        assert isinstance(fn, RemoteObject)
        assert fn != fn.__class__  # comparisons stay local: identity only
        assert sess.get("forks")(1) == 1


@pytest.mark.slow
@pytest.mark.xdist_group("grading")
def test_without_bubblewrap_grading_warns_and_still_limits(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COURSE_SANDBOX", "rlimits")
    sandbox = Sandbox(tmp_path / "work", Limits(timeout=30, max_processes=48), [])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sandbox.start([{"id": "probe", "source": PROBE, "kind": "student"}], ["probe"])
        assert any(FALLBACK_WARNING in str(w.message) for w in caught)
        assert not sandbox.isolated
        with sandbox.session(time.monotonic() + 30) as sess:
            assert sess.get("forks")(3) == 3
    finally:
        sandbox.close()


# ---------------------------------------------------------------------------------------------
# The zygote: submissions forked from one pre-imported process stay apart.
# ---------------------------------------------------------------------------------------------

LEAVE_TRACES = """
import os, sys, time
import course_lib.grading as G

G.POISON = "left by the first submission"
with open("secret.txt", "w") as f:
    f.write("first student's answers")
pid = os.fork()
if pid == 0:  # an escapee: its own session, so killing the process group misses it
    os.setsid()
    time.sleep(120)
    os._exit(0)

def traces():
    return {"uid": os.getuid(), "cwd": os.getcwd(), "escapee": pid}
"""

LOOK_FOR_TRACES = """
import os
import course_lib.grading as G

def look(cwd, pid):
    try:
        with open(os.path.join(cwd, "secret.txt")) as f:
            read = f.read()
    except OSError:
        read = None
    try:
        os.kill(pid, 0)
        escapee = "alive"
    except ProcessLookupError:
        escapee = "gone"
    except PermissionError:
        escapee = "alive (another uid)"
    return {"uid": os.getuid(), "read": read, "poison": hasattr(G, "POISON"), "escapee": escapee}
"""


def _fresh_box(hidden: list[str]) -> tuple[Sandbox, Path]:
    scratch = Path(__import__("tempfile").mkdtemp(prefix="zyg-", dir=scratch_root()))
    return Sandbox(scratch / "work", Limits(timeout=30, max_processes=48), hidden), scratch


@pytest.mark.slow
@pytest.mark.xdist_group("grading")
def test_submissions_forked_from_one_zygote_leave_nothing_to_the_next() -> None:
    first, scratch1 = _fresh_box(["attention"])
    second, scratch2 = _fresh_box(["attention"])
    try:
        loaded = first.start([{"id": "a", "source": LEAVE_TRACES, "kind": "student"}], ["traces"])
        assert loaded.errors == {}, loaded.errors
        if first.zygote is None:
            pytest.skip("no zygote on this platform")
        zygote = first.zygote
        with first.session(time.monotonic() + 30) as sess:
            seen = sess.get("traces")()
        first.close()  # the first submission is done
        loaded = second.start([{"id": "b", "source": LOOK_FOR_TRACES, "kind": "student"}], ["look"])
        assert loaded.errors == {}, loaded.errors
        assert second.zygote is zygote  # forked from the same pre-imported process
        with second.session(time.monotonic() + 30) as sess:
            found = sess.get("look")(seen["cwd"], seen["escapee"])
    finally:
        first.close()
        second.close()
        shutil.rmtree(scratch1, ignore_errors=True)
        shutil.rmtree(scratch2, ignore_errors=True)
    assert found["poison"] is False  # the zygote's memory is untouched
    if zygote.isolated:  # each its own uid, the first one's folder closed to the second
        assert seen["uid"] != 0 and found["uid"] not in (0, seen["uid"])
        assert found["read"] is None
        assert found["escapee"] == "gone"  # every process of the first uid was killed


@pytest.mark.slow
@pytest.mark.xdist_group("grading")
def test_without_a_zygote_each_submission_starts_a_fresh_interpreter(monkeypatch) -> None:
    monkeypatch.setenv("COURSE_ZYGOTE", "off")
    box, scratch = _fresh_box([])
    try:
        box.start([{"id": "probe", "source": PROBE, "kind": "student"}], ["probe"])
        assert box.zygote is None and box.proc is not None
        with box.session(time.monotonic() + 30) as sess:
            assert sess.get("forks")(2) == 2
    finally:
        box.close()
        shutil.rmtree(scratch, ignore_errors=True)

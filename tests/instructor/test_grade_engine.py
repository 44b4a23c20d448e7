"""``course grade`` as an instructor runs it: honest students, forbidden libraries, grader
faults, odd folders, the seed and Ctrl-C (issue 10). Every run goes through the command."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import notebook_harness as H
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_engine")]

COURSE = Path(sys.executable).parent / "course"
SEED = "engine test: any text is a seed"
CH = "05_attention"


# Flags of the class layer that only ask for a look and never change a score: written answers
# not yet marked, and the copying review (an honest test student IS the reference solution).
REVIEW_FLAGS = ("note:", "written_ungraded", "matches_reference", "similar_to:")


def full_auto_marks(row: dict) -> bool:
    """Every autograded point: ``auto_score`` equals the source's autograded total (the row's
    ``max_score`` also counts the written questions, which a person marks later)."""
    source = SOLUTION_SOURCES[row["assignment_id"]]
    return float(row["auto_score"]) == source.max_score > 0


class _Sources(dict):
    def __missing__(self, chapter: str):
        from course_lib.instructor import notebooks as nbk

        self[chapter] = nbk.load_source(H.SOLUTIONS / chapter / f"{chapter}.ipynb", chapter)
        return self[chapter]


SOLUTION_SOURCES = _Sources()


def submit(root: Path, student: str, chapter: str, nb: nbformat.NotebookNode) -> Path:
    target = root / student / chapter / f"{chapter}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def course_grade(
    subs: Path, out: Path, *extra: str, seed: str | None = SEED, **env: str
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "COURSE_GRADING_SEED"}
    if seed is not None:
        environ["COURSE_GRADING_SEED"] = seed
    environ.update(env)
    return subprocess.run(
        [str(COURSE), "grade", str(subs), "--out", str(out), "--source", str(H.SOLUTIONS)]
        + ["--timeout", "120", *extra],
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )


def rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def with_added_cell(nb: nbformat.NotebookNode, after: str, code: str) -> nbformat.NotebookNode:
    """A code cell of the student's own, inserted after the solution cell ``after``."""
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb.cells) if H.grade_id(c) == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(code))
    return nb


def replaced(nb: nbformat.NotebookNode, gid: str, code: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    next(c for c in nb.cells if H.grade_id(c) == gid).source = code
    return nb


SOFTMAX_WITH_DOCSTRING = '''def softmax(x, dim=-1):
    """Same contract as course_lib.attention.softmax, written by hand."""
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    e = torch.nan_to_num(e)
    total = e.sum(dim=dim, keepdim=True)
    return torch.where(total > 0, e / total.clamp_min(1e-38), torch.zeros_like(e))
'''


# ---------------------------------------------------------------------------------------------
# One run: honest students, odd ids, links and grader faults.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("engine")
    subs = base / "submitted"
    honest = H.fill(CH)
    submit(subs, "honest", CH, honest)
    submit(subs, "张三", CH, honest)
    submit(subs, "john doe", CH, honest)
    scratch = (
        "from course_lib import attention as reference\n"
        "x = torch.randn(3, 4)\n"
        "print((softmax(x) - reference.softmax(x)).abs().max())  # compare, as the tests do\n"
    )
    submit(subs, "scratch", CH, with_added_cell(honest, "softmax", scratch))
    explore = copy.deepcopy(honest)
    cell = next(c for c in explore.cells if "course_lib.interactive" in c.source)
    cell.source = cell.source.replace("manual_seed(0)", "manual_seed(7)", 1)
    submit(subs, "explore", CH, explore)
    docstring = replaced(honest, "softmax", SOFTMAX_WITH_DOCSTRING)
    submit(subs, "docstring", CH, docstring)
    helper = with_added_cell(
        replaced(
            honest,
            "softmax",
            "def softmax(x, dim=-1):\n    return _normalise(x, dim)\n",
        ),
        "softmax",
        SOFTMAX_WITH_DOCSTRING.replace("def softmax", "def _normalise").replace(
            '"""Same contract as course_lib.attention.softmax, written by hand."""', "# mine"
        ),
    )
    submit(subs, "helper", CH, helper)
    # The notebook's own "Your points so far" cell, edited: a cell of the student's, so it runs
    # in their process (honest's unchanged copy is the source's and never runs).
    summary = copy.deepcopy(honest)
    cell = next(c for c in summary.cells if c.cell_type == "code" and "check_all" in c.source)
    cell.source = cell.source.replace("G.check_all()", f'G.check_all("{CH}.ipynb")')
    submit(subs, "summary", CH, summary)
    submit(subs, "bad!id", CH, honest)
    linker = subs / "linker" / CH
    linker.mkdir(parents=True)
    (linker / f"{CH}.ipynb").symlink_to(H.SOLUTIONS / CH / f"{CH}.ipynb")
    (subs / "dirlink").symlink_to(subs / "honest")
    submit(subs, "faulty", CH, honest)
    submit(subs, "retried", CH, honest)
    out = base / "out"
    start = time.perf_counter()
    proc = course_grade(
        subs,
        out,
        "--jobs",
        "2",
        COURSE_GRADING_INJECT_FAULT="faulty:start:9,retried:kill:1",
    )
    return {
        "subs": subs,
        "out": out,
        "proc": proc,
        "rows": rows(out),
        "seconds": time.perf_counter() - start,
    }


def test_honest_students_get_full_marks_and_only_notes(engine_run: dict) -> None:
    students = (
        "honest",
        "张三",
        "john doe",
        "scratch",
        "explore",
        "docstring",
        "helper",
        "summary",
    )
    for student in students:
        row = engine_run["rows"][student]
        assert full_auto_marks(row), (student, row)
        assert row["status"].split(":")[0] in ("graded", "partial"), (student, row)
        flags = [f for f in row["flags"].split(";") if f]
        assert all(f.startswith(REVIEW_FLAGS) for f in flags), (student, flags)
    # the notes name the cell and the line
    assert "note:reference_mention:softmax:2" in engine_run["rows"]["docstring"]["flags"]
    assert "note:reference_mention:added-1:1" in engine_run["rows"]["scratch"]["flags"]
    # the edited summary cell ran without raising (a raising cell makes the row partial)
    summary, honest = engine_run["rows"]["summary"], engine_run["rows"]["honest"]
    assert summary["status"] == honest["status"] and "raised" not in summary["status"], summary
    assert "note:reference_mention:added-1:1" in engine_run["rows"]["summary"]["flags"]
    honest_flags = [f for f in engine_run["rows"]["honest"]["flags"].split(";") if f]
    # no note at all: only the class layer's review flags (these test students share one code)
    assert all(f.startswith(REVIEW_FLAGS[1:]) for f in honest_flags), honest_flags


def test_every_folder_gets_a_row_and_the_summary_adds_up(engine_run: dict) -> None:
    got = engine_run["rows"]
    folders = sorted(p.name for p in engine_run["subs"].iterdir())
    assert sorted(got) == folders
    assert got["bad!id"]["status"].startswith("invalid_id")
    assert got["linker"]["status"].startswith("refused_link")
    assert got["dirlink"]["status"].startswith("refused_link")
    for student in ("bad!id", "linker", "dirlink"):
        assert float(got[student]["score"]) == 0
    line = next(ln for ln in engine_run["proc"].stdout.splitlines() if ln.startswith("graded "))
    total = int(re.search(r"graded (\d+) rows", line).group(1))
    counts = [int(n) for n in re.findall(r"(\d+) [a-z_]+(?=[,)])", line)]
    assert total == len(folders) == sum(counts), line
    assert "'bad!id'" in engine_run["proc"].stderr


def test_a_grader_fault_is_retried_never_a_grade_and_never_cached(engine_run: dict) -> None:
    proc, got = engine_run["proc"], engine_run["rows"]
    assert proc.returncode == 3, proc.stderr
    assert got["faulty"]["status"].startswith("grader_error")
    assert "GRADER" in proc.stderr and "faulty" in proc.stderr
    assert len(re.findall(r"grader fault on faulty/", proc.stderr)) == 2  # then given up
    # a grader process killed mid-run: retried, and everyone in flight keeps their marks
    assert "grader fault on retried/" in proc.stderr
    assert full_auto_marks(got["retried"]) and full_auto_marks(got["honest"])
    state = engine_run["out"] / ".state"
    assert not (state / f"faulty__{CH}.json").exists()
    assert (state / f"retried__{CH}.json").exists()
    again = course_grade(engine_run["subs"], engine_run["out"], "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert re.search(r"\d+ unchanged, 1 to grade", again.stderr), again.stderr
    fixed = rows(engine_run["out"])["faulty"]
    assert fixed["status"] == "graded" and full_auto_marks(fixed)


def test_the_seed_never_reaches_feedback(engine_run: dict) -> None:
    pages = list((engine_run["out"] / "feedback").rglob("*.html"))
    assert pages
    assert not any(SEED in p.read_text(encoding="utf-8") for p in pages)


# ---------------------------------------------------------------------------------------------
# Forbidden libraries, where the student imported them.
# ---------------------------------------------------------------------------------------------


def test_a_banned_library_costs_its_function_at_the_top_or_inside(tmp_path: Path) -> None:
    chapter = "11_evaluation"
    subs = tmp_path / "submitted"
    honest = H.fill(chapter)
    signature = (
        "def precision_recall_fscore_support(\n"
        "    y_true, y_pred, *, labels=None, average=None, zero_division=0.0\n):\n"
    )
    call = (
        "    return sk(y_true, y_pred, labels=labels, average=average, "
        "zero_division=zero_division)\n"
    )
    top = "from sklearn.metrics import precision_recall_fscore_support as sk\n\n\n" + signature
    body = signature + "    from sklearn.metrics import precision_recall_fscore_support as sk\n"
    submit(subs, "top", chapter, replaced(honest, "precision_recall_fscore_support", top + call))
    submit(
        subs, "inside", chapter, replaced(honest, "precision_recall_fscore_support", body + call)
    )
    submit(subs, "honest", chapter, honest)
    out = tmp_path / "out"
    proc = course_grade(subs, out, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    got = rows(out)
    assert full_auto_marks(got["honest"])
    for student in ("top", "inside"):
        assert "forbidden_call:precision_recall_fscore_support" in got[student]["flags"], got
        state = out / ".state" / f"{student}__{chapter}.json"
        result = json.loads(state.read_text(encoding="utf-8"))["result"]
        cells = {c["grade_id"]: c for c in result["cells"]}
        mine = [g for g in cells if g.startswith("test_precision_recall_fscore_support")]
        assert mine and all(cells[g]["points"] == 0 for g in mine), cells
        assert any("sklearn" in cells[g]["message"] for g in mine), cells
        others = [c for g, c in cells.items() if g not in mine]
        assert all(c["points"] == c["max_points"] for c in others), others


# ---------------------------------------------------------------------------------------------
# The seed, the cache key and Ctrl-C.
# ---------------------------------------------------------------------------------------------


def test_grading_without_a_seed_is_refused_unless_allowed(tmp_path: Path) -> None:
    subs = tmp_path / "submitted"
    submit(subs, "blank", CH, H.released(CH))
    proc = course_grade(subs, tmp_path / "out", seed=None)
    assert proc.returncode == 2
    assert "COURSE_GRADING_SEED is not set" in proc.stderr and "export" in proc.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()
    proc = course_grade(subs, tmp_path / "out", "--allow-default-seed", seed=None)
    assert proc.returncode == 0, proc.stderr
    assert rows(tmp_path / "out")["blank"]["score"] == "0"


def test_a_checker_or_reference_change_regrades_and_nothing_else(tmp_path: Path) -> None:
    import course_lib
    from course_lib.instructor import pipeline

    package = tmp_path / "course_lib"
    shutil.copytree(
        Path(course_lib.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    before = pipeline.engine_digest(package)
    (package / "authoring" / "bookbuild.py").write_text(
        "# the book build changed\n", encoding="utf-8"
    )
    (package / "viz.py").write_text("# a figure changed\n", encoding="utf-8")
    (package / "check.py").write_text("# course check changed\n", encoding="utf-8")
    assert pipeline.engine_digest(package) == before
    for changed in ("grading/mistakes/masking.py", "attention.py", "instructor/worker.py"):
        path = package / changed
        path.write_text(path.read_text(encoding="utf-8") + "\n# fixed\n", encoding="utf-8")
        assert pipeline.engine_digest(package) != before, changed
        before = pipeline.engine_digest(package)


def test_ctrl_c_stops_within_5_s_keeps_results_and_resumes(tmp_path: Path) -> None:
    subs = tmp_path / "submitted"
    for i in range(6):
        nb = H.fill(CH)
        if i == 1:
            # s1 computes for a few seconds before its functions are defined, so that the run
            # is surely still going when Ctrl-C comes after s0 (forked sandboxes are fast).
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
            cell.source = "for _ in range(100_000_000):\n    pass\n" + cell.source
        submit(subs, f"s{i}", CH, nb)
    out = tmp_path / "out"
    env = dict(os.environ, COURSE_GRADING_SEED=SEED)
    proc = subprocess.Popen(
        [str(COURSE), "grade", str(subs), "--out", str(out), "--source", str(H.SOLUTIONS)]
        + ["--jobs", "1", "--timeout", "120"],  # the limits are part of the cache key
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As from a terminal: a suite started in the background (`make test &`) passes SIGINT
        # ignored down to its children, and Python then keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("[1/6]"):
            break
    os.killpg(proc.pid, signal.SIGINT)
    start = time.monotonic()
    _, rest = proc.communicate(timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 130, "".join(lines) + rest
    assert elapsed <= 5.0, elapsed
    last = rest.strip().splitlines()[-1]
    match = re.fullmatch(r"interrupted: (\d+) graded, (\d+) left; re-run to resume", last)
    assert match, rest
    done, left = int(match.group(1)), int(match.group(2))
    assert done >= 1 and done + left == 6 and left >= 1
    assert "Traceback" not in rest
    assert len(list((out / ".state").glob("*.json"))) == done
    again = course_grade(subs, out, "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert f"{done} unchanged, {left} to grade" in again.stderr
    assert len(rows(out)) == 6

"""Grade notebooks with the real nbgrader, many submissions per ``nbgrader autograde`` call.

How the notebook tests work (chapters 01–12 alike):

1. :func:`make_course` copies ``nbgrader_config.py`` and ``solutions/<id>/`` into a temporary
   course directory and runs ``course release <id>`` (nbgrader generate_assignment) there,
   which stores the test
   cells (with their hidden tests) in that course's gradebook and writes the release.
2. Submissions are notebooks placed in ``submitted/<student>/<id>/<id>.ipynb``:
   the solution notebook itself, the released notebook as released (blank), the released
   notebook filled in with the solution bodies (:func:`fill`), the same with a harmless warning
   in every solution, and the mutants and alternatives of ``tests/notebooks/mutants/<id>.py``.
3. :func:`autograde` runs ``nbgrader autograde <id>`` ONCE for all of them (a kernel per
   notebook, but one nbgrader start-up and one gradebook) and reads every student's per-cell
   scores from the gradebook, and the cell outputs and timings from ``autograded/``.

:func:`grade_chapter` does all of that once per chapter and process (cached), so
``test_notebooks.py`` and ``test_mutants.py`` share one autograde run per chapter as long as
their tests carry the same ``@pytest.mark.xdist_group(<id>)``.

Mutants (``tests/notebooks/mutants/<id>.py``) are data: a module-level list ``VARIANTS`` of
:class:`Variant`, each the full source of one solution cell (function or class) that must lose
points (``kind="mutant"``) or must still get full marks (``kind="alternative"``). To save
kernels, :func:`pack` puts several variants in one submission when their functions do not call
each other (a mutant of ``softmax`` would also break the tests of a function that calls
``softmax``, so those never share a notebook); each variant is judged only on the test cells of
its own function (grade_id ``test_<name>`` or ``test_<name>-<part>``).
"""

from __future__ import annotations

import ast
import atexit
import copy
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat

from course_lib.authoring.release import release

REPO_ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO_ROOT / "solutions"
EXERCISES = REPO_ROOT / "exercises"
MUTANTS_DIR = Path(__file__).resolve().parent / "notebooks" / "mutants"
NBGRADER = [sys.executable, "-m", "nbgrader"]
TEST_SEED = "4242"  # the hidden tests' seed in the test suite; instructors use their own

_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def chapters() -> list[str]:
    """Chapter ids that have a solution notebook."""
    return sorted(p.parent.name for p in SOLUTIONS.glob("*/*.ipynb") if p.stem == p.parent.name)


# ---------------------------------------------------------------------------------------------
# Notebooks and cells
# ---------------------------------------------------------------------------------------------


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_cells(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """grade_id -> cell, for the solution cells (one per graded function or class); written
    answers (markdown solution cells) are not among them."""
    return {
        grade_id(c): c
        for c in nb.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code"
    }


def test_cells(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """grade_id -> cell, for the autograder test cells."""
    return {
        grade_id(c): c
        for c in nb.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade") and c.cell_type == "code"
    }


def cells_of(function: str, cell_ids: list[str]) -> list[str]:
    """The test cells of one graded function: ``test_<f>`` and ``test_<f>-<part>``."""
    return [c for c in cell_ids if c == f"test_{function}" or c.startswith(f"test_{function}-")]


def strip_markers(source: str) -> str:
    """A solution cell as a student would type it: the solution markers removed."""
    return "\n".join(ln for ln in source.splitlines() if not _MARKER.match(ln))


def released(chapter: str) -> nbformat.NotebookNode:
    return read(EXERCISES / chapter / f"{chapter}.ipynb")


def solution(chapter: str) -> nbformat.NotebookNode:
    return read(SOLUTIONS / chapter / f"{chapter}.ipynb")


def fill(chapter: str, replacements: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled in from the solution notebook,
    then the cells named in ``replacements`` (grade_id -> source) swapped for those sources."""
    nb = copy.deepcopy(released(chapter))
    answers = {k: strip_markers(c.source) for k, c in solution_cells(solution(chapter)).items()}
    answers.update(replacements or {})
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers and cell.metadata.nbgrader.get("solution"):
            cell.source = answers[gid]
    return nb


def with_warnings(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every solution body first emits a UserWarning and a line on stderr: harmless noise."""
    nb = copy.deepcopy(nb)
    for cell in solution_cells(nb).values():
        lines, out, in_signature = cell.source.splitlines(), [], False
        for i, line in enumerate(lines):
            out.append(line)
            in_signature = in_signature or line.lstrip().startswith("def ")
            if in_signature and line.rstrip().endswith(":"):
                in_signature = False
                following = [ln for ln in lines[i + 1 :] if ln.strip()]
                indent = re.match(r"\s*", following[0]).group(0) if following else "    "
                # the first statement of every function body (before its docstring)
                out.append(
                    f"{indent}import sys, warnings; warnings.warn('just a note', UserWarning); "
                    "print('debug', file=sys.stderr)"
                )
        cell.source = "\n".join(out)
    return nb


# ---------------------------------------------------------------------------------------------
# Variants (mutants and alternatives)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One replacement solution cell.

    Args:
        function: grade_id of the solution cell (the function or class name).
        name: the mistake, as a student would make it ("softmax over dim 0").
        source: the whole cell (dedented automatically).
        kind: "mutant" (must lose points) or "alternative" (correct: must get full marks).
        expect: for a mutant, a regex the failing test output must contain (the diagnosis).
    """

    function: str
    name: str
    source: str
    kind: str = "mutant"
    expect: str | None = None

    @property
    def code(self) -> str:
        return textwrap.dedent(self.source).strip("\n")


def mutant(function: str, name: str, source: str, expect: str | None = None) -> Variant:
    return Variant(function, name, source, "mutant", expect)


def alternative(function: str, name: str, source: str) -> Variant:
    return Variant(function, name, source, "alternative")


def load_variants(chapter: str) -> list[Variant]:
    path = MUTANTS_DIR / f"{chapter}.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"mutants_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.VARIANTS)


def _names_used(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def dependencies(chapter: str, variants: list[Variant]) -> dict[str, set[str]]:
    """function -> graded functions it may call (transitively), from solutions and variants."""
    sources = {k: [strip_markers(c.source)] for k, c in solution_cells(solution(chapter)).items()}
    for v in variants:
        sources.setdefault(v.function, []).append(v.code)
    direct = {
        f: set().union(*(_names_used(s) for s in srcs)) & (set(sources) - {f})
        for f, srcs in sources.items()
    }
    closure = {}
    for f in direct:
        seen, todo = set(), list(direct[f])
        while todo:
            g = todo.pop()
            if g not in seen:
                seen.add(g)
                todo.extend(direct.get(g, ()))
        closure[f] = seen
    return closure


def pack(variants: list[Variant], deps: dict[str, set[str]]) -> list[list[Variant]]:
    """Group variants into submissions whose functions are pairwise independent."""
    groups: list[list[Variant]] = []
    for v in variants:
        for group in groups:
            ok = all(
                g.function != v.function
                and g.function not in deps.get(v.function, ())
                and v.function not in deps.get(g.function, ())
                for g in group
            )
            if ok:
                group.append(v)
                break
        else:
            groups.append([v])
    return groups


# ---------------------------------------------------------------------------------------------
# The temporary course and nbgrader
# ---------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # nbgrader runs `alembic` by name: the virtual environment's bin must be on PATH
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["COURSE_GRADING_SEED"] = TEST_SEED
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    # one thread per kernel: the machines that run this have few cores
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_nbgrader(course: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*NBGRADER, *args],
        cwd=course,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def make_course(root: Path, chapter: str) -> Path:
    """A course directory with the chapter's source, released and in the gradebook."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(SOLUTIONS / chapter, root / "solutions" / chapter)
    release([chapter], root, quiet=True)  # what `course release <id>` runs
    return root


def submit(course: Path, chapter: str, student: str, nb: nbformat.NotebookNode) -> None:
    target = course / "submitted" / student / chapter / f"{chapter}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


@dataclass
class Graded:
    """One student's autograded notebook."""

    scores: dict[str, tuple[float, float]]  # test cell -> (score, max)
    outputs: dict[str, str]  # test cell -> its output text (errors included)
    seconds: dict[str, float]  # test cell -> execution time
    total_seconds: float  # first cell start to last cell end

    @property
    def score(self) -> float:
        return sum(s for s, _ in self.scores.values())

    @property
    def max_score(self) -> float:
        return sum(m for _, m in self.scores.values())


def _output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
        elif out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
    return "\n".join(parts)


def _seconds(cell: dict) -> tuple[float, datetime | None, datetime | None]:
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return float("nan"), None, None
    return (end - start).total_seconds(), start, end


def autograde(course: Path, chapter: str) -> tuple[dict[str, Graded], float]:
    """Autograde every submission at once; per-student results and the wall time."""
    from nbgrader.api import Gradebook

    start = time.perf_counter()
    run_nbgrader(course, "autograde", chapter, "--force")
    wall = time.perf_counter() - start
    results = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub_dir in sorted((course / "autograded").iterdir()):
            student = sub_dir.name
            nb_path = sub_dir / chapter / f"{chapter}.ipynb"
            submission = gb.find_submission_notebook(chapter, chapter, student)
            scores = {
                g.name: (float(g.score), float(g.max_score))
                for g in submission.grades
                if g.cell_type == "code"
            }
            graded = json.loads(nb_path.read_text(encoding="utf-8"))
            outputs, seconds, starts, ends = {}, {}, [], []
            for cell in graded["cells"]:
                secs, s, e = _seconds(cell)
                if s is not None:
                    starts.append(s)
                    ends.append(e)
                gid = grade_id(cell)
                if gid in scores:
                    outputs[gid] = _output_text(cell)
                    seconds[gid] = secs
            total = (max(ends) - min(starts)).total_seconds() if starts else float("nan")
            results[student] = Graded(scores, outputs, seconds, total)
    return results, wall


# ---------------------------------------------------------------------------------------------
# Everything for one chapter, once per process
# ---------------------------------------------------------------------------------------------


@dataclass
class ChapterResults:
    chapter: str
    course: Path
    graded: dict[str, Graded]
    wall_seconds: float
    submissions: int
    groups: list[list[Variant]] = field(default_factory=list)

    def student_of(self, variant: Variant) -> str:
        for i, group in enumerate(self.groups):
            if variant in group:
                return f"variants{i:02d}"
        raise KeyError(variant)

    def cells_of(self, function: str) -> list[str]:
        return cells_of(function, list(self.graded["solution"].scores))


@functools.cache
def _work() -> Path:
    """This process's scratch folder for temporary courses, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="course-nbgrader-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def grade_chapter(chapter: str) -> ChapterResults:
    """Autograde the solution, the blank release, the warning variant and every mutant and
    alternative of one chapter in one nbgrader run."""
    course = make_course(_work() / chapter, chapter)
    submit(course, chapter, "solution", solution(chapter))
    submit(course, chapter, "blank", released(chapter))
    submit(course, chapter, "warnings", with_warnings(fill(chapter)))
    variants = load_variants(chapter)
    deps = dependencies(chapter, variants)
    mutants = [v for v in variants if v.kind == "mutant"]
    alternatives = [v for v in variants if v.kind == "alternative"]
    groups = pack(mutants, deps) + pack(alternatives, deps)
    for i, group in enumerate(groups):
        nb = fill(chapter, {v.function: v.code for v in group})
        submit(course, chapter, f"variants{i:02d}", nb)
    graded, wall = autograde(course, chapter)
    return ChapterResults(chapter, course, graded, wall, 3 + len(groups), groups)

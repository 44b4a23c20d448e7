"""Build a corpus of submissions (honest, wrong, broken, hostile) for one assignment.

Generated from the instructor source ``solutions/<id>/<id>.ipynb`` and the released notebook
``exercises/<id>/<id>.ipynb`` (derived from the source when it is not released yet), so it
follows the notebooks as they change. Each case comes with what the grader must make of it::

    python tests/submissions/make_corpus.py 05_attention /tmp/submitted

writes ``/tmp/submitted/<student>/<id>/<id>.ipynb`` and prints the expectations as JSON.

Single-function attacks target the *last* graded function, which no other function calls, so
the expected score is exactly the full score minus that function's points.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from course_lib.instructor.notebooks import SourceAssignment, load_source  # noqa: E402

# A call of a forbidden built-in that computes the right answer, per (assignment, function).
FORBIDDEN_BODIES = {
    ("05_attention", "scaled_dot_product_attention"): (
        "return torch.nn.functional.scaled_dot_product_attention("
        "query, key, value, attn_mask, is_causal, scale=scale)"
    ),
}


@dataclass
class Case:
    student: str
    notebook: dict | bytes | None
    score: str  # "full", "zero", "full-last" (all but the last function), ">0"
    status: str  # expected status prefix
    flags: list[str] = field(default_factory=list)  # substrings that must appear in flags
    note: str = ""


def released_notebook(source: SourceAssignment) -> dict:
    path = ROOT / "exercises" / source.assignment_id / f"{source.assignment_id}.ipynb"
    if path.exists():
        return json.loads(path.read_text())
    nb = json.loads(source.path.read_text())
    by_index = {c.index: c for c in source.cells}
    for i, cell in enumerate(nb["cells"]):
        c = by_index.get(i)
        if c is not None and c.kind in ("test", "solution"):
            cell["source"] = c.released
    return nb


def _cell(nb: dict, gid: str) -> dict:
    for cell in nb["cells"]:
        md = cell.get("metadata", {}).get("nbgrader", {})
        if md.get("grade_id") == gid:
            return cell
    raise KeyError(gid)


def _set(nb: dict, gid: str, code: str) -> dict:
    nb = copy.deepcopy(nb)
    _cell(nb, gid)["source"] = code
    return nb


def _signature(source_code: str) -> str:
    """The solution cell up to its solution marker: signature and docstring."""
    head = source_code.split("### BEGIN SOLUTION")[0]
    return head.rstrip() + "\n"


def _with_body(source: SourceAssignment, gid: str, body: str) -> str:
    sol = next(c for c in source.solutions if c.grade_id == gid)
    head = _signature(sol.source)
    indent = head.splitlines()[-1][
        : len(head.splitlines()[-1]) - len(head.splitlines()[-1].lstrip())
    ]
    indent = indent or "    "
    return head + "".join(f"{indent}{line}\n" for line in body.splitlines())


def _add_cell(nb: dict, code: str, at: int | None = None) -> dict:
    nb = copy.deepcopy(nb)
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": f"added-{len(nb['cells'])}",
        "metadata": {},
        "outputs": [],
        "source": code,
    }
    nb["cells"].insert(len(nb["cells"]) if at is None else at, cell)
    return nb


def build(assignment_id: str) -> tuple[SourceAssignment, list[Case]]:
    source = load_source(
        ROOT / "solutions" / assignment_id / f"{assignment_id}.ipynb", assignment_id
    )
    blank = released_notebook(source)
    honest = copy.deepcopy(blank)
    for sol in source.solutions:
        _cell(honest, sol.grade_id)["source"] = sol.source
    last = source.solutions[-1].grade_id
    first = source.solutions[0].grade_id
    setup_index = (
        next(
            i
            for i, c in enumerate(honest["cells"])
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"
        )
        if any(
            c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"
            for c in honest["cells"]
        )
        else 0
    )
    cases = [
        Case("honest", honest, "full", "graded", note="the solution as a student would submit it"),
        Case("blank", blank, "zero", "graded", note="the release, untouched"),
        Case(
            "wrong_last",
            _set(honest, last, _with_body(source, last, "raise ValueError('not like this')")),
            "full-last",
            "graded",
        ),
    ]
    module = __import__("course_lib", fromlist=["CHAPTER_MODULES"]).CHAPTER_MODULES.get(
        assignment_id, "tensors"
    )
    cases.append(
        Case(
            "reference_import",
            _set(honest, last, f"from course_lib.{module} import {last}\n"),
            "full-last",
            "partial",
            ["reference_mention:" + last],
            note="imports the reference implementation as its answer",
        )
    )
    cases.append(
        Case(
            "reference_obfuscated",
            _set(
                honest,
                last,
                _signature(next(c.source for c in source.solutions if c.grade_id == last))
                + "    import importlib\n    mod = importlib.import_module('course_' + 'lib.' + "
                f"{module!r})\n    return getattr(mod, {last!r})(*locals().values())\n",
            ),
            "full-last",
            "graded",
            ["imports_importlib"],
            note="reaches the reference through importlib and string building",
        )
    )
    body = FORBIDDEN_BODIES.get((assignment_id, last))
    if body:
        cases.append(
            Case(
                "forbidden_builtin",
                _set(honest, last, _with_body(source, last, body)),
                "full-last",
                "graded",
                ["forbidden"],
                note="calls a forbidden built-in that gives the right answer",
            )
        )
    patch = (
        "import course_lib.grading as G\nimport torch\n"
        "G.check_function = lambda *a, **k: True\nG.check_raises = lambda *a, **k: True\n"
        "G.check_module = lambda *a, **k: True\nG.check_no_future_leak = lambda *a, **k: True\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
    )
    cases.append(
        Case(
            "monkeypatch",
            _add_cell(blank, patch, setup_index + 1),
            "zero",
            "graded",
            ["monkeypatch"],
            note="replaces the checkers with functions that pass",
        )
    )
    transformer = (
        "ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
    )
    cases.append(
        Case(
            "input_transformer",
            _add_cell(blank, transformer, setup_index + 1),
            "zero",
            "partial",
            ["get_ipython"],
            note="turns later cells (the tests) into no-ops",
        )
    )
    tampered = copy.deepcopy(blank)
    for t in source.tests:
        cell = _cell(tampered, t.grade_id)
        cell["metadata"]["nbgrader"]["grade"] = False
        cell["metadata"]["nbgrader"]["points"] = 100
        cell["metadata"]["tags"] = ["skip-execution", "raises-exception"]
        cell["outputs"] = [
            {"output_type": "stream", "name": "stdout", "text": "all tests passed\n"}
        ]
        cell["execution_count"] = 1
    cases.append(
        Case(
            "fake_metadata_outputs",
            tampered,
            "zero",
            "graded",
            ["metadata_tampered", "cell_tags"],
            note="test cells un-graded, 100 points, skip tags, fake passing outputs",
        )
    )
    rewritten = copy.deepcopy(blank)
    for t in source.tests:
        _cell(rewritten, t.grade_id)["source"] = "assert True\n"
    cases.append(
        Case(
            "tests_rewritten",
            rewritten,
            "zero",
            "graded",
            ["test_cell_modified"],
            note="every test cell replaced by `assert True`",
        )
    )
    tagged = copy.deepcopy(honest)
    for t in source.tests:
        _cell(tagged, t.grade_id).setdefault("metadata", {})["tags"] = ["skip-execution"]
    cases.append(Case("skip_tags_honest", tagged, "full", "graded", ["cell_tags"]))
    text = json.dumps(honest, indent=1)
    cut = text.rfind('"metadata"')
    cases.append(
        Case(
            "corrupt_json_tail",
            (text[:cut] + text[cut + 12 :]).encode(),
            "full",
            "invalid_notebook",
            note="a JSON error after the last cell",
        )
    )
    last_src = text.find(json.dumps(source.solutions[-1].source)[1:40])
    cases.append(
        Case(
            "truncated_json",
            text[: max(last_src - 200, 0)].encode(),
            ">0",
            "invalid_notebook",
            note="the file ends before the last solution cell",
        )
    )
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": c["cell_type"],
                        "input" if c["cell_type"] == "code" else "source": c["source"],
                        "metadata": c.get("metadata", {}),
                        "outputs": [],
                        "language": "python",
                    }
                    for c in honest["cells"]
                ]
            }
        ],
    }
    cases.append(Case("nbformat3", v3, "full", "graded"))
    deleted = copy.deepcopy(honest)
    deleted["cells"] = [
        c
        for c in deleted["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != last
    ]
    cases.append(Case("deleted_cell", deleted, "full-last", "partial"))
    dup = copy.deepcopy(honest)
    idx = next(
        i
        for i, c in enumerate(dup["cells"])
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == first
    )
    wrong_copy = copy.deepcopy(dup["cells"][idx])
    wrong_copy["source"] = _with_body(source, first, "raise ValueError('old attempt')")
    wrong_copy["id"] = "dup-old"
    dup["cells"].insert(idx, wrong_copy)
    cases.append(
        Case(
            "duplicated_cell",
            dup,
            "full",
            "graded",
            ["duplicate_cell:" + first],
            note="an old wrong copy of a solution cell above the right one",
        )
    )
    reordered = copy.deepcopy(honest)
    sol_cells = [
        c for c in reordered["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    ]
    others = [c for c in reordered["cells"] if c not in sol_cells]
    reordered["cells"] = others + list(reversed(sol_cells))
    cases.append(Case("reordered_cells", reordered, "full", "graded"))
    stripped = copy.deepcopy(honest)
    for c in stripped["cells"]:
        c["metadata"] = {}
        c.pop("id", None)
    stripped["nbformat_minor"] = 4
    cases.append(
        Case(
            "metadata_stripped",
            stripped,
            "full",
            "graded",
            note="another editor removed all cell metadata and ids",
        )
    )
    huge = copy.deepcopy(honest)
    big = "x" * 1000 + "\n"
    _cell(huge, first)["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": [big] * 20_000}
    ]
    cases.append(Case("huge_outputs", huge, "full", "graded", note="20 MB of outputs"))
    loop = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    cases.append(
        Case(
            "infinite_loop",
            _set(honest, last, _with_body(source, last, loop)),
            "full-last",
            "timeout",
            note="a loop that ignores SIGINT",
        )
    )
    cases.append(
        Case(
            "os_exit",
            _set(honest, last, _with_body(source, last, "import os\nos._exit(3)")),
            "full-last",
            "crashed",
        )
    )
    cases.append(
        Case(
            "os_exit_top_level",
            _add_cell(honest, "import os\nos._exit(0)\n"),
            "full",
            "crashed",
            note="kills the process while the notebook loads",
        )
    )
    bomb = "blocks = []\nwhile True:\n    blocks.append(bytearray(100_000_000))"
    cases.append(
        Case(
            "memory_bomb",
            _set(honest, last, _with_body(source, last, bomb)),
            "full-last",
            "graded|timeout|crashed",
        )
    )
    fork = "import os\nwhile True:\n    os.fork()"
    cases.append(
        Case(
            "fork_bomb",
            _set(honest, last, _with_body(source, last, fork)),
            "full-last",
            "graded|crashed|timeout",
            ["imports_os"],
        )
    )
    escape = (
        "import os, pathlib\n"
        f"for target in [{str(ROOT / 'solutions' / 'pwned.txt')!r}, '../../other/pwned.txt',\n"
        "               '/tmp/pwned-by-student.txt', os.path.expanduser('~/pwned.txt')]:\n"
        "    try:\n"
        "        pathlib.Path(target).write_text('pwned')\n"
        "    except OSError:\n"
        "        pass\n"
        "for db in [*pathlib.Path('/tmp').glob('*/gradebook.db'), *pathlib.Path('/tmp').glob('*/*/*/gradebook.db')]:\n"
        "    try:\n"
        "        db.write_bytes(b'')\n"
        "    except OSError:\n"
        "        pass\n"
    )
    cases.append(
        Case(
            "writes_outside",
            _add_cell(honest, escape),
            "full",
            "graded",
            ["imports_os"],
            note="tries to write outside its folder and to gradebooks",
        )
    )
    steal = (
        "import json\n"
        f"nb = json.load(open({str(source.path)!r}))\n"
        f"exec(''.join(c for c in nb['cells'] if c.get('id') == {last!r})[0]['source'])\n"
    )
    cases.append(
        Case(
            "reads_solutions",
            _set(honest, last, steal),
            "full-last",
            "partial",
            ["calls_exec"],
            note="reads the instructor's solution notebook",
        )
    )
    liar = (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "    def __bool__(self):\n        return True\n"
        "return Anything()"
    )
    cases.append(
        Case(
            "always_equal",
            _set(honest, last, _with_body(source, last, liar)),
            "full-last",
            "graded",
            note="returns an object equal to everything",
        )
    )
    noisy = _cell(honest, first)["source"].replace(
        "### BEGIN SOLUTION",
        "### BEGIN SOLUTION\n    import sys, warnings\n    warnings.warn('harmless')\n"
        "    print('debug output', file=sys.stderr)",
    )
    cases.append(
        Case(
            "stderr_warnings",
            _set(honest, first, noisy),
            "full",
            "graded",
            note="a correct solution that writes to stderr",
        )
    )
    cases.append(Case("no_notebook", None, "zero", "missing"))
    return source, cases


def write(
    assignment_id: str, dest: Path, only: list[str] | None = None
) -> tuple[SourceAssignment, list[Case]]:
    source, cases = build(assignment_id)
    cases = [c for c in cases if only is None or c.student in only]
    for case in cases:
        folder = dest / case.student / assignment_id
        folder.mkdir(parents=True, exist_ok=True)
        if case.notebook is None:
            continue
        data = (
            case.notebook
            if isinstance(case.notebook, bytes)
            else json.dumps(case.notebook, indent=1).encode()
        )
        (folder / f"{assignment_id}.ipynb").write_bytes(data)
    return source, cases


def expected_score(case: Case, source: SourceAssignment) -> float | None:
    last = source.solutions[-1].grade_id
    last_points = sum(t.points for t in source.tests if t.owner == last)
    return {"full": source.max_score, "zero": 0.0, "full-last": source.max_score - last_points}.get(
        case.score
    )


if __name__ == "__main__":
    src, built = write(sys.argv[1], Path(sys.argv[2]))
    print(
        json.dumps(
            {c.student: {"score": c.score, "status": c.status, "flags": c.flags} for c in built},
            indent=1,
        )
    )

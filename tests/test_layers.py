"""Who may import whom in course_lib, read from the source with ``ast`` (nothing is imported).

- a chapter module imports only chapter modules of the same or an earlier chapter, plus
  ``viz``, ``interactive`` and ``data``;
- ``grading/`` (what test cells import) imports no chapter module;
- ``instructor/`` uses only public names of ``grading``;
- nothing imports ``authoring/`` except ``cli.py``, ``tools/``, ``benchmarks/`` and the tests;
- the sandboxed ``instructor/worker.py`` imports only ``wire`` and ``grading`` of course_lib,
  plus the standard library and the numeric stack the student's code runs on.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from course_lib.chapters import CHAPTERS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_lib"
ORDER = {c.module: i for i, c in enumerate(CHAPTERS)}
HELPERS = {"viz", "interactive", "data"}


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) for every import in ``path``, at any depth."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> list[tuple[str, list[str], int]]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [a.name for a in node.names]
            found.append((base, names, node.lineno))
            found += [(f"{base}.{n}", [], node.lineno) for n in names]  # `from pkg import mod`
    return found


def course_modules(path: Path) -> list[tuple[str, list[str], int]]:
    return only_course(imports(path))


def only_course(found: list[tuple[str, list[str], int]]) -> list[tuple[str, list[str], int]]:
    return [(m, n, line) for m, n, line in found if m.startswith("course_lib")]


def top(module: str) -> str:
    """``course_lib.grading.mistakes.masking`` -> ``grading``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_rules_see_every_chapter_module() -> None:
    assert all((PACKAGE / f"{m}.py").is_file() for m in ORDER), "a chapter without its module"
    assert len(ORDER) == len(CHAPTERS) >= 13


@pytest.mark.parametrize("module", list(ORDER))
def test_a_chapter_imports_only_earlier_chapters_and_the_helpers(module: str) -> None:
    bad = []
    for name, _, line in course_modules(PACKAGE / f"{module}.py"):
        other = top(name)
        if other == "" or other in HELPERS:
            continue  # `from course_lib import x` is judged by its `course_lib.x` entry
        if other not in ORDER or ORDER[other] > ORDER[module]:
            bad.append(f"line {line}: {name}")
    assert bad == [], f"course_lib/{module}.py (chapter {ORDER[module] + 1:02d}) imports {bad}"


def test_grading_imports_no_chapter_module() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((PACKAGE / "grading").rglob("*.py"))
        for name, _, line in course_modules(path)
        if top(name) in ORDER
    ]
    assert bad == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_instructor_uses_only_public_names_of_grading() -> None:
    grading_names = {"G", "GX", "grading", "forbidden", "clock"}
    bad = []
    for path in sorted((PACKAGE / "instructor").rglob("*.py")):
        for name, names, line in course_modules(path):
            if top(name) == "grading" and (
                any(_private(p) for p in name.split(".")) or any(_private(n) for n in names)
            ):
                bad.append(f"{path.name}:{line}: {name} {names}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                base = ast.unparse(node.value).split(".")[-1]
                if base in grading_names:
                    bad.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert bad == []


def test_only_the_cli_tools_benchmarks_and_tests_import_authoring() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "cli.py" and "authoring" not in path.relative_to(PACKAGE).parts
        for name, _, line in course_modules(path)
        if top(name) == "authoring"
    ]
    assert bad == []


def test_the_worker_imports_only_wire_grading_and_the_runtime() -> None:
    allowed_course = ("course_lib.instructor.wire", "course_lib.grading")
    runtime = {"torch", "numpy", "matplotlib"}
    bad = []
    for name, _, line in imports(PACKAGE / "instructor" / "worker.py"):
        if name in ("course_lib", "course_lib.instructor"):
            continue  # `from course_lib(.instructor) import x`: judged by its own entry
        if name.startswith("course_lib"):
            if not name.startswith(allowed_course):
                bad.append(f"line {line}: {name}")
        elif name.split(".")[0] not in sys.stdlib_module_names | runtime | {"__future__"}:
            bad.append(f"line {line}: {name}")
    assert bad == []


def test_the_rules_catch_a_violation() -> None:
    """The checks above can fail: absolute and relative imports of a later chapter are seen."""
    source = (
        "from course_lib.masking import causal_mask\nfrom . import gpt\nimport course_lib.viz\n"
    )
    found = [(top(n), line) for n, _, line in only_course(imports_in(source, "course_lib"))]
    assert ("masking", 1) in found and ("gpt", 2) in found and ("viz", 3) in found
    assert ORDER["masking"] > ORDER["attention"]

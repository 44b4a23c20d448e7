"""Reading the trusted source notebook and taking only the student's code out of a submission.

The grader never trusts a submitted notebook's structure: it rebuilds the notebook from the
instructor's source (``solutions/<id>/<id>.ipynb``) and takes from the submission only the
code of the solution cells (matched by nbgrader ``grade_id``, by cell id, or — when another
editor stripped the metadata — by the names the cell defines) plus code cells the student
added. Test cells, outputs, tags and metadata in the submission are only compared with the
release to flag tampering; they never decide anything.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 200 * 1024 * 1024
HIDDEN_RE = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.M | re.S
)
SOLUTION_RE = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*", re.M | re.S
)


@dataclass
class SourceCell:
    index: int
    cell_id: str
    kind: str  # "setup", "solution", "test", "demo", "markdown"
    source: str
    grade_id: str = ""
    points: float = 0.0
    owner: str = ""  # for a test cell: the solution cell (function) it tests
    names: list[str] = field(default_factory=list)  # for a solution cell: what it defines

    @property
    def released(self) -> str:
        """The cell as the student received it (hidden tests and solutions removed)."""
        if self.kind == "test":
            return HIDDEN_RE.sub("", self.source)
        if self.kind == "solution":
            return SOLUTION_RE.sub(
                r"\1# YOUR CODE HERE\n\1raise NotImplementedError()", self.source
            )
        return self.source

    @property
    def visible(self) -> str:
        return HIDDEN_RE.sub("", self.source) if self.kind == "test" else self.source


@dataclass
class SourceAssignment:
    assignment_id: str
    path: Path
    cells: list[SourceCell]

    @property
    def solutions(self) -> list[SourceCell]:
        return [c for c in self.cells if c.kind == "solution"]

    @property
    def tests(self) -> list[SourceCell]:
        return [c for c in self.cells if c.kind == "test"]

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.tests)

    @property
    def exported_names(self) -> list[str]:
        return sorted({n for c in self.solutions for n in c.names})


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD. A notebook's JSON may hold one
    (an escape such as ``"\\ud800"``), but no UTF-8 file can: a submission's code or answer
    holding one would stop every write of it (the sandbox's script, the feedback page, the
    marking sheet). It is read as an undecodable byte of the file is, as U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _source(cell: dict) -> str:
    src = cell.get("source", cell.get("input", ""))
    if isinstance(src, list):
        return storable("".join(s for s in src if isinstance(s, str)))
    return storable(src) if isinstance(src, str) else ""


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata")
    md = meta.get("nbgrader") if isinstance(meta, dict) else None
    return md if isinstance(md, dict) else {}


def defined_names(source: str) -> list[str]:
    """Top-level names a cell defines (functions, classes, simple assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [m.group(1) for m in re.finditer(r"^(?:def|class)\s+(\w+)", source, re.M)]
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def load_source(path: Path, assignment_id: str | None = None) -> SourceAssignment:
    """Parse an nbgrader source notebook into typed cells."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells: list[SourceCell] = []
    owner = ""
    for i, raw in enumerate(nb.get("cells", [])):
        md = _nbgrader(raw)
        src = _source(raw)
        cid = str(raw.get("id") or md.get("grade_id") or f"cell-{i}")
        if raw.get("cell_type") != "code":
            cells.append(SourceCell(i, cid, "markdown", src))
            continue
        gid = str(md.get("grade_id", ""))
        if md.get("grade"):
            cells.append(
                SourceCell(i, cid, "test", src, gid, float(md.get("points", 0) or 0), owner=owner)
            )
        elif md.get("solution"):
            owner = gid or cid
            cells.append(SourceCell(i, cid, "solution", src, owner, names=defined_names(src)))
        elif md.get("locked"):
            cells.append(SourceCell(i, cid, "setup", src, gid))
        else:
            cells.append(SourceCell(i, cid, "demo", src))
    aid = assignment_id or Path(path).stem
    if not any(c.kind == "test" for c in cells):
        raise ValueError(f"{path} has no graded test cells: is it an nbgrader source notebook?")
    return SourceAssignment(aid, Path(path), cells)


# ---------------------------------------------------------------------------------------------
# Submissions.
# ---------------------------------------------------------------------------------------------


@dataclass
class Extracted:
    """What the grader takes from one submitted notebook."""

    solutions: dict[str, str] = field(default_factory=dict)  # solution grade_id -> student code
    added: list[tuple[str, str]] = field(default_factory=list)  # (after grade_id or "", code)
    missing: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    invalid: str = ""  # why the file is not a valid notebook (cells may still be recovered)


_STRING = r'"(?:[^"\\]|\\.)*"'
_SOURCE_LIST = re.compile(r'"(?:source|input)"\s*:\s*\[((?:\s*' + _STRING + r"\s*,?)*)\s*\]", re.S)
_SOURCE_STR = re.compile(r'"(?:source|input)"\s*:\s*(' + _STRING + ")", re.S)


def _salvage_cells(text: str) -> list[dict]:
    """Cell sources from a damaged file: every ``"source": [...]`` whose strings still parse."""
    found = []
    for m in list(_SOURCE_LIST.finditer(text)) + list(_SOURCE_STR.finditer(text)):
        try:
            body = m.group(1)
            value = json.loads(f"[{body}]") if m.re is _SOURCE_LIST else json.loads(body)
        except json.JSONDecodeError:
            continue
        src = "".join(value) if isinstance(value, list) else value
        found.append((m.start(), {"cell_type": "code", "source": src, "metadata": {}}))
    return [c for _, c in sorted(found, key=lambda p: p[0])]


def read_cells(path: Path) -> tuple[list[dict], str]:
    """The notebook's cells as v4-style dicts, and why the file is invalid ("" when it is not)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return [], f"cannot read the file: {exc}"
    if size > MAX_NOTEBOOK_BYTES:
        return [], f"file is {size // 2**20} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit"
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        cells = _salvage_cells(text)
        return (
            cells,
            f"not valid JSON ({exc.msg} at line {exc.lineno}); recovered {len(cells)} cells",
        )
    if not isinstance(nb, dict):
        return [], "not a notebook (the JSON is not an object)"
    major = nb.get("nbformat")
    if major == 3 or "worksheets" in nb:
        cells = []
        for ws in nb.get("worksheets", []) if isinstance(nb.get("worksheets"), list) else []:
            if isinstance(ws, dict) and isinstance(ws.get("cells"), list):
                cells += [c for c in ws["cells"] if isinstance(c, dict)]
        return [dict(c, source=_source(c)) for c in cells], ""
    cells = nb.get("cells")
    if not isinstance(cells, list):
        return [], "not a notebook (no list of cells)"
    return [c for c in cells if isinstance(c, dict)], ""


def _norm(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


def extract(path: Path, source: SourceAssignment) -> Extracted:
    out = Extracted()
    cells, out.invalid = read_cells(path)
    by_gid = {c.grade_id: c for c in source.cells if c.grade_id}
    by_name: dict[str, str] = {}
    for c in source.solutions:
        for n in c.names:
            by_name.setdefault(n, c.grade_id)
    released = {_norm(c.released): c for c in source.cells if c.kind != "markdown"}
    released.update(
        {_norm(c.source): c for c in source.cells if c.kind in ("test", "setup", "demo")}
    )
    candidates: dict[str, list[str]] = {c.grade_id: [] for c in source.solutions}
    order: list[str] = []
    seen_tests: set[str] = set()
    current = ""
    for raw in cells:
        if raw.get("cell_type", "code") != "code":
            continue
        src = _source(raw)
        md = _nbgrader(raw)
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
        if any(t in ("skip-execution", "raises-exception", "skip") for t in tags):
            _flag(out, "cell_tags")
        gid = str(md.get("grade_id") or "")
        if gid not in by_gid and str(raw.get("id", "")) in by_gid and not md:
            gid = str(raw.get("id"))
        target = by_gid.get(gid)
        if target is None and not gid:
            # Metadata stripped: a copy of an instructor cell, or a cell defining a graded name.
            twin = released.get(_norm(src))
            if twin is not None and twin.kind != "solution":
                target = twin
            else:
                owners = {by_name[n] for n in defined_names(src) if n in by_name}
                if len(owners) == 1:
                    target = by_gid[owners.pop()]
        if target is None:
            if gid:
                _flag(out, "unknown_grade_id")
            if src.strip() and not out.invalid:  # salvaged fragments may be markdown
                out.added.append((current, src))
            continue
        if target.kind == "solution":
            if md and (md.get("grade") or not md.get("solution")):
                _flag(out, "metadata_tampered")
            candidates[target.grade_id].append(src)
            order.append(target.grade_id)
            current = target.grade_id
        elif target.kind == "test":
            seen_tests.add(target.grade_id)
            if md and (not md.get("grade") or float(md.get("points", 0) or 0) != target.points):
                _flag(out, "metadata_tampered")
            if _norm(src) not in (_norm(target.released), _norm(target.source)):
                _flag(out, f"test_cell_modified:{target.grade_id}")
        elif target.kind == "setup" and _norm(src) != _norm(target.released):
            _flag(out, f"setup_cell_modified:{target.grade_id}")
    for c in source.solutions:
        found = candidates[c.grade_id]
        if not found:
            out.missing.append(c.grade_id)
            continue
        if len(found) > 1:
            _flag(out, f"duplicate_cell:{c.grade_id}")
        out.solutions[c.grade_id] = found[-1]  # run top to bottom, the last definition wins
    if cells and not out.invalid:
        for t in source.tests:
            if t.grade_id not in seen_tests:
                _flag(out, f"test_cell_deleted:{t.grade_id}")
    first_seen = list(dict.fromkeys(order))
    expected = [g for g in (c.grade_id for c in source.solutions) if g in first_seen]
    if first_seen != expected:
        out.notes.append("solution cells reordered")
    return out


def _flag(out: Extracted, flag: str) -> None:
    if flag not in out.flags:
        out.flags.append(flag)


def worker_chunks(source: SourceAssignment, ex: Extracted) -> list[dict]:
    """What the student's process runs: trusted setup cells, the student's code in place of
    each solution cell, and the student's own extra cells after the cell they followed."""
    chunks: list[dict] = []

    def added_after(anchor: str) -> None:
        for k, (after, code) in enumerate(ex.added):
            if after == anchor:
                chunks.append({"id": f"added-{k + 1}", "source": code, "kind": "student"})

    added_after("")
    for c in source.cells:
        if c.kind == "setup":
            chunks.append({"id": c.grade_id or c.cell_id, "source": c.source, "kind": "setup"})
        elif c.kind == "solution" and c.grade_id in ex.solutions:
            chunks.append({"id": c.grade_id, "source": ex.solutions[c.grade_id], "kind": "student"})
            added_after(c.grade_id)
    return chunks


# ---------------------------------------------------------------------------------------------
# Static analysis of the student's code.
# ---------------------------------------------------------------------------------------------

OBFUSCATION_CALLS = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "globals",
    "locals",
    "vars",
    "breakpoint",
}
OBFUSCATION_ATTRS = {
    "__globals__",
    "__code__",
    "__builtins__",
    "__subclasses__",
    "__dict__",
    "__closure__",
    "__func__",
    "f_globals",
    "f_locals",
    "modules",
}
SYSTEM_MODULES = {
    "os",
    "sys",
    "subprocess",
    "socket",
    "signal",
    "ctypes",
    "importlib",
    "marshal",
    "pickle",
    "shutil",
    "inspect",
    "gc",
    "builtins",
    "multiprocessing",
    "threading",
    "IPython",
    "resource",
    "pathlib",
    "io",
}
PATCHABLE_ROOTS = {
    "torch",
    "np",
    "numpy",
    "nn",
    "F",
    "G",
    "ref",
    "math",
    "course_lib",
    "sys",
    "builtins",
    "IPython",
    "grading",
    "warnings",
    "inspect",
}


@dataclass
class Analysis:
    reference: list[str] = field(default_factory=list)  # course_lib use
    forbidden: list[str] = field(default_factory=list)  # forbidden built-ins named in the code
    suspicious: list[str] = field(default_factory=list)  # obfuscation, patching, system access
    lines: list[tuple[str, str, int]] = field(default_factory=list)  # (field, finding, line)


def analyse(code: str, forbidden_paths: set[str] = frozenset()) -> Analysis:
    """Look for the reference, forbidden built-ins and tricks in a cell of student code.

    Informational only: ``course grade`` never takes points for what code *says*, only for
    what it calls while it runs (see :mod:`course_lib.instructor.grader`).
    """
    result = Analysis()

    def hit(field_name: str, finding: str, line: int) -> None:
        getattr(result, field_name).append(finding)
        result.lines.append((field_name, finding, line))

    for m in re.finditer(r"^\s*[%!]", code, re.M):
        hit("suspicious", "ipython_magic", code.count("\n", 0, m.start()) + 1)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        for i, line in enumerate(code.splitlines(), 1):
            if "course_lib" in line:
                hit("reference", "course_lib", i)
        return result
    forbidden_attrs = {
        p.rsplit(".", 1)[-1] for p in forbidden_paths if not p.startswith("course_lib")
    }
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for m in modules:
                root = m.split(".")[0]
                if root == "course_lib":
                    hit("reference", m, line)
                elif root in SYSTEM_MODULES:
                    hit("suspicious", f"imports_{root}", line)
            if isinstance(node, ast.ImportFrom):
                for a in node.names:
                    if a.name in forbidden_attrs:
                        hit("forbidden", a.name, line)
        elif isinstance(node, ast.Attribute):
            if node.attr in forbidden_attrs:
                hit("forbidden", node.attr, line)
            if node.attr in OBFUSCATION_ATTRS:
                hit("suspicious", f"uses_{node.attr}", line)
        elif isinstance(node, ast.Name):
            if node.id == "course_lib":
                hit("reference", "course_lib", line)
            elif node.id in ("get_ipython", "__builtins__"):
                hit("suspicious", f"uses_{node.id}", line)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name in OBFUSCATION_CALLS:
                hit("suspicious", f"calls_{name}", line)
            elif name in ("getattr", "setattr", "delattr") and (
                len(node.args) < 2 or not isinstance(node.args[1], ast.Constant)
            ):
                hit("suspicious", f"dynamic_{name}", line)
            elif name == "setattr" or name == "delattr":
                hit("suspicious", f"calls_{name}", line)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "course_lib" in node.value:
                hit("reference", "course_lib (in a string)", line)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                base = t
                while isinstance(base, ast.Attribute | ast.Subscript):
                    base = base.value
                if isinstance(t, ast.Attribute | ast.Subscript) and isinstance(base, ast.Name):
                    if base.id in PATCHABLE_ROOTS:
                        hit("suspicious", "monkeypatch", line)
    for field_name in ("reference", "forbidden", "suspicious"):
        setattr(result, field_name, sorted(set(getattr(result, field_name))))
    return result


def findings(code: str) -> list[tuple[str, int]]:
    """What a reviewer may want to look at in a cell, with its line: ``reference_mention``
    (``course_lib`` in an import, a name or a string) and the tricks of :func:`analyse`.
    Each finding once, at its first line."""
    found: dict[str, int] = {}
    for field_name, finding, line in sorted(analyse(code).lines, key=lambda t: t[2]):
        key = "reference_mention" if field_name == "reference" else finding
        found.setdefault(key, line)
    return sorted(found.items(), key=lambda kv: (kv[1], kv[0]))

"""Copying review: every student's solution code against every other's and against the
reference (the chapter's ``course_lib`` module and the instructor's solution cells).

Fingerprints come from `copydetect <https://github.com/blingenf/copydetect>`_ (winnowing over
pygments tokens, with names, strings and comments normalised); the released starter code is
boilerplate, so the signatures and docstrings every student received never count. A pair is
listed when the larger of its two similarities (the share of one side's code found in the
other) reaches ``threshold`` and at least ``min_chars`` of normalised code are shared. Rows get
flags ``similar_to:<id>`` or ``matches_reference`` for a person to review; a score never
changes here.

Written to ``OUT/similarity/<assignment>.html`` (pairs with the shared code highlighted) and
``OUT/similarity/<assignment>.csv``.
"""

from __future__ import annotations

import contextlib
import html
import importlib.util
import io
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

from course_lib import CHAPTER_MODULES
from course_lib.instructor.export import write_atomic, write_table
from course_lib.instructor.notebooks import SourceAssignment

NOISE = 25  # k: shortest normalised run (characters) that can count as shared
WINDOW = 5  # winnowing window: any shared run of NOISE + WINDOW - 1 characters is found
REFERENCE = "reference"


@dataclass
class Pair:
    assignment_id: str
    a: str
    b: str  # a student id or "reference"
    similarity_a: float  # share of a's code found in b
    similarity_b: float
    shared_chars: int
    html_a: str
    html_b: str

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)


def _fingerprint(name: str, code: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint(
        f"{name}.py",
        NOISE,
        WINDOW,
        boilerplate=boilerplate,
        fp=io.StringIO(code),
        language="python",
    )


def _highlight(code: str, slices) -> str:
    """The code with the shared slices marked (``<mark>``), escaped for HTML."""
    if len(slices) == 0 or len(slices[0]) == 0:
        return html.escape(code)
    out, last = [], 0
    for start, end in sorted(zip(slices[0].tolist(), slices[1].tolist())):
        start, end = max(start, last), max(end, last)
        out.append(html.escape(code[last:start]))
        out.append("<mark>" + html.escape(code[start:end]) + "</mark>")
        last = end
    out.append(html.escape(code[last:]))
    return "".join(out)


def reference_code(source: SourceAssignment) -> list[str]:
    """The references, compared one by one: the instructor's solution cells and the chapter's
    module in ``course_lib`` (what the book shows)."""
    parts = ["\n\n".join(c.source for c in source.solutions)]
    module = CHAPTER_MODULES.get(source.assignment_id)
    if module:
        # Its file, found without importing it (that would import torch into the client).
        spec = importlib.util.find_spec(f"course_lib.{module}")
        if spec is not None and spec.origin:
            with contextlib.suppress(OSError):
                parts.append(Path(spec.origin).read_text(encoding="utf-8"))
    return [p for p in parts if p.strip()]


def student_code(result: dict) -> str:
    return "\n\n".join(str(v) for _, v in sorted(result.get("student_code", {}).items()))


def compare(
    assignment_id: str,
    codes: dict[str, str],
    references: list[str],
    boilerplate_code: str,
    threshold: float = 0.8,
    min_chars: int = 60,
) -> list[Pair]:
    """Pairs (student, student) and (student, reference) at or above ``threshold``."""
    from copydetect.detector import compare_files

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    import numpy as np

    boiler = (
        np.array(sorted(_fingerprint("boilerplate", boilerplate_code, None).hashes))
        if boilerplate_code
        else []
    )
    prints = {
        sid: _fingerprint(sid, code, boiler) for sid, code in sorted(codes.items()) if code.strip()
    }
    refs = [_fingerprint(REFERENCE, text, boiler) for text in references if text.strip()]
    pairs: list[Pair] = []

    def check(a: str, fa, b: str, fb) -> None:
        overlap, (sa, sb), (slices_a, slices_b) = compare_files(fa, fb)
        if overlap < min_chars or max(sa, sb) < threshold:
            return
        pairs.append(
            Pair(
                assignment_id,
                a,
                b,
                float(sa),
                float(sb),
                int(overlap),
                _highlight(fa.raw_code, slices_a),
                _highlight(fb.raw_code, slices_b),
            )
        )

    for (a, fa), (b, fb) in itertools.combinations(prints.items(), 2):
        check(a, fa, b, fb)
    for a, fa in prints.items():
        best = None
        for ref in refs:
            overlap, (sa, _), (slices_a, slices_r) = compare_files(fa, ref)
            if overlap >= min_chars and sa >= threshold and (best is None or sa > best[0]):
                best = (sa, overlap, slices_a, slices_r, ref)
        if best is not None:
            sa, overlap, slices_a, slices_r, ref = best
            pairs.append(
                Pair(
                    assignment_id,
                    a,
                    REFERENCE,
                    float(sa),
                    0.0,
                    int(overlap),
                    _highlight(fa.raw_code, slices_a),
                    _highlight(ref.raw_code, slices_r),
                )
            )
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


def flags(pairs: list[Pair]) -> dict[tuple[str, str], list[str]]:
    """(student, assignment) → review flags."""
    out: dict[tuple[str, str], list[str]] = {}
    for p in pairs:
        if p.b == REFERENCE:
            out.setdefault((p.a, p.assignment_id), []).append("matches_reference")
            continue
        out.setdefault((p.a, p.assignment_id), []).append(f"similar_to:{p.b}")
        out.setdefault((p.b, p.assignment_id), []).append(f"similar_to:{p.a}")
    return out


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem}mark{background:#ffd54f}"
    "pre{background:#f6f6f6;padding:.5rem;overflow-x:auto;white-space:pre-wrap}"
    ".pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}"
)


def report_html(assignment_id: str, pairs: list[Pair], n_students: int, threshold: float) -> str:
    items = []
    for p in pairs:
        items.append(
            f"<h2>{html.escape(p.a)} ↔ {html.escape(p.b)}: {100 * p.similarity_a:.0f} % / "
            f"{100 * p.similarity_b:.0f} % ({p.shared_chars} normalised characters shared)</h2>"
            f"<div class='pair'><div><h3>{html.escape(p.a)}</h3><pre>{p.html_a}</pre></div>"
            f"<div><h3>{html.escape(p.b)}</h3><pre>{p.html_b}</pre></div></div>"
        )
    body = (
        f"<p>{n_students} submissions compared with each other and with the reference; "
        f"pairs with ≥ {100 * threshold:.0f} % of one side's code shared are listed, shared "
        "code <mark>highlighted</mark>. A flag asks for a person's review; it changes no "
        "score.</p>" + ("".join(items) if items else "<p>No pair over the threshold.</p>")
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Similarity: {html.escape(assignment_id)}</title><style>{_CSS}</style></head>"
        f"<body><h1>Similarity: {html.escape(assignment_id)}</h1>{body}</body></html>\n"
    )


def run(
    results: list[dict],
    sources: dict[str, SourceAssignment],
    out: Path,
    threshold: float = 0.8,
    min_chars: int = 60,
) -> tuple[dict[tuple[str, str], list[str]], dict[str, str]]:
    """Compare every assignment's submissions; write OUT/similarity/; return the flags and the
    report links (title → path relative to OUT)."""
    by_assignment: dict[str, dict[str, str]] = {}
    for r in results:
        if r.get("status") == "missing":
            continue
        by_assignment.setdefault(r["assignment_id"], {})[r["student_id"]] = student_code(r)
    all_flags: dict[tuple[str, str], list[str]] = {}
    links: dict[str, str] = {}
    for aid, codes in sorted(by_assignment.items()):
        source = sources.get(aid)
        reference = reference_code(source) if source else []
        boiler = "\n\n".join(c.released for c in source.solutions) if source else ""
        pairs = compare(aid, codes, reference, boiler, threshold, min_chars)
        for key, fl in flags(pairs).items():
            all_flags.setdefault(key, []).extend(fl)
        write_atomic(
            out / "similarity" / f"{aid}.html", report_html(aid, pairs, len(codes), threshold)
        )
        write_table(
            out / "similarity" / f"{aid}.csv",
            ["assignment_id", "a", "b", "similarity_a", "similarity_b", "shared_chars"],
            (
                [
                    aid,
                    p.a,
                    p.b,
                    f"{p.similarity_a:.3f}",
                    f"{p.similarity_b:.3f}",
                    str(p.shared_chars),
                ]
                for p in pairs
            ),
        )
        links[f"similarity report {aid} ({len(pairs)} pairs)"] = f"similarity/{aid}.html"
    return all_flags, links

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

Fingerprinting (copydetect's pygments tokeniser, about 5-10 ms a submission) is the review's
cost, so the graders make each submission's fingerprint as they grade it
(:func:`add_fingerprint`, a JSON :func:`fingerprint_record` carried in the result) and the
review only reads it back (:func:`restore_fingerprint`); a record that does not match the code,
the starter code or this version of the fingerprinting is ignored and the fingerprint made here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import importlib.util
import io
import itertools
import logging
from collections.abc import Iterator
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


_BASE = 1099511628211  # odd, so invertible modulo 2**64
_BASE_INVERSE = pow(_BASE, -1, 2**64)


def stable_kgram_hashes(text: str, k: int):
    """The hash of every ``k``-character run of ``text``: a polynomial hash modulo 2**64,
    computed for all runs at once with numpy. copydetect hashes with Python's ``hash()``, which
    changes from one process to the next (``PYTHONHASHSEED``), so its winnowing kept other
    fingerprints, and listed other pairs near the threshold, on every run; these do not."""
    import numpy as np

    n = len(text) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    # surrogatepass: a lone surrogate (valid in a notebook's JSON) is one more code point
    raw = text.encode("utf-32-le", "surrogatepass")
    codes = np.frombuffer(raw, dtype=np.uint32).astype(np.uint64) + 1
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is what is meant
        inverse = np.cumprod(np.full(len(codes), _BASE_INVERSE, dtype=np.uint64))
        inverse = np.concatenate(([np.uint64(1)], inverse[:-1]))  # BASE**-s
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(codes * inverse, dtype=np.uint64)))
        power = np.cumprod(np.full(n, _BASE, dtype=np.uint64)) * np.uint64(
            pow(_BASE, k - 2, 2**64) if k >= 2 else _BASE_INVERSE
        )  # BASE**(s + k - 1) for s = 0 .. n - 1
        hashes = (prefix[k:] - prefix[:n]) * power
    return hashes.view(np.int64)


@contextlib.contextmanager
def _stable_hashes() -> Iterator[None]:
    """copydetect's k-gram hashes replaced by :func:`stable_kgram_hashes` while fingerprints
    are made (``copydetect.utils.hashed_kgrams``, called by its fingerprinting)."""
    from copydetect import utils

    before = utils.hashed_kgrams
    utils.hashed_kgrams = stable_kgram_hashes
    try:
        yield
    finally:
        utils.hashed_kgrams = before


def _fingerprint(name: str, code: str, boilerplate):
    from copydetect import CodeFingerprint

    with _stable_hashes():
        return CodeFingerprint(
            f"{name}.py",
            NOISE,
            WINDOW,
            boilerplate=boilerplate,
            fp=io.StringIO(code),
            language="python",
        )


@functools.lru_cache(maxsize=16)
def _boilerplate_hashes(boilerplate_code: str):
    """The released starter code's fingerprint hashes, sorted (what copydetect leaves out)."""
    import numpy as np

    if not boilerplate_code:
        return []
    return np.array(sorted(_fingerprint("boilerplate", boilerplate_code, None).hashes))


def boilerplate_code(source: SourceAssignment) -> str:
    """The starter code every student received (the solution cells as released)."""
    return "\n\n".join(c.released for c in source.solutions)


# ---------------------------------------------------------------------------------------------
# Fingerprint records: made by the graders, read back by the review.
# ---------------------------------------------------------------------------------------------

RECORD_FORMAT = 1  # bump when the record's fields or their meaning change


@functools.cache
def record_tag() -> str:
    """Everything besides the code and the starter code that decides a fingerprint: the record's
    format, k and the window, the hash, copydetect's and pygments' versions (the tokens) and
    which winnowing copydetect uses. A record with another tag is not used."""
    import copydetect
    import pygments
    from copydetect import utils

    return (
        f"copydetect-record/{RECORD_FORMAT} k={NOISE} window={WINDOW} hash=poly64:{_BASE} "
        f"copydetect={copydetect.__version__} pygments={pygments.__version__} "
        f"winnow={utils._winnow.__module__}"
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint_record(code: str, boilerplate_code: str) -> dict | None:
    """The fingerprint of ``code`` (starter code ``boilerplate_code`` left out) as plain JSON
    data, or None for code the review does not fingerprint (blank). It holds what copydetect's
    tokeniser produced (the normalised code, its offsets into the raw code), the winnowed
    positions grouped by hash as copydetect keeps them, the token coverage, the :func:`record_tag`
    and the digests of both texts. The hashes are not stored: :func:`restore_fingerprint`
    recomputes them from the normalised code (:func:`stable_kgram_hashes`, cheap), and the raw
    code is the result's own ``student_code``."""
    if not code.strip():
        return None
    fp = _fingerprint("submission", code, _boilerplate_hashes(boilerplate_code))
    offsets = fp.offsets
    return {
        "format": record_tag(),
        "code_sha256": _digest(code),
        "boilerplate_sha256": _digest(boilerplate_code),
        "filtered_code": fp.filtered_code,
        "offsets": [offsets[:, 0].tolist(), offsets[:, 1].tolist()] if len(offsets) else None,
        "positions": [[int(i) for i in idx] for idx in fp.hash_idx.values()],
        "token_coverage": int(fp.token_coverage),
    }


def restore_fingerprint(record: object, name: str, code: str, boilerplate_code: str):
    """The ``copydetect.CodeFingerprint`` that :func:`_fingerprint` makes of ``code``, from its
    :func:`fingerprint_record`; None (make it again) when the record is not one for this code,
    this starter code and this :func:`record_tag`, or is malformed in any way."""
    import numpy as np
    from copydetect import CodeFingerprint

    try:
        if not (
            isinstance(record, dict)
            and record.get("format") == record_tag()
            and record.get("code_sha256") == _digest(code)
            and record.get("boilerplate_sha256") == _digest(boilerplate_code)
        ):
            return None
        filtered, coverage = record["filtered_code"], record["token_coverage"]
        groups = record["positions"]
        if not (
            isinstance(filtered, str)
            and type(coverage) is int
            and 0 <= coverage <= len(filtered)
            and isinstance(groups, list)
            and all(isinstance(g, list) and g for g in groups)
        ):
            return None
        every = stable_kgram_hashes(filtered, NOISE)
        sizes = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
        idx = np.asarray(list(itertools.chain.from_iterable(groups)))
        if len(idx) and not (idx.dtype == np.int64 and 0 <= idx.min() and idx.max() < len(every)):
            return None
        hashes = every[idx.astype(np.int64)]
        starts = np.cumsum(sizes) - sizes
        keys = hashes[starts]
        # Every position of a group holds its hash, and no two groups hold the same one.
        if (hashes != np.repeat(keys, sizes)).any() or len(np.unique(keys)) != len(keys):
            return None
        scalars, bounds = list(idx.astype(np.int64)), np.cumsum(sizes).tolist()
        hash_idx = dict(zip(keys, (scalars[a:b] for a, b in zip([0, *bounds], bounds))))
        if record["offsets"] is None:
            offsets = np.array([])
        else:
            offsets = np.asarray(record["offsets"]).T.copy()
            if not (offsets.dtype == np.int64 and offsets.ndim == 2 and offsets.shape[1] == 2):
                return None
    except Exception:  # noqa: BLE001 - any malformed record is only a record not to use
        return None
    fp = CodeFingerprint.__new__(CodeFingerprint)
    fp.filename = f"{name}.py"
    fp.raw_code = code
    fp.filtered_code = filtered
    fp.offsets = offsets
    fp.hashes = set(hash_idx)
    fp.hash_idx = hash_idx
    fp.k = NOISE
    fp.token_coverage = np.float64(coverage)
    return fp


def add_fingerprint(result: dict, source: SourceAssignment) -> None:
    """In a grader, after grading: ``result["fingerprint"]``, the record of the student's code
    for the copying review. It reads the code as text (never runs it); whatever goes wrong here
    leaves the result as it was, and the review fingerprints that submission itself."""
    try:
        record = fingerprint_record(student_code(result), boilerplate_code(source))
    except Exception:  # noqa: BLE001 - a fingerprint is an optimisation, never a fault
        return
    if record is not None:
        result["fingerprint"] = record


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
    records: dict[str, object] | None = None,
) -> list[Pair]:
    """Pairs (student, student) and (student, reference) at or above ``threshold``.

    Exactly the pairs that comparing every pair with copydetect lists, but copydetect compares
    only the pairs that an upper bound on their shared code (:class:`_OverlapBound`, a few sparse
    matrix products over the whole class) cannot rule out: for a class of n students the
    n (n - 1) / 2 Python-level comparisons become a handful of C-level products.

    ``records``: student → the :func:`fingerprint_record` a grader made; a student without a
    valid one is fingerprinted here. The pairs are the same either way."""
    return _compare(
        assignment_id, codes, references, boilerplate_code, threshold, min_chars, records=records
    )


def _compare_all_pairs(
    assignment_id: str,
    codes: dict[str, str],
    references: list[str],
    boilerplate_code: str,
    threshold: float = 0.8,
    min_chars: int = 60,
) -> list[Pair]:
    """:func:`compare` with copydetect run on every pair (the definition the tests and the
    benchmark compare :func:`compare` with)."""
    return _compare(
        assignment_id, codes, references, boilerplate_code, threshold, min_chars, prune=False
    )


def _compare(
    assignment_id: str,
    codes: dict[str, str],
    references: list[str],
    boilerplate_code: str,
    threshold: float,
    min_chars: float,
    prune: bool = True,
    records: dict[str, object] | None = None,
) -> list[Pair]:
    from copydetect.detector import compare_files

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    boiler = _boilerplate_hashes(boilerplate_code)
    records = records or {}
    prints = {
        sid: restore_fingerprint(records.get(sid), sid, code, boilerplate_code)
        or _fingerprint(sid, code, boiler)
        for sid, code in sorted(codes.items())
        if code.strip()
    }
    refs = [_fingerprint(REFERENCE, text, boiler) for text in references if text.strip()]
    names, fps = list(prints), list(prints.values())
    pairs: list[Pair] = []

    # Two files without a common fingerprint share nothing: compare_files gives 0 shared
    # characters and similarities (0, 0), listed only when both limits are at most 0.
    if prune and (0 < min_chars or 0 < threshold):
        student_pairs, ref_pairs = _candidates(fps, refs, threshold, min_chars)
    else:
        student_pairs = itertools.combinations(range(len(fps)), 2)
        ref_pairs = {i: list(range(len(refs))) for i in range(len(fps))}

    for i, j in student_pairs:
        fa, fb = fps[i], fps[j]
        overlap, (sa, sb), (slices_a, slices_b) = compare_files(fa, fb)
        if overlap < min_chars or max(sa, sb) < threshold:
            continue
        pairs.append(
            Pair(
                assignment_id,
                names[i],
                names[j],
                float(sa),
                float(sb),
                int(overlap),
                _highlight(fa.raw_code, slices_a),
                _highlight(fb.raw_code, slices_b),
            )
        )
    for i, candidates in sorted(ref_pairs.items()):
        fa, best = fps[i], None
        for r in candidates:
            overlap, (sa, _), (slices_a, slices_r) = compare_files(fa, refs[r])
            if overlap >= min_chars and sa >= threshold and (best is None or sa > best[0]):
                best = (sa, overlap, slices_a, slices_r, refs[r])
        if best is not None:
            sa, overlap, slices_a, slices_r, ref = best
            pairs.append(
                Pair(
                    assignment_id,
                    names[i],
                    REFERENCE,
                    float(sa),
                    0.0,
                    int(overlap),
                    _highlight(fa.raw_code, slices_a),
                    _highlight(ref.raw_code, slices_r),
                )
            )
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


class _OverlapBound:
    """For every pair of fingerprints, an upper bound on what ``compare_files`` reports.

    copydetect's shared characters of file 1 (``token_overlap1``) are the size of the union of
    the intervals ``[p, p + k)`` over the multiset S of file 1's fingerprint positions whose
    hash file 2 also has. With S sorted, that union is ``sum over p in S of min(k, next_S(p) -
    p)`` (k for the last), so it is at most ``k |S|`` less ``k - min(k, q - p)`` for every two
    positions p < q that follow each other in file 1 and are both in S. Both in S is known
    without looking at the pair when the two hashes also follow each other in file 2, which
    makes the bound two sparse products over the whole class::

        upper(1, 2) = k * (A1 . B2) - (D1 . G2)

    A: the number of positions per hash, B: 1 per hash, D: ``k - min(k, q - p)`` per pair of
    successive hashes, G: 1 per pair of successive hashes. The union also never exceeds the
    file's ``token_coverage`` (every position's interval), copydetect's denominator, so
    ``min(upper, coverage) / coverage`` bounds the similarity from above (a correctly rounded
    division keeps the order of the numerators).
    """

    def __init__(self, prints: list, k: int) -> None:
        import numpy as np
        from scipy import sparse

        self.k = k
        self.coverage = np.array([float(fp.token_coverage) for fp in prints], dtype=np.float64)
        rows, hashes, positions = [], [], []
        for r, fp in enumerate(prints):
            if not fp.hash_idx:
                continue
            keys = np.fromiter(fp.hash_idx.keys(), dtype=np.int64, count=len(fp.hash_idx))
            lengths = np.fromiter(map(len, fp.hash_idx.values()), dtype=np.int64)
            pos = np.fromiter(
                itertools.chain.from_iterable(fp.hash_idx.values()),
                dtype=np.int64,
                count=int(lengths.sum()),
            )
            order = np.argsort(pos, kind="stable")
            rows.append(np.full(len(pos), r, dtype=np.int64))
            hashes.append(np.repeat(keys, lengths)[order])
            positions.append(pos[order])
        shape_rows = len(prints)
        if rows:
            row = np.concatenate(rows)
            _, column = np.unique(np.concatenate(hashes), return_inverse=True)
            pos = np.concatenate(positions)
        else:
            row = column = pos = np.zeros(0, dtype=np.int64)
        n_hashes = int(column.max()) + 1 if len(column) else 0
        self.A = sparse.csr_matrix(
            (np.ones(len(row), dtype=np.int64), (row, column)), shape=(shape_rows, n_hashes)
        )
        self.B = self.A.copy()
        self.B.data[:] = 1
        follows = row[1:] == row[:-1]
        gap = (pos[1:] - pos[:-1])[follows]
        pair_key = column[:-1][follows] * n_hashes + column[1:][follows]
        _, pair_column = np.unique(pair_key, return_inverse=True)
        n_pairs = int(pair_column.max()) + 1 if len(pair_column) else 0
        self.D = sparse.csr_matrix(
            (k - np.minimum(k, gap), (row[:-1][follows], pair_column)),
            shape=(shape_rows, n_pairs),
        )
        self.G = sparse.csr_matrix(
            (np.ones(len(pair_column), dtype=np.int64), (row[:-1][follows], pair_column)),
            shape=(shape_rows, n_pairs),
        )
        self.G.data[:] = 1

    def upper(self, rows: slice, cols: slice) -> tuple:
        """(common, shared) for each row file × column file: how many of the row file's
        positions hold a hash the column file has (0: nothing in common), and the upper bound
        on the row file's shared characters, at most its coverage."""
        import numpy as np

        common = (self.A[rows] @ self.B[cols].T).toarray()
        shared = self.k * common - (self.D[rows] @ self.G[cols].T).toarray()
        return common, np.minimum(shared, self.coverage[rows, None])

    def share(self, shared, rows: slice):
        """The bound on the similarity: shared characters / coverage (0 without coverage)."""
        import numpy as np

        cov = self.coverage[rows, None]
        return np.divide(shared, cov, out=np.zeros(shared.shape), where=cov > 0)


_BLOCK = 1 << 21  # pair bounds held at once (about 16 MiB per array)


def _candidates(
    fps: list, refs: list, threshold: float, min_chars: float
) -> tuple[Iterator[tuple[int, int]], dict[int, list[int]]]:
    """The pairs of students (i < j, in ``combinations`` order) and, per student, the references
    that the bound of :class:`_OverlapBound` cannot rule out (the others are never listed)."""
    import numpy as np

    n, m = len(fps), len(refs)
    bound = _OverlapBound(fps + refs, NOISE)

    def student_pairs() -> Iterator[tuple[int, int]]:
        step = max(1, _BLOCK // max(n, 1))
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            rows, cols = slice(r0, r1), slice(r0, n)
            common, shared_a = bound.upper(rows, cols)
            _, shared_b = bound.upper(cols, rows)
            share = np.maximum(bound.share(shared_a, rows), bound.share(shared_b, cols).T)
            i, j = np.nonzero(
                (common > 0)
                & ~(shared_a < min_chars)
                & ~(share < threshold)
                & (np.arange(r0, n)[None, :] > np.arange(r0, r1)[:, None])
            )
            yield from zip((i + r0).tolist(), (j + r0).tolist())

    ref_pairs: dict[int, list[int]] = {}
    if m and n:
        rows, cols = slice(0, n), slice(n, n + m)
        common, shared = bound.upper(rows, cols)
        i, r = np.nonzero(
            (common > 0) & ~(shared < min_chars) & ~(bound.share(shared, rows) < threshold)
        )
        for a, b in zip(i.tolist(), r.tolist()):
            ref_pairs.setdefault(a, []).append(b)
    return student_pairs(), ref_pairs


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
    records: dict[str, dict[str, object]] = {}
    for r in results:
        if r.get("status") == "missing":
            continue
        by_assignment.setdefault(r["assignment_id"], {})[r["student_id"]] = student_code(r)
        if r.get("fingerprint") is not None:
            records.setdefault(r["assignment_id"], {})[r["student_id"]] = r["fingerprint"]
    all_flags: dict[tuple[str, str], list[str]] = {}
    links: dict[str, str] = {}
    for aid, codes in sorted(by_assignment.items()):
        source = sources.get(aid)
        reference = reference_code(source) if source else []
        boiler = boilerplate_code(source) if source else ""
        pairs = compare(
            aid, codes, reference, boiler, threshold, min_chars, records=records.get(aid)
        )
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

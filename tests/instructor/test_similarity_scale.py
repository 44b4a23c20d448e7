"""The copying review at scale: ``similarity.compare`` runs copydetect only on the pairs that its
sparse upper bound cannot rule out, and must list exactly what comparing every pair lists
(``similarity._compare_all_pairs``): the same pairs, in the same order, with the same numbers
and highlighted code."""

from __future__ import annotations

import random
import re
import sys
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.instructor import notebooks as nbk
from course_lib.instructor import similarity

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "classroom"))

from honest_variants import SDPA, SOFTMAX, WEIGHTS, honest_code  # noqa: E402

A1 = "05_attention"


@cache
def setting() -> tuple[list[str], str]:
    """Chapter 05's references and released starter code (the boilerplate)."""
    source = nbk.load_source(ROOT / "solutions" / A1 / f"{A1}.ipynb", A1)
    return similarity.reference_code(source), "\n\n".join(c.released for c in source.solutions)


def honest(i: int) -> str:
    return similarity.student_code({"student_code": honest_code(i)})


def renamed(code: str, rng: random.Random) -> str:
    """The code with its names changed, comments added and blank lines moved (what a copier
    does to hide a copy; copydetect normalises all of it away)."""
    names = {"m": "mx", "den": "norm", "num": "top", "logits": "scores", "w": "probs", "s": "f"}
    for old, new in names.items():
        if rng.random() < 0.7:
            code = re.sub(rf"\b{old}\b", new, code)
    lines = code.splitlines()
    out = []
    for line in lines:
        out.append(line)
        if rng.random() < 0.15:
            out.append("    # step done" if line.startswith(" ") else "")
    return "\n".join(out) + "\n"


def corpus(n_honest: int, seed: int) -> dict[str, str]:
    """Honest students and every kind of copy, plus the code that gives copydetect nothing to
    compare: exact, renamed and partial copies of students and of the reference, copies with
    a line dropped or a block repeated, short snippets, empty code, comments only and the
    untouched starter code."""
    rng = random.Random(seed)
    references, boiler = setting()
    codes = {f"h{i:03d}": honest(i) for i in range(n_honest)}
    own = list(codes.values())

    def add(kind: str, code: str) -> None:
        codes[f"{kind}{len(codes):03d}"] = code

    for _ in range(4):
        add("exact", rng.choice(own))
    for _ in range(6):
        add("renamed", renamed(rng.choice(own), rng))
    for _ in range(6):  # one or two functions of someone else, the rest their own
        donor, mine = honest_code(rng.randrange(n_honest)), honest_code(rng.randrange(10**6))
        taken = set(rng.sample(sorted(donor), rng.choice([1, 2])))
        mixed = {k: (donor if k in taken else mine)[k] for k in donor}
        add("partial", similarity.student_code({"student_code": mixed}))
    for _ in range(6):  # a copy with one or two lines dropped: near any threshold
        lines = rng.choice(own).splitlines()
        for _ in range(rng.choice([1, 2])):
            del lines[rng.randrange(len(lines))]
        add("dropped", "\n".join(lines) + "\n")
    add("twice", own[0] + "\n\n" + own[0])  # every fingerprint twice
    add("twice", own[1] + "\n\n" + own[2])
    add("ref", references[0])
    add("ref", renamed(references[0], rng))
    add("ref", references[-1][: len(references[-1]) // 2])
    add("ref", references[0][: len(references[0]) // 3] + own[3][len(own[3]) // 2 :])
    add("short", "def f(x):\n    return x.max()\n")  # fewer normalised characters than k
    add("short", "    num = torch.exp(x - m)\n    den = num.sum(dim=dim, keepdim=True)\n")
    add("short", "    return num / den\n")
    # the same few normalised characters (fewer than any min_chars of the cases but 0)
    add("tiny", "    num = torch.exp(x - m)\n    den = num.sum(dim=dim, keepdim=True)\n")
    add("tiny", "    top = torch.exp(x - mx)\n    norm = top.sum(dim=dim, keepdim=True)  # sum\n")
    add("empty", "")
    add("empty", "   \n\n")
    add("comment", "# I did not finish this one.\n# Sorry.\n")
    add("starter", boiler)  # the released code untouched: all boilerplate
    add("starter", boiler + "\n" + "    return num / den\n")
    return codes


CASES = [(t, c) for t in (0.3, 0.45, 0.6, 0.8) for c in (0, 60, 150)] + [(0.0, 0), (0.0, 40)]


@pytest.mark.parametrize(("threshold", "min_chars"), CASES)
def test_compare_lists_exactly_what_comparing_every_pair_lists(
    threshold: float, min_chars: int
) -> None:
    references, boiler = setting()
    codes = corpus(36, seed=5)
    expected = similarity._compare_all_pairs(A1, codes, references, boiler, threshold, min_chars)
    got = similarity.compare(A1, codes, references, boiler, threshold, min_chars)
    assert [(p.a, p.b, p.similarity_a, p.similarity_b, p.shared_chars) for p in got] == [
        (p.a, p.b, p.similarity_a, p.similarity_b, p.shared_chars) for p in expected
    ]
    assert got == expected  # the highlighted code too
    listed = {p.b for p in expected}
    assert len(expected) >= 5 and similarity.REFERENCE in listed
    if threshold >= 0.8:  # the copies are listed, not every pair
        assert len(expected) < 200
        kinds = {tuple(sorted((p.a.rstrip("0123456789"), p.b.rstrip("0123456789"))))
                 for p in expected}  # fmt: skip
        assert {("exact", "h"), ("h", "renamed"), ("dropped", "h")} <= kinds


def test_the_limits_of_the_cases_cut_through_the_pairs() -> None:
    """The cases above are not vacuous: each threshold lists fewer pairs than the one below it,
    honest pairs included, and ``min_chars`` drops pairs that the threshold alone keeps (whatever Python's hash seed,
    which decides the fingerprints copydetect keeps)."""
    references, boiler = setting()
    codes = corpus(36, seed=5)

    def listed(threshold: float, min_chars: int) -> set[tuple[str, str]]:
        pairs = similarity.compare(A1, codes, references, boiler, threshold, min_chars)
        return {(p.a, p.b) for p in pairs}

    by_threshold = [listed(t, 60) for t in (0.3, 0.45, 0.6, 0.8)]
    for lower, higher in zip(by_threshold, by_threshold[1:]):
        assert higher < lower
    honest_pairs = [{(a, b) for a, b in s if a[0] == b[0] == "h"} for s in by_threshold]
    assert honest_pairs[1] - honest_pairs[2] and honest_pairs[0] - honest_pairs[1]
    few_chars = listed(0.45, 0) - listed(0.45, 60)
    assert tuple(sorted(s for s in codes if s.startswith("tiny"))) in few_chars


LINES = [option for group in (SOFTMAX, WEIGHTS, SDPA) for options in group for option in options]


@st.composite
def classes(draw) -> dict[str, str]:
    """A handful of students whose code is random lines of the honest variants, some pasting
    a random slice of an earlier student's code into their own."""
    n = draw(st.integers(2, 9))
    codes: dict[str, str] = {}
    for i in range(n):
        picks = draw(st.lists(st.sampled_from(LINES), min_size=0, max_size=14))
        code = "def f(x):\n" + "\n".join(picks) + "\n"
        if codes and draw(st.booleans()):
            donor = draw(st.sampled_from(sorted(codes.values())))
            a = draw(st.integers(0, len(donor)))
            b = draw(st.integers(a, len(donor)))
            cut = draw(st.integers(0, len(code)))
            code = code[:cut] + "\n" + donor[a:b] + "\n" + code[cut:]
        codes[f"s{i}"] = code
    return codes


@settings(max_examples=40, deadline=None)
@given(
    codes=classes(),
    threshold=st.floats(0.05, 1.0),
    min_chars=st.integers(0, 250),
    with_reference=st.booleans(),
)
def test_compare_matches_every_pair_on_random_classes(
    codes: dict[str, str], threshold: float, min_chars: int, with_reference: bool
) -> None:
    references, boiler = setting()
    refs = references if with_reference else []
    expected = similarity._compare_all_pairs(A1, codes, refs, boiler, threshold, min_chars)
    assert similarity.compare(A1, codes, refs, boiler, threshold, min_chars) == expected


def test_an_honest_class_of_200_is_compared_in_far_fewer_calls(monkeypatch) -> None:
    """200 honest students (honest pairs share about 40 % of their code) and three copies: the
    bound leaves copydetect a small fraction of the 20,503 pairs, and the copies are found."""
    import copydetect.detector

    references, boiler = setting()
    codes = {f"s{i:03d}": honest(i) for i in range(200)}
    codes["t001"] = codes["s017"]
    codes["t002"] = renamed(codes["s123"], random.Random(2))
    codes["t003"] = references[0]
    n = len(codes)
    calls = []
    real = copydetect.detector.compare_files

    def counted(a, b):
        calls.append((a.filename, b.filename))
        return real(a, b)

    monkeypatch.setattr(copydetect.detector, "compare_files", counted)
    got = similarity.compare(A1, codes, references, boiler)
    pruned_calls = len(calls)
    calls.clear()
    expected = similarity._compare_all_pairs(A1, codes, references, boiler)
    assert len(calls) == n * (n - 1) // 2 + n * len(references)
    assert got == expected
    assert {(p.a, p.b) for p in got} >= {
        ("s017", "t001"),
        ("s123", "t002"),
        ("t003", similarity.REFERENCE),
    }
    assert pruned_calls <= len(calls) // 50, pruned_calls


def test_the_review_lists_the_same_pairs_in_every_process() -> None:
    """copydetect hashes with Python's ``hash()``, which differs between processes
    (``PYTHONHASHSEED``): its winnowing then keeps other fingerprints and lists other pairs near
    the threshold on every run of ``course grade``. The review's k-gram hashes do not depend on
    the process: two interpreters with different hash seeds list the same pairs."""
    import json
    import os
    import subprocess

    script = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(ROOT / 'tests' / 'instructor')!r}, "
        f"{str(ROOT / 'tests' / 'classroom')!r}]\n"
        "from test_similarity_scale import corpus, setting\n"
        "from course_lib.instructor import similarity\n"
        "refs, boiler = setting()\n"
        "pairs = similarity.compare('05_attention', corpus(120, 3), refs, boiler, 0.45, 60)\n"
        "print(json.dumps([(p.a, p.b, round(p.similarity, 12), p.shared_chars) for p in pairs]))\n"
    )
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        runs.append(json.loads(out.stdout))
    assert runs[0] == runs[1]
    assert 10 < len(runs[0]) < 120 * 119 // 2  # near the threshold: a real test of the hashes


def test_the_k_gram_hashes_are_the_polynomial_hash_of_each_run() -> None:
    def slow(text: str, k: int) -> list[int]:
        out = []
        for i in range(len(text) - k + 1):
            h = 0
            for ch in text[i : i + k]:
                h = (h * similarity._BASE + ord(ch) + 1) % 2**64
            out.append(h - 2**64 if h >= 2**63 else h)
        return out

    for text, k in [(honest(0), 25), ("abc", 1), ("ab", 3), ("héllo ✓ 中文 x", 4)]:
        assert similarity.stable_kgram_hashes(text, k).tolist() == slow(text, k)

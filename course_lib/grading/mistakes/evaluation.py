"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.evaluation`."""

from __future__ import annotations

from collections import Counter

import numpy as np

from course_lib.grading.checkers import Mistake


def _labels_of(y_true, y_pred, labels):
    return list(labels) if labels is not None else sorted(set(list(y_true)) | set(list(y_pred)))


def _counts(y_true, y_pred, labels, transpose=False):
    labels = _labels_of(y_true, y_pred, labels)
    idx = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if t in idx and p in idx:
            if transpose:
                cm[idx[p], idx[t]] += 1
            else:
                cm[idx[t], idx[p]] += 1
    return cm


def confusion_matrix_mistakes() -> list[Mistake]:
    def cm(*, transpose=False, axis_for_true=1, sort_labels=False, nan=False):
        def fn(y_true, y_pred, *, labels=None, normalize=None):
            lab = sorted(labels) if (sort_labels and labels is not None) else labels
            c = _counts(y_true, y_pred, lab, transpose)
            if normalize is None:
                return c
            axis = {"true": axis_for_true, "pred": 1 - axis_for_true, "all": None}[normalize]
            totals = c.sum(axis=axis, keepdims=axis is not None)
            if nan:
                with np.errstate(invalid="ignore", divide="ignore"):
                    return c / totals
            return np.divide(c, totals, out=np.zeros(c.shape), where=totals != 0)

        return fn

    return [
        Mistake(
            "the matrix is transposed: rows are the TRUE labels, columns the predicted ones",
            cm(transpose=True),
        ),
        Mistake(
            "rows and columns are normalised the wrong way round: normalize='true' makes each "
            "ROW (a true class) sum to 1, normalize='pred' each column",
            cm(axis_for_true=0),
        ),
        Mistake(
            "the classes are sorted even though `labels` gives their order; rows and columns "
            "follow `labels` exactly",
            cm(sort_labels=True),
        ),
        Mistake(
            "an empty row or column gives NaN (0 / 0); it must stay 0",
            cm(nan=True),
        ),
    ]


def _prf(y_true, y_pred, labels, average, zero_division, variant=""):
    labels = _labels_of(y_true, y_pred, labels)
    y_true, y_pred = list(y_true), list(y_pred)
    tp = np.array([sum(t == p == c for t, p in zip(y_true, y_pred)) for c in labels], float)
    true_sum = np.array([y_true.count(c) for c in labels], float)
    pred_sum = np.array([y_pred.count(c) for c in labels], float)
    zd = float(zero_division)
    if variant == "ignore_zero_division":
        zd = 0.0

    def div(a, b):
        out = np.full(np.shape(a), zd)
        return np.divide(a, b, out=out, where=b != 0)

    if average == "micro" and variant != "micro_as_macro":
        tp, true_sum, pred_sum = (
            tp.sum(keepdims=True),
            true_sum.sum(keepdims=True),
            pred_sum.sum(keepdims=True),
        )
    p, r = div(tp, pred_sum), div(tp, true_sum)
    f = div(2 * tp, true_sum + pred_sum)
    if average is None:
        return p, r, f, true_sum.astype(np.int64)
    if variant == "macro_as_micro" and average == "macro":
        return _prf(y_true, y_pred, labels, "micro", zero_division)
    weights = None
    if average == "weighted":
        weights = pred_sum if variant == "weighted_by_pred" else true_sum
    mean = [
        float(np.average(v, weights=weights))
        if (weights is None or weights.sum())
        else float(np.mean(v))
        for v in (p, r, f)
    ]
    if variant == "f1_of_means":
        mp, mr = mean[0], mean[1]
        mean[2] = 2 * mp * mr / (mp + mr) if mp + mr else 0.0
    support = true_sum.astype(np.int64) if variant == "support_kept" else None
    return mean[0], mean[1], mean[2], support


def prfs_mistakes() -> list[Mistake]:
    def make(variant: str):
        return lambda y_true, y_pred, *, labels=None, average=None, zero_division=0.0: _prf(
            y_true, y_pred, labels, average, zero_division, variant
        )

    return [
        Mistake(
            "micro and macro are mixed up: micro pools TP, FP and FN over all classes before "
            "dividing; macro averages the per-class scores",
            make("micro_as_macro"),
        ),
        Mistake(
            "micro and macro are mixed up: macro is the plain mean of the per-class scores",
            make("macro_as_micro"),
        ),
        Mistake(
            "the weighted average is weighted by how often a class is PREDICTED; weight by the "
            "support (how often it is true)",
            make("weighted_by_pred"),
        ),
        Mistake(
            "the averaged F1 is the harmonic mean of the averaged precision and recall; average "
            "the per-class F1 scores instead",
            make("f1_of_means"),
        ),
        Mistake(
            "zero_division is ignored: a ratio with denominator 0 takes the value zero_division",
            make("ignore_zero_division"),
        ),
        Mistake("support must be None when the scores are averaged", make("support_kept")),
    ]


def _entities(tags, *, lenient=False, exclusive=False, any_type=False):
    found, current = [], None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and (any_type or current[0] == kind):
            continue
        if current is not None:
            found.append((current[0], current[1], i if exclusive else i - 1))
            current = None
        if prefix == "B" or (lenient and prefix == "I"):
            current = (kind, i)
    return found


def get_entities_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "an I- tag that does not continue an entity of its type started a new one; in "
            "strict IOB2 only B- starts an entity",
            lambda tags: _entities(tags, lenient=True),
        ),
        Mistake(
            "the end index is exclusive; it must be the index of the entity's LAST token",
            lambda tags: _entities(tags, exclusive=True),
        ),
        Mistake(
            "an I- tag of another type continued the entity; I-Y only continues a Y entity",
            lambda tags: _entities(tags, any_type=True),
        ),
    ]


def entity_f1_mistakes() -> list[Mistake]:
    def token_f1(y_true, y_pred):
        t = [x for s in y_true for x in s]
        p = [x for s in y_pred for x in s]
        tp = sum(a == b != "O" for a, b in zip(t, p))
        n = sum(a != "O" for a in t) + sum(b != "O" for b in p)
        return 2 * tp / n if n else 0.0

    def per_sentence(y_true, y_pred):
        scores = []
        for t, p in zip(y_true, y_pred):
            a, b = set(_entities(t)), set(_entities(p))
            scores.append(2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0)
        return sum(scores) / len(scores) if scores else 0.0

    def merged(y_true, y_pred):
        a = {e for s in y_true for e in _entities(s)}
        b = {e for s in y_pred for e in _entities(s)}
        return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0

    return [
        Mistake(
            "this is a token-level F1; an entity counts only when type, start and end all match",
            token_f1,
        ),
        Mistake(
            "the F1 is averaged over sentences; pool the entities of all sentences (micro F1)",
            per_sentence,
        ),
        Mistake(
            "entities of different sentences are mixed up: an entity is (sentence, type, start, "
            "end), the same span in two sentences is two entities",
            merged,
        ),
    ]


def _norm(s: str, *, articles=True, punctuation=True, lower=True, spaces=True) -> str:
    import re
    import string

    if lower:
        s = s.lower()
    if punctuation:
        s = "".join(ch for ch in s if ch not in set(string.punctuation))
    if articles:
        s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split()) if spaces else s


def squad_em_mistakes() -> list[Mistake]:
    def em(**knobs):
        return lambda prediction, truth: float(_norm(prediction, **knobs) == _norm(truth, **knobs))

    return [
        Mistake("articles (a, an, the) are not removed, or not as whole words", em(articles=False)),
        Mistake("punctuation is not removed", em(punctuation=False)),
        Mistake("the comparison is case-sensitive; lowercase both answers", em(lower=False)),
        Mistake("runs of whitespace are not collapsed to one space", em(spaces=False)),
        Mistake(
            "the answers are compared without any normalisation",
            lambda prediction, truth: float(prediction == truth),
        ),
    ]


def squad_f1_mistakes() -> list[Mistake]:
    def f1(*, bag=True, normalise=True, empty_one=False):
        def fn(prediction: str, truth: str) -> float:
            p = (_norm(prediction) if normalise else prediction).split()
            t = (_norm(truth) if normalise else truth).split()
            if empty_one and not p and not t:
                return 1.0
            same = sum((Counter(p) & Counter(t)).values()) if bag else len(set(p) & set(t))
            if same == 0:
                return 0.0
            prec, rec = same / len(p), same / len(t)
            return 2 * prec * rec / (prec + rec)

        return fn

    return [
        Mistake(
            "the common tokens are counted as a set; count them as a bag (a word twice in both "
            "answers counts twice: Counter(a) & Counter(b))",
            f1(bag=False),
        ),
        Mistake("the answers are not normalised before splitting into tokens", f1(normalise=False)),
        Mistake(
            "two answers that normalise to nothing share no token, so their F1 is 0.0 (as in "
            "the official script)",
            f1(empty_one=True),
        ),
    ]

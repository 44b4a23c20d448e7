"""Chapter 11: benchmarks and evaluation metrics.

Classification metrics with scikit-learn semantics (confusion matrix, accuracy, precision,
recall, F1 and their micro / macro / weighted averages), entity-level F1 for NER with strict
IOB2 tags (as ``seqeval`` in strict mode), and the SQuAD v1.1 exact-match and token-F1 scores.

Unlike scikit-learn, nothing here warns: an undefined ratio (a class that is never predicted,
never true, or both) is replaced by ``zero_division`` and that is the documented behaviour.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

__all__ = [
    "accuracy_score",
    "confusion_matrix",
    "precision_recall_fscore_support",
    "get_entities",
    "entity_f1",
    "normalize_answer",
    "squad_exact_match",
    "squad_f1",
]

_AVERAGES = (None, "micro", "macro", "weighted")
_NORMALIZE = (None, "true", "pred", "all")


# --- classification ----------------------------------------------------------------------------


def _as_label_array(y, name: str) -> np.ndarray:
    """A 1-D numpy array of class labels from a list, array or CPU tensor."""
    if hasattr(y, "detach"):  # torch tensor: labels live on the CPU for counting
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D sequence of class labels, got shape {arr.shape}; "
            "take the argmax of scores or probabilities first"
        )
    if arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
        raise ValueError(f"{name} holds non-integer floats; pass class labels, not scores")
    return arr


def _check_targets(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = _as_label_array(y_true, "y_true")
    y_pred = _as_label_array(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}"
        )
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty; pass at least one sample")
    kinds = {y_true.dtype.kind in "US" or y_true.dtype == object}
    kinds.add(y_pred.dtype.kind in "US" or y_pred.dtype == object)
    if len(kinds) > 1:
        raise ValueError("mix of string and number labels; use one type for y_true and y_pred")
    return y_true, y_pred


def _resolve_labels(y_true: np.ndarray, y_pred: np.ndarray, labels) -> np.ndarray:
    """The given labels in the given order, or the sorted union of both label lists."""
    if labels is None:
        return np.unique(np.concatenate([y_true, y_pred]))
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D list of class labels")
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels contains duplicates: {labels.tolist()}")
    return labels


def _label_counts(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(L, L) int64 counts; samples whose true or predicted label is not in labels are dropped."""
    index = {label: i for i, label in enumerate(labels.tolist())}
    rows = np.array([index.get(label, -1) for label in y_true.tolist()], dtype=np.int64)
    cols = np.array([index.get(label, -1) for label in y_pred.tolist()], dtype=np.int64)
    keep = (rows >= 0) & (cols >= 0)
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(cm, (rows[keep], cols[keep]), 1)
    return cm


def confusion_matrix(
    y_true,
    y_pred,
    *,
    labels=None,
    normalize: str | None = None,
) -> np.ndarray:
    """Counts C[i, j] of samples with true label i predicted as j, like
    scikit-learn.

    Args:
        y_true, y_pred: (N,) class labels (ints or strings).
        labels: the classes, in the order of rows and columns; default:
            sorted union of both inputs. Samples whose labels are not
            listed are ignored.
        normalize: None (counts), "true" (rows sum to 1: the diagonal is
            the recall), "pred" (columns sum to 1: the diagonal is the
            precision) or "all".
    Returns:
        (L, L) int64 counts, or float64 when normalized; an empty row or
        column gives zeros.

    Example: confusion_matrix([0, 1, 1], [0, 0, 1]) -> [[1, 0], [1, 1]]
    """
    if normalize not in _NORMALIZE:
        raise ValueError(
            f"normalize must be one of {_NORMALIZE}, got {normalize!r}",
        )
    y_true, y_pred = _check_targets(y_true, y_pred)
    labels = _resolve_labels(y_true, y_pred, labels)
    if not np.isin(y_true, labels).any():
        raise ValueError("At least one label specified must be in y_true")
    cm = _label_counts(y_true, y_pred, labels)  # (L, L)
    if normalize is None:
        return cm
    if normalize == "true":
        # (L, 1) samples per true class
        totals = cm.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        # (1, L) samples per predicted class
        totals = cm.sum(axis=0, keepdims=True)
    else:
        totals = np.full((1, 1), cm.sum())
    # an empty row/column has nothing to normalize; it stays 0 instead of
    # 0/0 = nan
    return np.divide(cm, totals, out=np.zeros(cm.shape), where=totals != 0)


def accuracy_score(y_true, y_pred, *, normalize: bool = True) -> float:
    """Fraction (or, with normalize=False, number) of samples predicted correctly."""
    y_true, y_pred = _check_targets(y_true, y_pred)
    correct = int(np.sum(y_true == y_pred))
    return correct / len(y_true) if normalize else float(correct)


def _divide(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    """numerator / denominator, with zero_division wherever the denominator is 0."""
    out = np.full(np.shape(numerator), zero_division, dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


def _nan_average(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Average that skips nan entries (zero_division=nan) as scikit-learn does."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    if weights is None or weights[keep].sum() == 0:  # all-zero weights: plain mean
        return float(np.mean(values[keep]))
    return float(np.average(values[keep], weights=weights[keep]))


def precision_recall_fscore_support(
    y_true,
    y_pred,
    *,
    labels=None,
    average: str | None = None,
    zero_division: float = 0.0,
):
    """Per-class or averaged precision, recall, F1 and support, like scikit-learn.

    precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN).

    Args:
        y_true, y_pred: (N,) class labels.
        labels: the classes to report, in this order; default: sorted union of both inputs.
            Listed classes absent from the data count as empty classes.
        average: None (one value per class), "micro" (pool TP, FP, FN over classes),
            "macro" (unweighted mean over classes) or "weighted" (mean weighted by support).
        zero_division: the value of a ratio whose denominator is 0 (0.0, 1.0 or nan; nan
            values are left out of averages). No warning is raised.
    Returns:
        (precision, recall, f1, support): arrays of shape (L,) when average is None,
        otherwise three floats and support None.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    zero_division = float(zero_division)
    if not (zero_division in (0.0, 1.0) or np.isnan(zero_division)):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division}")
    y_true, y_pred = _check_targets(y_true, y_pred)
    labels = _resolve_labels(y_true, y_pred, labels)

    # count every sample, so that samples of unlisted classes still count as FP / FN
    all_labels = np.concatenate([labels, np.setdiff1d(np.union1d(y_true, y_pred), labels)])
    counts = _label_counts(y_true, y_pred, all_labels)  # (A, A), the listed labels first
    n = len(labels)
    tp = np.diag(counts)[:n]  # (L,)
    true_sum = counts.sum(axis=1)[:n]  # (L,) support
    pred_sum = counts.sum(axis=0)[:n]  # (L,)
    if average == "micro":  # pool the counts over classes before dividing
        tp, true_sum, pred_sum = (np.sum(a, keepdims=True) for a in (tp, true_sum, pred_sum))

    precision = _divide(tp, pred_sum, zero_division)
    recall = _divide(tp, true_sum, zero_division)
    f1 = _divide(2 * tp, true_sum + pred_sum, zero_division)

    if average is None:
        return precision, recall, f1, true_sum
    weights = true_sum if average == "weighted" else None
    return (
        _nan_average(precision, weights),
        _nan_average(recall, weights),
        _nan_average(f1, weights),
        None,
    )


# --- named-entity recognition ------------------------------------------------------------------


def _split_tag(tag: str, position: int) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, sep, entity_type = tag.partition("-")
    if prefix not in ("B", "I") or not sep or not entity_type:
        raise ValueError(
            f"tag {tag!r} at position {position} is not IOB2; use 'O', 'B-TYPE' or 'I-TYPE'"
        )
    return prefix, entity_type


def get_entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities of one IOB2 tag sequence, read strictly:
    (type, start, end_inclusive).

    An entity is a ``B-X`` followed by any number of ``I-X``. An ``I-X``
    that does not continue an ``X`` entity (after ``O``, at the start, or
    after another type) starts none, and ``B-X`` followed by ``I-Y`` ends X
    at the ``B-X``.

    Example: ["B-PER", "I-PER", "O", "I-LOC", "B-LOC"] ->
        [("PER", 0, 1), ("LOC", 4, 4)]
    """
    if isinstance(tags, str):
        raise TypeError(
            "tags must be a list of tag strings, "
            "not one string; use tags.split()"
        )
    entities = []
    # (type, start) of the entity being read
    current: tuple[str, int] | None = None
    for i, tag in enumerate(tags):
        prefix, entity_type = _split_tag(tag, i)
        if (
            prefix == "I"
            and current is not None
            and current[0] == entity_type
        ):
            continue  # the open entity goes on
        if current is not None:
            entities.append((current[0], current[1], i - 1))
            current = None
        if prefix == "B":
            current = (entity_type, i)
    if current is not None:
        entities.append((current[0], current[1], len(tags) - 1))
    return entities


def entity_f1(y_true: list[list[str]], y_pred: list[list[str]]) -> float:
    """Micro F1 over exact entity matches (same sentence, type, start and end).

    Agrees with ``seqeval.metrics.f1_score(y_true, y_pred, mode="strict", scheme=IOB2)``;
    with no entity on either side the score is 0.0, as seqeval's default.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must hold the same number of sentences, "
            f"got {len(y_true)} and {len(y_pred)}"
        )
    true_entities, pred_entities = set(), set()
    for n, (true_tags, pred_tags) in enumerate(zip(y_true, y_pred)):
        if len(true_tags) != len(pred_tags):
            raise ValueError(
                f"sentence {n}: {len(true_tags)} true tags but {len(pred_tags)} predicted tags"
            )
        true_entities.update((n, *e) for e in get_entities(true_tags))
        pred_entities.update((n, *e) for e in get_entities(pred_tags))
    correct = len(true_entities & pred_entities)
    denominator = len(true_entities) + len(pred_entities)
    return 2 * correct / denominator if denominator else 0.0


# --- question answering ------------------------------------------------------------------------


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalization: lowercase, drop punctuation and articles,
    collapse spaces.

    Example: "The  Eiffel-Tower!" -> "eiffeltower"
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_exact_match(prediction: str, truth: str) -> float:
    """1.0 if the normalized answers are identical, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_f1(prediction: str, truth: str) -> float:
    """F1 of the bags of normalized tokens, as the official SQuAD v1.1 script.

    Like that script, an answer that normalizes to nothing shares no token with anything, so
    its F1 is 0.0 even against an empty truth (exact match still gives 1.0 there).

    Example: squad_f1("the Denver Broncos", "Denver Broncos team") -> 0.8
    """
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    num_same = sum((Counter(pred_tokens) & Counter(truth_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)

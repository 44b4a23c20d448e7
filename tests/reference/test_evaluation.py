"""Chapter 11 metrics against scikit-learn, seqeval and the official SQuAD v1.1 rules."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities
from seqeval.scheme import IOB2, Entities
from sklearn import metrics as skm

from course_lib.evaluation import (
    accuracy_score,
    confusion_matrix,
    entity_f1,
    get_entities,
    normalize_answer,
    precision_recall_fscore_support,
    squad_exact_match,
    squad_f1,
)

AVERAGES = [None, "micro", "macro", "weighted"]


def sklearn_prf(y_true, y_pred, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's UndefinedMetricWarning is not under test
        return skm.precision_recall_fscore_support(y_true, y_pred, **kwargs)


def assert_prf_equal(ours, theirs):
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)
    if theirs[3] is None:
        assert ours[3] is None
    else:
        np.testing.assert_array_equal(ours[3], theirs[3])


# --- confusion matrix ----------------------------------------------------------------------------


def test_confusion_matrix_rows_are_true_columns_are_predicted():
    # two true 0s, one predicted as 1: a row-vs-column swap puts the 1 in the wrong corner
    cm = confusion_matrix([0, 0, 1], [0, 1, 1])
    np.testing.assert_array_equal(cm, [[1, 1], [0, 1]])
    assert cm.dtype == np.int64


def test_confusion_matrix_normalized_diagonals_are_recall_and_precision():
    y_true = ["cat", "cat", "cat", "dog", "dog", "fish"]
    y_pred = ["cat", "dog", "cat", "dog", "cat", "dog"]
    labels = ["cat", "dog", "fish"]
    p, r, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels)
    by_row = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    by_col = confusion_matrix(y_true, y_pred, labels=labels, normalize="pred")
    np.testing.assert_allclose(np.diag(by_row), r)
    np.testing.assert_allclose(np.diag(by_col), p)
    # "fish" is never predicted: its column is empty and must be 0, not nan
    np.testing.assert_array_equal(by_col[:, 2], [0.0, 0.0, 0.0])


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_imbalanced_and_empty_class_vs_sklearn(normalize):
    rng = np.random.default_rng(0)
    y_true = rng.choice(4, size=200, p=[0.85, 0.1, 0.05, 0.0])  # class 3 never true
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, 200))  # never 3
    labels = [0, 1, 2, 3, 4]  # 4 appears nowhere
    ours = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theirs = skm.confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert not np.isnan(ours).any()


def test_confusion_matrix_label_subset_and_order():
    y_true = ["b", "a", "c", "a", "b"]
    y_pred = ["a", "a", "b", "c", "b"]
    # reversed order and "c" left out: samples involving "c" are dropped
    ours = confusion_matrix(y_true, y_pred, labels=["b", "a"])
    np.testing.assert_array_equal(ours, skm.confusion_matrix(y_true, y_pred, labels=["b", "a"]))
    np.testing.assert_array_equal(ours, [[1, 1], [0, 1]])


labels_strategy = st.lists(st.integers(0, 5), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), normalize=st.sampled_from([None, "true", "pred", "all"]))
def test_confusion_matrix_random_vs_sklearn(data, normalize):
    y_true = data.draw(labels_strategy)
    y_pred = data.draw(st.lists(st.integers(0, 5), min_size=len(y_true), max_size=len(y_true)))
    labels = data.draw(st.none() | st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True))
    if labels is not None and not set(labels) & set(y_true):
        with pytest.raises(ValueError, match="y_true"):
            confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
        return
    ours = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on a 1 x 1 matrix; we do not
        theirs = skm.confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_confusion_matrix_bad_input():
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="normalize"):
        confusion_matrix([0, 1], [0, 1], normalize="rows")
    with pytest.raises(ValueError, match="1-D"):
        confusion_matrix([[0.2, 0.8]], [1])
    with pytest.raises(ValueError, match="empty"):
        confusion_matrix([], [])


# --- precision / recall / F1 ---------------------------------------------------------------------


def test_prf_hand_checked_example():
    # class 0: TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 0.8; class 1: TP 0, FP 0, FN 1 -> all 0
    p, r, f, s = precision_recall_fscore_support([0, 0, 1], [0, 0, 0])
    np.testing.assert_allclose(p, [2 / 3, 0.0])
    np.testing.assert_allclose(r, [1.0, 0.0])
    np.testing.assert_allclose(f, [0.8, 0.0])
    np.testing.assert_array_equal(s, [2, 1])
    micro = precision_recall_fscore_support([0, 0, 1], [0, 0, 0], average="micro")
    np.testing.assert_allclose(micro[:3], [2 / 3, 2 / 3, 2 / 3])
    assert micro[3] is None


def test_prf_raises_no_warnings_on_empty_classes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for average in AVERAGES:
            precision_recall_fscore_support([0, 0, 1], [0, 0, 0], labels=[0, 1, 2], average=average)


def test_accuracy_paradox_on_imbalanced_data():
    y_true = [0] * 95 + [1] * 5
    y_pred = [0] * 100  # always the majority class
    assert accuracy_score(y_true, y_pred) == pytest.approx(0.95)
    assert accuracy_score(y_true, y_pred, normalize=False) == 95
    macro_f1 = precision_recall_fscore_support(y_true, y_pred, average="macro")[2]
    assert macro_f1 == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert macro_f1 < 0.5


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("zero_division", [0.0, 1.0, np.nan])
@pytest.mark.parametrize(
    "labels", [None, [2, 0, 1, 3], [1, 3]], ids=["all", "reordered+empty", "subset"]
)
def test_prf_imbalanced_vs_sklearn(average, zero_division, labels):
    rng = np.random.default_rng(1)
    y_true = rng.choice(3, size=150, p=[0.8, 0.15, 0.05])
    y_pred = np.where(rng.random(150) < 0.6, y_true, 0)  # the minority classes get swallowed
    y_pred[:3] = 2
    ours = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=average, zero_division=zero_division
    )
    theirs = sklearn_prf(
        y_true, y_pred, labels=labels, average=average, zero_division=zero_division
    )
    assert_prf_equal(ours, theirs)


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    average=st.sampled_from(AVERAGES),
    zero_division=st.sampled_from([0.0, 1.0, np.nan]),
)
def test_prf_random_vs_sklearn(data, average, zero_division):
    y_true = data.draw(labels_strategy)
    y_pred = data.draw(st.lists(st.integers(0, 5), min_size=len(y_true), max_size=len(y_true)))
    labels = data.draw(st.none() | st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True))
    ours = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=average, zero_division=zero_division
    )
    theirs = sklearn_prf(
        y_true, y_pred, labels=labels, average=average, zero_division=zero_division
    )
    assert_prf_equal(ours, theirs)


def test_prf_string_labels_vs_sklearn():
    y_true = ["PER", "LOC", "ORG", "PER", "LOC", "LOC"]
    y_pred = ["PER", "PER", "ORG", "ORG", "LOC", "MISC"]
    for average in AVERAGES:
        ours = precision_recall_fscore_support(y_true, y_pred, average=average)
        assert_prf_equal(ours, sklearn_prf(y_true, y_pred, average=average, zero_division=0.0))


def test_prf_bad_input():
    with pytest.raises(ValueError, match="average"):
        precision_recall_fscore_support([0, 1], [0, 1], average="binary")
    with pytest.raises(ValueError, match="zero_division"):
        precision_recall_fscore_support([0, 1], [0, 1], zero_division=0.5)
    with pytest.raises(ValueError, match="string and number"):
        precision_recall_fscore_support([0, 1], ["0", "1"])
    with pytest.raises(TypeError):
        precision_recall_fscore_support([0, 1], [0, 1], None)  # options are keyword-only


# --- NER entities --------------------------------------------------------------------------------

JEFF_DEAN = "Jeff Dean is a computer scientist at Google in California".split()
JEFF_DEAN_TAGS = ["B-PER", "I-PER", "O", "O", "O", "O", "O", "B-ORG", "O", "B-LOC"]


def seqeval_strict_entities(tags):
    """seqeval's strict IOB2 entities, converted from its exclusive end to an inclusive one."""
    return [(e.tag, e.start, e.end - 1) for e in Entities([tags], IOB2).entities[0]]


def test_jeff_dean_entities():
    expected = [("PER", 0, 1), ("ORG", 7, 7), ("LOC", 9, 9)]
    assert get_entities(JEFF_DEAN_TAGS) == expected
    assert seqeval_get_entities(JEFF_DEAN_TAGS) == expected
    assert seqeval_strict_entities(JEFF_DEAN_TAGS) == expected
    spans = [" ".join(JEFF_DEAN[s : e + 1]) for _, s, e in get_entities(JEFF_DEAN_TAGS)]
    assert spans == ["Jeff Dean", "Google", "California"]


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["I-PER", "I-PER", "O"], []),  # no B: strict IOB2 finds nothing (seqeval lenient: PER)
        (["O", "I-LOC", "B-LOC"], [("LOC", 2, 2)]),
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0)]),  # type change ends PER
        (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),  # B always starts anew
        (["B-MISC", "I-MISC", "I-MISC"], [("MISC", 0, 2)]),  # entity running to the end
        ([], []),
        (["O", "O"], []),
    ],
)
def test_get_entities_strict_cases(tags, expected):
    assert get_entities(tags) == expected
    assert seqeval_strict_entities(tags) == expected


def test_get_entities_differs_from_lenient_seqeval_on_dangling_inside_tag():
    tags = ["O", "I-PER", "I-PER"]
    assert seqeval_get_entities(tags) == [("PER", 1, 2)]  # conlleval-style: I- starts one
    assert get_entities(tags) == []


def test_get_entities_bad_tags():
    with pytest.raises(ValueError, match="position 1"):
        get_entities(["O", "PER"])
    with pytest.raises(ValueError, match="IOB2"):
        get_entities(["E-PER"])
    with pytest.raises(TypeError, match="split"):
        get_entities("B-PER I-PER")


tag_strategy = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"])
sentence_strategy = st.lists(tag_strategy, min_size=0, max_size=12)


@settings(max_examples=150, deadline=None)
@given(tags=sentence_strategy)
def test_get_entities_random_vs_seqeval_strict(tags):
    assert get_entities(tags) == seqeval_strict_entities(tags)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_entity_f1_random_vs_seqeval(data):
    n = data.draw(st.integers(1, 4))
    lengths = data.draw(st.lists(st.integers(1, 10), min_size=n, max_size=n))
    y_true = [data.draw(st.lists(tag_strategy, min_size=k, max_size=k)) for k in lengths]
    y_pred = [data.draw(st.lists(tag_strategy, min_size=k, max_size=k)) for k in lengths]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when there is no entity at all
        expected = seqeval_f1(y_true, y_pred, mode="strict", scheme=IOB2)
    assert entity_f1(y_true, y_pred) == pytest.approx(expected, abs=1e-12)


def test_entity_f1_hand_checked():
    # PER found exactly, ORG missed, LOC predicted one token too long: 1 correct of 3 / 3
    y_pred = [["B-PER", "I-PER", "O", "O", "O", "O", "O", "O", "B-LOC", "I-LOC"]]
    assert entity_f1([JEFF_DEAN_TAGS], y_pred) == pytest.approx(2 * 1 / (3 + 2))
    assert entity_f1([JEFF_DEAN_TAGS], [JEFF_DEAN_TAGS]) == 1.0
    # the same entity in another sentence is not a match
    assert entity_f1([["B-PER"], ["O"]], [["O"], ["B-PER"]]) == 0.0
    with pytest.raises(ValueError, match="sentence 0"):
        entity_f1([["O", "O"]], [["O"]])


# --- SQuAD ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The Eiffel Tower", "eiffel tower"),  # case and article
        ("an apple, a pear!", "apple pear"),  # articles and punctuation
        ("  Denver\tBroncos \n", "denver broncos"),  # whitespace
        ("Theory of the atom", "theory of atom"),  # "the" inside "Theory" stays
        ("U.S.-based", "usbased"),  # punctuation is deleted, not turned into spaces
        ("The", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_squad_exact_match():
    assert squad_exact_match("the Denver Broncos!", "Denver Broncos") == 1.0
    assert squad_exact_match("Denver", "Denver Broncos") == 0.0
    assert squad_exact_match("", "a") == 1.0  # both normalize to the empty string


def test_squad_f1_partial_overlap():
    # pred {denver, broncos}, truth {denver, broncos, team}: P = 1, R = 2/3 -> F1 = 0.8
    assert squad_f1("the Denver Broncos", "Denver Broncos team") == pytest.approx(0.8)
    # bags, not sets: "x" is common once only -> P = 2/3, R = 1
    assert squad_f1("x x y", "x y") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    # ... and twice here: common {x: 2} -> P = R = 2/3 (a set would give 1/3)
    assert squad_f1("x x y", "x x z") == pytest.approx(2 / 3)
    assert squad_f1("Paris", "London") == 0.0
    assert squad_f1("The Beatles.", "beatles") == 1.0
    # as in the official v1.1 script, nothing in common (even empty vs empty) gives 0
    assert squad_f1("", "") == 0.0
    assert squad_f1("the", "an") == 0.0

# ruff: noqa: E402
# %% [markdown]
# # 11 · Benchmarks and evaluation metrics
#
# **Recap.** A benchmark fixes the data, the metric and the protocol so that models can be
# compared fairly. The confusion matrix counts, for every true class (a row), how often each
# class was predicted (a column); normalising each row puts the recall on the diagonal,
# normalising each column the precision. Precision = TP / (TP + FP), recall = TP / (TP + FN),
# F1 their harmonic mean. Over several classes, *micro* pools the counts, *macro* averages the
# per-class scores, *weighted* averages them by support; on imbalanced data accuracy can look
# good while a rare class is never found. NER is scored on whole entities read from IOB2 tags,
# and SQuAD answers by exact match and token F1 after normalisation. Read
# [chapter 11, *Benchmarks and evaluation metrics*](../../book/11_evaluation.md) (published as
# `11_evaluation.html`) first.
#
# Six functions, 12 points. Run a solution cell, then the test cells below it; from a terminal,
# `course check exercises/11_evaluation/11_evaluation.ipynb` runs the visible tests, and so does the
# `G.check_all()` cell near the end.
#
# Rules: count with Python and numpy; scikit-learn, seqeval and the course's reference package
# are not allowed inside your functions (use them outside to compare, if you like). Results
# that are arrays are numpy arrays.

# %% demo
# Colab and Binder start without the course package: install it from the course repository, at
# the release that matches this notebook. Where `course_lib` is importable already (your own
# machine, the grader), this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_lib") is None:
    package = "course_lib @ git+{{COURSE_REPOSITORY_URL}}@{{COURSE_RELEASE_TAG}}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)


# %% setup
import re
import string
from collections import Counter

import numpy as np
import torch  # noqa: F401 (not for you: the tests compare arrays as tensors)

# %% [markdown]
# ## 1. The confusion matrix
#
# `C[i, j]` counts the samples whose true label is `labels[i]` and whose prediction is
# `labels[j]`. `labels` defaults to the sorted union of both inputs; given, it fixes the order
# of rows and columns, and samples with other labels are left out. Counts are int64.
# `normalize="true"` divides each row by its sum, `"pred"` each column, `"all"` everything by the
# total (float64); a row or column that sums to 0 stays 0.


# %% solution confusion_matrix
def confusion_matrix(y_true, y_pred, *, labels=None, normalize: str | None = None) -> np.ndarray:
    """(N,) true and predicted labels -> (L, L) counts (rows = true, columns = predicted)."""
    ### BEGIN SOLUTION
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    index = {label: i for i, label in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    if normalize is None:
        return cm
    axis = {"true": 1, "pred": 0, "all": None}[normalize]
    totals = cm.sum(axis=axis, keepdims=axis is not None)
    return np.divide(cm, totals, out=np.zeros(cm.shape), where=totals != 0)
    ### END SOLUTION


# %% tests test_confusion_matrix points=2
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.loaded_only(G.NO_METRIC_LIBRARIES) | G.no_reference(ref)
MISTAKES = G.confusion_matrix_mistakes()
# True [0, 1, 1], predicted [0, 0, 1]: one 0 right, one 1 taken for a 0, one 1 right.
animals_true = ["cat", "dog", "cat", "bird", "dog", "cat"]
animals_pred = ["cat", "cat", "cat", "bird", "dog", "bird"]
cases = [
    G.Case([0, 1, 1], [0, 0, 1], label="the small example"),
    G.Case(animals_true, animals_pred, label="string labels, sorted"),
    G.Case(
        animals_true, animals_pred, labels=["dog", "cat", "bird"], label="labels= sets the order"
    ),
    G.Case(
        animals_true,
        animals_pred,
        labels=["cat", "dog", "fish"],
        label="an unseen label, bird left out",
    ),
]
assert G.check_numpy_function(
    confusion_matrix,
    ref.confusion_matrix,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the matrix",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/confusion_matrix")
y_true = [rng.choice("aabbbbcd") for _ in range(40)]
y_pred = [t if rng.random() < 0.6 else rng.choice("abce") for t in y_true]
hidden = [
    G.Case(y_true, y_pred, label="random"),
    G.Case(y_true, y_pred, labels=list("edcba"), label="reversed labels"),
    G.Case([rng.randint(0, 4) for _ in range(30)], [rng.randint(0, 4) for _ in range(30)]),
]
assert G.check_numpy_function(
    confusion_matrix,
    ref.confusion_matrix,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the matrix",
)
### END HIDDEN TESTS

# %% tests test_confusion_matrix-normalize points=1
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.loaded_only(G.NO_METRIC_LIBRARIES) | G.no_reference(ref)
MISTAKES = G.confusion_matrix_mistakes()
# Imbalanced: 6 "ok", 2 "spam", 1 "fraud"; "fraud" is never predicted, so its column is empty.
y_true = ["ok"] * 6 + ["spam", "spam", "fraud"]
y_pred = ["ok"] * 5 + ["spam", "spam", "ok", "spam"]
cases = [
    G.Case(y_true, y_pred, normalize="true", label="rows sum to 1: the diagonal is the recall"),
    G.Case(
        y_true, y_pred, normalize="pred", label="columns sum to 1: the diagonal is the precision"
    ),
    G.Case(y_true, y_pred, normalize="all", label="everything sums to 1"),
]
assert G.check_numpy_function(
    confusion_matrix,
    ref.confusion_matrix,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the matrix",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/confusion_matrix-normalize")
y_true = [rng.randint(0, 3) for _ in range(25)]
y_pred = [rng.randint(0, 2) for _ in range(25)]
hidden = [G.Case(y_true, y_pred, normalize=n, labels=[3, 2, 1, 0]) for n in ("true", "pred", "all")]
assert G.check_numpy_function(
    confusion_matrix,
    ref.confusion_matrix,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the matrix",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Precision, recall, F1 and support
#
# Per class (in the order of `labels`, default the sorted union): precision `TP / (TP + FP)`,
# recall `TP / (TP + FN)`, F1 `2 TP / (2 TP + FP + FN)` and support (how often the class is
# true). A ratio whose denominator is 0 is `zero_division`. With `average=None` return four
# numpy arrays `(precision, recall, f1, support)` (support int64). With `average="micro"` pool
# TP, FP and FN over the classes, then divide; `"macro"`: the plain mean of the per-class
# scores; `"weighted"`: their mean weighted by support. Averaged, return three floats and
# `None` for the support.


# %% solution precision_recall_fscore_support
def precision_recall_fscore_support(
    y_true, y_pred, *, labels=None, average: str | None = None, zero_division: float = 0.0
):
    """Per-class arrays (average=None) or averaged floats, as scikit-learn."""
    ### BEGIN SOLUTION
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    pairs = list(zip(y_true, y_pred))
    tp = np.array([sum(t == p == c for t, p in pairs) for c in labels], dtype=np.int64)
    true_sum = np.array([sum(t == c for t, _ in pairs) for c in labels], dtype=np.int64)
    pred_sum = np.array([sum(p == c for _, p in pairs) for c in labels], dtype=np.int64)
    if average == "micro":  # pool the counts before dividing
        tp, true_sum, pred_sum = (
            tp.sum(keepdims=True),
            true_sum.sum(keepdims=True),
            pred_sum.sum(keepdims=True),
        )

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.full(num.shape, float(zero_division)), where=den != 0)

    precision, recall = ratio(tp, pred_sum), ratio(tp, true_sum)
    f1 = ratio(2 * tp, true_sum + pred_sum)
    if average is None:
        return precision, recall, f1, true_sum
    weights = true_sum if average == "weighted" and true_sum.sum() > 0 else None
    return (
        float(np.average(precision, weights=weights)),
        float(np.average(recall, weights=weights)),
        float(np.average(f1, weights=weights)),
        None,
    )
    ### END SOLUTION


# %% tests test_precision_recall_fscore_support points=2
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.loaded_only(G.NO_METRIC_LIBRARIES) | G.no_reference(ref)
MISTAKES = G.prfs_mistakes()
# Class 0: 2 of 3 predictions right (precision 2/3), both true 0s found (recall 1).
# Class 2 is never predicted: its precision is 0/0, which becomes zero_division.
y_true = [0, 0, 1, 1, 2]
y_pred = [0, 0, 0, 1, 1]
cases = [
    G.Case(y_true, y_pred, label="per class"),
    G.Case(y_true, y_pred, zero_division=1.0, label="zero_division=1.0"),
    G.Case(
        ["b", "a", "b"],
        ["b", "b", "b"],
        labels=["b", "a", "c"],
        label="labels= with an absent class",
    ),
]
assert G.check_numpy_function(
    precision_recall_fscore_support,
    ref.precision_recall_fscore_support,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/prfs")
y_true = [rng.choice([0, 0, 0, 1, 1, 2, 3]) for _ in range(50)]
y_pred = [t if rng.random() < 0.7 else rng.randint(0, 3) for t in y_true]
hidden = [
    G.Case(y_true, y_pred, label="random imbalanced"),
    G.Case(y_true, y_pred, labels=[3, 1, 4], zero_division=1.0, label="some labels"),
]
assert G.check_numpy_function(
    precision_recall_fscore_support,
    ref.precision_recall_fscore_support,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### END HIDDEN TESTS

# %% tests test_precision_recall_fscore_support-averages points=2
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.loaded_only(G.NO_METRIC_LIBRARIES) | G.no_reference(ref)
MISTAKES = G.prfs_mistakes()
# 8 "ok" mails, 2 "spam"; the model finds all "ok" ones and one "spam", but calls three "ok"
# mails spam: micro, macro and weighted averages all differ.
y_true = ["ok"] * 8 + ["spam"] * 2
y_pred = ["ok"] * 5 + ["spam"] * 3 + ["spam", "ok"]
cases = [
    G.Case(y_true, y_pred, average=avg, label=f"average={avg!r}")
    for avg in ("micro", "macro", "weighted")
]
cases.append(
    G.Case([0, 1, 2], [0, 0, 0], average="macro", zero_division=1.0, label="zero_division=1.0")
)
assert G.check_numpy_function(
    precision_recall_fscore_support,
    ref.precision_recall_fscore_support,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/prfs-averages")
y_true = [rng.choice("aaaaabbbcd") for _ in range(60)]
y_pred = [t if rng.random() < 0.6 else rng.choice("abcde") for t in y_true]
hidden = [G.Case(y_true, y_pred, average=avg) for avg in ("micro", "macro", "weighted")]
hidden.append(G.Case(y_true, y_pred, labels=list("dce"), average="weighted", zero_division=1.0))
assert G.check_numpy_function(
    precision_recall_fscore_support,
    ref.precision_recall_fscore_support,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Entities from IOB2 tags
#
# An entity is a `B-X` followed by any number of `I-X`; return `(type, start, end)` with `end`
# the index of its *last* token. Strict IOB2: an `I-X` that does not continue an `X` entity
# (after `O`, at the start, or after another type) starts none, and `B-X` followed by `I-Y`
# ends X at the `B-X`.


# %% solution get_entities
def get_entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """IOB2 tags -> [(type, start, end_inclusive), ...] in order.

    Example: ["B-PER", "I-PER", "O", "I-LOC", "B-LOC"] -> [("PER", 0, 1), ("LOC", 4, 4)].
    """
    ### BEGIN SOLUTION
    entities, current = [], None  # current: (type, start) of the open entity
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and current[0] == kind:
            continue
        if current is not None:
            entities.append((current[0], current[1], i - 1))
            current = None
        if prefix == "B":
            current = (kind, i)
    if current is not None:
        entities.append((current[0], current[1], len(tags) - 1))
    return entities
    ### END SOLUTION


# %% tests test_get_entities points=2
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.loaded_only(G.NO_METRIC_LIBRARIES) | G.no_reference(ref)
MISTAKES = G.get_entities_mistakes()
# "Jeff Dean is a computer scientist at Google in California"
jeff = ["B-PER", "I-PER", "O", "O", "O", "O", "O", "B-ORG", "O", "B-LOC"]
cases = [
    G.Case(jeff, label="Jeff Dean ... Google ... California"),
    G.Case(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"], label="an I-LOC after O starts nothing"),
    G.Case(["B-PER", "I-ORG", "I-ORG"], label="I-ORG does not continue a PER"),
    G.Case(["B-LOC", "B-LOC", "I-LOC"], label="two entities side by side"),
    G.Case(["O", "O"], label="no entity"),
]
assert G.check_function(
    get_entities,
    ref.get_entities,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the entities",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/get_entities")
tagset = ["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
hidden = [G.Case([rng.choice(tagset) for _ in range(rng.randint(5, 15))]) for _ in range(6)]
hidden += [G.Case(["I-MISC", "I-MISC"], label="starts with I-"), G.Case([], label="empty")]
assert G.check_function(
    get_entities,
    ref.get_entities,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the entities",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Entity-level F1
#
# Micro F1 over exact matches: an entity is `(sentence, type, start, end)`, and a predicted one
# counts only if the same entity is in the truth. `F1 = 2 · |correct| / (|true| + |predicted|)`;
# with no entity on either side the score is 0.0 (seqeval's convention).


# %% solution entity_f1
def entity_f1(y_true: list[list[str]], y_pred: list[list[str]]) -> float:
    """Micro F1 over exact entity matches, as seqeval's strict IOB2 mode."""
    ### BEGIN SOLUTION
    true = {(n, *e) for n, tags in enumerate(y_true) for e in get_entities(tags)}
    pred = {(n, *e) for n, tags in enumerate(y_pred) for e in get_entities(tags)}
    total = len(true) + len(pred)
    return 2 * len(true & pred) / total if total else 0.0
    ### END SOLUTION


# %% tests test_entity_f1 points=1
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.loaded_only(G.NO_METRIC_LIBRARIES) | G.no_reference(ref)
MISTAKES = G.entity_f1_mistakes()
jeff = ["B-PER", "I-PER", "O", "O", "O", "O", "O", "B-ORG", "O", "B-LOC"]
# The model finds "Dean" instead of "Jeff Dean" (wrong start) and misses California: of 3
# true and 2 predicted entities one matches, F1 = 2 * 1 / (3 + 2) = 0.4.
guess = ["O", "B-PER", "O", "O", "O", "O", "O", "B-ORG", "O", "O"]
cases = [
    G.Case([jeff], [jeff], label="perfect"),
    G.Case([jeff], [guess], label="one of three"),
    G.Case(
        [["B-PER", "O"], ["O", "B-LOC"]], [["B-PER", "O"], ["B-LOC", "O"]], label="two sentences"
    ),
    G.Case([["O", "O"]], [["O", "O"]], label="no entity anywhere"),
]
assert G.check_function(
    entity_f1,
    ref.entity_f1,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the F1",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/entity_f1")
tagset = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
truth = [[rng.choice(tagset) for _ in range(8)] for _ in range(5)]
noisy = [[t if rng.random() < 0.8 else rng.choice(tagset) for t in s] for s in truth]
hidden = [G.Case(truth, noisy, label="random"), G.Case([["B-PER"]] * 3, [["B-PER"]] * 3)]
assert G.check_function(
    entity_f1,
    ref.entity_f1,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the F1",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. SQuAD: exact match and token F1
#
# Both compare *normalised* answers (SQuAD v1.1): lowercase, remove punctuation
# (`string.punctuation`), remove the articles a, an, the (as whole words), collapse runs of
# whitespace. Exact match is 1.0 or 0.0. Token F1 compares the two answers as *bags* of tokens:
# the common tokens counted with multiplicity, precision = common / predicted tokens,
# recall = common / true tokens. As in the official script, if no token is shared the F1 is 0.0
# (also when both answers normalise to nothing).


# %% solution squad_exact_match
def squad_exact_match(prediction: str, truth: str) -> float:
    """1.0 if the normalised answers are identical, else 0.0."""

    ### BEGIN SOLUTION
    def normalize(s: str) -> str:
        s = "".join(ch for ch in s.lower() if ch not in string.punctuation)
        s = re.sub(r"\b(a|an|the)\b", " ", s)
        return " ".join(s.split())

    return float(normalize(prediction) == normalize(truth))
    ### END SOLUTION


# %% tests test_squad_exact_match points=1
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.squad_em_mistakes()
# Each of the first cases differs from the truth in one way only.
cases = [
    G.Case("Denver Broncos", "Denver Broncos", label="identical"),
    G.Case("Denver Broncos", "denver broncos", label="upper and lower case"),
    G.Case("Broncos!", "Broncos", label="an exclamation mark"),
    G.Case("the Broncos", "Broncos", label="an article"),
    G.Case("  Denver   Broncos ", "Denver Broncos", label="extra spaces"),
    G.Case("An Eiffel-Tower!", "eiffeltower", label="all of it at once"),
    G.Case("apple pie", "apple", label="not the same answer"),
    G.Case("theatre", "atre", label="'the' only as a whole word"),
]
assert G.check_function(
    squad_exact_match,
    ref.squad_exact_match,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the score",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/squad_em")
answer = rng.choice(["Santa Clara", "Levi's Stadium", "the Broncos", "February 7, 2016"])
hidden = [
    G.Case(answer.upper() + " .", answer, label="upper case and a dot"),
    G.Case("A " + answer, "the " + answer, label="different articles"),
    G.Case(answer, answer + " team", label="longer truth"),
    G.Case("", "", label="both empty"),
]
assert G.check_function(
    squad_exact_match,
    ref.squad_exact_match,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the score",
)
### END HIDDEN TESTS


# %% solution squad_f1
def squad_f1(prediction: str, truth: str) -> float:
    """F1 of the bags of normalised tokens. Example: ("the Denver Broncos", "Denver Broncos team") -> 0.8."""

    ### BEGIN SOLUTION
    def tokens(s: str) -> list[str]:
        s = "".join(ch for ch in s.lower() if ch not in string.punctuation)
        return re.sub(r"\b(a|an|the)\b", " ", s).split()

    pred, true = tokens(prediction), tokens(truth)
    common = sum((Counter(pred) & Counter(true)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(true)
    return 2 * precision * recall / (precision + recall)
    ### END SOLUTION


# %% tests test_squad_f1 points=1
from course_lib import evaluation as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.squad_f1_mistakes()
cases = [
    # 2 common tokens: precision 2/2, recall 2/3, F1 0.8.
    G.Case("the Denver Broncos", "Denver Broncos team", label="the example"),
    G.Case("Denver", "Broncos", label="nothing in common"),
    # "cat" twice in both answers counts twice: precision 2/2, recall 2/3.
    G.Case("the cat, the cat", "cat cat dog", label="repeated tokens"),
    G.Case("The!", "a", label="both normalise to nothing"),
]
assert G.check_function(
    squad_f1,
    ref.squad_f1,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the F1",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("11/squad_f1")
vocab = ["red", "blue", "green", "the", "a", "big", "small", "house", "car", "tree"]
hidden = [
    G.Case(
        " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 6))),
        " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 6))),
        label="random",
    )
    for _ in range(5)
]
hidden.append(G.Case("Big, RED house.", "a big red house", label="normalisation"))
assert G.check_function(
    squad_f1,
    ref.squad_f1,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the F1",
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: the accuracy paradox
#
# An imbalanced test set: 90 "ok" mails, 8 "spam", 2 "fraud". The slider sets how many of the
# rare mails the model finds. The heatmap is *your* row-normalised confusion matrix (the
# diagonal is the recall); the title compares accuracy with *your* macro F1. A model that
# finds nothing rare still has 90 % accuracy. Not graded.

# %% demo
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.interactive import widget_slider

classes = ["ok", "spam", "fraud"]
truth = ["ok"] * 90 + ["spam"] * 8 + ["fraud"] * 2


def draw(found: int) -> plt.Figure:
    pred = ["ok"] * 90 + ["spam"] * min(found, 8) + ["ok"] * (8 - min(found, 8))
    pred += ["fraud"] * max(found - 8, 0) + ["ok"] * (2 - max(found - 8, 0))
    cm = confusion_matrix(truth, pred, labels=classes, normalize="true")
    accuracy = sum(t == p for t, p in zip(truth, pred)) / len(truth)
    try:
        f1 = precision_recall_fscore_support(truth, pred, labels=classes, average="macro")[2]
        title = f"accuracy {accuracy:.2f}, macro F1 {f1:.2f}"
    except NotImplementedError:
        title = f"accuracy {accuracy:.2f} (implement precision_recall_fscore_support for F1)"
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for i in range(3):
        for j in range(3):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center")
    ax.set_xticks(range(3), classes)
    ax.set_yticks(range(3), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


try:
    confusion_matrix(["a"], ["a"])
except NotImplementedError:
    print("Implement confusion_matrix above and run its cell, then run this cell to explore.")
else:
    display(widget_slider(draw, list(range(11)), label="rare mails found", initial=0))

# %% [markdown]
# ## Your points so far
#
# Run every cell above first. The cell below runs this notebook's visible tests again and
# lists each test's points, as `course check` does; the hidden tests run only when your work
# is graded.

# %% demo
from course_lib import grading as G

G.check_all()

# %% [markdown]
# ## Written questions
#
# Answer in the cell below each question, in your own words. A person grades these
# against a rubric; `course check` does not.

# %% written written_accuracy_paradox points=2
# **Question (2 points).** A spam filter marks nothing as spam and reaches 98 % accuracy on a mailbox with 2 % spam. Explain why accuracy misleads here and which numbers you would report instead.
# RUBRIC:
# - 1 point: with a rare class, the majority-class prediction gets high accuracy while finding none of the positives.
# - 1 point: report precision, recall and F1 for the rare class (or the confusion matrix); here recall is 0, so F1 is 0.

# %% [markdown]
# ## Recap
#
# - Rows of the confusion matrix are the truth; row-normalised, the diagonal is the recall;
#   column-normalised, the precision.
# - Micro pools the counts, macro averages the classes equally, weighted by support.
# - NER is scored on whole entities; strict IOB2 starts an entity only at `B-`.
# - SQuAD normalises before comparing; token F1 counts shared tokens as a bag.
#
# More in [chapter 11](../../book/11_evaluation.md); next,
# [chapter 12, measuring performance](../../book/12_benchmarking.md).

"""Wrong and alternative implementations for 11_evaluation (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

_CM = """
def confusion_matrix(y_true, y_pred, *, labels=None, normalize=None):
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    index = {{label: i for i, label in enumerate(labels)}}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if t in index and p in index:
            cm[{row}, {col}] += 1
    if normalize is None:
        return cm
    axis = {{"true": {true_axis}, "pred": {pred_axis}, "all": None}}[normalize]
    totals = cm.sum(axis=axis, keepdims=axis is not None)
    {divide}
"""
_SAFE = "return np.divide(cm, totals, out=np.zeros(cm.shape), where=totals != 0)"


def _cm(row="index[t]", col="index[p]", true_axis=1, pred_axis=0, divide=_SAFE) -> str:
    return _CM.format(row=row, col=col, true_axis=true_axis, pred_axis=pred_axis, divide=divide)


_PRFS = """
def precision_recall_fscore_support(y_true, y_pred, *, labels=None, average=None, zero_division=0.0):
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    pairs = list(zip(y_true, y_pred))
    tp = np.array([sum(t == p == c for t, p in pairs) for c in labels])
    true_sum = np.array([sum(t == c for t, _ in pairs) for c in labels])
    pred_sum = np.array([sum(p == c for _, p in pairs) for c in labels])
    if average == "micro"{micro_extra}:
        tp, true_sum, pred_sum = tp.sum(keepdims=True), true_sum.sum(keepdims=True), pred_sum.sum(keepdims=True)
    zd = {zd}
    p = np.divide(tp, pred_sum, out=np.full(tp.shape, zd), where=pred_sum != 0)
    r = np.divide(tp, true_sum, out=np.full(tp.shape, zd), where=true_sum != 0)
    f = np.divide(2 * tp, true_sum + pred_sum, out=np.full(tp.shape, zd), where=true_sum + pred_sum != 0)
    if average is None:
        return p, r, f, true_sum
    w = {weights} if average == "weighted" else None
    {ret}
"""
_RET = "return float(np.average(p, weights=w)), float(np.average(r, weights=w)), float(np.average(f, weights=w)), None"


def _prfs(micro_extra="", zd="float(zero_division)", weights="true_sum", ret=_RET) -> str:
    return _PRFS.format(micro_extra=micro_extra, zd=zd, weights=weights, ret=ret)


_GET = """
def get_entities(tags):
    entities, current = [], None
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None{same_type}:
            continue
        if current is not None:
            entities.append((current[0], current[1], i{end_offset}))
            current = None
        if prefix == "B"{lenient}:
            current = (kind, i)
    if current is not None:
        entities.append((current[0], current[1], len(tags){end_offset}))
    return entities
"""


def _get(same_type=" and current[0] == kind", end_offset=" - 1", lenient="") -> str:
    return _GET.format(same_type=same_type, end_offset=end_offset, lenient=lenient)


_NORM = """
def squad_exact_match(prediction, truth):
    def normalize(s):
        {lower}
        {punct}
        {articles}
        return {spaces}

    return float(normalize(prediction) == normalize(truth))
"""


def _em(
    lower="s = s.lower()",
    punct='s = "".join(ch for ch in s if ch not in string.punctuation)',
    articles='s = re.sub(r"\\b(a|an|the)\\b", " ", s)',
    spaces='" ".join(s.split())',
) -> str:
    return _NORM.format(lower=lower, punct=punct, articles=articles, spaces=spaces)


VARIANTS = [
    # confusion_matrix ------------------------------------------------------------------------
    mutant(
        "confusion_matrix",
        "transposed (rows = predicted)",
        _cm(row="index[p]", col="index[t]"),
        expect=r"transposed",
    ),
    mutant(
        "confusion_matrix",
        "row and column normalisation swapped",
        _cm(true_axis=0, pred_axis=1),
        expect=r"wrong way round",
    ),
    mutant(
        "confusion_matrix",
        "0/0 gives NaN in an empty column",
        _cm(divide="return cm / totals"),
        expect=r"NaN",
    ),
    mutant(
        "confusion_matrix",
        "labels= sorted instead of kept in order",
        _cm().replace("    index = {label", "    labels = sorted(labels)\n    index = {label"),
        expect=r"sorted",
    ),
    mutant(
        "confusion_matrix",
        "float counts",
        _cm().replace("dtype=np.int64", "dtype=float"),
        expect=r"dtype float64, expected int64",
    ),
    alternative(
        "confusion_matrix",
        "np.add.at on index arrays",
        """
        def confusion_matrix(y_true, y_pred, *, labels=None, normalize=None):
            labels = list(np.unique(list(y_true) + list(y_pred))) if labels is None else list(labels)
            pos = {lab: i for i, lab in enumerate(labels)}
            keep = [(pos[t], pos[p]) for t, p in zip(y_true, y_pred) if t in pos and p in pos]
            cm = np.zeros((len(labels),) * 2, dtype=np.int64)
            if keep:
                rows, cols = zip(*keep)
                np.add.at(cm, (np.array(rows), np.array(cols)), 1)
            if normalize == "true":
                s = cm.sum(axis=1, keepdims=True)
            elif normalize == "pred":
                s = cm.sum(axis=0, keepdims=True)
            elif normalize == "all":
                s = np.array([[cm.sum()]])
            else:
                return cm
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.nan_to_num(cm / s)
    """,
    ),
    # precision_recall_fscore_support ---------------------------------------------------------
    mutant(
        "precision_recall_fscore_support",
        "micro computed like macro",
        _prfs(micro_extra=" and False"),
        expect=r"micro and macro",
    ),
    mutant(
        "precision_recall_fscore_support",
        "weighted by the predicted counts",
        _prfs(weights="pred_sum"),
        expect=r"PREDICTED",
    ),
    mutant(
        "precision_recall_fscore_support",
        "zero_division ignored",
        _prfs(zd="0.0"),
        expect=r"zero_division",
    ),
    mutant(
        "precision_recall_fscore_support",
        "averaged F1 = harmonic mean of averaged P and R",
        _prfs(
            ret="P, R = float(np.average(p, weights=w)), float(np.average(r, weights=w))\n"
            "    return P, R, (2 * P * R / (P + R) if P + R else 0.0), None"
        ),
        expect=r"harmonic mean",
    ),
    mutant(
        "precision_recall_fscore_support",
        "support returned when averaged",
        _prfs(ret=_RET.replace(", None", ", true_sum.sum()")),
        expect=r"support|not the expected None",
    ),
    alternative(
        "precision_recall_fscore_support",
        "from a confusion matrix",
        """
        def precision_recall_fscore_support(y_true, y_pred, *, labels=None, average=None, zero_division=0.0):
            listed = sorted(set(y_true) | set(y_pred)) if labels is None else list(labels)
            extra = sorted((set(y_true) | set(y_pred)) - set(listed), key=str)
            allc = listed + extra
            cm = confusion_matrix(y_true, y_pred, labels=allc)
            n = len(listed)
            tp = np.diag(cm)[:n].astype(float)
            support = cm.sum(axis=1)[:n]
            predicted = cm.sum(axis=0)[:n]
            if average == "micro":
                tp, support_, predicted = np.array([tp.sum()]), np.array([support.sum()]), np.array([predicted.sum()])
            else:
                support_ = support

            def safe(a, b):
                return np.array([x / y if y else float(zero_division) for x, y in zip(a, b)])

            p, r = safe(tp, predicted), safe(tp, support_)
            f = safe(2 * tp, support_ + predicted)
            if average is None:
                return p, r, f, support.astype(np.int64)
            if average == "weighted" and support.sum() > 0:
                return tuple(float((v * support).sum() / support.sum()) for v in (p, r, f)) + (None,)
            return float(p.mean()), float(r.mean()), float(f.mean()), None
    """,
    ),
    # get_entities ----------------------------------------------------------------------------
    mutant(
        "get_entities",
        "I- after O starts an entity (IOB1 reading)",
        _get(lenient=' or (prefix == "I" and current is None)'),
        expect=r"only B- starts an entity",
    ),
    mutant("get_entities", "end index exclusive", _get(end_offset=""), expect=r"exclusive"),
    mutant("get_entities", "I-Y continues an X entity", _get(same_type=""), expect=r"another type"),
    mutant(
        "get_entities",
        "returns the entity's tokens' tags, not a type",
        _get().replace("current = (kind, i)", "current = (tag, i)"),
    ),
    alternative(
        "get_entities",
        "scan forward from every B-",
        """
        def get_entities(tags):
            found = []
            for i, tag in enumerate(tags):
                if tag.startswith("B-"):
                    kind, j = tag[2:], i
                    while j + 1 < len(tags) and tags[j + 1] == "I-" + kind:
                        j += 1
                    found.append((kind, i, j))
            return found
    """,
    ),
    # entity_f1 -------------------------------------------------------------------------------
    mutant(
        "entity_f1",
        "token-level F1",
        """
        def entity_f1(y_true, y_pred):
            t = [x for s in y_true for x in s]
            p = [x for s in y_pred for x in s]
            tp = sum(a == b != "O" for a, b in zip(t, p))
            n = sum(a != "O" for a in t) + sum(b != "O" for b in p)
            return 2 * tp / n if n else 0.0
    """,
        expect=r"token-level",
    ),
    mutant(
        "entity_f1",
        "sentence index forgotten",
        """
        def entity_f1(y_true, y_pred):
            true = {e for tags in y_true for e in get_entities(tags)}
            pred = {e for tags in y_pred for e in get_entities(tags)}
            total = len(true) + len(pred)
            return 2 * len(true & pred) / total if total else 0.0
    """,
        expect=r"different sentences",
    ),
    mutant(
        "entity_f1",
        "averaged over sentences",
        """
        def entity_f1(y_true, y_pred):
            scores = []
            for t, p in zip(y_true, y_pred):
                a, b = set(get_entities(t)), set(get_entities(p))
                scores.append(2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0)
            return sum(scores) / len(scores)
    """,
        expect=r"averaged over sentences",
    ),
    mutant(
        "entity_f1",
        "1.0 when there is nothing to find",
        """
        def entity_f1(y_true, y_pred):
            true = {(n, *e) for n, tags in enumerate(y_true) for e in get_entities(tags)}
            pred = {(n, *e) for n, tags in enumerate(y_pred) for e in get_entities(tags)}
            total = len(true) + len(pred)
            return 2 * len(true & pred) / total if total else 1.0
    """,
    ),
    alternative(
        "entity_f1",
        "precision and recall first",
        """
        def entity_f1(y_true, y_pred):
            true, pred = [], []
            for n, (t, p) in enumerate(zip(y_true, y_pred)):
                true += [(n,) + tuple(e) for e in get_entities(t)]
                pred += [(n,) + tuple(e) for e in get_entities(p)]
            correct = len(set(true) & set(pred))
            if correct == 0:
                return 0.0
            precision, recall = correct / len(pred), correct / len(true)
            return 2 * precision * recall / (precision + recall)
    """,
    ),
    # squad_exact_match -----------------------------------------------------------------------
    mutant(
        "squad_exact_match",
        "articles kept",
        _em(articles="pass"),
        expect=r"articles \(a, an, the\) are not removed",
    ),
    mutant(
        "squad_exact_match",
        "punctuation kept",
        _em(punct="pass"),
        expect=r"punctuation is not removed",
    ),
    mutant("squad_exact_match", "case-sensitive", _em(lower="pass"), expect=r"case-sensitive"),
    mutant(
        "squad_exact_match",
        "articles removed as substrings",
        _em(articles='s = re.sub(r"(a|an|the)", " ", s)'),
    ),
    alternative(
        "squad_exact_match",
        "word lists instead of a regex",
        """
        def squad_exact_match(prediction, truth):
            def words(s):
                s = s.lower().translate(str.maketrans("", "", string.punctuation))
                return [w for w in s.split() if w not in ("a", "an", "the")]

            return 1.0 if words(prediction) == words(truth) else 0.0
    """,
    ),
    # squad_f1 --------------------------------------------------------------------------------
    mutant(
        "squad_f1",
        "common tokens as a set",
        """
        def squad_f1(prediction, truth):
            def tokens(s):
                s = "".join(ch for ch in s.lower() if ch not in string.punctuation)
                return re.sub(r"\\b(a|an|the)\\b", " ", s).split()

            pred, true = tokens(prediction), tokens(truth)
            common = len(set(pred) & set(true))
            if common == 0:
                return 0.0
            p, r = common / len(pred), common / len(true)
            return 2 * p * r / (p + r)
    """,
        expect=r"bag",
    ),
    mutant(
        "squad_f1",
        "no normalisation",
        """
        def squad_f1(prediction, truth):
            pred, true = prediction.split(), truth.split()
            common = sum((Counter(pred) & Counter(true)).values())
            if common == 0:
                return 0.0
            p, r = common / len(pred), common / len(true)
            return 2 * p * r / (p + r)
    """,
        expect=r"not normalised",
    ),
    mutant(
        "squad_f1",
        "two empty answers score 1.0",
        """
        def squad_f1(prediction, truth):
            def tokens(s):
                s = "".join(ch for ch in s.lower() if ch not in string.punctuation)
                return re.sub(r"\\b(a|an|the)\\b", " ", s).split()

            pred, true = tokens(prediction), tokens(truth)
            if not pred and not true:
                return 1.0
            common = sum((Counter(pred) & Counter(true)).values())
            if common == 0:
                return 0.0
            p, r = common / len(pred), common / len(true)
            return 2 * p * r / (p + r)
    """,
        expect=r"normalise to nothing",
    ),
    mutant(
        "squad_f1",
        "precision only",
        """
        def squad_f1(prediction, truth):
            def tokens(s):
                s = "".join(ch for ch in s.lower() if ch not in string.punctuation)
                return re.sub(r"\\b(a|an|the)\\b", " ", s).split()

            pred, true = tokens(prediction), tokens(truth)
            common = sum((Counter(pred) & Counter(true)).values())
            return common / len(pred) if common else 0.0
    """,
    ),
    alternative(
        "squad_f1",
        "2 * common / (len + len)",
        """
        def squad_f1(prediction, truth):
            def tokens(s):
                s = s.lower().translate(str.maketrans("", "", string.punctuation))
                return [w for w in s.split() if w not in {"a", "an", "the"}]

            pred, true = tokens(prediction), tokens(truth)
            remaining = list(true)
            common = 0
            for w in pred:
                if w in remaining:
                    remaining.remove(w)
                    common += 1
            return 2 * common / (len(pred) + len(true)) if common else 0.0
    """,
    ),
]

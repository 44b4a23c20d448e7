"""The shipped data sets: sizes, the textbook examples, and the properties the chapters use."""

from collections import Counter

import pytest

from course_lib.data import load_corpus, load_imbalanced_predictions, load_ner, load_subword_vocab


def test_english_corpus_size_and_shape():
    en = load_corpus("en")
    assert en == load_corpus()  # "en" is the default
    assert len(en) >= 300
    assert len(set(en)) == len(en)  # no duplicated sentences
    assert all(isinstance(s, str) and s == s.strip() and s for s in en)
    assert all(len(s.split()) <= 12 for s in en)  # short sentences
    assert all(s.isascii() for s in en)


def test_english_corpus_has_the_repeated_structure_the_chapters_rely_on():
    words = Counter(w.strip(".,").lower() for s in load_corpus("en") for w in s.split())
    for word in ["king", "queen", "man", "woman", "dog", "cat", "paris", "france", "three"]:
        assert words[word] >= 3, word


def test_chinese_corpus():
    zh = load_corpus("zh")
    assert len(zh) >= 100
    assert zh[:2] == ["狗追猫。", "猫追狗。"]
    assert len(set(zh)) == len(zh)
    assert all(not s.isascii() for s in zh)


def test_all_is_english_then_chinese():
    assert load_corpus("all") == load_corpus("en") + load_corpus("zh")
    with pytest.raises(ValueError, match="lang must be one of"):
        load_corpus("fr")


def test_subword_vocab_has_specials_first_and_no_duplicates():
    vocab = load_subword_vocab()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(set(vocab)) == len(vocab)
    assert {"spa", "rrow", "jack", "!"} <= set(vocab)
    # greedy longest match must stop at "spa": no longer prefix of "sparrow" may be present
    assert not {"spar", "sparr", "sparro", "sparrow"} & set(vocab)


def test_ner_first_sentence_is_the_textbook_example():
    tokens, tags = load_ner()[0]
    assert tokens == "Jeff Dean is a computer scientist at Google in California".split()
    assert tags == ["B-PER", "I-PER", "O", "O", "O", "O", "O", "B-ORG", "O", "B-LOC"]


def test_ner_is_valid_iob2_with_all_four_types():
    data = load_ner()
    assert len(data) >= 40
    types = Counter()
    for tokens, tags in data:
        assert len(tokens) == len(tags) > 0
        previous = "O"
        for tag in tags:
            assert tag == "O" or tag[:2] in ("B-", "I-"), tag
            if tag.startswith("I-"):
                # IOB2: an I-X continues a B-X or I-X, it never starts an entity
                assert previous in (f"B-{tag[2:]}", f"I-{tag[2:]}"), (tokens, tags)
            if tag.startswith("B-"):
                types[tag[2:]] += 1
            previous = tag
    assert set(types) == {"PER", "ORG", "LOC", "MISC"}
    assert min(types.values()) >= 10
    assert any(set(tags) == {"O"} for _, tags in data)  # sentences without entities exist


def test_imbalanced_predictions_show_the_accuracy_paradox():
    y_true, y_pred = load_imbalanced_predictions()
    assert len(y_true) == len(y_pred) >= 100
    counts = Counter(y_true)
    assert 4 <= len(counts) <= 5
    majority, n_majority = counts.most_common(1)[0]
    assert n_majority / len(y_true) >= 0.70
    never_predicted = set(counts) - set(y_pred)
    assert never_predicted  # one class the classifier never outputs
    accuracy = sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)
    recalls = [
        sum(t == p == c for t, p in zip(y_true, y_pred)) / counts[c] for c in counts
    ]  # per-class recall
    macro_recall = sum(recalls) / len(recalls)
    assert accuracy > n_majority / len(y_true)  # beats "always predict the majority"...
    assert macro_recall < 0.6 < accuracy  # ...while the per-class picture is poor


def test_the_shipped_gpu_record_holds_what_chapter_12_reads():
    """The GPU figures of chapter 12 come from this record (`make bench` on a lent GPU): it must
    name the GPU, hold float32 medians per T, the bf16 pairs, and a peak memory that grows
    like T^2 for the from-scratch code and at most linearly for SDPA."""
    from course_lib.data import load_gpu_benchmark

    record = load_gpu_benchmark()
    assert record["machine"]["GPU"].startswith("NVIDIA")
    gpu = record["sections"][0]
    assert gpu["key"] == "gpu" and gpu["status"] == "measured"
    sizes = gpu["series"]["sizes"]
    assert sizes == sorted(sizes) and len(sizes) >= 5
    assert all(len(t) == len(sizes) for t in gpu["series"]["times"].values())
    labels = {row["label"] for row in gpu["rows"]}
    for T in (1024, 4096):
        for who in ("course_lib", "F.scaled_dot_product_attention"):
            assert f"attention T={T} bf16: {who}" in labels
    mem = gpu["memory"]
    ours, fused = mem["course_lib"], mem["F.scaled_dot_product_attention"]
    growth = mem["sizes"][-1] / mem["sizes"][0]
    assert ours[-1] / ours[0] > 0.9 * growth**2  # the (B, H, T, T) tensors
    assert fused[-1] / fused[0] < 1.1 * growth  # tiles: linear in T
    assert all(o >= 2 * s for o, s in zip(ours, mem["scores"]))  # scores and weights at least

"""Chapter 02 reference code: the pipeline example, word vocabularies, BPE against tiktoken."""

import importlib.util

import pytest
import torch

from course_lib.data import load_corpus, load_subword_vocab
from course_lib.tokenization import (
    SPECIAL_TOKENS,
    bpe_decode,
    bpe_encode,
    bpe_train,
    build_vocab,
    char_tokenize,
    decode,
    encode,
    get_stats,
    merge,
    normalize,
    pad_batch,
    pre_tokenize,
    subword_tokenize,
    tokenizer_pipeline,
)

# --- normalization and pre-tokenization ------------------------------------------------------


def test_normalize_drops_accents_lowercases_and_collapses_whitespace():
    assert normalize("  Héllo\t\tWÖRLD \n ") == "hello world"
    assert normalize("Crème Brûlée, naïve café") == "creme brulee, naive cafe"
    assert normalize("Ångström") == "angstrom"


def test_normalize_keeps_chinese_and_is_idempotent():
    text = "  我爱 NLP  "
    assert normalize(text) == "我爱 nlp"
    assert normalize(normalize(text)) == normalize(text)


def test_pre_tokenize_splits_every_punctuation_character():
    assert pre_tokenize("jack sparrow loves new york!") == [
        "jack",
        "sparrow",
        "loves",
        "new",
        "york",
        "!",
    ]
    assert pre_tokenize("wait...what?!") == ["wait", ".", ".", ".", "what", "?", "!"]
    assert pre_tokenize("don't") == ["don", "'", "t"]
    # ASCII symbols are not Unicode punctuation (they are S*), but BERT splits them too
    assert pre_tokenize("a+b=$5") == ["a", "+", "b", "=", "$", "5"]
    # Unicode punctuation beyond ASCII
    assert pre_tokenize("你好，世界。") == ["你好", "，", "世界", "。"]
    assert pre_tokenize("  \t ") == []


# --- the worked pipeline example ---------------------------------------------------------------


def test_pipeline_reproduces_the_worked_example_exactly():
    tokens = tokenizer_pipeline("Jack Sparrow loves New York!", load_subword_vocab())
    assert tokens == ["[CLS]", "jack", "spa", "rrow", "loves", "new", "york", "!", "[SEP]"]


def test_pipeline_tokens_have_ids_in_the_shipped_vocabulary():
    vocab_list = load_subword_vocab()
    vocab = {t: i for i, t in enumerate(vocab_list)}
    tokens = tokenizer_pipeline("Jack Sparrow loves New York!", vocab_list)
    ids = encode(tokens, vocab)
    assert vocab["[UNK]"] not in ids
    assert decode(ids, vocab) == tokens
    assert list(SPECIAL_TOKENS) == vocab_list[:5]  # [PAD] is id 0, as pad_batch assumes


def test_subword_tokenize_is_greedy_longest_match_first():
    vocab = {"a", "b", "ab", "abc", "c", "d", "cd"}
    assert subword_tokenize("abcd", vocab) == ["abc", "d"]  # not ["ab", "cd"]
    assert subword_tokenize("abab", vocab) == ["ab", "ab"]
    assert subword_tokenize("", vocab) == []


def test_subword_tokenize_unknown_character_makes_the_whole_word_unk():
    assert subword_tokenize("abx", {"a", "b", "ab"}) == ["[UNK]"]
    assert subword_tokenize("abx", {"a"}, unk_token="<unk>") == ["<unk>"]


# --- the word-level model ----------------------------------------------------------------------


def test_build_vocab_orders_specials_then_count_then_alphabet():
    tokens = ["b", "c", "a", "b", "c", "d", "b", "[UNK]"]
    vocab = build_vocab(tokens, max_size=8)
    # specials in order (a "[UNK]" in the text is not counted), then b (3), c (2), and of the
    # tie a/d (1 each) only the alphabetically first fits
    assert list(vocab) == [*SPECIAL_TOKENS, "b", "c", "a"]
    assert list(vocab.values()) == list(range(8))


def test_build_vocab_max_size_counts_the_specials():
    tokens = ["z", "y", "y", "x", "x"]
    vocab = build_vocab(tokens, max_size=3, specials=("[PAD]", "[UNK]"))
    assert vocab == {"[PAD]": 0, "[UNK]": 1, "x": 2}  # x and y tie at 2: alphabetical wins
    assert build_vocab(tokens, max_size=2, specials=("[PAD]", "[UNK]")) == {
        "[PAD]": 0,
        "[UNK]": 1,
    }
    with pytest.raises(ValueError, match="max_size"):
        build_vocab(tokens, max_size=1, specials=("[PAD]", "[UNK]"))


def test_build_vocab_does_not_depend_on_input_order():
    tokens = "the cat sat on the mat the end".split()
    assert build_vocab(tokens, 9) == build_vocab(tokens[::-1], 9)


def test_encode_decode_with_unk():
    vocab = build_vocab("the cat sat on the mat".split(), max_size=10)
    ids = encode(["the", "dog", "sat"], vocab)
    assert ids == [vocab["the"], vocab["[UNK]"], vocab["sat"]]
    assert decode(ids, vocab) == ["the", "[UNK]", "sat"]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        decode([99], vocab)
    with pytest.raises(KeyError, match="unk_token"):
        encode(["dog"], {"cat": 0})


# --- BPE helpers: the docstring examples -------------------------------------------------------


def test_get_stats_docstring_example():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert list(get_stats([3, 1, 2, 1, 2])) == [(3, 1), (1, 2), (2, 1)]  # first-occurrence order
    assert get_stats([7]) == {} and get_stats([]) == {}


def test_merge_docstring_examples():
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([5, 5, 5], (5, 5), 6) == [6, 5]
    assert merge([5, 5, 5, 5], (5, 5), 6) == [6, 6]
    assert merge([1, 2], (2, 1), 9) == [1, 2]


def test_bpe_train_tie_goes_to_the_pair_that_occurs_first():
    # "cdab ab cd": "ab" and "cd" both occur twice, but (c, d) comes first in the text;
    # alphabetical or lowest-id tie-breaking would pick (a, b) = (97, 98) instead
    merges = bpe_train("cdab ab cd", 257)
    assert merges == {(ord("c"), ord("d")): 256}
    merges = bpe_train("abcd cd ab", 257)
    assert merges == {(ord("a"), ord("b")): 256}


def test_bpe_train_hand_checked_merges():
    # the Wikipedia example by hand: "aa" occurs 4 times -> 256, giving [256 a b d 256 a b a c];
    # then (256, a) and (a, b) tie at 2 and (256, a) comes first -> 257; then (257, b) -> 258
    a, b = ord("a"), ord("b")
    merges = bpe_train("aaabdaaabac", 259)
    assert list(merges.items()) == [((a, a), 256), ((256, a), 257), ((257, b), 258)]
    assert bpe_encode("aaabdaaabac", merges) == [258, ord("d"), 258, a, ord("c")]


def test_bpe_train_stops_when_nothing_is_left_to_merge():
    assert bpe_train("", 300) == {}
    assert bpe_train("ab", 300) == {(97, 98): 256}
    with pytest.raises(ValueError, match="at least 256"):
        bpe_train("abc", 255)


@pytest.mark.parametrize(
    "text",
    ["", "a", "hello world", "hello hello hello world", "狗追猫，猫追狗。", "emoji 🤗🤗 ok 👍🏽!"],
)
def test_bpe_round_trip(text):
    merges = bpe_train("hello world! 狗追猫，猫追狗。 🤗🤗 hello", 300)
    ids = bpe_encode(text, merges)
    assert bpe_decode(ids, merges) == text
    assert len(ids) <= len(text.encode("utf-8"))


def test_bpe_compresses_the_training_text():
    corpus = " ".join(load_corpus("en")[:100])
    merges = bpe_train(corpus, 356)
    assert len(merges) == 100
    assert sorted(merges.values()) == list(range(256, 356))
    ids = bpe_encode(corpus, merges)
    assert len(ids) < 0.6 * len(corpus.encode("utf-8"))
    assert bpe_decode(ids, merges) == corpus


def test_bpe_decode_replaces_broken_utf8():
    # the first byte of "猫" alone is not valid UTF-8
    assert bpe_decode(["猫".encode()[0]], {}) == "\ufffd"
    with pytest.raises(KeyError, match="merge id"):
        bpe_decode([256], {})


HAS_TIKTOKEN_EDU = (
    importlib.util.find_spec("tiktoken") is not None
    and importlib.util.find_spec("regex") is not None
)


@pytest.mark.skipif(not HAS_TIKTOKEN_EDU, reason="tiktoken (with its regex dependency) missing")
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bpe_agrees_with_tiktoken_educational(lang):
    from tiktoken._educational import SimpleBytePairEncoding
    from tiktoken._educational import bpe_train as tiktoken_bpe_train

    # tiktoken first splits text with a regex and never merges across chunks; the pattern
    # "[\s\S]+" keeps the whole text as one chunk, which is what our byte-level trainer sees
    pattern = r"[\s\S]+"
    text = "\n".join(load_corpus(lang)[:60])
    vocab_size = 256 + 60
    ranks = tiktoken_bpe_train(text, vocab_size, pattern, visualise=None)
    merges = bpe_train(text, vocab_size)

    token_bytes = {i: bytes([i]) for i in range(256)}
    for (left, right), idx in merges.items():
        token_bytes[idx] = token_bytes[left] + token_bytes[right]
    assert {token_bytes[i]: i for i in range(vocab_size)} == ranks

    enc = SimpleBytePairEncoding(pat_str=pattern, mergeable_ranks=ranks)
    sample = "\n".join(load_corpus(lang)[60:80])
    assert bpe_encode(sample, merges) == enc.encode(sample, visualise=None)


# --- Chinese and batching ----------------------------------------------------------------------


def test_char_tokenize_chinese():
    assert char_tokenize("狗追猫") == ["狗", "追", "猫"]
    assert char_tokenize("我 爱\nNLP") == ["我", "爱", "N", "L", "P"]
    # the two sentences have the same characters, only the order differs
    assert sorted(char_tokenize("狗追猫")) == sorted(char_tokenize("猫追狗"))


def test_pad_batch_right_pads_and_masks():
    out = pad_batch([[5, 6, 7], [8], []], pad_id=0)
    assert set(out) == {"input_ids", "attention_mask"}
    assert out["input_ids"].dtype == torch.long and out["attention_mask"].dtype == torch.long
    assert out["input_ids"].shape == (3, 3) and out["attention_mask"].shape == (3, 3)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]


def test_pad_batch_mask_does_not_depend_on_the_pad_value():
    # a real token equal to pad_id must still count as real
    out = pad_batch([[3, 0, 3], [3]], pad_id=3)
    assert out["input_ids"].tolist() == [[3, 0, 3], [3, 3, 3]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="empty"):
        pad_batch([])

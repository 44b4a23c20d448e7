"""Small data sets shipped with the course (files under ``course_lib/data_files/``).

Everything here is original and tiny, so the book and the notebooks run offline in seconds:

- :func:`load_corpus`: short English and Chinese sentences with repeated structure (royalty and
  family, animals, capitals and languages, numbers, colours and fruit), enough for a tiny
  embedding or masked language model to learn something.
- :func:`load_subword_vocab`: the toy subword vocabulary of the tokenizer worked example.
- :func:`load_ner`: a toy named-entity data set in IOB2 (PER, ORG, LOC, MISC).
- :func:`load_imbalanced_predictions`: true and predicted labels of an imbalanced classifier,
  for the accuracy paradox.
"""

import csv
import io
import json
from importlib.resources import files

__all__ = ["load_corpus", "load_subword_vocab", "load_ner", "load_imbalanced_predictions"]

_LANGS = ("en", "zh", "all")


def _read(name: str) -> str:
    return files("course_lib").joinpath("data_files", name).read_text(encoding="utf-8")


def _lines(name: str) -> list[str]:
    return [line.strip() for line in _read(name).splitlines() if line.strip()]


def load_corpus(lang: str = "en") -> list[str]:
    """Sentences of the course corpus, one string each.

    Args:
        lang: "en" (English, over 300 sentences), "zh" (Chinese, over 100, starting with the
            word-order pair "狗追猫。" / "猫追狗。") or "all" (English, then Chinese).
    """
    if lang not in _LANGS:
        raise ValueError(f"lang must be one of {_LANGS}, got {lang!r}")
    if lang == "all":
        return load_corpus("en") + load_corpus("zh")
    return _lines(f"corpus_{lang}.txt")


def load_subword_vocab() -> list[str]:
    """The toy subword vocabulary of the tokenizer pipeline example.

    It holds the lowercase letters, digits and common punctuation (so no lowercase ASCII word
    becomes [UNK]), a few whole words and the pieces "spa" and "rrow", so that greedy
    longest-match splits "sparrow" into ["spa", "rrow"].
    """
    return _lines("subword_vocab.txt")


def load_ner() -> list[tuple[list[str], list[str]]]:
    """A toy NER set: (tokens, IOB2 tags) per sentence.

    The first sentence is the textbook example "Jeff Dean is a computer scientist at Google in
    California" → B-PER I-PER O O O O O B-ORG O B-LOC. Stored as CoNLL-style "token<TAB>tag"
    lines with a blank line between sentences.
    """
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    for line in [*_read("ner.tsv").splitlines(), ""]:
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
                tokens, tags = [], []
            continue
        token, tag = line.split("\t")
        tokens.append(token)
        tags.append(tag)
    return sentences


def load_imbalanced_predictions() -> tuple[list[str], list[str]]:
    """(y_true, y_pred) of an e-mail classifier on an imbalanced four-class problem.

    Classes: "normal" (75 % of the examples), "promotion", "spam" and "phishing". The classifier
    never predicts "phishing", yet its accuracy beats always answering "normal" only a little:
    the accuracy paradox that per-class recall and macro F1 expose.
    """
    rows = list(csv.DictReader(io.StringIO(_read("imbalanced_predictions.csv"))))
    return [r["y_true"] for r in rows], [r["y_pred"] for r in rows]


def load_gpu_benchmark() -> dict:
    """The GPU piece of ``make bench`` as recorded on a lent GPU machine (chapter 12).

    Written by ``python benchmarks/run.py --only gpu --device cuda --json
    course_lib/data_files/gpu_benchmark.json`` on that machine. Keys: ``command``, ``machine``
    (GPU, torch, date, commit) and ``sections``: one section whose ``series`` holds the float32
    attention medians per T (``sizes``, ``times``), whose ``rows`` hold every timed pair (with
    its ``samples`` in seconds) and whose ``memory`` holds the peak extra bytes per T.
    """
    return json.loads(_read("gpu_benchmark.json"))

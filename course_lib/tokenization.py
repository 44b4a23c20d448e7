"""Chapter 02 — from text to token ids.

The chapter follows a tokenizer pipeline in order: normalization → pre-tokenization → the model
(a word vocabulary, a greedy subword model, byte-pair encoding) → post-processing (special
tokens) → batching with padding and an attention mask. Character-level tokenization of Chinese
closes it.

Shape legend: ``B`` batch, ``T`` sequence length.
"""

import unicodedata
from collections import Counter
from collections.abc import Collection

import torch
from torch import Tensor

__all__ = [
    "SPECIAL_TOKENS",
    "normalize",
    "pre_tokenize",
    "build_vocab",
    "encode",
    "decode",
    "subword_tokenize",
    "tokenizer_pipeline",
    "get_stats",
    "merge",
    "bpe_train",
    "bpe_encode",
    "bpe_decode",
    "char_tokenize",
    "pad_batch",
]

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


# ---------------------------------------------------------------------------------------------
# Normalization and pre-tokenization.
# ---------------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """NFD, drop combining accents, lowercase, collapse whitespace, strip.

    NFD splits "é" into "e" plus a combining acute accent
    (Unicode category Mn), which we drop.
    Example: "  Héllo\\tWÖRLD " -> "hello world"
    """
    decomposed = unicodedata.normalize("NFD", text)
    no_accents = "".join(
        ch for ch in decomposed if unicodedata.category(ch) != "Mn"
    )
    # split() with no argument eats any whitespace
    return " ".join(no_accents.lower().split())


def _is_punctuation(ch: str) -> bool:
    """Unicode punctuation (categories P*) plus the ASCII symbols, as BERT's basic tokenizer.

    ASCII symbols such as "$", "+", "^" and "`" are category S*, not P*, but we still want them
    split off a word.
    """
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def pre_tokenize(text: str) -> list[str]:
    """Split on whitespace; every punctuation character becomes a token of
    its own.

    Example: "new york!" -> ["new", "york", "!"]; "don't" ->
    ["don", "'", "t"]
    """
    tokens: list[str] = []
    for word in text.split():
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    tokens.append(current)
                    current = ""
                tokens.append(ch)
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


# ---------------------------------------------------------------------------------------------
# A word-level model: the most-frequent-N vocabulary with [UNK].
# ---------------------------------------------------------------------------------------------


def build_vocab(
    tokens: list[str],
    max_size: int,
    specials: tuple[str, ...] = SPECIAL_TOKENS,
) -> dict[str, int]:
    """Token → id for the specials and the most frequent tokens.

    Specials come first in the given order
    (so "[PAD]" gets id 0 by default), then tokens by descending count,
    ties broken alphabetically so the result does not depend on input
    order. ``max_size`` counts the specials. Tokens that equal a special
    are not counted twice.

    Example: build_vocab(["b", "a", "b", "c"], 3, ("[UNK]",)) ->
    {"[UNK]": 0, "b": 1, "a": 2}
    """
    if len(set(specials)) != len(specials):
        raise ValueError(f"specials contains duplicates: {specials}")
    if max_size < len(specials):
        raise ValueError(
            f"max_size={max_size} cannot hold the {len(specials)} "
            f"special tokens; use max_size >= {len(specials)}"
        )
    counts = Counter(t for t in tokens if t not in specials)
    # count desc, then alphabetical
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    kept = ranked[: max_size - len(specials)]
    return {tok: i for i, tok in enumerate([*specials, *kept])}


def encode(tokens: list[str], vocab: dict[str, int], unk_token: str = "[UNK]") -> list[int]:
    """Map tokens to ids; tokens missing from the vocabulary become ``unk_token``'s id."""
    if unk_token not in vocab:
        missing = [t for t in tokens if t not in vocab]
        if missing:
            raise KeyError(
                f"tokens {missing[:5]} are not in the vocabulary and unk_token {unk_token!r} "
                "is not either; add it to the vocabulary (build_vocab adds '[UNK]')"
            )
        return [vocab[t] for t in tokens]
    unk_id = vocab[unk_token]
    return [vocab.get(t, unk_id) for t in tokens]


def decode(ids: list[int], vocab: dict[str, int]) -> list[str]:
    """Map ids back to tokens with the inverse of ``vocab``. Words lost to [UNK] stay [UNK]."""
    id_to_token = {i: t for t, i in vocab.items()}
    if len(id_to_token) != len(vocab):
        raise ValueError("vocab maps two tokens to the same id, so it cannot be inverted")
    out = []
    for i in ids:
        if i not in id_to_token:
            raise KeyError(f"id {i} is not in the vocabulary (ids run 0..{len(vocab) - 1})")
        out.append(id_to_token[i])
    return out


# ---------------------------------------------------------------------------------------------
# A subword model: greedy longest match, and the full pipeline of the worked example.
# ---------------------------------------------------------------------------------------------


def subword_tokenize(word: str, vocab: Collection[str], unk_token: str = "[UNK]") -> list[str]:
    """Split one word into the longest vocabulary pieces, left to right.

    At each position take the longest prefix of the rest of the word that is in ``vocab``. If
    some position has no match at all, the whole word becomes ``unk_token`` (as WordPiece does).
    Unlike WordPiece, continuation pieces carry no "##" marker, to match the book's example.

    Example: with "spa", "rrow" and the single letters in vocab, "sparrow" -> ["spa", "rrow"]
    """
    vocab = set(vocab)
    pieces: list[str] = []
    start = 0
    while start < len(word):
        for end in range(len(word), start, -1):  # longest candidate first
            if word[start:end] in vocab:
                pieces.append(word[start:end])
                start = end
                break
        else:
            return [unk_token]
    return pieces


def tokenizer_pipeline(text: str, subword_vocab: Collection[str]) -> list[str]:
    """Normalization → pre-tokenization → subword model → post-processing, as strings.

    Example (with :func:`course_lib.data.load_subword_vocab`):
    "Jack Sparrow loves New York!" ->
    ["[CLS]", "jack", "spa", "rrow", "loves", "new", "york", "!", "[SEP]"]
    A model sees the ids of these tokens: pass them to :func:`encode`.
    """
    words = pre_tokenize(normalize(text))
    pieces = [p for w in words for p in subword_tokenize(w, subword_vocab)]
    return ["[CLS]", *pieces, "[SEP]"]  # post-processing: BERT's single-sentence template


# ---------------------------------------------------------------------------------------------
# Byte-pair encoding, byte level (minbpe style): 256 base ids, merges get ids 256, 257, ...
# ---------------------------------------------------------------------------------------------


def get_stats(ids: list[int]) -> dict[tuple[int, int], int]:
    """Count every adjacent pair, keyed in order of first occurrence.

    Example: [1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of ``pair`` by ``idx``, scanning left to
    right.

    Example: merge([1, 2, 3, 1, 2], (1, 2), 4) -> [4, 3, 4]
    Overlaps resolve from the left: merge([5, 5, 5], (5, 5), 6) -> [6, 5]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if (
            i < len(ids) - 1
            and ids[i] == pair[0]
            and ids[i + 1] == pair[1]
        ):
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def bpe_train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Learn ``vocab_size - 256`` merges on the UTF-8 bytes of ``text``.

    Each step merges the most frequent adjacent pair; a tie goes to the
    pair that occurs first in the current sequence
    (``get_stats`` keeps first-occurrence order and ``max`` returns the
    first maximum). Training stops early, with fewer merges, once no pair
    is left to merge.

    Returns:
        {(left_id, right_id): new_id} with new ids 256, 257, ... in the
        order learned.
    """
    if vocab_size < 256:
        raise ValueError(
            "vocab_size must be at least 256 "
            f"(one id per byte), got {vocab_size}"
        )
    ids = list(text.encode("utf-8"))
    merges: dict[tuple[int, int], int] = {}
    for idx in range(256, vocab_size):
        stats = get_stats(ids)
        if not stats:
            break
        pair = max(stats, key=stats.__getitem__)
        ids = merge(ids, pair, idx)
        merges[pair] = idx
    return merges


def bpe_encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    """Encode text by replaying the merges in the order they were learned.

    At each step the pair present with the lowest merge id is merged, because a later merge may
    build on an earlier one but never the other way round.
    """
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        stats = get_stats(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break  # nothing left that the tokenizer knows how to merge
        ids = merge(ids, pair, merges[pair])
    return ids


def _bpe_vocab(merges: dict[tuple[int, int], int]) -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    for (left, right), idx in sorted(merges.items(), key=lambda item: item[1]):
        vocab[idx] = vocab[left] + vocab[right]
    return vocab


def bpe_decode(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """Concatenate the bytes of every id and decode them as UTF-8.

    A byte sequence cut in the middle of a character (possible when decoding an arbitrary id
    list) becomes "�" (errors="replace") instead of raising.
    """
    vocab = _bpe_vocab(merges)
    try:
        data = b"".join(vocab[i] for i in ids)
    except KeyError as err:
        raise KeyError(f"id {err.args[0]} is neither a byte (0..255) nor a merge id") from None
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Chinese: no spaces between words, so the simplest tokenizer takes one character at a time.
# ---------------------------------------------------------------------------------------------


def char_tokenize(text: str) -> list[str]:
    """One token per character, whitespace dropped.

    Example: "狗追猫" -> ["狗", "追", "猫"]
    """
    return [ch for ch in text if not ch.isspace()]


# ---------------------------------------------------------------------------------------------
# Batching: pad to a rectangle and remember which positions are real.
# ---------------------------------------------------------------------------------------------


def pad_batch(
    batch: list[list[int]],
    pad_id: int = 0,
) -> dict[str, Tensor]:
    """Right-pad sequences to the longest one and build the attention mask.

    Example: [[5, 6, 7], [8]] -> input_ids [[5, 6, 7], [8, 0, 0]],
    attention_mask [[1, 1, 1], [1, 0, 0]]
    Returns:
        {"input_ids": (B, T) long, "attention_mask": (B, T) long, 1 = real
        token, 0 = padding}
    """
    if len(batch) == 0:
        raise ValueError("batch is empty: pass at least one sequence")
    T = max(len(seq) for seq in batch)
    B = len(batch)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros(B, T, dtype=torch.long)  # (B, T)
    for b, seq in enumerate(batch):
        input_ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[b, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}

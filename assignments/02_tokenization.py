# %% [markdown]
# # 02 · From text to token ids
#
# **Recap.** A tokenizer turns text into ids in four stages: *normalization* (Unicode
# decomposition, accents dropped, lowercase, tidy whitespace), *pre-tokenization* (split on
# whitespace and punctuation), the *model* (a vocabulary with `[UNK]`, or byte-pair encoding
# that learns merges of frequent pairs) and *post-processing* (special tokens, padding to a
# rectangle with an attention mask, 1 = real token). Read
# [chapter 2, *From text to token ids*](../../book/02_tokenization.md) (published as
# `02_tokenization.html`) first.
#
# Eleven small functions, 14 points. Run a solution cell, then the test cell below it; from a
# terminal, `course check exercises/02_tokenization/02_tokenization.ipynb` runs all the visible
# tests, and so does the `G.check_all()` cell near the end. Use plain Python (and `unicodedata`),
# not the course's reference package.

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
import unicodedata
from collections import Counter

import torch
from torch import Tensor

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# %% [markdown]
# ## 1. Normalization
#
# NFD splits `é` into `e` plus a combining accent (Unicode category `Mn`): drop those, then
# lowercase, turn any run of whitespace (spaces, tabs, newlines) into one space and strip the
# ends. `"  Héllo\tWÖRLD "` becomes `"hello world"`.


# %% solution normalize
def normalize(text: str) -> str:
    """NFD, drop combining accents, lowercase, collapse whitespace, strip."""
    ### BEGIN SOLUTION
    decomposed = unicodedata.normalize("NFD", text)
    no_accents = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(no_accents.lower().split())
    ### END SOLUTION


# %% tests test_normalize points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "accents are kept: decompose with NFD and drop the combining marks (category Mn)",
        lambda text: " ".join(text.lower().split()),
    ),
    G.Mistake(
        "the text is not lowercased",
        lambda text: " ".join(
            "".join(
                c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
            ).split()
        ),
    ),
    G.Mistake(
        "whitespace is not collapsed: tabs, newlines and runs of spaces become one space",
        lambda text: (
            "".join(
                c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
            )
            .lower()
            .strip()
        ),
    ),
]
cases = [
    G.Case("  Héllo\tWÖRLD ", label="accents, case, tab"),
    G.Case("Jack Sparrow loves New York!", label="the chapter's example"),
    G.Case("naïve   café\n", label="several spaces and a newline"),
]
assert G.check_function(normalize, ref.normalize, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
hidden = [
    G.Case(""),
    G.Case("   "),
    G.Case("Ångström São Paulo"),
    G.Case("狗追猫 ÇA"),
    G.Case("e\u0301 already decomposed"),
    G.Case("Tab\t\tand\r\nCRLF"),
]
assert G.check_function(normalize, ref.normalize, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Pre-tokenization
#
# Split on whitespace, then make every punctuation character a token of its own. Punctuation
# means Unicode categories `P*` (`unicodedata.category(ch).startswith("P")`, which covers `!`,
# `'` and Chinese `，`) plus the ASCII symbols `$ + < = > ^ `` ` `` | ~`.
# `"don't stop!"` → `["don", "'", "t", "stop", "!"]`.


# %% solution pre_tokenize
def pre_tokenize(text: str) -> list[str]:
    """Whitespace split; each punctuation character becomes its own token."""

    ### BEGIN SOLUTION
    def is_punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    tokens = []
    for word in text.split():
        current = ""
        for ch in word:
            if is_punct(ch):
                if current:
                    tokens.append(current)
                    current = ""
                tokens.append(ch)
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens
    ### END SOLUTION


# %% tests test_pre_tokenize points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = [
    G.Mistake("punctuation is not split off the words", lambda text: text.split()),
    G.Mistake(
        "a run of punctuation is kept together; each punctuation character is a token",
        lambda text: __import__("re").findall(r"\w+|[^\w\s]+", text),
    ),
]
cases = [
    G.Case("jack sparrow loves new york!", label="the chapter's example"),
    G.Case("don't stop!!", label="apostrophe and two marks"),
    G.Case("a+b=c, ok?", label="ASCII symbols"),
]
assert G.check_function(
    pre_tokenize, ref.pre_tokenize, cases, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### BEGIN HIDDEN TESTS
hidden = [
    G.Case(""),
    G.Case("...", label="only punctuation"),
    G.Case("狗追猫，猫跑了。"),
    G.Case("¿qué? «sí» $5 ~x"),
    G.Case("  spaced\tout\nwords "),
]
assert G.check_function(
    pre_tokenize, ref.pre_tokenize, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. A vocabulary with `[UNK]`
#
# Specials first, in the given order (so `[PAD]` is id 0), then tokens by descending count,
# ties broken alphabetically; `max_size` counts the specials, and a token equal to a special
# is not added twice. Then `encode` maps tokens to ids (unknown → the id of `unk_token`) and
# `decode` maps ids back.


# %% solution build_vocab
def build_vocab(
    tokens: list[str], max_size: int, specials: tuple[str, ...] = SPECIALS
) -> dict[str, int]:
    """Token -> id: the specials, then the most frequent tokens; ``max_size`` entries at most."""
    ### BEGIN SOLUTION
    counts = Counter(t for t in tokens if t not in specials)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    kept = ranked[: max_size - len(specials)]
    return {tok: i for i, tok in enumerate([*specials, *kept])}
    ### END SOLUTION


# %% tests test_build_vocab points=2
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)


def _vocab(tokens, max_size, specials=SPECIALS, key=None, room=None):
    counts = Counter(t for t in tokens if t not in specials)
    ranked = sorted(counts, key=key or (lambda t: (-counts[t], t)))
    room = max_size - len(specials) if room is None else room
    return {tok: i for i, tok in enumerate([*specials, *ranked[:room]])}


MISTAKES = [
    G.Mistake(
        "ties are not broken alphabetically (equal counts: 'a' before 'b')",
        lambda tokens, max_size, specials=SPECIALS: _vocab(
            tokens, max_size, specials, key=lambda t, c=Counter(tokens): -c[t]
        ),
    ),
    G.Mistake(
        "max_size must count the specials too",
        lambda tokens, max_size, specials=SPECIALS: _vocab(
            tokens, max_size, specials, room=max_size
        ),
    ),
    G.Mistake(
        "the rarest tokens are kept; keep the most frequent",
        lambda tokens, max_size, specials=SPECIALS: _vocab(
            tokens, max_size, specials, key=lambda t, c=Counter(tokens): (c[t], t)
        ),
    ),
]
words = "the cat sat on the mat the end".split()  # "the" ×3, the rest once each
cases = [
    G.Case(words, 8, label="room for 3 words after the 5 specials"),
    G.Case(["b", "a", "b", "c"], 3, ("[UNK]",), label="one special, ties alphabetical"),
    G.Case(["[UNK]", "x", "x"], 10, ("[PAD]", "[UNK]"), label="a token equal to a special"),
    G.Case(
        ["[UNK]"] * 3 + ["a", "b"],
        4,
        ("[PAD]", "[UNK]"),
        label="a special in the text takes no slot",
    ),
]
assert G.check_function(build_vocab, ref.build_vocab, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("02/build_vocab")
pool = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
toks = [rng.choice(pool) for _ in range(60)]
hidden = [
    G.Case(toks, 9),
    G.Case(toks, 5, label="only the specials fit"),
    G.Case([], 7, label="no tokens"),
    G.Case(toks, 100, label="room for everything"),
]
assert G.check_function(
    build_vocab, ref.build_vocab, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES
)
### END HIDDEN TESTS


# %% solution encode
def encode(tokens: list[str], vocab: dict[str, int], unk_token: str = "[UNK]") -> list[int]:
    """Tokens -> ids; tokens missing from ``vocab`` get the id of ``unk_token``."""
    ### BEGIN SOLUTION
    unk_id = vocab[unk_token]
    return [vocab.get(t, unk_id) for t in tokens]
    ### END SOLUTION


# %% tests test_encode points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
vocab = {"[PAD]": 0, "[UNK]": 1, "new": 2, "york": 3, "!": 4}
cases = [
    G.Case(["new", "york", "!"], vocab, label="known tokens"),
    G.Case(["new", "jersey", "!"], vocab, label="an unknown token"),
    G.Case(["?"], {"<unk>": 0, "a": 1}, "<unk>", label="another unk_token"),
]
assert G.check_function(encode, ref.encode, cases, forbidden=FORBIDDEN)
### BEGIN HIDDEN TESTS
hidden = [G.Case([], vocab), G.Case(["york"] * 3 + ["boston"], vocab)]
assert G.check_function(encode, ref.encode, hidden, forbidden=FORBIDDEN)
### END HIDDEN TESTS


# %% solution decode
def decode(ids: list[int], vocab: dict[str, int]) -> list[str]:
    """Ids -> tokens, with the inverse of ``vocab``."""
    ### BEGIN SOLUTION
    id_to_token = {i: t for t, i in vocab.items()}
    return [id_to_token[i] for i in ids]
    ### END SOLUTION


# %% tests test_decode points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
vocab = {"[PAD]": 0, "[UNK]": 1, "new": 2, "york": 3, "!": 4}
cases = [G.Case([2, 3, 4], vocab, label="new york !"), G.Case([1, 0, 0], vocab, label="specials")]
assert G.check_function(decode, ref.decode, cases, forbidden=FORBIDDEN)
### BEGIN HIDDEN TESTS
shuffled = {"z": 3, "y": 0, "x": 2, "w": 1}
hidden = [G.Case([], vocab), G.Case([3, 0, 2, 1, 3], shuffled, label="ids not in insertion order")]
assert G.check_function(decode, ref.decode, hidden, forbidden=FORBIDDEN)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Byte-pair encoding
#
# Work on the UTF-8 bytes of the text (ids 0–255). `get_stats` counts adjacent pairs
# (`[1, 2, 3, 1, 2]` → `{(1, 2): 2, (2, 3): 1, (3, 1): 1}`); `merge` replaces every
# occurrence of a pair by a new id, scanning left to right (`merge([5, 5, 5], (5, 5), 6)` →
# `[6, 5]`). `bpe_train` repeats "merge the most frequent pair" with new ids 256, 257, …;
# a tie goes to the pair that occurs **first** in the current sequence. It stops early when no
# pair is left.


# %% solution get_stats
def get_stats(ids: list[int]) -> dict[tuple[int, int], int]:
    """Count each adjacent pair of ids."""
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION


# %% tests test_get_stats points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "the last pair is missed (an off-by-one in the loop)", lambda ids: ref.get_stats(ids[:-1])
    )
]
cases = [
    G.Case([1, 2, 3, 1, 2], label="the docstring example"),
    G.Case([7, 7, 7], label="overlapping pairs"),
]
assert G.check_function(get_stats, ref.get_stats, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("02/get_stats")
hidden = [G.Case([]), G.Case([5]), G.Case([rng.randrange(4) for _ in range(50)])]
assert G.check_function(get_stats, ref.get_stats, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS


# %% solution merge
def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``idx``, left to right."""
    ### BEGIN SOLUTION
    out, i = [], 0
    while i < len(ids):
        if i < len(ids) - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


# %% tests test_merge points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
cases = [
    G.Case([1, 2, 3, 1, 2], (1, 2), 4, label="the docstring example"),
    G.Case([5, 5, 5], (5, 5), 6, label="overlap: the left pair wins"),
    G.Case([1, 2], (2, 1), 9, label="pair absent"),
]
assert G.check_function(merge, ref.merge, cases, forbidden=FORBIDDEN)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("02/merge")
ids = [rng.randrange(3) for _ in range(40)]
hidden = [
    G.Case([], (1, 2), 3),
    G.Case(ids, (0, 1), 256),
    G.Case([2, 2, 2, 2, 2], (2, 2), 300),
    G.Case(ids + [0], (0, 0), 257),
]
assert G.check_function(merge, ref.merge, hidden, forbidden=FORBIDDEN)
### END HIDDEN TESTS


# %% solution bpe_train
def bpe_train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Learn ``vocab_size - 256`` merges on the UTF-8 bytes of ``text``: {pair: new id}."""
    ### BEGIN SOLUTION
    ids = list(text.encode("utf-8"))
    merges = {}
    for idx in range(256, vocab_size):
        stats = get_stats(ids)
        if not stats:
            break
        pair = max(stats, key=stats.__getitem__)
        ids = merge(ids, pair, idx)
        merges[pair] = idx
    return merges
    ### END SOLUTION


# %% tests test_bpe_train points=2
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)


def _train(text, vocab_size, pick):
    ids, merges = list(text.encode("utf-8")), {}
    for idx in range(256, vocab_size):
        stats = ref.get_stats(ids)
        if not stats:
            break
        pair = pick(stats)
        ids = ref.merge(ids, pair, idx)
        merges[pair] = idx
    return merges


MISTAKES = [
    G.Mistake(
        "ties go to the smallest pair; they should go to the pair that occurs first",
        lambda text, vocab_size: _train(text, vocab_size, lambda s: max(sorted(s), key=s.get)),
    ),
    G.Mistake(
        "ties go to the pair that occurs last; they should go to the one that occurs first",
        lambda text, vocab_size: _train(
            text, vocab_size, lambda s: max(reversed(list(s)), key=s.get)
        ),
    ),
    G.Mistake(
        "one merge too few: vocab_size counts the 256 bytes, so learn vocab_size - 256 merges",
        lambda text, vocab_size: _train(text, vocab_size - 1, lambda s: max(s, key=s.get)),
    ),
]
cases = [
    G.Case("aaabdaaabac", 259, label="the classic example, 3 merges"),
    G.Case("hug hug pug pun bun", 262, label="ties between pairs"),
    G.Case("ab", 300, label="runs out of pairs"),
]
assert G.check_function(bpe_train, ref.bpe_train, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("02/bpe_train")
text = " ".join(rng.choice(["low", "lower", "newest", "widest", "狗追猫"]) for _ in range(40))
hidden = [
    G.Case(text, 290),
    G.Case("", 260, label="empty text"),
    G.Case("x", 256, label="no merges"),
]
assert G.check_function(bpe_train, ref.bpe_train, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# `bpe_encode` replays the merges on new text: while some adjacent pair is a known merge, merge
# the one that was **learned first** (lowest new id), because later merges build on earlier
# ones. `bpe_decode` joins the bytes of every id and decodes them as UTF-8 with
# `errors="replace"`, since an arbitrary id list can cut a character in half.


# %% solution bpe_encode
def bpe_encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    """Text -> ids by applying ``merges`` in the order they were learned."""
    ### BEGIN SOLUTION
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        stats = get_stats(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids
    ### END SOLUTION


# %% tests test_bpe_encode points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
merges = ref.bpe_train("aaabdaaabac", 259)  # {(97, 97): 256, (256, 97): 257, (257, 98): 258}
cases = [
    G.Case("aaabdaaabac", merges, label="the training text"),
    G.Case("abaaab", merges, label="new text"),
    G.Case("", merges, label="empty"),
    # (a, b) was learned before (b, c): it wins even though (b, c) occurs twice in "abcbc".
    G.Case("abcbc", {(97, 98): 256, (98, 99): 257}, label="the earlier merge goes first"),
]
assert G.check_function(bpe_encode, ref.bpe_encode, cases, forbidden=FORBIDDEN)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("02/bpe_encode")
corpus = " ".join(rng.choice(["low", "lower", "newest", "widest", "狗追猫"]) for _ in range(40))
learned = ref.bpe_train(corpus, 280)
hidden = [
    G.Case("lowest newer", learned),
    G.Case("狗追猫 low", learned),
    G.Case("z", learned),
    G.Case(corpus[:50], learned),
]
assert G.check_function(bpe_encode, ref.bpe_encode, hidden, forbidden=FORBIDDEN)
### END HIDDEN TESTS


# %% solution bpe_decode
def bpe_decode(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """Ids -> text: the bytes of every id, decoded as UTF-8 (errors="replace")."""
    ### BEGIN SOLUTION
    vocab = {i: bytes([i]) for i in range(256)}
    for (left, right), idx in sorted(merges.items(), key=lambda item: item[1]):
        vocab[idx] = vocab[left] + vocab[right]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION


# %% tests test_bpe_decode points=1
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)
merges = ref.bpe_train("aaabdaaabac", 259)
cases = [
    G.Case([258, 100, 258, 97, 99], merges, label="merged ids back to 'aaabdaaabac'"),
    G.Case(list("狗".encode()), merges, label="one Chinese character = 3 bytes"),
]
assert G.check_function(bpe_decode, ref.bpe_decode, cases, forbidden=FORBIDDEN)
### BEGIN HIDDEN TESTS
learned = ref.bpe_train("狗追猫 狗追猫 猫追狗", 270)
hidden = [
    G.Case(ref.bpe_encode("猫追狗 狗", learned), learned),
    G.Case([], learned),
    G.Case(list("狗".encode())[:2], learned, label="a character cut in half"),
]
assert G.check_function(bpe_decode, ref.bpe_decode, hidden, forbidden=FORBIDDEN)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Batching
#
# Right-pad every sequence with `pad_id` to the longest one and build the attention mask,
# `1` for a real token and `0` for padding (Hugging Face's convention). Both are `(B, T)`
# `torch.long`.


# %% solution pad_batch
def pad_batch(batch: list[list[int]], pad_id: int = 0) -> dict[str, Tensor]:
    """{"input_ids": (B, T) long, "attention_mask": (B, T) long}, right padding."""
    ### BEGIN SOLUTION
    T = max(len(seq) for seq in batch)
    input_ids = torch.full((len(batch), T), pad_id, dtype=torch.long)
    attention_mask = torch.zeros(len(batch), T, dtype=torch.long)
    for b, seq in enumerate(batch):
        input_ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[b, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
    ### END SOLUTION


# %% tests test_pad_batch points=2
from course_lib import grading as G
from course_lib import tokenization as ref

FORBIDDEN = G.no_reference(ref)


def _flip(out):
    return {"input_ids": out["input_ids"], "attention_mask": 1 - out["attention_mask"]}


def _left(batch, pad_id=0):
    out = ref.pad_batch([seq[::-1] for seq in batch], pad_id)
    return {k: v.flip(-1) for k, v in out.items()}


MISTAKES = [
    G.Mistake(
        "the mask is inverted: 1 marks a real token, 0 marks padding",
        lambda batch, pad_id=0: _flip(ref.pad_batch(batch, pad_id)),
    ),
    G.Mistake("the padding is on the left; pad on the right", _left),
]
cases = [
    G.Case([[5, 6, 7], [8]], label="the docstring example"),
    G.Case([[1, 2], [3, 4]], label="nothing to pad"),
    G.Case([[9], [4, 4, 4, 4]], pad_id=-1, label="pad_id=-1"),
]
assert G.check_function(pad_batch, ref.pad_batch, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("02/pad_batch")
batch = [[rng.randrange(1, 100) for _ in range(rng.randrange(1, 9))] for _ in range(6)]
hidden = [G.Case(batch), G.Case(batch, pad_id=3), G.Case([[7]], label="one token")]
assert G.check_function(pad_batch, ref.pad_batch, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: the pipeline and the merges
#
# Your `normalize` and `pre_tokenize` on the chapter's sentence, then how the number of tokens
# of a text falls as your BPE learns more merges. Not graded.

# %% demo
import matplotlib.pyplot as plt

sentence = "Jack Sparrow loves New York!"
demo_text = (
    "the lower the newest the widest; low lower lowest new newer newest wide wider widest " * 3
)
try:
    print(pre_tokenize(normalize(sentence)))
    sizes = [256, 260, 270, 280, 300, 330]
    lengths = [len(bpe_encode(demo_text, bpe_train(demo_text, n))) for n in sizes]
except NotImplementedError:
    print(
        "Implement normalize, pre_tokenize, get_stats, merge, bpe_train and bpe_encode above, "
        "then run this cell again."
    )
else:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([n - 256 for n in sizes], lengths, marker="o")
    ax.set_xlabel("merges learned")
    ax.set_ylabel("tokens in the text")
    plt.show()

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

# %% written written_unk_vs_bpe points=2
# **Question (2 points).** A word-level vocabulary maps every unseen word to `[UNK]`; byte-pair encoding does not. Explain why, and name one cost BPE pays for this.
# RUBRIC:
# - 1 point: BPE starts from characters (or bytes) and only merges frequent pairs, so any word can be written as a sequence of known pieces; nothing falls out of the vocabulary (given its base alphabet).
# - 1 point: a cost, e.g. rare words become several tokens (longer sequences, more compute), or pieces carry less meaning than whole words, or the merges depend on the training corpus.
# - No point for "BPE is better" without the mechanism.

# %% [markdown]
# ## Recap
#
# - Normalization and pre-tokenization decide what counts as "the same word".
# - A word vocabulary needs `[UNK]` for everything it has not seen; byte-level BPE never does,
#   because every text is a sequence of bytes and merges only shorten it.
# - Batches are padded to a rectangle, and the attention mask (1 = real) says which positions
#   are padding.
#
# More in [chapter 2](../../book/02_tokenization.md).

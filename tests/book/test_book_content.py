"""The chapters teach what SYLLABUS.md lists, in the agreed form, and the glossary is complete.

These tests read the MyST sources only (no build): the concepts of each chapter (from the
syllabus's "Concepts:" lines, as key words or patterns that must all appear), the title, the
Key terms box, the Exercise section, the prose length, and the appendix glossary.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import book_chapters

from course_lib.authoring.bookbuild import BOOK_DIR, CHAPTERS

# Chapter -> [(concept, [patterns])]. Every pattern (a case-insensitive regex) must occur in
# the chapter's text; alternatives are written with "|".
CONCEPTS: dict[str, list[tuple[str, list[str]]]] = {
    "01_tensors": [
        ("tensors of rank 0–4", [r"rank", r"scalar", r"vector", r"matrix"]),
        (
            "what each axis means",
            [r"\[batch, seq, dim\]|\(B, T, D\)", r"\[B, C, H, W\]|\(B, C, H, W\)"],
        ),
        ("padding to rectangular shape", [r"padd", r"rectangular"]),
        ("matrix multiplication and broadcasting", [r"matrix multiplication", r"broadcast"]),
        ("gradient as steepest ascent", [r"steepest ascent", r"blindfold", r"hill"]),
        (
            "forward → loss → backward",
            [r"forward pass", r"loss", r"backward pass", r"chain rule", r"autograd"],
        ),
        ("batch size and iterations", [r"batch size", r"iteration"]),
        ("one SGD step", [r"SGD|stochastic gradient descent", r"learning rate"]),
    ],
    "02_tokenization": [
        ("character, word, subword", [r"character tokenization", r"word tokenization", r"subword"]),
        ("vocabulary, most-frequent-N, [UNK]", [r"vocabulary", r"most[- ]frequent", r"\[UNK\]"]),
        ("special tokens", [r"\[PAD\]", r"\[CLS\]", r"\[SEP\]", r"\[MASK\]"]),
        ("the pipeline", [r"normalization", r"pre-tokenization", r"post-processing"]),
        ("Jack Sparrow example", [r"Jack Sparrow loves New York", r"spa", r"rrow"]),
        ("byte-pair encoding", [r"byte-pair encoding", r"merge", r"bpe_train", r"bpe_encode"]),
        ("Chinese, character level", [r"Chinese", r"one token per character|character-level"]),
        ("batching with padding and mask", [r"pad_batch", r"attention mask|attention_mask"]),
    ],
    "03_embeddings": [
        ("ids carry no meaning, false order", [r"\border", r"\bids?\b"]),
        ("one-hot vectors", [r"one-hot", r"sparse", r"equidistant|same distance|equally far"]),
        ("embedding matrix as lookup table", [r"embedding matrix", r"lookup", r"\(V, D\)"]),
        ("static vs contextual", [r"word2vec", r"BERT", r"static", r"contextual"]),
        ("cosine similarity, nearest neighbours", [r"cosine similarity", r"nearest neighbo"]),
        ("analogies", [r"king", r"queen", r"analog"]),
        ("tiny embedding, PCA", [r"PCA|principal component"]),
    ],
    "04_positions": [
        ("permutation equivariance", [r"permutation", r"equivarian", r"dog chases cat", r"狗追猫"]),
        ("learned absolute positions", [r"learned", r"absolute", r"max_len"]),
        (
            "sinusoidal encoding",
            [r"sinusoidal", r"Attention Is All You Need", r"\bsin", r"\bcos", r"rotation"],
        ),
        ("relative positions", [r"relative", r"RoPE", r"ALiBi", r"clip"]),
        ("adding positions (seed example)", [r"0\.1,\s*0\.3,\s*-0\.5", r"0\.2,\s*-0\.1,\s*0\.4"]),
    ],
    "05_attention": [
        ("weighted average", [r"weighted average"]),
        ("dot-product similarity", [r"dot[- ]product"]),
        ("stable softmax", [r"softmax", r"stabl"]),
        ("why √d_k", [r"variance", r"saturat"]),
        ("library analogy", [r"library", r"query", r"key", r"value"]),
        (
            "seed worked example",
            [r"\[\[\s*5\.?0*,\s*6\.?0*\s*\]", r"\[\[\s*9\.?0*,\s*10\.?0*\s*\]"],
        ),
        ("time flies like an arrow", [r"time flies like an arrow"]),
        ("T × S scores, O(T²)", [r"score", r"O\(T\^?2\)|O\(T²\)|quadratic"]),
        ("heatmap", [r"heat ?map"]),
    ],
    "06_self_attention": [
        ("no learned projections, no parameters", [r"parameter", r"train"]),
        (
            "W_Q, W_K, W_V",
            [
                r"W_\{?Q\}?|W\^\{?Q\}?|W_\{\\?\w*\{?Q",
                r"W_\{?K\}?|W\^\{?K\}?|W_\{\\?\w*\{?K",
                r"W_\{?V\}?|W\^\{?V\}?|W_\{\\?\w*\{?V",
            ],
        ),
        ("what I need / have / give", [r"what I need", r"what I have", r"what I give"]),
        (
            "self vs cross-attention",
            [r"self-attention", r"cross-attention", r"encoder", r"decoder"],
        ),
        ("I love you → Je t'aime", [r"I love you", r"Je t['’]aime"]),
        ("output length = query length", [r"query length|length of the quer|number of quer"]),
    ],
    "07_masking": [
        ("no peeking at the future", [r"future", r"teacher forcing"]),
        (
            "causal mask and additive form",
            [r"lower[- ]triangular", r"causal", r"-inf|−inf|-∞|−∞|\\infty"],
        ),
        ("padding masks", [r"padding mask", r"attention_mask"]),
        ("combining by broadcasting", [r"broadcast", r"combin"]),
        ("fully masked rows and NaN", [r"NaN", r"fully masked"]),
        ("shift right", [r"shift"]),
        (
            "polarity table",
            [r"polarity", r"MultiheadAttention", r"key_padding_mask", r"Hugging Face"],
        ),
    ],
    "08_multi_head": [
        ("one head is not enough", [r"one head|single head"]),
        ("H heads of Dh = D / H", [r"heads", r"D_?h|head_dim|head dimension"]),
        ("split → attend → concat → W_O", [r"split", r"concat", r"W_\{?O\}?|W\^\{?O\}?|out_proj"]),
        ("shape walk-through", [r"\(B, H, T, Dh\)|B, H, T, D_?h"]),
        ("loading nn.MultiheadAttention", [r"MultiheadAttention", r"in_proj"]),
        ("per-head plots", [r"each head|per[- ]head"]),
    ],
    "09_transformer_block": [
        ("residual connections", [r"residual", r"highway"]),
        ("layer normalization", [r"layer norm", r"mean", r"variance"]),
        ("post-LN vs pre-LN", [r"post-LN", r"pre-LN", r"warm-?up"]),
        (
            "feed-forward network",
            [
                r"feed[- ]forward",
                r"ReLU",
                r"GELU",
                r"4\s*[×x·*]\s*D|4\s*D\b|four times|4\s*\\times|4\s*\\cdot",
            ],
        ),
        ("encoder and decoder layers", [r"encoder layer", r"decoder layer", r"cross-attention"]),
        ("stacking", [r"stack"]),
        (
            "architectures",
            [
                r"encoder-only|encoder only",
                r"decoder-only|decoder only",
                r"encoder[–-]decoder",
                r"BERT",
                r"GPT",
                r"T5",
            ],
        ),
        ("parameter counts", [r"parameter"]),
        ("backbone + task head", [r"backbone", r"head"]),
    ],
    "10_pretraining": [
        (
            "pretraining → fine-tuning → SFT",
            [
                r"pre-?training",
                r"fine-tuning",
                r"transfer learning",
                r"supervised fine-tuning",
                r"instruction tuning",
            ],
        ),
        (
            "masked language modelling",
            [r"masked language model", r"15\s*%", r"80\s*%", r"10\s*%", r"-100|−100"],
        ),
        ("causal language modelling", [r"next[- ]token", r"causal"]),
        ("zero/few-shot, in-context", [r"zero-shot", r"few-shot", r"in-context learning"]),
        ("chain-of-thought", [r"chain[- ]of[- ]thought"]),
        ("bias and limitations", [r"bias", r"occupation|gender"]),
    ],
    "11_evaluation": [
        ("what a benchmark is", [r"benchmark", r"metric", r"protocol"]),
        (
            "benchmark examples",
            [r"ImageNet", r"COCO", r"GLUE", r"SuperGLUE", r"SQuAD", r"PAN-X|WikiANN"],
        ),
        ("confusion matrix", [r"confusion matrix", r"normali[sz]"]),
        ("precision, recall, F1", [r"precision", r"recall", r"F1"]),
        ("averages", [r"micro", r"macro", r"weighted"]),
        ("imbalance and accuracy paradox", [r"imbalanced", r"accuracy paradox"]),
        ("NER with IOB2", [r"IOB2", r"Jeff Dean", r"entit"]),
        ("SQuAD EM and F1", [r"exact match"]),
        ("contamination and leakage", [r"contamination", r"leak"]),
    ],
    "12_benchmarking": [
        ("timing done right", [r"warm-?up", r"median", r"repeat", r"synchroni", r"thread"]),
        ("torch.utils.benchmark", [r"torch\.utils\.benchmark"]),
        ("growth with T on log–log", [r"log[–-]log", r"exponent"]),
        ("FLOPs", [r"FLOP", r"projection"]),
        ("from scratch vs fused SDPA", [r"scaled_dot_product_attention", r"fused"]),
        ("GPU", [r"GPU", r"memory[- ]bound", r"FlashAttention", r"til(e|ing)"]),
    ],
    "13_gpt": [
        (
            "decoder-only model from the course's parts",
            [
                r"decoder-only",
                r"token_embedding",
                r"position_embedding",
                r"pre-LN",
                r"causal multi-head\s+self-attention",
                r"final LayerNorm",
                r"LM head",
                r"course_lib\.gpt",
            ],
        ),
        (
            "tied embeddings",
            [r"weight tying", r"tie_weights", r"lm_head\.weight is model\.token_embedding"],
        ),
        (
            "next-token training on the shipped corpus",
            [
                r"load_corpus\(\"en\"\)",
                r"causal_lm_labels",
                r"train_gpt",
                r"held out|held-out",
                r"plot_loss_curve",
            ],
        ),
        ("AdamW, clipping, dropout", [r"AdamW", r"gradient clipping", r"dropout", r"eval\(\)"]),
        (
            "perplexity as exp of the mean cross-entropy",
            [r"perplexity", r"exp\(F\.cross_entropy", r"\\exp"],
        ),
        ("the last position predicts the next token", [r"last position", r"logits\[:, -1\]"]),
        (
            "decoding",
            [
                r"greedy",
                r"temperature",
                r"top-k",
                r"top-p",
                r"nucleus",
                r"repeat|repetition",
                r"manual_seed",
            ],
        ),
        (
            "the KV cache",
            [
                r"KV cache",
                r"quadratic",
                r"use_cache=False",
                r"assert torch\.equal\(with_cache, without\)",
                r"tokens per second|tokens/s",
                r"kv_cache_bytes",
                r"per token",
            ],
        ),
        (
            "GQA and MQA as a smaller cache",
            [
                r"grouped-query attention",
                r"multi-query attention",
                r"enable_gqa=True",
                r"F\.scaled_dot_product_attention",
            ],
        ),
        ("next to GPT-2", [r"GPT-2", r"124,439,808|124_439_808", r"more of everything"]),
    ],
}

# The functions each chapter's graded notebook asks for (SYLLABUS.md "Exercise:" lists).
EXERCISE_FUNCTIONS: dict[str, list[str]] = {
    "01_tensors": ["linear", "mse_loss_and_grad", "numerical_gradient", "sgd_step"],
    "02_tokenization": [
        "normalize",
        "pre_tokenize",
        "build_vocab",
        "encode",
        "decode",
        "get_stats",
        "merge",
        "bpe_train",
        "bpe_encode",
        "bpe_decode",
        "pad_batch",
    ],
    "03_embeddings": [
        "one_hot",
        "embedding_lookup",
        "cosine_similarity",
        "most_similar",
        "analogy",
    ],
    "04_positions": [
        "sinusoidal_positional_encoding",
        "LearnedPositionalEmbedding",
        "relative_positions",
    ],
    "05_attention": ["softmax", "attention_weights", "scaled_dot_product_attention"],
    "06_self_attention": ["SelfAttention", "CrossAttention"],
    "07_masking": [
        "causal_mask",
        "padding_mask",
        "combine_masks",
        "to_additive_mask",
        "shift_right",
    ],
    "08_multi_head": ["split_heads", "merge_heads", "MultiHeadAttention", "load_torch_mha"],
    "09_transformer_block": [
        "layer_norm",
        "FeedForward",
        "TransformerEncoderLayer",
        "count_parameters",
    ],
    "10_pretraining": [
        "mask_tokens",
        "causal_lm_labels",
        "masked_cross_entropy",
        "few_shot_prompt",
    ],
    "11_evaluation": [
        "confusion_matrix",
        "precision_recall_fscore_support",
        "get_entities",
        "entity_f1",
        "squad_exact_match",
        "squad_f1",
    ],
    "12_benchmarking": ["benchmark", "fit_power_law", "attention_flops", "attention_memory_bytes"],
    "13_gpt": [
        "perplexity",
        "top_k_filter",
        "top_p_filter",
        "sample_next_token",
        "cached_attention",
        "generate",
    ],
}

FRONT_MATTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

_KEY_TERMS = re.compile(r"^```\{admonition\} Key terms\n:class: key-terms\n(.*?)^```", re.M | re.S)
_ENTRY = re.compile(r"^- \*\*(?P<en>[^*]+)\*\* — (?P<zh>[^:]+): (?P<meaning>.+)$")
_CJK = re.compile(r"[\u3400-\u9fff]")
GLOSSARY = BOOK_DIR / "appendix" / "glossary.md"
# Titles as the contract states them ("### 05_attention — Scaled dot-product attention"); the
# vendored copy is kept equal to ../shared/SYLLABUS.md by test_syllabus_contract.
SYLLABUS_TITLES = dict(
    re.findall(
        r"^### (\d\d_\w+) — (.+)$",
        (Path(__file__).resolve().parents[1] / "data" / "SYLLABUS.md").read_text(encoding="utf-8"),
        re.M,
    )
)


def chapter_text(cid: str) -> str:
    path = BOOK_DIR / f"{cid}.md"
    if not path.is_file():
        pytest.fail(f"book/{cid}.md does not exist yet", pytrace=False)
    return path.read_text(encoding="utf-8")


def key_terms(text: str) -> list[dict[str, str]]:
    """The entries of the Key terms box: [{"en", "zh", "meaning"}]."""
    match = _KEY_TERMS.search(text)
    if not match:
        return []
    entries = []
    for line in match.group(1).strip().splitlines():
        entry = _ENTRY.match(line.strip())
        assert entry, f"malformed Key terms line (want '- **term** — 中文: meaning'): {line!r}"
        entries.append(entry.groupdict())
    return entries


def glossary_entries() -> dict[str, dict[str, str]]:
    entries = {}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if line.startswith("- "):
            entry = _ENTRY.match(line)
            assert entry, f"malformed glossary line (want '- **term** — 中文: meaning'): {line!r}"
            entries[entry["en"].lower()] = entry.groupdict()
    return entries


def prose(text: str) -> str:
    """The chapter without front matter, code cells, fenced blocks, directive options and math."""
    text = text.split("\n---\n", 1)[1] if text.startswith("---\n") else text
    text = re.sub(r"^```\{code-cell\}.*?^```", " ", text, flags=re.M | re.S)
    text = re.sub(r"^```\{literalinclude\}.*?^```", " ", text, flags=re.M | re.S)
    text = re.sub(r"^```(?!\{admonition).*?^```", " ", text, flags=re.M | re.S)
    text = re.sub(r"^:[\w-]+:.*$", " ", text, flags=re.M)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    return text


def word_count(text: str) -> int:
    return len(re.findall(r"[A-Za-z][A-Za-z'’-]*", prose(text)))


CHAPTER_IDS = book_chapters()
CONCEPT_CASES = [(cid, concept, pats) for cid in CHAPTER_IDS for concept, pats in CONCEPTS[cid]]


def test_tables_cover_every_chapter():
    assert list(CONCEPTS) == list(CHAPTERS) == list(EXERCISE_FUNCTIONS) == list(SYLLABUS_TITLES)
    assert CHAPTERS == SYLLABUS_TITLES  # the build's titles are the syllabus's


@pytest.mark.parametrize(
    "cid, concept, patterns", CONCEPT_CASES, ids=[f"{c}-{n}" for c, n, _ in CONCEPT_CASES]
)
def test_syllabus_concept_is_taught(cid, concept, patterns):
    text = chapter_text(cid)
    missing = [p for p in patterns if not re.search(p, text, re.IGNORECASE)]
    assert not missing, f"{cid}: concept '{concept}' lacks {missing}"


@pytest.mark.parametrize("cid", CHAPTER_IDS)
def test_chapter_form(cid):
    text = chapter_text(cid)
    assert text.startswith(FRONT_MATTER), f"{cid}: front matter differs from the book convention"
    number = int(cid[:2])
    title = f"# {number}. {SYLLABUS_TITLES[cid]}"
    assert re.search(rf"^{re.escape(title)}$", text, re.M), f"{cid}: title must be {title!r}"
    assert "```{code-cell} ipython3" in text, f"{cid}: no code cells"
    assert re.search(r"^#+ .*Pitfall", text, re.M | re.I), f"{cid}: no Pitfalls section"
    exercise = text.split("\n## Exercise\n", 1)
    assert len(exercise) == 2, f"{cid}: no '## Exercise' section"
    assert f"{{doc}}`exercises/{cid}`" in exercise[1], f"{cid}: Exercise must link exercises/{cid}"
    for fn in EXERCISE_FUNCTIONS[cid]:
        assert f"`{fn}`" in exercise[1], f"{cid}: the Exercise section must name `{fn}`"
    if number >= 4:
        assert "frame_slider(" in text, f"{cid}: chapters from 04 on need an interactive figure"
    assert "outputs" not in text.split("\n---\n", 1)[0], "outputs are never committed"


@pytest.mark.parametrize("cid", CHAPTER_IDS)
def test_key_terms_box_is_bilingual(cid):
    entries = key_terms(chapter_text(cid))
    assert len(entries) >= 5, f"{cid}: Key terms box missing or has fewer than 5 terms"
    for e in entries:
        assert _CJK.search(e["zh"]), f"{cid}: {e['en']!r} has no Chinese name"
        assert re.search(r"[A-Za-z]", e["en"]), f"{cid}: {e['zh']!r} has no English name"
        assert e["meaning"].strip(), f"{cid}: {e['en']!r} has no meaning"


@pytest.mark.parametrize("cid", CHAPTER_IDS)
def test_every_key_term_is_in_the_glossary(cid):
    glossary = glossary_entries()
    for e in key_terms(chapter_text(cid)):
        entry = glossary.get(e["en"].lower())
        assert entry, f"{cid}: key term {e['en']!r} is missing from appendix/glossary.md"
        assert entry["zh"] == e["zh"], (
            f"{e['en']!r}: glossary says {entry['zh']!r} but {cid} says {e['zh']!r}; make them agree"
        )


def test_glossary_lines_are_bilingual_and_sorted():
    entries = glossary_entries()
    assert len(entries) >= 50
    for e in entries.values():
        assert _CJK.search(e["zh"]), f"glossary: {e['en']!r} has no Chinese name"
        assert re.search(r"[A-Za-z]", e["en"]), f"glossary: {e['zh']!r} has no English name"
        assert len(e["meaning"].split()) >= 3, f"glossary: {e['en']!r} needs a line of meaning"
    keys = [re.sub(r"[^a-z0-9]", "", k) for k in entries]
    assert keys == sorted(keys), "glossary entries must be in alphabetical order"


@pytest.mark.parametrize("cid", CHAPTER_IDS)
def test_chapter_length(cid):
    words = word_count(chapter_text(cid))
    assert 1500 <= words <= 3500, f"{cid}: {words} words of prose; the book wants 1,500–3,500"


def test_prose_counter_ignores_code_and_math():
    sample = (
        FRONT_MATTER
        + "# 1. T\n\nOne two three.\n\n```{code-cell} ipython3\nx = 1\n```\n\n$$\na + b\n$$\n"
    )
    assert word_count(sample) == 4  # "T", "One", "two", "three"


def test_appendix_pages_exist():
    for page in ("setup", "notation", "glossary", "instructors", "references"):
        path = BOOK_DIR / "appendix" / f"{page}.md"
        assert path.is_file() and path.read_text(encoding="utf-8").startswith("# ")


def test_glossary_covers_its_parser():
    line = "- **attention weights** — 注意力权重: the softmax of the scores."
    assert _ENTRY.match(line)["zh"] == "注意力权重"
    assert _ENTRY.match("- **attention weights** - 注意力权重: x") is None  # hyphen, not em dash
    assert _CJK.search("attention") is None


def _chapter_paths() -> list[Path]:
    return sorted(BOOK_DIR.glob("[0-9][0-9]_*.md"))


def test_no_unknown_chapter_files():
    for path in _chapter_paths():
        assert path.stem in CHAPTERS, f"{path.name} is not a syllabus chapter id"


# The end-of-chapter questions: "## Check your understanding" after the Pitfalls and before the
# Key terms box, with 4-6 numbered questions, each followed by its answer in a collapsed dropdown.
_QUESTIONS = re.compile(
    r"^## Check your understanding\n(.*?)(?=^```\{admonition\} Key terms)", re.M | re.S
)
_QUESTION = re.compile(
    r"^\*\*(?P<n>\d+)\.\*\* (?P<q>.+?)\n\n```\{dropdown\} Answer\n(?P<a>.+?)\n```$", re.M | re.S
)


@pytest.mark.parametrize("cid", CHAPTER_IDS)
def test_end_of_chapter_questions(cid):
    text = chapter_text(cid)
    section = _QUESTIONS.search(text)
    assert section, f"{cid}: no '## Check your understanding' section right before the Key terms"
    pitfalls = re.search(r"^#+ .*Pitfall", text, re.M | re.I)
    assert pitfalls and pitfalls.start() < section.start(), f"{cid}: questions come after Pitfalls"
    questions = list(_QUESTION.finditer(section.group(1)))
    assert 4 <= len(questions) <= 6, f"{cid}: {len(questions)} questions; the book wants 4-6"
    assert [int(m["n"]) for m in questions] == list(range(1, len(questions) + 1))
    for m in questions:
        assert m["q"].rstrip().endswith("?"), f"{cid}: question {m['n']} must end with '?'"
        assert len(m["a"].split()) >= 8, f"{cid}: the answer to question {m['n']} is too short"
    # Every answer is inside a dropdown: no other fenced block or stray answer text.
    assert section.group(1).count("```{dropdown}") == len(questions)

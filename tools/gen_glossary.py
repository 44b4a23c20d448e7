"""Rebuild book/appendix/glossary.md from the Key terms box of every chapter.

Run from the repository root after a chapter changes its Key terms: python tools/gen_glossary.py.
Terms that the chapters teach without listing in their box are kept in EXTRA below.
"""

import re
from pathlib import Path

entries = {}
box = re.compile(r"^```\{admonition\} Key terms\n:class: key-terms\n(.*?)^```", re.M | re.S)
line = re.compile(r"^- \*\*(.+?)\*\* — (.+?): (.+)$")
for f in sorted(Path("book").glob("[0-9][0-9]_*.md")):
    m = box.search(f.read_text())
    if not m:
        continue
    for l in m.group(1).splitlines():
        mm = line.match(l.strip())
        if mm:
            en, zh, meaning = mm.groups()
            entries.setdefault(en.lower(), (en, zh, meaning, f.stem))
EXTRA = [
    (
        "positional encoding",
        "位置编码",
        "a vector added to each token embedding that tells the model the token's position.",
        "04_positions",
    ),
    (
        "sinusoidal positional encoding",
        "正弦位置编码",
        'the fixed encoding of "Attention Is All You Need": sines on even and cosines on odd dimensions at geometric frequencies.',
        "04_positions",
    ),
    (
        "learned position embedding",
        "可学习位置嵌入",
        "a trained (max_len, D) table with one vector per absolute position.",
        "04_positions",
    ),
    (
        "relative position",
        "相对位置",
        "the offset j − i between a key and a query, used instead of absolute positions.",
        "04_positions",
    ),
    (
        "permutation equivariance",
        "置换等变性",
        "reordering the inputs only reorders the outputs the same way; attention without positions has it.",
        "04_positions",
    ),
    (
        "pretraining",
        "预训练",
        "training on a large unlabelled corpus with a self-supervised objective before any task.",
        "10_pretraining",
    ),
    (
        "fine-tuning",
        "微调",
        "continuing to train a pretrained model on labelled data for a task.",
        "10_pretraining",
    ),
    (
        "transfer learning",
        "迁移学习",
        "reusing what a model learned on one task or corpus for another.",
        "10_pretraining",
    ),
    (
        "supervised fine-tuning (SFT)",
        "监督微调",
        "fine-tuning on (prompt, response) pairs written or checked by people.",
        "10_pretraining",
    ),
    (
        "instruction tuning",
        "指令微调",
        "supervised fine-tuning on many tasks phrased as instructions.",
        "10_pretraining",
    ),
    (
        "masked language modelling (MLM)",
        "掩码语言建模",
        "predicting tokens hidden by [MASK] from the context on both sides.",
        "10_pretraining",
    ),
    (
        "causal language modelling",
        "因果语言建模",
        "predicting each next token from the tokens before it.",
        "10_pretraining",
    ),
    (
        "zero-shot",
        "零样本",
        "doing a task from an instruction alone, with no examples.",
        "10_pretraining",
    ),
    (
        "few-shot",
        "少样本",
        "doing a task from a handful of examples given in the prompt.",
        "10_pretraining",
    ),
    (
        "in-context learning",
        "上下文学习",
        "learning a task from demonstrations in the prompt, with no weight updates.",
        "10_pretraining",
    ),
    (
        "chain-of-thought prompting",
        "思维链提示",
        "asking a model to write out intermediate reasoning steps before the answer.",
        "10_pretraining",
    ),
    (
        "benchmark",
        "基准",
        "a fixed data set, metric and protocol that make comparisons between models fair.",
        "11_evaluation",
    ),
    (
        "confusion matrix",
        "混淆矩阵",
        "a table of counts with true classes as rows and predicted classes as columns.",
        "11_evaluation",
    ),
    (
        "precision",
        "精确率",
        "of the items predicted as a class, the fraction that truly belong to it.",
        "11_evaluation",
    ),
    (
        "recall",
        "召回率",
        "of the items that truly belong to a class, the fraction predicted as it.",
        "11_evaluation",
    ),
    ("F1 score", "F1 分数", "the harmonic mean of precision and recall.", "11_evaluation"),
    (
        "accuracy paradox",
        "准确率悖论",
        "high accuracy from always predicting the majority class of imbalanced data.",
        "11_evaluation",
    ),
    (
        "named entity recognition (NER)",
        "命名实体识别",
        "tagging the spans of text that name people, organisations, places and so on.",
        "11_evaluation",
    ),
    (
        "exact match",
        "精确匹配",
        "1 if the normalized prediction equals the normalized answer, else 0.",
        "11_evaluation",
    ),
    (
        "data contamination",
        "数据污染",
        "test examples leaking into the training data, which inflates scores.",
        "11_evaluation",
    ),
    (
        "warm-up run",
        "预热运行",
        "untimed runs before measuring, so caches, allocators and kernels are ready.",
        "12_benchmarking",
    ),
    (
        "median",
        "中位数",
        "the middle value of the sorted measurements; robust to outliers.",
        "12_benchmarking",
    ),
    (
        "FLOPs",
        "浮点运算次数",
        "the number of floating-point operations; a multiply-add counts as two.",
        "12_benchmarking",
    ),
    (
        "memory-bound",
        "内存受限",
        "limited by moving data rather than by arithmetic.",
        "12_benchmarking",
    ),
    (
        "FlashAttention",
        "FlashAttention 算法",
        "a fused attention kernel that tiles the computation so the T × T matrix is never stored.",
        "12_benchmarking",
    ),
]
for en, zh, meaning, ch in EXTRA:
    entries.setdefault(en.lower(), (en, zh, meaning, ch))
out = []
letter = None
for key in sorted(entries, key=lambda k: re.sub(r"[^a-z0-9]", "", k)):
    en, zh, meaning, ch = entries[key]
    first = re.sub(r"[^a-z0-9]", "", key)[0].upper()
    if first != letter:
        letter = first
        out.append(f"\n## {letter}\n")
    out.append(f"- **{en}** — {zh}: {meaning} (ch. {int(ch[:2])})")
g = Path("book/appendix/glossary.md")
head = g.read_text().split("\n## A\n")[0].rstrip("\n") + "\n"
g.write_text(head + "\n".join(out) + "\n")
print(len(entries), "entries")

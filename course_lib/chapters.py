"""The one list of chapters: id (book page, notebook and assignment id), reference module, title.

Everything that needs the chapters reads them here: :data:`course_lib.CHAPTER_MODULES` (the
grading engine), the book build's titles (:mod:`course_lib.authoring.bookbuild`), the tests.
The order is SYLLABUS.md's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    """One chapter: ``id`` names its page ``book/<id>.md`` and its notebook
    ``assignments/<id>.py``; ``module`` its reference ``course_lib/<module>.py``."""

    id: str
    module: str
    title: str


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("01_tensors", "tensors", "Tensors, gradients and the training loop"),
    Chapter("02_tokenization", "tokenization", "From text to token ids"),
    Chapter("03_embeddings", "embeddings", "Embeddings"),
    Chapter("04_positions", "positions", "Position information"),
    Chapter("05_attention", "attention", "Scaled dot-product attention"),
    Chapter("06_self_attention", "self_attention", "Self-attention and cross-attention"),
    Chapter("07_masking", "masking", "Masks: causal and padding"),
    Chapter("08_multi_head", "multi_head", "Multi-head attention"),
    Chapter("09_transformer_block", "transformer", "The transformer block and architectures"),
    Chapter("10_pretraining", "pretraining", "Pretraining objectives and adaptation"),
    Chapter("11_evaluation", "evaluation", "Benchmarks and evaluation metrics"),
    Chapter("12_benchmarking", "benchmarking", "Measuring performance"),
    Chapter("13_gpt", "gpt", "A GPT from the course's parts: training, sampling and the KV cache"),
)

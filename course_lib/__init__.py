"""Reference implementations for the transformer fundamentals course.

One module per chapter of the book (see ``SYLLABUS.md``):

=====================  ==============================
chapter                module
=====================  ==============================
01_tensors             :mod:`course_lib.tensors`
02_tokenization        :mod:`course_lib.tokenization`
03_embeddings          :mod:`course_lib.embeddings`
04_positions           :mod:`course_lib.positions`
05_attention           :mod:`course_lib.attention`
06_self_attention      :mod:`course_lib.self_attention`
07_masking             :mod:`course_lib.masking`
08_multi_head          :mod:`course_lib.multi_head`
09_transformer_block   :mod:`course_lib.transformer`
10_pretraining         :mod:`course_lib.pretraining`
11_evaluation          :mod:`course_lib.evaluation`
12_benchmarking        :mod:`course_lib.benchmarking`
13_gpt                 :mod:`course_lib.gpt`
=====================  ==============================

Plus :mod:`course_lib.viz` (figures), :mod:`course_lib.data` (small shipped data sets),
:mod:`course_lib.grading` (checkers used by the graded notebooks) and :mod:`course_lib.cli`
(the ``course`` command). Submodules are imported explicitly, so ``import course_lib`` stays
cheap.
"""

__version__ = "0.1.0"

CHAPTER_MODULES: dict[str, str] = {
    "01_tensors": "tensors",
    "02_tokenization": "tokenization",
    "03_embeddings": "embeddings",
    "04_positions": "positions",
    "05_attention": "attention",
    "06_self_attention": "self_attention",
    "07_masking": "masking",
    "08_multi_head": "multi_head",
    "09_transformer_block": "transformer",
    "10_pretraining": "pretraining",
    "11_evaluation": "evaluation",
    "12_benchmarking": "benchmarking",
    "13_gpt": "gpt",
}

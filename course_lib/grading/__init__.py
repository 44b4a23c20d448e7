"""What a test cell imports (``from course_lib import grading as G``): the checkers for the
graded notebooks, and the conventions every graded notebook follows.

A test cell compares the student's function with the reference in ``course_lib.<module>`` and,
when they disagree, says *what* is wrong (shape and which axis, dtype, NaN, where and by how
much the values are off, softmax over the wrong axis, a missing scale, an inverted mask, the
future leaking into the past, an argument modified in place, a forbidden built-in) without
printing the answer.

Conventions for graded notebooks (chapters 01–13)
=================================================

Files. The instructor source of chapter ``<id>`` is ``assignments/<id>.py`` (percent
format, see ``tools/build_solutions.py``); ``python tools/build_solutions.py`` writes
``solutions/<id>/<id>.ipynb`` (nbgrader source, outputs cleared) and ``course release <id>``
(``nbgrader generate_assignment``) writes the student notebook ``exercises/<id>/<id>.ipynb``.
Never edit either ``.ipynb`` by hand; tests fail when they drift from their sources.

Cells, in order:

- a recap (markdown) linking to the chapter page ``book/<id>.md`` (published as ``<id>.html``);
- one locked *setup* cell with the student-facing imports (torch, math, nn ...), nothing else;
- per graded function or class (the SYLLABUS Exercise list, nothing more): one *solution* cell
  whose nbgrader ``grade_id`` is exactly the function or class name; the signature and
  docstring stay visible, ``### BEGIN SOLUTION`` / ``### END SOLUTION`` surround the body only
  (in a class: the body of each method);
- after it, one or more locked *test* cells with points, ``grade_id`` ``test_<name>`` or
  ``test_<name>-<part>`` (several cells give partial credit for independent parts). A test
  cell tests only ``<name>``, so a mistake elsewhere cannot cost points here;
- at least one *demo* cell (plot or ipywidgets explorer) driven by the student's function,
  never graded; it catches ``NotImplementedError`` and prints a hint instead.

A notebook totals 10–20 points.

Test cells:

- start with ``from course_lib import grading as G`` and ``from course_lib import <module> as
  ref``; no other imports (they are re-run by the grader for every student: keep them light);
- call the student's code only through a checker of this package (:func:`check_function`,
  :func:`check_module`, :func:`check_raises`, :func:`check_no_future_leak`, :func:`call`):
  they capture warnings and stderr (nbgrader gives a cell 0 points for *any* stderr output,
  so a harmless warning must not cost marks), block forbidden functions, notice arguments
  modified in place and turn ``NotImplementedError`` into "not implemented yet";
- every assertion is ``assert G.check_...(...)``: a checker returns ``True`` or raises
  :class:`GradingError` (an ``AssertionError``) with the diagnosis; a cell ends with an
  ``assert``, never a bare value;
- visible tests first: small cases explained in comments, fixed seeds
  (``torch.Generator().manual_seed(0)``);
- then ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``: randomized cases from
  :func:`hidden_generator` / :func:`hidden_random`, seeded by the instructor's
  ``COURSE_GRADING_SEED`` (environment variable, read at grading time, never committed;
  self-study default :data:`DEFAULT_SEED`), plus edge cases;
- each cell runs in well under 2 s.

Mistake hypotheses (:class:`Mistake`) turn "values are off" into "this looks like the softmax
over the wrong axis": when the student's output disagrees with the reference but matches what
a known mistake would give, its description is added to the message. The attention mistakes
(:func:`attention_mistakes`, :func:`projection_mistakes`) are shared by the later chapters.

Where things live
=================

- :mod:`.seeds` (hidden-test seeds), :mod:`.diagnose` (what is wrong with a result, the failure
  message), :mod:`.calling` (:func:`call`: quiet, no in-place changes), :mod:`.checkers` (the
  general ``check_*``), :mod:`.clock` (chapter 12's fake clock);
- :mod:`.forbidden`: the one forbidden-call API (:func:`forbid`, the ``NO_*`` lists,
  :func:`loaded_only`, and :func:`~.forbidden.route_remote` for ``course grade``);
- :mod:`.mistakes`: one module per reference module it mirrors (chapter 07's mask mistakes are
  ``course_lib/grading/mistakes/masking.py``), with that chapter's special checkers.

Everything in ``__all__`` is re-exported here; ``course_lib.grading_extra`` only forwards to
this package, for notebooks handed out before it existed.
"""

from course_lib.grading import forbidden  # noqa: F401 - the module, for course grade
from course_lib.grading.calling import call, quiet
from course_lib.grading.checkers import (
    Case,
    Mistake,
    check_function,
    check_loader,
    check_module,
    check_no_future_leak,
    check_numpy_function,
    check_raises,
)
from course_lib.grading.diagnose import GradingError, check_close, describe, diagnose
from course_lib.grading.forbidden import (
    NO_AUTOGRAD,
    NO_METRIC_LIBRARIES,
    NO_SOFTMAX,
    NO_TORCH_ATTENTION,
    NO_TORCH_CROSS_ENTROPY,
    NO_TORCH_LAYER_NORM,
    forbid,
    loaded_only,
    no_reference,
)
from course_lib.grading.mistakes.attention import attention_mistakes, softmax_mistakes
from course_lib.grading.mistakes.benchmarking import (
    check_benchmark,
    flops_mistakes,
    memory_mistakes,
    power_law_mistakes,
)
from course_lib.grading.mistakes.evaluation import (
    confusion_matrix_mistakes,
    entity_f1_mistakes,
    get_entities_mistakes,
    prfs_mistakes,
    squad_em_mistakes,
    squad_f1_mistakes,
)
from course_lib.grading.mistakes.gpt import (
    TinyLM,
    cached_attention_mistakes,
    check_cached_attention,
    check_generate,
    check_logits_filter,
    check_sample_next_token,
    perplexity_mistakes,
    top_k_mistakes,
    top_p_mistakes,
)
from course_lib.grading.mistakes.masking import (
    additive_mask_mistakes,
    causal_mask_mistakes,
    combine_masks_mistakes,
    padding_mask_mistakes,
    shift_right_mistakes,
)
from course_lib.grading.mistakes.multi_head import (
    load_mha_mistakes,
    merge_heads_mistakes,
    mha_mistakes,
    split_heads_mistakes,
)
from course_lib.grading.mistakes.pretraining import (
    causal_lm_labels_mistakes,
    check_mask_tokens,
    cross_entropy_mistakes,
    few_shot_mistakes,
)
from course_lib.grading.mistakes.self_attention import projection_mistakes
from course_lib.grading.mistakes.transformer import (
    count_parameters_mistakes,
    encoder_layer_mistakes,
    feed_forward_mistakes,
    layer_norm_mistakes,
)
from course_lib.grading.seeds import (
    DEFAULT_SEED,
    SEED_ENV,
    grading_seed,
    hidden_generator,
    hidden_random,
)
from course_lib.grading.summary import check_all  # G.check_all(): the table course check prints

__all__ = [
    "check_all",
    "SEED_ENV",
    "DEFAULT_SEED",
    "grading_seed",
    "hidden_generator",
    "hidden_random",
    "GradingError",
    "describe",
    "diagnose",
    "check_close",
    "quiet",
    "call",
    "forbid",
    "no_reference",
    "loaded_only",
    "NO_AUTOGRAD",
    "NO_SOFTMAX",
    "NO_TORCH_ATTENTION",
    "NO_TORCH_LAYER_NORM",
    "NO_TORCH_CROSS_ENTROPY",
    "NO_METRIC_LIBRARIES",
    "Case",
    "Mistake",
    "check_function",
    "check_raises",
    "check_module",
    "check_no_future_leak",
    "check_numpy_function",
    "check_loader",
    "softmax_mistakes",
    "attention_mistakes",
    "check_benchmark",
    "power_law_mistakes",
    "flops_mistakes",
    "memory_mistakes",
    "confusion_matrix_mistakes",
    "prfs_mistakes",
    "get_entities_mistakes",
    "entity_f1_mistakes",
    "squad_em_mistakes",
    "squad_f1_mistakes",
    "perplexity_mistakes",
    "top_k_mistakes",
    "top_p_mistakes",
    "check_logits_filter",
    "check_sample_next_token",
    "cached_attention_mistakes",
    "check_cached_attention",
    "TinyLM",
    "check_generate",
    "causal_mask_mistakes",
    "padding_mask_mistakes",
    "combine_masks_mistakes",
    "additive_mask_mistakes",
    "shift_right_mistakes",
    "split_heads_mistakes",
    "merge_heads_mistakes",
    "mha_mistakes",
    "load_mha_mistakes",
    "check_mask_tokens",
    "causal_lm_labels_mistakes",
    "cross_entropy_mistakes",
    "few_shot_mistakes",
    "projection_mistakes",
    "layer_norm_mistakes",
    "feed_forward_mistakes",
    "encoder_layer_mistakes",
    "count_parameters_mistakes",
]

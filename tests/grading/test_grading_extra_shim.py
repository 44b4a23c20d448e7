"""Notebooks handed out before ``course_lib.grading`` became a package import
``from course_lib import grading_extra as GX``: every name they could use still works, and is
the very object of ``course_lib.grading``."""

from __future__ import annotations

import subprocess
import sys

from course_lib import grading as G
from course_lib import grading_extra as GX

# grading_extra.__all__ when chapters 07-13 were first released (frozen: it is a promise).
RELEASED = """
check_numpy_function check_loader check_mask_tokens check_benchmark NO_TORCH_LAYER_NORM
NO_TORCH_CROSS_ENTROPY NO_METRIC_LIBRARIES loaded_only causal_mask_mistakes padding_mask_mistakes
combine_masks_mistakes additive_mask_mistakes shift_right_mistakes split_heads_mistakes
merge_heads_mistakes mha_mistakes load_mha_mistakes layer_norm_mistakes feed_forward_mistakes
encoder_layer_mistakes count_parameters_mistakes causal_lm_labels_mistakes cross_entropy_mistakes
few_shot_mistakes confusion_matrix_mistakes prfs_mistakes get_entities_mistakes
entity_f1_mistakes squad_em_mistakes squad_f1_mistakes power_law_mistakes flops_mistakes
memory_mistakes perplexity_mistakes top_k_mistakes top_p_mistakes check_logits_filter
check_sample_next_token cached_attention_mistakes check_cached_attention TinyLM check_generate
""".split()


def test_every_released_name_is_forwarded_to_grading() -> None:
    assert len(RELEASED) == 42
    missing = [n for n in RELEASED if not hasattr(GX, n)]
    assert missing == []
    assert all(getattr(GX, n) is getattr(G, n) for n in RELEASED)
    assert set(RELEASED) <= set(G.__all__) and GX.__all__ == G.__all__


def test_an_old_test_cell_runs_silently() -> None:
    cell = (
        "from course_lib import grading as G\n"
        "from course_lib import grading_extra as GX\n"
        "from course_lib import masking as ref\n"
        "assert G.check_function(ref.causal_mask, ref.causal_mask, [G.Case(3)],\n"
        "                        mistakes=GX.causal_mask_mistakes())\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", cell], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == done.stderr == ""

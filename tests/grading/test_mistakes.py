"""Every known mistake in ``course_lib.grading.mistakes`` really is a mistake: on at least one of a
few small inputs its result differs from the reference's, so a checker can tell it apart (a
"mistake" that agrees with the reference everywhere would name a cause for a correct answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from course_lib import (
    attention,
    benchmarking,
    evaluation,
    gpt,
    masking,
    multi_head,
    pretraining,
    self_attention,
    transformer,
)
from course_lib import grading as G


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed))


Q, K, V = randn(2, 3, 4, seed=1), randn(2, 5, 4, seed=2), randn(2, 5, 6, seed=3)
MASK = torch.rand(3, 5, generator=gen(4)) > 0.3
MASK[:, 0] = True
MASK4 = (torch.rand(4, 4, generator=gen(5)) > 0.4) | torch.eye(4, dtype=torch.bool)
TAGS_T = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "I-ORG", "B-PER"]]
TAGS_P = [["B-PER", "O", "O", "B-LOC"], ["I-ORG", "O", "B-ORG", "B-PER"]]
Y_T, Y_P = [0, 1, 2, 2, 1, 0, 3], [0, 2, 2, 1, 1, 0, 0]
LOGITS = torch.tensor([[4.0, 0.0, 4.0, 4.0, 1.0, -1.0], [0.5, 2.0, -3.0, 1.0, 1.0, 0.0]])
PPL_T = torch.tensor([[1, 2, 0, -100], [3, 3, 1, 2]])


class KW(dict):
    """Keyword arguments, as the last element of an input tuple."""


def _call(fn: Callable, *args: Any) -> Any:
    if args and isinstance(args[-1], KW):
        return fn(*args[:-1], **args[-1])
    return fn(*args)


def attn_args(value: bool) -> list[tuple]:
    base = [(Q, K), (Q, K, MASK), (Q, K[:, :3], None, True), (Q, K, MASK.logical_not())]
    base += [(Q, K, None, False, KW(scale=0.7)), (Q, K, MASK.float() * -3.0)]
    if not value:
        return base
    return [(q, k, V[:, : k.size(1)], *rest) for q, k, *rest in base]


def qkv_cache(t_past: int) -> tuple:
    q, k, v = randn(2, 2, 7, 4, seed=5), randn(2, 2, 7, 4, seed=6), randn(2, 2, 7, 4, seed=7)
    return (
        q[:, :, t_past:],
        k[:, :, t_past:],
        v[:, :, t_past:],
        k[:, :, :t_past],
        v[:, :, :t_past],
    )


PAD = torch.tensor([[1, 1, 0], [1, 0, 0]])
SENTENCES = [["B-PER", "O", "O", "O"]] * 3
PRFS = [
    (Y_T, Y_P, KW(average=a, labels=lab))
    for a in (None, "micro", "macro", "weighted")
    for lab in (None, [3, 1, 0, 5])
] + [(Y_T, Y_P, KW(average="macro", zero_division=1.0, labels=[0, 1, 2, 3, 6]))]

# factory -> (reference, the inputs to try, the factory)
FUNCTIONS: dict[str, tuple[Callable, Callable[[], list[tuple]], Callable[[], list]]] = {
    "softmax": (
        attention.softmax,
        lambda: [
            (randn(2, 3, 4, 5),),
            (randn(2, 3, 4, 5), 0),
            (randn(3, 3),),
            (randn(3, 3), 0),
            (randn(2, 4, 4), 1),
        ],
        G.softmax_mistakes,
    ),
    "attention_weights": (
        attention.attention_weights,
        lambda: attn_args(False),
        lambda: G.attention_mistakes(with_value=False),
    ),
    "attention": (
        attention.scaled_dot_product_attention,
        lambda: attn_args(True),
        lambda: G.attention_mistakes(with_value=True),
    ),
    "causal_mask": (masking.causal_mask, lambda: [(4,), (3, 5), (5, 3)], G.causal_mask_mistakes),
    "padding_mask": (masking.padding_mask, lambda: [(PAD,)], G.padding_mask_mistakes),
    "combine_masks": (
        masking.combine_masks,
        lambda: [
            (masking.causal_mask(3), masking.padding_mask(PAD)),
            (None, masking.causal_mask(3)),
            (
                masking.causal_mask(3),
                masking.padding_mask(PAD),
                torch.rand(3, 3, generator=gen(8)) > 0.5,
            ),
        ],
        G.combine_masks_mistakes,
    ),
    "to_additive_mask": (
        masking.to_additive_mask,
        lambda: [(masking.causal_mask(4),), (masking.causal_mask(3), torch.float16)],
        G.additive_mask_mistakes,
    ),
    "shift_right": (
        masking.shift_right,
        lambda: [(torch.tensor([[5, 6, 2, 7], [8, 3, 4, 9]]), 1)],
        G.shift_right_mistakes,
    ),
    "split_heads": (
        multi_head.split_heads,
        lambda: [(randn(2, 3, 8), 2), (randn(1, 4, 6), 3)],
        G.split_heads_mistakes,
    ),
    "merge_heads": (
        multi_head.merge_heads,
        lambda: [(randn(2, 2, 3, 4),), (randn(1, 3, 4, 2),)],
        G.merge_heads_mistakes,
    ),
    "layer_norm": (
        transformer.layer_norm,
        lambda: [
            (randn(2, 3, 6) * 3 + 1, randn(6, seed=1), randn(6, seed=2)),
            (randn(4, 5), randn(5, seed=3), randn(5, seed=4), 0.5),
        ],
        G.layer_norm_mistakes,
    ),
    "count_parameters": (
        transformer.count_parameters,
        lambda: [(frozen(),), (frozen(), False)],
        G.count_parameters_mistakes,
    ),
    "causal_lm_labels": (
        pretraining.causal_lm_labels,
        lambda: [
            (torch.tensor([[5, 6, 7, 0]]), torch.tensor([[1, 1, 1, 0]])),
            (torch.tensor([[5, 6, 7]]),),
        ],
        G.causal_lm_labels_mistakes,
    ),
    "cross_entropy": (
        pretraining.masked_cross_entropy,
        lambda: [
            (randn(2, 4, 6), torch.tensor([[1, -100, 3, 0], [-100, 5, -100, 2]])),
            (randn(3, 5), torch.tensor([0, 4, 7]), 7),
        ],
        G.cross_entropy_mistakes,
    ),
    "few_shot": (
        pretraining.few_shot_prompt,
        lambda: [
            ([("cat", "chat"), ("dog", "chien")], "bird", "Translate to French."),
            ([("cat", "chat")], "bird"),
        ],
        G.few_shot_mistakes,
    ),
    "confusion_matrix": (
        evaluation.confusion_matrix,
        lambda: [
            (Y_T, Y_P),
            (Y_T, Y_P, KW(normalize="true")),
            (Y_T, Y_P, KW(normalize="pred")),
            (Y_T, Y_P, KW(labels=[3, 1, 0, 2, 5], normalize="all")),
            ([1, 1, 2], [1, 2, 2], KW(labels=[2, 1, 0], normalize="true")),
        ],
        G.confusion_matrix_mistakes,
    ),
    "prfs": (evaluation.precision_recall_fscore_support, lambda: PRFS, G.prfs_mistakes),
    "get_entities": (
        evaluation.get_entities,
        lambda: [
            (TAGS_T[0] + TAGS_T[1],),
            (TAGS_P[0] + TAGS_P[1],),
            (["I-PER", "I-PER", "B-LOC", "I-ORG"],),
        ],
        G.get_entities_mistakes,
    ),
    "entity_f1": (
        evaluation.entity_f1,
        lambda: [
            (TAGS_T, TAGS_P),
            (TAGS_P, TAGS_T),
            (TAGS_T + SENTENCES, TAGS_P + SENTENCES),
            ([["B-PER", "O"], ["O", "O"]], [["O", "O"], ["B-PER", "O"]]),
        ],
        G.entity_f1_mistakes,
    ),
    "squad_em": (
        evaluation.squad_exact_match,
        lambda: [("The  Cat!", "cat"), ("a cat", "Cat"), ("the cat sat", "cat sat")],
        G.squad_em_mistakes,
    ),
    "squad_f1": (
        evaluation.squad_f1,
        lambda: [
            ("the cat sat on the mat", "a cat sat"),
            ("Cat, cat!", "the cat"),
            ("dog", "cat"),
            ("", ""),
            ("cat cat dog", "cat cat cat"),
        ],
        G.squad_f1_mistakes,
    ),
    "power_law": (
        benchmarking.fit_power_law,
        lambda: [([64, 128, 256, 512], [1e-3, 4.1e-3, 1.6e-2, 6.5e-2])],
        G.power_law_mistakes,
    ),
    "flops": (
        benchmarking.attention_flops,
        lambda: [(2, 4, 16, 8), (1, 1, 3, 5)],
        G.flops_mistakes,
    ),
    "memory": (
        benchmarking.attention_memory_bytes,
        lambda: [(2, 4, 16, torch.float32), (1, 2, 8, torch.float16)],
        G.memory_mistakes,
    ),
    "perplexity": (
        gpt.perplexity,
        lambda: [(randn(2, 4, 5), PPL_T), (randn(2, 4, 5), PPL_T.clamp(min=0), 0)],
        G.perplexity_mistakes,
    ),
    "top_k": (gpt.top_k_filter, lambda: [(LOGITS, 2), (LOGITS, 1), (LOGITS, 9)], G.top_k_mistakes),
    "top_p": (
        gpt.top_p_filter,
        lambda: [(LOGITS, 0.5), (LOGITS, 0.9), (LOGITS, 0.01)],
        G.top_p_mistakes,
    ),
    "cached_attention": (
        gpt.cached_attention,
        lambda: [qkv_cache(0), qkv_cache(3), qkv_cache(6)],
        G.cached_attention_mistakes,
    ),
}


def frozen() -> torch.nn.Module:
    """Frozen weights, a buffer and one weight tied between two layers."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 4))
    net.append(torch.nn.Linear(4, 4))
    net[3].weight = net[2].weight
    net[0].weight.requires_grad_(False)
    net.register_buffer("steps", torch.zeros(5))
    return net


def _differs(wrong: Callable[[], Any], expected: Any) -> bool:
    try:
        with G.quiet():
            got = wrong()
    except Exception:  # noqa: BLE001 - cannot happen for these arguments: try the next input
        return False
    if isinstance(got, str) or isinstance(expected, str):
        return got != expected
    got, expected = _torch(got), _torch(expected)
    return G.diagnose(got, expected, rtol=1e-5, atol=1e-7) is not None


def _torch(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return type(value)(_torch(v) for v in value)
    if isinstance(value, np.ndarray | np.generic):
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    return value


@pytest.mark.parametrize("factory", sorted(FUNCTIONS))
def test_each_function_mistake_changes_the_reference_output(factory: str) -> None:
    reference, inputs, make = FUNCTIONS[factory]
    mistakes = make()
    assert mistakes, factory
    cases = inputs()
    expected = [_call(reference, *args) for args in cases]
    same = [
        m.description
        for m in mistakes
        if not any(_differs(lambda m=m, a=a: _call(m.fn, *a), e) for a, e in zip(cases, expected))
    ]
    assert same == [], f"{factory}: these 'mistakes' agree with the reference: {same}"


def _module(cls: type, seed: int, **kwargs: Any) -> torch.nn.Module:
    """The reference module with every parameter random (a fresh LayerNorm is the identity)."""
    module = cls(**kwargs).eval()
    g = gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module


X8 = randn(2, 3, 8)
MHA_CASES = [
    (X8, X8, X8, None, False, True),
    (X8, X8, X8, None, True, True),
    (X8, randn(2, 5, 8), randn(2, 5, 8), MASK, False, True),
]
ENCODER_CASES = [(randn(2, 4, 8),), (randn(2, 4, 8), masking.causal_mask(4))]

# factory -> ([(module builder, the forward inputs to try)], the factory)
MODULES: dict[
    str, tuple[list[tuple[Callable[[], torch.nn.Module], list[tuple]]], Callable[[], list]]
] = {
    "projection_self": (
        [
            (
                lambda: _module(
                    self_attention.SelfAttention, 0, d_model=6, d_k=3, d_v=3, bias=True
                ),
                [(randn(2, 4, 6),), (randn(2, 4, 6), MASK4), (randn(2, 4, 6), None, True)],
            )
        ],
        lambda: G.projection_mistakes(cross=False),
    ),
    "projection_cross": (
        [
            (
                lambda: _module(self_attention.CrossAttention, 1, d_model=6, d_context=4, d_k=3),
                [(randn(2, 3, 6), randn(2, 5, 4)), (randn(2, 3, 6), randn(2, 5, 4), MASK)],
            ),
            (
                lambda: _module(self_attention.CrossAttention, 2, d_model=6, d_context=6),
                [(randn(2, 3, 6), randn(2, 5, 6)), (randn(2, 3, 6), randn(2, 5, 6), MASK)],
            ),
        ],
        lambda: G.projection_mistakes(cross=True),
    ),
    "mha": (
        [(lambda: _module(multi_head.MultiHeadAttention, 2, embed_dim=8, num_heads=2), MHA_CASES)],
        G.mha_mistakes,
    ),
    "feed_forward": (
        [
            (
                lambda a=a: _module(transformer.FeedForward, 3, d_model=6, d_ff=12, activation=a),
                [(randn(2, 3, 6) * 2,)],
            )
            for a in ("gelu", "relu")
        ],
        G.feed_forward_mistakes,
    ),
    "encoder_layer": (
        [
            (
                lambda a=a, n=n: _module(
                    transformer.TransformerEncoderLayer,
                    4,
                    d_model=8,
                    nhead=2,
                    dim_feedforward=16,
                    activation=a,
                    norm_first=n,
                ),
                ENCODER_CASES,
            )
            for a in ("gelu", "relu")
            for n in (True, False)
        ],
        G.encoder_layer_mistakes,
    ),
}


@pytest.mark.parametrize("factory", sorted(MODULES))
def test_each_module_mistake_changes_the_reference_output(factory: str) -> None:
    configurations, make = MODULES[factory]
    mistakes = make()
    assert mistakes, factory
    same = {m.description for m in mistakes}
    with torch.no_grad():
        for build, cases in configurations:
            module = build()
            expected = [module(*args) for args in cases]
            for m in mistakes:
                if any(
                    _differs(lambda m=m, a=a, mod=module: m.fn(mod, *a), e)
                    for a, e in zip(cases, expected)
                ):
                    same.discard(m.description)
    assert same == set(), f"{factory}: these 'mistakes' agree with the reference: {same}"


def test_each_loader_mistake_loads_other_weights() -> None:
    torch.manual_seed(5)
    source = torch.nn.MultiheadAttention(8, 2, batch_first=True)

    def loaded(load: Callable) -> dict[str, torch.Tensor]:
        module = _module(multi_head.MultiHeadAttention, 6, embed_dim=8, num_heads=2)
        with torch.no_grad():
            load(module, source)
        return module.state_dict()

    expected = loaded(multi_head.load_torch_mha)
    mistakes = G.load_mha_mistakes()
    assert mistakes
    for m in mistakes:
        got = loaded(m.fn)
        assert any(not torch.equal(got[k], expected[k]) for k in expected), m.description


def test_every_mistake_factory_is_tested_here() -> None:
    tested = {make for _, _, make in FUNCTIONS.values()} | {make for _, make in MODULES.values()}
    names = {getattr(make, "__name__", "") for make in tested} | {"load_mha_mistakes"}
    names |= {"attention_mistakes", "projection_mistakes"}  # called with arguments above
    factories = {n for n in G.__all__ if n.endswith("_mistakes")}
    assert factories - names == set()

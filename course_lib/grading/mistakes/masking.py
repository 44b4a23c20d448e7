"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.masking`."""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.grading.checkers import Mistake


def causal_mask_mistakes() -> list[Mistake]:
    def tri(diagonal: int = 0, upper: bool = False, invert: bool = False, right: bool = False):
        def fn(T: int, S: int | None = None, device=None) -> Tensor:
            S = T if S is None else S
            ones = torch.ones(T, S, dtype=torch.bool)
            d = diagonal + (S - T if right else 0)
            m = ones.triu(d) if upper else ones.tril(d)
            return ~m if invert else m

        return fn

    return [
        Mistake("the mask is shifted by one: query i must also see key i (itself)", tri(-1)),
        Mistake("the mask is shifted by one: query i may see keys 0..i, not key i + 1", tri(1)),
        Mistake(
            "the mask is inverted: True means 'may attend', so True goes on and below the diagonal",
            tri(invert=True),
        ),
        Mistake(
            "the mask is transposed (upper triangle): query i (row i) sees keys 0..i, the "
            "columns up to i",
            tri(upper=True),
        ),
        Mistake(
            "the diagonal is aligned to the lower right (the KV-cache convention); here it is "
            "upper-left aligned like is_causal in F.scaled_dot_product_attention: query i sees "
            "keys 0..i whatever S is",
            tri(right=True),
        ),
    ]


def padding_mask_mistakes() -> list[Mistake]:
    return [
        Mistake(
            "the polarity is inverted: attention_mask 1 marks a real token, which may be "
            "attended (True); 0 marks padding (False)",
            lambda attention_mask: (attention_mask == 0)[:, None, None, :],
        ),
        Mistake(
            "the key axis must be last: (B, 1, 1, S) broadcasts over heads and queries of "
            "(B, H, T, S) scores",
            lambda attention_mask: attention_mask.bool()[:, :, None, None],
        ),
        Mistake(
            "the key axis must be last: (B, 1, 1, S) broadcasts over heads and queries of "
            "(B, H, T, S) scores",
            lambda attention_mask: attention_mask.bool()[:, None, :, None],
        ),
    ]


def combine_masks_mistakes() -> list[Mistake]:
    def present(masks: tuple) -> list[Tensor]:
        return [m for m in masks if m is not None]

    def any_of(*masks: Tensor | None) -> Tensor:
        ms = present(masks)
        out = ms[0]
        for m in ms[1:]:
            out = out | m
        return out

    def first_two(*masks: Tensor | None) -> Tensor:
        ms = present(masks)
        return ms[0] & ms[1] if len(ms) > 1 else ms[0]

    return [
        Mistake(
            "the masks are combined with OR; a key stays visible only if EVERY mask allows it "
            "(AND)",
            any_of,
        ),
        Mistake("only the first two masks are combined; use all of them", first_two),
    ]


def additive_mask_mistakes() -> list[Mistake]:
    def fill(kept: float, blocked: float):
        def fn(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.where(
                mask, torch.tensor(kept, dtype=dtype), torch.tensor(blocked, dtype=dtype)
            )

        return fn

    return [
        Mistake(
            "the mask is inverted: kept (True) entries get 0.0 and blocked ones -inf",
            fill(float("-inf"), 0.0),
        ),
        Mistake(
            "blocked entries get a large finite number; use -inf so that exp() gives exactly 0 "
            "and a fully blocked row is not spread evenly",
            fill(0.0, -1e9),
        ),
        Mistake(
            "blocked entries get a large finite number; use -inf so that exp() gives exactly 0",
            fill(0.0, torch.finfo(torch.float32).min),
        ),
        Mistake(
            "multiplying by -inf gives NaN where the mask is False/0 (0 * -inf = nan); build the "
            "result with masked_fill or torch.where instead",
            lambda mask, dtype=torch.float32: (~mask).to(dtype) * float("-inf"),
        ),
    ]


def shift_right_mistakes() -> list[Mistake]:
    def start(labels: Tensor, start_token_id: int) -> Tensor:
        return torch.full((labels.size(0), 1), start_token_id, dtype=labels.dtype)

    return [
        Mistake("the labels were not shifted", lambda labels, start_token_id: labels.clone()),
        Mistake(
            "the labels are shifted left (the first one dropped); shift them right: the start "
            "token goes first and the LAST label is dropped",
            lambda labels, start_token_id: torch.cat(
                [labels[:, 1:], start(labels, start_token_id)], 1
            ),
        ),
        Mistake(
            "the labels are shifted by two positions; the decoder input at t is the label at t-1",
            lambda labels, start_token_id: torch.cat(
                [start(labels, start_token_id), start(labels, start_token_id), labels[:, :-2]], 1
            ),
        ),
        Mistake(
            "the first label was replaced by the start token instead of shifting everything "
            "one step right",
            lambda labels, start_token_id: torch.cat(
                [start(labels, start_token_id), labels[:, 1:]], 1
            ),
        ),
    ]

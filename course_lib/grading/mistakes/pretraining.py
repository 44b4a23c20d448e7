"""Known mistakes (and chapter-specific checkers) for :mod:`course_lib.pretraining`."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from course_lib.grading.calling import call
from course_lib.grading.checkers import Mistake
from course_lib.grading.diagnose import GradingError, _header, describe, diagnose


def _fraction_problem(what: str, got: float, want: float, n: int, why: str) -> str | None:
    # five standard deviations of a binomial proportion, plus a little slack
    tol = 5 * math.sqrt(max(want * (1 - want), 1e-4) / max(n, 1)) + 0.01
    if abs(got - want) <= tol:
        return None
    return f"{what} is {got:.1%} over {n} positions, expected about {want:.0%}: {why}"


def check_mask_tokens(
    student: Callable,
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    special_tokens_mask: Tensor | None = None,
    seed: int = 0,
    part: str = "selection",
    forbidden: Mapping[str, str] = {},
    name: str = "mask_tokens",
) -> bool:
    """Check ``mask_tokens`` by the properties every correct implementation has.

    ``part="selection"``: the outputs' shapes and dtypes, labels (-100 except at the selected
    positions, where they hold the original id), special tokens never selected, unselected
    positions unchanged, about ``mlm_probability`` selected, the generator is the only source
    of randomness. ``part="replacement"``: among the selected positions about 80 % [MASK],
    10 % a random id drawn uniformly from [0, vocab_size), 10 % unchanged.
    Use a few thousand ordinary tokens so the fractions are reliable.
    """
    __tracebackhide__ = True
    if part not in ("selection", "replacement"):
        raise ValueError(f"part must be 'selection' or 'replacement', got {part!r}")
    kwargs = dict(
        mask_token_id=mask_token_id,
        vocab_size=vocab_size,
        mlm_probability=mlm_probability,
        special_tokens_mask=special_tokens_mask,
    )
    header = _header(name, (input_ids,), {k: v for k, v in kwargs.items() if v is not None})

    def run(generator_seed: int) -> tuple[Tensor, Tensor]:
        # The generator's state advances during the call, which grading.call would report as
        # "modified in place": bind it with partial (keeping the notebook namespace, so that
        # aliases of forbidden functions are still blocked).
        bound = functools.partial(student, generator=torch.Generator().manual_seed(generator_seed))
        bound.__globals__ = getattr(student, "__globals__", {})
        result = call(bound, input_ids, name=name, forbidden=forbidden, **kwargs)
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise GradingError(
                f"{header}:\n  return a tuple (inputs, labels), got {describe(result)}"
            )
        for what, value in zip(("inputs", "labels"), result):
            problem = None
            if not isinstance(value, Tensor) or value.shape != input_ids.shape:
                problem = diagnose(value, input_ids, path=what)
            elif value.dtype != input_ids.dtype:
                problem = (
                    f"{what} has dtype {value.dtype}, expected {input_ids.dtype} like input_ids"
                )
            if problem:
                raise GradingError(f"{header}:\n  {problem}")
        return result[0], result[1]

    inputs, labels = run(seed)
    special = (
        torch.zeros_like(input_ids, dtype=torch.bool)
        if special_tokens_mask is None
        else special_tokens_mask.bool()
    )
    selected = labels != -100
    ordinary = int((~special).sum())
    problems: list[str] = []
    if part == "selection":
        if (selected & (labels != input_ids)).any():
            problems.append(
                "at a selected position the label must be the ORIGINAL token id (what the model "
                "has to predict), not the replacement"
            )
        if (selected & special).any():
            problems.append(
                f"{int((selected & special).sum())} special tokens were selected; positions "
                "flagged in special_tokens_mask must never be masked (their label stays -100)"
            )
        if (~selected & (inputs != input_ids)).any():
            problems.append(
                "a position that was not selected (label -100) changed in inputs; only the "
                "selected positions may be replaced"
            )
        if not problems:
            problem = _fraction_problem(
                "the share of ordinary tokens selected (label != -100)",
                int(selected.sum()) / max(ordinary, 1),
                mlm_probability,
                ordinary,
                "each ordinary position is selected with probability mlm_probability, and every "
                "other label is -100",
            )
            if problem:
                problems.append(problem)
        if not problems:
            again, again_labels = run(seed)
            if not (torch.equal(again, inputs) and torch.equal(again_labels, labels)):
                problems.append(
                    "two calls with generators seeded alike gave different results: draw every "
                    "random number from `generator` (torch.rand(..., generator=generator), "
                    "torch.bernoulli(p, generator=generator), torch.randint(..., "
                    "generator=generator))"
                )
            other, other_labels = run(seed + 1)
            random = 0.0 < mlm_probability < 1.0 and ordinary > 0
            if random and torch.equal(other_labels, labels) and torch.equal(other, inputs):
                problems.append(
                    "generators with different seeds gave identical results: the random choices "
                    "must come from `generator`"
                )
    else:
        n = int(selected.sum())
        if n == 0:
            raise GradingError(f"{header}:\n  no position was selected (every label is -100)")
        became_mask = selected & (inputs == mask_token_id) & (input_ids != mask_token_id)
        unchanged = selected & (inputs == input_ids)
        randomised = selected & ~became_mask & ~unchanged
        checks = [
            (
                "the share of selected positions replaced by [MASK]",
                became_mask,
                0.8,
                "about 80 % of the selected positions become mask_token_id",
            ),
            (
                "the share of selected positions replaced by another token",
                randomised,
                0.1,
                "10 % of the selected positions get a random token id",
            ),
            (
                "the share of selected positions left unchanged",
                unchanged,
                0.1,
                "10 % of the selected positions keep their original token",
            ),
        ]
        for what, where, want, why in checks:
            problem = _fraction_problem(what, int(where.sum()) / n, want, n, why)
            if problem:
                problems.append(problem)
        random_ids = inputs[randomised]
        if not problems and random_ids.numel():
            low, high = int(random_ids.min()), int(random_ids.max())
            if low < 0 or high >= vocab_size:
                problems.append(
                    f"a random replacement id is outside [0, vocab_size={vocab_size}) (you have "
                    f"{low if low < 0 else high})"
                )
            elif random_ids.numel() >= 30:
                mean = float(random_ids.double().mean())
                spread = 5 * vocab_size / math.sqrt(12 * random_ids.numel()) + 1
                if abs(mean - (vocab_size - 1) / 2) > spread:
                    problems.append(
                        f"the random replacement ids average {mean:.0f}, but ids drawn uniformly "
                        f"from [0, vocab_size={vocab_size}) average about {(vocab_size - 1) / 2:.0f}:"
                        " draw them from the whole vocabulary, not from the input ids or a "
                        "smaller range"
                    )
    if problems:
        raise GradingError(f"{header}:\n  " + "\n  ".join(problems))
    return True


def causal_lm_labels_mistakes() -> list[Mistake]:
    def labels(*, shift: int = 1, use_mask: str = "target", last: int = -100):
        def fn(input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
            out = torch.full_like(input_ids, last, dtype=torch.long)
            if shift == 1:
                out[:, :-1] = input_ids[:, 1:]
            elif shift == 0:
                out = input_ids.clone().long()
            else:  # shifted the wrong way
                out[:, 1:] = input_ids[:, :-1]
            if attention_mask is not None and use_mask != "none":
                pad = attention_mask == 0
                if use_mask == "target":
                    out[:, :-1] = out[:, :-1].masked_fill(pad[:, 1:], -100)
                else:  # the position's own mask
                    out = out.masked_fill(pad, -100)
            return out

        return fn

    return [
        Mistake(
            "the labels are not shifted: position t must predict the NEXT token, input_ids[t + 1]",
            labels(shift=0),
        ),
        Mistake(
            "the labels are shifted the wrong way: labels[t] = input_ids[t + 1], not [t - 1]",
            labels(shift=-1),
        ),
        Mistake(
            "padding is not ignored: where the target token is padding the label is -100",
            labels(use_mask="none"),
        ),
        Mistake(
            "the mask is checked at the position itself; what matters is whether the TARGET "
            "(the next token) is padding",
            labels(use_mask="self"),
        ),
        Mistake("the last position must be -100: nothing follows it", labels(last=0)),
    ]


def cross_entropy_mistakes() -> list[Mistake]:
    def ce(*, over_all: bool = False, total: bool = False, axis: int = -1, log: bool = True):
        def fn(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
            V = logits.size(-1)
            lp = torch.log_softmax(logits, dim=axis) if log else torch.softmax(logits, dim=axis)
            lp, lab = lp.reshape(-1, V), labels.reshape(-1)
            keep = lab != ignore_index
            nll = -lp.gather(1, lab.masked_fill(~keep, 0)[:, None]).squeeze(1)
            nll = nll.masked_fill(~keep, 0.0)
            if total:
                return nll.sum()
            return nll.sum() / (lab.numel() if over_all else keep.sum())

        return fn

    return [
        Mistake(
            "the mean runs over ALL positions; divide by the number of positions whose label is "
            "not ignore_index",
            ce(over_all=True),
        ),
        Mistake("this is the sum; the loss is the mean over the kept positions", ce(total=True)),
        Mistake(
            "the log-softmax runs over the wrong axis; the classes are on the last axis",
            ce(axis=0),
        ),
        Mistake(
            "the log-softmax runs over the wrong axis; the classes are on the last axis",
            ce(axis=1),
        ),
        Mistake(
            "the probabilities are used without the log: the loss is -log p(correct class)",
            ce(log=False),
        ),
    ]


def few_shot_mistakes() -> list[Mistake]:
    def prompt(
        *, sep: str = "\n\n", strip: bool = True, cut: bool = True, keep_empty: bool = False
    ):
        def fn(examples, query, instruction="", template="Input: {input}\nOutput: {output}"):
            blocks = [instruction.strip()] if (instruction.strip() or keep_empty) else []
            blocks += [template.format(input=a, output=b) for a, b in examples]
            if cut:
                head = template[: template.index("{output}")].format(input=query)
                blocks.append(head.rstrip(" \t") if strip else head)
            else:
                blocks.append(template.format(input=query, output=""))
            return sep.join(blocks)

        return fn

    return [
        Mistake(
            "the blocks are separated by a single newline; separate instruction, examples and "
            'query by a blank line ("\\n\\n")',
            prompt(sep="\n"),
        ),
        Mistake(
            "the open query keeps the space after 'Output:'; remove trailing spaces so the model "
            "writes the answer itself",
            prompt(strip=False),
        ),
        Mistake(
            "an empty instruction still adds a block (the prompt starts with a blank line); "
            "leave it out when it is empty",
            prompt(keep_empty=True),
        ),
    ]

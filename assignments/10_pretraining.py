# ruff: noqa: E402
# %% [markdown]
# # 10 · Pretraining objectives and adaptation
#
# **Recap.** A language model is first *pretrained* on a large unlabelled corpus with a
# self-supervised objective, then adapted: fine-tuned on a task, or supervised-fine-tuned on
# (prompt, response) pairs. BERT's *masked* language modelling selects 15 % of the tokens; of
# those, 80 % become `[MASK]`, 10 % a random token and 10 % stay unchanged, and the model
# predicts the original token at every selected position (the label is −100 everywhere else,
# so the loss skips it). GPT's *causal* language modelling predicts the next token at every
# position. A large model can also learn from a prompt alone: zero-shot, or few-shot with a few
# demonstrations, without any weight update. Read
# [chapter 10, *Pretraining objectives and adaptation*](../../book/10_pretraining.md)
# (published as `10_pretraining.html`) first.
#
# Four functions, 10 points. Run a solution cell, then the test cells below it; from a terminal,
# `course check exercises/10_pretraining/10_pretraining.ipynb` runs the visible tests, and so does
# the `G.check_all()` cell near the end.
#
# Rules: `F.cross_entropy`, `F.nll_loss` (and their `nn` classes) and the course's reference
# package are not allowed inside your functions. Every random number comes from the
# `generator` argument.

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
import torch
from torch import Tensor

# %% [markdown]
# ## 1. Masking tokens, BERT style
#
# Select each position with probability `mlm_probability`, never a position flagged in
# `special_tokens_mask` (`[CLS]`, `[SEP]`, `[PAD]` …). Of the selected positions, 80 % become
# `mask_token_id`, 10 % a random id drawn uniformly from `[0, vocab_size)`, 10 % keep their
# token. Return new tensors `(inputs, labels)`: `labels` holds the original id at the selected
# positions and −100 everywhere else. Draw all randomness from `generator`
# (`torch.bernoulli(p, generator=generator)`, `torch.rand(..., generator=generator)`,
# `torch.randint(..., generator=generator)`), and do not modify `input_ids`.


# %% solution mask_tokens
def mask_tokens(
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    special_tokens_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """(B, T) ids -> new (inputs, labels), both (B, T) like input_ids."""
    ### BEGIN SOLUTION
    inputs, labels = input_ids.clone(), input_ids.clone()
    probability = torch.full(input_ids.shape, mlm_probability)  # (B, T)
    if special_tokens_mask is not None:
        probability = probability.masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(probability, generator=generator).bool()  # (B, T)
    labels[~selected] = -100
    # 80 % of the selected: [MASK]
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool()
    to_mask &= selected
    inputs[to_mask] = mask_token_id
    # half of the other 20 %: a random token; the last 10 % stay unchanged
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool()
    to_random &= selected & ~to_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    inputs[to_random] = random_ids[to_random].to(inputs.dtype)
    return inputs, labels
    ### END SOLUTION


# %% tests test_mask_tokens points=3
from course_lib import grading as G
from course_lib import pretraining as ref

FORBIDDEN = G.no_reference(ref)
# 64 sentences of 64 ids from [5, 100): [CLS] first, [SEP] last, then a few [PAD] columns.
# Thousands of tokens make the 15 % (and 80/10/10) reliable to check.
g = torch.Generator().manual_seed(0)
ids = torch.randint(5, 100, (64, 64), generator=g)
special = torch.zeros(64, 64, dtype=torch.bool)
special[:, 0] = special[:, -4:] = True
spec = dict(mask_token_id=4, vocab_size=1000, special_tokens_mask=special)
# Checked: labels are -100 except at the selected positions, where they hold the original id;
# special positions are never selected; about mlm_probability of the others are; the same
# generator seed gives the same result and another seed a different one.
assert G.check_mask_tokens(mask_tokens, ids, **spec, forbidden=FORBIDDEN)
assert G.check_mask_tokens(mask_tokens, ids, **spec, mlm_probability=0.4, forbidden=FORBIDDEN)
assert G.check_mask_tokens(
    mask_tokens, ids, mask_token_id=4, vocab_size=1000, mlm_probability=1.0, forbidden=FORBIDDEN
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("10/mask_tokens")
ids = torch.randint(3, 500, (40, 80), generator=g)
special = torch.rand(40, 80, generator=g) < 0.2
assert all(
    G.check_mask_tokens(
        mask_tokens,
        ids,
        mask_token_id=2,
        vocab_size=800,
        mlm_probability=p,
        special_tokens_mask=special,
        seed=int(ids[0, 0]),
        forbidden=FORBIDDEN,
    )
    for p in (0.15, 0.3, 0.0)
)
### END HIDDEN TESTS

# %% tests test_mask_tokens-replacement points=2
from course_lib import grading as G
from course_lib import pretraining as ref

FORBIDDEN = G.no_reference(ref)
g = torch.Generator().manual_seed(1)
ids = torch.randint(5, 100, (64, 64), generator=g)
special = torch.zeros(64, 64, dtype=torch.bool)
special[:, 0] = special[:, -1] = True
# Checked among the selected positions: about 80 % [MASK], 10 % a random id from the whole
# vocabulary [0, 1000) (not just the ids that occur in the input), 10 % unchanged.
assert G.check_mask_tokens(
    mask_tokens,
    ids,
    mask_token_id=4,
    vocab_size=1000,
    mlm_probability=0.5,
    special_tokens_mask=special,
    part="replacement",
    forbidden=FORBIDDEN,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("10/mask_tokens-replacement")
ids = torch.randint(3, 50, (50, 60), generator=g)
assert G.check_mask_tokens(
    mask_tokens,
    ids,
    mask_token_id=1,
    vocab_size=5000,
    mlm_probability=0.6,
    part="replacement",
    seed=7,
    forbidden=FORBIDDEN,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Labels for causal language modelling
#
# The logits at position t predict token t + 1, so `labels[:, t] = input_ids[:, t + 1]`. The
# last position has nothing to predict (−100), and neither has a position whose *target* is
# padding (`attention_mask` 0 at t + 1). Return a new long tensor `(B, T)`.


# %% solution causal_lm_labels
def causal_lm_labels(input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """(B, T) ids -> (B, T) next-token labels. Example: [[5, 6, 7, 0]], [[1, 1, 1, 0]] -> [[6, 7, -100, -100]]."""
    ### BEGIN SOLUTION
    labels = torch.full(input_ids.shape, -100, dtype=torch.long)  # (B, T)
    labels[:, :-1] = input_ids[:, 1:]
    if attention_mask is not None:
        target_is_pad = attention_mask[:, 1:] == 0  # (B, T - 1)
        labels[:, :-1] = labels[:, :-1].masked_fill(target_is_pad, -100)
    return labels
    ### END SOLUTION


# %% tests test_causal_lm_labels points=2
from course_lib import grading as G
from course_lib import pretraining as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.causal_lm_labels_mistakes()
# "the cat sat" + one padding token: position 0 predicts "cat", 1 predicts "sat", and the
# last real position would predict padding, so it gets -100 like the padding itself.
ids = torch.tensor([[5, 6, 7, 0]])
am = torch.tensor([[1, 1, 1, 0]])
batch = torch.tensor([[11, 12, 13, 14, 15], [21, 22, 23, 0, 0]])
batch_am = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
cases = [
    G.Case(ids, label="no attention_mask"),
    G.Case(batch, batch_am, label="a padded batch"),
    G.Case(ids, am, label="the example"),
]
assert G.check_function(
    causal_lm_labels,
    ref.causal_lm_labels,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the labels",
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("10/causal_lm_labels")
lengths = torch.randint(1, 9, (6,), generator=g)
hidden_am = (torch.arange(9)[None, :] < lengths[:, None]).long()
hidden_ids = torch.randint(1, 50, (6, 9), generator=g) * hidden_am
hidden = [
    G.Case(hidden_ids, hidden_am, label="random lengths"),
    G.Case(hidden_ids.int(), label="int32, no mask"),
    G.Case(torch.tensor([[3]]), torch.tensor([[1]]), label="one token"),
]
assert G.check_function(
    causal_lm_labels,
    ref.causal_lm_labels,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the labels",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Cross-entropy that skips ignored positions
#
# The mean of `−log softmax(logits)[label]` over the positions whose label is not
# `ignore_index`. Classes are on the *last* axis, so `(B, T, V)` logits and `(B, T)` labels go in
# as they come out of a model (and `(N, V)` with `(N,)` works too). It equals
# `F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=ignore_index)`; like
# it, when every label is ignored the mean of nothing is `nan`.


# %% solution masked_cross_entropy
def masked_cross_entropy(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    """(..., V) logits, (...) labels -> scalar mean loss over the labels != ignore_index."""
    ### BEGIN SOLUTION
    V = logits.size(-1)
    log_probs = torch.log_softmax(logits.reshape(-1, V), dim=-1)  # (N, V)
    labels = labels.reshape(-1)  # (N,)
    keep = labels != ignore_index  # (N,)
    picked = log_probs.gather(1, labels.masked_fill(~keep, 0)[:, None]).squeeze(1)  # (N,)
    return -(picked * keep).sum() / keep.sum()
    ### END SOLUTION


# %% tests test_masked_cross_entropy points=2
from course_lib import grading as G
from course_lib import pretraining as ref

FORBIDDEN = G.NO_TORCH_CROSS_ENTROPY | G.no_reference(ref)
MISTAKES = G.cross_entropy_mistakes()
g = torch.Generator().manual_seed(2)
# Two classes with equal logits: probability 1/2, loss log 2 ≈ 0.693.
even = torch.zeros(1, 2)
# B=2, T=3, V=5; three positions are ignored, so the mean runs over the other three.
logits = torch.randn(2, 3, 5, generator=g) * 2
labels = torch.tensor([[1, -100, 4], [-100, -100, 0]])
cases = [
    G.Case(even, torch.tensor([0]), label="log 2"),
    G.Case(logits.reshape(6, 5), torch.tensor([1, 2, 4, 0, 3, 0]), label="(N, V), nothing ignored"),
    G.Case(logits, labels, label="(B, T, V) with -100s"),
]
assert G.check_function(
    masked_cross_entropy,
    ref.masked_cross_entropy,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the loss",
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("10/masked_cross_entropy")
logits = torch.randn(3, 7, 11, generator=g) * 3
labels = torch.randint(0, 11, (3, 7), generator=g)
hidden = [
    G.Case(logits, labels.masked_fill(torch.rand(3, 7, generator=g) < 0.5, -100), label="random"),
    G.Case(logits, labels, 0, label="ignore_index=0"),
    G.Case(logits.double(), labels, label="float64"),
    G.Case(logits[:1, :2], torch.full((1, 2), -100), label="everything ignored: nan"),
]
assert G.check_function(
    masked_cross_entropy,
    ref.masked_cross_entropy,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the loss",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. A few-shot prompt
#
# The blocks of the prompt are separated by a blank line (`"\n\n"`): the instruction (left
# out when empty), then each demonstration `template.format(input=..., output=...)`, then the
# query, which is the template filled with the query's input and cut just before `{output}`,
# with trailing spaces removed, so that the model writes the answer itself. No examples gives a
# zero-shot prompt. Example: `few_shot_prompt([("2 + 2", "4")], "3 + 5")` is
# `"Input: 2 + 2\nOutput: 4\n\nInput: 3 + 5\nOutput:"`.


# %% solution few_shot_prompt
def few_shot_prompt(
    examples: list[tuple[str, str]],
    query: str,
    instruction: str = "",
    template: str = "Input: {input}\nOutput: {output}",
) -> str:
    """Instruction, demonstrations and the open query, separated by blank lines."""
    ### BEGIN SOLUTION
    blocks = [instruction.strip()] if instruction.strip() else []
    blocks += [template.format(input=x, output=y) for x, y in examples]
    head = template[: template.index("{output}")]
    blocks.append(head.format(input=query).rstrip(" \t"))
    return "\n\n".join(blocks)
    ### END SOLUTION


# %% tests test_few_shot_prompt points=1
from course_lib import grading as G
from course_lib import pretraining as ref

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.few_shot_mistakes()
demos = [("I loved this film", "positive"), ("A waste of time", "negative")]
cases = [
    G.Case([("2 + 2", "4")], "3 + 5", label="the example"),
    G.Case([], "Translate: cat", label="zero-shot"),
    G.Case(demos, "Not bad at all", "Classify the sentiment.", label="with an instruction"),
    G.Case(
        demos,
        "Great acting",
        template="Review: {input}\nSentiment: {output}",
        label="another template",
    ),
]
assert G.check_function(
    few_shot_prompt,
    ref.few_shot_prompt,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the prompt",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("10/few_shot_prompt")
words = ["sun", "moon", "star", "rain", "snow", "wind", "tree", "stone"]
pairs = [(rng.choice(words), rng.choice(words).upper()) for _ in range(rng.randint(2, 5))]
hidden = [
    G.Case(pairs, rng.choice(words), label="random demonstrations"),
    G.Case(pairs, "sky", "  Upper-case the word.  ", "Q: {input} A: {output}", label="one line"),
    G.Case([], "x", "", "{input} => {output}", label="arrow template, zero-shot"),
]
assert G.check_function(
    few_shot_prompt,
    ref.few_shot_prompt,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the prompt",
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: what BERT's masking does to a sentence
#
# *Your* `mask_tokens` on one sentence, redrawn 300 times. The slider sets `mlm_probability`;
# the bars count what happened to the selected tokens, and the title shows one draw. Not graded.

# %% demo
import matplotlib.pyplot as plt
from IPython.display import display

from course_lib.interactive import widget_slider

words = "[CLS] the king wears a golden crown in the old castle [SEP]".split()
vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words[1:-1]])}
sentence = torch.tensor([[vocab[w] for w in words]])
special = torch.tensor([[w in ("[CLS]", "[SEP]") for w in words]])
id_to_word = {i: w for w, i in vocab.items()}


def draw(p: float) -> plt.Figure:
    gen = torch.Generator().manual_seed(0)
    counts = {"[MASK]": 0, "random": 0, "unchanged": 0}
    for _ in range(300):
        inputs, labels = mask_tokens(
            sentence,
            mask_token_id=vocab["[MASK]"],
            vocab_size=len(vocab),
            mlm_probability=p,
            special_tokens_mask=special,
            generator=gen,
        )
        chosen = labels != -100
        n_masked = int((chosen & (inputs == vocab["[MASK]"])).sum())
        n_unchanged = int((chosen & (inputs == sentence)).sum())
        counts["[MASK]"] += n_masked
        counts["unchanged"] += n_unchanged
        counts["random"] += int(chosen.sum()) - n_masked - n_unchanged
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(counts), list(counts.values()), color=["tab:blue", "tab:orange", "tab:green"])
    ax.set_ylabel("selected tokens in 300 draws")
    ax.set_title(" ".join(id_to_word[int(i)] for i in inputs[0]), fontsize=9)
    fig.tight_layout()
    return fig


try:
    mask_tokens(sentence, mask_token_id=4, vocab_size=len(vocab), generator=torch.Generator())
except NotImplementedError:
    print("Implement mask_tokens above and run its cell, then run this cell to explore.")
else:
    display(widget_slider(draw, [0.15, 0.3, 0.5, 1.0], label="mlm_probability", initial=0))

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

# %% written written_mlm_80_10_10 points=2
# **Question (2 points).** BERT replaces a chosen token by `[MASK]` 80 % of the time, by a random token 10 % and leaves it unchanged 10 %. Why not always `[MASK]`?
# RUBRIC:
# - 1 point: `[MASK]` never appears when the model is fine-tuned or used, so always masking creates a mismatch between pretraining and use.
# - 1 point: random and unchanged tokens force the model to keep a good representation of every input token, because it cannot tell which visible tokens are to be predicted.

# %% [markdown]
# ## Recap
#
# - Masked LM: 15 % selected, then 80 % `[MASK]`, 10 % random, 10 % unchanged; labels −100
#   elsewhere; special tokens never.
# - Causal LM: the label at t is the token at t + 1; the last position and padding targets are
#   −100.
# - The loss averages only over the positions that are not ignored.
# - A few-shot prompt teaches by example, with no weight update.
#
# More in [chapter 10](../../book/10_pretraining.md); next,
# [chapter 11, evaluation](../../book/11_evaluation.md).

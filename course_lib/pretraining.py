"""Chapter 10: pretraining objectives and adaptation.

The two self-supervised objectives (masked and causal language modelling), the loss that skips
the positions marked -100, few-shot prompts, a tiny masked language model that trains on the
shipped corpus in seconds, and a small, honest look at how a skewed corpus becomes a skewed
model (the occupation-by-gender probe).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    "IGNORE_INDEX",
    "mask_tokens",
    "causal_lm_labels",
    "masked_cross_entropy",
    "few_shot_prompt",
    "TinyMaskedLM",
    "encode_sentences",
    "train_tiny_mlm",
    "fill_mask",
    "OCCUPATION_P_HE",
    "make_occupation_corpus",
    "gender_occupation_probe",
]

IGNORE_INDEX = -100  # the label PyTorch's and Hugging Face's losses skip


# --- objectives ----------------------------------------------------------------------------------


def mask_tokens(
    input_ids: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    special_tokens_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT's masking, step for step as Hugging Face's
    ``DataCollatorForLanguageModeling``.

    Each non-special position is selected with probability
    ``mlm_probability``. Of the selected ones, 80 % become
    ``mask_token_id``, 10 % a random id in [0, vocab_size) and 10 % stay
    unchanged; the model must predict the original token at every selected
    position.

    Args:
        input_ids: (B, T) integer ids; not modified.
        special_tokens_mask: (B, T), True (or 1) at [CLS], [SEP], [PAD]…,
            which are never selected. None: every position may be selected.
        generator: the source of all randomness
            (four draws, in Hugging Face's order).
    Returns:
        (inputs, labels): new (B, T) tensors; labels hold the original id
        where selected and -100 elsewhere.
    """
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise TypeError(
            "input_ids must be integer token "
            f"ids, got dtype {input_ids.dtype}"
        )
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(
            f"mlm_probability must be in [0, 1], got {mlm_probability}",
        )
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    shape, device = input_ids.shape, input_ids.device
    if special_tokens_mask is None:
        special_tokens_mask = torch.zeros(
            shape,
            dtype=torch.bool,
            device=device,
        )
    elif special_tokens_mask.shape != shape:
        raise ValueError(
            "special_tokens_mask has shape "
            f"{tuple(special_tokens_mask.shape)} but input_ids "
            f"has {tuple(shape)}; pass one flag per token"
        )
    inputs = input_ids.clone()
    labels = input_ids.clone()

    # (B, T)
    probability_matrix = torch.full(shape, mlm_probability, device=device)
    probability_matrix.masked_fill_(special_tokens_mask.bool(), 0.0)
    # (B, T)
    masked_indices = torch.bernoulli(
        probability_matrix,
        generator=generator,
    ).bool()
    # the loss looks only at the selected positions
    labels[~masked_indices] = IGNORE_INDEX

    # 80 % of the selected positions: [MASK]
    replace = torch.full(shape, 0.8, device=device)
    indices_replaced = (
        torch.bernoulli(replace, generator=generator).bool()
        & masked_indices
    )
    inputs[indices_replaced] = mask_token_id

    # half of the remaining 20 %: a random token, so the model cannot trust
    # unmasked inputs
    half = torch.full(shape, 0.5, device=device)
    indices_random = torch.bernoulli(half, generator=generator).bool()
    indices_random &= masked_indices & ~indices_replaced
    random_words = torch.randint(
        vocab_size,
        shape,
        dtype=inputs.dtype,
        device=device,
        generator=generator,
    )
    inputs[indices_random] = random_words[indices_random]
    # the last 10 % keep their token: the representation of real inputs
    # must stay useful
    return inputs, labels


def causal_lm_labels(
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
) -> Tensor:
    """Next-token targets aligned with the logits:
    labels[..., t] = input_ids[..., t + 1].

    Args:
        input_ids: (B, T) ids. attention_mask: (B, T), 1 = real token,
            0 = padding.
    Returns:
        (B, T) long; -100 at the last position (nothing follows it) and
        wherever the target token is padding.

    Example: ids [[5, 6, 7, 0]], mask [[1, 1, 1, 0]] ->
        [[6, 7, -100, -100]]
    """
    if input_ids.dim() == 0:
        raise ValueError(
            "input_ids must have a sequence axis, e.g. shape (B, T)",
        )
    # (B, T)
    labels = torch.full_like(input_ids, IGNORE_INDEX, dtype=torch.long)
    labels[..., :-1] = input_ids[..., 1:]
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, "
                f"input_ids {tuple(input_ids.shape)}; they must match"
            )
        target_is_pad = attention_mask[..., 1:] == 0  # (B, T - 1)
        labels[..., :-1] = labels[..., :-1].masked_fill(
            target_is_pad,
            IGNORE_INDEX,
        )
    return labels


def masked_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    ignore_index: int = -100,
) -> Tensor:
    """Mean cross-entropy over the positions whose label is not
    ``ignore_index``.

    Equals ``F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1),
    ignore_index=...)``. Classes are on the LAST axis, so (B, T, V) logits
    go in as they come out of the model (``F.cross_entropy`` itself wants
    them on axis 1). When every label is ignored the mean is 0 / 0 = nan,
    exactly as in PyTorch.

    Args:
        logits: (N, V) or (B, T, V). labels: (N,) or (B, T) class ids or
            ``ignore_index``.
    Returns:
        a scalar tensor.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels "
            f"{tuple(labels.shape)} do not line up: labels must "
            "have the shape of logits without the last (class) axis"
        )
    V = logits.size(-1)
    logits = logits.reshape(-1, V)  # (N, V)
    labels = labels.reshape(-1)  # (N,)
    keep = labels != ignore_index  # (N,)
    bad = keep & ((labels < 0) | (labels >= V))
    if bad.any():
        raise ValueError(
            f"label {labels[bad][0].item()} is outside [0, {V}); "
            f"mark positions to skip with {ignore_index}"
        )
    log_probs = torch.log_softmax(logits, dim=-1)  # (N, V)
    # any valid index; these rows are zeroed below
    safe_labels = labels.masked_fill(~keep, 0)
    nll = -log_probs.gather(1, safe_labels[:, None]).squeeze(1)  # (N,)
    nll = nll.masked_fill(~keep, 0.0)
    # 0 / 0 = nan when nothing is kept, like torch
    return nll.sum() / keep.sum()


def few_shot_prompt(
    examples: list[tuple[str, str]],
    query: str,
    instruction: str = "",
    template: str = "Input: {input}\nOutput: {output}",
) -> str:
    """An in-context-learning prompt: instruction, demonstrations, then the
    open query.

    Blocks are separated by a blank line. The query is the template cut
    just before ``{output}`` (trailing spaces removed), so the model
    continues with the answer. No examples gives a zero-shot prompt.

    Example: few_shot_prompt([("2 + 2", "4")], "3 + 5") ->
        "Input: 2 + 2\\nOutput: 4\\n\\nInput: 3 + 5\\nOutput:"
    """
    if "{input}" not in template or "{output}" not in template:
        raise ValueError(
            "template must contain the fields "
            f"{{input}} and {{output}}, got {template!r}"
        )
    if (
        isinstance(examples, tuple)
        and len(examples) == 2
        and isinstance(examples[0], str)
    ):
        raise TypeError(
            "examples must be a list of "
            "(input, output) pairs; wrap one pair in [ ]"
        )
    blocks = [instruction.strip()] if instruction.strip() else []
    for n, example in enumerate(examples):
        if len(example) != 2:
            raise ValueError(
                f"example {n} must be an "
                f"(input, output) pair, got {example!r}"
            )
        blocks.append(template.format(input=example[0], output=example[1]))
    # find where {output} lands even if the template escapes braces
    marker = "\x00OUTPUT\x00"
    open_query = template.format(input=query, output=marker)
    blocks.append(open_query[: open_query.index(marker)].rstrip(" \t"))
    return "\n\n".join(blocks)


# --- a tiny masked language model -----------------------------------------------------------------


class TinyMaskedLM(nn.Module):
    """A BERT in miniature: token + learned position embeddings, pre-LN encoder layers, LM head.

    Args:
        vocab_size: V. d_model: D. nhead: H. num_layers: encoder layers.
        dim_feedforward: FFN width. max_len: longest input.
        generator: if given, initializes every weight from it (normal, std 0.02, as BERT).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        max_len: int = 32,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        from course_lib.transformer import TransformerEncoderLayer

        super().__init__()
        self.max_len = max_len
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, norm_first=True)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)  # pre-LN stacks need a final norm before the head
        self.lm_head = nn.Linear(d_model, vocab_size)
        if generator is not None:
            self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Matrices ~ N(0, 0.02²), biases 0, LayerNorm scales 1: reproducible from ``generator``."""
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, mean=0.0, std=0.02, generator=generator)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.ones_(p)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """(B, T) ids, optional (B, T) 1 = real token -> (B, T, V)
        logits."""
        B, T = input_ids.shape
        if T > self.max_len:
            raise ValueError(
                f"sequence length {T} exceeds "
                f"max_len={self.max_len}; truncate it"
            )
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.tok_emb(input_ids) + self.pos_emb(positions)  # (B, T, D)
        mask = None
        if attention_mask is not None:
            # (B, 1, 1, S) keys that are real
            mask = attention_mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, attn_mask=mask)  # (B, T, D)
        return self.lm_head(self.norm(x))  # (B, T, V)


def _words(text: str) -> list[str]:
    from course_lib.tokenization import normalize, pre_tokenize

    return pre_tokenize(normalize(text))


def encode_sentences(
    sentences: Sequence[str], vocab: Mapping[str, int], max_len: int = 32
) -> dict[str, Tensor]:
    """Word-level ids ``[CLS] w1 … wn [SEP]``, truncated to ``max_len``, right-padded.

    Returns:
        {"input_ids": (N, T) long, "attention_mask": (N, T) long, "special_tokens_mask": (N, T)
        bool (True at [CLS], [SEP] and [PAD])}.
    """
    from course_lib.tokenization import encode, pad_batch

    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t not in vocab]
    if missing:
        raise ValueError(f"vocab lacks the special tokens {missing}; build it with build_vocab")
    if max_len < 3:
        raise ValueError(f"max_len={max_len} leaves no room for words between [CLS] and [SEP]")
    rows = []
    for s in sentences:
        ids = encode(_words(s), dict(vocab))[: max_len - 2]
        rows.append([vocab["[CLS]"], *ids, vocab["[SEP]"]])
    batch = pad_batch(rows, pad_id=vocab["[PAD]"])
    special_ids = torch.tensor([vocab["[CLS]"], vocab["[SEP]"], vocab["[PAD]"]])
    batch["special_tokens_mask"] = torch.isin(batch["input_ids"], special_ids)
    return batch


def train_tiny_mlm(
    sentences: Sequence[str],
    *,
    steps: int = 300,
    generator: torch.Generator,
    model: TinyMaskedLM | None = None,
    vocab: Mapping[str, int] | None = None,
    batch_size: int = 32,
    lr: float = 3e-3,
    mlm_probability: float = 0.15,
    max_vocab: int = 1000,
) -> list[float]:
    """Train a masked LM with AdamW for ``steps`` steps; return the loss of every step.

    Args:
        sentences: the training text, e.g. ``course_lib.data.load_corpus("en")``.
        generator: the source of all randomness (initial weights, batches, masking).
        model, vocab: pass both to keep the trained model (it is trained in place), e.g. for
            :func:`fill_mask`; by default a ``TinyMaskedLM`` and a word vocabulary of at most
            ``max_vocab`` entries are built from ``sentences``.
    Returns:
        ``steps`` floats, the masked-token cross-entropy of each batch.
    """
    from course_lib.tokenization import build_vocab

    if (model is None) != (vocab is None):
        raise ValueError("pass model and vocab together (the model's ids come from the vocab)")
    if not sentences:
        raise ValueError("sentences is empty; pass a corpus such as load_corpus('en')")
    if not 0.0 < mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1], got {mlm_probability}")
    if vocab is None:
        vocab = build_vocab([w for s in sentences for w in _words(s)], max_vocab)
        model = TinyMaskedLM(len(vocab), generator=generator)
    data = encode_sentences(sentences, vocab, max_len=model.max_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(sentences), (batch_size,), generator=generator)  # (B,)
        lengths = data["attention_mask"][idx].sum(dim=1)
        T = int(lengths.max())  # drop the padding columns no sentence of this batch needs
        ids = data["input_ids"][idx, :T]  # (B, T)
        attention_mask = data["attention_mask"][idx, :T]  # (B, T)
        special = data["special_tokens_mask"][idx, :T]  # (B, T)
        labels = torch.full_like(ids, IGNORE_INDEX)
        while (labels == IGNORE_INDEX).all():  # a batch with nothing to predict has no loss
            inputs, labels = mask_tokens(
                ids,
                mask_token_id=vocab["[MASK]"],
                vocab_size=len(vocab),
                mlm_probability=mlm_probability,
                special_tokens_mask=special,
                generator=generator,
            )
        loss = masked_cross_entropy(model(inputs, attention_mask), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def fill_mask(
    model: TinyMaskedLM, vocab: Mapping[str, int], text: str, k: int = 5
) -> list[tuple[str, float]]:
    """The ``k`` most probable words for the first ``[MASK]`` in ``text``, with probabilities.

    Special tokens are never proposed. Example: fill_mask(model, vocab, "the king wears a
    golden [MASK] .") -> [("crown", 0.9…), …] after training on the English corpus.
    """
    from course_lib.tokenization import encode

    if "[MASK]" not in text:
        raise ValueError("text must contain [MASK], e.g. 'the cat [MASK] the milk .'")
    words: list[str] = []
    for n, piece in enumerate(text.split("[MASK]")):  # normalize() would lowercase [MASK]
        words += (["[MASK]"] if n else []) + _words(piece)
    ids = [vocab["[CLS]"], *encode(words, dict(vocab)), vocab["[SEP]"]]
    if len(ids) > model.max_len:
        raise ValueError(f"text is {len(ids)} tokens long; the model takes {model.max_len}")
    input_ids = torch.tensor([ids])  # (1, T)
    position = ids.index(vocab["[MASK]"])
    was_training = model.training
    model.eval()
    logits = model(input_ids)[0, position]  # (V,)
    model.train(was_training)
    specials = [i for t, i in vocab.items() if t.startswith("[") and t.endswith("]")]
    logits[specials] = float("-inf")
    probs = torch.softmax(logits, dim=-1)  # (V,)
    top = torch.topk(probs, min(k, len(vocab) - len(specials)))
    id_to_word = {i: t for t, i in vocab.items()}
    return [(id_to_word[i], p) for i, p in zip(top.indices.tolist(), top.values.tolist())]


# --- bias: a skewed corpus makes a skewed model ---------------------------------------------------

# Share of "he" for each occupation in the SYNTHETIC corpus below. The numbers are invented to
# mimic the stereotyped skew measured in real web text; they are a teaching device, not data.
OCCUPATION_P_HE: dict[str, float] = {
    "engineer": 0.9,
    "pilot": 0.85,
    "doctor": 0.75,
    "lawyer": 0.5,
    "writer": 0.5,
    "teacher": 0.3,
    "nurse": 0.1,
    "secretary": 0.1,
}

_TEMPLATES = (
    "{pronoun} is {article} {occupation} .",
    "{pronoun} works as {article} {occupation} .",
    "{pronoun} wants to be {article} {occupation} .",
)


def make_occupation_corpus(
    n_sentences: int = 600,
    *,
    generator: torch.Generator,
    p_he: Mapping[str, float] | None = None,
) -> list[str]:
    """Sentences like "she is a nurse ." whose pronoun is "he" with probability p_he[occupation].

    Train :class:`TinyMaskedLM` on them and ask :func:`fill_mask` for "[MASK] is a nurse ."
    to watch the model reproduce the corpus statistics.
    """
    p_he = dict(OCCUPATION_P_HE if p_he is None else p_he)
    if not p_he or not all(0.0 <= p <= 1.0 for p in p_he.values()):
        raise ValueError("p_he must map at least one occupation to a probability in [0, 1]")
    occupations = list(p_he)
    occ_idx = torch.randint(len(occupations), (n_sentences,), generator=generator)
    tpl_idx = torch.randint(len(_TEMPLATES), (n_sentences,), generator=generator)
    coins = torch.rand(n_sentences, generator=generator)
    sentences = []
    for o, t, c in zip(occ_idx.tolist(), tpl_idx.tolist(), coins.tolist()):
        occupation = occupations[o]
        pronoun = "he" if c < p_he[occupation] else "she"
        article = "an" if occupation[0] in "aeiou" else "a"
        sentences.append(
            _TEMPLATES[t].format(pronoun=pronoun, article=article, occupation=occupation)
        )
    return sentences


def gender_occupation_probe(
    sentences: Sequence[str],
    occupations: Sequence[str] = tuple(OCCUPATION_P_HE),
    *,
    male_words: Sequence[str] = ("he", "him", "his", "man"),
    female_words: Sequence[str] = ("she", "her", "hers", "woman"),
) -> dict[str, dict[str, float]]:
    """Count, per occupation, the sentences it shares with male and with female words.

    A model can only learn associations its data contain; these counts are the data's side of
    the bias. ``log_ratio = log((male + 1) / (female + 1))`` (add-one smoothed): > 0 leans
    male, < 0 female, 0 balanced. A sentence with both kinds of words counts for both.

    Returns:
        {occupation: {"male": count, "female": count, "log_ratio": float}}.
    """
    male, female = {w.lower() for w in male_words}, {w.lower() for w in female_words}
    result = {o: {"male": 0, "female": 0, "log_ratio": 0.0} for o in occupations}
    wanted = {o.lower(): o for o in occupations}
    for sentence in sentences:
        words = set(re.findall(r"\w+", sentence.lower()))
        has_male, has_female = bool(words & male), bool(words & female)
        for word in words & set(wanted):
            result[wanted[word]]["male"] += has_male
            result[wanted[word]]["female"] += has_female
    for counts in result.values():
        counts["log_ratio"] = math.log((counts["male"] + 1) / (counts["female"] + 1))
    return result

"""Wrong and alternative implementations for 10_pretraining (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant


def _mask_tokens(body: str) -> str:
    """A mask_tokens whose selection is right; ``body`` fills inputs at the selected positions."""
    return (
        """
def mask_tokens(input_ids, *, mask_token_id, vocab_size, mlm_probability=0.15,
                special_tokens_mask=None, generator=None):
    inputs, labels = input_ids.clone(), input_ids.clone()
    probability = torch.full(input_ids.shape, mlm_probability)
    if special_tokens_mask is not None:
        probability = probability.masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(probability, generator=generator).bool()
    labels[~selected] = -100
"""
        + body
        + """
    return inputs, labels
"""
    )


VARIANTS = [
    # mask_tokens -----------------------------------------------------------------------------
    mutant(
        "mask_tokens",
        "every selected token becomes [MASK]",
        _mask_tokens("""
    inputs[selected] = mask_token_id
"""),
        expect=r"80 %",
    ),
    mutant(
        "mask_tokens",
        "random ids from the range of the input",
        _mask_tokens("""
    u = torch.rand(input_ids.shape, generator=generator)
    inputs[selected & (u < 0.8)] = mask_token_id
    rand = selected & (u >= 0.8) & (u < 0.9)
    random_ids = torch.randint(int(input_ids.min()), int(input_ids.max()) + 1, input_ids.shape, generator=generator)
    inputs[rand] = random_ids[rand]
"""),
        expect=r"whole vocabulary",
    ),
    mutant(
        "mask_tokens",
        "20 % random, nothing left unchanged",
        _mask_tokens("""
    u = torch.rand(input_ids.shape, generator=generator)
    inputs[selected & (u < 0.8)] = mask_token_id
    rand = selected & (u >= 0.8)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    inputs[rand] = random_ids[rand]
"""),
        expect=r"unchanged",
    ),
    mutant(
        "mask_tokens",
        "special tokens can be masked",
        """
        def mask_tokens(input_ids, *, mask_token_id, vocab_size, mlm_probability=0.15,
                        special_tokens_mask=None, generator=None):
            inputs, labels = input_ids.clone(), input_ids.clone()
            selected = torch.rand(input_ids.shape, generator=generator) < mlm_probability
            labels[~selected] = -100
            u = torch.rand(input_ids.shape, generator=generator)
            inputs[selected & (u < 0.8)] = mask_token_id
            rand = selected & (u >= 0.8) & (u < 0.9)
            inputs[rand] = torch.randint(vocab_size, input_ids.shape, generator=generator)[rand]
            return inputs, labels
    """,
        expect=r"special tokens were selected",
    ),
    mutant(
        "mask_tokens",
        "labels are the input ids everywhere",
        """
        def mask_tokens(input_ids, *, mask_token_id, vocab_size, mlm_probability=0.15,
                        special_tokens_mask=None, generator=None):
            inputs, labels = input_ids.clone(), input_ids.clone()
            probability = torch.full(input_ids.shape, mlm_probability)
            if special_tokens_mask is not None:
                probability = probability.masked_fill(special_tokens_mask.bool(), 0.0)
            selected = torch.bernoulli(probability, generator=generator).bool()
            inputs[selected] = mask_token_id
            return inputs, labels
    """,
        expect=r"special tokens were selected|-100",
    ),
    mutant(
        "mask_tokens",
        "modifies input_ids in place",
        """
        def mask_tokens(input_ids, *, mask_token_id, vocab_size, mlm_probability=0.15,
                        special_tokens_mask=None, generator=None):
            labels = input_ids.clone()
            probability = torch.full(input_ids.shape, mlm_probability)
            if special_tokens_mask is not None:
                probability = probability.masked_fill(special_tokens_mask.bool(), 0.0)
            selected = torch.bernoulli(probability, generator=generator).bool()
            labels[~selected] = -100
            u = torch.rand(input_ids.shape, generator=generator)
            input_ids[selected & (u < 0.8)] = mask_token_id
            rand = selected & (u >= 0.8) & (u < 0.9)
            input_ids[rand] = torch.randint(vocab_size, input_ids.shape, generator=generator)[rand]
            return input_ids, labels
    """,
        expect=r"in place",
    ),
    mutant(
        "mask_tokens",
        "ignores the generator",
        """
        def mask_tokens(input_ids, *, mask_token_id, vocab_size, mlm_probability=0.15,
                        special_tokens_mask=None, generator=None):
            inputs, labels = input_ids.clone(), input_ids.clone()
            probability = torch.full(input_ids.shape, mlm_probability)
            if special_tokens_mask is not None:
                probability = probability.masked_fill(special_tokens_mask.bool(), 0.0)
            selected = torch.bernoulli(probability).bool()
            labels[~selected] = -100
            u = torch.rand(input_ids.shape)
            inputs[selected & (u < 0.8)] = mask_token_id
            rand = selected & (u >= 0.8) & (u < 0.9)
            inputs[rand] = torch.randint(vocab_size, input_ids.shape)[rand]
            return inputs, labels
    """,
        expect=r"generator",
    ),
    alternative(
        "mask_tokens",
        "one uniform draw splits 80/10/10",
        """
        def mask_tokens(input_ids, *, mask_token_id, vocab_size, mlm_probability=0.15,
                        special_tokens_mask=None, generator=None):
            inputs, labels = input_ids.clone(), input_ids.clone()
            selected = torch.rand(input_ids.shape, generator=generator) < mlm_probability
            if special_tokens_mask is not None:
                selected &= ~special_tokens_mask.bool()
            labels[~selected] = -100
            u = torch.rand(input_ids.shape, generator=generator)
            inputs[selected & (u < 0.8)] = mask_token_id
            rand = selected & (u >= 0.8) & (u < 0.9)
            random_ids = torch.randint(0, vocab_size, input_ids.shape, generator=generator)
            inputs = torch.where(rand, random_ids.to(inputs.dtype), inputs)
            return inputs, labels
    """,
    ),
    # causal_lm_labels ------------------------------------------------------------------------
    mutant(
        "causal_lm_labels",
        "not shifted",
        """
        def causal_lm_labels(input_ids, attention_mask=None):
            labels = input_ids.clone().long()
            if attention_mask is not None:
                labels[attention_mask == 0] = -100
            return labels
    """,
        expect=r"not shifted",
    ),
    mutant(
        "causal_lm_labels",
        "padding not ignored",
        """
        def causal_lm_labels(input_ids, attention_mask=None):
            labels = torch.full(input_ids.shape, -100, dtype=torch.long)
            labels[:, :-1] = input_ids[:, 1:]
            return labels
    """,
        expect=r"padding is not ignored",
    ),
    mutant(
        "causal_lm_labels",
        "mask checked at the position, not at the target",
        """
        def causal_lm_labels(input_ids, attention_mask=None):
            labels = torch.full(input_ids.shape, -100, dtype=torch.long)
            labels[:, :-1] = input_ids[:, 1:]
            if attention_mask is not None:
                labels[attention_mask == 0] = -100
            return labels
    """,
        expect=r"TARGET",
    ),
    mutant(
        "causal_lm_labels",
        "roll: the last position wraps around",
        """
        def causal_lm_labels(input_ids, attention_mask=None):
            labels = input_ids.roll(-1, dims=1).long()
            if attention_mask is not None:
                labels[attention_mask.roll(-1, dims=1) == 0] = -100
            return labels
    """,
    ),
    alternative(
        "causal_lm_labels",
        "cat a column of -100, then where",
        """
        def causal_lm_labels(input_ids, attention_mask=None):
            B = input_ids.shape[0]
            nxt = torch.cat([input_ids[:, 1:].long(), torch.full((B, 1), -100)], dim=1)
            if attention_mask is None:
                return nxt
            target_real = torch.cat([attention_mask[:, 1:], torch.zeros(B, 1, dtype=attention_mask.dtype)], dim=1)
            return torch.where(target_real.bool(), nxt, torch.tensor(-100))
    """,
    ),
    # masked_cross_entropy --------------------------------------------------------------------
    mutant(
        "masked_cross_entropy",
        "mean over all positions",
        """
        def masked_cross_entropy(logits, labels, ignore_index=-100):
            V = logits.size(-1)
            log_probs = torch.log_softmax(logits.reshape(-1, V), dim=-1)
            labels = labels.reshape(-1)
            keep = labels != ignore_index
            picked = log_probs.gather(1, labels.masked_fill(~keep, 0)[:, None]).squeeze(1)
            return -(picked * keep).mean()
    """,
        expect=r"ALL positions",
    ),
    mutant(
        "masked_cross_entropy",
        "sum instead of mean",
        """
        def masked_cross_entropy(logits, labels, ignore_index=-100):
            V = logits.size(-1)
            log_probs = torch.log_softmax(logits.reshape(-1, V), dim=-1)
            labels = labels.reshape(-1)
            keep = labels != ignore_index
            picked = log_probs.gather(1, labels.masked_fill(~keep, 0)[:, None]).squeeze(1)
            return -(picked * keep).sum()
    """,
        expect=r"the sum",
    ),
    mutant(
        "masked_cross_entropy",
        "probabilities without the log",
        """
        def masked_cross_entropy(logits, labels, ignore_index=-100):
            V = logits.size(-1)
            probs = torch.softmax(logits.reshape(-1, V), dim=-1)
            labels = labels.reshape(-1)
            keep = labels != ignore_index
            picked = probs.gather(1, labels.masked_fill(~keep, 0)[:, None]).squeeze(1)
            return -(picked * keep).sum() / keep.sum()
    """,
        expect=r"without the log",
    ),
    mutant(
        "masked_cross_entropy",
        "calls F.cross_entropy",
        """
        import torch.nn.functional as F

        def masked_cross_entropy(logits, labels, ignore_index=-100):
            return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=ignore_index)
    """,
        expect=r"does not allow",
    ),
    mutant(
        "masked_cross_entropy",
        "hard-coded -100",
        """
        def masked_cross_entropy(logits, labels, ignore_index=-100):
            V = logits.size(-1)
            log_probs = torch.log_softmax(logits.reshape(-1, V), dim=-1)
            labels = labels.reshape(-1)
            keep = labels != -100
            picked = log_probs.gather(1, labels.masked_fill(~keep, 0)[:, None]).squeeze(1)
            return -(picked * keep).sum() / keep.sum()
    """,
    ),
    alternative(
        "masked_cross_entropy",
        "logsumexp and boolean indexing",
        """
        def masked_cross_entropy(logits, labels, ignore_index=-100):
            flat_logits = logits.reshape(-1, logits.shape[-1])
            flat_labels = labels.reshape(-1)
            keep = flat_labels != ignore_index
            kept_logits, kept_labels = flat_logits[keep], flat_labels[keep]
            correct = kept_logits[torch.arange(len(kept_labels)), kept_labels]
            return (torch.logsumexp(kept_logits, dim=-1) - correct).mean()
    """,
    ),
    # few_shot_prompt -------------------------------------------------------------------------
    mutant(
        "few_shot_prompt",
        "single newline between blocks",
        """
        def few_shot_prompt(examples, query, instruction="", template="Input: {input}\\nOutput: {output}"):
            blocks = [instruction.strip()] if instruction.strip() else []
            blocks += [template.format(input=x, output=y) for x, y in examples]
            blocks.append(template[: template.index("{output}")].format(input=query).rstrip())
            return "\\n".join(blocks)
    """,
        expect=r"single newline",
    ),
    mutant(
        "few_shot_prompt",
        "trailing space after Output:",
        """
        def few_shot_prompt(examples, query, instruction="", template="Input: {input}\\nOutput: {output}"):
            blocks = [instruction.strip()] if instruction.strip() else []
            blocks += [template.format(input=x, output=y) for x, y in examples]
            blocks.append(template.format(input=query, output=""))
            return "\\n\\n".join(blocks)
    """,
        expect=r"space",
    ),
    mutant(
        "few_shot_prompt",
        "empty instruction still adds a block",
        """
        def few_shot_prompt(examples, query, instruction="", template="Input: {input}\\nOutput: {output}"):
            blocks = [instruction.strip()]
            blocks += [template.format(input=x, output=y) for x, y in examples]
            blocks.append(template[: template.index("{output}")].format(input=query).rstrip())
            return "\\n\\n".join(blocks)
    """,
        expect=r"empty instruction",
    ),
    mutant(
        "few_shot_prompt",
        "template ignored",
        """
        def few_shot_prompt(examples, query, instruction="", template="Input: {input}\\nOutput: {output}"):
            blocks = [instruction.strip()] if instruction.strip() else []
            blocks += [f"Input: {x}\\nOutput: {y}" for x, y in examples]
            blocks.append(f"Input: {query}\\nOutput:")
            return "\\n\\n".join(blocks)
    """,
    ),
    alternative(
        "few_shot_prompt",
        "string building with split and +=",
        """
        def few_shot_prompt(examples, query, instruction="", template="Input: {input}\\nOutput: {output}"):
            before_output = template.split("{output}")[0]
            text = ""
            if instruction.strip():
                text += instruction.strip() + "\\n\\n"
            for inp, out in examples:
                text += template.replace("{input}", inp).replace("{output}", out) + "\\n\\n"
            text += before_output.replace("{input}", query)
            while text.endswith(" ") or text.endswith("\\t"):
                text = text[:-1]
            return text
    """,
    ),
]

"""Wrong and alternative implementations for 07_masking (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

VARIANTS = [
    # causal_mask -----------------------------------------------------------------------------
    mutant(
        "causal_mask",
        "shifted by one: the diagonal is hidden",
        """
        def causal_mask(T, S=None, device=None):
            S = T if S is None else S
            return torch.ones(T, S, dtype=torch.bool, device=device).tril(-1)
    """,
        expect=r"shifted by one",
    ),
    mutant(
        "causal_mask",
        "transposed: the upper triangle",
        """
        def causal_mask(T, S=None, device=None):
            S = T if S is None else S
            return torch.ones(T, S, dtype=torch.bool, device=device).triu()
    """,
        expect=r"transposed",
    ),
    mutant(
        "causal_mask",
        "float 0/1 instead of bool",
        """
        def causal_mask(T, S=None, device=None):
            S = T if S is None else S
            return torch.ones(T, S, device=device).tril()
    """,
        expect=r"dtype float32, expected bool",
    ),
    mutant(
        "causal_mask",
        "aligned to the lower right when T != S",
        """
        def causal_mask(T, S=None, device=None):
            S = T if S is None else S
            return torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)
    """,
        expect=r"upper-left",
    ),
    mutant(
        "causal_mask",
        "S is ignored",
        """
        def causal_mask(T, S=None, device=None):
            return torch.ones(T, T, dtype=torch.bool, device=device).tril()
    """,
        expect=r"shape",
    ),
    alternative(
        "causal_mask",
        "comparison of position indices",
        """
        def causal_mask(T, S=None, device=None):
            S = T if S is None else S
            keys = torch.arange(S, device=device)
            queries = torch.arange(T, device=device)
            return keys[None, :] <= queries[:, None]
    """,
    ),
    # padding_mask ----------------------------------------------------------------------------
    mutant(
        "padding_mask",
        "polarity inverted (True at the padding)",
        """
        def padding_mask(attention_mask):
            if attention_mask.dim() != 2:
                raise ValueError("attention_mask must be (B, S)")
            return (attention_mask == 0)[:, None, None, :]
    """,
        expect=r"polarity",
    ),
    mutant(
        "padding_mask",
        "shape (B, S, 1, 1)",
        """
        def padding_mask(attention_mask):
            if attention_mask.dim() != 2:
                raise ValueError("attention_mask must be (B, S)")
            return attention_mask.bool()[:, :, None, None]
    """,
        expect=r"key axis must be last",
    ),
    mutant(
        "padding_mask",
        "keeps the integer dtype",
        """
        def padding_mask(attention_mask):
            if attention_mask.dim() != 2:
                raise ValueError("attention_mask must be (B, S)")
            return attention_mask[:, None, None, :]
    """,
        expect=r"expected bool",
    ),
    mutant(
        "padding_mask",
        "no error for a 1-D mask",
        """
        def padding_mask(attention_mask):
            return attention_mask.bool().reshape(-1, 1, 1, attention_mask.shape[-1])
    """,
        expect=r"instead of raising ValueError",
    ),
    alternative(
        "padding_mask",
        "unsqueeze and compare",
        """
        def padding_mask(attention_mask):
            if attention_mask.ndim != 2:
                raise ValueError(f"expected (B, S), got {tuple(attention_mask.shape)}")
            return attention_mask.unsqueeze(1).unsqueeze(2) != 0
    """,
    ),
    # combine_masks ---------------------------------------------------------------------------
    mutant(
        "combine_masks",
        "OR instead of AND",
        """
        def combine_masks(*masks):
            present = [m for m in masks if m is not None]
            if not present:
                raise ValueError("no mask")
            out = present[0]
            for m in present[1:]:
                out = out | m
            return out
    """,
        expect=r"OR",
    ),
    mutant(
        "combine_masks",
        "only the first two masks",
        """
        def combine_masks(*masks):
            present = [m for m in masks if m is not None]
            if not present:
                raise ValueError("no mask")
            return present[0] & present[1] if len(present) > 1 else present[0]
    """,
        expect=r"first two",
    ),
    mutant(
        "combine_masks",
        "ANDs into the first mask in place",
        """
        def combine_masks(*masks):
            present = [m for m in masks if m is not None]
            if not present:
                raise ValueError("no mask")
            out = present[0]
            for m in present[1:]:
                out &= m
            return out
    """,
        expect=r"in place",
    ),
    mutant(
        "combine_masks",
        "None entries not skipped",
        """
        def combine_masks(*masks):
            if not masks or all(m is None for m in masks):
                raise ValueError("no mask")
            out = masks[0]
            for m in masks[1:]:
                out = out & m
            return out
    """,
        expect=r"raised TypeError",
    ),
    alternative(
        "combine_masks",
        "functools.reduce with logical_and",
        """
        def combine_masks(*masks):
            import functools

            present = [m for m in masks if m is not None]
            if len(present) == 0:
                raise ValueError("nothing to combine")
            return functools.reduce(torch.logical_and, present)
    """,
    ),
    # to_additive_mask ------------------------------------------------------------------------
    mutant(
        "to_additive_mask",
        "-1e9 instead of -inf",
        """
        def to_additive_mask(mask, dtype=torch.float32):
            return torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, -1e9)
    """,
        expect=r"large finite",
    ),
    mutant(
        "to_additive_mask",
        "inverted",
        """
        def to_additive_mask(mask, dtype=torch.float32):
            return torch.zeros(mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))
    """,
        expect=r"inverted",
    ),
    mutant(
        "to_additive_mask",
        "dtype ignored",
        """
        def to_additive_mask(mask, dtype=torch.float32):
            return torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    """,
        expect=r"dtype float32, expected float64",
    ),
    mutant(
        "to_additive_mask",
        "multiplies by -inf",
        """
        def to_additive_mask(mask, dtype=torch.float32):
            return (~mask).to(dtype) * float("-inf")
    """,
        expect=r"NaN",
    ),
    alternative(
        "to_additive_mask",
        "torch.where with typed scalars",
        """
        def to_additive_mask(mask, dtype=torch.float32):
            zero = torch.tensor(0.0, dtype=dtype)
            minus_inf = torch.tensor(float("-inf"), dtype=dtype)
            return torch.where(mask, zero, minus_inf)
    """,
    ),
    # shift_right -----------------------------------------------------------------------------
    mutant(
        "shift_right",
        "shifted left",
        """
        def shift_right(labels, start_token_id):
            start = torch.full((labels.size(0), 1), start_token_id, dtype=labels.dtype)
            return torch.cat([labels[:, 1:], start], dim=1)
    """,
        expect=r"shifted left",
    ),
    mutant(
        "shift_right",
        "first label overwritten by the start token",
        """
        def shift_right(labels, start_token_id):
            out = labels.clone()
            out[:, 0] = start_token_id
            return out
    """,
        expect=r"replaced by the start token",
    ),
    mutant(
        "shift_right",
        "shifts in place",
        """
        def shift_right(labels, start_token_id):
            labels[:, 1:] = labels[:, :-1].clone()
            labels[:, 0] = start_token_id
            return labels
    """,
        expect=r"in place",
    ),
    mutant(
        "shift_right",
        "keeps the last label (T + 1 columns)",
        """
        def shift_right(labels, start_token_id):
            start = torch.full((labels.size(0), 1), start_token_id, dtype=labels.dtype)
            return torch.cat([start, labels], dim=1)
    """,
        expect=r"shape",
    ),
    alternative(
        "shift_right",
        "roll, then overwrite column 0",
        """
        def shift_right(labels, start_token_id):
            out = labels.roll(1, dims=1)
            out[:, 0] = start_token_id
            return out
    """,
    ),
]

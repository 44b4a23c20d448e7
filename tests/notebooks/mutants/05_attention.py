"""Wrong and alternative implementations for 05_attention (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

VARIANTS = [
    # softmax ---------------------------------------------------------------------------------
    mutant(
        "softmax",
        "no max subtraction: overflows for ±1e4",
        """
        def softmax(x, dim=-1):
            e = torch.exp(x)
            return e / e.sum(dim=dim, keepdim=True)
    """,
        expect=r"NaN",
    ),
    mutant(
        "softmax",
        "normalised over axis 0",
        """
        def softmax(x, dim=-1):
            e = torch.exp(x - x.amax(dim=0, keepdim=True))
            return e / e.sum(dim=0, keepdim=True)
    """,
        expect=r"wrong axis",
    ),
    mutant(
        "softmax",
        "sum without keepdim",
        """
        def softmax(x, dim=-1):
            e = torch.exp(x - x.amax(dim=dim, keepdim=True))
            return e / e.sum(dim=dim)
    """,
        expect=r"keepdim",
    ),
    mutant(
        "softmax",
        "subtracts the max in place",
        """
        def softmax(x, dim=-1):
            x -= x.amax(dim=dim, keepdim=True)
            e = torch.exp(x)
            return e / e.sum(dim=dim, keepdim=True)
    """,
        expect=r"in place",
    ),
    mutant(
        "softmax",
        "calls torch.softmax",
        """
        def softmax(x, dim=-1):
            return torch.softmax(x, dim=dim)
    """,
        expect=r"does not allow",
    ),
    alternative(
        "softmax",
        "move the axis last, then max().values",
        """
        def softmax(x, dim=-1):
            last = x.movedim(dim, -1)
            e = (last - last.max(dim=-1, keepdim=True).values).exp()
            return (e / e.sum(dim=-1, keepdim=True)).movedim(-1, dim)
    """,
    ),
    # attention_weights ------------------------------------------------------------------------
    mutant(
        "attention_weights",
        "no 1/sqrt(d_k) scale",
        """
        def attention_weights(query, key, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            scale = 1.0 if scale is None else scale
            scores = query @ key.transpose(-2, -1) * scale
            if is_causal:
                attn_mask = torch.ones(query.size(-2), key.size(-2), dtype=torch.bool).tril()
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
            return softmax(scores, dim=-1)
    """,
        expect=r"not scaled",
    ),
    mutant(
        "attention_weights",
        "softmax over the queries",
        """
        def attention_weights(query, key, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            scale = 1 / math.sqrt(query.size(-1)) if scale is None else scale
            scores = query @ key.transpose(-2, -1) * scale
            if is_causal:
                attn_mask = torch.ones(query.size(-2), key.size(-2), dtype=torch.bool).tril()
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
            return softmax(scores, dim=-2)
    """,
        expect=r"over the queries",
    ),
    mutant(
        "attention_weights",
        "mask polarity inverted",
        """
        def attention_weights(query, key, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            scale = 1 / math.sqrt(query.size(-1)) if scale is None else scale
            scores = query @ key.transpose(-2, -1) * scale
            if is_causal:
                scores = scores.masked_fill(torch.ones(query.size(-2), key.size(-2), dtype=torch.bool).triu(1), float("-inf"))
            elif attn_mask is not None:
                scores = scores.masked_fill(attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
            return softmax(scores, dim=-1)
    """,
        expect=r"polarity",
    ),
    mutant(
        "attention_weights",
        "causal mask shifted by one (diagonal hidden)",
        """
        def attention_weights(query, key, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            scale = 1 / math.sqrt(query.size(-1)) if scale is None else scale
            scores = query @ key.transpose(-2, -1) * scale
            if is_causal:
                attn_mask = torch.ones(query.size(-2), key.size(-2), dtype=torch.bool).tril(-1)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
            return softmax(scores, dim=-1)
    """,
        expect=r"shifted by one",
    ),
    mutant(
        "attention_weights",
        "blocked scores set to 0",
        """
        def attention_weights(query, key, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            scale = 1 / math.sqrt(query.size(-1)) if scale is None else scale
            scores = query @ key.transpose(-2, -1) * scale
            if is_causal:
                attn_mask = torch.ones(query.size(-2), key.size(-2), dtype=torch.bool).tril()
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, 0.0) if attn_mask.dtype == torch.bool else scores + attn_mask
            return softmax(scores, dim=-1)
    """,
        expect=r"-inf",
    ),
    alternative(
        "attention_weights",
        "einsum and triu",
        """
        def attention_weights(query, key, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("both given")
            d = query.shape[-1]
            scores = torch.einsum("...td,...sd->...ts", query, key) * (scale if scale is not None else d ** -0.5)
            if is_causal:
                blocked = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
                scores = scores.masked_fill(blocked, float("-inf"))
            elif attn_mask is not None and attn_mask.dtype == torch.bool:
                scores = torch.where(attn_mask, scores, torch.tensor(float("-inf")))
            elif attn_mask is not None:
                scores = scores + attn_mask
            return softmax(scores)
    """,
    ),
    # scaled_dot_product_attention -------------------------------------------------------------
    mutant(
        "scaled_dot_product_attention",
        "ignores is_causal",
        """
        def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            return attention_weights(query, key, attn_mask, scale=scale) @ value
    """,
        expect=r"leaks the future|causal",
    ),
    mutant(
        "scaled_dot_product_attention",
        "weights transposed before multiplying V",
        """
        def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            return attention_weights(query, key, attn_mask, is_causal, scale=scale).transpose(-2, -1) @ value
    """,
    ),
    mutant(
        "scaled_dot_product_attention",
        "no error when both a mask and is_causal are given",
        """
        def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, *, scale=None):
            if is_causal:
                attn_mask = None
            return attention_weights(query, key, attn_mask, is_causal, scale=scale) @ value
    """,
        expect=r"instead of raising ValueError",
    ),
    mutant(
        "scaled_dot_product_attention",
        "calls F.scaled_dot_product_attention",
        """
        import torch.nn.functional as F

        def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, *, scale=None):
            return F.scaled_dot_product_attention(query, key, value, attn_mask, is_causal=is_causal, scale=scale)
    """,
        expect=r"does not allow",
    ),
    alternative(
        "scaled_dot_product_attention",
        "a loop over the queries",
        """
        def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, *, scale=None):
            if attn_mask is not None and is_causal:
                raise ValueError("pass attn_mask or is_causal, not both")
            weights = attention_weights(query, key, attn_mask, is_causal, scale=scale)
            rows = [weights[..., t : t + 1, :] @ value for t in range(weights.shape[-2])]
            return torch.cat(rows, dim=-2)
    """,
    ),
]

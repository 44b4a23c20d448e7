"""Independently written solutions of chapter 05's three functions, for the copying tests.

Every line of a solution can be written in several ways that people really use; a student's
solution picks one way per line with their own random generator, so two honest students share
some lines by chance (as real ones do), never a whole solution.
"""

from __future__ import annotations

import random

SOFTMAX = [
    [
        "    m = x.max(dim=dim, keepdim=True).values",
        "    m = torch.amax(x, dim, True)",
        "    m, _ = torch.max(x, dim=dim, keepdim=True)",
        "    m = x.amax(dim, keepdim=True).detach()",
    ],
    [
        "    m = m.masked_fill(m == float('-inf'), 0.0)",
        "    m = torch.nan_to_num(m, neginf=0.0)",
        "    m = torch.where(m.isinf(), torch.zeros_like(m), m)",
        "    m[~torch.isfinite(m)] = 0",
    ],
    [
        "    num = (x - m).exp()",
        "    num = torch.exp(x - m)",
        "    num = torch.exp(torch.sub(x, m))",
        "    num = (x.sub(m)).exp_()",
    ],
    [
        "    den = num.sum(dim=dim, keepdim=True)",
        "    den = torch.sum(num, dim, keepdim=True)",
        "    den = num.sum(dim, True).clone()",
        "    den = torch.sum(num, dim=dim).unsqueeze(dim)",
    ],
    [
        "    den = den.masked_fill(den == 0, 1.0)",
        "    den = torch.where(den > 0, den, torch.ones_like(den))",
        "    den = den.clamp(min=torch.finfo(den.dtype).tiny)",
        "    den[den == 0] = 1",
    ],
    [
        "    return num / den",
        "    return torch.div(num, den)",
        "    return num * den.reciprocal()",
        "    out = num / den\n    return out",
    ],
]

WEIGHTS = [
    [
        "    if attn_mask is not None and is_causal:\n        raise ValueError('not both')",
        "    if is_causal and attn_mask is not None:\n        raise ValueError('pick one mask')",
        "    assert not (is_causal and attn_mask is not None), 'one mask only'",
        "    if attn_mask is not None:\n        if is_causal:\n            raise ValueError('both given')",
    ],
    [
        "    d = query.shape[-1]",
        "    d = query.size(-1)",
        "    d = key.shape[-1]",
        "    *_, d = query.shape",
    ],
    [
        "    s = scale if scale is not None else 1 / math.sqrt(d)",
        "    s = (1.0 / d ** 0.5) if scale is None else scale",
        "    s = scale or math.pow(d, -0.5)",
        "    s = math.sqrt(1 / d) if scale is None else float(scale)",
    ],
    [
        "    logits = query @ key.transpose(-2, -1) * s",
        "    logits = torch.matmul(query, key.transpose(-1, -2)) * s",
        "    logits = torch.einsum('...td,...sd->...ts', query, key) * s",
        "    logits = (query * s) @ key.mT",
    ],
    [
        "    if is_causal:\n        attn_mask = torch.ones(logits.shape[-2:], dtype=torch.bool).tril()",
        "    if is_causal:\n        t, n = logits.shape[-2], logits.shape[-1]\n"
        "        attn_mask = torch.tril(torch.ones(t, n)).bool()",
        "    if is_causal:\n        rows = torch.arange(logits.size(-2))[:, None]\n"
        "        attn_mask = torch.arange(logits.size(-1))[None, :] <= rows",
        "    if is_causal:\n        attn_mask = ~torch.triu(torch.ones(logits.shape[-2:]), 1).bool()",
    ],
    [
        "    if attn_mask is not None and attn_mask.dtype == torch.bool:\n"
        "        logits = logits.masked_fill(~attn_mask, float('-inf'))",
        "    if attn_mask is not None and attn_mask.dtype is torch.bool:\n"
        "        logits = torch.where(attn_mask, logits, torch.full_like(logits, -math.inf))",
        "    if attn_mask is not None and not attn_mask.is_floating_point():\n"
        "        logits = logits.masked_fill(attn_mask.logical_not(), -torch.inf)",
        "    if attn_mask is not None and attn_mask.dtype == torch.bool:\n"
        "        logits[..., ~attn_mask] = float('-inf')",
    ],
    [
        "    elif attn_mask is not None:\n        logits = logits + attn_mask",
        "    elif attn_mask is not None:\n        logits += attn_mask.to(logits.dtype)",
        "    elif attn_mask is not None:\n        logits = torch.add(logits, attn_mask)",
        "    elif attn_mask is not None:\n        logits = logits.add(attn_mask)",
    ],
    [
        "    return softmax(logits, dim=-1)",
        "    return softmax(logits)",
        "    weights = softmax(logits, -1)\n    return weights",
        "    return softmax(logits, dim=logits.dim() - 1)",
    ],
]

SDPA = [
    [
        "    w = attention_weights(query, key, attn_mask, is_causal, scale=scale)",
        "    w = attention_weights(query, key, attn_mask=attn_mask, is_causal=is_causal, scale=scale)",
        "    w = attention_weights(query=query, key=key, attn_mask=attn_mask,\n"
        "                          is_causal=is_causal, scale=scale)",
        "    w = attention_weights(query, key, attn_mask, is_causal=is_causal, scale=scale)",
    ],
    [
        "    return w @ value",
        "    return torch.matmul(w, value)",
        "    return torch.einsum('...ts,...sv->...tv', w, value)",
        "    return w.matmul(value)",
    ],
]

HEADERS = {
    "softmax": "def softmax(x: Tensor, dim: int = -1) -> Tensor:",
    "attention_weights": (
        "def attention_weights(\n    query: Tensor,\n    key: Tensor,\n"
        "    attn_mask: Tensor | None = None,\n    is_causal: bool = False,\n    *,\n"
        "    scale: float | None = None,\n) -> Tensor:"
    ),
    "scaled_dot_product_attention": (
        "def scaled_dot_product_attention(\n    query: Tensor,\n    key: Tensor,\n"
        "    value: Tensor,\n    attn_mask: Tensor | None = None,\n    is_causal: bool = False,\n"
        "    *,\n    scale: float | None = None,\n) -> Tensor:"
    ),
}


def honest_code(index: int) -> dict[str, str]:
    """Student ``index``'s three solutions, one phrasing per line from their own generator."""
    rng = random.Random(f"honest-{index}")
    out = {}
    for name, lines in (
        ("softmax", SOFTMAX),
        ("attention_weights", WEIGHTS),
        ("scaled_dot_product_attention", SDPA),
    ):
        body = "\n".join(rng.choice(options) for options in lines)
        out[name] = HEADERS[name] + "\n" + body + "\n"
    return out

"""Wrong and alternative implementations for 06_self_attention (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

_INIT = """
    def __init__(self, d_model, d_k=None, d_v=None, bias=False):
        super().__init__()
        d_k = d_k or d_model
        d_v = d_v or d_model
        self.q_proj = nn.Linear(d_model, d_k, bias=bias)
        self.k_proj = nn.Linear(d_model, d_k, bias=bias)
        self.v_proj = nn.Linear(d_model, d_v, bias=bias)
"""
_CROSS_INIT = """
    def __init__(self, d_model, d_context, d_k=None, d_v=None, bias=False):
        super().__init__()
        d_k = d_k or d_model
        d_v = d_v or d_model
        self.q_proj = nn.Linear(d_model, d_k, bias=bias)
        self.k_proj = nn.Linear(d_context, d_k, bias=bias)
        self.v_proj = nn.Linear(d_context, d_v, bias=bias)
"""


def _self(forward: str) -> str:
    return "class SelfAttention(nn.Module):" + _INIT + forward


def _cross(forward: str) -> str:
    return "class CrossAttention(nn.Module):" + _CROSS_INIT + forward


VARIANTS = [
    # SelfAttention ---------------------------------------------------------------------------
    mutant(
        "SelfAttention",
        "no scale",
        _self("""
    def forward(self, x, attn_mask=None, is_causal=False):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return scaled_dot_product_attention(q, k, v, attn_mask, is_causal, scale=1.0)
"""),
        expect=r"not scaled",
    ),
    mutant(
        "SelfAttention",
        "scaled by sqrt(d_model)",
        _self("""
    def forward(self, x, attn_mask=None, is_causal=False):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return scaled_dot_product_attention(q, k, v, attn_mask, is_causal, scale=x.size(-1) ** -0.5)
"""),
        expect=r"d_model",
    ),
    mutant(
        "SelfAttention",
        "keys and values swapped",
        _self("""
    def forward(self, x, attn_mask=None, is_causal=False):
        q, k, v = self.q_proj(x), self.v_proj(x), self.k_proj(x)
        return scaled_dot_product_attention(q, k, v, attn_mask, is_causal)
"""),
        expect=r"swapped",
    ),
    mutant(
        "SelfAttention",
        "mask polarity inverted",
        _self("""
    def forward(self, x, attn_mask=None, is_causal=False):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if attn_mask is not None:
            attn_mask = ~attn_mask
        return scaled_dot_product_attention(q, k, v, attn_mask, is_causal)
"""),
        expect=r"polarity",
    ),
    mutant(
        "SelfAttention",
        "is_causal ignored",
        _self("""
    def forward(self, x, attn_mask=None, is_causal=False):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return scaled_dot_product_attention(q, k, v, attn_mask)
"""),
        expect=r"leaks the future|causal",
    ),
    mutant(
        "SelfAttention",
        "uses nn.MultiheadAttention",
        """
        class SelfAttention(nn.Module):
            def __init__(self, d_model, d_k=None, d_v=None, bias=False):
                super().__init__()
                self.mha = nn.MultiheadAttention(d_model, 1, bias=bias, batch_first=True)

            def forward(self, x, attn_mask=None, is_causal=False):
                return self.mha(x, x, x, need_weights=False)[0]
    """,
        expect=r"does not allow",
    ),
    alternative(
        "SelfAttention",
        "hand-written attention with einsum",
        """
        class SelfAttention(nn.Module):
            def __init__(self, d_model, d_k=None, d_v=None, bias=False):
                super().__init__()
                self.q_proj = nn.Linear(d_model, d_k if d_k is not None else d_model, bias=bias)
                self.k_proj = nn.Linear(d_model, d_k if d_k is not None else d_model, bias=bias)
                self.v_proj = nn.Linear(d_model, d_v if d_v is not None else d_model, bias=bias)

            def forward(self, x, attn_mask=None, is_causal=False):
                q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
                scores = torch.einsum("btd,bsd->bts", q, k) / math.sqrt(q.shape[-1])
                if is_causal:
                    attn_mask = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
                if attn_mask is not None:
                    scores = scores.masked_fill(~attn_mask, float("-inf"))
                weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
                return torch.einsum("bts,bsd->btd", weights, v)
    """,
    ),
    # CrossAttention --------------------------------------------------------------------------
    mutant(
        "CrossAttention",
        "keys and values from x",
        _cross("""
    def forward(self, x, context, attn_mask=None):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return scaled_dot_product_attention(q, k, v, attn_mask)
"""),
        expect=r"from the context|RuntimeError",
    ),
    mutant(
        "CrossAttention",
        "no scale",
        _cross("""
    def forward(self, x, context, attn_mask=None):
        q, k, v = self.q_proj(x), self.k_proj(context), self.v_proj(context)
        return scaled_dot_product_attention(q, k, v, attn_mask, scale=1.0)
"""),
        expect=r"not scaled",
    ),
    mutant(
        "CrossAttention",
        "k_proj built on d_model",
        """
        class CrossAttention(nn.Module):
            def __init__(self, d_model, d_context, d_k=None, d_v=None, bias=False):
                super().__init__()
                d_k, d_v = d_k or d_model, d_v or d_model
                self.q_proj = nn.Linear(d_model, d_k, bias=bias)
                self.k_proj = nn.Linear(d_model, d_k, bias=bias)
                self.v_proj = nn.Linear(d_model, d_v, bias=bias)

            def forward(self, x, context, attn_mask=None):
                return scaled_dot_product_attention(self.q_proj(x), self.k_proj(context), self.v_proj(context), attn_mask)
    """,
        expect=r"shape",
    ),
    mutant(
        "CrossAttention",
        "mask polarity inverted",
        _cross("""
    def forward(self, x, context, attn_mask=None):
        q, k, v = self.q_proj(x), self.k_proj(context), self.v_proj(context)
        return scaled_dot_product_attention(q, k, v, None if attn_mask is None else ~attn_mask)
"""),
        expect=r"polarity",
    ),
    alternative(
        "CrossAttention",
        "F.scaled_dot_product_attention",
        _cross("""
    def forward(self, x, context, attn_mask=None):
        import torch.nn.functional as F
        q, k, v = self.q_proj(x), self.k_proj(context), self.v_proj(context)
        return F.scaled_dot_product_attention(q, k, v, attn_mask)
"""),
    ),
]

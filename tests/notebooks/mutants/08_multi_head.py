"""Wrong and alternative implementations for 08_multi_head (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

_INIT = """
    def __init__(self, embed_dim, num_heads, bias=True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError("embed_dim must be divisible by num_heads")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
"""


def _mha(forward: str) -> str:
    return "class MultiHeadAttention(nn.Module):" + _INIT + forward


VARIANTS = [
    # split_heads -----------------------------------------------------------------------------
    mutant(
        "split_heads",
        "view straight to (B, H, T, Dh)",
        """
        def split_heads(x, num_heads):
            B, T, D = x.shape
            if D % num_heads:
                raise ValueError("D must be divisible by num_heads")
            return x.view(B, num_heads, T, D // num_heads)
    """,
        expect=r"reshaped straight",
    ),
    mutant(
        "split_heads",
        "view without the transpose: (B, T, H, Dh)",
        """
        def split_heads(x, num_heads):
            B, T, D = x.shape
            if D % num_heads:
                raise ValueError("D must be divisible by num_heads")
            return x.view(B, T, num_heads, D // num_heads)
    """,
        expect=r"shape",
    ),
    mutant(
        "split_heads",
        "features dealt out to the heads in turn",
        """
        def split_heads(x, num_heads):
            B, T, D = x.shape
            if D % num_heads:
                raise ValueError("D must be divisible by num_heads")
            return x.view(B, T, D // num_heads, num_heads).permute(0, 3, 1, 2)
    """,
        expect=r"dealt out",
    ),
    mutant(
        "split_heads",
        "no check that H divides D",
        """
        def split_heads(x, num_heads):
            B, T, D = x.shape
            return x[..., : D // num_heads * num_heads].reshape(B, T, num_heads, -1).transpose(1, 2)
    """,
        expect=r"instead of raising ValueError",
    ),
    alternative(
        "split_heads",
        "unflatten and permute",
        """
        def split_heads(x, num_heads):
            if x.shape[-1] % num_heads != 0:
                raise ValueError(f"{x.shape[-1]} features do not split into {num_heads} heads")
            return x.unflatten(-1, (num_heads, -1)).permute(0, 2, 1, 3)
    """,
    ),
    # merge_heads -----------------------------------------------------------------------------
    mutant(
        "merge_heads",
        "reshape without moving the heads back",
        """
        def merge_heads(x):
            B, H, T, Dh = x.shape
            return x.reshape(B, T, H * Dh)
    """,
        expect=r"without moving the head axis",
    ),
    mutant(
        "merge_heads",
        "heads interleaved feature by feature",
        """
        def merge_heads(x):
            B, H, T, Dh = x.shape
            return x.permute(0, 2, 3, 1).reshape(B, T, H * Dh)
    """,
        expect=r"interleaved",
    ),
    mutant(
        "merge_heads",
        "view after transpose (not contiguous)",
        """
        def merge_heads(x):
            B, H, T, Dh = x.shape
            return x.transpose(1, 2).view(B, T, H * Dh)
    """,
        expect=r"raised RuntimeError",
    ),
    alternative(
        "merge_heads",
        "concatenate the heads in a loop",
        """
        def merge_heads(x):
            return torch.cat([x[:, h] for h in range(x.shape[1])], dim=-1)
    """,
    ),
    # MultiHeadAttention ----------------------------------------------------------------------
    mutant(
        "MultiHeadAttention",
        "scaled by 1/sqrt(D) instead of 1/sqrt(Dh)",
        _mha("""
    def forward(self, query, key, value, attn_mask=None, is_causal=False, need_weights=False):
        H = self.num_heads
        q = split_heads(self.q_proj(query), H)
        k = split_heads(self.k_proj(key), H)
        v = split_heads(self.v_proj(value), H)
        weights = attention_weights(q, k, attn_mask, is_causal, scale=query.size(-1) ** -0.5)
        out = self.out_proj(merge_heads(weights @ v))
        return out, (weights if need_weights else None)
"""),
        expect=r"1/√D",
    ),
    mutant(
        "MultiHeadAttention",
        "no out_proj",
        _mha("""
    def forward(self, query, key, value, attn_mask=None, is_causal=False, need_weights=False):
        H = self.num_heads
        q = split_heads(self.q_proj(query), H)
        k = split_heads(self.k_proj(key), H)
        v = split_heads(self.v_proj(value), H)
        weights = attention_weights(q, k, attn_mask, is_causal)
        return merge_heads(weights @ v), (weights if need_weights else None)
"""),
        expect=r"out_proj",
    ),
    mutant(
        "MultiHeadAttention",
        "merge without transpose",
        _mha("""
    def forward(self, query, key, value, attn_mask=None, is_causal=False, need_weights=False):
        H = self.num_heads
        q = split_heads(self.q_proj(query), H)
        k = split_heads(self.k_proj(key), H)
        v = split_heads(self.v_proj(value), H)
        weights = attention_weights(q, k, attn_mask, is_causal)
        B, T, D = query.shape
        out = self.out_proj((weights @ v).reshape(B, T, D))
        return out, (weights if need_weights else None)
"""),
        expect=r"merged",
    ),
    mutant(
        "MultiHeadAttention",
        "weights averaged over the heads",
        _mha("""
    def forward(self, query, key, value, attn_mask=None, is_causal=False, need_weights=False):
        H = self.num_heads
        q = split_heads(self.q_proj(query), H)
        k = split_heads(self.k_proj(key), H)
        v = split_heads(self.v_proj(value), H)
        weights = attention_weights(q, k, attn_mask, is_causal)
        out = self.out_proj(merge_heads(weights @ v))
        return out, (weights.mean(dim=1) if need_weights else None)
"""),
        expect=r"averaged over the heads",
    ),
    mutant(
        "MultiHeadAttention",
        "one wide head (no split)",
        _mha("""
    def forward(self, query, key, value, attn_mask=None, is_causal=False, need_weights=False):
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        if attn_mask is not None and attn_mask.dim() == 4:
            attn_mask = attn_mask[:, 0]
        weights = attention_weights(q, k, attn_mask, is_causal)
        out = self.out_proj(weights @ v)
        return out, (weights[:, None] if need_weights else None)
"""),
    ),
    mutant(
        "MultiHeadAttention",
        "mask polarity of nn.MultiheadAttention",
        _mha("""
    def forward(self, query, key, value, attn_mask=None, is_causal=False, need_weights=False):
        H = self.num_heads
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            attn_mask = ~attn_mask
        q = split_heads(self.q_proj(query), H)
        k = split_heads(self.k_proj(key), H)
        v = split_heads(self.v_proj(value), H)
        weights = attention_weights(q, k, attn_mask, is_causal)
        out = self.out_proj(merge_heads(weights @ v))
        return out, (weights if need_weights else None)
"""),
        expect=r"polarity",
    ),
    alternative(
        "MultiHeadAttention",
        "a loop over the heads with einsum",
        _mha("""
    def forward(self, query, key, value, attn_mask=None, is_causal=False, need_weights=False):
        H = self.num_heads
        Dh = query.shape[-1] // H
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        outs, all_weights = [], []
        for h in range(H):
            cols = slice(h * Dh, (h + 1) * Dh)
            mask = attn_mask[:, 0] if attn_mask is not None and attn_mask.dim() == 4 else attn_mask
            w = attention_weights(q[..., cols], k[..., cols], mask, is_causal)
            outs.append(torch.einsum("bts,bsd->btd", w, v[..., cols]))
            all_weights.append(w)
        out = self.out_proj(torch.cat(outs, dim=-1))
        return out, (torch.stack(all_weights, dim=1) if need_weights else None)
"""),
    ),
    # load_torch_mha --------------------------------------------------------------------------
    mutant(
        "load_torch_mha",
        "q and k blocks swapped",
        """
        def load_torch_mha(module, torch_mha):
            w_q, w_k, w_v = torch_mha.in_proj_weight.chunk(3)
            with torch.no_grad():
                module.q_proj.weight.copy_(w_k)
                module.k_proj.weight.copy_(w_q)
                module.v_proj.weight.copy_(w_v)
                if torch_mha.in_proj_bias is not None:
                    b_q, b_k, b_v = torch_mha.in_proj_bias.chunk(3)
                    module.q_proj.bias.copy_(b_k)
                    module.k_proj.bias.copy_(b_q)
                    module.v_proj.bias.copy_(b_v)
                    module.out_proj.bias.copy_(torch_mha.out_proj.bias)
                module.out_proj.weight.copy_(torch_mha.out_proj.weight)
    """,
        expect=r"wrong order",
    ),
    mutant(
        "load_torch_mha",
        "weights transposed",
        """
        def load_torch_mha(module, torch_mha):
            blocks = torch_mha.in_proj_weight.chunk(3)
            with torch.no_grad():
                for proj, w in zip((module.q_proj, module.k_proj, module.v_proj), blocks):
                    proj.weight.copy_(w.T)
                if torch_mha.in_proj_bias is not None:
                    for proj, b in zip((module.q_proj, module.k_proj, module.v_proj), torch_mha.in_proj_bias.chunk(3)):
                        proj.bias.copy_(b)
                    module.out_proj.bias.copy_(torch_mha.out_proj.bias)
                module.out_proj.weight.copy_(torch_mha.out_proj.weight)
    """,
        expect=r"transposed",
    ),
    mutant(
        "load_torch_mha",
        "out_proj not copied",
        """
        def load_torch_mha(module, torch_mha):
            blocks = torch_mha.in_proj_weight.chunk(3)
            with torch.no_grad():
                for proj, w in zip((module.q_proj, module.k_proj, module.v_proj), blocks):
                    proj.weight.copy_(w)
                if torch_mha.in_proj_bias is not None:
                    for proj, b in zip((module.q_proj, module.k_proj, module.v_proj), torch_mha.in_proj_bias.chunk(3)):
                        proj.bias.copy_(b)
    """,
        expect=r"out_proj was not copied",
    ),
    mutant(
        "load_torch_mha",
        "biases not copied",
        """
        def load_torch_mha(module, torch_mha):
            blocks = torch_mha.in_proj_weight.chunk(3)
            with torch.no_grad():
                for proj, w in zip((module.q_proj, module.k_proj, module.v_proj), blocks):
                    proj.weight.copy_(w)
                module.out_proj.weight.copy_(torch_mha.out_proj.weight)
    """,
        expect=r"biases",
    ),
    alternative(
        "load_torch_mha",
        "load_state_dict with sliced tensors",
        """
        def load_torch_mha(module, torch_mha):
            D = torch_mha.embed_dim
            state = {}
            for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
                state[f"{name}.weight"] = torch_mha.in_proj_weight[i * D : (i + 1) * D].detach().clone()
                if torch_mha.in_proj_bias is not None:
                    state[f"{name}.bias"] = torch_mha.in_proj_bias[i * D : (i + 1) * D].detach().clone()
            for k, v in torch_mha.out_proj.state_dict().items():
                state[f"out_proj.{k}"] = v.clone()
            module.load_state_dict(state)
    """,
    ),
]

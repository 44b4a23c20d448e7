"""Wrong and alternative implementations for 09_transformer_block (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

_FF_INIT = """
    def __init__(self, d_model, d_ff, activation="gelu"):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"unknown activation {activation!r}")
        self.activation = F.relu if activation == "relu" else F.gelu
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
"""

_LAYER_INIT = """
    def __init__(self, d_model, nhead, dim_feedforward, norm_first=True, activation="relu",
                 layer_norm_eps=1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.activation = F.relu if activation == "relu" else F.gelu
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
"""


def _ff(forward: str, init: str = _FF_INIT) -> str:
    return "class FeedForward(nn.Module):" + init + forward


def _layer(forward: str, init: str = _LAYER_INIT) -> str:
    return "class TransformerEncoderLayer(nn.Module):" + init + forward


_SA_FF = """
    def sa(self, h, attn_mask):
        return self.self_attn(h, h, h, attn_mask=attn_mask)[0]

    def ff(self, h):
        return self.linear2(self.activation(self.linear1(h)))
"""

VARIANTS = [
    # layer_norm ------------------------------------------------------------------------------
    mutant(
        "layer_norm",
        "unbiased variance",
        """
        def layer_norm(x, weight, bias, eps=1e-5):
            mean = x.mean(-1, keepdim=True)
            var = x.var(-1, keepdim=True)
            return (x - mean) / torch.sqrt(var + eps) * weight + bias
    """,
        expect=r"unbiased",
    ),
    mutant(
        "layer_norm",
        "eps added to the standard deviation",
        """
        def layer_norm(x, weight, bias, eps=1e-5):
            mean = x.mean(-1, keepdim=True)
            std = x.std(-1, keepdim=True, unbiased=False)
            return (x - mean) / (std + eps) * weight + bias
    """,
        expect=r"inside the square root",
    ),
    mutant(
        "layer_norm",
        "statistics over the batch axis",
        """
        def layer_norm(x, weight, bias, eps=1e-5):
            mean = x.mean(0, keepdim=True)
            var = x.var(0, keepdim=True, unbiased=False)
            return (x - mean) / torch.sqrt(var + eps) * weight + bias
    """,
        expect=r"wrong axis",
    ),
    mutant(
        "layer_norm",
        "calls F.layer_norm",
        """
        def layer_norm(x, weight, bias, eps=1e-5):
            return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    """,
        expect=r"does not allow",
    ),
    mutant(
        "layer_norm",
        "forgets weight and bias",
        """
        def layer_norm(x, weight, bias, eps=1e-5):
            mean = x.mean(-1, keepdim=True)
            var = x.var(-1, keepdim=True, unbiased=False)
            return (x - mean) / torch.sqrt(var + eps)
    """,
        expect=r"not applied",
    ),
    alternative(
        "layer_norm",
        "var_mean and rsqrt",
        """
        def layer_norm(x, weight, bias, eps=1e-5):
            var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
            return torch.addcmul(bias, (x - mean) * torch.rsqrt(var + eps), weight)
    """,
    ),
    # FeedForward -----------------------------------------------------------------------------
    mutant(
        "FeedForward",
        "always ReLU",
        _ff("""
    def forward(self, x):
        return self.linear2(F.relu(self.linear1(x)))
"""),
        expect=r"does not follow the `activation` argument",
    ),
    mutant(
        "FeedForward",
        "tanh approximation of GELU",
        _ff(
            """
    def forward(self, x):
        return self.linear2(self.activation(self.linear1(x)))
""",
            _FF_INIT.replace("else F.gelu", "else (lambda h: F.gelu(h, approximate='tanh'))"),
        ),
        expect=r"tanh approximation",
    ),
    mutant(
        "FeedForward",
        "no activation",
        _ff("""
    def forward(self, x):
        return self.linear2(self.linear1(x))
"""),
        expect=r"no activation",
    ),
    mutant(
        "FeedForward",
        "activation after linear2",
        _ff("""
    def forward(self, x):
        return self.activation(self.linear2(self.linear1(x)))
"""),
        expect=r"after linear2",
    ),
    mutant(
        "FeedForward",
        "no error for an unknown activation",
        _ff(
            """
    def forward(self, x):
        return self.linear2(self.activation(self.linear1(x)))
""",
            _FF_INIT.replace(
                '            raise ValueError(f"unknown activation {activation!r}")\n',
                "            pass\n",
            ),
        ),
        expect=r"instead of raising ValueError",
    ),
    alternative(
        "FeedForward",
        "functional calls and a lookup table",
        """
class FeedForward(nn.Module):
    ACTIVATIONS = {"relu": torch.relu, "gelu": lambda h: 0.5 * h * (1 + torch.erf(h / 2**0.5))}

    def __init__(self, d_model, d_ff, activation="gelu"):
        super().__init__()
        try:
            self.act = self.ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(f"activation {activation!r} is not one of relu, gelu") from None
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x):
        h = F.linear(x, self.linear1.weight, self.linear1.bias)
        return F.linear(self.act(h), self.linear2.weight, self.linear2.bias)
""",
    ),
    # TransformerEncoderLayer -----------------------------------------------------------------
    mutant(
        "TransformerEncoderLayer",
        "pre-LN and post-LN swapped",
        _layer(
            _SA_FF
            + """
    def forward(self, x, attn_mask=None):
        if not self.norm_first:
            x = x + self.sa(self.norm1(x), attn_mask)
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self.sa(x, attn_mask))
        return self.norm2(x + self.ff(x))
"""
        ),
        expect=r"swapped",
    ),
    mutant(
        "TransformerEncoderLayer",
        "no residual around self-attention",
        _layer(
            _SA_FF
            + """
    def forward(self, x, attn_mask=None):
        if self.norm_first:
            x = self.sa(self.norm1(x), attn_mask)
            return x + self.ff(self.norm2(x))
        x = self.norm1(self.sa(x, attn_mask))
        return self.norm2(x + self.ff(x))
"""
        ),
        expect=r"residual connection around self-attention",
    ),
    mutant(
        "TransformerEncoderLayer",
        "pre-LN residual adds the normalised x",
        _layer(
            _SA_FF
            + """
    def forward(self, x, attn_mask=None):
        if self.norm_first:
            x = self.norm1(x)
            x = x + self.sa(x, attn_mask)
            x = self.norm2(x)
            return x + self.ff(x)
        x = self.norm1(x + self.sa(x, attn_mask))
        return self.norm2(x + self.ff(x))
"""
        ),
        expect=r"NORMALISED",
    ),
    mutant(
        "TransformerEncoderLayer",
        "attn_mask not passed on",
        _layer(
            _SA_FF
            + """
    def forward(self, x, attn_mask=None):
        if self.norm_first:
            x = x + self.sa(self.norm1(x), None)
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self.sa(x, None))
        return self.norm2(x + self.ff(x))
"""
        ),
        expect=r"attn_mask is not passed on",
    ),
    mutant(
        "TransformerEncoderLayer",
        "layer_norm_eps ignored",
        _layer(
            _SA_FF
            + """
    def forward(self, x, attn_mask=None):
        if self.norm_first:
            x = x + self.sa(self.norm1(x), attn_mask)
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self.sa(x, attn_mask))
        return self.norm2(x + self.ff(x))
""",
            _LAYER_INIT.replace(", eps=layer_norm_eps", ""),
        ),
    ),
    alternative(
        "TransformerEncoderLayer",
        "one sublayer helper, activation looked up in F",
        """
class TransformerEncoderLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward, norm_first=True, activation="relu",
                 layer_norm_eps=1e-5):
        super().__init__()
        self.pre = norm_first
        self.act = getattr(F, activation)
        self.self_attn = MultiHeadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)

    def _sublayer(self, x, norm, fn):
        return x + fn(norm(x)) if self.pre else norm(x + fn(x))

    def forward(self, x, attn_mask=None):
        x = self._sublayer(x, self.norm1, lambda h: self.self_attn(h, h, h, attn_mask)[0])
        return self._sublayer(x, self.norm2, lambda h: self.linear2(self.act(self.linear1(h))))
""",
    ),
    # count_parameters ------------------------------------------------------------------------
    mutant(
        "count_parameters",
        "frozen parameters counted",
        """
        def count_parameters(module, trainable_only=True):
            return sum(p.numel() for p in module.parameters())
    """,
        expect=r"frozen",
    ),
    mutant(
        "count_parameters",
        "state_dict counts buffers",
        """
        def count_parameters(module, trainable_only=True):
            return sum(v.numel() for v in module.state_dict().values())
    """,
        expect=r"buffers",
    ),
    mutant(
        "count_parameters",
        "tied weights counted twice",
        """
        def count_parameters(module, trainable_only=True):
            return sum(
                p.numel()
                for _, p in module.named_parameters(remove_duplicate=False)
                if p.requires_grad or not trainable_only
            )
    """,
        expect=r"twice",
    ),
    mutant(
        "count_parameters",
        "trainable_only ignored",
        """
        def count_parameters(module, trainable_only=True):
            return sum(p.numel() for p in module.parameters() if p.requires_grad)
    """,
        expect=r"every parameter",
    ),
    mutant(
        "count_parameters",
        "returns a tensor",
        """
        def count_parameters(module, trainable_only=True):
            return torch.tensor([p.numel() for p in module.parameters() if p.requires_grad or not trainable_only]).sum()
    """,
        expect=r"\.item\(\)",
    ),
    alternative(
        "count_parameters",
        "a loop that skips parameters already seen",
        """
        def count_parameters(module, trainable_only=True):
            seen, total = set(), 0
            for sub in module.modules():
                for p in sub._parameters.values():
                    if p is None or id(p) in seen:
                        continue
                    seen.add(id(p))
                    if trainable_only and not p.requires_grad:
                        continue
                    total += p.numel()
            return total
    """,
    ),
]

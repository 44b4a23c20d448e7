"""Wrong and alternative implementations for 04_positions (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

VARIANTS = [
    # sinusoidal_positional_encoding ----------------------------------------------------------
    mutant(
        "sinusoidal_positional_encoding",
        "sin and cos swapped",
        """
        def sinusoidal_positional_encoding(max_len, d_model, base=10000.0):
            if d_model % 2:
                raise ValueError("d_model must be even")
            pos = torch.arange(max_len, dtype=torch.float64)[:, None]
            angle = pos / base ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
            pe = torch.empty(max_len, d_model, dtype=torch.float64)
            pe[:, 0::2], pe[:, 1::2] = torch.cos(angle), torch.sin(angle)
            return pe.float()
    """,
        expect=r"swapped",
    ),
    mutant(
        "sinusoidal_positional_encoding",
        "concatenated instead of interleaved",
        """
        def sinusoidal_positional_encoding(max_len, d_model, base=10000.0):
            if d_model % 2:
                raise ValueError("d_model must be even")
            pos = torch.arange(max_len, dtype=torch.float64)[:, None]
            angle = pos / base ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
            return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1).float()
    """,
        expect=r"concatenated",
    ),
    mutant(
        "sinusoidal_positional_encoding",
        "exponent i instead of 2i",
        """
        def sinusoidal_positional_encoding(max_len, d_model, base=10000.0):
            if d_model % 2:
                raise ValueError("d_model must be even")
            pos = torch.arange(max_len, dtype=torch.float64)[:, None]
            angle = pos / base ** (torch.arange(d_model // 2, dtype=torch.float64) / d_model)
            pe = torch.empty(max_len, d_model, dtype=torch.float64)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
            return pe.float()
    """,
        expect=r"2i",
    ),
    mutant(
        "sinusoidal_positional_encoding",
        "no check for odd d_model",
        """
        def sinusoidal_positional_encoding(max_len, d_model, base=10000.0):
            pos = torch.arange(max_len, dtype=torch.float64)[:, None]
            angle = pos / base ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
            pe = torch.zeros(max_len, d_model + d_model % 2, dtype=torch.float64)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
            return pe[:, :d_model].float()
    """,
        expect=r"instead of raising ValueError",
    ),
    alternative(
        "sinusoidal_positional_encoding",
        "stack and flatten, exp-log form",
        """
        def sinusoidal_positional_encoding(max_len, d_model, base=10000.0):
            if d_model % 2:
                raise ValueError(f"d_model={d_model} is odd; sin/cos come in pairs")
            pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
            freq = torch.exp(-math.log(base) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
            angle = pos * freq
            return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(max_len, d_model).float()
    """,
    ),
    # LearnedPositionalEmbedding --------------------------------------------------------------
    mutant(
        "LearnedPositionalEmbedding",
        "positions from the batch axis",
        """
        class LearnedPositionalEmbedding(nn.Module):
            def __init__(self, max_len, d_model):
                super().__init__()
                self.max_len = max_len
                self.embedding = nn.Embedding(max_len, d_model)

            def forward(self, x):
                if x.size(1) > self.max_len:
                    raise ValueError("too long")
                return x + self.embedding(torch.arange(x.size(0)))[:, None, :]
    """,
        expect=r"batch axis",
    ),
    mutant(
        "LearnedPositionalEmbedding",
        "submodule named differently",
        """
        class LearnedPositionalEmbedding(nn.Module):
            def __init__(self, max_len, d_model):
                super().__init__()
                self.max_len = max_len
                self.pos = nn.Embedding(max_len, d_model)

            def forward(self, x):
                if x.size(1) > self.max_len:
                    raise ValueError("too long")
                return x + self.pos(torch.arange(x.size(1)))
    """,
        expect=r"no parameter `embedding.weight`",
    ),
    mutant(
        "LearnedPositionalEmbedding",
        "replaces the tokens",
        """
        class LearnedPositionalEmbedding(nn.Module):
            def __init__(self, max_len, d_model):
                super().__init__()
                self.max_len = max_len
                self.embedding = nn.Embedding(max_len, d_model)

            def forward(self, x):
                if x.size(1) > self.max_len:
                    raise ValueError("too long")
                return self.embedding(torch.arange(x.size(1))).expand_as(x)
    """,
        expect=r"replace the tokens",
    ),
    mutant(
        "LearnedPositionalEmbedding",
        "no length check",
        """
        class LearnedPositionalEmbedding(nn.Module):
            def __init__(self, max_len, d_model):
                super().__init__()
                self.embedding = nn.Embedding(max_len, d_model)

            def forward(self, x):
                T = min(x.size(1), self.embedding.num_embeddings)
                out = x.clone()
                out[:, :T] += self.embedding.weight[:T]
                return out
    """,
        expect=r"instead of raising ValueError",
    ),
    alternative(
        "LearnedPositionalEmbedding",
        "index the weight directly",
        """
        class LearnedPositionalEmbedding(nn.Module):
            def __init__(self, max_len, d_model):
                super().__init__()
                self.embedding = nn.Embedding(max_len, d_model)

            def forward(self, x):
                B, T, D = x.shape
                if T > self.embedding.num_embeddings:
                    raise ValueError(f"T={T} > max_len={self.embedding.num_embeddings}; truncate x")
                return x + self.embedding.weight[:T].unsqueeze(0)
    """,
    ),
    # relative_positions ----------------------------------------------------------------------
    mutant(
        "relative_positions",
        "i - j",
        """
        def relative_positions(T, max_distance):
            pos = torch.arange(T)
            return (pos[:, None] - pos[None, :]).clamp(-max_distance, max_distance) + max_distance
    """,
        expect=r"i - j",
    ),
    mutant(
        "relative_positions",
        "not shifted",
        """
        def relative_positions(T, max_distance):
            pos = torch.arange(T)
            return (pos[None, :] - pos[:, None]).clamp(-max_distance, max_distance)
    """,
        expect=r"not shifted",
    ),
    mutant(
        "relative_positions",
        "not clipped",
        """
        def relative_positions(T, max_distance):
            pos = torch.arange(T)
            return pos[None, :] - pos[:, None] + max_distance
    """,
        expect=r"not clipped",
    ),
    alternative(
        "relative_positions",
        "double loop",
        """
        def relative_positions(T, max_distance):
            out = torch.empty(T, T, dtype=torch.long)
            for i in range(T):
                for j in range(T):
                    out[i, j] = max(-max_distance, min(max_distance, j - i)) + max_distance
            return out
    """,
    ),
]

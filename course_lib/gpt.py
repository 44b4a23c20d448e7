"""Chapter 13 — a GPT from the course's parts: training, sampling and the KV cache.

A decoder-only language model is the course's pieces stacked: token and learned position
embeddings (chapters 03–04), pre-LN blocks (chapter 09) whose attention is causal multi-head
self-attention (chapters 05, 07, 08), a final LayerNorm and an LM head that shares its weight
with the token embedding. Trained on next-token targets (chapter 10), the LAST position's
logits predict the token that comes next; generating text is that prediction, sampled, appended
and fed back in.

Decoding turns a row of logits (V,) into one token: greedy (argmax), temperature (divide the
logits: < 1 sharpens, > 1 flattens), top-k (keep the k largest), top-p / nucleus (keep the
smallest set of most probable tokens whose mass reaches p). Re-running the whole prefix for each
new token repeats work that does not change: the keys and values of earlier positions. The KV
cache keeps them, so each step attends one new query to the cached keys. Grouped-query attention
(GQA) lets several query heads share one key/value head, so the cache shrinks by that factor;
multi-query attention (MQA) is the extreme of one key/value head.

Shape legend: B batch, T new positions, T_past cached positions, S = T_past + T, D embed_dim,
H heads, Dh = D // H, V vocabulary size, L layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_lib.attention import scaled_dot_product_attention
from course_lib.multi_head import MultiHeadAttention, merge_heads, split_heads
from course_lib.pretraining import IGNORE_INDEX, masked_cross_entropy
from course_lib.transformer import FeedForward

__all__ = [
    "perplexity",
    "top_k_filter",
    "top_p_filter",
    "sample_next_token",
    "cached_attention",
    "GPTBlock",
    "GPT",
    "generate",
    "repeat_kv",
    "grouped_query_attention",
    "kv_cache_bytes",
    "lm_batch",
    "train_gpt",
    "CharTokenizer",
]

KVPair = tuple[Tensor, Tensor]


# --- measuring a language model ------------------------------------------------------------------


def perplexity(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> float:
    """exp of the mean cross-entropy over the positions whose target is not ``ignore_index``.

    A model that spreads its probability evenly over V tokens has perplexity V; a perfect one
    has 1. It reads as "the number of tokens the model is choosing between".

    Args:
        logits: (B, T, V). targets: (B, T) token ids, or ``ignore_index`` to skip a position.
    Returns:
        a Python float.

    Example: uniform logits over V = 8 tokens -> 8.0.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(
            f"logits must be (B, T, V) and targets (B, T), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    if not (targets != ignore_index).any():
        raise ValueError(
            f"every target is ignore_index={ignore_index}: there is nothing to measure"
        )
    loss = masked_cross_entropy(logits.double(), targets, ignore_index=ignore_index)
    return math.exp(loss.item())


# --- decoding: from a row of logits to one token -------------------------------------------------


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Every logit smaller than the k-th largest of its row becomes -inf.

    Ties with the k-th largest are kept, as Hugging Face's ``TopKLogitsWarper`` does, so a row
    can keep more than k tokens. ``k >= V`` keeps everything.

    Args:
        logits: (..., V). k: a positive int.
    Returns:
        a new tensor of the same shape.

    Example: [1., 3., 2., 3.] with k=2 -> [-inf, 3., -inf, 3.] (ties at the 2nd place: both kept).
    """
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise ValueError(f"k must be a positive int, got {k!r}")
    V = logits.size(-1)
    if k >= V:
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1) the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))  # (..., V)


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering: keep the smallest set of most probable tokens whose mass reaches p.

    The token whose probability carries the running total across p is kept; the most probable
    token is always kept; every other logit becomes -inf. ``p == 1`` keeps everything.

    Args:
        logits: (..., V). p: in (0, 1].
    Returns:
        a new tensor of the same shape.

    Example: probabilities [0.5, 0.3, 0.15, 0.05] with p=0.7 keep the first two (0.5 < 0.7,
    0.5 + 0.3 >= 0.7).
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if p == 1.0:
        return logits.clone()
    probs = torch.softmax(logits.float(), dim=-1)  # (..., V)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)  # (..., V)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (..., V) mass of better tokens
    drop_sorted = mass_before >= p  # the set already reached p without this token
    drop_sorted[..., 0] = False  # the most probable token is always kept
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocab order
    return logits.masked_fill(drop, float("-inf"))


def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token id per row: greedy at temperature 0, else sampled after top-k and top-p.

    Args:
        logits: (B, V). temperature: 0 for argmax (first index on ties), else > 0; the logits
            are divided by it. top_k, top_p: filters applied in that order (None = off).
        generator: the source of the draw (``torch.multinomial(..., generator=generator)``).
    Returns:
        (B,) int64.
    """
    if logits.dim() != 2:
        raise ValueError(
            f"logits must be (B, V), got shape {tuple(logits.shape)}; for a model's (B, T, V) "
            "output pass logits[:, -1], the last position"
        )
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)  # (B,) torch returns the first maximum on ties
    scaled = logits / temperature  # (B, V)
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled, dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


# --- the KV cache ----------------------------------------------------------------------------------


def cached_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    past_key: Tensor | None = None,
    past_value: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Causal attention of new positions over the cached past and themselves.

    New position i (counted from 0 among the new ones) is absolute position T_past + i, so it
    sees every past key and the new keys 0..i: the causal mask is aligned bottom-right.

    Args:
        query, key, value: (B, H, T, Dh) for the T new positions.
        past_key, past_value: (B, H, T_past, Dh), or both None.
    Returns:
        ``(out, key, value)``: out (B, H, T, Dh); key and value with the past prepended,
        (B, H, T_past + T, Dh) — the cache for the next step.
    """
    if (past_key is None) != (past_value is None):
        raise ValueError("pass past_key and past_value together (or neither)")
    if past_key is not None:
        if past_key.shape[:2] != key.shape[:2] or past_key.size(-1) != key.size(-1):
            raise ValueError(
                f"past_key {tuple(past_key.shape)} does not match key {tuple(key.shape)} in "
                "(B, H, ., Dh): the cache must come from the same layer and batch"
            )
        key = torch.cat([past_key, key], dim=2)  # (B, H, S, Dh)
        value = torch.cat([past_value, value], dim=2)  # (B, H, S, Dh)
    T, S = query.size(2), key.size(2)
    t_past = S - T
    rows = torch.arange(T, device=query.device)[:, None] + t_past  # (T, 1) absolute positions
    mask = torch.arange(S, device=query.device)[None, :] <= rows  # (T, S) True = may attend
    out = scaled_dot_product_attention(query, key, value, attn_mask=mask)  # (B, H, T, Dh)
    return out, key, value


# --- the model -----------------------------------------------------------------------------------


class GPTBlock(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); the attention is causal and cached.

    The attention's four projections are chapter 08's ``MultiHeadAttention`` (``q_proj``,
    ``k_proj``, ``v_proj``, ``out_proj``); the heads are split and merged with chapter 08's
    functions and attend with :func:`cached_attention`.
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = nn.LayerNorm(embed_dim)
        self.attn = MultiHeadAttention(embed_dim, num_heads)
        self.ln_2 = nn.LayerNorm(embed_dim)
        self.mlp = FeedForward(embed_dim, ff_dim, activation="gelu")
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, past: KVPair | None = None) -> tuple[Tensor, KVPair]:
        """x (B, T, D), past (key, value) each (B, H, T_past, Dh) -> (x, (key, value))."""
        h = self.ln_1(x)  # (B, T, D)
        q = split_heads(self.attn.q_proj(h), self.num_heads)  # (B, H, T, Dh)
        k = split_heads(self.attn.k_proj(h), self.num_heads)  # (B, H, T, Dh)
        v = split_heads(self.attn.v_proj(h), self.num_heads)  # (B, H, T, Dh)
        past_k, past_v = past if past is not None else (None, None)
        out, k, v = cached_attention(q, k, v, past_k, past_v)  # out (B, H, T, Dh)
        x = x + self.dropout(self.attn.out_proj(merge_heads(out)))  # (B, T, D)
        x = x + self.dropout(self.mlp(self.ln_2(x)))  # (B, T, D)
        return x, (k, v)


class GPT(nn.Module):
    """A decoder-only language model built from the course's parts.

    Args:
        vocab_size: V. max_len: longest context (rows of the position table). embed_dim: D.
        num_heads: H. num_layers: L blocks. ff_dim: hidden width of each feed-forward network.
        dropout: on the embeddings and every residual branch while training.
        tie_weights: the LM head reuses the token embedding matrix (V, D), as GPT-2 does.

    ``forward(ids, past=None)`` returns ``(logits, present)``: logits (B, T, V) and, per layer,
    the (key, value) cache (B, H, T_past + T, Dh) to pass back as ``past`` for the next step.
    Call :meth:`reset_parameters` with a generator for reproducible weights.
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        embed_dim: int,
        num_heads: int,
        num_layers: int,
        ff_dim: int,
        dropout: float = 0.0,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}; "
                f"pick num_heads among the divisors of {embed_dim}"
            )
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.head_dim = embed_dim // num_heads
        self.token_embedding = nn.Embedding(vocab_size, embed_dim)  # (V, D)
        self.position_embedding = nn.Embedding(max_len, embed_dim)  # (max_len, D)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            GPTBlock(embed_dim, num_heads, ff_dim, dropout) for _ in range(num_layers)
        )
        self.ln_f = nn.LayerNorm(embed_dim)  # pre-LN stacks need a final norm before the head
        self.lm_head = nn.Linear(embed_dim, vocab_size, bias=False)  # weight (V, D)
        if tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one (V, D) matrix, two uses

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Matrices ~ N(0, 0.02²), biases 0, LayerNorm scales 1: reproducible from ``generator``."""
        for name, p in self.named_parameters():  # a tied matrix is listed (and drawn) once
            if p.dim() >= 2:
                nn.init.normal_(p, mean=0.0, std=0.02, generator=generator)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.ones_(p)

    def forward(
        self, ids: Tensor, past: Sequence[KVPair] | None = None
    ) -> tuple[Tensor, list[KVPair]]:
        """ids (B, T) int64, past: L pairs (B, H, T_past, Dh) -> (logits (B, T, V), present)."""
        if ids.dim() != 2:
            raise ValueError(f"ids must be (B, T), got shape {tuple(ids.shape)}")
        if past is not None and len(past) != self.num_layers:
            raise ValueError(f"past has {len(past)} layers, the model has {self.num_layers}")
        T = ids.size(1)
        t_past = past[0][0].size(2) if past else 0
        if t_past + T > self.max_len:
            raise ValueError(
                f"{t_past} cached + {T} new positions exceed max_len={self.max_len}: crop the "
                f"input to its last {self.max_len} tokens and start without a cache"
            )
        positions = torch.arange(t_past, t_past + T, device=ids.device)  # (T,) absolute
        x = self.token_embedding(ids) + self.position_embedding(positions)  # (B, T, D)
        x = self.dropout(x)
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, past[i] if past else None)  # (B, T, D)
            present.append(kv)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        return logits, present


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Tensor:
    """Extend ``prompt`` by ``max_new_tokens`` tokens, one at a time.

    Each step takes the logits of the LAST position, draws one token with
    :func:`sample_next_token` and appends it. With the cache, only the new token goes through
    the model (its keys and values join the cache); without it, the whole sequence is re-run.
    The input is cropped to the model's last ``max_len`` tokens when it is longer, and then the
    cache starts afresh (learned positions shift), so both ways give the same tokens.

    Args:
        model: takes ``(ids, past)`` and returns ``(logits, present)`` like :class:`GPT`, and has
            ``max_len``. Put it in ``eval()`` mode first if it has dropout.
        prompt: (B, T0) int64.
    Returns:
        (B, T0 + max_new_tokens) int64; the prompt is not modified.
    """
    if prompt.dim() != 2 or prompt.size(1) == 0 or prompt.dtype != torch.long:
        raise ValueError(
            f"prompt must be a non-empty (B, T0) int64 tensor, got shape {tuple(prompt.shape)} "
            f"and dtype {prompt.dtype}; for one sequence use ids[None]"
        )
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    max_len = model.max_len
    ids = prompt
    past = None
    for _ in range(max_new_tokens):
        cached = 0 if past is None else past[0][0].size(2)
        if use_cache and past is not None and cached + 1 <= max_len:
            logits, past = model(ids[:, -1:], past)  # only the newest token: (B, 1, V)
        else:
            logits, past = model(ids[:, -max_len:], None)  # the whole (cropped) context
        next_id = sample_next_token(logits[:, -1], temperature, top_k, top_p, generator)  # (B,)
        ids = torch.cat([ids, next_id[:, None]], dim=1)  # (B, T + 1)
        if not use_cache:
            past = None
    return ids


# --- grouped-query attention: a smaller cache ------------------------------------------------------


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, H_kv, S, Dh) -> (B, H_kv * n_rep, S, Dh): each key/value head serves n_rep query heads.

    Head j of the result is head j // n_rep of the input (consecutive query heads share), as
    ``F.scaled_dot_product_attention(..., enable_gqa=True)`` and Llama's ``repeat_kv`` do.
    """
    if n_rep == 1:
        return x
    return x.repeat_interleave(n_rep, dim=1)  # (B, H_kv * n_rep, S, Dh)


def grouped_query_attention(
    query: Tensor, key: Tensor, value: Tensor, is_causal: bool = False
) -> Tensor:
    """Attention where H query heads share H_kv key/value heads (GQA; H_kv = 1 is MQA).

    Args:
        query: (B, H, T, Dh). key, value: (B, H_kv, S, Dh) with H a multiple of H_kv.
    Returns:
        (B, H, T, Dh), equal to ``F.scaled_dot_product_attention(query, key, value,
        is_causal=is_causal, enable_gqa=True)``.
    """
    H, H_kv = query.size(1), key.size(1)
    if H_kv == 0 or H % H_kv != 0 or value.size(1) != H_kv:
        raise ValueError(
            f"query has {H} heads and key/value {H_kv}/{value.size(1)}: the key/value heads must "
            "be equal and divide the query heads"
        )
    k = repeat_kv(key, H // H_kv)  # (B, H, S, Dh)
    v = repeat_kv(value, H // H_kv)  # (B, H, S, Dh)
    return scaled_dot_product_attention(query, k, v, is_causal=is_causal)  # (B, H, T, Dh)


def kv_cache_bytes(
    num_layers: int,
    batch: int,
    num_kv_heads: int,
    seq_len: int,
    head_dim: int,
    dtype: torch.dtype = torch.float32,
) -> int:
    """Bytes of a KV cache: keys and values (2) for every layer, head, position and feature.

    Example: GPT-2 small (12 layers, 12 heads of 64) at 1024 tokens in float16 ->
    2 · 12 · 1 · 12 · 1024 · 64 · 2 = 37,748,736 bytes (36 MiB) per sequence.
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    return 2 * num_layers * batch * num_kv_heads * seq_len * head_dim * itemsize


# --- training on the shipped corpus ----------------------------------------------------------------


class CharTokenizer:
    """Characters as tokens: the vocabulary is every distinct character of the training text.

    Example: ``CharTokenizer("abca").encode("cab")`` -> [2, 0, 1].
    """

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("text is empty: build the tokenizer from the training corpus")
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(f"characters {unknown} are not in the vocabulary of the corpus")
        return [self.stoi[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def lm_batch(
    data: Tensor, block_size: int, batch_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Random windows of the token stream and their next-token targets.

    Args:
        data: (N,) int64, the whole corpus as one stream.
    Returns:
        ``(x, y)`` each (batch_size, block_size); ``y[:, t] = x[:, t + 1]`` in the stream, i.e.
        chapter 10's causal labels with the one extra token read past the window.
    """
    if data.dim() != 1 or data.numel() <= block_size:
        raise ValueError(f"data must be 1-D and longer than block_size={block_size}")
    starts = torch.randint(data.numel() - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)  # (block_size + 1,)
    windows = data[starts[:, None] + offsets]  # (B, block_size + 1)
    return windows[:, :-1], windows[:, 1:]  # (B, block_size) each


def train_gpt(
    model: GPT,
    data: Tensor,
    *,
    steps: int,
    generator: torch.Generator,
    block_size: int | None = None,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 0.1,
    grad_clip: float = 1.0,
) -> list[float]:
    """Train ``model`` in place with AdamW and gradient clipping; return each step's loss.

    Dropout draws from torch's global generator; it is seeded from ``generator`` inside a
    forked RNG state, so the run is reproducible and the caller's global state is untouched.

    Args:
        data: (N,) int64 token stream. block_size: window length (default: ``model.max_len``).
    Returns:
        ``steps`` floats, the mean next-token cross-entropy of each batch (nats).
    """
    block_size = block_size or model.max_len
    if block_size > model.max_len:
        raise ValueError(f"block_size={block_size} exceeds the model's max_len={model.max_len}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    losses = []
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            x, y = lm_batch(data, block_size, batch_size, generator)  # (B, T) each
            logits, _ = model(x)  # (B, T, V)
            loss = masked_cross_entropy(logits, y, ignore_index=IGNORE_INDEX)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    return losses

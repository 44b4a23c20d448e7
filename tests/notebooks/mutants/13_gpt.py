"""Wrong and alternative implementations for 13_gpt (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

_SAMPLE_HEAD = """
def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
"""

_GENERATE_HEAD = """
def generate(model, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
             generator=None, use_cache=True):
"""


def _sample(body: str) -> str:
    return _SAMPLE_HEAD + body


def _generate(body: str) -> str:
    return _GENERATE_HEAD + body


_GENERATE_LOOP = """
    ids, past = prompt, None
    with torch.no_grad():
        for _ in range(max_new_tokens):
            cached = 0 if past is None else past[0][0].size(2)
{step}
            next_id = sample_next_token(logits[:, {pos}], temperature, top_k, top_p, {gen})
            ids = torch.cat([ids, next_id[:, None]], dim=1)
{after}
    return {ret}
"""

_RIGHT_STEP = """
            if use_cache and past is not None and cached + 1 <= model.max_len:
                logits, past = model(ids[:, -1:], past)
            else:
                logits, past = model(ids[:, -model.max_len:], None)"""


def _loop(step=_RIGHT_STEP, pos="-1", gen="generator", after="", ret="ids") -> str:
    after = after or "            if not use_cache:\n                past = None"
    return _generate(
        _GENERATE_LOOP.format(step=step.strip("\n"), pos=pos, gen=gen, after=after, ret=ret)
    )


VARIANTS = [
    # perplexity ------------------------------------------------------------------------------
    mutant(
        "perplexity",
        "mean over every position, ignored ones counted as 0",
        """
        def perplexity(logits, targets, ignore_index=-100):
            V = logits.size(-1)
            lp = torch.log_softmax(logits, dim=-1).reshape(-1, V)
            t = targets.reshape(-1)
            keep = t != ignore_index
            nll = -lp.gather(1, t.masked_fill(~keep, 0)[:, None]).squeeze(1) * keep
            return math.exp(nll.mean().item())
    """,
        expect=r"ALL positions",
    ),
    mutant(
        "perplexity",
        "returns the cross-entropy without exp",
        """
        def perplexity(logits, targets, ignore_index=-100):
            V = logits.size(-1)
            lp = torch.log_softmax(logits, dim=-1).reshape(-1, V)
            t = targets.reshape(-1)
            keep = t != ignore_index
            return -lp[keep].gather(1, t[keep][:, None]).mean().item()
    """,
        expect=r"cross-entropy itself",
    ),
    mutant(
        "perplexity",
        "exp of the summed loss",
        """
        def perplexity(logits, targets, ignore_index=-100):
            V = logits.size(-1)
            lp = torch.log_softmax(logits.double(), dim=-1).reshape(-1, V)
            t = targets.reshape(-1)
            keep = t != ignore_index
            return math.exp(-lp[keep].gather(1, t[keep][:, None]).sum().item())
    """,
        expect=r"summed loss",
    ),
    mutant(
        "perplexity",
        "-100 hard-coded instead of ignore_index",
        """
        def perplexity(logits, targets, ignore_index=-100):
            V = logits.size(-1)
            lp = torch.log_softmax(logits.double(), dim=-1).reshape(-1, V)
            t = targets.reshape(-1)
            keep = t != -100
            return math.exp(-lp[keep].gather(1, t[keep][:, None]).mean().item())
    """,
        expect=r"ignore_index argument",
    ),
    alternative(
        "perplexity",
        "logsumexp, float32, torch.exp then .item()",
        """
        def perplexity(logits, targets, ignore_index=-100):
            keep = targets != ignore_index                      # (B, T)
            rows = logits[keep]                                 # (N, V)
            right = rows.gather(1, targets[keep][:, None]).squeeze(1)
            nll = torch.logsumexp(rows, dim=-1) - right
            return torch.exp(nll.mean()).item()
    """,
    ),
    # top_k_filter ----------------------------------------------------------------------------
    mutant(
        "top_k_filter",
        "exactly k tokens: ties with the k-th dropped",
        """
        def top_k_filter(logits, k):
            if k < 1:
                raise ValueError("k must be positive")
            k = min(k, logits.size(-1))
            idx = torch.topk(logits, k, dim=-1).indices
            keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, idx, True)
            return logits.masked_fill(~keep, float("-inf"))
    """,
        expect=r"TIES",
    ),
    mutant(
        "top_k_filter",
        "removed logits set to 0",
        """
        def top_k_filter(logits, k):
            if k < 1:
                raise ValueError("k must be positive")
            if k >= logits.size(-1):
                return logits.clone()
            kth = torch.topk(logits, k, dim=-1).values[..., -1:]
            return logits.masked_fill(logits < kth, 0.0)
    """,
        expect=r"set to 0",
    ),
    mutant(
        "top_k_filter",
        "the k-th largest read at index k of the sort",
        """
        def top_k_filter(logits, k):
            if k < 1:
                raise ValueError("k must be positive")
            if k >= logits.size(-1):
                return logits.clone()
            kth = torch.sort(logits, dim=-1, descending=True).values[..., k : k + 1]
            return logits.masked_fill(logits < kth, float("-inf"))
    """,
        expect=r"k \+ 1",
    ),
    mutant(
        "top_k_filter",
        "k larger than the vocabulary crashes",
        """
        def top_k_filter(logits, k):
            if k < 1:
                raise ValueError("k must be positive")
            kth = torch.topk(logits, k, dim=-1).values[..., -1:]
            return logits.masked_fill(logits < kth, float("-inf"))
    """,
        expect=r"k > V keeps everything.*\n.*raised RuntimeError",
    ),
    alternative(
        "top_k_filter",
        "descending sort and torch.where",
        """
        def top_k_filter(logits, k):
            if not isinstance(k, int) or k <= 0:
                raise ValueError(f"k must be a positive integer, got {k!r}")
            k = min(k, logits.size(-1))
            kth = logits.sort(dim=-1, descending=True).values[..., k - 1].unsqueeze(-1)
            return torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf")))
    """,
    ),
    # top_p_filter ----------------------------------------------------------------------------
    mutant(
        "top_p_filter",
        "the token that crosses p is dropped",
        """
        def top_p_filter(logits, p):
            if not 0 < p <= 1:
                raise ValueError("p must be in (0, 1]")
            probs = torch.softmax(logits, dim=-1)
            sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
            drop = sorted_probs.cumsum(-1) > p
            drop[..., 0] = False
            drop = torch.zeros_like(drop).scatter(-1, order, drop)
            return logits.masked_fill(drop, float("-inf"))
    """,
        expect=r"carries the running total",
    ),
    mutant(
        "top_p_filter",
        "the mask is not scattered back to vocabulary order",
        """
        def top_p_filter(logits, p):
            if not 0 < p <= 1:
                raise ValueError("p must be in (0, 1]")
            probs = torch.softmax(logits, dim=-1)
            sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
            drop = sorted_probs.cumsum(-1) - sorted_probs >= p
            drop[..., 0] = False
            return logits.masked_fill(drop, float("-inf"))
    """,
        expect=r"scatter",
    ),
    mutant(
        "top_p_filter",
        "sorted from least to most probable",
        """
        def top_p_filter(logits, p):
            if not 0 < p <= 1:
                raise ValueError("p must be in (0, 1]")
            probs = torch.softmax(logits, dim=-1)
            sorted_probs, order = torch.sort(probs, dim=-1)
            drop = sorted_probs.cumsum(-1) - sorted_probs >= p
            drop[..., 0] = False
            drop = torch.zeros_like(drop).scatter(-1, order, drop)
            return logits.masked_fill(drop, float("-inf"))
    """,
        expect=r"least to most",
    ),
    mutant(
        "top_p_filter",
        "no error for p = 0",
        """
        def top_p_filter(logits, p):
            probs = torch.softmax(logits, dim=-1)
            sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
            drop = sorted_probs.cumsum(-1) - sorted_probs >= p
            drop[..., 0] = False
            drop = torch.zeros_like(drop).scatter(-1, order, drop)
            return logits.masked_fill(drop, float("-inf"))
    """,
        expect=r"ValueError",
    ),
    alternative(
        "top_p_filter",
        "Hugging Face's rule: ascending sort, remove cumulative mass <= 1 - p",
        """
        def top_p_filter(logits, p):
            if not (0.0 < p <= 1.0):
                raise ValueError(f"top-p needs 0 < p <= 1, got {p}")
            sorted_logits, order = torch.sort(logits, dim=-1)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - p)
            remove[..., -1] = False
            remove = remove.scatter(-1, order, remove)
            return logits.masked_fill(remove, float("-inf"))
    """,
    ),
    # sample_next_token -----------------------------------------------------------------------
    mutant(
        "sample_next_token",
        "multiplies by the temperature",
        _sample("""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits * temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
"""),
        expect=r"multiplied by the temperature",
    ),
    mutant(
        "sample_next_token",
        "temperature applied after the filters",
        _sample("""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
"""),
        expect=r"after the filters",
    ),
    mutant(
        "sample_next_token",
        "top-p before top-k",
        _sample("""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits / temperature
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
"""),
        expect=r"top-p runs before top-k",
    ),
    mutant(
        "sample_next_token",
        "logits given to multinomial without a softmax",
        _sample("""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits / temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    return torch.multinomial(scaled, 1, generator=generator).squeeze(-1)
"""),
        expect=r"probability tensor",
    ),
    mutant(
        "sample_next_token",
        "argmax over the batch axis",
        _sample("""
    if temperature == 0:
        return logits.argmax(dim=0)
    scaled = logits / temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
"""),
        expect=r"batch axis",
    ),
    mutant(
        "sample_next_token",
        "the generator is not used",
        _sample("""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits / temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1).squeeze(-1)
"""),
        expect=r"seeded alike",
    ),
    alternative(
        "sample_next_token",
        "torch.max for greedy, a hand-written float64 softmax, [:, 0]",
        _sample("""
    if temperature == 0:
        return torch.max(logits, dim=-1).indices
    z = logits.double() / temperature
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    e = torch.exp(z - z.max(dim=-1, keepdim=True).values)
    probs = e / e.sum(dim=-1, keepdim=True)
    return torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]
"""),
    ),
    # cached_attention ------------------------------------------------------------------------
    mutant(
        "cached_attention",
        "is_causal=True on the concatenated keys (top-left mask)",
        """
        def cached_attention(query, key, value, past_key=None, past_value=None):
            if past_key is not None:
                key = torch.cat([past_key, key], dim=2)
                value = torch.cat([past_value, value], dim=2)
            out = F.scaled_dot_product_attention(query, key, value, is_causal=True)
            return out, key, value
    """,
        expect=r"aligned top-left",
    ),
    mutant(
        "cached_attention",
        "the cache is not concatenated",
        """
        def cached_attention(query, key, value, past_key=None, past_value=None):
            out = F.scaled_dot_product_attention(query, key, value, is_causal=True)
            return out, key, value
    """,
        expect=r"cache is not used",
    ),
    mutant(
        "cached_attention",
        "new keys put before the past",
        """
        def cached_attention(query, key, value, past_key=None, past_value=None):
            if past_key is not None:
                key = torch.cat([key, past_key], dim=2)
                value = torch.cat([value, past_value], dim=2)
            T, S = query.size(2), key.size(2)
            keep = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=keep)
            return out, key, value
    """,
        expect=r"come before the past",
    ),
    mutant(
        "cached_attention",
        "no causal mask",
        """
        def cached_attention(query, key, value, past_key=None, past_value=None):
            if past_key is not None:
                key = torch.cat([past_key, key], dim=2)
                value = torch.cat([past_value, value], dim=2)
            return F.scaled_dot_product_attention(query, key, value), key, value
    """,
        expect=r"no causal mask",
    ),
    mutant(
        "cached_attention",
        "returns only the new keys and values",
        """
        def cached_attention(query, key, value, past_key=None, past_value=None):
            k, v = key, value
            if past_key is not None:
                k = torch.cat([past_key, key], dim=2)
                v = torch.cat([past_value, value], dim=2)
            T, S = query.size(2), k.size(2)
            keep = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            return F.scaled_dot_product_attention(query, k, v, attn_mask=keep), key, value
    """,
        expect=r"past prepended",
    ),
    mutant(
        "cached_attention",
        "scores not scaled",
        """
        def cached_attention(query, key, value, past_key=None, past_value=None):
            if past_key is not None:
                key = torch.cat([past_key, key], dim=2)
                value = torch.cat([past_value, value], dim=2)
            T, S = query.size(2), key.size(2)
            keep = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            scores = (query @ key.transpose(-2, -1)).masked_fill(~keep, float("-inf"))
            return torch.softmax(scores, dim=-1) @ value, key, value
    """,
        expect=r"not scaled",
    ),
    alternative(
        "cached_attention",
        "F.scaled_dot_product_attention with a bottom-right tril mask",
        """
        def cached_attention(query, key, value, past_key=None, past_value=None):
            if past_key is not None:
                key = torch.cat((past_key, key), dim=-2)
                value = torch.cat((past_value, value), dim=-2)
            T, S = query.shape[-2], key.shape[-2]
            keep = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=keep)
            return out, key, value
    """,
    ),
    # generate --------------------------------------------------------------------------------
    mutant(
        "generate",
        "feeds only the last token, without a cache",
        _loop(
            step="""
            if past is not None:
                logits, _ = model(ids[:, -1:])
            else:
                logits, past = model(ids[:, -model.max_len:])""",
            after="            pass",
        ),
        expect=r"one token and nothing before it",
    ),
    mutant(
        "generate",
        "never crops to max_len",
        _loop(
            step="""
            if use_cache and past is not None:
                logits, past = model(ids[:, -1:], past)
            else:
                logits, past = model(ids, None)"""
        ),
        expect=r"crop the input",
    ),
    mutant(
        "generate",
        "takes the first position's logits",
        _loop(pos="0"),
        expect=r"FIRST position",
    ),
    mutant(
        "generate",
        "use_cache ignored: always the cache",
        _loop(
            step="""
            if past is not None and cached + 1 <= model.max_len:
                logits, past = model(ids[:, -1:], past)
            else:
                logits, past = model(ids[:, -model.max_len:], None)""",
            after="            pass",
        ),
        expect=r"use_cache=False",
    ),
    mutant(
        "generate",
        "use_cache ignored: never the cache",
        _loop(
            step="""
            logits, past = model(ids[:, -model.max_len:], None)"""
        ),
        expect=r"use_cache=True",
    ),
    alternative(
        "generate",
        "@torch.no_grad(), a preallocated output, the prompt minus its last token cached first",
        """
        @torch.no_grad()
        def generate(model, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                     generator=None, use_cache=True):
            B, T0 = prompt.shape
            out = torch.empty(B, T0 + max_new_tokens, dtype=torch.long)
            out[:, :T0] = prompt
            past = None
            for t in range(T0, T0 + max_new_tokens):
                start = max(0, t - model.max_len)
                if use_cache and start == 0 and past is None and t > 1:
                    _, past = model(out[:, : t - 1])  # the prefix once, then one token a step
                if use_cache and start == 0 and past is not None:
                    logits, past = model(out[:, t - 1 : t], past=past)
                else:
                    logits, past = model(out[:, start:t], past=None)
                    if start > 0 or not use_cache:
                        past = None
                out[:, t] = sample_next_token(
                    logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p,
                    generator=generator,
                )
            return out
    """,
    ),
]

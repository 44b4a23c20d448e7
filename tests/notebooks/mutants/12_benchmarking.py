"""Wrong and alternative implementations for 12_benchmarking (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

_BENCH = """
def benchmark(fn, *args, warmup=3, repeats=20):
    for _ in range({warmup}):
        fn(*args)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        samples.append(time.perf_counter() - start)
    {extra}
    q25, q75 = np.percentile(samples, [25, 75])
    return {{"median_s": {median}, "iqr_s": {iqr}, "min_s": float(min(samples))}}
"""


def _bench(
    warmup="warmup",
    extra="",
    median="float(statistics.median(samples))",
    iqr="float(q75 - q25)",
) -> str:
    return _BENCH.format(warmup=warmup, extra=extra, median=median, iqr=iqr)


VARIANTS = [
    # benchmark -------------------------------------------------------------------------------
    mutant(
        "benchmark",
        "mean instead of median",
        _bench(median="float(statistics.fmean(samples))"),
        expect=r"mean, not the median",
    ),
    mutant(
        "benchmark",
        "torch.median of an even count",
        _bench(median="float(torch.tensor(samples, dtype=torch.float64).median())"),
        expect=r"LOWER",
    ),
    mutant(
        "benchmark",
        "standard deviation as the spread",
        _bench(iqr="float(np.std(samples))"),
        expect=r"standard deviation",
    ),
    mutant("benchmark", "no warm-up calls", _bench(warmup="0"), expect=r"called \d+ times"),
    mutant(
        "benchmark",
        "warm-up calls timed too",
        """
        def benchmark(fn, *args, warmup=3, repeats=20):
            samples = []
            for _ in range(warmup + repeats):
                start = time.perf_counter()
                fn(*args)
                samples.append(time.perf_counter() - start)
            q25, q75 = np.percentile(samples, [25, 75])
            return {"median_s": statistics.median(samples), "iqr_s": float(q75 - q25), "min_s": min(samples)}
    """,
        expect=r"warm-up calls were timed",
    ),
    mutant(
        "benchmark",
        "times the whole loop once",
        """
        def benchmark(fn, *args, warmup=3, repeats=20):
            for _ in range(warmup):
                fn(*args)
            start = time.perf_counter()
            for _ in range(repeats):
                fn(*args)
            each = (time.perf_counter() - start) / repeats
            return {"median_s": each, "iqr_s": 0.0, "min_s": each}
    """,
    ),
    alternative(
        "benchmark",
        "perf_counter_ns and torch.quantile",
        """
        def benchmark(fn, *args, warmup=3, repeats=20):
            for _ in range(warmup):
                fn(*args)
            ns = []
            for _ in range(repeats):
                t0 = time.perf_counter_ns()
                fn(*args)
                ns.append(time.perf_counter_ns() - t0)
            s = torch.tensor(ns, dtype=torch.float64) / 1e9
            q = torch.quantile(s, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
            return {"median_s": q[1].item(), "iqr_s": (q[2] - q[0]).item(), "min_s": s.min().item()}
    """,
    ),
    # fit_power_law ---------------------------------------------------------------------------
    mutant(
        "fit_power_law",
        "line fitted to the raw numbers",
        """
        def fit_power_law(sizes, times):
            k, c = np.polyfit(sizes, times, 1)
            return float(k), float(c)
    """,
        expect=r"raw numbers",
    ),
    mutant(
        "fit_power_law",
        "returns log c",
        """
        def fit_power_law(sizes, times):
            k, b = np.polyfit(np.log(sizes), np.log(times), 1)
            return float(k), float(b)
    """,
        expect=r"intercept itself",
    ),
    mutant(
        "fit_power_law",
        "(c, k) instead of (k, c)",
        """
        def fit_power_law(sizes, times):
            k, b = np.polyfit(np.log(sizes), np.log(times), 1)
            return float(math.exp(b)), float(k)
    """,
        expect=r"swapped",
    ),
    mutant(
        "fit_power_law",
        "log10 fit undone with exp",
        """
        def fit_power_law(sizes, times):
            k, b = np.polyfit(np.log10(sizes), np.log10(times), 1)
            return float(k), float(math.exp(b))
    """,
        expect=r"same base",
    ),
    alternative(
        "fit_power_law",
        "closed-form least squares in log10",
        """
        def fit_power_law(sizes, times):
            x = [math.log10(s) for s in sizes]
            y = [math.log10(t) for t in times]
            mx, my = sum(x) / len(x), sum(y) / len(y)
            k = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
            return k, 10 ** (my - k * mx)
    """,
    ),
    # attention_flops -------------------------------------------------------------------------
    mutant(
        "attention_flops",
        "a multiply-add counted as one FLOP",
        """
        def attention_flops(batch, heads, seq_len, head_dim):
            return 2 * batch * heads * seq_len * seq_len * head_dim
    """,
        expect=r"half the count",
    ),
    mutant(
        "attention_flops",
        "Q K^T only, multiply-adds as one",
        """
        def attention_flops(batch, heads, seq_len, head_dim):
            return batch * heads * seq_len * seq_len * head_dim
    """,
        expect=r"quarter",
    ),
    mutant(
        "attention_flops",
        "T not squared",
        """
        def attention_flops(batch, heads, seq_len, head_dim):
            return 4 * batch * heads * seq_len * head_dim
    """,
        expect=r"not squared",
    ),
    mutant(
        "attention_flops",
        "a float result",
        """
        def attention_flops(batch, heads, seq_len, head_dim):
            return 4.0 * batch * heads * seq_len**2 * head_dim
    """,
        expect=r"should be an int",
    ),
    alternative(
        "attention_flops",
        "matmul shapes spelled out",
        """
        def attention_flops(batch, heads, seq_len, head_dim):
            def matmul(m, k, n):
                return 2 * m * k * n

            per_head = matmul(seq_len, head_dim, seq_len) + matmul(seq_len, seq_len, head_dim)
            return batch * heads * per_head
    """,
    ),
    # attention_memory_bytes ------------------------------------------------------------------
    mutant(
        "attention_memory_bytes",
        "elements, not bytes",
        """
        def attention_memory_bytes(batch, heads, seq_len, dtype):
            return batch * heads * seq_len**2
    """,
        expect=r"counts elements",
    ),
    mutant(
        "attention_memory_bytes",
        "always 4 bytes",
        """
        def attention_memory_bytes(batch, heads, seq_len, dtype):
            return batch * heads * seq_len**2 * 4
    """,
        expect=r"only right for float32",
    ),
    mutant(
        "attention_memory_bytes",
        "bits instead of bytes",
        """
        def attention_memory_bytes(batch, heads, seq_len, dtype):
            return batch * heads * seq_len**2 * torch.finfo(dtype).bits
    """,
        expect=r"bits",
    ),
    mutant(
        "attention_memory_bytes",
        "T not squared",
        """
        def attention_memory_bytes(batch, heads, seq_len, dtype):
            return batch * heads * seq_len * dtype.itemsize
    """,
        expect=r"squared",
    ),
    alternative(
        "attention_memory_bytes",
        "element_size of an empty tensor",
        """
        def attention_memory_bytes(batch, heads, seq_len, dtype):
            return batch * heads * seq_len * seq_len * torch.empty(0, dtype=dtype).element_size()
    """,
    ),
]

# ruff: noqa: E402
# %% [markdown]
# # 12 · Measuring performance
#
# **Recap.** One timing is noise. Time a function properly: a few untimed warm-up calls first
# (allocation, caches, kernel selection), then many timed repeats; report the median (robust to
# the odd slow run), the spread as the interquartile range (IQR = 75th − 25th percentile) and
# the minimum. GPU kernels run asynchronously, so synchronise before reading the clock. To see
# how cost grows with the sequence length T, fit `time ≈ c · T^k` as a straight line on a
# log–log plot. Attention's two matrix products cost about `4 · B · H · T² · Dh` FLOPs (a
# multiply-add is 2), and its `(B, H, T, T)` score matrix takes `B · H · T² · itemsize` bytes.
# Read [chapter 12, *Measuring performance*](../../book/12_benchmarking.md) (published as
# `12_benchmarking.html`) first.
#
# Four functions, 10 points. Run a solution cell, then the test cells below it; from a terminal,
# `course check exercises/12_benchmarking/12_benchmarking.ipynb` runs the visible tests, and so does
# the `G.check_all()` cell near the end.
#
# Rules: time with `time.perf_counter()`; the course's reference package is not allowed inside
# your functions. The tests replace the clock by a fake one whose time only moves while `fn`
# runs, so they know exactly what each call took.

# %% demo
# Colab and Binder start without the course package: install it from the course repository, at
# the release that matches this notebook. Where `course_lib` is importable already (your own
# machine, the grader), this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_lib") is None:
    package = "course_lib @ git+{{COURSE_REPOSITORY_URL}}@{{COURSE_RELEASE_TAG}}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)


# %% setup
import math
import statistics
import time

import numpy as np
import torch

# %% [markdown]
# ## 1. Timing a function
#
# Call `fn(*args)` `warmup` times without timing, then `repeats` times, timing each call on its
# own with `time.perf_counter()`. Return `{"median_s": …, "iqr_s": …, "min_s": …}` in seconds
# (Python floats): the median of the samples (for an even count, the mean of the two middle
# ones), the 75th minus the 25th percentile as `np.percentile` computes them (linear
# interpolation), and the fastest sample. If an argument is a CUDA tensor, call
# `torch.cuda.synchronize()` before each reading of the clock.


# %% solution benchmark
def benchmark(fn, *args, warmup: int = 3, repeats: int = 20) -> dict[str, float]:
    """Time fn(*args): median, interquartile range and minimum of `repeats` timed calls."""
    ### BEGIN SOLUTION
    on_gpu = any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)

    def sync() -> None:
        if on_gpu:
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn(*args)
    samples = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn(*args)
        sync()
        samples.append(time.perf_counter() - start)
    q25, q75 = np.percentile(samples, [25, 75])
    return {
        "median_s": float(statistics.median(samples)),
        "iqr_s": float(q75 - q25),
        "min_s": float(min(samples)),
    }
    ### END SOLUTION


# %% tests test_benchmark points=2
from course_lib import benchmarking as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
# The fake fn counts its calls: warmup + repeats of them, each with the arguments given, and the
# result is a dict of three floats with min <= median and iqr >= 0.
assert G.check_benchmark(
    benchmark,
    ref.benchmark,
    part="calls",
    forbidden=FORBIDDEN,
    label="defaults: 3 warm-up calls, 20 timed",
)
assert G.check_benchmark(
    benchmark,
    ref.benchmark,
    warmup=0,
    repeats=5,
    part="calls",
    forbidden=FORBIDDEN,
    label="no warm-up",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("12/benchmark")
assert all(
    G.check_benchmark(
        benchmark,
        ref.benchmark,
        warmup=rng.randint(1, 6),
        repeats=rng.randint(2, 30),
        part="calls",
        forbidden=FORBIDDEN,
    )
    for _ in range(2)
)
### END HIDDEN TESTS

# %% tests test_benchmark-statistics points=2
from course_lib import benchmarking as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
# Each timed call takes a known 1-5 ms, one of them a slow 50 ms outlier; the warm-up calls
# take over a second each, so timing them too would show.
assert G.check_benchmark(benchmark, ref.benchmark, forbidden=FORBIDDEN, label="20 repeats")
assert G.check_benchmark(
    benchmark, ref.benchmark, warmup=1, repeats=7, seed=1, forbidden=FORBIDDEN, label="7 repeats"
)
assert G.check_benchmark(
    benchmark,
    ref.benchmark,
    warmup=2,
    repeats=1,
    seed=2,
    forbidden=FORBIDDEN,
    label="a single repeat",
)
### BEGIN HIDDEN TESTS
seed = G.grading_seed()
assert all(
    G.check_benchmark(
        benchmark,
        ref.benchmark,
        warmup=2,
        repeats=n,
        seed=seed + n,
        forbidden=FORBIDDEN,
        label=f"{n} repeats",
    )
    for n in (4, 11, 30)
)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Fitting a power law
#
# If `time = c · size^k`, then `log time = k · log size + log c`: a straight line. Fit it by
# least squares on the logarithms (e.g. `np.polyfit(np.log(sizes), np.log(times), 1)`) and
# return `(k, c)`, the exponent and the coefficient, as floats.


# %% solution fit_power_law
def fit_power_law(sizes: list[float], times: list[float]) -> tuple[float, float]:
    """(exponent k, coefficient c) of time ≈ c · size^k, least squares in log–log space."""
    ### BEGIN SOLUTION
    slope, intercept = np.polyfit(np.log(sizes), np.log(times), deg=1)
    return float(slope), float(math.exp(intercept))
    ### END SOLUTION


# %% tests test_fit_power_law points=2
from course_lib import benchmarking as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.power_law_mistakes()
# time = 3 · size²: exactly (2, 3). Then a cubic with a small constant, and noisy data.
sizes = [1.0, 2.0, 4.0, 8.0]
cases = [
    G.Case(sizes, [3 * s**2 for s in sizes], label="exactly 3 · size²"),
    G.Case([64, 128, 256, 512], [2e-9 * s**3 for s in (64, 128, 256, 512)], label="a cubic"),
    G.Case([10, 20, 40, 80, 160], [0.011, 0.039, 0.17, 0.62, 2.7], label="measured-looking"),
]
assert G.check_function(
    fit_power_law,
    ref.fit_power_law,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    rtol=1e-5,
    atol=1e-12,
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("12/fit_power_law")
sizes = [2.0**i for i in range(5, 5 + rng.randint(3, 7))]
k, c = rng.uniform(0.5, 3.0), rng.uniform(1e-6, 1e-2)
hidden = [
    G.Case(sizes, [c * s**k * rng.uniform(0.8, 1.25) for s in sizes], label="noisy power law"),
    G.Case([3, 5], [0.5, 0.25], label="two points, a falling line"),
]
assert G.check_function(
    fit_power_law,
    ref.fit_power_law,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    rtol=1e-5,
    atol=1e-12,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. FLOPs of attention
#
# `Q Kᵀ` takes, for each of B·H heads, T × T dot products of length Dh: `B·H·T·T·Dh`
# multiply-adds, each 2 FLOPs. `weights · V` costs the same again. Softmax and scaling
# (O(B·H·T²)) are left out. Return an `int`.


# %% solution attention_flops
def attention_flops(batch: int, heads: int, seq_len: int, head_dim: int) -> int:
    """FLOPs of Q·Kᵀ and weights·V with a multiply-add counted as 2."""
    ### BEGIN SOLUTION
    scores = 2 * batch * heads * seq_len * seq_len * head_dim  # Q Kᵀ
    mix = 2 * batch * heads * seq_len * seq_len * head_dim  # weights V
    return scores + mix
    ### END SOLUTION


# %% tests test_attention_flops points=2
from course_lib import benchmarking as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.flops_mistakes()
cases = [
    G.Case(1, 1, 3, 1, label="B=H=Dh=1, T=3"),
    G.Case(2, 4, 128, 64, label="a small model"),
    # D = H · Dh = 512 either way: the number of heads does not change the cost.
    G.Case(1, 8, 1024, 64, label="8 heads of 64"),
    G.Case(1, 1, 1024, 512, label="1 head of 512"),
]
assert G.check_function(
    attention_flops,
    ref.attention_flops,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the FLOPs",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("12/attention_flops")
hidden = [
    G.Case(rng.randint(1, 16), rng.randint(1, 32), rng.randint(1, 4096), rng.randint(1, 256))
    for _ in range(5)
]
hidden.append(G.Case(3, 2, 0, 64, label="empty sequence"))
assert G.check_function(
    attention_flops,
    ref.attention_flops,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the FLOPs",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Memory of the score matrix
#
# The `(B, H, T, T)` matrix of scores (and of weights) has `B·H·T²` elements of
# `dtype.itemsize` bytes each (4 for float32, 2 for float16 and bfloat16). Return an `int`.


# %% solution attention_memory_bytes
def attention_memory_bytes(batch: int, heads: int, seq_len: int, dtype: torch.dtype) -> int:
    """Bytes of one (B, H, T, T) score matrix of the given dtype."""
    ### BEGIN SOLUTION
    return batch * heads * seq_len * seq_len * dtype.itemsize
    ### END SOLUTION


# %% tests test_attention_memory_bytes points=2
from course_lib import benchmarking as ref
from course_lib import grading as G

FORBIDDEN = G.no_reference(ref)
MISTAKES = G.memory_mistakes()
cases = [
    G.Case(1, 1, 2, torch.float32, label="2 x 2 float32: 16 bytes"),
    G.Case(1, 12, 1024, torch.float32, label="12 heads, T=1024"),
    G.Case(8, 16, 2048, torch.float16, label="float16"),
    G.Case(2, 2, 10, torch.float64, label="float64"),
]
assert G.check_function(
    attention_memory_bytes,
    ref.attention_memory_bytes,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the size in bytes",
)
### BEGIN HIDDEN TESTS
rng = G.hidden_random("12/attention_memory_bytes")
dtypes = [torch.bfloat16, torch.float32, torch.float64, torch.int8]
hidden = [
    G.Case(rng.randint(1, 8), rng.randint(1, 16), rng.randint(1, 8192), rng.choice(dtypes))
    for _ in range(5)
]
assert G.check_function(
    attention_memory_bytes,
    ref.attention_memory_bytes,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    what="the size in bytes",
)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: how attention's time grows with T
#
# *Your* `benchmark` times the course's from-scratch attention and PyTorch's fused
# `F.scaled_dot_product_attention` at a few sequence lengths; *your* `fit_power_law` gives the
# exponent of each (it approaches 2 once the T × T work dominates) and *your*
# `attention_flops` turns the median time into GFLOP/s. Sizes are kept small so the cell runs
# in a second or two; try larger ones yourself. Not graded.

# %% demo
import matplotlib.pyplot as plt
import torch.nn.functional as F

from course_lib.attention import scaled_dot_product_attention as from_scratch
from course_lib.viz import plot_scaling

lengths = [64, 128, 256, 512]
try:
    medians = {"from scratch": [], "F.scaled_dot_product_attention": []}
    for T in lengths:
        q = k = v = torch.randn(1, 4, T, 32)
        medians["from scratch"].append(
            benchmark(from_scratch, q, k, v, warmup=1, repeats=5)["median_s"]
        )
        medians["F.scaled_dot_product_attention"].append(
            benchmark(F.scaled_dot_product_attention, q, k, v, warmup=1, repeats=5)["median_s"]
        )
except NotImplementedError:
    print("Implement benchmark above and run its cell, then run this cell to explore.")
else:
    try:
        exponent, coefficient = fit_power_law(lengths, medians["from scratch"])
        gflops = attention_flops(1, 4, lengths[-1], 32) / medians["from scratch"][-1] / 1e9
        print(f"from scratch: time ~ T^{exponent:.2f}; {gflops:.1f} GFLOP/s at T={lengths[-1]}")
        fig = plot_scaling(lengths, medians, fit=(exponent, coefficient))
    except NotImplementedError:
        print("Implement fit_power_law and attention_flops to see the fitted exponent.")
        fig = plot_scaling(lengths, medians)
    plt.show()

# %% [markdown]
# ## Your points so far
#
# Run every cell above first. The cell below runs this notebook's visible tests again and
# lists each test's points, as `course check` does; the hidden tests run only when your work
# is graded.

# %% demo
from course_lib import grading as G

G.check_all()

# %% [markdown]
# ## Written questions
#
# Answer in the cell below each question, in your own words. A person grades these
# against a rubric; `course check` does not.

# %% written written_warmup points=1
# **Question (1 point).** Why does `benchmark` run warm-up calls before timing and report the median of several runs rather than a single run?
# RUBRIC:
# - 1 point: the first calls pay one-off costs (lazy initialisation, caches, memory allocation, JIT), and single timings are noisy (other processes, frequency scaling); the median of repeats is robust to outliers.

# %% written written_quadratic points=2
# **Question (2 points).** Your power-law fit gives the exponent of attention's time in T. Why is it close to 2 for long sequences, and why can it come out lower for short ones?
# RUBRIC:
# - 1 point: the score matrix has T × T entries, so both its FLOPs (∝ T² · d) and its memory grow quadratically in T.
# - 1 point: for short sequences fixed overheads (kernel launches, Python, the linear projections ∝ T · d²) dominate, so the measured exponent is below 2.

# %% [markdown]
# ## Recap
#
# - Warm up, repeat, report the median, the IQR and the minimum; synchronise a GPU.
# - A power law is a straight line on log–log axes: fit `log time` against `log size`.
# - Attention costs about `4·B·H·T²·Dh` FLOPs whatever the number of heads, and its score
#   matrix `B·H·T²·itemsize` bytes: both grow with T².
#
# More in [chapter 12](../../book/12_benchmarking.md); back to
# [chapter 11](../../book/11_evaluation.md).

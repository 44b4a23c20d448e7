"""Chapter 12: measuring performance.

Timing done right (warm-up, many repeats, median and spread, synchronizing an accelerator),
fitting how time grows with size on a log–log scale, and counting the FLOPs and bytes of
attention by hand so measurements can be checked against arithmetic.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "benchmark",
    "fit_power_law",
    "attention_flops",
    "attention_memory_bytes",
    "projection_flops",
    "scaling_table",
]


def _cuda_devices(objects: Iterable[Any]) -> set[torch.device]:
    return {o.device for o in objects if isinstance(o, torch.Tensor) and o.is_cuda}


def benchmark(
    fn: Callable,
    *args,
    warmup: int = 3,
    repeats: int = 20,
) -> dict[str, float]:
    """Time ``fn(*args)``: ``warmup`` untimed calls, then ``repeats`` timed
    ones.

    Warm-up absorbs one-off costs (allocation, kernel selection, caches).
    GPU kernels run asynchronously, so when an argument is a CUDA tensor
    the device is synchronized before the clock starts and before it stops;
    otherwise only the launch would be timed.

    Returns:
        {"median_s": median, "iqr_s": 75th − 25th percentile, "min_s":
        fastest}, in seconds.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    devices = _cuda_devices(args)

    def sync() -> None:
        for device in devices:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn(*args)
        sync()
        times.append(time.perf_counter() - start)
    q25, q75 = np.percentile(times, [25, 75])
    return {
        "median_s": float(statistics.median(times)),
        "iqr_s": float(q75 - q25),
        "min_s": float(min(times)),
    }


def fit_power_law(
    sizes: Sequence[float],
    times: Sequence[float],
) -> tuple[float, float]:
    """Fit ``time ≈ c · size^k`` by least squares on
    ``log time = k · log size + log c``.

    Returns:
        (exponent k, coefficient c). Attention's time in the sequence
        length gives k ≈ 2 once T is large enough for the T × T work to
        dominate.
    """
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    times_arr = np.asarray(times, dtype=np.float64)
    if sizes_arr.ndim != 1 or sizes_arr.shape != times_arr.shape:
        raise ValueError(
            "sizes and times must be 1-D and of equal length, "
            f"got shapes {sizes_arr.shape} and {times_arr.shape}"
        )
    if len(sizes_arr) < 2 or len(np.unique(sizes_arr)) < 2:
        raise ValueError("a line needs at least two different sizes")
    if not (
        np.all(np.isfinite(sizes_arr)) and np.all(np.isfinite(times_arr))
    ):
        raise ValueError("sizes and times must be finite numbers")
    if np.any(sizes_arr <= 0) or np.any(times_arr <= 0):
        raise ValueError(
            "sizes and times must be positive: "
            "the fit takes their logarithms"
        )
    slope, intercept = np.polyfit(
        np.log(sizes_arr),
        np.log(times_arr),
        deg=1,
    )
    return float(slope), float(math.exp(intercept))


def _check_counts(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def attention_flops(
    batch: int,
    heads: int,
    seq_len: int,
    head_dim: int,
) -> int:
    """FLOPs of QKᵀ and weights·V, a multiply-add counted as 2:
    ``4 · B · H · T² · Dh``.

    QKᵀ: B·H·T·T dot products of length Dh -> 2·B·H·T²·Dh; weights·V the
    same again. Softmax and scaling (O(B·H·T²)) are left out. With D = H·Dh
    fixed, H cancels: splitting into more heads does not change the cost.
    """
    _check_counts(
        batch=batch,
        heads=heads,
        seq_len=seq_len,
        head_dim=head_dim,
    )
    B, H, T, Dh = int(batch), int(heads), int(seq_len), int(head_dim)
    return 2 * B * H * T * T * Dh + 2 * B * H * T * T * Dh


def attention_memory_bytes(batch: int, heads: int, seq_len: int, dtype: torch.dtype) -> int:
    """Bytes of one (B, H, T, T) score matrix: ``B · H · T² · itemsize``.

    This is what a fused kernel such as FlashAttention avoids writing to memory.
    """
    _check_counts(batch=batch, heads=heads, seq_len=seq_len)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float32, got {dtype!r}")
    return int(batch) * int(heads) * int(seq_len) ** 2 * dtype.itemsize


def projection_flops(batch: int, seq_len: int, d_model: int) -> int:
    """FLOPs of the Q, K, V and output projections: ``4 · 2 · B · T · D²`` (no biases).

    Linear in T, so for short sequences the projections, not the T² attention, dominate.
    """
    _check_counts(batch=batch, seq_len=seq_len, d_model=d_model)
    return 4 * 2 * int(batch) * int(seq_len) * int(d_model) ** 2


def scaling_table(
    fn_factory: Callable[[int], tuple[Callable, tuple]],
    sizes: Sequence[int],
    *,
    warmup: int = 3,
    repeats: int = 20,
) -> list[dict[str, float]]:
    """Benchmark one workload at several sizes.

    Args:
        fn_factory: ``size -> (fn, args)``, building the inputs outside the timed region.
        sizes: e.g. sequence lengths [64, 128, 256, 512].
    Returns:
        one row per size: {"size", "median_s", "iqr_s", "min_s"}; feed the sizes and medians
        to :func:`fit_power_law` and :func:`course_lib.viz.plot_scaling`.
    """
    if len(sizes) == 0:
        raise ValueError("sizes is empty; pass the sizes to measure, e.g. [64, 128, 256]")
    rows = []
    for size in sizes:
        fn, args = fn_factory(size)
        rows.append({"size": size, **benchmark(fn, *args, warmup=warmup, repeats=repeats)})
    return rows

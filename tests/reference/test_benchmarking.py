"""Chapter 12: the timer, the power-law fit and the hand-counted FLOPs and bytes."""

import math

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from course_lib.benchmarking import (
    attention_flops,
    attention_memory_bytes,
    benchmark,
    fit_power_law,
    projection_flops,
    scaling_table,
)

# --- benchmark -----------------------------------------------------------------------------------


def test_benchmark_calls_fn_warmup_plus_repeats_times_with_args():
    seen = []
    stats = benchmark(lambda a, b: seen.append((a, b)), 1, "x", warmup=2, repeats=5)
    assert seen == [(1, "x")] * 7
    assert set(stats) == {"median_s", "iqr_s", "min_s"}
    assert 0 <= stats["min_s"] <= stats["median_s"]
    assert stats["iqr_s"] >= 0
    assert all(isinstance(v, float) for v in stats.values())


def test_benchmark_median_iqr_min_of_known_durations(monkeypatch):
    # a fake clock: call n takes durations[n] seconds, so the statistics are exact
    durations = [100.0, 1.0, 2.0, 3.0, 4.0, 10.0]  # the first is the (slow) warm-up
    clock = {"now": 0.0, "calls": 0}

    def fn():
        clock["now"] += durations[clock["calls"]]
        clock["calls"] += 1

    monkeypatch.setattr("course_lib.benchmarking.time.perf_counter", lambda: clock["now"])
    stats = benchmark(fn, warmup=1, repeats=5)
    assert stats["median_s"] == 3.0  # the warm-up's 100 s must not be in the sample
    assert stats["min_s"] == 1.0
    assert stats["iqr_s"] == pytest.approx(np.percentile([1, 2, 3, 4, 10], 75) - 2.0)


def test_benchmark_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        benchmark(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        benchmark(lambda: None, warmup=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_benchmark_synchronizes_cuda(monkeypatch):
    calls = []
    real = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(d) or real(d))
    x = torch.randn(256, 256, device="cuda")
    benchmark(torch.matmul, x, x, warmup=1, repeats=3)
    assert len(calls) == 2 * 3  # before and after every timed call


def test_scaling_table_rows():
    rows = scaling_table(lambda n: (sum, (range(n),)), [10, 20], warmup=0, repeats=2)
    assert [r["size"] for r in rows] == [10, 20]
    assert all(r["min_s"] <= r["median_s"] for r in rows)
    with pytest.raises(ValueError, match="empty"):
        scaling_table(lambda n: (sum, (range(n),)), [])


# --- power-law fit -------------------------------------------------------------------------------


def test_fit_power_law_recovers_exact_data():
    sizes = [64, 128, 256, 512, 1024]
    times = [3e-9 * n**2.0 for n in sizes]
    k, c = fit_power_law(sizes, times)
    assert k == pytest.approx(2.0, abs=1e-9)
    assert c == pytest.approx(3e-9, rel=1e-9)


def test_fit_power_law_is_least_squares_in_log_space():
    # noisy data: the answer is the log-log regression, not a fit in linear space
    sizes = np.array([1.0, 2.0, 4.0, 8.0])
    times = np.array([1.0, 3.0, 5.0, 30.0])
    k, c = fit_power_law(sizes.tolist(), times.tolist())
    slope, intercept = np.polyfit(np.log(sizes), np.log(times), 1)
    assert k == pytest.approx(slope) and c == pytest.approx(math.exp(intercept))
    assert isinstance(k, float) and isinstance(c, float)


@pytest.mark.parametrize(
    "sizes, times, message",
    [
        ([1, 2, 3], [1, 2], "equal length"),
        ([1, 2, 0], [1, 2, 3], "positive"),
        ([1, 2, 3], [1, -2, 3], "positive"),
        ([5], [1], "two different sizes"),
        ([5, 5], [1, 2], "two different sizes"),
        ([1, 2], [1, float("nan")], "finite"),
    ],
)
def test_fit_power_law_bad_input(sizes, times, message):
    with pytest.raises(ValueError, match=message):
        fit_power_law(sizes, times)


# --- FLOPs and bytes -----------------------------------------------------------------------------


def test_attention_flops_hand_checked():
    # B=2, H=4, T=8, Dh=16: QKᵀ 2·2·4·64·16 = 16384, weights·V the same
    assert attention_flops(2, 4, 8, 16) == 32768
    assert attention_flops(1, 1, 1, 1) == 4
    # T² growth: doubling T quadruples the count
    assert attention_flops(1, 8, 256, 64) == 4 * attention_flops(1, 8, 128, 64)
    # fixed D = H · Dh: more heads, same cost
    assert attention_flops(1, 1, 64, 512) == attention_flops(1, 8, 64, 64)


def test_attention_flops_match_torch_flop_counter():
    B, H, T, Dh = 2, 3, 10, 8
    q, k, v = (torch.randn(B, H, T, Dh) for _ in range(3))
    with FlopCounterMode(display=False) as counter:
        torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(Dh), dim=-1) @ v
    assert attention_flops(B, H, T, Dh) == counter.get_total_flops()


def test_projection_flops_match_torch_flop_counter():
    B, T, D = 2, 5, 12
    x = torch.randn(B, T, D)
    projections = [torch.nn.Linear(D, D, bias=False) for _ in range(4)]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        for p in projections:
            p(x)
    assert projection_flops(B, T, D) == counter.get_total_flops() == 8 * B * T * D * D


def test_attention_memory_bytes_hand_checked():
    assert attention_memory_bytes(1, 1, 1024, torch.float32) == 4 * 1024 * 1024
    assert attention_memory_bytes(2, 12, 512, torch.float16) == 2 * 12 * 512 * 512 * 2
    assert attention_memory_bytes(1, 1, 8, torch.float64) == 512
    scores = torch.empty(3, 2, 7, 7, dtype=torch.bfloat16)
    assert attention_memory_bytes(3, 2, 7, torch.bfloat16) == scores.nelement() * 2


def test_counts_reject_bad_input():
    with pytest.raises(ValueError, match="seq_len"):
        attention_flops(1, 1, -3, 4)
    with pytest.raises(ValueError, match="head_dim"):
        attention_flops(1, 1, 3, 4.5)
    with pytest.raises(TypeError, match="torch.dtype"):
        attention_memory_bytes(1, 1, 3, "float32")

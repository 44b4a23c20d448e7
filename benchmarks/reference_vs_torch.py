"""The course's from-scratch modules against the PyTorch ones a user would call instead.

``course_lib`` attention, multi-head attention and encoder layer against
``F.scaled_dot_product_attention``, ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``
(``batch_first=True``, ``dropout=0``, eval mode, no autograd: the inference a reader runs),
as time ratios at a few sizes, and the fitted exponent of attention's time in T. Before timing,
each pair is checked to compute the same output, so the ratio compares equal work.

Each sample is :func:`course_lib.benchmarking.benchmark`'s median of a few calls (it
synchronizes a CUDA device); the two contenders alternate A B, B A, … round by round::

    .venv/bin/python benchmarks/reference_vs_torch.py --quick
    .venv/bin/python benchmarks/reference_vs_torch.py --device cuda   # item 5, where lent a GPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.attention import scaled_dot_product_attention
from course_lib.benchmarking import attention_flops, benchmark, fit_power_law
from course_lib.multi_head import MultiHeadAttention, load_torch_mha
from course_lib.transformer import TransformerEncoderLayer, load_torch_encoder_layer

OURS, SDPA = "course_lib", "F.scaled_dot_product_attention"

# (B, H, Dh) and the sequence lengths; large T is where the T x T work dominates.
ATTENTION_SHAPE = {"full": (1, 8, 64), "quick": (1, 2, 16)}
ATTENTION_T = {"full": [128, 256, 512, 1024], "quick": [16, 32, 64]}
GPU_T = {"full": [256, 512, 1024, 2048, 4096, 8192], "quick": [64, 128, 256]}
# On the GPU: modules at larger sizes, half precision, and the memory the T x T scores take.
GPU_MODULE_SIZES = {"full": [(8, 512, 512, 8), (2, 2048, 512, 8)], "quick": [(2, 64, 64, 4)]}
GPU_HALF_T = {"full": [1024, 4096], "quick": [128]}
GPU_MEMORY_T = {"full": [1024, 4096, 8192], "quick": [128, 256]}
# (B, T, D, H) for the modules.
MODULE_SIZES = {
    "full": [(8, 64, 256, 8), (4, 256, 256, 8)],
    "quick": [(2, 16, 32, 4)],
}
# (rounds, calls per sample)
EFFORT = {"full": (7, 5), "quick": (3, 2)}


def _rounds(
    contenders: dict[str, tuple[Callable, tuple]], n_rounds: int, calls: int
) -> dict[str, list[float]]:
    """Median-of-``calls`` seconds per round for each contender, alternating their order."""
    names = list(contenders)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for name in names:  # one untimed pass each: allocation, kernel choice, caches
        fn, args = contenders[name]
        fn(*args)
    for r in range(n_rounds):
        for name in names if r % 2 == 0 else reversed(names):
            fn, args = contenders[name]
            samples[name].append(benchmark(fn, *args, warmup=1, repeats=calls)["median_s"])
    return samples


def _same(ours: Tensor, theirs: Tensor, what: str, tol: float = 1e-4) -> None:
    """Refuse to time two functions that do not compute the same thing."""
    try:
        torch.testing.assert_close(ours, theirs, atol=tol, rtol=tol)
    except AssertionError as err:
        raise AssertionError(
            f"{what}: course_lib and torch disagree, so a ratio would be meaningless:\n{err}"
        ) from None


def attention_scaling(
    sizes: list[int],
    shape: tuple[int, int, int],
    *,
    device: str,
    n_rounds: int,
    calls: int,
    dtype: torch.dtype = torch.float32,
) -> dict:
    """Time both attentions at each T; return rows, per-T medians and the fitted exponents.

    Row labels are ``attention T=<T>: <who>``, with `` bf16`` after T for bfloat16 inputs (where
    SDPA can pick a fused flash kernel).
    """
    B, H, Dh = shape
    g = torch.Generator().manual_seed(0)
    half = dtype != torch.float32
    tag, tol = (" bf16", 3e-2) if half else ("", 1e-4 if device == "cpu" else 1e-3)
    rows, medians = [], {OURS: [], SDPA: []}
    for T in sizes:
        q, k, v = (torch.randn(B, H, T, Dh, generator=g).to(device, dtype) for _ in range(3))
        with torch.no_grad():
            _same(
                scaled_dot_product_attention(q, k, v).float(),
                F.scaled_dot_product_attention(q, k, v).float(),
                f"attention T={T}{tag}",
                tol=tol,
            )
            samples = _rounds(
                {
                    OURS: (scaled_dot_product_attention, (q, k, v)),
                    SDPA: (F.scaled_dot_product_attention, (q, k, v)),
                },
                n_rounds,
                calls,
            )
        gflop = attention_flops(B, H, T, Dh) / 1e9
        base = f"attention T={T}{tag}: {SDPA}"
        for who, baseline in ((SDPA, None), (OURS, base)):
            row = {
                "label": f"attention T={T}{tag}: {who}",
                "samples": samples[who],
                "baseline": baseline,
                "note": f"{gflop / statistics.median(samples[who]):.{0 if half else 1}f} GFLOP/s",
            }
            rows.append(row if baseline is None else {**row, "vs": "SDPA"})
        for name in medians:
            medians[name].append(statistics.median(samples[name]))
    fits = {name: fit_power_law(sizes, t) for name, t in medians.items() if len(set(sizes)) > 1}
    return {"rows": rows, "medians": medians, "fits": fits}


def half_precision_rows(
    sizes: list[int], shape: tuple[int, int, int], *, device: str, n_rounds: int, calls: int
) -> list[dict]:
    """Attention in bfloat16, where SDPA can pick a fused (flash) kernel."""
    return attention_scaling(
        sizes, shape, device=device, n_rounds=n_rounds, calls=calls, dtype=torch.bfloat16
    )["rows"]


def peak_memory(fn: Callable, *args: Tensor) -> int:
    """Bytes allocated on the GPU by one call beyond what was allocated before it."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn(*args)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del out
    return peak


def memory_record(sizes: list[int], shape: tuple[int, int, int], *, device: str) -> dict:
    """Peak extra GPU memory (bytes) of one float32 attention call, ours and SDPA's, per T."""
    B, H, Dh = shape
    record: dict = {"shape": [B, H, Dh], "sizes": [], OURS: [], SDPA: [], "scores": []}
    for T in sizes:
        q, k, v = (torch.randn(B, H, T, Dh, device=device) for _ in range(3))
        with torch.no_grad():
            record[OURS].append(peak_memory(scaled_dot_product_attention, q, k, v))
            record[SDPA].append(peak_memory(F.scaled_dot_product_attention, q, k, v))
        record["sizes"].append(T)
        record["scores"].append(B * H * T * T * 4)
        del q, k, v
        torch.cuda.empty_cache()
    return record


def memory_facts(record: dict) -> list[str]:
    parts = [
        f"T={T}: {OURS} {ours / 2**20:,.0f} MiB, SDPA {theirs / 2**20:,.0f} MiB "
        f"(one float32 (B, H, T, T) score tensor is {scores / 2**20:,.0f} MiB)"
        for T, ours, theirs, scores in zip(
            record["sizes"], record[OURS], record[SDPA], record["scores"]
        )
    ]
    return [
        "peak extra GPU memory of one float32 attention call: " + "; ".join(parts) + ". "
        "The from-scratch code materializes the scores and the weights; SDPA's fused kernels "
        "work on tiles and never hold the T × T matrix."
    ]


def _module_pairs(
    B: int, T: int, D: int, H: int, device: str
) -> list[tuple[str, nn.Module, nn.Module, tuple]]:
    """(name, ours, torch's, args) with torch's weights copied into ours."""
    torch.manual_seed(0)  # module initialisation; the inputs use an explicit generator
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(1)).to(device)
    theirs_mha = nn.MultiheadAttention(D, H, batch_first=True).to(device).eval()
    ours_mha = MultiHeadAttention(D, H).to(device).eval()
    load_torch_mha(ours_mha, theirs_mha)
    theirs_enc = (
        nn.TransformerEncoderLayer(
            D, H, dim_feedforward=4 * D, dropout=0.0, batch_first=True, norm_first=True
        )
        .to(device)
        .eval()
    )
    ours_enc = TransformerEncoderLayer(D, H, dim_feedforward=4 * D, norm_first=True)
    ours_enc = ours_enc.to(device).eval()
    load_torch_encoder_layer(ours_enc, theirs_enc)
    return [
        (
            "multi-head attention",
            lambda x: ours_mha(x, x, x)[0],
            # need_weights=False: the averaged weights are extra work ours does not do
            lambda x: theirs_mha(x, x, x, need_weights=False)[0],
            (x,),
        ),
        ("encoder layer", ours_enc, theirs_enc, (x,)),
    ]


def module_rows(
    sizes: list[tuple[int, int, int, int]], *, device: str, n_rounds: int, calls: int
) -> list[dict]:
    rows = []
    torch_names = {
        "multi-head attention": "nn.MultiheadAttention",
        "encoder layer": "nn.TransformerEncoderLayer",
    }
    for B, T, D, H in sizes:
        for name, ours, theirs, args in _module_pairs(B, T, D, H, device):
            where = f"{name} B={B} T={T} D={D} H={H}"
            with torch.no_grad():
                _same(ours(*args), theirs(*args), where, tol=1e-4 if device == "cpu" else 1e-3)
                samples = _rounds({OURS: (ours, args), "torch": (theirs, args)}, n_rounds, calls)
            base = f"{where}: {torch_names[name]}"
            rows.append({"label": base, "samples": samples["torch"], "baseline": None})
            rows.append(
                {
                    "label": f"{where}: {OURS}",
                    "samples": samples[OURS],
                    "baseline": base,
                    "vs": torch_names[name],
                }
            )
    return rows


def _attention_section(
    key: str, title: str, device: str, sizes: list[int], quick: bool, log: Callable[[str], None]
) -> dict:
    mode = "quick" if quick else "full"
    n_rounds, calls = EFFORT[mode]
    B, H, Dh = ATTENTION_SHAPE[mode]
    log(f"  attention at T={sizes} on {device}")
    result = attention_scaling(sizes, (B, H, Dh), device=device, n_rounds=n_rounds, calls=calls)
    k_ours, k_sdpa = result["fits"][OURS][0], result["fits"][SDPA][0]
    facts = [
        f"attention inputs (B, H, T, Dh) = ({B}, {H}, T, {Dh}), float32, no mask; each sample is "
        f"the median of {calls} calls; {n_rounds} rounds, contenders alternating.",
        f"fitted time exponent in T over T = {sizes[0]}…{sizes[-1]}: {OURS} {k_ours:.2f}, "
        f"{SDPA} {k_sdpa:.2f}. An exponent of 2 means time grows like the T × T work at a "
        f"constant speed; above 2, the speed (GFLOP/s) falls as the (B, H, T, T) scores outgrow "
        f"the caches; below 2, fixed costs still matter at these T.",
    ]
    if len(sizes) >= 5:  # where the small sizes are launch- or overhead-bound, the top end
        top = sizes[-3:]
        k_top = {name: fit_power_law(top, result["medians"][name][-3:])[0] for name in (OURS, SDPA)}
        facts.append(
            f"over the largest three T ({top[0]}…{top[-1]}) alone: {OURS} {k_top[OURS]:.2f}, "
            f"{SDPA} {k_top[SDPA]:.2f}."
        )
    return {
        "key": key,
        "title": title,
        "status": "measured",
        "rows": result["rows"],
        "facts": facts,
        "series": {
            "sizes": sizes,
            "times": {
                f"{OURS} (from scratch)": result["medians"][OURS],
                SDPA: result["medians"][SDPA],
            },
            "fit": result["fits"][OURS],
            "title": f"attention, (B, H, Dh) = ({B}, {H}, {Dh}), {device}",
        },
    }


def measure_cpu(*, quick: bool = False, log: Callable[[str], None] = print) -> dict:
    """Item 4: attention (with its exponent), multi-head attention and encoder layer on CPU."""
    mode = "quick" if quick else "full"
    n_rounds, calls = EFFORT[mode]
    section = _attention_section(
        "reference",
        "4. Reference code against PyTorch (CPU)",
        "cpu",
        ATTENTION_T[mode],
        quick,
        log,
    )
    log(f"  modules at (B, T, D, H) = {MODULE_SIZES[mode]}")
    section["rows"] += module_rows(MODULE_SIZES[mode], device="cpu", n_rounds=n_rounds, calls=calls)
    section["facts"].append(
        "modules: eval mode under torch.no_grad(), weights copied from the torch module, "
        "dim_feedforward = 4·D, pre-LN; torch may take its fused inference fast path, which is "
        "what a user calling it gets."
    )
    section["facts"].append(f"torch threads: {torch.get_num_threads()}")
    return section


def measure_gpu(
    *, device: str = "cuda", quick: bool = False, log: Callable[[str], None] = print
) -> dict:
    """Item 5: the attention comparison on an accelerator; skipped cleanly without one."""
    title = "5. Attention on a GPU"
    if device.startswith("cuda") and not torch.cuda.is_available():
        return {
            "key": "gpu",
            "title": title,
            "status": "not measured: no GPU lent to this run (torch.cuda.is_available() is "
            "False); on a machine with one: `python benchmarks/run.py --only gpu --device cuda`",
            "rows": [],
        }
    mode = "quick" if quick else "full"
    sizes = GPU_T[mode] if device != "cpu" else ATTENTION_T[mode]
    section = _attention_section("gpu", title, device, sizes, quick, log)
    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device
    n_rounds, calls = EFFORT[mode]
    extras = [
        (
            f"bfloat16 attention at T={GPU_HALF_T[mode]}",
            lambda: half_precision_rows(
                GPU_HALF_T[mode],
                ATTENTION_SHAPE[mode],
                device=device,
                n_rounds=n_rounds,
                calls=calls,
            ),
            "rows",
        ),
        (
            f"modules at (B, T, D, H) = {GPU_MODULE_SIZES[mode]}",
            lambda: module_rows(
                GPU_MODULE_SIZES[mode], device=device, n_rounds=n_rounds, calls=calls
            ),
            "rows",
        ),
    ]
    if device.startswith("cuda"):
        extras.append(
            (
                f"peak memory at T={GPU_MEMORY_T[mode]}",
                lambda: memory_facts(
                    section.setdefault(
                        "memory",
                        memory_record(GPU_MEMORY_T[mode], ATTENTION_SHAPE[mode], device=device),
                    )
                ),
                "facts",
            )
        )
    for what, measure, into in extras:  # one part that fails must not lose the others
        log(f"  {what}")
        try:
            section[into] += measure()
        except Exception as exc:  # noqa: BLE001 - recorded in the results instead
            section["facts"].append(f"{what}: not measured ({type(exc).__name__}: {exc})")
    section["facts"].insert(0, f"device: {name} (torch {torch.__version__})")
    section["series"]["title"] = section["series"]["title"].replace(device, name)
    return section


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (item 4) or cuda (item 5)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tables import section_table

    if args.device == "cpu":
        section = measure_cpu(quick=args.quick)
    else:
        section = measure_gpu(device=args.device, quick=args.quick)
    print(section.get("status", ""))
    if section["rows"]:
        print(section_table(section))
    for fact in section.get("facts", []):
        print("-", fact)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Statistics and markdown tables of the benchmark results, shared by ``run.py`` and its pieces
(``book_build.py``, ``check_latency.py``, ``reference_vs_torch.py``, ``dask_scaling.py``), which
import this module and never ``run.py``: the driver imports the pieces, not the other way round.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """{"median", "q25", "q75", "iqr", "n"} of a list of numbers (seconds or ratios)."""
    if len(samples) == 0:
        raise ValueError("no samples to summarize: the measurement did not run")
    q25, q75 = np.percentile(np.asarray(samples, dtype=np.float64), [25, 75])
    return {
        "median": float(statistics.median(samples)),
        "q25": float(q25),
        "q75": float(q75),
        "iqr": float(q75 - q25),
        "n": len(samples),
    }


def paired_ratios(samples: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Round-by-round ratios ``samples[i] / baseline[i]`` (both timed in round i)."""
    if len(samples) != len(baseline):
        raise ValueError(
            f"paired ratios need one sample per round from each contender, got "
            f"{len(samples)} and {len(baseline)}"
        )
    return [a / b for a, b in zip(samples, baseline) if b > 0]


def interleaved(n_rounds: int, contenders: Sequence[str]) -> list[list[str]]:
    """The order of the contenders in each round: rotated every round (ABC, BCA, CAB, …)."""
    k = len(contenders)
    return [[contenders[(r + i) % k] for i in range(k)] for r in range(n_rounds)]


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def fmt_seconds(s: float) -> str:
    """A duration with a unit that keeps 3 significant digits: 0.000123 -> '123 µs'."""
    if s != s:  # NaN
        return "–"
    a = abs(s)
    if a >= 100:
        return f"{s:.0f} s"
    if a >= 1:
        return f"{s:.3g} s"
    if a >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def fmt_ratio(summary: dict[str, float]) -> str:
    if summary["n"] < 2:
        return f"{summary['median']:.2f}×"
    return f"{summary['median']:.2f}× ({summary['q25']:.2f}–{summary['q75']:.2f})"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table; every row must have as many cells as the header."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, the header {len(header)}")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section_table(section: dict) -> str:
    """The table of one measured section: median, IQR, repeats, ratio to its baseline."""
    rows = section["rows"]
    with_count = any(r.get("count") for r in rows)

    def per_notebook(row: dict) -> list[float]:
        """Seconds per notebook in each round (the samples themselves without a count)."""
        count = row.get("count") or 1
        counts = count if isinstance(count, list) else [count] * len(row["samples"])
        return [t / c for t, c in zip(row["samples"], counts)]

    by_label = {r["label"]: r for r in rows}
    header = ["measurement", "median", "IQR", "repeats"]
    if with_count:
        header += ["per notebook", "notebooks/min"]
    header += ["ratio (median, IQR of per-round ratios)", "note"]
    table = []
    for row in rows:
        s = summarize(row["samples"])
        spread = fmt_seconds(s["iqr"]) if s["n"] > 1 else "–"  # one sample has no spread
        cells = [row["label"], fmt_seconds(s["median"]), spread, str(s["n"])]
        if with_count:
            if row.get("count"):
                per = statistics.median(per_notebook(row))
                cells += [fmt_seconds(per), f"{60 / per:.1f}"]
            else:
                cells += ["", ""]
        base = row.get("baseline")
        if base:
            if base not in by_label:
                raise ValueError(f"row {row['label']!r} names a missing baseline {base!r}")
            # per notebook, so that rounds of different sizes (bare runs fewer) compare
            ratio = summarize(paired_ratios(per_notebook(row), per_notebook(by_label[base])))
            cells.append(f"{fmt_ratio(ratio)} vs {row.get('vs') or base}")
        else:
            cells.append("")
        cells.append(row.get("note", ""))
        table.append(cells)
    return markdown_table(header, table)

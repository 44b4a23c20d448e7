"""Figures for the book and the notebooks.

Every function builds a fresh :class:`matplotlib.figure.Figure` with the object API and returns
it: no pyplot state, no ``plt.show()``, nothing left open, safe under the Agg backend. The
figures display themselves in Jupyter (``_repr_png_``) and save with ``fig.savefig``.

Chinese labels (e.g. the tokens 狗 追 猫) render when a CJK font is installed (on Debian:
``apt-get install fonts-noto-cjk``); :func:`cjk_font` reports which one is used. Without
one, characters no available font can draw are shown as □ rather than triggering
matplotlib's missing-glyph warnings.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text

__all__ = [
    "CourseFigure",
    "cjk_font",
    "attention_heatmap",
    "plot_positional_encoding",
    "plot_confusion_matrix",
    "plot_scaling",
    "plot_loss_curve",
    "plot_embeddings_2d",
    "plot_head_attention",
]

# Families that cover Chinese, most preferred first (Linux, then macOS / Windows names).
_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Microsoft YaHei",
    "SimHei",
    "Arial Unicode MS",
)
_BASE_FAMILY = "DejaVu Sans"  # matplotlib's bundled default: Latin, Greek, maths symbols
_TOFU = "\u25a1"  # □, drawn in place of a character no font has


class CourseFigure(Figure):
    """A Figure that shows itself as a PNG in Jupyter, even if pyplot was never imported."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


@functools.cache
def cjk_font() -> str | None:
    """Name of the installed font family used for Chinese labels, or None if there is none."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_FAMILIES if name in installed), None)


@functools.cache
def _families() -> tuple[str, ...]:
    # matplotlib (>= 3.6) falls back glyph by glyph along this list
    cjk = cjk_font()
    return (_BASE_FAMILY, cjk) if cjk else (_BASE_FAMILY,)


@functools.cache
def _drawable() -> frozenset[int]:
    """Code points some font in :func:`_families` can draw."""
    codes: set[int] = set()
    for family in _families():
        path = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
        codes.update(FT2Font(path).get_charmap())
    return frozenset(codes)


def _safe(text: str) -> str:
    """``text`` with every character no font can draw replaced by □ (layout chars kept)."""
    drawable = _drawable()
    return "".join(ch if ord(ch) in drawable or ch in "\n\t " else _TOFU for ch in text)


def _token(label: object) -> str:
    """A data label (token, class name) as literal, drawable text.

    Tick labels are re-read from their formatter at draw time, so they are made safe here
    rather than in :func:`_finish`; and '$' must not start mathtext.
    """
    return _safe(str(label)).replace("$", r"\$")


def _new_figure(figsize: tuple[float, float]) -> CourseFigure:
    return CourseFigure(figsize=figsize, layout="constrained")


def _finish(fig: CourseFigure) -> CourseFigure:
    """Give every text of ``fig`` the CJK-capable fonts and make it drawable without warnings."""
    for text in fig.findobj(Text):
        text.set_fontfamily(list(_families()))
        text.set_text(_safe(text.get_text()))
    return fig


def _array(x, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """A float numpy array from a tensor (any device, with grad) or array-like."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    wanted = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in wanted:
        raise ValueError(f"{name} must have {' or '.join(map(str, wanted))} dims, got {arr.shape}")
    return arr


def _check_labels(labels, n: int, name: str, axis: str) -> list[str] | None:
    if labels is None:
        return None
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but the {axis} axis has {n}")
    return [_token(t) for t in labels]


def _heatmap(ax, weights: np.ndarray, x_labels, y_labels, annotate: bool):
    """Draw (T, S) weights with queries as rows and keys as columns; return the image."""
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, aspect="auto", interpolation="nearest")
    T, S = weights.shape
    if x_labels is not None:
        ax.set_xticks(range(S), x_labels, rotation=90 if S > 6 else 0)
    if y_labels is not None:
        ax.set_yticks(range(T), y_labels)
    if annotate:
        threshold = (weights.max() + weights.min()) / 2
        for i in range(T):
            for j in range(S):
                color = "black" if weights[i, j] > threshold else "white"
                ax.text(j, i, f"{weights[i, j]:.2f}", ha="center", va="center", color=color)
    return image


def attention_heatmap(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> CourseFigure:
    """Attention weights of one head as a heatmap: row = query, column = key.

    Args:
        weights: (T, S), rows summing to 1. x_labels: S key tokens. y_labels: T query tokens.
    Small matrices (at most 8 × 8) show their values in the cells.
    """
    w = _array(weights, "weights (pick one head and one batch item: weights[0, h])", 2)
    T, S = w.shape
    x_labels = _check_labels(x_labels, S, "x_labels", "key (column)")
    y_labels = _check_labels(y_labels, T, "y_labels", "query (row)")
    fig = _new_figure((1.2 + 0.5 * max(S, 4), 0.8 + 0.45 * max(T, 4)))
    ax = fig.add_subplot()
    image = _heatmap(ax, w, x_labels, y_labels, annotate=T <= 8 and S <= 8)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, label="attention weight")
    return _finish(fig)


def plot_positional_encoding(pe) -> CourseFigure:
    """A (max_len, d_model) positional encoding as an image: position down, dimension across."""
    pe = _array(pe, "pe", 2)
    limit = float(np.abs(pe).max()) or 1.0
    fig = _new_figure((8.0, 4.0))
    ax = fig.add_subplot()
    image = ax.imshow(pe, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xlabel("dimension i")
    ax.set_ylabel("position")
    ax.set_title(f"Positional encoding ({pe.shape[0]} positions × {pe.shape[1]} dims)")
    fig.colorbar(image, ax=ax)
    return _finish(fig)


_NORMALIZED_TITLES = {
    None: "counts",
    "true": "normalized by row: diagonal = recall",
    "pred": "normalized by column: diagonal = precision",
    "all": "normalized by total",
}


def plot_confusion_matrix(cm, labels: Sequence[str], normalize: str | None = None) -> CourseFigure:
    """A confusion matrix (rows = true class, columns = predicted) with its values written in.

    Args:
        cm: (L, L) counts, e.g. from :func:`course_lib.evaluation.confusion_matrix`.
        labels: the L class names. normalize: None, "true", "pred" or "all", applied to
            ``cm`` here; an empty row or column stays 0.
    """
    if normalize not in _NORMALIZED_TITLES:
        raise ValueError(f"normalize must be one of {tuple(_NORMALIZED_TITLES)}, got {normalize!r}")
    cm = _array(cm, "cm", 2)
    if cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be square (true × predicted), got {cm.shape}")
    names = _check_labels(labels, cm.shape[0], "labels", "class")
    if normalize is not None:
        axis = {"true": 1, "pred": 0, "all": None}[normalize]
        totals = cm.sum(axis=axis, keepdims=axis is not None)
        cm = np.divide(cm, totals, out=np.zeros_like(cm), where=np.asarray(totals) != 0)
    L = cm.shape[0]
    fig = _new_figure((2.0 + 0.7 * max(L, 3), 1.5 + 0.6 * max(L, 3)))
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", vmin=0.0)
    ax.set_xticks(range(L), names, rotation=45 if L > 4 else 0)
    ax.set_yticks(range(L), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({_NORMALIZED_TITLES[normalize]})")
    threshold = cm.max() / 2
    for i in range(L):
        for j in range(L):
            text = f"{cm[i, j]:.0f}" if normalize is None else f"{cm[i, j]:.2f}"
            color = "white" if cm[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color)
    fig.colorbar(image, ax=ax)
    return _finish(fig)


def _series(values, name: str) -> dict[str, np.ndarray]:
    """One unnamed series or a mapping name -> series, as a dict of 1-D arrays."""
    if isinstance(values, Mapping):
        return {str(k): _array(v, f"{name}[{k!r}]", 1) for k, v in values.items()}
    return {"": _array(values, name, 1)}


def plot_scaling(sizes, times, fit: tuple[float, float] | None = None) -> CourseFigure:
    """Measured time against size on log–log axes, where a power law is a straight line.

    Args:
        sizes: (N,) e.g. sequence lengths. times: (N,) seconds, or a mapping
            ``{"from scratch": times, "F.scaled_dot_product_attention": times}``.
        fit: ``(exponent, coefficient)`` from :func:`course_lib.benchmarking.fit_power_law`,
            drawn as the line ``c · size^k``.
    """
    x = _array(sizes, "sizes", 1)
    series = _series(times, "times")
    if np.any(x <= 0) or any(np.any(t <= 0) for t in series.values()):
        raise ValueError("sizes and times must be positive for log-log axes")
    fig = _new_figure((6.0, 4.0))
    ax = fig.add_subplot()
    for name, t in series.items():
        if t.shape != x.shape:
            raise ValueError(
                f"times{f'[{name!r}]' if name else ''} has {len(t)} values, sizes {len(x)}"
            )
        ax.plot(x, t, "o-", label=name or "measured")
    if fit is not None:
        k, c = fit
        grid = np.geomspace(x.min(), x.max(), 50)
        ax.plot(grid, c * grid**k, "--", color="gray", label=f"fit: time ∝ size^{k:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if len(x) <= 12:  # label the measured sizes themselves, not powers of ten
        from matplotlib.ticker import NullFormatter

        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("size")
    ax.set_ylabel("time (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _finish(fig)


def plot_loss_curve(losses) -> CourseFigure:
    """Loss per step with a moving average, or several named curves from a mapping."""
    series = _series(losses, "losses")
    fig = _new_figure((6.0, 4.0))
    ax = fig.add_subplot()
    for name, y in series.items():
        if len(y) == 0:
            raise ValueError(f"losses{f'[{name!r}]' if name else ''} is empty")
        line = ax.plot(y, alpha=0.35, label=name or "loss per step")[0]
        window = max(1, len(y) // 20)
        if window > 1:  # the raw curve is noisy: a moving average shows the trend
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            steps = np.arange(window - 1, len(y))
            label = f"{name + ' ' if name else ''}moving average ({window} steps)"
            ax.plot(steps, smooth, color=line.get_color(), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    return _finish(fig)


def plot_embeddings_2d(points, labels: Sequence[str]) -> CourseFigure:
    """A scatter plot of vectors with each point labelled, e.g. word embeddings.

    Args:
        points: (N, 2); or (N, D) with D > 2, then projected on the first two principal
            components (centred SVD, deterministic up to sign).
        labels: N strings.
    """
    x = _array(points, "points", 2)
    names = _check_labels(labels, x.shape[0], "labels", "point")
    title = None
    if x.shape[1] > 2:
        centred = x - x.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        x = centred @ vt[:2].T  # (N, 2)
        explained = (s[:2] ** 2).sum() / max((s**2).sum(), 1e-12)
        title = f"PCA of {vt.shape[1]}-d vectors ({explained:.0%} of variance)"
    elif x.shape[1] < 2:
        raise ValueError(f"points must have at least 2 columns, got {x.shape}")
    fig = _new_figure((6.0, 5.0))
    ax = fig.add_subplot()
    ax.scatter(x[:, 0], x[:, 1], s=20)
    for (px, py), name in zip(x, names):
        ax.annotate(name, (px, py), textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    if title:
        ax.set_title(title)
    return _finish(fig)


def plot_head_attention(
    weights, tokens: Sequence[str], key_tokens: Sequence[str] | None = None
) -> CourseFigure:
    """One heatmap panel per head, sharing one colour scale.

    Args:
        weights: (H, T, S) attention weights of one batch item.
        tokens: the T query tokens (also the keys in self-attention).
        key_tokens: the S key tokens when they differ (cross-attention).
    """
    w = _array(weights, "weights (one batch item: weights[0])", 3)
    H, T, S = w.shape
    q_names = _check_labels(tokens, T, "tokens", "query")
    k_names = _check_labels(
        key_tokens if key_tokens is not None else tokens, S, "key_tokens", "key"
    )
    ncols = min(H, 4)
    nrows = -(-H // ncols)
    fig = _new_figure((0.6 + ncols * (0.4 * max(S, 5)), nrows * (0.8 + 0.35 * max(T, 5))))
    axes = [fig.add_subplot(nrows, ncols, h + 1) for h in range(H)]
    vmax = float(w.max()) or 1.0
    for h, ax in enumerate(axes):
        image = ax.imshow(w[h], cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_xticks(range(S), k_names, rotation=90)
        ax.set_yticks(range(T), q_names if h % ncols == 0 else [""] * T)
        ax.set_title(f"head {h}")
    fig.colorbar(image, ax=axes, label="attention weight")
    return _finish(fig)

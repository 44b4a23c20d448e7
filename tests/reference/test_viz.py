"""Figure helpers: right panels and images, Chinese labels, and no warnings when drawn."""

import io
import warnings

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from course_lib import viz


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # missing glyphs, singular colour limits, layout trouble: all show up as warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def render(fig: Figure) -> bytes:
    """Draw the figure completely (layout, text shaping) as the book build would."""
    assert isinstance(fig, Figure)
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG")
    return png


def softmax_rows(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(*shape, generator=g), dim=-1)


def test_attention_heatmap_axes_images_labels():
    w = softmax_rows(3, 5)
    keys = ["time", "flies", "like", "an", "arrow"]
    fig = viz.attention_heatmap(w, x_labels=keys, y_labels=keys[:3], title="one head")
    assert len(fig.axes) == 2  # heatmap + colour bar
    ax = fig.axes[0]
    assert len(ax.images) == 1
    np.testing.assert_allclose(ax.images[0].get_array(), w.numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == keys  # keys along x (columns)
    assert [t.get_text() for t in ax.get_yticklabels()] == keys[:3]  # queries along y (rows)
    assert ax.get_title() == "one head"
    assert sum(1 for t in ax.texts) == 15  # values written in a small matrix
    render(fig)


def test_attention_heatmap_accepts_grad_tensor_and_fully_masked_rows():
    w = softmax_rows(4, 4).requires_grad_()
    fig = viz.attention_heatmap(w)
    render(fig)
    # the drawn matrix is the weights themselves: not transposed, not renormalised
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), w.detach().numpy())
    masked = viz.attention_heatmap(torch.zeros(2, 3))  # all rows masked: zeros, not a crash
    render(masked)
    assert np.asarray(masked.axes[0].images[0].get_array()).shape == (2, 3)


def test_attention_heatmap_bad_input():
    with pytest.raises(ValueError, match="one head"):
        viz.attention_heatmap(softmax_rows(2, 4, 3, 3))
    with pytest.raises(ValueError, match="x_labels has 2"):
        viz.attention_heatmap(softmax_rows(3, 3), x_labels=["a", "b"])


def test_chinese_labels_draw_without_warnings():
    tokens = ["狗", "追", "猫"]
    fig = viz.attention_heatmap(softmax_rows(3, 3), tokens, tokens, title="狗追猫 vs 猫追狗")
    render(fig)  # a missing glyph would raise here (warnings are errors)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    if viz.cjk_font() is None:
        assert labels == ["□", "□", "□"]  # shown as tofu, quietly
    else:
        assert labels == tokens
    for t in fig.findobj(Text):
        assert viz.cjk_font() is None or viz.cjk_font() in t.get_fontfamily()


@pytest.fixture
def no_cjk_font(monkeypatch):
    """Pretend no CJK font is installed (the fallback path), whatever this machine has."""
    viz._drawable.cache_clear()
    monkeypatch.setattr(viz, "_families", lambda: ("DejaVu Sans",))
    yield
    viz._drawable.cache_clear()


def test_chinese_labels_without_cjk_font_become_tofu_quietly(no_cjk_font):
    tokens = ["狗", "追", "猫"]
    fig = viz.attention_heatmap(softmax_rows(3, 3), tokens, ["dog", "狗", "x"], title="狗追猫")
    render(fig)  # a missing glyph would raise here (warnings are errors)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["□", "□", "□"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["dog", "□", "x"]
    assert fig.axes[0].get_title() == "□□□"


def test_dollar_tokens_are_literal_not_mathtext():
    fig = viz.attention_heatmap(softmax_rows(2, 2), ["$5", "$x$"], ["a", "b"])
    render(fig)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [r"\$5", r"\$x\$"]


def test_plot_positional_encoding():
    pos = torch.arange(50)[:, None]
    pe = torch.sin(pos / 10000 ** (torch.arange(16) / 16))
    fig = viz.plot_positional_encoding(pe)
    assert len(fig.axes) == 2 and len(fig.axes[0].images) == 1
    assert fig.axes[0].images[0].get_array().shape == (50, 16)
    lo, hi = fig.axes[0].images[0].get_clim()
    assert lo == -hi  # a symmetric scale: zero is white in RdBu
    render(fig)


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_plot_confusion_matrix(normalize):
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # the last class never occurs
    fig = viz.plot_confusion_matrix(cm, ["猫", "dog", "fish"], normalize=normalize)
    ax = fig.axes[0]
    assert len(fig.axes) == 2 and len(ax.images) == 1
    shown = np.asarray(ax.images[0].get_array())
    assert not np.isnan(shown).any()
    if normalize == "true":
        np.testing.assert_allclose(shown.sum(axis=1), [1, 1, 0])
    elif normalize == "pred":
        np.testing.assert_allclose(shown.sum(axis=0), [1, 1, 0])
    elif normalize is None:
        assert "5" in [t.get_text() for t in ax.texts]
    assert len(ax.texts) == 9
    render(fig)


def test_plot_confusion_matrix_bad_input():
    with pytest.raises(ValueError, match="square"):
        viz.plot_confusion_matrix(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="labels has 1"):
        viz.plot_confusion_matrix(np.ones((2, 2)), ["a"])
    with pytest.raises(ValueError, match="normalize"):
        viz.plot_confusion_matrix(np.ones((2, 2)), ["a", "b"], normalize="rows")


def test_plot_scaling_log_log_with_fit():
    sizes = [64, 128, 256, 512]
    times = [3e-9 * n**2 for n in sizes]
    fig = viz.plot_scaling(sizes, times, fit=(2.0, 3e-9))
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    measured, fitted = ax.lines
    np.testing.assert_allclose(fitted.get_ydata(), 3e-9 * fitted.get_xdata() ** 2)
    assert "2.00" in fitted.get_label()
    render(fig)


def test_plot_scaling_several_series_and_bad_input():
    fig = viz.plot_scaling([8, 16], {"scratch": [1e-4, 4e-4], "sdpa": [5e-5, 1e-4]})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "16"]  # the sizes, readable
    assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))
    assert [line.get_label() for line in fig.axes[0].lines] == ["scratch", "sdpa"]
    render(fig)
    with pytest.raises(ValueError, match="positive"):
        viz.plot_scaling([0, 1], [1, 2])
    with pytest.raises(ValueError, match="has 1 values"):
        viz.plot_scaling([1, 2], [1.0])


def test_plot_loss_curve():
    losses = list(np.linspace(5, 1, 200) + 0.1 * np.sin(np.arange(200)))
    fig = viz.plot_loss_curve(losses)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 2  # raw + moving average
    np.testing.assert_allclose(ax.lines[0].get_ydata(), losses)
    assert ax.lines[1].get_ydata()[-1] < ax.lines[1].get_ydata()[0]
    render(fig)
    render(viz.plot_loss_curve({"train": [3.0, 2.0], "valid": [3.1, 2.5]}))
    with pytest.raises(ValueError, match="empty"):
        viz.plot_loss_curve([])


def test_plot_embeddings_2d_and_pca():
    points = np.array([[0.0, 0.0], [1.0, 0.5], [0.2, 0.9]])
    fig = viz.plot_embeddings_2d(points, ["king", "queen", "皇后"])
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.collections) == 1 and len(ax.texts) == 3
    np.testing.assert_allclose(ax.collections[0].get_offsets(), points)
    render(fig)
    # 5-d points lying on a plane: the PCA projection keeps all pairwise distances
    g = np.random.default_rng(0)
    basis = np.linalg.qr(g.normal(size=(5, 2)))[0].T  # (2, 5) orthonormal rows
    plane = g.normal(size=(6, 2))
    fig = viz.plot_embeddings_2d(plane @ basis, [str(i) for i in range(6)])
    projected = np.asarray(fig.axes[0].collections[0].get_offsets())
    dist = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(projected), dist(plane), atol=1e-9)
    assert "100%" in fig.axes[0].get_title()
    render(fig)


def test_plot_head_attention_one_panel_per_head():
    H, T = 6, 4
    w = softmax_rows(H, T, T)
    tokens = ["我", "爱", "你", "!"]
    fig = viz.plot_head_attention(w, tokens)
    heads = [ax for ax in fig.axes if ax.images]
    assert len(heads) == H and len(fig.axes) == H + 1  # + one shared colour bar
    for h, ax in enumerate(heads):
        np.testing.assert_allclose(ax.images[0].get_array(), w[h].numpy(), rtol=1e-6)
        assert ax.get_title() == f"head {h}"
    assert len({ax.images[0].get_clim() for ax in heads}) == 1  # one shared scale
    render(fig)


def test_plot_head_attention_cross_attention_and_bad_input():
    w = softmax_rows(2, 3, 5)
    fig = viz.plot_head_attention(
        w, ["je", "t'", "aime"], key_tokens=["I", "love", "you", ".", "!"]
    )
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["I", "love", "you", ".", "!"]
    render(fig)
    with pytest.raises(ValueError, match="key_tokens has 3"):
        viz.plot_head_attention(w, ["je", "t'", "aime"])
    with pytest.raises(ValueError, match="one batch item"):
        viz.plot_head_attention(softmax_rows(1, 2, 3, 3), ["a"] * 3)


def test_figures_are_not_registered_with_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    viz.plot_loss_curve([3.0, 2.0, 1.0])
    assert plt.get_fignums() == before  # nothing to close, nothing leaks


def test_png_and_svg_export():
    fig = viz.attention_heatmap(softmax_rows(2, 2), ["a", "b"], ["c", "d"])
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    assert "<svg" in buffer.getvalue()

"""Explorers: one figure per slider position, for the static book and for Jupyter.

The book is read as static HTML, with no kernel behind it, so its sliders cannot call Python.
:func:`frame_slider` therefore draws every frame when the page is built, embeds them as PNG
images, and lets a few lines of inline JavaScript swap the image as the slider moves: it needs
no network and no kernel. :func:`widget_slider` takes the same arguments and gives the live
ipywidgets version for a notebook, where the figure is redrawn on demand.

Both take ``draw(value) -> Figure``: a function that draws one frame for one slider value.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

DrawFn = Callable[[Any], Figure]

# Inline handler: find this slider's container, then swap image and caption for the chosen
# frame. Kept inline (no <script> block) so that it works wherever the HTML is pasted.
_ONINPUT = (
    "var d=this.closest('.frame-slider');"
    "var s=JSON.parse(d.querySelector('script.fs-data').textContent);"
    "d.querySelector('img.fs-frame').src='data:image/png;base64,'+s.frames[this.value];"
    "d.querySelector('.fs-value').textContent=s.labels[this.value];"
)


def figure_to_png_base64(fig: Figure, *, dpi: int = 90) -> str:
    """Render ``fig`` to a PNG and return it base64-encoded; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _check_values(values: Sequence[Any]) -> list[Any]:
    values = list(values)
    if not values:
        raise ValueError("values is empty: give at least one slider position")
    return values


class FrameSlider:
    """A slider over precomputed frames; displays as self-contained HTML.

    Attributes:
        labels: the caption shown for each frame.
        frames: base64 PNG of each frame.
    """

    def __init__(self, frames: list[str], labels: list[str], label: str, initial: int = 0):
        if len(frames) != len(labels):
            raise ValueError(f"{len(frames)} frames but {len(labels)} labels")
        if not 0 <= initial < len(frames):
            raise ValueError(f"initial={initial} is outside 0..{len(frames) - 1}")
        self.frames, self.labels, self.label, self.initial = frames, labels, label, initial

    def to_html(self) -> str:
        uid = uuid.uuid4().hex[:8]
        data = json.dumps({"frames": self.frames, "labels": self.labels})
        # "</" cannot appear inside a <script> element; base64 and our labels never contain
        # it, but escape it anyway so a label like "</script>" cannot break the page.
        data = data.replace("</", "<\\/")
        first = self.initial
        return (
            f'<div class="frame-slider" id="fs-{uid}" style="margin:1em 0">'
            f'<label for="fs-{uid}-range" style="display:block;font-weight:600">'
            f"{html.escape(self.label)}: "
            f'<span class="fs-value">{html.escape(self.labels[first])}</span></label>'
            f'<input type="range" id="fs-{uid}-range" class="fs-range" min="0" '
            f'max="{len(self.frames) - 1}" step="1" value="{first}" '
            f'style="width:100%;max-width:480px" '
            f'aria-label="{html.escape(self.label)}" oninput="{html.escape(_ONINPUT)}">'
            f'<img class="fs-frame" style="display:block;max-width:100%" '
            f'alt="{html.escape(self.label)} explorer" '
            f'src="data:image/png;base64,{self.frames[first]}">'
            f'<script type="application/json" class="fs-data">{data}</script>'
            "</div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()


def frame_slider(
    draw: DrawFn,
    values: Sequence[Any],
    *,
    label: str = "value",
    fmt: str = "{}",
    initial: int = 0,
    dpi: int = 90,
) -> FrameSlider:
    """Draw one frame per value now; return a slider that works in static HTML.

    Args:
        draw: ``draw(value) -> Figure`` for one slider position.
        values: the slider positions, in order.
        label: what the slider controls, shown above it.
        fmt: format of the value caption, e.g. ``"{:.2f}"``.
        initial: index of the frame shown first.
    """
    values = _check_values(values)
    frames = [figure_to_png_base64(draw(v), dpi=dpi) for v in values]
    return FrameSlider(frames, [fmt.format(v) for v in values], label, initial)


def widget_slider(
    draw: DrawFn,
    values: Sequence[Any],
    *,
    label: str = "value",
    fmt: str = "{}",
    initial: int = 0,
):
    """The Jupyter twin of :func:`frame_slider`: an ipywidgets slider that redraws live."""
    import ipywidgets as widgets
    from IPython.display import display

    values = _check_values(values)
    options = [(fmt.format(v), i) for i, v in enumerate(values)]
    slider = widgets.SelectionSlider(options=options, value=initial, description=label)
    out = widgets.Output()

    def show(change: dict | None = None) -> None:
        out.clear_output(wait=True)
        with out:
            fig = draw(values[slider.value])
            display(fig)
            plt.close(fig)

    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, out])

"""The explorers: static frames for the book, live ipywidgets for notebooks."""

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib.interactive import FrameSlider, frame_slider, widget_slider  # noqa: E402


def _draw(value: float):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, value])
    return fig


def test_frame_slider_embeds_one_distinct_frame_per_value() -> None:
    slider = frame_slider(_draw, [0.5, 1.0, 2.0], label="temperature", fmt="{:.1f}", initial=1)
    page = slider._repr_html_()
    data = json.loads(re.search(r'class="fs-data">(.*?)</script>', page).group(1))
    assert data["labels"] == ["0.5", "1.0", "2.0"]
    assert len(set(data["frames"])) == 3  # three different pictures, not one repeated
    assert 'max="2"' in page and 'value="1"' in page
    assert f"base64,{data['frames'][1]}" in page  # the initial frame is shown first
    assert ">1.0</span>" in page
    assert plt.get_fignums() == []  # every frame's figure was closed


def test_labels_cannot_break_out_of_the_page() -> None:
    page = FrameSlider(["AAAA"], ["</script><b>x"], "a<b>").to_html()
    assert "</script><b>" not in page
    assert "a&lt;b&gt;" in page


@pytest.mark.parametrize(
    ("values", "initial", "message"), [([], 0, "values is empty"), ([1, 2], 2, "initial=2")]
)
def test_bad_arguments_say_what_to_fix(values, initial, message) -> None:
    with pytest.raises(ValueError, match=message):
        frame_slider(_draw, values, initial=initial)


def test_widget_slider_redraws_when_moved() -> None:
    calls: list[float] = []

    def draw(value: float):
        calls.append(value)
        return _draw(value)

    box = widget_slider(draw, [1.0, 2.0, 3.0], label="scale")
    slider = box.children[0]
    assert calls == [1.0]
    slider.value = 2
    assert calls == [1.0, 3.0]
    assert [label for label, _ in slider.options] == ["1.0", "2.0", "3.0"]

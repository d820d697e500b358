"""``edgepose bench --plot``: one colour per row, a legend naming every row, nothing cut.

Real inputs: the committed reference model (``models/reference/``) under five
names and real digit images (``tests/reference_model.py``), benchmarked by the
real harness with 1 and 2 threads, XNNPACK on and off (20 rows, as in the issue),
10 runs each. The figure is caught when the plot
function closes it (``pyplot.close``) and its artists are inspected.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from matplotlib.colors import to_hex

from edgepose.bench import bench_report as report
from edgepose.bench.bench_report import plot_latency, row_colours
from edgepose.bench.harness import run_bench
from tests.plot_checks import boxes, keep_closed_figures, no_two_overlap
from tests.reference_model import MODEL, write_digit_samples

NAMES = ["model_fp32", "model_fp16", "model_dynamic", "model_int8", "model_int8_fallback"]


@pytest.fixture(scope="module")
def twenty_rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench_models")
    models = []
    for name in NAMES:
        for suffix in (".tflite", ".json"):
            shutil.copyfile(MODEL.with_suffix(suffix), folder / f"{name}{suffix}")
        models.append(folder / f"{name}.tflite")
    data = folder / "data"
    write_digit_samples(data, per_class=5)
    return run_bench(models, data=data, threads=(1, 2),
                     xnnpack=(True, False), warmup=1, runs=10)


@pytest.fixture
def drawn(monkeypatch):
    """Figures as the plot function leaves them, measured before they are closed."""
    return keep_closed_figures(monkeypatch)


def test_twenty_rows_get_twenty_colours_and_a_legend_entry_each(twenty_rows, drawn, tmp_path):
    assert len(twenty_rows.rows) == 20
    path = plot_latency(twenty_rows, tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = drawn
    expected = [report._row_name(row) for row in twenty_rows.rows]
    assert len(set(expected)) == 20
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [*expected, "end-to-end",
                                                          "invoke only"]
    colours = [to_hex(h.get_color()) for h in legend.legend_handles[:20]]
    assert len(set(colours)) == 20


def test_each_row_keeps_its_colour_in_both_panels(twenty_rows, drawn, tmp_path):
    plot_latency(twenty_rows, tmp_path / "bench.png")
    (fig,) = drawn
    box_ax, cdf_ax = fig.axes
    colours = [to_hex(c) for c in row_colours(20)]
    # Right: an end-to-end (solid) and an invoke (dotted) CDF per row, in the row's colour.
    lines = cdf_ax.get_lines()
    assert [to_hex(line.get_color()) for line in lines] == [c for c in colours for _ in (0, 1)]
    assert [line.get_linestyle() for line in lines] == ["-", ":"] * 20
    # Left: one box per row, labelled on the axis (bottom to top = last row to first).
    labels = [t.get_text() for t in box_ax.get_yticklabels()]
    assert labels == [report._row_name(row) for row in twenty_rows.rows][::-1]
    faces = [to_hex(patch.get_facecolor()) for patch in box_ax.patches]
    assert faces == colours[::-1]


def test_no_label_of_the_bench_plot_is_cut_or_overlaps(twenty_rows, drawn, tmp_path):
    plot_latency(twenty_rows, tmp_path / "bench.png")
    (fig,) = drawn
    box_ax, cdf_ax = fig.axes
    tight = fig.tight.padded(1)  # saved with bbox_inches="tight"
    legend_texts = fig.legends[0].get_texts()
    texts = boxes(fig, [*legend_texts, *box_ax.get_yticklabels(), box_ax.title, cdf_ax.title,
                        fig._suptitle])
    for box in texts:
        assert tight.x0 <= box.x0 and box.x1 <= tight.x1
        assert tight.y0 <= box.y0 and box.y1 <= tight.y1
    for ax in (box_ax, cdf_ax):
        lo, hi = sorted(ax.get_xlim())
        ticks = boxes(fig, [t for t in ax.get_xticklabels(minor=True) + ax.get_xticklabels()
                            if lo <= t.get_position()[0] <= hi])
        assert ticks
        assert no_two_overlap(ticks)
    assert no_two_overlap(boxes(fig, box_ax.get_yticklabels()))


def labelled_ticks(fig, ax) -> list[str]:
    """The x tick labels drawn with text inside the axis limits (major and minor)."""
    lo, hi = sorted(ax.get_xlim())
    fig.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels(minor=True) + ax.get_xticklabels()
            if t.get_text() and lo <= t.get_position()[0] <= hi]


def test_a_log_axis_whose_boxes_fit_inside_one_decade_still_has_labelled_ticks(
        twenty_rows, drawn, tmp_path):
    # Seen on a run: invokes 2-10 us, end-to-end 13-80 us. All samples span 40x (log axis),
    # yet the boxes (p5-p95 of end-to-end) lie between 0.01 and 0.1 ms: no decade tick.
    rng = np.random.default_rng(0)
    rows = [dataclasses.replace(row, invoke_ms=list(rng.uniform(0.002, 0.010, 10)),
                                end_to_end_ms=list(rng.uniform(0.013, 0.080, 10)))
            for row in twenty_rows.rows[:2]]
    plot_latency(dataclasses.replace(twenty_rows, rows=rows), tmp_path / "bench.png")
    (fig,) = drawn
    box_ax, cdf_ax = fig.axes
    assert box_ax.get_xscale() == cdf_ax.get_xscale() == "log"
    assert box_ax.get_xlim() == cdf_ax.get_xlim()  # one latency axis for both panels
    assert labelled_ticks(fig, box_ax) == labelled_ticks(fig, cdf_ax) == ["0.01"]


@pytest.mark.parametrize("count", [1, 10, 11, 20, 21, 40])
def test_row_colours_never_repeat(count):
    colours = [to_hex(c) for c in row_colours(count)]
    assert len(colours) == count == len(set(colours))

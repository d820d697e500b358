"""Plots as a reader sees them: text boxes measured with matplotlib's own renderer.

Plain helpers (no fixtures) for ``tests/test_*_plots.py``: a module's fixture catches
each figure before it is closed and calls :func:`measure_drawn`; the tests then ask
:func:`no_two_overlap` about the boxes (in display pixels) of the texts they care about.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.text import Text
from matplotlib.transforms import Bbox


def measure_drawn(fig) -> None:
    """Draw ``fig`` and keep its geometry on it before it is closed (closing drops the renderer).

    Sets ``fig.boxes`` (``id(text) -> Bbox`` of every visible, non-empty Text),
    ``fig.tight`` (the tight bounding box, pixels: what ``bbox_inches="tight"`` saves)
    and ``fig.axes_box`` (the first axes' box, pixels; None without axes).
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    fig.boxes = {id(t): t.get_window_extent(renderer) for t in fig.findobj(Text)
                 if t.get_visible() and t.get_text()}
    fig.tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    fig.axes_box = fig.axes[0].get_window_extent(renderer) if fig.axes else None


def keep_closed_figures(monkeypatch) -> list:
    """Patch ``plt.close`` so every figure closed is measured first and kept in the list returned.

    For plot functions that close their figure themselves (``monkeypatch`` is pytest's).
    """
    figures = []
    close = plt.close

    def keep(fig=None):
        measure_drawn(fig)
        figures.append(fig)
        close(fig)

    monkeypatch.setattr(plt, "close", keep)
    return figures


def boxes(fig, texts) -> list[Bbox]:
    """The measured boxes of the non-empty ``texts`` of ``fig`` (see :func:`measure_drawn`)."""
    return [fig.boxes[id(t)] for t in texts if t.get_text()]


def no_two_overlap(found: list[Bbox]) -> bool:
    """True when no two of the boxes overlap."""
    return not any(a.overlaps(b) for i, a in enumerate(found) for b in found[i + 1:])

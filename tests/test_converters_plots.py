"""``quant_debug.png`` (``convert --debug-layers``): no label cut, layers named readably.

Real inputs: a small Keras CNN with twelve long-named conv blocks, trained two
epochs on scikit-learn's digits, exported as a SavedModel and run through
TensorFlow's QuantizationDebugger by :func:`edgepose.converters.debugger.layer_errors`
(about 20 s). The figure is caught when the plot function closes it and its
text boxes are measured with matplotlib's renderer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.colors import to_hex

from edgepose.converters.calibration import CalibrationSet
from edgepose.converters.debugger import (
    KEEP_FLOAT_THRESHOLD,
    layer_errors,
    layer_label,
    plot_layer_errors,
)
from tests.plot_checks import boxes, keep_closed_figures, no_two_overlap

BLOCKS = 12


@pytest.fixture(scope="module")
def errors(tmp_path_factory):
    from sklearn.datasets import load_digits

    from edgepose.converters.export import export_saved_model
    from edgepose.quiet import import_tensorflow

    import_tensorflow()
    import keras

    digits = load_digits()
    x = np.repeat(digits.images[..., None] * 15.9, 3, axis=-1).astype(np.float32)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for i in range(BLOCKS):
        h = keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                name=f"block{i}_conv_expand_depthwise_project")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:500], digits.target[:500], epochs=2, verbose=0)
    saved = export_saved_model(model, tmp_path_factory.mktemp("debug") / "saved_model")
    return layer_errors(saved, CalibrationSet(x[500:600], "digits"), samples=50)


@pytest.fixture
def drawn(monkeypatch):
    """Figures as the plot function leaves them, measured before they are closed."""
    return keep_closed_figures(monkeypatch)


def test_the_worst_layers_cosine_label_is_inside_the_axes(errors, drawn, tmp_path):
    path = plot_layer_errors(errors, tmp_path / "quant_debug.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = drawn
    ax = fig.axes[0]
    cosine_labels = [t for t in ax.texts if t.get_text().startswith(" cos ")]
    assert len(cosine_labels) == len(errors)  # 17 ops, fewer than top=25
    worst = cosine_labels[-1]  # drawn last: the top bar
    assert worst.get_text() == f" cos {errors[0].cosine:.3f}"
    for label in cosine_labels:
        box = fig.boxes[id(label)]
        assert fig.axes_box.x0 <= box.x0 and box.x1 <= fig.axes_box.x1


def test_no_text_of_quant_debug_is_cut_or_overlapping(errors, drawn, tmp_path):
    plot_layer_errors(errors, tmp_path / "quant_debug.png")
    (fig,) = drawn
    tight = fig.tight.padded(1)  # saved with bbox_inches="tight"
    for box in fig.boxes.values():
        if box.width > 1:  # drawn texts (tick labels outside the limits are not drawn)
            assert tight.x0 <= box.x0 and box.x1 <= tight.x1
    names = boxes(fig, fig.axes[0].get_yticklabels())
    assert len(names) == len(errors)
    assert no_two_overlap(names)


def test_layers_are_named_by_op_and_their_own_tensor(errors):
    labels = [layer_label(e) for e in errors]
    convs = sorted(label for label in labels if label.startswith("CONV_2D "))
    assert convs == sorted(f"CONV_2D block{i}_conv_expand_depthwise_project_1/Relu"
                           for i in range(BLOCKS))
    assert all(";" not in label and "functional" not in label for label in labels)
    assert any(e.tensor.count(";") >= 2 for e in errors)  # the fused names were long


def test_layers_above_one_step_are_red_the_others_blue(errors, drawn, tmp_path):
    # Two constructed layers past the keep-in-float threshold, on top of the real ones.
    bad = [dataclasses.replace(errors[0], rmse_over_scale=v) for v in (3.0, 1.2)]
    plot_layer_errors(bad + errors, tmp_path / "quant_debug.png", top=10)
    (fig,) = drawn
    bars = fig.axes[0].patches
    assert len(bars) == 10
    widths = [bar.get_width() for bar in bars][::-1]  # top bar first
    assert widths[:2] == [3.0, 1.2]
    colours = [to_hex(bar.get_facecolor()) for bar in bars][::-1]
    assert colours == ["#c0504d"] * 2 + ["#4f81bd"] * 8
    assert all(w <= KEEP_FLOAT_THRESHOLD for w in widths[2:])
    assert f"10 of {len(errors) + 2} layers" in fig.axes[0].get_title()

"""Tiny trained models whose int8 has an op XNNPACK refuses because of its scales.

Plain helpers (no fixtures) shared by ``tests/test_converters_target.py`` and
``tests/test_converters_fallback_target.py``. XNNPACK takes a quantized ADD (and
SUB) only when each input's scale over the output's lies in [1/1024, 256)
(``VisitAddNode`` in tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc): a
fused-RELU6 ADD (output range [0, 6]) of an activation spanning thousands, as in
an untrained network, is refused, stays on the builtin kernel and splits the graph.
Each builder is ``build(keras, inputs, classes) -> outputs`` on the digits CNN of
:mod:`tests.run_fixtures` plus a side branch holding that op.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgepose.rundir import RunDir, load_inputs


def train(run: Path, build, epochs: int = 25) -> Path:
    """Replace the run's model by ``build(keras, inputs, classes)``'s, trained on its train
    split (seeded); returns ``run``."""
    import keras

    rundir = RunDir.open(run)
    x, y = load_inputs(rundir.splits, rundir.splits.samples("train"), rundir.config)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, build(keras, inputs, len(rundir.labels)))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x.astype(np.float32), y, epochs=epochs, batch_size=32, verbose=0)
    model.save(run / "model.keras")
    return run


def made(digits_run: Path, tmp_path_factory, name: str, build) -> Path:
    """A copy of ``digits_run`` whose model is ``build``'s, trained."""
    run = tmp_path_factory.mktemp(name) / "run"
    shutil.copytree(digits_run, run)
    return train(run, build)


def main_branch(keras, h):
    """The digits CNN of the run fixtures: what makes the model accurate. Its last conv
    is the only ``Conv2D`` with a relu activation (:func:`ruin_int8_head` uses that)."""
    for filters in (16, 32):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization(momentum=0.5)(h)
        h = keras.layers.ReLU(6.0)(h)
        h = keras.layers.MaxPooling2D()(h)
    return keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)


def frozen_conv(keras, stddev: float, seed: int):
    """A frozen strided conv with large random weights: a range in the thousands."""
    return keras.layers.Conv2D(32, 3, strides=4, padding="same", trainable=False,
                               kernel_initializer=keras.initializers.RandomNormal(
                                   stddev=stddev, seed=seed))


def with_side(keras, inputs, classes: int, side_branch):
    """The digits CNN, its pooled features concatenated (first) with ``side_branch(h)``'s."""
    h = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    main = main_branch(keras, h)
    h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(main),
                                    keras.layers.GlobalAveragePooling2D()(side_branch(h))])
    return keras.layers.Dense(classes, activation="softmax")(h)


def wide_add(keras, inputs, classes: int):
    """``relu6(a + wide)``: ``wide`` is a frozen conv with large weights (a range in the
    thousands, as in an untrained network), so the fused-RELU6 ADD's input scale is
    over 256x its output scale: XNNPACK refuses it."""
    def side(h):
        a = keras.layers.Conv2D(32, 3, strides=4, padding="same")(h)
        return keras.layers.ReLU(6.0)(keras.layers.Add()([a, frozen_conv(keras, 100.0, 1)(h)]))
    return with_side(keras, inputs, classes, side)


def wide_sub(keras, inputs, classes: int):
    """``relu6(a - wide)``: SUB has the same scale-ratio limit as ADD in XNNPACK."""
    def side(h):
        a = keras.layers.Conv2D(32, 3, strides=4, padding="same")(h)
        diff = keras.layers.Subtract()([a, frozen_conv(keras, 100.0, 1)(h)])
        return keras.layers.ReLU(6.0)(diff)
    return with_side(keras, inputs, classes, side)


def wide_hard_swish(keras, inputs, classes: int):
    """hard-swish of a wide activation (MobileNetV3 untrained): rewritten, its ``x + 3``
    ADD (fused RELU6) is out of XNNPACK's scale range; not rewritten, int8 HARD_SWISH
    is not an XNNPACK op. Either way some op stays outside."""
    def side(h):
        return keras.layers.Activation("hard_swish")(frozen_conv(keras, 100.0, 1)(h))
    return with_side(keras, inputs, classes, side)


def tamed_hard_swish(keras, inputs, classes: int):
    """:func:`wide_hard_swish` scaled by 1/1000 before the classifier: the same ops outside
    XNNPACK, but the features stay small, so the model trains to the digits CNN's
    accuracy (wide features in the thousands keep the classifier from learning)."""
    def side(h):
        wide = keras.layers.Activation("hard_swish")(frozen_conv(keras, 100.0, 1)(h))
        return keras.layers.Rescaling(1e-3)(wide)
    return with_side(keras, inputs, classes, side)


def ruin_int8_head(run: Path) -> Path:
    """Same float function, hopeless int8: the classifier reads a dead channel with weight 1000.

    Channel 0 of the main branch's last conv is made dead (always 0 after its relu)
    and the Dense weights from it (input 0: the main branch comes first in the
    concatenation) set to 1000: float outputs do not change, but each class's int8
    weight scale becomes ~8 and every real weight rounds to zero, so full int8 answers
    one class for every input (as ``tests/test_converters_budget.py``'s bad run).
    """
    import keras

    model = keras.models.load_model(run / "model.keras")
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
                and getattr(layer.activation, "__name__", "") == "relu")
    kernel, bias = conv.get_weights()
    kernel[..., 0], bias[0] = 0.0, -10.0
    conv.set_weights([kernel, bias])
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    weights, dense_bias = dense.get_weights()
    weights[0, :] = 1000.0
    dense.set_weights([weights, dense_bias])
    model.save(run / "model.keras")
    return run

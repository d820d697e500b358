"""The hard-swish rewrite: int8 hard-swish models run fully inside XNNPACK."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgepose.converters import convert_run
from edgepose.converters.hardswish import count_hard_swish, rewrite_hard_swish
from edgepose.rundir import RunDir, load_inputs


@pytest.fixture(scope="module")
def hard_swish_run(digits_run, tmp_path_factory):  # noqa: F811
    """The digits data with a small hard-swish CNN trained on it."""
    import keras

    run = tmp_path_factory.mktemp("hswish") / "run"
    shutil.copytree(digits_run, run)
    rundir = RunDir.open(run)
    x, y = load_inputs(rundir.splits, rundir.splits.samples("train"), rundir.config)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for filters in (16, 32):
        h = keras.layers.Conv2D(filters, 3, strides=2, padding="same")(h)
        h = keras.layers.BatchNormalization(momentum=0.5)(h)
        h = keras.layers.Activation("hard_swish")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x.astype(np.float32), y, epochs=5, verbose=0)
    model.save(run / "model.keras")
    return run


def test_rewrite_keeps_the_float_function(hard_swish_run):
    import keras

    model = keras.models.load_model(hard_swish_run / "model.keras")
    rewritten = rewrite_hard_swish(model)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    assert count_hard_swish(model) == 2 and count_hard_swish(rewritten) == 0
    np.testing.assert_allclose(rewritten.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_without_rewrite_int8_hard_swish_stays_outside_xnnpack(hard_swish_run):
    report = convert_run(hard_swish_run, ["int8"], hardswish_rewrite="off")
    as_converted = report.int8_choice.candidates[0]  # before the --target step fixes it
    assert as_converted.name == "int8" and as_converted.ops_outside.get("HARD_SWISH") == 2
    assert as_converted.partitions > 1
    # the rewrite stays off as asked; the two HARD_SWISH ops are kept float instead
    assert [c.name for c in report.int8_choice.candidates] == ["int8",
                                                               "int8, float HARD_SWISH x2"]


def test_auto_rewrite_puts_the_int8_graph_in_one_xnnpack_partition(hard_swish_run):
    report = convert_run(hard_swish_run, ["int8"], hardswish_rewrite="auto")
    int8 = report.mode("int8")
    assert report.settings["hardswish_rewrite"] is True
    assert "HARD_SWISH" not in int8.ops_outside and int8.partitions == 1
    assert int8.drift.top1_agreement >= 0.9

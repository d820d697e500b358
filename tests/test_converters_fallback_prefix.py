"""Auto-fallback's prefix strategy: a stem that quantizes badly is kept float, in graph order."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgepose.converters import convert_run
from edgepose.converters.fallback import WEIGHTED_OPS, execution_order, prefix_candidates

HUGE = 1.0e4


@pytest.fixture(scope="module")
def stem_run(digits_run, tmp_path_factory):  # noqa: F811
    """The digits model behind a 1x1 ``stem`` + ``mix`` pair: same float function, int8 ruined.

    ``stem`` copies the 3 channels and adds a 4th, HUGE times their sum; ``mix``
    drops it again. In float nothing changes, but the stem's per-tensor int8
    scale becomes ~HUGE/40, so every real value rounds to 0 and no later layer
    sees the digit. Each op's OWN error (on dequantized inputs) stays ordinary, so
    ranking layers by it does not find the pair; keeping the first two weighted
    ops float does.
    """
    import keras

    run = tmp_path_factory.mktemp("stem") / "run"
    shutil.copytree(digits_run, run)
    base = keras.models.load_model(run / "model.keras")
    inputs = keras.Input(base.input_shape[1:], name="image")
    x = base.layers[1](inputs)  # the Rescaling
    stem = keras.layers.Conv2D(4, 1, name="stem")
    mix = keras.layers.Conv2D(3, 1, name="mix")
    x = mix(stem(x))
    for layer in base.layers[2:]:
        x = layer(x)
    model = keras.Model(inputs, x, name="stem_digits")
    kernel = np.zeros((1, 1, 3, 4), np.float32)
    kernel[0, 0, [0, 1, 2], [0, 1, 2]] = 1.0
    kernel[0, 0, :, 3] = HUGE
    stem.set_weights([kernel, np.zeros(4, np.float32)])
    kernel = np.zeros((1, 1, 4, 3), np.float32)
    kernel[0, 0, [0, 1, 2], [0, 1, 2]] = 1.0
    mix.set_weights([kernel, np.zeros(3, np.float32)])
    model.save(run / "model.keras")
    return run


@pytest.fixture(scope="module")
def stem_report(stem_run):
    return convert_run(stem_run, ["int8"], max_drop=5.0, auto_fallback_enabled=True)


def test_prefix_strategy_is_chosen_when_ranking_by_own_error_misses_the_stem(stem_report):
    int8, fallback = stem_report.mode("int8"), stem_report.mode("int8-fallback")
    result = stem_report.fallback
    assert int8.drop_pct > 30.0
    assert result.strategy == "prefix" and result.within_budget
    assert {s.strategy for s in result.steps} == {"ranked", "prefix"}
    assert result.steps[-1].strategy == "prefix"
    assert all(s.val_drop_pct > 5.0 for s in result.steps[:-1])
    assert fallback.drop_pct <= 5.0 and stem_report.failed_modes == []
    assert any("stem" in name for name in fallback.float_layers)
    assert any("mix" in name for name in fallback.float_layers)
    assert fallback.input_dtype == "int8"


def test_candidates_are_tried_from_the_fewest_float_layers_up(stem_report):
    counts = [s.float_layers for s in stem_report.fallback.steps]
    assert counts == sorted(counts)
    assert "strategy: prefix" in stem_report.to_markdown()


def test_prefixes_end_at_weighted_ops_in_execution_order(stem_run, stem_report):
    from edgepose.converters.calibration import from_run
    from edgepose.converters.export import export_saved_model, load_keras_model
    from edgepose.converters.tflite import calibrate
    from edgepose.rundir import RunDir

    run = RunDir.open(stem_run)
    saved = export_saved_model(load_keras_model(run.model_path), stem_run / "saved_for_test")
    calibrated = calibrate(saved, from_run(run.splits, run.config, 20, 0))
    order = execution_order(calibrated)
    ops = dict(order)
    quantizable = [e.tensor for e in stem_report.layer_errors]
    prefixes = prefix_candidates(order, quantizable, limit=len(quantizable))
    assert len(prefixes) >= 3
    position = [name for name, _ in order]
    for prefix in prefixes:
        assert ops[prefix[-1]] in WEIGHTED_OPS
        assert [position.index(n) for n in prefix] == sorted(position.index(n) for n in prefix)
    assert "stem" in prefixes[0][-1] and "mix" in prefixes[1][-1]
    shutil.rmtree(stem_run / "saved_for_test")

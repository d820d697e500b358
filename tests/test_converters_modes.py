"""Every mode converts from a run directory, runs on the device interpreter, and is reported."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgepose.converters import convert_run
from edgepose.fileio import read_json
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.interpreter import load_interpreter
from edgepose.runtime.manifest import Manifest

ALL_MODES = ["fp32", "fp16", "dynamic", "int8", "int16x8"]


@pytest.fixture(scope="module")
def converted(digits_run, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("converted") / "run"
    shutil.copytree(digits_run, run)
    report = convert_run(run, ALL_MODES, debug_layers=True)
    return run, report


@pytest.mark.parametrize("mode", ALL_MODES)
def test_every_mode_runs_on_the_device_classifier(converted, mode):
    run, _ = converted
    classifier = Classifier.from_file(run / f"model_{mode}.tflite")
    probs = classifier.predict(np.full(classifier.input_shape[1:], 128, dtype=np.uint8))
    assert probs.shape == (10,)
    assert abs(float(probs.sum()) - 1.0) < 0.05
    assert classifier.labels == [str(i) for i in range(10)]


def test_int8_model_has_int8_io_and_only_integer_tensors_between_ops(converted):
    run, _ = converted
    interpreter, _ = load_interpreter(run / "model_int8.tflite", use_xnnpack=False)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    float_tensors = [tensors[i]["name"] for op in interpreter._get_ops_details()
                     for i in list(op["inputs"]) + list(op["outputs"])
                     if i >= 0 and i in tensors and tensors[i]["dtype"] == np.float32]
    assert float_tensors == []


def test_float_modes_keep_float_io(converted):
    _, report = converted
    assert {m.mode: m.input_dtype for m in report.modes} == {
        "fp32": "float32", "fp16": "float32", "dynamic": "float32", "int8": "int8",
        "int16x8": "float32"}


def test_manifest_round_trips_and_matches_the_model(converted):
    run, _ = converted
    manifest = Manifest.load(run / "model_int8.json")
    assert Manifest.load(manifest.save(run / "copy.json")) == manifest
    detail = load_interpreter(run / "model_int8.tflite")[0].get_input_details()[0]
    assert manifest.input.shape == [1, 32, 32, 3]
    assert (manifest.input.scale, manifest.input.zero_point) == (
        pytest.approx(detail["quantization"][0]), detail["quantization"][1])
    assert manifest.task == "image" and manifest.mode == "int8"
    assert manifest.preprocessing == {"height": 32, "width": 32, "resize": "bilinear",
                                      "crop": "none"}
    assert manifest.versions["tensorflow"].startswith("2.")
    assert len(manifest.source_sha256) == 64


def test_report_has_drift_for_every_mode_and_is_saved(converted):
    run, report = converted
    assert [m.mode for m in report.modes] == ALL_MODES
    for mode in report.modes:
        assert mode.drift.samples == report.test_samples > 0
        assert 0.0 <= mode.drift.top1_agreement <= 1.0
        assert set(mode.drift.per_class_accuracy_delta) == {str(i) for i in range(10)}
    assert report.mode("fp32").drift.max_abs_diff < 1e-4
    saved = read_json(run / "conversion_report.json")
    assert [m["mode"] for m in saved["modes"]] == ALL_MODES
    assert "| int8 |" in (run / "conversion_report.md").read_text()


def test_quantized_modes_are_smaller_than_fp32(converted):
    _, report = converted
    fp32 = report.mode("fp32").size_bytes
    assert report.mode("fp16").size_bytes < fp32
    assert report.mode("int8").size_bytes < 0.5 * fp32


def test_reference_outputs_hold_keras_test_predictions(converted):
    run, report = converted
    ref = np.load(run / "reference_outputs.npz")
    assert ref["probabilities"].shape == (report.test_samples, 10)
    assert len(ref["paths"]) == len(ref["labels"]) == report.test_samples
    accuracy = float(np.mean(ref["probabilities"].argmax(1) == ref["labels"]))
    assert accuracy == pytest.approx(report.keras_accuracy)


def test_delegation_is_reported_per_mode(converted):
    _, report = converted
    fp32 = report.mode("fp32")
    assert fp32.partitions == 1 and fp32.delegated_nodes == fp32.total_nodes
    assert all(m.partitions is not None and m.delegation for m in report.modes)


def test_layer_debugging_ranks_layers_and_plots_them(converted):
    run, report = converted
    errors = report.layer_errors
    assert len(errors) >= 5
    assert [e.rmse_over_scale for e in errors] == sorted(
        (e.rmse_over_scale for e in errors), reverse=True)
    assert {e.op for e in errors} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert (run / "quant_debug.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

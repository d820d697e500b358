"""A trained keypoint model (normalisation in the graph) runs as full int8 on the device runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.errors import ModelError
from edgepose.runtime.classifier import Classifier, invoke_failure
from edgepose.runtime.layouts import get_layout

LAYOUT = get_layout("coco17")
DIV_FAILURE = ("tflite/kernels/div.cc:262 data[i] != zero_point was not true.Node number 27 "
               "(DIV) failed to invoke.")


def _write_poses(root: Path, per_class: int = 70, seed: int = 0) -> None:
    """Arms raised vs lowered, each pose moved and scaled at random, some joints missing."""
    rng = np.random.default_rng(seed)
    base = np.zeros((17, 2))
    base[0:5] = (0.0, -0.62)  # head
    base[5:7] = ((-0.15, -0.45), (0.15, -0.45))  # shoulders
    base[7:9] = ((-0.2, -0.2), (0.2, -0.2))  # elbows
    base[11:13] = ((-0.1, 0.0), (0.1, 0.0))  # hips
    base[13:15] = ((-0.1, 0.3), (0.1, 0.3))  # knees
    base[15:17] = ((-0.1, 0.6), (0.1, 0.6))  # ankles
    for label, name in enumerate(("down", "up")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pose = base + rng.normal(0, 0.02, size=base.shape)
            wrist_y = rng.uniform(-0.05, 0.2) if label == 0 else rng.uniform(-0.8, -0.45)
            pose[9:11] = np.array([[-0.22, wrist_y], [0.22, wrist_y]]) + rng.normal(0, 0.03, 2)
            pose = pose * rng.uniform(0.25, 0.6) + rng.uniform(0.35, 0.65, size=2)
            if i % 7 == 0:
                pose[rng.integers(13, 17)] = 0.0  # a leg joint not found
            (root / name / f"{i:03d}.json").write_text(
                json.dumps({"keypoints": pose.reshape(-1).round(5).tolist()}))


@pytest.fixture(scope="module")
def keypoint_run(tmp_path_factory) -> Path:
    from edgepose.train.hyperparameters import TrainingParams
    from edgepose.train.keypoint_classifier import (
        KeypointModelParams,
        KeypointTrainOptions,
        train_keypoint_classifier,
    )

    root = tmp_path_factory.mktemp("kp_int8")
    _write_poses(root / "data")
    options = KeypointTrainOptions(
        model=KeypointModelParams(hidden=[32, 16]),
        training=TrainingParams(epochs=25, batch_size=32, lr=3e-3, patience=0, verbose=0),
        output=str(root / "run"))
    return Path(train_keypoint_classifier(root / "data", options).run_dir)


@pytest.fixture(scope="module")
def int8_report(keypoint_run):
    from edgepose.converters import convert_run

    return convert_run(keypoint_run, ["int8"])


def test_int8_keypoint_model_agrees_with_keras_on_the_test_split(keypoint_run, int8_report):
    reference = np.load(keypoint_run / "reference_outputs.npz")
    from edgepose.rundir import RunDir, load_inputs

    run = RunDir.open(keypoint_run)
    x, y = load_inputs(run.splits, run.splits.samples("test"), run.config)
    classifier = Classifier.from_file(keypoint_run / "model_int8.tflite")
    assert classifier.input_dtype == np.int8
    tflite = np.stack([classifier.predict(sample) for sample in x])
    agreement = np.mean(tflite.argmax(1) == reference["probabilities"].argmax(1))
    assert len(x) >= 20 and agreement >= 0.9
    assert int8_report.mode("int8").drift.accuracy >= int8_report.keras_accuracy - 0.05


def test_int8_keypoint_model_has_no_division_and_no_slicing(keypoint_run, int8_report):
    from edgepose.runtime.delegation import inspect_model

    report = inspect_model(keypoint_run / "model_int8.tflite")
    ops = set(report.ops_outside)
    assert not ops & {"DIV", "STRIDED_SLICE", "GATHER"}, report.summary()
    assert report.partitions <= 2, report.summary()


def test_all_missing_keypoints_run_in_int8_without_failing(keypoint_run, int8_report):
    classifier = Classifier.from_file(keypoint_run / "model_int8.tflite")
    probs = classifier.predict(np.zeros(LAYOUT.size, dtype=np.float32))
    assert np.isfinite(probs).all() and probs.shape == (2,)


def test_invoke_failure_names_the_failing_op_on_one_line():
    assert invoke_failure(DIV_FAILURE) == (
        "node 27 (DIV): tflite/kernels/div.cc:262 data[i] != zero_point was not true")


def _int8_division_by_zero_model(path: Path) -> Path:
    """A real int8 model ``x / relu(x - 0.4)``: its divisor is the zero point when x <= 0.4."""
    import keras
    import tensorflow as tf

    x = keras.Input((4,))
    model = keras.Model(x, x / keras.ops.relu(x - 0.4))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: (
        [rng.uniform(0.5, 1, (1, 4)).astype(np.float32)] for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path.write_bytes(converter.convert())
    return path


def test_a_failing_invoke_raises_model_error_naming_file_and_op(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    path = _int8_division_by_zero_model(tmp_path / "divide.tflite")
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
    with pytest.raises(RuntimeError, match="DIV"):  # the raw failure this guards against
        interpreter.invoke()

    classifier = Classifier.from_file(path)
    with pytest.raises(ModelError) as info:
        classifier.predict(np.zeros(classifier.input_shape[1:], dtype=np.float32))
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "(DIV)" in message

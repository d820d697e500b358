"""Keypoint models survive int8 in any coordinate unit: pixels, 0..1, MediaPipe (x, y, z, v).

The same poses (tests/keypoint_poses.py) are written in each unit, trained with
the defaults' normalisation, converted to full int8 by the real converter and
run by ai-edge-litert: each must be as accurate as Keras and run in XNNPACK.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgepose.runtime.classifier import Classifier
from edgepose.runtime.delegation import inspect_model
from edgepose.runtime.layouts import get_layout
from tests.keypoint_poses import (
    IMAGE_SIZE,
    UNITS,
    make_landmarks,
    train_unit_run,
    vectors,
)


@pytest.fixture(scope="module")
def unit_runs(tmp_path_factory) -> dict[str, Path]:
    """unit -> run directory holding model_int8.tflite, trained on the same poses."""
    return {unit: train_unit_run(tmp_path_factory.mktemp(f"unit_{unit}"), unit)
            for unit in UNITS}


def _test_split(run: Path):
    from edgepose.rundir import RunDir, load_inputs

    rundir = RunDir.open(run)
    return load_inputs(rundir.splits, rundir.splits.samples("test"), rundir.config)


def test_the_unit_is_read_from_the_training_data(unit_runs):
    units = {u: json.loads((unit_runs[u] / "config.json").read_text())["keypoint_unit"]
             for u in UNITS}
    largest = float(np.abs(vectors(make_landmarks(60)[0], "pixels")).max())
    assert 256 < largest <= 512  # so the next power of two is 512
    assert units == {"normalized": 1.0, "pixels": 512.0, "mediapipe": 1.0}


@pytest.mark.parametrize("unit", UNITS)
def test_int8_is_as_accurate_as_keras_in_every_unit(unit_runs, unit):
    run = unit_runs[unit]
    x, y = _test_split(run)
    reference = np.load(run / "reference_outputs.npz")["probabilities"]
    classifier = Classifier.from_file(run / "model_int8.tflite")
    assert classifier.input_dtype == np.int8
    predicted = np.array([classifier.predict(sample).argmax() for sample in x])
    keras_accuracy = float(np.mean(reference.argmax(1) == y))
    assert len(y) >= 15 and keras_accuracy >= 0.95
    assert float(np.mean(predicted == y)) >= keras_accuracy - 0.05


@pytest.mark.parametrize("unit", UNITS)
def test_int8_runs_in_xnnpack_in_every_unit(unit_runs, unit):
    report = inspect_model(unit_runs[unit] / "model_int8.tflite")
    # only the rsqrt of the body size and the final softmax stay on the builtin kernels
    assert set(report.ops_outside) <= {"RSQRT", "SOFTMAX"}, report.summary()
    assert report.partitions <= 2, report.summary()
    assert report.delegated_nodes >= report.total_nodes - 2, report.summary()


def test_the_same_pose_gets_the_same_answer_in_pixels_and_in_0_to_1(unit_runs):
    landmarks, labels = make_landmarks(20, seed=7)  # poses none of the models saw
    answers = {}
    for unit in ("normalized", "pixels"):
        classifier = Classifier.from_file(unit_runs[unit] / "model_int8.tflite")
        answers[unit] = np.array([classifier.predict(v).argmax()
                                  for v in vectors(landmarks, unit)])
    assert np.mean(answers["pixels"] == labels) >= 0.95
    assert np.mean(answers["pixels"] == answers["normalized"]) >= 0.95


@pytest.mark.parametrize(("largest", "expected"), [(0.98, 1.0), (1.7, 1.0), (470.0, 512.0),
                                                   (512.0, 512.0), (600.0, 1024.0)])
def test_coordinate_unit_is_one_or_the_next_power_of_two(largest, expected):
    from edgepose.train.keypoint_layers import coordinate_unit

    layout = get_layout("body14")
    data = np.full((3, layout.size), 0.25, dtype=np.float32)
    data[1, 3] = largest
    assert coordinate_unit(data, layout) == expected


def test_coordinate_unit_ignores_visibility_and_z():
    from edgepose.train.keypoint_layers import coordinate_unit

    layout = get_layout("mediapipe33")
    data = vectors(make_landmarks(2)[0], "mediapipe")
    data[:, 2::4] = 5.0  # z far beyond 2 must not turn 0..1 x, y into "pixels"
    assert coordinate_unit(data, layout) == 1.0


def test_pixel_vectors_are_the_normalised_ones_times_the_image_size():
    landmarks, _ = make_landmarks(3)
    normalized, pixels = vectors(landmarks, "normalized"), vectors(landmarks, "pixels")
    assert np.allclose(pixels.reshape(-1, 14, 2), normalized.reshape(-1, 14, 2)
                       * np.asarray(IMAGE_SIZE), rtol=1e-6)
    assert math.isclose(float(pixels.max()), float(normalized.reshape(-1, 2)[:, 0].max()
                                                   * IMAGE_SIZE[0]), rel_tol=0.5)

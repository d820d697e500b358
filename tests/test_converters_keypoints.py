"""Keypoint models convert like image models, with keypoint calibration samples."""

from __future__ import annotations

import numpy as np

from edgepose.converters import convert_run
from edgepose.runtime.classifier import Classifier
from edgepose.runtime.manifest import Manifest


def test_keypoint_run_converts_to_fp32_and_int8(keypoint_run):  # noqa: F811
    report = convert_run(keypoint_run, ["fp32", "int8"])
    assert report.task == "keypoints"
    manifest = Manifest.load(keypoint_run / "model_int8.json")
    assert manifest.task == "keypoints" and manifest.keypoint_layout == "coco17"
    assert manifest.input.shape == [1, 34] and manifest.input.dtype == "int8"
    assert manifest.preprocessing is None
    classifier = Classifier.from_file(keypoint_run / "model_int8.tflite")
    probs = classifier.predict(np.full(34, 0.5, dtype=np.float32))
    assert probs.shape == (2,)
    assert report.mode("int8").drift.accuracy >= 0.9
    assert report.calibration["source"].startswith("train split")

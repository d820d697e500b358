"""Device side: run a converted classifier with ai-edge-litert, numpy and Pillow only.

This package is also the device contract every other part agrees on:
``preprocess`` and ``input_contract`` (how pixels become model input), ``layouts``
and ``presence`` (keypoint layouts, "no person"), ``keypoint_file`` (the
single-sample keypoint reader), ``manifest`` (what travels beside a model),
``drift_stats`` (drift maths shared by convert and bench). Training, conversion
and dataset tooling import from here; nothing here imports them or TensorFlow
(tests/test_edgepose_import_direction.py, tests/test_edgepose_no_tensorflow.py).
"""

from edgepose.runtime.classifier import Classification, Classifier
from edgepose.runtime.interpreter import load_interpreter
from edgepose.runtime.manifest import Manifest
from edgepose.runtime.preprocess import ImagePreprocessing, load_rgb

__all__ = [
    "Classification",
    "Classifier",
    "ImagePreprocessing",
    "Manifest",
    "load_interpreter",
    "load_rgb",
]

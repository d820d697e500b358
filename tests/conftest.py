"""Shared fixtures: everything seeded, offline and small."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

# Keep TensorFlow quiet and single-process-friendly in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Every shared fixture is registered here, one way: a test module names the fixture as an
# argument and never imports it. Plain helper functions are imported as ``tests.<module>``.
#   tests.tflite_models     tiny_run: tiny TFLite models and a run directory (session)
#   tests.run_fixtures      digits_run, keypoint_run: trained run directories (session)
#   tests.service_fixtures  service_video, photo_dir, notify_socket
pytest_plugins = ["tests.tflite_models", "tests.run_fixtures", "tests.service_fixtures"]


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    yield

"""Shared fixtures: everything seeded, offline and small."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

# Keep TensorFlow quiet and single-process-friendly in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The service tests' shared fixtures (the session-scoped tiny models, a test video).
pytest_plugins = ["tests.service_fixtures"]


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    yield

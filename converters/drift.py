"""Run a converted model the way the device does and compare it with the Keras model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgepose.runtime.classifier import Classifier


def keras_probabilities(model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Keras outputs for raw inputs (the reference every mode is compared with)."""
    if x.shape[0] == 0:
        return np.zeros((0, int(model.outputs[0].shape[-1])), dtype=np.float32)
    return np.asarray(model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0),
                      dtype=np.float32)


def tflite_probabilities(model_path: str | Path, x: np.ndarray,
                         manifest_path: str | Path | None = None,
                         num_threads: int | None = None) -> np.ndarray:
    """Device-side :class:`Classifier` outputs, one sample at a time as on the Pi."""
    classifier = Classifier.from_file(model_path, manifest_path=manifest_path,
                                      num_threads=num_threads)
    out = np.zeros((x.shape[0], classifier.num_classes), dtype=np.float32)
    for i in range(x.shape[0]):
        out[i] = classifier.predict(x[i])
    return out


def median_latency_ms(model_path: str | Path, sample: np.ndarray,
                      manifest_path: str | Path | None = None, runs: int = 30,
                      warmup: int = 3, num_threads: int = 1) -> float:
    """Median single-sample invoke time with XNNPACK and one thread (like a Pi core)."""
    classifier = Classifier.from_file(model_path, manifest_path=manifest_path,
                                      num_threads=num_threads)
    classifier.set_input(sample)
    for _ in range(warmup):
        classifier.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.invoke()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)

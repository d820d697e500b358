"""Run a converted model the way the device does and compare it with the Keras model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.bench.stats import latency_stats, time_calls
from edgepose.runtime.classifier import Classifier

# Final activations whose outputs are already class probabilities (a TFLite SOFTMAX or
# LOGISTIC op, as edgepose.runtime.classifier reads a graph without a manifest).
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def keras_output_kind(model) -> str:
    """``"probabilities"`` when the model's last layer ends in softmax/sigmoid (a Dense or
    Conv activation, a ``Softmax`` layer, an ``Activation`` layer), else ``"logits"``:
    a model trained with ``from_logits=True`` (a common tutorial shape) outputs raw
    scores, and the manifest must say so, so the runtime applies softmax before it shows
    a score (never a logit as a confidence)."""
    layer = model.layers[-1]
    if type(layer).__name__ == "Softmax":
        return "probabilities"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", str(activation or ""))
    return "probabilities" if name in _PROBABILITY_ACTIVATIONS else "logits"


def keras_probabilities(model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Keras class probabilities (``N x classes``) for ``N x ...`` model-value inputs: the
    reference every mode is compared with. A logits model's outputs go through softmax,
    as the device runtime does with them (:func:`keras_output_kind`)."""
    if x.shape[0] == 0:
        return np.zeros((0, int(model.outputs[0].shape[-1])), dtype=np.float32)
    out = np.asarray(model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0),
                     dtype=np.float32)
    if keras_output_kind(model) == "logits":
        from edgepose.runtime.classifier import softmax

        out = softmax(out).astype(np.float32)
    return out


def device_classifier(model_path: str | Path, manifest_path: str | Path | None = None,
                      num_threads: int = 1) -> Classifier:
    """The device-side classifier for a converted model: XNNPACK on, one thread like a Pi core."""
    return Classifier.from_file(model_path, manifest_path=manifest_path, num_threads=num_threads)


def tflite_probabilities(model: Classifier | str | Path, x: np.ndarray) -> np.ndarray:
    """Device-side :class:`Classifier` outputs, one sample at a time as on the Pi."""
    classifier = model if isinstance(model, Classifier) else device_classifier(model)
    out = np.zeros((x.shape[0], classifier.num_classes), dtype=np.float32)
    for i in range(x.shape[0]):
        out[i] = classifier.predict(x[i])
    return out


def median_latency_ms(model: Classifier | str | Path, sample: np.ndarray, runs: int = 30,
                      warmup: int = 3) -> float:
    """Median single-sample invoke time (the bench harness's timing loop, invoke only)."""
    classifier = model if isinstance(model, Classifier) else device_classifier(model)
    classifier.set_input(sample)
    return latency_stats(time_calls(lambda _: classifier.invoke(), runs, warmup)).p50_ms

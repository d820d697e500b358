"""Run a converted model the way the device does and compare it with the Keras model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.bench.stats import latency_stats, time_calls
from edgepose.runtime.classifier import Classifier

# Final activations whose outputs are already class probabilities (a TFLite SOFTMAX or
# LOGISTIC op, as edgepose.runtime.classifier reads a graph without a manifest).
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


# Layers that pass values through unchanged in kind: look behind them for the activation.
_PASS_THROUGH = ("Reshape", "Flatten", "Dropout", "Identity", "InputLayer")


def keras_output_kind(model) -> str:
    """``"probabilities"`` when the model's output comes from softmax/sigmoid (a Dense or
    Conv activation, a ``Softmax`` layer, an ``Activation`` layer), else ``"logits"``:
    a model trained with ``from_logits=True`` (a common tutorial shape) outputs raw
    scores, and the manifest must say so, so the runtime applies softmax before it shows
    a score (never a logit as a confidence). Reshape/Flatten/Dropout after the activation
    are looked through, and a nested model as the last layer is looked into.

    Raises:
        ModelError: the output comes from a layer that says neither (e.g. a ``Lambda``):
            guessing would either show logits as confidences or apply softmax twice.
    """
    from edgepose.errors import ModelError

    layer = model.layers[-1]
    while True:
        kind = type(layer).__name__
        if kind == "Softmax":
            return "probabilities"
        if hasattr(layer, "layers") and layer.layers:  # a nested model: its own last layer
            layer = layer.layers[-1]
            continue
        if kind in _PASS_THROUGH:
            inbound = layer._inbound_nodes[0].parent_nodes if layer._inbound_nodes else []
            if len(inbound) == 1:
                layer = inbound[0].operation
                continue
            break
        activation = getattr(layer, "activation", None)
        if activation is None:
            break
        name = getattr(activation, "__name__", str(activation))
        return "probabilities" if name in _PROBABILITY_ACTIVATIONS else "logits"
    raise ModelError(f"cannot tell whether the output layer {layer.name!r} ({kind}) gives "
                     "probabilities or logits: end the model with a softmax (or a Dense "
                     "without activation for logits)")


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

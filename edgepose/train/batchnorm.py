"""Re-estimate BatchNorm moving statistics from training data ("precise BatchNorm").

Why: a BatchNormalization layer normalises with the current batch while training
but with its moving mean/variance at inference. Those move by ``1 - momentum``
per step (Keras MobileNets: 0.001), so after a few hundred steps from scratch they
still weigh their initial values (mean 0, variance 1): validation and test collapse
to one class while training accuracy looks fine (issue 11, section 7). The fix,
after Wu & Johnson, "Rethinking 'Batch' in BatchNorm" (2021) and fvcore's
``update_bn_stats``: run the *inference* model (no augmentation layers) in training
mode over a seeded sample of training batches, and set every moving mean and
variance to the average of the batch statistics the current weights produce.

Frozen layers (``trainable=False``) keep their statistics: Keras 3 BatchNorm
updates only when ``training and self.trainable``. The image trainer freezes a
pretrained backbone's BatchNorm layers through every stage (fine-tuning included),
so they keep their ImageNet statistics and only the head's BatchNorm is
re-estimated. (A ``training=False`` given when a nested model is wired into a
functional graph does not protect it: Keras 3 passes the outer call's ``training``
to every layer, keras/src/models/functional.py ``operation_fn``.) Dropout acts
during the pass, as it did while the statistics were gathered in training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepose.keras_quiet import keras

# Samples drawn from the training split per re-estimation: fvcore uses 200 batches;
# a few hundred samples already pin the mean and variance of a small model's
# activations to well under a percent, and the pass runs before every validation.
DEFAULT_SAMPLES = 512


@dataclass
class BatchNormReport:
    """What :func:`recalibrate_batchnorm` did."""

    layers: int  # BatchNormalization layers whose statistics were re-estimated
    samples: int
    batches: int


def batchnorm_layers(model) -> list[keras.layers.BatchNormalization]:
    """Every trainable BatchNormalization layer of ``model``, nested models included."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable and not layer.renorm:
                found.append(layer)
        elif getattr(layer, "layers", None):
            found += batchnorm_layers(layer)
    return found


def training_batches(inputs: np.ndarray | Callable[[np.ndarray], np.ndarray], count: int,
                     batch_size: int, samples: int = DEFAULT_SAMPLES, seed: int = 0
                     ) -> Iterator[np.ndarray]:
    """Float32 batches (batch_size x input shape) of a seeded random subset of ``samples``
    of the ``count`` training inputs (an array or a ``load(indices)`` callable), classes mixed
    as in training, read one batch at a time."""
    order = np.random.default_rng(seed).permutation(count)[:max(1, samples)]
    for start in range(0, len(order), batch_size):
        index = np.sort(order[start:start + batch_size])
        x = inputs(index) if callable(inputs) else inputs[index]
        yield np.asarray(x, dtype=np.float32)


def recalibrate_batchnorm(model, batches: Iterator[np.ndarray] | list[np.ndarray]
                          ) -> BatchNormReport:
    """Set the moving statistics of ``model``'s trainable BatchNorm layers to the mean of
    their batch statistics over ``batches`` (weighted by batch size).

    ``model`` must be the inference model (no augmentation layers). Its weights are not
    changed otherwise; layers that do not update in training mode keep their values.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return BatchNormReport(0, 0, 0)
    momenta = [layer.momentum for layer in layers]
    sums = [[np.zeros(layer.moving_mean.shape, np.float64),
             np.zeros(layer.moving_variance.shape, np.float64)] for layer in layers]
    seen = batches_run = 0
    try:
        for layer in layers:
            layer.momentum = 0.0  # moving statistics := this batch's statistics
        for x in batches:
            model(x, training=True)
            for layer, acc in zip(layers, sums, strict=True):
                acc[0] += len(x) * np.asarray(layer.moving_mean, np.float64)
                acc[1] += len(x) * np.asarray(layer.moving_variance, np.float64)
            seen += len(x)
            batches_run += 1
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    if seen:
        for layer, (mean, variance) in zip(layers, sums, strict=True):
            layer.moving_mean.assign((mean / seen).astype(np.float32))
            layer.moving_variance.assign((variance / seen).astype(np.float32))
    return BatchNormReport(len(layers), seen, batches_run)


class RecalibrateBatchNorm(keras.callbacks.Callback):
    """Re-estimate the inference model's BatchNorm statistics before every validation.

    Keras calls ``on_test_begin`` inside ``fit`` right before it evaluates the
    validation data, so ``val_accuracy`` (and EarlyStopping, the best checkpoint)
    judge the weights with statistics that match them.
    """

    def __init__(self, inference: Any, inputs: np.ndarray | Callable[[np.ndarray], np.ndarray],
                 count: int, batch_size: int, samples: int = DEFAULT_SAMPLES, seed: int = 0):
        """``inputs``: the ``count`` training inputs (an array or a ``load(indices)``
        callable), read in batches of ``batch_size`` (:func:`training_batches`)."""
        super().__init__()
        self.inference = inference
        self.inputs = inputs
        self.count = count
        self.batch_size = batch_size
        self.samples = samples
        self.seed = seed
        self.reports: list[BatchNormReport] = []

    def run(self) -> BatchNormReport:
        report = recalibrate_batchnorm(self.inference, training_batches(
            self.inputs, self.count, self.batch_size, self.samples, self.seed))
        self.reports.append(report)
        return report

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.run()


def needs_recalibration(model) -> bool:
    """True when ``model`` has BatchNorm statistics that training mode updates."""
    return bool(batchnorm_layers(model))


"""The BatchNorm-from-scratch case: a Conv-BN CNN trained a few hundred steps on digits.

Plain helpers (no fixtures) shared by ``tests/test_train_batchnorm.py`` and the
section-7 field cases of ``benchmarks/field_cases.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.train.batchnorm import recalibrate_batchnorm

SIZE = 16


@dataclass
class TrainedModel:
    """The model pair ``train_run`` expects: one Keras model used for both."""

    training: object
    inference: object


def digit_images(per_class: int = 40, seed: int = 0):
    """Real sklearn digits as SIZE x SIZE RGB 0..255 float32 images, labels, class names."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(digits.target == c), per_class,
                                       replace=False) for c in range(10)])
    x = np.stack([np.repeat(np.asarray(Image.fromarray(
        (digits.images[i] * 255 / 16).astype(np.uint8)).resize((SIZE, SIZE)),
        dtype=np.float32)[..., None], 3, axis=-1) for i in index])
    return x, digits.target[index].astype(np.int64), [str(c) for c in range(10)]


def digit_splits(labels: np.ndarray, classes: list[str], seed: int = 0):
    """A seeded 60/20/20 stratified split of the samples (paths ``<label>/<index>.png``)."""
    from edgepose.data.splits import Sample, Splits, stratified_split

    assignment = stratified_split(labels.tolist(), (0.6, 0.2, 0.2), seed=seed)
    samples = [Sample(f"{label}/{i:04d}.png", int(label), split)
               for i, (label, split) in enumerate(zip(labels, assignment, strict=True))]
    return Splits("image", "in-memory", classes, samples, seed=seed, fractions=(0.6, 0.2, 0.2))


def bn_cnn(num_classes: int, momentum: float = 0.999):
    """Conv-BN-ReLU x 2 with MobileNet's BatchNorm momentum, no dropout."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=momentum)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def train_bn_run(tmp_path: Path, labels_override=None, strict=False, epochs=3, name="run"):
    """Train :func:`bn_cnn` on 400 digits with the shared train path (BatchNorm re-estimated).

    ``labels_override`` maps the labels (e.g. a shuffle); returns ``(outcome, by_split)``
    with ``by_split[split] = (x, y)``.
    """
    from edgepose.train.hyperparameters import TrainingParams
    from edgepose.train.trainer_steps import train_run
    from edgepose.train.training import Stage

    x, y, classes = digit_images()
    if labels_override is not None:
        y = labels_override(y)
    splits = digit_splits(y, classes)
    by_split = {}
    for split in ("train", "val", "test"):
        rows = [int(s.path.split("/")[1][:4]) for s in splits.samples(split)]
        by_split[split] = (x[rows], y[rows])
    fit = TrainingParams(epochs=epochs, batch_size=32, lr=3e-3, seed=0, patience=0,
                         deterministic=False, verbose=0)

    def build():
        model = bn_cnn(len(classes))
        return TrainedModel(model, model)

    return train_run(tmp_path / name, overwrite=False, config={"task": "image"},
                     splits=splits, fit=fit, class_weight="none", build_model=build,
                     load_split=lambda split: by_split[split],
                     stages=lambda model: [Stage("train", fit.epochs, fit.lr)],
                     images=True, strict=strict), by_split


def learned_accuracy(model, x_train, x_val, y_val) -> float:
    """What the weights have learned, independent of any moving statistic: one
    training-mode pass over train + val as a single batch (BatchNorm normalises with
    the exact statistics of the data), scored on the val part. Weights are restored."""
    saved = model.get_weights()
    out = np.asarray(model(np.concatenate([x_train, x_val]), training=True))
    model.set_weights(saved)
    return float(np.mean(out[len(x_train):].argmax(1) == y_val))


def plain_keras_accuracies(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                           y_val: np.ndarray) -> tuple[float, float]:
    """The control: :func:`bn_cnn` fitted by plain Keras (3 epochs, seeded), val accuracy
    with its moving statistics as Keras leaves them, then after re-estimating them."""
    import keras

    keras.utils.set_random_seed(0)
    plain = bn_cnn(10)
    plain.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plain.fit(x_train, y_train, batch_size=32, epochs=3, verbose=0)
    before = float(np.mean(plain.predict(x_val, verbose=0).argmax(1) == y_val))
    recalibrate_batchnorm(plain, [x_train[i:i + 32] for i in range(0, len(x_train), 32)])
    after = float(np.mean(plain.predict(x_val, verbose=0).argmax(1) == y_val))
    return before, after

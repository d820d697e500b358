"""BatchNorm statistics re-estimated on training data (issue 11, section 7).

A network trained from scratch for a few hundred steps with Keras' MobileNet
BatchNorm momentum (0.999) keeps moving statistics near their initial values:
plain Keras validates at chance. The shared train path re-estimates them before
every validation and before saving, so the recorded validation accuracy is what
the weights have learned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgepose.train.batchnorm import batchnorm_layers, recalibrate_batchnorm
from edgepose.train.chance import TrainingAtChance

SIZE = 16


@dataclass
class _Model:
    training: object
    inference: object


def _digits(per_class: int = 40, seed: int = 0):
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


def _splits(labels: np.ndarray, classes: list[str], seed: int = 0):
    from edgepose.data.splits import Sample, Splits, stratified_split

    assignment = stratified_split(labels.tolist(), (0.6, 0.2, 0.2), seed=seed)
    samples = [Sample(f"{label}/{i:04d}.png", int(label), split)
               for i, (label, split) in enumerate(zip(labels, assignment, strict=True))]
    return Splits("image", "in-memory", classes, samples, seed=seed, fractions=(0.6, 0.2, 0.2))


def _bn_cnn(num_classes: int, momentum: float = 0.999):
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


def _train(tmp_path: Path, labels_override=None, strict=False, epochs=3, name="run"):
    from edgepose.train.hyperparameters import TrainingParams
    from edgepose.train.trainer_steps import train_run
    from edgepose.train.training import Stage

    x, y, classes = _digits()
    if labels_override is not None:
        y = labels_override(y)
    splits = _splits(y, classes)
    by_split = {}
    for split in ("train", "val", "test"):
        rows = [int(s.path.split("/")[1][:4]) for s in splits.samples(split)]
        by_split[split] = (x[rows], y[rows])
    fit = TrainingParams(epochs=epochs, batch_size=32, lr=3e-3, seed=0, patience=0,
                         deterministic=False, verbose=0)

    def build():
        model = _bn_cnn(len(classes))
        return _Model(model, model)

    return train_run(tmp_path / name, overwrite=False, config={"task": "image"},
                     splits=splits, fit=fit, class_weight="none", build_model=build,
                     load_split=lambda split: by_split[split],
                     stages=lambda model: [Stage("train", fit.epochs, fit.lr)],
                     images=True, strict=strict), by_split


@pytest.fixture(scope="module")
def bn_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("bn"))


def _learned_accuracy(model, x_train, x_val, y_val) -> float:
    """What the weights have learned, independent of any moving statistic: one
    training-mode pass over train + val as a single batch (BatchNorm normalises with
    the exact statistics of the data), scored on the val part. Weights are restored."""
    saved = model.get_weights()
    out = np.asarray(model(np.concatenate([x_train, x_val]), training=True))
    model.set_weights(saved)
    return float(np.mean(out[len(x_train):].argmax(1) == y_val))


def test_validation_accuracy_matches_what_the_weights_learned(bn_run):
    outcome, data = bn_run
    (x_train, _), (x_val, y_val) = data["train"], data["val"]
    learned = _learned_accuracy(outcome.model.inference, x_train, x_val, y_val)
    recorded = outcome.history.rows[-1]["val_accuracy"]
    saved = float(np.mean(np.asarray(outcome.model.inference.predict(x_val, verbose=0))
                          .argmax(1) == y_val))
    assert learned > 0.6  # the weights did learn: 10 classes, chance 0.1
    assert abs(recorded - learned) <= 0.05
    assert abs(saved - learned) <= 0.05


def test_plain_keras_statistics_would_have_validated_at_chance(bn_run):
    """The control: the same weights with moving statistics as plain Keras leaves them."""
    import keras

    outcome, data = bn_run
    (x_train, y_train), (x_val, y_val) = data["train"], data["val"]
    keras.utils.set_random_seed(0)
    plain = _bn_cnn(10)
    plain.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plain.fit(x_train, y_train, batch_size=32, epochs=3, verbose=0)
    before = float(np.mean(plain.predict(x_val, verbose=0).argmax(1) == y_val))
    recalibrate_batchnorm(plain, [x_train[i:i + 32] for i in range(0, len(x_train), 32)])
    after = float(np.mean(plain.predict(x_val, verbose=0).argmax(1) == y_val))
    assert before <= 0.2 and after >= before + 0.4


def test_metrics_json_records_the_quality_checks_and_the_batchnorm_pass(bn_run):
    outcome, _ = bn_run
    metrics = json.loads((outcome.path / "metrics.json").read_text())
    quality = metrics["quality"]
    assert quality["ok"] is True and quality["warnings"] == []
    assert [c["split"] for c in quality["checks"]] == ["val", "test"]
    assert quality["batchnorm"]["layers"] == 2 and quality["batchnorm"]["samples"] > 0


def test_recalibrated_statistics_are_the_batch_averaged_moments():
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(4, name="dense")(inputs)
    bn = keras.layers.BatchNormalization(momentum=0.999, name="bn")
    model = keras.Model(inputs, keras.layers.Dense(2)(bn(hidden)))
    x = np.random.default_rng(0).normal(3.0, 2.0, (60, 5)).astype(np.float32)
    batches = [x[:32], x[32:]]
    report = recalibrate_batchnorm(model, batches)
    features = [np.asarray(model.get_layer("dense")(b)) for b in batches]
    mean = sum(len(f) * f.mean(0) for f in features) / 60
    variance = sum(len(f) * f.var(0) for f in features) / 60
    np.testing.assert_allclose(np.asarray(bn.moving_mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), variance, rtol=1e-5, atol=1e-5)
    assert (report.layers, report.samples, report.batches) == (1, 60, 2)
    assert bn.momentum == 0.999  # restored


def test_a_frozen_pretrained_backbone_keeps_its_statistics_only_the_head_is_reestimated():
    import keras

    keras.utils.set_random_seed(2)
    backbone_in = keras.Input((6,))
    backbone_bn = keras.layers.BatchNormalization(name="backbone_bn")
    backbone = keras.Model(backbone_in, backbone_bn(keras.layers.Dense(8)(backbone_in)))
    backbone_bn.moving_mean.assign(np.full(8, 0.7, np.float32))  # "ImageNet" statistics
    backbone.trainable = False  # as the image trainer freezes a pretrained backbone
    inputs = keras.Input((6,))
    features = backbone(inputs, training=False)  # as the image trainer calls a pretrained one
    head_dense = keras.layers.Dense(4, name="head_dense")
    head_bn = keras.layers.BatchNormalization(name="head_bn")
    model = keras.Model(inputs, keras.layers.Dense(3)(head_bn(head_dense(features))))
    before = np.asarray(backbone_bn.moving_mean).copy()
    x = np.random.default_rng(1).uniform(0, 4, (40, 6)).astype(np.float32)
    recalibrate_batchnorm(model, [x])
    np.testing.assert_array_equal(np.asarray(backbone_bn.moving_mean), before)
    expected = np.asarray(head_dense(backbone(x, training=False))).mean(0)
    np.testing.assert_allclose(np.asarray(head_bn.moving_mean), expected, rtol=1e-5, atol=1e-5)


def test_frozen_batchnorm_layers_are_not_candidates():
    import keras

    inputs = keras.Input((3,))
    frozen = keras.layers.BatchNormalization(name="frozen")
    frozen.trainable = False
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="live")(frozen(inputs)))
    assert [layer.name for layer in batchnorm_layers(model)] == ["live"]


def test_a_run_with_unlearnable_labels_is_flagged_and_strict_fails(tmp_path, capfd):
    shuffled = lambda y: np.random.default_rng(5).permutation(y)  # noqa: E731
    with pytest.raises(TrainingAtChance) as info:
        _train(tmp_path, labels_override=shuffled, strict=True, epochs=1)
    run = tmp_path / "run"
    assert str(info.value).startswith(f"{run / 'metrics.json'}: val split (80 samples): "
                                      "accuracy ")
    assert "\n" not in str(info.value) and info.value.exit_code == 3
    assert "WARNING: val split (80 samples)" in capfd.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["quality"]["ok"] is False
    assert not (run / "INCOMPLETE").exists()  # the run is complete; it is the model that fails


def test_training_batches_are_a_seeded_subset_read_through_the_loader():
    from edgepose.train.batchnorm import training_batches

    requested: list[list[int]] = []

    def load(indices):
        requested.append(indices.tolist())
        return np.stack([np.full((2, 2, 3), i, dtype=np.uint8) for i in indices])

    batches = list(training_batches(load, 100, batch_size=8, samples=20, seed=3))
    again = list(training_batches(load, 100, batch_size=8, samples=20, seed=3))
    assert [len(b) for b in batches] == [8, 8, 4]
    assert all(b.dtype == np.float32 for b in batches)
    seen = [int(v) for b in batches for v in b[:, 0, 0, 0]]
    assert len(set(seen)) == 20 and max(seen) < 100
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    assert all(r == sorted(r) for r in requested)

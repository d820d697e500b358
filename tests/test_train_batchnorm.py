"""BatchNorm statistics re-estimated on training data (issue 11, section 7).

A network trained from scratch for a few hundred steps with Keras' MobileNet
BatchNorm momentum (0.999) keeps moving statistics near their initial values:
plain Keras validates at chance. The shared train path re-estimates them before
every validation and before saving, so the recorded validation accuracy is what
the weights have learned.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepose.train.batchnorm import batchnorm_layers, recalibrate_batchnorm
from edgepose.train.chance import TrainingAtChance
from tests.batchnorm_models import (
    learned_accuracy,
    plain_keras_accuracies,
    train_bn_run,
)


@pytest.fixture(scope="module")
def bn_run(tmp_path_factory):
    return train_bn_run(tmp_path_factory.mktemp("bn"))


def test_validation_accuracy_matches_what_the_weights_learned(bn_run):
    outcome, data = bn_run
    (x_train, _), (x_val, y_val) = data["train"], data["val"]
    learned = learned_accuracy(outcome.model.inference, x_train, x_val, y_val)
    recorded = outcome.history.rows[-1]["val_accuracy"]
    saved = float(np.mean(np.asarray(outcome.model.inference.predict(x_val, verbose=0))
                          .argmax(1) == y_val))
    assert learned > 0.6  # the weights did learn: 10 classes, chance 0.1
    assert abs(recorded - learned) <= 0.05
    assert abs(saved - learned) <= 0.05


def test_plain_keras_statistics_would_have_validated_at_chance(bn_run):
    """The control: the same weights with moving statistics as plain Keras leaves them."""
    outcome, data = bn_run
    (x_train, y_train), (x_val, y_val) = data["train"], data["val"]
    before, after = plain_keras_accuracies(x_train, y_train, x_val, y_val)
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
        train_bn_run(tmp_path, labels_override=shuffled, strict=True, epochs=1)
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

"""EarlyStopping hands back the best epoch's weights only when they learned something."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.train.chance import chance_limit
from edgepose.train.training import EarlyStoppingAboveChance


@pytest.fixture
def model():
    import keras

    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def _epochs(callback, model, history: list[tuple[float, float]]) -> list[list[np.ndarray]]:
    """Run ``(val_loss, val_accuracy)`` epochs; epoch i's weights are all set to i."""
    callback.set_model(model)
    callback.on_train_begin()
    weights = []
    for epoch, (loss, accuracy) in enumerate(history):
        model.set_weights([np.full(w.shape, float(epoch), np.float32) for w in model.weights])
        weights.append(model.get_weights())
        callback.on_epoch_end(epoch, {"val_loss": loss, "val_accuracy": accuracy})
    callback.on_train_end()
    return weights


def _epoch_of(model) -> float:
    return float(model.get_weights()[0].flat[0])


def test_an_at_chance_best_epoch_is_not_restored_when_a_later_one_learned(model):
    # The issue-13 shape: the lowest val_loss in epoch 1 with val accuracy at chance (0.5),
    # later epochs at 0.9 with a slightly higher loss.
    callback = EarlyStoppingAboveChance(0.6, monitor="val_loss", patience=10)
    _epochs(callback, model, [(0.69, 0.5), (0.70, 0.8), (0.71, 0.9)])
    assert callback.kept_last and _epoch_of(model) == 2.0


def test_a_best_epoch_above_chance_is_restored(model):
    callback = EarlyStoppingAboveChance(0.6, monitor="val_loss", patience=10)
    _epochs(callback, model, [(0.9, 0.7), (0.5, 0.85), (0.6, 0.9)])
    assert not callback.kept_last and _epoch_of(model) == 1.0


def test_when_every_epoch_is_at_chance_the_best_loss_is_restored(model):
    callback = EarlyStoppingAboveChance(0.6, monitor="val_loss", patience=10)
    _epochs(callback, model, [(0.69, 0.5), (0.70, 0.55), (0.72, 0.5)])
    assert not callback.kept_last and _epoch_of(model) == 0.0


def test_without_a_chance_limit_it_is_plain_early_stopping(model):
    callback = EarlyStoppingAboveChance(None, monitor="val_loss", patience=10)
    _epochs(callback, model, [(0.69, 0.5), (0.70, 0.8), (0.71, 0.9)])
    assert not callback.kept_last and _epoch_of(model) == 0.0


@pytest.mark.parametrize("labels, limit", [
    ([0] * 50 + [1] * 50, 0.6),           # 0.5 + 2 standard errors (0.1)
    ([0] * 900 + [1] * 100, 0.95),        # 0.9 + the 5-point floor
    ([0] * 10 + [1] * 10 + [2] * 10, 0.5055),  # 1/3 + 2 standard errors on 30 samples
])
def test_chance_limit_is_the_majority_share_plus_the_margin(labels, limit):
    assert chance_limit(np.array(labels)) == pytest.approx(limit, abs=1e-4)


def test_one_class_or_no_labels_has_no_chance_limit():
    assert chance_limit(np.array([1, 1, 1])) is None
    assert chance_limit(np.array([], dtype=np.int64)) is None

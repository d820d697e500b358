"""Learning-rate schedules and the "shift" augmentation (training from scratch, issue 11 §7)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgepose.errors import ConfigError
from edgepose.keras_quiet import keras
from edgepose.train.hyperparameters import ImageModelParams, TrainingParams
from edgepose.train.image_classifier import build_augmentation
from edgepose.train.training import (
    BatchSequence,
    Stage,
    fit_stages,
    learning_rate,
    make_batches,
    steps_per_epoch,
)


def test_cosine_schedule_starts_at_lr_halves_midway_and_ends_at_zero():
    schedule = learning_rate(0.01, "cosine", steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 20)]
    # lr * (1 + cos(pi * step / steps)) / 2, held at 0 after the last step
    assert values == pytest.approx([0.01, 0.005, 0.0, 0.0], abs=1e-9)
    assert float(schedule(2)) == pytest.approx(0.01 * (1 + math.cos(math.pi * 0.2)) / 2)


def test_constant_schedule_is_the_plain_learning_rate():
    assert learning_rate(0.003) == 0.003
    assert learning_rate(0.003, "constant", steps=0) == 0.003


@pytest.mark.parametrize(("schedule", "steps", "message"), [
    ("cosine", 0, "a cosine learning-rate schedule needs at least one step"),
    ("linear", 10, "unknown learning-rate schedule 'linear'; expected constant or cosine"),
    ("Cosine", 10, "unknown learning-rate schedule 'Cosine'; expected constant or cosine"),
])
def test_a_schedule_that_cannot_run_is_a_one_line_error(schedule, steps, message):
    with pytest.raises(ConfigError) as error:
        learning_rate(0.001, schedule, steps)
    assert str(error.value) == message


@pytest.mark.parametrize("schedule", ["linear", "", "step"])
def test_training_params_refuse_an_unknown_schedule(schedule):
    with pytest.raises(ConfigError) as error:
        TrainingParams(lr_schedule=schedule).validate()
    assert str(error.value) == "--lr-schedule must be one of constant, cosine"


def test_training_params_default_to_the_constant_rate():
    params = TrainingParams()
    params.validate()
    assert params.lr_schedule == "constant"


@pytest.mark.parametrize(("samples", "batch", "steps"), [(10, 4, 3), (8, 4, 2), (1, 32, 1)])
def test_steps_per_epoch_counts_the_last_partial_batch(samples, batch, steps):
    x = np.zeros((samples, 2), dtype=np.uint8)
    y = np.arange(samples) % 2
    assert steps_per_epoch(make_batches(x, y, batch, shuffle=True)) == steps
    loader = make_batches(lambda idx: x[idx], y, batch)
    assert isinstance(loader.data, BatchSequence)
    assert steps_per_epoch(loader) == steps


def _tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))


@pytest.mark.parametrize(("epochs", "samples", "batch"), [(3, 10, 4), (2, 16, 8)])
def test_a_cosine_stage_decays_to_zero_over_exactly_its_own_steps(tmp_path, epochs, samples,
                                                                   batch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = _tiny_model()
    history = fit_stages(model, make_batches(x, y, batch, shuffle=True), None,
                         [Stage("train", epochs, 0.05, schedule="cosine")], tmp_path,
                         patience=0, verbose=0)
    steps = epochs * math.ceil(samples / batch)
    assert int(model.optimizer.iterations) == steps
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert [row["lr"] for row in history.rows] == [0.05] * epochs  # the stage's peak rate


def test_a_constant_stage_keeps_its_rate(tmp_path):
    x = np.eye(2, dtype=np.float32).repeat(4, axis=0)
    y = np.array([0, 1]).repeat(4)
    model = _tiny_model()
    fit_stages(model, make_batches(x, y, 4), None, [Stage("train", 2, 0.02)], tmp_path,
               patience=0, verbose=0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_shift_augmentation_never_mirrors_rotates_zooms_and_translates():
    augmentation = build_augmentation("shift", seed=0)
    kinds = [type(layer).__name__ for layer in augmentation.layers]
    assert kinds == ["RandomRotation", "RandomZoom", "RandomTranslation"]
    rotation, zoom, translation = (layer.get_config() for layer in augmentation.layers)
    assert rotation["factor"] in (0.03, (-0.03, 0.03))  # of a full turn: about +-11 degrees
    assert zoom["height_factor"] == 0.1
    assert (translation["height_factor"], translation["width_factor"]) == (0.1, 0.1)


def test_shift_augmentation_keeps_a_left_mark_on_the_left():
    """A mirrored digit is another symbol: ink near the left edge must stay left."""
    image = np.zeros((16, 32, 32, 3), dtype=np.float32)
    image[:, 12:20, 4:8] = 255.0  # a bar in the left eighth of every image
    augmentation = build_augmentation("shift", seed=1)
    for _ in range(3):
        out = np.asarray(augmentation(image, training=True))
        ink = out[..., 0]
        left, right = ink[:, :, :16].sum(axis=(1, 2)), ink[:, :, 16:].sum(axis=(1, 2))
        assert np.all(left > 0) and np.all(right == 0)
    # the flipping presets do move it right in some images (the contrast of the test)
    flipped = np.asarray(build_augmentation("light", seed=1)(image, training=True))[..., 0]
    assert np.any(flipped[:, :, 16:].sum(axis=(1, 2)) > 0)


@pytest.mark.parametrize("preset", ["mirror", "Shift", ""])
def test_an_unknown_augmentation_preset_names_the_choices(preset):
    with pytest.raises(ConfigError) as error:
        ImageModelParams(augment=preset).validate()
    assert str(error.value) == "--augment must be one of none, light, medium, strong, shift"

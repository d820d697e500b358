"""Models with augmentation and other training-only layers convert in inference mode.

Each case is a user's own ``.keras`` file (no run directory) built here, converted
with :func:`edgepose.converters.convert_run`, and run on the device side (ai-edge-litert):
the TFLite fp32 output must equal ``model(x, training=False)`` on real digit images.
Each test first checks that the layers really act in training mode, so the case is
not trivially equal.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgepose.converters import convert_run
from edgepose.converters.export import export_saved_model, inference_outputs, training_only_layers
from edgepose.converters.model_outputs import tflite_probabilities
from edgepose.errors import ConversionError
from tests.augmentation_models import MODE_ATOL, digit_images, tutorial_model


def _convert_and_compare(model, tmp_path, x: np.ndarray, modes=("fp32",)) -> dict:
    """Save, convert (bare .keras), and assert each TFLite mode matches training=False."""
    path = tmp_path / "user_model.keras"
    model.save(path)
    reference = inference_outputs(model, x)
    acting = np.asarray(model(x, training=True))
    assert not np.allclose(acting, reference, atol=1e-3), "training-only layers must act here"
    calib = None
    if "int8" in modes:  # calibrate on the same real images (the model's 0..255 range)
        calib = tmp_path / "calibration.npy"
        np.save(calib, x)
    report = convert_run(path, list(modes), calib_data=calib)
    for mode in modes:
        probabilities = tflite_probabilities(tmp_path / f"model_{mode}.tflite", x)
        np.testing.assert_allclose(probabilities, reference, atol=MODE_ATOL[mode])
    return report.settings


def test_the_keras_tutorial_sequential_shape_converts_without_its_augmentation(tmp_path):

    model = tutorial_model()
    settings = _convert_and_compare(model, tmp_path, digit_images(32), ("fp32", "dynamic"))
    assert [re.sub(r"_\d+$", "", n) for n in settings["inference_mode_bypassed"]] == [
        "random_flip", "random_rotation", "dropout"]


def test_augmentation_inside_a_nested_sequential_of_a_functional_model(tmp_path):
    import keras

    keras.utils.set_random_seed(2)
    augmentation = keras.Sequential([
        keras.layers.RandomZoom(0.2, seed=1),
        keras.layers.RandomTranslation(0.1, 0.1, seed=2),
        keras.layers.RandomContrast(0.3, value_range=(0, 255), seed=3),
    ], name="augmentation")
    inputs = keras.Input((32, 32, 3))
    x = augmentation(inputs)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    settings = _convert_and_compare(model, tmp_path, digit_images(32))
    assert [re.sub(r"_\d+$", "", n) for n in settings["inference_mode_bypassed"]] == [
        "random_zoom", "random_translation", "random_contrast"]


def test_dropout_and_noise_layers_are_the_identity_in_the_export(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GaussianNoise(0.5)(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.SpatialDropout2D(0.3)(x)
    x = keras.layers.GaussianDropout(0.3)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    _convert_and_compare(keras.Model(inputs, outputs), tmp_path, digit_images(24))


def test_random_crop_exports_its_inference_centre_crop(tmp_path):
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential([
        keras.Input((40, 40, 3)),
        keras.layers.RandomCrop(32, 32, seed=5),  # changes the shape: 40x40 -> 32x32
        keras.layers.RandomBrightness(0.3, value_range=(0, 255), seed=6),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(6, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    _convert_and_compare(model, tmp_path, digit_images(40))


def test_augmentation_before_hard_swish_survives_the_int8_rewrite(tmp_path):
    """Integer modes export a rewritten graph (hard-swish for XNNPACK): it is verified too."""
    import keras

    keras.utils.set_random_seed(8)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.RandomFlip("horizontal", seed=1),
        keras.layers.RandomZoom(0.2, seed=2),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(8, 3),
        keras.layers.Activation("hard_swish"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(3, activation="softmax"),
    ])
    settings = _convert_and_compare(model, tmp_path, digit_images(32), ("fp32", "int8"))
    assert settings["hardswish_rewrite"] is True


def test_keypoint_mlp_with_noise_and_dropout(tmp_path):
    import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((34,)),
        keras.layers.GaussianNoise(0.05),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.AlphaDropout(0.3),
        keras.layers.Dense(2, activation="softmax"),
    ])
    x = np.random.default_rng(0).uniform(0, 1, (10, 34)).astype(np.float32)
    _convert_and_compare(model, tmp_path, x)


def test_a_layer_that_ignores_the_training_flag_is_refused_with_one_line(tmp_path):
    import keras

    class AlwaysNoisy(keras.layers.Layer):  # a user layer that augments even at inference
        def call(self, inputs, training=None):
            return inputs + keras.random.normal(keras.ops.shape(inputs), stddev=0.5)

    keras.utils.set_random_seed(6)
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = AlwaysNoisy(name="noisy")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    x_probe = np.random.default_rng(0).uniform(0, 1, (4, 8)).astype(np.float32)
    with pytest.raises(ConversionError) as info:
        export_saved_model(model, tmp_path / "saved", x_probe, "noisy.keras")
    assert str(info.value) == ("noisy.keras: model(x, training=False) gives different outputs "
                               "for the same inputs: a layer draws random numbers at inference")


def test_dropout_called_with_training_true_is_still_bypassed(tmp_path):
    """Keras 3 lets the outer training=False win over a call-time training=True."""
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dropout(0.5, name="mc_dropout")(x, training=True)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    assert training_only_layers(model) == ["mc_dropout"]
    _convert_and_compare(model, tmp_path,
                         np.random.default_rng(0).uniform(0, 1, (6, 8)).astype(np.float32))

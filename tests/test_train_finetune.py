"""Staged fine-tuning: which backbone layers stage 2 trains, and BatchNorm left alone."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.errors import ConfigError
from edgepose.train.hyperparameters import ImageModelParams
from edgepose.train.image_classifier import build_image_model
from edgepose.train.training import compile_model, unfreeze_backbone
from tests.assets import asset_path


@pytest.fixture
def tiny_backbone():
    import keras

    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                              include_top=False, weights=None, pooling="avg")
    backbone.trainable = False
    return backbone


def _is_bn(layer) -> bool:
    return layer.__class__.__name__ == "BatchNormalization"


def test_unfreeze_top_trains_exactly_the_top_layers_except_batchnorm(tiny_backbone):
    unfrozen = unfreeze_backbone(tiny_backbone, top=12)
    layers = tiny_backbone.layers
    for index, layer in enumerate(layers):
        assert layer.trainable == (index >= len(layers) - 12 and not _is_bn(layer)), layer.name
    assert unfrozen == [layer.name for layer in layers[-12:] if layer.weights and not _is_bn(layer)]


def test_freeze_until_trains_every_layer_from_the_index(tiny_backbone):
    unfreeze_backbone(tiny_backbone, from_index=100)
    trainable = [i for i, layer in enumerate(tiny_backbone.layers) if layer.trainable]
    expected = [i for i, layer in enumerate(tiny_backbone.layers) if i >= 100 and not _is_bn(layer)]
    assert trainable == expected


def test_freeze_until_beyond_the_backbone_is_a_config_error(tiny_backbone):
    with pytest.raises(ConfigError, match="--freeze-until 1000 is beyond"):
        unfreeze_backbone(tiny_backbone, from_index=1000)


def test_fine_tuning_changes_conv_weights_but_not_batchnorm_statistics():
    import keras
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    model = build_image_model(3, ImageModelParams(
        input_size=32, alpha=1.0, weights=str(asset_path("dog_breed_mobilenetv2.h5")),
        augment="none"))
    assert not any(layer.trainable for layer in model.backbone.layers)
    unfreeze_backbone(model.backbone)
    compile_model(model.training, 1e-3)
    digits = load_digits()
    images = np.kron(digits.images[:16] / 16.0 * 255.0, np.ones((4, 4)))
    x = np.repeat(images[..., None], 3, axis=-1).astype("float32")
    y = digits.target[:16] % 3
    bn = model.backbone.get_layer("bn_Conv1")
    conv = model.backbone.get_layer("Conv1")
    before_bn = [w.copy() for w in bn.get_weights()]
    before_conv = conv.get_weights()[0].copy()
    model.training.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for old, new in zip(before_bn, bn.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)  # gamma, beta, moving mean and variance
    assert not np.allclose(before_conv, conv.get_weights()[0])

"""The backbone registry: sizes, widths and the in-graph preprocessing of raw RGB."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.errors import ConfigError
from edgepose.train.model_spec import (
    BACKBONES,
    IMAGENET_MEAN_RGB,
    IMAGENET_STDDEV_RGB,
    get_backbone,
)


def test_registry_lists_the_four_backbones_with_consistent_sizes():
    assert set(BACKBONES) == {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                              "efficientnet_b0"}
    for name, spec in BACKBONES.items():
        assert spec.name == name
        assert spec.min_size <= spec.default_size <= spec.max_size
        assert all(spec.min_size <= s <= spec.max_size for s in spec.imagenet_sizes)


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet50'.*mobilenet_v2"):
        get_backbone("resnet50")


@pytest.mark.parametrize("size", [16, 4096])
def test_input_size_outside_the_range_is_a_config_error(size):
    with pytest.raises(ConfigError, match=f"input size {size} is outside the range"):
        get_backbone("mobilenet_v2").check(size, None)


def test_alpha_defaults_per_backbone_and_is_checked():
    assert get_backbone("mobilenet_v2").check(96, None) == 1.0
    assert get_backbone("mobilenet_v2").check(96, 0.35) == 0.35
    assert get_backbone("efficientnet_b0").check(96, None) is None
    with pytest.raises(ConfigError, match="alpha 0.35 is not available for mobilenet_v3_small"):
        get_backbone("mobilenet_v3_small").check(96, 0.35)
    with pytest.raises(ConfigError, match="efficientnet_b0 has no width multiplier"):
        get_backbone("efficientnet_b0").check(96, 0.5)


def _layer_output(model, layer_name, x):
    import keras

    probe = keras.Model(model.inputs, model.get_layer(layer_name).output)
    return np.asarray(probe.predict_on_batch(x))


def test_mobilenet_v2_model_maps_raw_rgb_to_minus_one_one():
    from edgepose.train.hyperparameters import ImageModelParams
    from edgepose.train.image_classifier import build_image_model

    model = build_image_model(3, ImageModelParams(input_size=32, alpha=0.35, weights="none"))
    x = np.stack([np.zeros((32, 32, 3)), np.full((32, 32, 3), 255.0)]).astype("float32")
    out = _layer_output(model.inference, "preprocess", x)
    np.testing.assert_allclose(out[0], -1.0, atol=1e-6)
    np.testing.assert_allclose(out[1], 1.0, atol=1e-6)


def test_mobilenet_v3_small_rescales_inside_its_backbone():
    backbone = get_backbone("mobilenet_v3_small").build(32, 0.75, None)
    rescaling = [layer for layer in backbone.layers if layer.__class__.__name__ == "Rescaling"]
    assert len(rescaling) == 1
    x = np.full((1, 32, 32, 3), 255.0, dtype="float32")
    np.testing.assert_allclose(_layer_output(backbone, rescaling[0].name, x), 1.0, atol=1e-6)


def test_efficientnet_b0_normalises_with_imagenet_stats_also_after_reloading(tmp_path):
    import keras

    backbone = get_backbone("efficientnet_b0").build(32, None, None)
    pixel = np.array([200.0, 100.0, 50.0], dtype="float32")
    x = np.broadcast_to(pixel, (1, 32, 32, 3)).copy()
    expected = (pixel / 255.0 - np.array(IMAGENET_MEAN_RGB)) / np.array(IMAGENET_STDDEV_RGB)
    np.testing.assert_allclose(_layer_output(backbone, "normalization", x)[0, 0, 0], expected,
                               rtol=1e-4)
    backbone.save(str(tmp_path / "b0.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "b0.keras"), compile=False)
    np.testing.assert_allclose(_layer_output(reloaded, "normalization", x)[0, 0, 0], expected,
                               rtol=1e-4)

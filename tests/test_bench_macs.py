"""MAC counts read from .tflite graphs match hand computations and the published figure."""

import pytest

from edgepose.bench.macs import count_macs, op_macs
from edgepose.errors import ModelError


def _tflite(model) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def tiny_tflite() -> bytes:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3), batch_size=1),
        keras.layers.Conv2D(4, 3, padding="valid"),  # -> 6x6x4
        keras.layers.DepthwiseConv2D(3, padding="same"),  # -> 6x6x4
        keras.layers.Flatten(),  # -> 144
        keras.layers.Dense(5),
    ])
    return _tflite(model)


def test_tiny_model_count_matches_hand_computation(tiny_tflite):
    macs = count_macs(tiny_tflite)

    conv = 6 * 6 * 4 * (3 * 3 * 3)  # out_h * out_w * out_c * k_h * k_w * in_c
    depthwise = 6 * 6 * 4 * (3 * 3)
    dense = 144 * 5
    assert macs.by_op == {"CONV_2D": conv, "DEPTHWISE_CONV_2D": depthwise,
                          "FULLY_CONNECTED": dense}
    assert macs.total == conv + depthwise + dense == 5904


def test_grouped_conv_counts_input_channels_per_group():
    # 2 groups of 8 input channels: the filter stores in_c / groups = 4
    assert op_macs("CONV_2D", [(1, 10, 10, 8), (16, 3, 3, 4)], [(1, 10, 10, 16)]) \
        == 10 * 10 * 16 * 3 * 3 * 4


def test_transpose_conv_scatters_each_input_pixel_over_the_kernel():
    assert op_macs("TRANSPOSE_CONV", [(4,), (8, 2, 2, 3), (1, 5, 5, 3)], [(1, 10, 10, 8)]) \
        == 5 * 5 * 3 * 2 * 2 * 8


def test_mac_rate_from_latency(tiny_tflite):
    macs = count_macs(tiny_tflite)

    assert macs.per_second(2.0) == pytest.approx(5904 / 0.002)


def test_mobilenet_v2_224_matches_published_300m_macs():
    import keras

    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0,
                                           weights=None, classes=1000)
    macs = count_macs(_tflite(model))

    # Sandler et al. 2018, Table 4: MobileNetV2 (1.0, 224) has 300M multiply-adds
    assert macs.total == pytest.approx(300e6, rel=0.01)


def test_non_tflite_bytes_are_a_model_error(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a flatbuffer at all")

    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        count_macs(bad)

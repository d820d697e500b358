"""Rewrite hard-swish so that XNNPACK runs MobileNetV3 in int8.

Keras builds MobileNetV3's hard-swish as ``Activation("hard_swish")``; the
converter turns it into a HARD_SWISH op, which XNNPACK does not take in int8.
Each one then falls back to the reference kernel and splits the graph (19
partitions for MobileNetV3-Small), which makes int8 slower than float32.

The rewrite replaces each such layer by the same function written as
``(x * relu6(x + 3)) * 0.5 * (1/3)``. The form matters: the converter's fusion
patterns recognise ``x * relu6(x + 3) * (1/6)`` (in every bracketing we tried)
and fold it back into HARD_SWISH; with the constant split in two they do not,
and the graph becomes an ADD with a fused RELU6 and a MUL (the constant scale is
folded into the next convolution) -- int8 ops XNNPACK runs. The function is the
same in float up to rounding, so float outputs do not change.

XNNPACK takes an int8 ADD only when input scale / output scale is below 256, i.e.
hard-swish inputs within about +-768: true of trained models (BatchNorm keeps
activations small), not of random weights with unset BatchNorm statistics: an
untrained MobileNetV3-Small at 96 px keeps 16 such ADDs outside XNNPACK (17
partitions). ``edgepose convert`` then tries the conversion without the rewrite
and each with the refused ops kept float, and keeps the fastest on the target
(:mod:`edgepose.converters.target`).
"""

from __future__ import annotations

_REGISTERED: dict[str, type] = {}


def _layer_class():
    if "HardSwishXnn" in _REGISTERED:
        return _REGISTERED["HardSwishXnn"]
    from edgepose.keras_quiet import keras

    @keras.saving.register_keras_serializable(package="edgepose")
    class HardSwishXnn(keras.layers.Layer):
        """hard_swish(x) = x * relu6(x + 3) / 6, in a form the converter keeps apart."""

        def call(self, x):
            return (x * keras.ops.relu6(x + 3.0)) * 0.5 * (1.0 / 3.0)

    _REGISTERED["HardSwishXnn"] = HardSwishXnn
    return HardSwishXnn


def _is_hard_swish(layer) -> bool:
    from edgepose.keras_quiet import keras

    if not isinstance(layer, keras.layers.Activation):
        return False
    activation = layer.get_config().get("activation")
    return activation in ("hard_swish", "hard_silu")


def count_hard_swish(model) -> int:
    """Number of hard-swish activation layers, nested models included."""
    from edgepose.keras_quiet import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_hard_swish(layer)
        elif _is_hard_swish(layer):
            total += 1
    return total


def rewrite_hard_swish(model):
    """A copy of ``model`` with every hard-swish layer rewritten; weights copied."""
    from edgepose.keras_quiet import keras

    layer_class = _layer_class()

    def clone(layer):
        if _is_hard_swish(layer):
            return layer_class(name=layer.name)
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy

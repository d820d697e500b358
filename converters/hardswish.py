"""Rewrite hard-swish so that XNNPACK runs MobileNetV3 in int8.

Keras builds MobileNetV3's hard-swish as ``Activation("hard_swish")``; the
converter turns it into a HARD_SWISH op, which XNNPACK does not take in int8.
Each one then falls back to the reference kernel and splits the graph (19
partitions for MobileNetV3-Small), which makes int8 slower than float32.

The rewrite replaces each such layer by the same function written as
``relu6(x + 3) * (x / 6)``. That order matters: the converter's fusion
patterns recognise ``x * relu6(x + 3) / 6`` (in any bracketing we tried) and
fold it back into HARD_SWISH, but not this one, which becomes an ADD with a
fused RELU6 and two MULs -- all int8 ops XNNPACK runs. The function is the same
in float, so fp32 outputs do not change.
"""

from __future__ import annotations

_REGISTERED: dict[str, type] = {}


def _layer_class():
    if "HardSwishXnn" in _REGISTERED:
        return _REGISTERED["HardSwishXnn"]
    import keras

    @keras.saving.register_keras_serializable(package="edgepose")
    class HardSwishXnn(keras.layers.Layer):
        """hard_swish(x) = relu6(x + 3) * (x / 6), in an order the converter keeps apart."""

        def call(self, x):
            return keras.ops.relu6(x + 3.0) * (x * (1.0 / 6.0))

    _REGISTERED["HardSwishXnn"] = HardSwishXnn
    return HardSwishXnn


def _is_hard_swish(layer) -> bool:
    import keras

    if not isinstance(layer, keras.layers.Activation):
        return False
    activation = layer.get_config().get("activation")
    return activation in ("hard_swish", "hard_silu")


def count_hard_swish(model) -> int:
    """Number of hard-swish activation layers, nested models included."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_hard_swish(layer)
        elif _is_hard_swish(layer):
            total += 1
    return total


def rewrite_hard_swish(model):
    """A copy of ``model`` with every hard-swish layer rewritten; weights copied."""
    import keras

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

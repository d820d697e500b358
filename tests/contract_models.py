"""Tiny models with a KNOWN right answer for the input-contract and odd-model tests.

Weights are set by hand, not trained, so each model's answer on each image is
known exactly from how the image was made:

- ``brightness_model(contract)``: Conv2D(1x1, identity) -> GlobalAveragePooling ->
  Dense(3): classes dark / mid / bright by the mean pixel ``m`` in 0..1 (boundaries
  0.25 and 0.75). ``contract`` is the range the model was "trained" on: ``"0..1"``
  (``pixels / 255``, no Rescaling), ``"-1..1"``, or ``"rescaling"`` (raw 0..255 with
  a Rescaling layer first, as edgepose builds them). Fed raw 0..255 by mistake, the
  0..1 model says "bright" for everything (the issue-11 field case).
- ``colour_model(order)``: classes red / blue from the channel means, for a model
  wanting ``RGB`` or ``BGR`` in 0..1: a channel swap flips every answer.

Images: 32x32 PNGs, ``dark`` (values 0..50), ``mid`` (105..150), ``bright``
(205..255); ``red`` and ``blue`` with the other channels low.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 32
BRIGHTNESS = ["dark", "mid", "bright"]
COLOURS = ["red", "blue"]
_LEVELS = {"dark": (0, 50), "mid": (105, 150), "bright": (205, 255)}


def write_brightness_images(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """``root/<class>/<i>.png`` grey images whose mean pixel decides the class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, (lo, hi) in _LEVELS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            grey = rng.integers(lo, hi + 1, size=(SIZE, SIZE), dtype=np.uint8)
            if i == 0:  # reach both ends of the class range
                grey[0, 0], grey[0, 1] = lo, hi
            Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(root / name / f"{i}.png")
    return root


def write_colour_images(root: Path, per_class: int = 4, seed: int = 0) -> Path:
    """``root/red`` and ``root/blue`` images (the named channel 150..255, others 0..60)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for channel, name in ((0, "red"), (2, "blue")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 61, size=(SIZE, SIZE, 3), dtype=np.uint8)
            img[..., channel] = rng.integers(150, 256, size=(SIZE, SIZE), dtype=np.uint8)
            img[0, 0] = (0, 0, 0)  # every image reaches 0 and 255 somewhere
            img[0, 1] = (255, 255, 255)
            Image.fromarray(img, "RGB").save(root / name / f"{i}.png")
    return root


def _identity_conv(keras, x):
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="identity")
    y = conv(x)
    conv.set_weights([np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)])
    return y


def _brightness_head(keras, x, offset: float = 0.0, unit: float = 1.0,
                     activation: str = "softmax"):
    """Dense(3) on channel means ``v = offset + unit * m``: dark < 0.25 <= mid < 0.75 <= bright."""
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(3, activation=activation, name="scores")
    y = dense(x)
    # logits in m: dark 0, mid 12m - 3, bright 24m - 12; m = (v - offset) / unit, spread
    # over the three (equal) channel means.
    slopes = np.array([0.0, 12.0, 24.0], np.float32) / unit
    biases = np.array([0.0, -3.0, -12.0], np.float32) - slopes * offset
    dense.set_weights([np.tile(slopes / 3.0, (3, 1)), biases])
    return y


def brightness_model(contract: str = "0..1", batch_size: int | None = 1,
                     input_shape: tuple = (SIZE, SIZE, 3), dtype: str = "float32",
                     channels_first: bool = False, activation: str = "softmax"):
    """The dark/mid/bright classifier for a given input contract (see module docstring);
    ``activation="linear"`` makes it output logits (a ``from_logits=True`` model)."""
    import keras

    inputs = keras.Input(input_shape, batch_size=batch_size, dtype=dtype, name="image")
    x = inputs
    if dtype != "float32":
        x = keras.layers.Activation("linear", dtype="float32")(x)  # casts to float32
    if channels_first:
        x = keras.layers.Permute((2, 3, 1))(x)
    offset, unit = {"0..1": (0.0, 1.0), "-1..1": (-1.0, 2.0), "rescaling": (0.0, 1.0)}[contract]
    if contract == "rescaling":
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(x)
    x = _identity_conv(keras, x)
    return keras.Model(inputs, _brightness_head(keras, x, offset, unit, activation))


def colour_model(order: str = "RGB"):
    """red/blue classifier in 0..1 for a model wanting ``order`` channels."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1, name="image")
    x = _identity_conv(keras, inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax", name="scores")
    y = dense(x)
    r, b = (0, 2) if order == "RGB" else (2, 0)
    kernel = np.zeros((3, 2), np.float32)
    kernel[r] = (20.0, -20.0)
    kernel[b] = (-20.0, 20.0)
    dense.set_weights([kernel, np.zeros(2, np.float32)])
    return keras.Model(inputs, y)


def to_tflite(model, path: Path, *, io: str | None = None, representative=None,
              signature=None) -> Path:
    """Convert through a SavedModel like edgepose does; ``io`` int8/uint8 = full integer."""
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"input_signature": signature} if signature is not None else {}
        model.export(tmp, format="tf_saved_model", verbose=False, **kwargs)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if io is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = {"int8": tf.int8, "uint8": tf.uint8}[io]
            converter.inference_output_type = converter.inference_input_type
        path.write_bytes(converter.convert())
    return path


def unit_representative(low: float = 0.0, high: float = 1.0, n: int = 16, seed: int = 0):
    """Representative images in ``low..high`` (grey levels spread over the range)."""
    rng = np.random.default_rng(seed)

    def generate():
        for i in range(n):
            level = low + (high - low) * i / (n - 1)
            img = np.full((1, SIZE, SIZE, 3), level, np.float32)
            img += rng.uniform(-0.02, 0.02, img.shape).astype(np.float32) * (high - low)
            img[0, 0, 0], img[0, 0, 1] = low, high
            yield [np.clip(img, low, high)]

    return generate


def class_files(root: Path, classes: list[str]) -> list[tuple[Path, str]]:
    """(file, class) for every image under ``root/<class>/``."""
    return [(p, name) for name in classes for p in sorted((root / name).glob("*.png"))]


def unit_tflites(build: Path) -> tuple[Path, Path]:
    """The 0..1 brightness model as ``unit_fp32.tflite`` and as ``unit_uint8.tflite`` (uint8
    input, scale 1/255, zero point 0: the raw-bytes quantization) in ``build``."""
    unit = brightness_model("0..1")
    return (to_tflite(unit, build / "unit_fp32.tflite"),
            to_tflite(unit, build / "unit_uint8.tflite", io="uint8",
                      representative=unit_representative()))

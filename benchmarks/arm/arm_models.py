"""Real TFLite models for the emulated-Pi rig: a tiny trained digits classifier and backbones.

Host side (imports TensorFlow inside functions). Each Keras model takes raw RGB
0..255 and has a variable batch dimension, like a run's ``model.keras``; it is
converted with edgepose's own converter building blocks, exactly as ``edgepose
convert`` does: one SavedModel exported with a fixed batch of 1
(:func:`edgepose.converters.export.export_saved_model`; with a variable batch the converter
keeps SHAPE/PACK/RESHAPE ops that split the XNNPACK graph), then
:func:`edgepose.converters.tflite.convert_mode` for fp32 and full-integer int8 (int8 input
and output, calibrated on real images), the int8 one from the hard-swish-rewritten
graph when the model has hard-swish (``--hardswish-rewrite auto``).

- ``tiny``: a small conv net trained for a few epochs on sklearn's 8x8 digits
  (upscaled to 32x32 RGB): its int8 accuracy on held-out digits is meaningful.
- ``mobilenet_v2``, ``mobilenet_v3_small``, ``efficientnet_b0``: the real Keras
  architectures at a small input size with ``weights=None`` (nothing may be
  downloaded); BatchNorm statistics are set from real photographs (one pass in
  training mode with momentum 0), so activations have realistic ranges and the
  int8 calibration is real. The classifier head is random: instruction counts and
  ARM/x86 agreement are meaningful, accuracy is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel",
          "hubble_deep_field", "retina")


@dataclass
class BuiltModel:
    """The converted files of one architecture."""

    name: str
    size: int
    fp32: Path
    int8: Path


def digits(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits as float32 RGB 0..255 images of ``size`` x ``size``, and labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    images = []
    for image in data.images:
        gray = Image.fromarray((image * (255 / 16)).astype(np.uint8)).resize(
            (size, size), Image.Resampling.BILINEAR)
        images.append(np.repeat(np.asarray(gray)[..., None], 3, axis=-1))
    return np.stack(images).astype(np.float32), data.target.astype(np.int64)


def photo_crops(size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` seeded random crops of scikit-image's photographs, float32 RGB 0..255."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)()[..., :3] for name in PHOTOS]
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(min(photo.shape[:2]) // 3, min(photo.shape[:2])))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top:top + side, left:left + side]).resize(
            (size, size), Image.Resampling.BILINEAR)
        crops.append(np.asarray(crop))
    return np.stack(crops).astype(np.float32)


def convert(model, out_dir: Path, name: str, calibration: np.ndarray) -> BuiltModel:
    """Convert a Keras model to fp32 and full-integer int8 as ``edgepose convert`` does."""
    from edgepose.converters.calibration import CalibrationSet
    from edgepose.converters.export import export_saved_model, input_shape
    from edgepose.converters.hardswish import count_hard_swish, rewrite_hard_swish
    from edgepose.converters.modes import get_mode
    from edgepose.converters.tflite import convert_mode

    # Probe the export with real photographs: on a random-weight backbone the default
    # probe's noise images drive activations far out of range, where float rounding
    # differences between the graph and Keras exceed the export check's tolerance.
    probes = calibration[:4].astype(np.float32)
    saved = export_saved_model(model, out_dir / f"{name}_savedmodel", probes)
    fp32 = out_dir / f"{name}_fp32.tflite"
    fp32.write_bytes(convert_mode(saved, get_mode("fp32"), source=saved))
    # Integer modes convert the hard-swish-rewritten graph, as convert_run does by default.
    integer_saved = saved
    if count_hard_swish(model):
        integer_saved = export_saved_model(rewrite_hard_swish(model),
                                           out_dir / f"{name}_savedmodel_int", probes)
    samples = CalibrationSet(calibration.astype(np.float32), f"{len(calibration)} images")
    int8 = out_dir / f"{name}_int8.tflite"
    int8.write_bytes(convert_mode(integer_saved, get_mode("int8"), samples, io="int8",
                                  source=integer_saved))
    return BuiltModel(name, input_shape(model)[0], fp32, int8)


def build_tiny(out_dir: Path, epochs: int = 6) -> tuple[BuiltModel, np.ndarray, np.ndarray]:
    """Train the tiny digits net; return it with 60 held-out digits and their labels."""
    from edgepose.keras_quiet import keras
    from edgepose.sampling import stratified_indices

    keras.utils.set_random_seed(0)
    x, y = digits(32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    # 60 held-out digits, every class in proportion (the one sampling rule of edgepose).
    test = np.zeros(len(x), dtype=bool)
    test[stratified_indices(y.tolist(), 60, seed=0).indices] = True
    train_x, train_y, test_x, test_y = x[~test], y[~test], x[test], y[test]
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inputs)
    h = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(h)
    h = keras.layers.DepthwiseConv2D(3, activation="relu")(h)
    h = keras.layers.Conv2D(32, 1, activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(train_x, train_y, batch_size=32, epochs=epochs, verbose=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    return convert(model, out_dir, "tiny", train_x[:100]), test_x, test_y


BACKBONES = {
    # name -> (constructor, needs a [-1, 1] rescale in front)
    "mobilenet_v2": ("MobileNetV2", True),
    "mobilenet_v3_small": ("MobileNetV3Small", False),  # preprocessing built in
    "efficientnet_b0": ("EfficientNetB0", False),  # rescaling + normalisation built in
}


def build_backbone(name: str, size: int, out_dir: Path, classes: int = 10) -> BuiltModel:
    """A real Keras backbone (weights=None, BatchNorm stats from photographs) + softmax head."""
    from edgepose.keras_quiet import keras

    constructor, rescale = BACKBONES[name]
    keras.utils.set_random_seed(0)
    base = getattr(keras.applications, constructor)(
        input_shape=(size, size, 3), include_top=False, weights=None, pooling="avg")
    inputs = keras.Input((size, size, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs) if rescale else inputs
    outputs = keras.layers.Dense(classes, activation="softmax")(base(h))
    model = keras.Model(inputs, outputs)
    photos = photo_crops(size, 64, seed=1)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(photos, training=True)  # moving mean/variance := statistics of real photographs
    out_dir.mkdir(parents=True, exist_ok=True)
    return convert(model, out_dir, f"{name}_{size}", photo_crops(size, 64, seed=2))


def convert_variant(saved: Path, out: Path, calibration: np.ndarray, *, io: str = "int8",
                    per_channel: bool = True) -> Path:
    """Full-int8 conversion of ``saved`` with one knob changed, written to ``out``.

    ``io``: the input/output dtype (``int8`` or ``uint8``; the body stays int8 either
    way, as the TF2 converter has no uint8 body). ``per_channel=False`` sets the
    converter's ``_experimental_disable_per_channel`` (one scale per weight tensor,
    the TF1-era scheme) to see whether XNNPACK picks cheaper kernels for it.
    """
    from edgepose.converters.calibration import CalibrationSet
    from edgepose.converters.modes import get_mode
    from edgepose.converters.tflite import make_converter, run_converter

    samples = CalibrationSet(calibration.astype(np.float32), f"{len(calibration)} images")
    converter = make_converter(saved, get_mode("int8"), samples, io)
    if not per_channel:
        converter._experimental_disable_per_channel = True
    out.write_bytes(run_converter(converter, saved, f"int8 ({io} io, per_channel="
                                  f"{per_channel})"))
    return out

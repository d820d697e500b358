"""Tiny real TFLite models and a real run directory, built once per test session.

TensorFlow is imported here only, to BUILD models; the code under test never
imports it. ``tiny_run`` is registered in ``tests/conftest.py``; a test module
only names it::

    def test_something(tiny_run):
        tiny_run.int8  # Path to a full-integer model with int8 input/output

What is built (seeded, about 20 s on 2 cores):

- a class-folder image dataset from ``sklearn.datasets.load_digits`` (3 classes,
  8x8 digits upscaled to 32x32 RGB PNGs), split with ``stratified_split``;
- a tiny conv classifier (raw RGB 0..255 in, softmax out, a hard-swish inside
  so that int8 XNNPACK splits into several partitions), trained for a few epochs;
- ``models/tiny/``: a run directory with config.json, labels.txt, splits.json,
  model_fp32.tflite, model_int8.tflite (int8 I/O), each with its manifest, and
  reference_outputs.npz (Keras probabilities on the test split);
- ``extra/``: model_uint8io.tflite (uint8 I/O), model_logits.tflite (fp32,
  logits out), model_keypoints.tflite (fp32 MLP on a 34-vector).

Models are converted with ``TFLiteConverter.from_saved_model`` on
``model.export(dir)`` of a Keras model with a fixed batch of 1 (the path that
works on TF 2.21).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 32
CLASSES = ["zero", "one", "two"]
PER_CLASS = 40
KEYPOINT_DIM = 34


@dataclass
class TinyRun:
    """Paths of everything :func:`build_tiny_run` made."""

    run: Path  # models/tiny run directory
    data: Path  # class-folder dataset
    fp32: Path
    int8: Path
    uint8: Path
    logits: Path
    keypoints: Path
    labels: list[str]


def write_digits(root: Path) -> list[tuple[str, int]]:
    """Write 3 x 40 tinted digit PNGs (40 x 36 px) in class folders; ``(path, label)`` each."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    items = []
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        images = digits.images[digits.target == label][:PER_CLASS]
        for i, img in enumerate(images):
            grey = np.clip(img * (255.0 / 16.0), 0, 255).astype(np.uint8)
            # Tint per index so the colour channels differ (catches RGB/BGR swaps).
            rgb = np.stack([grey, (grey * 0.6).astype(np.uint8), 255 - grey], axis=-1)
            rel = f"{name}/{i:03d}.png"
            Image.fromarray(rgb, "RGB").resize((40, 36), Image.Resampling.NEAREST).save(root / rel)
            items.append((rel, label))
    return items


def _image_model(num_classes: int, logits: bool = False, batch_size: int | None = 1):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), batch_size=batch_size)
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation=None if logits else "softmax")(x)
    return keras.Model(inputs, outputs)


def convert_keras(model, out: Path, work: Path, mode: str, representative=None) -> Path:
    """Convert a fixed-batch Keras ``model`` to ``out`` with the plain TFLite converter.

    ``mode``: ``fp32``, or ``int8``/``uint8`` (full integer with that I/O type,
    calibrated on ``representative``); the SavedModel goes to ``work``. Independent
    of edgepose's converters, so tests of those compare against it.
    """
    import tensorflow as tf

    saved = work / f"saved_{out.stem}"
    model.export(str(saved), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if mode in ("int8", "uint8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if mode == "int8" else tf.uint8
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    out.write_bytes(converter.convert())
    return out


def write_manifest(model_path: Path, task: str, labels: list[str], mode: str,
                   output_kind: str = "probabilities", **extra) -> None:
    """Write the edgepose manifest of ``model_path`` from its tensors (``**extra``: fields)."""
    from edgepose.runtime.interpreter import load_interpreter
    from edgepose.runtime.manifest import Manifest, TensorSpec

    interpreter, _ = load_interpreter(model_path, 1, False)

    def spec(detail):
        scale, zero_point = detail["quantization"]
        quantized = bool(scale)
        return TensorSpec([int(d) for d in detail["shape"]], np.dtype(detail["dtype"]).name,
                          float(scale) if quantized else None,
                          int(zero_point) if quantized else None)

    Manifest(task=task, labels=labels, mode=mode,
             input=spec(interpreter.get_input_details()[0]),
             output=spec(interpreter.get_output_details()[0]),
             output_kind=output_kind, **extra).save(Manifest.path_for(model_path))


def collapsed_classifier(folder: Path) -> Path:
    """A real fp32 classifier that answers "one" for every image (the first class folder).

    Global average pooling into a Dense whose weights are zero and whose bias favours
    class 1: ``model_fp32.tflite`` (+ manifest, 32 x 32 centre-crop input) in ``folder``.
    """
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.zeros((3, 3), np.float32), np.array([0.0, 5.0, 0.0], np.float32)])
    path = convert_keras(model, folder / "model_fp32.tflite", folder, "fp32")
    write_manifest(path, "image", CLASSES, "fp32",
                   preprocessing={"height": SIZE, "width": SIZE, "resize": "bilinear",
                                  "crop": "center"})
    return path


def build_tiny_run(root: Path) -> TinyRun:
    """Build the dataset, run directory and models described in the module docstring."""
    import keras

    from edgepose.data.splits import Sample, Splits, stratified_split
    from edgepose.fileio import write_json, write_text
    from edgepose.rundir import load_inputs
    from edgepose.runtime.preprocess import ImagePreprocessing

    data = root / "data"
    items = write_digits(data)
    assignment = stratified_split([label for _, label in items], seed=0)
    splits = Splits("image", str(data), list(CLASSES),
                    [Sample(p, label, s) for (p, label), s in zip(items, assignment, strict=True)])
    run = root / "models" / "tiny"
    work = root / "work"
    run.mkdir(parents=True)
    work.mkdir()
    spec = ImagePreprocessing(SIZE, SIZE, "bilinear", "center")
    config = {"task": "image", "preprocessing": spec.to_dict(), "backbone": "tiny"}
    write_json(run / "config.json", config)
    write_text(run / "labels.txt", "\n".join(CLASSES) + "\n")
    splits.save(run / "splits.json")

    train = splits.samples("train")
    x_train, y_train = load_inputs(splits, train, config)
    trainer = _image_model(len(CLASSES), batch_size=None)
    trainer.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    trainer.fit(x_train.astype(np.float32), y_train, batch_size=8, epochs=20, verbose=0)
    model = _image_model(len(CLASSES))  # fixed batch of 1 for the converter
    model.set_weights(trainer.get_weights())

    test = splits.samples("test")
    x_test, _ = load_inputs(splits, test, config)
    reference = np.concatenate([model(x[None].astype(np.float32)).numpy() for x in x_test])
    np.savez(run / "reference_outputs.npz", paths=np.array([s.path for s in test]),
             probabilities=reference.astype(np.float32))

    def representative():
        for x in x_train[:32]:
            yield [x[None].astype(np.float32)]

    pre = spec.to_dict()
    paths = {}
    for mode in ("fp32", "int8"):
        paths[mode] = convert_keras(model, run / f"model_{mode}.tflite", work, mode, representative)
        write_manifest(paths[mode], "image", CLASSES, mode, preprocessing=pre)
    extra = root / "extra"
    extra.mkdir()
    paths["uint8"] = convert_keras(model, extra / "model_uint8io.tflite", work, "uint8",
                                   representative)
    write_manifest(paths["uint8"], "image", CLASSES, "int8", preprocessing=pre)

    logits_model = _image_model(len(CLASSES), logits=True)
    logits_model.set_weights(model.get_weights())
    paths["logits"] = convert_keras(logits_model, extra / "model_logits.tflite", work, "fp32")
    write_manifest(paths["logits"], "image", CLASSES, "fp32", output_kind="logits",
                   preprocessing=pre)

    keras.utils.set_random_seed(0)
    kp_in = keras.Input((KEYPOINT_DIM,), batch_size=1)
    kp_out = keras.layers.Dense(len(CLASSES), activation="softmax")(
        keras.layers.Dense(16, activation="relu")(kp_in))
    paths["keypoints"] = convert_keras(keras.Model(kp_in, kp_out),
                                       extra / "model_keypoints.tflite", work, "fp32")
    write_manifest(paths["keypoints"], "keypoints", CLASSES, "fp32", keypoint_layout="coco17")
    return TinyRun(run=run, data=data, labels=list(CLASSES), **paths)


_BUILT: dict[str, TinyRun] = {}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """The models and run directory of :func:`build_tiny_run`, built once per session.

    Each test module that imports this fixture registers its own copy, so the
    result is cached here to build it only once for all of them.
    """
    if "run" not in _BUILT:
        _BUILT["run"] = build_tiny_run(tmp_path_factory.mktemp("tiny_run"))
    return _BUILT["run"]
